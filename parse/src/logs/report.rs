//! The `parse` command's text: how each line of a log is classified and why. Here, not in the
//! exporter, so that the golden files of `parse/tests/golden/` are this exact text, checked
//! without running the binary.

use std::fmt::Write as _;
use std::io;
use std::sync::Arc;

use super::{Classified, CompiledProfile, Framing, LogStream, classify_log_bytes};
use dge_core::observation::{InstanceId, SessionEvent};

/// Classify every line of `bytes` with `profile` (framing detected per line, as a `[[file]]`
/// source does) and write one row per line, then the counts and, for a multi-library profile,
/// the libraries auto-detection settled on.
///
/// A row: line number, outcome, the event with its values, the rule, bot, shard, the named
/// captures, the line's time and why it did not count.
pub fn write_parse_report(
    profile: Arc<CompiledProfile>,
    bytes: &[u8],
    out: &mut dyn io::Write,
) -> io::Result<()> {
    let mut stream = LogStream::new(
        profile,
        Framing::Auto,
        InstanceId::pod("", "-"),
        "parse".into(),
    );
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
        "total: {} matched, {} ignored, {} malformed",
        c.matched, c.ignored, c.malformed
    )?;
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
    for (k, v) in &c.captures {
        let _ = write!(line, " {k}={v:?}");
    }
    if let Some(at) = c.at {
        let _ = write!(line, " at={}", at.to_rfc3339());
    }
    if let Some(note) = c.note {
        let _ = write!(line, " ({note})");
    }
    line.push('\n');
    line
}

/// The event as the engine gets it: its name and the values that come with it, fixed by the
/// rule or captured (`closed(code=4014)`).
fn event_text(ev: &SessionEvent) -> String {
    let name = ev.name();
    match ev {
        SessionEvent::Ready {
            session_id: Some(s),
        } => format!("{name}(session_id={s:?})"),
        SessionEvent::Dispatch { kind: Some(k) } => format!("{name}(kind={k:?})"),
        SessionEvent::InvalidSession { resumable } => format!("{name}(resumable={resumable})"),
        SessionEvent::Closed { code: Some(c) } => format!("{name}(code={c})"),
        SessionEvent::Fatal { reason, code } => match code {
            Some(c) => format!("{name}(reason={reason:?}, code={c})"),
            None => format!("{name}(reason={reason:?})"),
        },
        _ => name.to_owned(),
    }
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
            "     1 matched   ready          rule=openab.ready bot=AgentBroker bot=\"AgentBroker\" at=2026-04-19T04:12:04.912640+00:00\n     2 ignored   at=2026-04-19T04:12:04.912640+00:00 (no literal)\ntotal: 1 matched, 1 ignored, 0 malformed\n"
        );
        let auto = report("auto", log);
        assert!(
            auto.ends_with("total: 1 matched, 1 ignored, 0 malformed\n"),
            "{auto}"
        );
        let many = log.lines().next().unwrap().to_owned() + "\n";
        let auto = report("auto", &many.repeat(60));
        assert!(auto.ends_with("detected: serenity\n"), "{auto}");
    }

    #[test]
    fn event_values_are_shown() {
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
    }
}
