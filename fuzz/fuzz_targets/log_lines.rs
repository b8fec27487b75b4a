//! Log lines through framing (kubectl, CRI partial joining, ANSI), timestamps (offsets, comma
//! decimals, zone-less times in a UTC, fixed-offset or IANA zone), redaction, the payload and
//! user-text cut, activity observations and every built-in profile, fed in chunks as the
//! tailers do: no panic, every line counted once, bounded buffers.
#![no_main]

use dge_core::observation::InstanceId;
use dge_parse::lines::LineSplitter;
use dge_parse::logs::{Framing, LogStream, LogZone, builtin_names, builtin_profile};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let names = builtin_names();
    let profile = builtin_profile(names[usize::from(sel) % names.len()]).unwrap();
    let framing = Framing::ALL[usize::from(sel >> 4) % Framing::ALL.len()];
    // Small bounds, so that the over-long paths run too.
    let max = 64 + usize::from(sel) * 8;
    let zone: LogZone = ["UTC", "+03:00", "Europe/Berlin", "America/St_Johns"]
        [usize::from(sel >> 2) % 4]
        .parse()
        .unwrap();
    let mut stream = LogStream::new(profile, framing, InstanceId::pod("ns", "pod"), "fuzz".into())
        .with_max_line_bytes(max)
        .with_zone(zone)
        .with_activity(sel & 1 == 1);
    let mut splitter = LineSplitter::new(max);
    let mut out = Vec::new();
    let mut lines = 0u64;
    let chunk = 1 + usize::from(sel) % 97;
    for piece in rest.chunks(chunk) {
        splitter.push(piece, |l| {
            assert!(l.len() <= max + 1);
            lines += 1;
            if lines % 2 == 0 {
                stream.push_line(l, &mut out);
            } else {
                let c = stream.classify_line(l, &mut out);
                let _ = c.to_string();
            }
        });
    }
    splitter.finish(|l| {
        lines += 1;
        stream.push_line(l, &mut out);
    });
    stream.finish(&mut out);
    assert_eq!(stream.counts().lines(), lines, "every line counted once");
    assert!(stream.counts().untimed <= stream.counts().malformed);
    for o in &out {
        let text = format!("{o:?}");
        assert!(!text.contains('\u{1b}'), "no escape codes kept");
    }
});
