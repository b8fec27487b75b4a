//! The Kubernetes JSON readers (pod lists, watch streams, events, /gateway/bot captures,
//! recordings): no panic on any input.
#![no_main]

use dge_parse::kube_json::{PodAttribution, read_json_capture};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let cap = read_json_capture(data, "fuzz", &PodAttribution::default());
    let _ = (cap.observations.len(), cap.problems.len());
});
