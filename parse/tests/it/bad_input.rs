//! Bad input through the public API: huge and over-long lines, invalid UTF-8 and binary
//! garbage, lines without a time, CRLF. Nothing panics, every physical line is counted once.

use dge_core::observation::SessionEvent;
use dge_parse::logs::{Framing, Outcome, read_log_bytes};

use crate::support::{PRIME, session, stream, ts};

#[test]
fn cri_join_is_bounded() {
    // 2 MiB of P parts then the F: joined up to 1 MiB, counted truncated, the next line fine.
    let mut log = Vec::new();
    log.extend_from_slice(
        b"2026-04-19T04:12:04Z stdout P 2026-04-19T04:12:04Z  INFO openab: discord bot running ",
    );
    let chunk = vec![b'x'; 16 * 1024];
    for _ in 0..128 {
        log.extend_from_slice(b"\n2026-04-19T04:12:04Z stdout P ");
        log.extend_from_slice(&chunk);
    }
    log.extend_from_slice(b"\n2026-04-19T04:12:04Z stdout F end\n");
    log.extend_from_slice(
        b"2026-04-19T04:12:05Z stdout F 2026-04-19T04:12:05Z  INFO openab: openab shut down\n",
    );
    let mut s = stream(Framing::Cri);
    let mut out = Vec::new();
    read_log_bytes(&log, &mut s, &mut out);
    let c = *s.counts();
    assert_eq!(
        (c.lines(), c.partial, c.truncated, c.malformed),
        (131, 129, 1, 0)
    );
    assert_eq!(
        out.len(),
        1,
        "the joined line ends with x's and no rule wants it whole"
    );
    assert_eq!(session(&out[0]).event, SessionEvent::Stopped);
}

#[test]
fn huge_line_between_good_lines() {
    let good1 = "2026-04-19T04:12:03.483915Z  INFO openab: discord bot running";
    let good2 =
        "2026-04-19T04:12:04.912640Z  INFO openab::discord: discord bot connected user=AgentBroker";
    let mut huge = "discord bot connected user=Huge "
        .repeat((10 << 20) / 32)
        .into_bytes();
    huge.splice(
        0..0,
        b"2026-04-19T04:12:04Z  INFO openab::discord: "
            .iter()
            .copied(),
    );
    for framing in [Framing::Auto, Framing::Plain, Framing::Kubectl] {
        let mut log = Vec::new();
        log.extend_from_slice(good1.as_bytes());
        log.push(b'\n');
        log.extend_from_slice(&huge);
        log.push(b'\n');
        log.extend_from_slice(good2.as_bytes());
        let mut s = stream(framing);
        let mut out = Vec::new();
        read_log_bytes(&log, &mut s, &mut out);
        let events: Vec<&str> = out.iter().map(|o| session(o).event.name()).collect();
        assert_eq!(events, ["starting", "ready"], "{framing}");
        assert_eq!(session(&out[1]).bot.as_deref(), Some("AgentBroker"));
        let c = *s.counts();
        assert_eq!((c.matched, c.ignored, c.malformed), (2, 0, 1), "{framing}");
        assert_eq!(s.last_malformed_reason(), Some("line too long"));
    }
    // A huge CRI F line is cut to the bound (and counted truncated), not dropped.
    let mut log = b"2026-04-19T04:12:04Z stdout F ".to_vec();
    log.extend_from_slice(&huge);
    log.push(b'\n');
    log.extend_from_slice(format!("2026-04-19T04:12:05Z stdout F {good2}").as_bytes());
    let mut s = stream(Framing::Cri);
    let mut out = Vec::new();
    read_log_bytes(&log, &mut s, &mut out);
    assert_eq!(out.len(), 2);
    assert_eq!(session(&out[0]).bot.as_deref(), Some("Huge"));
    assert!(session(&out[0]).line.as_ref().unwrap().text().len() <= 2048 + 3);
    assert_eq!(session(&out[1]).bot.as_deref(), Some("AgentBroker"));
    assert_eq!((s.counts().matched, s.counts().truncated), (2, 1));
}

