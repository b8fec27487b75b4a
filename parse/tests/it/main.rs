//! The parsing crate's integration tests, one binary: each module is one area.

mod kube_json;
mod parse_profiles;
