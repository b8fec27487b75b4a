//! JSON and logfmt decoding: the renderers and time readers directly, then whole lines through
//! the structured profiles (a prefix that passes the literal prefilter is prepended, so that
//! the decoding path runs).
#![no_main]

use dge_core::observation::InstanceId;
use dge_parse::logs::structured::{
    Format, StructuredFields, line_format, line_time, render_json, render_logfmt,
};
use dge_parse::logs::{Framing, LogStream, builtin_profile};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let map = StructuredFields::default();
    let mut out = Vec::new();
    let _ = render_json(data, &map, &mut out);
    let _ = render_logfmt(data, &map, &mut out);
    for f in [Format::Auto, Format::Json, Format::Logfmt, Format::Text] {
        let fmt = line_format(data, f);
        let _ = line_time(data, fmt, &map);
    }
    for (profile, prefix) in [
        ("json", &b"{\"message\":\"discord bot connected "[..]),
        ("logfmt", &b"msg=\"batch dispatched "[..]),
        ("tracing-json", &b"{\"fields\":{\"message\":\"received dispatch"[..]),
        ("auto", &b"time=x msg=\"[WS => Shard 0] Destroying shard\\n\\tCode: "[..]),
    ] {
        let mut s = LogStream::new(
            builtin_profile(profile).unwrap(),
            Framing::Auto,
            InstanceId::pod("ns", "pod"),
            "fuzz".into(),
        );
        let mut obs = Vec::new();
        let mut n = 0;
        let mut line = prefix.to_vec();
        line.extend_from_slice(data);
        for l in line.split(|&b| b == b'\n') {
            s.push_line(l, &mut obs);
            n += 1;
        }
        assert_eq!(s.counts().lines(), n);
    }
});