#[test]
fn invalid_utf8_and_garbage() {
    let mut log: Vec<u8> = Vec::new();
    log.extend_from_slice(b"\xff\xfe\x00\x01 not text \xc3\x28\n");
    log.extend_from_slice(b"2026-04-19T04:12:04.912640Z  INFO openab::discord: discord bot connected user=Agent\xffBroker\n");
    log.extend_from_slice(b"\x80\x81\x82 discord bot connected \xe2\x82\n");
    log.extend_from_slice(b"2026-04-19T04:15:58Z  INFO openab::dispatch: batch dispatched thread_key=\"\xf0\x9f\x98\x80\xf0\x9f\" senders=[\"\xf0\x9f\x98\x80\"]\n");
    // Deterministic binary noise with escapes, NULs, CRs and newlines.
    let mut x: u32 = 0x1234_5678;
    for _ in 0..200_000 {
        x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        log.push((x >> 24) as u8);
    }
    log.push(b'\n');
    log.extend_from_slice(b"2026-04-19T07:00:00.912044Z  INFO openab: openab shut down\n");
    log.extend_from_slice(b"\x1b[\x1b]\x1b");
    let mut s = stream(Framing::Auto);
    let mut out = Vec::new();
    read_log_bytes(&log, &mut s, &mut out);
    let events: Vec<&str> = out.iter().map(|o| session(o).event.name()).collect();
    assert_eq!(events, ["ready", "dispatch", "stopped"]);
    assert_eq!(session(&out[0]).bot.as_deref(), Some("Agent\u{fffd}Broker"));
    let dispatched = session(&out[1]).line.as_ref().unwrap().text();
    assert!(dispatched.contains("\u{1f600}"), "{dispatched}");
    // The user names are cut, bytes and all.
    assert!(dispatched.ends_with("senders=[cut]"), "{dispatched}");
    let c = *s.counts();
    let newlines = log.iter().filter(|&&b| b == b'\n').count() as u64;
    assert_eq!(c.lines(), newlines + 1, "every physical line counted once");
    assert_eq!(c.matched, 3);
    // The noise has no time: every line of it is counted malformed (none takes the time of
    // the line before it).
    assert_eq!(c.matched + c.ignored, 6, "{c:?}");
    assert_eq!(c.malformed, c.untimed, "{c:?}");

    // Same garbage through the CRI framer: all malformed except the good lines.
    let mut s = stream(Framing::Cri);
    let mut out = Vec::new();
    read_log_bytes(&log, &mut s, &mut out);
    assert!(out.is_empty());
    assert_eq!(s.counts().malformed, newlines + 1);
}

#[test]
fn a_line_without_a_time_never_takes_its_neighbours() {
    let mut s = stream(Framing::Auto);
    let mut out = Vec::new();
    let resumed =
        "INFO  serenity::gateway::shard: [ShardInfo { id: ShardId(0), total: 1 }] Resumed";
    let c = s.classify_line(resumed.as_bytes(), &mut out);
    assert_eq!(
        (c.outcome, c.note, c.would_be),
        (
            Outcome::Malformed,
            Some("no timestamp"),
            Some(Outcome::Matched)
        )
    );
    assert_eq!(s.last_malformed_reason(), Some("no timestamp"));
    assert_eq!(
        s.push_line(b"", &mut out),
        Outcome::Ignored,
        "blank lines are not malformed"
    );
    assert_eq!(s.push_line(PRIME.as_bytes(), &mut out), Outcome::Ignored);
    // After a line with a time, still none of its own: counted, not given that time.
    assert_eq!(
        s.push_line(resumed.as_bytes(), &mut out),
        Outcome::Malformed
    );
    // Behind a kubectl prefix it has the container's.
    let prefixed = format!("2026-04-19T04:00:05.5Z {resumed}");
    assert_eq!(s.push_line(prefixed.as_bytes(), &mut out), Outcome::Matched);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].at, ts("2026-04-19T04:00:05.5Z"));
    assert_eq!(
        *s.counts(),
        dge_parse::logs::Counts {
            matched: 1,
            ignored: 2,
            malformed: 2,
            truncated: 0,
            partial: 0,
            untimed: 2,
        }
    );
}

#[test]
fn crlf_lines() {
    let log = "2026-04-19T04:12:03.483915Z  INFO openab: discord bot running\r\n\r\n2026-04-19T04:12:04.912640Z  INFO openab::discord: discord bot connected user=AgentBroker\r\n";
    let mut s = stream(Framing::Auto);
    let mut out = Vec::new();
    read_log_bytes(log.as_bytes(), &mut s, &mut out);
    assert_eq!(out.len(), 2);
    assert_eq!(session(&out[1]).bot.as_deref(), Some("AgentBroker"));
    assert!(
        out.iter()
            .all(|o| !session(o).line.as_ref().unwrap().text().contains('\r'))
    );
    assert_eq!((s.counts().matched, s.counts().ignored), (2, 1));
    // push_line itself drops a trailing \r too.
    let mut s = stream(Framing::Plain);
    let mut out = Vec::new();
    s.push_line(
        b"2026-04-19T04:12:04Z  INFO openab: openab shut down\r",
        &mut out,
    );
    assert_eq!(session(&out[0]).event, SessionEvent::Stopped);
}
