//! The parsing crate's integration tests, one binary: each module is one area.

mod bad_input;
mod corpus;
mod framing;
mod golden;
mod kube_json;
mod profiles_api;
mod replay;
mod support;
