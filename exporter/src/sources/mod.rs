//! The outside world -> [`Observation`](crate::observation::Observation)s. Sources never decide
//! anything: they translate and count what they could not translate.

pub mod discord;
pub mod files;
pub mod kube_json;
pub mod kubernetes;
pub mod lines;
pub mod logs;
pub mod positions;
pub mod replay;
pub mod sim;
