//! Reading what operators capture, byte-oriented and allocation-free on the hot path: bot log
//! lines classified by data-driven [`logs`] profiles, log framings (CRI, `kubectl logs
//! --timestamps`, plain), kubectl JSON captures ([`kube_json`]) and the [`replay`] readers that
//! merge them into one time-ordered stream of observations.
//!
//! Fuzz targets and the parsing benchmark link this crate alone.

pub mod error;
pub mod kube_json;
pub mod lines;
pub mod logs;
pub mod replay;

pub use error::Error;
