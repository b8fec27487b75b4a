//! Framing through the public API: kubectl and CRI prefixes (partial lines joined), a whole
//! log's counts and times. What each line means is in the golden files (`golden.rs`).

use dge_core::observation::SessionEvent;
use dge_parse::logs::{Framing, Outcome, classify_log_bytes, read_log_bytes};

use crate::support::{session, stream, ts};
use chrono::{DateTime, Utc};

#[test]
fn whole_log_counts_and_times() {
    // One line per rule of OpenAB, serenity and discord.py (plus noise).
    let log = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/logs/reference.log"
    ))
    .unwrap();
    let mut s = stream(Framing::Auto).with_bot(Some("configured".into()));
    let mut out = Vec::new();
    read_log_bytes(&log, &mut s, &mut out);
    let c = *s.counts();
    assert_eq!(c.lines(), 40);
    assert_eq!(
        (c.matched, c.ignored, c.malformed, c.truncated),
        (38, 2, 0, 0)
    );
    assert_eq!(out.len(), 38);
    // Serenity lines, as `kubectl logs --timestamps` shows them, take the container's time.
    let running = out
        .iter()
        .find(|o| session(o).event == SessionEvent::Starting && session(o).shard == Some(0))
        .unwrap();
    assert_eq!(running.at, ts("2026-04-19T07:00:02Z"));
    // The configured bot fills in where a line names none; a line's own name wins.
    assert_eq!(session(&out[0]).bot.as_deref(), Some("configured"));
    assert_eq!(session(&out[1]).bot.as_deref(), Some("AgentBroker"));
    // Times never go backwards in this log except where the log itself does.
    assert!(out.iter().all(|o| &*o.source == "file:test.log"));
}

#[test]
fn kubectl_and_cri_framing() {
    let kubectl = "2026-04-19T04:12:04.912640123Z \x1b[2m2026-04-19T04:12:04.912640Z\x1b[0m \x1b[32m INFO\x1b[0m \x1b[2mopenab::discord\x1b[0m\x1b[2m:\x1b[0m discord bot connected \x1b[3muser\x1b[0m\x1b[2m=\x1b[0mAgentBroker";
    for framing in [Framing::Auto, Framing::Kubectl] {
        let mut s = stream(framing);
        let mut out = Vec::new();
        assert_eq!(s.push_line(kubectl.as_bytes(), &mut out), Outcome::Matched);
        assert_eq!(out[0].at, ts("2026-04-19T04:12:04.912640123Z"));
        assert_eq!(
            session(&out[0]).line.as_ref().map(|l| l.text()).as_deref(),
            Some(
                "2026-04-19T04:12:04.912640Z  INFO openab::discord: discord bot connected user=AgentBroker"
            )
        );
    }

    // CRI: a READY line split over three P parts, a stderr line in between, then F.
    let cri = [
        "2026-04-19T04:12:04.100000000Z stdout P 2026-04-19T04:12:04.912640Z  INFO openab::disc",
        "2026-04-19T04:12:04.150000000Z stderr F 2026-04-19T04:12:04.9Z  INFO openab: discord bot running",
        "2026-04-19T04:12:04.200000000Z stdout P ord: discord bot conn",
        "2026-04-19T04:12:04.300000000Z stdout P ected user=Agent",
        "2026-04-19T04:12:04.400000000Z stdout F Broker",
        "2026-04-19T04:12:05.000000000Z stdout F 2026-04-19T04:12:05Z  INFO openab: SIGTERM received",
        "2026-04-19T04:12:06.000000000Z stdout P 2026-04-19T04:12:06Z  INFO openab: openab shut",
    ]
    .join("\n");
    for framing in [Framing::Auto, Framing::Cri] {
        let mut s = stream(framing);
        let mut out = Vec::new();
        let mut outcomes = Vec::new();
        classify_log_bytes(cri.as_bytes(), &mut s, &mut out, |n, c| {
            outcomes.push((n, c.outcome, c.note))
        });
        let events: Vec<(&str, DateTime<Utc>, Option<&str>)> = out
            .iter()
            .map(|o| (session(o).event.name(), o.at, session(o).bot.as_deref()))
            .collect();
        assert_eq!(
            events,
            vec![
                ("starting", ts("2026-04-19T04:12:04.15Z"), None),
                ("ready", ts("2026-04-19T04:12:04.1Z"), Some("AgentBroker")),
                ("shutting_down", ts("2026-04-19T04:12:05Z"), None),
                // The partial at EOF, flushed as it is: "openab shut" is no rule's literal.
            ]
        );
        assert_eq!(
            outcomes,
            vec![
                (1, Outcome::Ignored, Some("partial")),
                (2, Outcome::Matched, None),
                (3, Outcome::Ignored, Some("partial")),
                (4, Outcome::Ignored, Some("partial")),
                (5, Outcome::Matched, None),
                (6, Outcome::Matched, None),
                (7, Outcome::Ignored, Some("partial")),
                (7, Outcome::Ignored, Some("no literal")),
            ]
        );
        let c = s.counts();
        assert_eq!(
            (c.matched, c.ignored, c.malformed, c.partial, c.truncated),
            (3, 4, 0, 4, 1)
        );
    }

    // A partial at EOF that does match is still seen.
    let tail = "2026-04-19T04:12:06.000000000Z stdout P 2026-04-19T04:12:06Z  INFO openab: openab shut down";
    let mut s = stream(Framing::Cri);
    let mut out = Vec::new();
    read_log_bytes(tail.as_bytes(), &mut s, &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(session(&out[0]).event, SessionEvent::Stopped);
    assert_eq!(out[0].at, ts("2026-04-19T04:12:06Z"));
    assert_eq!((s.counts().ignored, s.counts().truncated), (1, 1));
}
