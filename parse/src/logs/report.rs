//! The `parse` command's text: how each line of a log is classified and why. Here, not in the
//! exporter, so that the golden files of `parse/tests/golden/` are this exact text, checked
//! without running the binary.

use std::fmt::Write as _;
use std::io;
use std::sync::Arc;

use super::outcome::event_text;
use super::{Classified, CompiledProfile, Framing, LogStream, LogZone, classify_log_bytes};
use dge_core::observation::InstanceId;

/// Classify every line of `bytes` with `profile` (framing detected per line, as a `[[file]]`
/// source does; zone-less times read as UTC) and write one row per line, then the counts and,
/// for a multi-library profile, the libraries auto-detection settled on.
pub fn write_parse_report(
    profile: Arc<CompiledProfile>,
    bytes: &[u8],
    out: &mut dyn io::Write,
) -> io::Result<()> {
    write_parse_report_in(profile, LogZone::Utc, bytes, out)
}

/// [`write_parse_report`] with zone-less times read as local times of `zone` (`log_timezone`).
///
/// A row: line number, outcome, the event with every value it carries, the rule, bot, shard,
/// a capture no field shows, the line's time and why it did not count (for a line without a
/// time: what it would have been with one).
pub fn write_parse_report_in(
    profile: Arc<CompiledProfile>,
    zone: LogZone,
    bytes: &[u8],
    out: &mut dyn io::Write,
) -> io::Result<()> {
    let mut stream = LogStream::new(
        profile,
        Framing::Auto,
        InstanceId::pod("", "-"),
        "parse".into(),
    )
    .with_zone(zone);
    let mut observations = Vec::new();
    let mut result = Ok(());
    classify_log_bytes(bytes, &mut stream, &mut observations, |n, c| {
        if result.is_ok() {
            result = out.write_all(row(n, &c).as_bytes());
        }
    });
    result?;
    let c = stream.counts();
    writeln!(
        out,
        "total: {} matched, {} ignored, {} malformed ({} without a time)",
        c.matched, c.ignored, c.malformed, c.untimed
    )?;
    writeln!(out, "times without a zone read in: {zone}")?;
    if let Some(families) = stream.detected() {
        writeln!(out, "detected: {}", families.join(", "))?;
    }
    Ok(())
}

/// One line's row, with its newline.
fn row(n: usize, c: &Classified) -> String {
    let mut line = format!("{:>6} {:<9}", n, c.outcome.as_str());
    if let Some(ev) = &c.event {
        let _ = write!(line, " {:<14}", event_text(ev));
    }
    if let Some(r) = &c.rule {
        let _ = write!(line, " rule={r}");
    }
    if let Some(b) = &c.bot {
        let _ = write!(line, " bot={b}");
    }
    if let Some(s) = c.shard {
        let _ = write!(line, " shard={s}");
    }
    for (k, v) in c.unshown_captures() {
        let _ = write!(line, " captured {k}={v:?}");
    }
    if let Some(at) = c.at {
        let _ = write!(line, " at={}", at.to_rfc3339());
    }
    if let Some(why) = c.why() {
        let _ = write!(line, " ({why})");
    }
    line.push('\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::builtin_profile;

    fn report(profile: &str, log: &str) -> String {
        let mut out = Vec::new();
        write_parse_report(builtin_profile(profile).unwrap(), log.as_bytes(), &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn rows_counts_and_detection() {
        let log = "2026-04-19T04:12:04.912640Z  INFO openab::discord: discord bot connected user=AgentBroker\nno time here\n";
        assert_eq!(
            report("openab", log),
            "     1 matched   ready          rule=openab.ready bot=AgentBroker at=2026-04-19T04:12:04.912640+00:00\n     2 malformed (no timestamp)\ntotal: 1 matched, 0 ignored, 1 malformed (1 without a time)\ntimes without a zone read in: UTC\n"
        );
        let auto = report("auto", log);
        assert!(
            auto.ends_with("total: 1 matched, 0 ignored, 1 malformed (1 without a time)\ntimes without a zone read in: UTC\n"),
            "{auto}"
        );
        let many = log.lines().next().unwrap().to_owned() + "\n";
        let auto = report("auto", &many.repeat(60));
        assert!(auto.ends_with("detected: serenity\n"), "{auto}");
        // A line without a time says what it would have been, every field once.
        let log = "INFO  serenity::gateway::shard: [ShardInfo { id: ShardId(3), total: 4 }] Received Ready\n";
        assert_eq!(
            report("serenity", log),
            "     1 malformed ready          rule=serenity.ready shard=3 (no timestamp; would have matched)\ntotal: 0 matched, 0 ignored, 1 malformed (1 without a time)\ntimes without a zone read in: UTC\n"
        );
    }

    #[test]
    fn event_values_are_shown() {
        use dge_core::observation::SessionEvent;
        let ev = |e| event_text(&e);
        assert_eq!(
            ev(SessionEvent::Closed { code: Some(4014) }),
            "closed(code=4014)"
        );
        assert_eq!(ev(SessionEvent::Closed { code: None }), "closed");
        assert_eq!(
            ev(SessionEvent::Fatal {
                reason: "x".into(),
                code: None
            }),
            "fatal(reason=\"x\")"
        );
        assert_eq!(
            ev(SessionEvent::InvalidSession { resumable: true }),
            "invalid_session(resumable=true)"
        );
        assert_eq!(
            ev(SessionEvent::Heartbeat { sequence: Some(42) }),
            "heartbeat(sequence=42)"
        );
        assert_eq!(ev(SessionEvent::HeartbeatMissed), "heartbeat_missed");
        assert_eq!(
            ev(SessionEvent::Stalled {
                behind_ms: Some(10_000)
            }),
            "stalled(behind_ms=10000)"
        );
        assert_eq!(
            ev(SessionEvent::IdentifyThrottled { wait_ms: Some(5) }),
            "identify_throttled(wait_ms=5)"
        );
        assert_eq!(ev(SessionEvent::Resuming), "resuming");
        assert_eq!(
            ev(SessionEvent::SessionLimit {
                total: Some(1000),
                remaining: Some(998),
                reset_after_ms: Some(86_400_000)
            }),
            "session_limit(total=1000, remaining=998, reset_after_ms=86400000)"
        );
    }
}
