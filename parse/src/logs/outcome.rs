//! What became of each line: the outcome counted in the line metrics, per-stream counts, and
//! the detail `parse` shows.

use std::fmt;

use dge_core::observation::{SessionEvent, Timestamp};

/// What became of one physical line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// A rule matched and an observation was pushed.
    Matched,
    /// Nothing to say: no rule matched, an `ignore` rule matched, a blank line, or a CRI `P`
    /// part held until its line is complete (the complete line gets the outcome).
    Ignored,
    /// Unusable (no timestamp anywhere, line too long, not a CRI line in a CRI file).
    Malformed,
}

impl Outcome {
    pub const ALL: [Outcome; 3] = [Self::Matched, Self::Ignored, Self::Malformed];

    /// The metric label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Matched => "matched",
            Self::Ignored => "ignored",
            Self::Malformed => "malformed",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Per-stream line counts. `matched + ignored + malformed` = physical lines pushed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub matched: u64,
    pub ignored: u64,
    pub malformed: u64,
    /// Logical lines that lost bytes: joined CRI lines over the bound, and partial lines
    /// flushed at EOF without their end (not an outcome: those lines are counted above too,
    /// except a partial flushed by [`LogStream::finish`](super::LogStream::finish), which has no physical line left).
    pub truncated: u64,
    /// CRI `P` lines (also counted in `ignored`).
    pub partial: u64,
    /// Lines without a time of their own, nor a container's, nor (a continuation line) their
    /// message's (also counted in `malformed`): never given a neighbour's time.
    pub untimed: u64,
}

impl Counts {
    pub fn get(&self, outcome: Outcome) -> u64 {
        match outcome {
            Outcome::Matched => self.matched,
            Outcome::Ignored => self.ignored,
            Outcome::Malformed => self.malformed,
        }
    }

    /// Physical lines pushed.
    pub fn lines(&self) -> u64 {
        self.matched + self.ignored + self.malformed
    }

    pub(super) fn add(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Matched => self.matched += 1,
            Outcome::Ignored => self.ignored += 1,
            Outcome::Malformed => self.malformed += 1,
        }
    }
}

/// How one line was classified, for `parse` (see [`LogStream::classify_line`](super::LogStream::classify_line)).
#[derive(Debug, Clone, PartialEq)]
pub struct Classified {
    pub outcome: Outcome,
    /// Why, when there is something to say: the malformed reason, `partial`, `blank`,
    /// `no literal`, `no regex matched`, `ignore rule`, `unterminated partial`.
    pub note: Option<&'static str>,
    pub at: Option<Timestamp>,
    pub rule: Option<String>,
    pub event: Option<SessionEvent>,
    /// The bot the observation names (captured, fixed or the stream's default).
    pub bot: Option<String>,
    pub shard: Option<u32>,
    /// Named captures that took part in the match (redacted text).
    pub captures: Vec<(String, String)>,
    pub truncated: bool,
    /// A line without a time is counted malformed (note `no timestamp`); this is the outcome
    /// it would have had with a time (`Matched`: the rule, event and fields above are what it
    /// would have said).
    pub would_be: Option<Outcome>,
}

impl Classified {
    pub(super) fn new(outcome: Outcome) -> Self {
        Self {
            outcome,
            note: None,
            at: None,
            rule: None,
            event: None,
            bot: None,
            shard: None,
            captures: Vec::new(),
            truncated: false,
            would_be: None,
        }
    }
}

impl Classified {
    /// Why the line did not count, in words: its note, and for a line without a time, what it
    /// would have been with one.
    pub fn why(&self) -> Option<String> {
        match (self.would_be, self.note) {
            (Some(Outcome::Matched), n) => Some(format!(
                "{}; would have matched",
                n.unwrap_or("no timestamp")
            )),
            (_, n) => n.map(str::to_owned),
        }
    }

    /// The named captures whose value no field of the observation shows (a capture that
    /// did not read as a value): every other capture is shown once, as its field.
    pub fn unshown_captures(&self) -> impl Iterator<Item = &(String, String)> {
        self.captures.iter().filter(|(k, _)| match k.as_str() {
            "bot" => self.bot.is_none(),
            "shard" => self.shard.is_none(),
            k => !self.event.as_ref().is_some_and(|e| carries(e, k)),
        })
    }
}

/// Whether `event` holds the value a capture named `cap` feeds.
fn carries(event: &SessionEvent, cap: &str) -> bool {
    use SessionEvent as E;
    match (event, cap) {
        (E::Ready { session_id }, "session_id") => session_id.is_some(),
        (E::Dispatch { kind }, "kind") => kind.is_some(),
        (E::Closed { code } | E::Fatal { code, .. }, "code") => code.is_some(),
        (E::Fatal { .. }, "reason") | (E::InvalidSession { .. }, "resumable") => true,
        (E::Heartbeat { sequence }, "sequence") => sequence.is_some(),
        (
            E::Stalled { behind_ms: v } | E::IdentifyThrottled { wait_ms: v },
            "millis" | "seconds",
        ) => v.is_some(),
        (E::SessionLimit { total, .. }, "total") => total.is_some(),
        (E::SessionLimit { remaining, .. }, "remaining") => remaining.is_some(),
        (E::SessionLimit { reset_after_ms, .. }, "reset_after" | "millis" | "seconds") => {
            reset_after_ms.is_some()
        }
        _ => false,
    }
}

/// The event as the engine gets it: its name and every value that comes with it, fixed by the
/// rule or captured (`closed(code=4014)`, `fatal(reason="invalid token", code=4004)`).
pub fn event_text(ev: &SessionEvent) -> String {
    use SessionEvent as E;
    fn num(fields: &mut Vec<String>, k: &str, v: Option<u64>) {
        if let Some(v) = v {
            fields.push(format!("{k}={v}"));
        }
    }
    let mut fields: Vec<String> = Vec::new();
    let f = &mut fields;
    match ev {
        E::Ready { session_id } => {
            if let Some(s) = session_id {
                f.push(format!("session_id={s:?}"));
            }
        }
        E::Dispatch { kind } => {
            if let Some(k) = kind {
                f.push(format!("kind={k:?}"));
            }
        }
        E::Heartbeat { sequence } => num(f, "sequence", *sequence),
        E::Stalled { behind_ms } => num(f, "behind_ms", *behind_ms),
        E::IdentifyThrottled { wait_ms } => num(f, "wait_ms", *wait_ms),
        E::SessionLimit {
            total,
            remaining,
            reset_after_ms,
        } => {
            num(f, "total", total.map(u64::from));
            num(f, "remaining", remaining.map(u64::from));
            num(f, "reset_after_ms", *reset_after_ms);
        }
        E::InvalidSession { resumable } => f.push(format!("resumable={resumable}")),
        E::Closed { code } => num(f, "code", code.map(u64::from)),
        E::Fatal { reason, code } => {
            f.push(format!("reason={reason:?}"));
            num(f, "code", code.map(u64::from));
        }
        E::Starting
        | E::Identifying
        | E::Resumed
        | E::HeartbeatAck
        | E::HeartbeatMissed
        | E::Resuming
        | E::Reconnecting
        | E::ShuttingDown
        | E::Stopped => {}
    }
    if fields.is_empty() {
        ev.name().to_owned()
    } else {
        format!("{}({})", ev.name(), fields.join(", "))
    }
}

impl fmt::Display for Classified {
    /// `matched  openab.ready  ready  bot=AgentBroker shard=- at=2026-..Z  [user=..]`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:<9}", self.outcome.as_str())?;
        if let Some(rule) = &self.rule {
            write!(f, " {rule}")?;
        }
        if let Some(event) = &self.event {
            write!(f, " {}", event_text(event))?;
            if let Some(bot) = &self.bot {
                write!(f, " bot={bot}")?;
            }
            if let Some(shard) = self.shard {
                write!(f, " shard={shard}")?;
            }
        }
        if let Some(at) = self.at {
            write!(
                f,
                " at={}",
                at.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
            )?;
        }
        if let Some(why) = self.why() {
            write!(f, " ({why})")?;
        }
        if self.truncated {
            f.write_str(" (truncated)")?;
        }
        let unshown: Vec<_> = self.unshown_captures().collect();
        if !unshown.is_empty() {
            f.write_str(" [")?;
            for (i, (k, v)) in unshown.into_iter().enumerate() {
                if i > 0 {
                    f.write_str(" ")?;
                }
                write!(f, "{k}={v:?}")?;
            }
            f.write_str("]")?;
        }
        Ok(())
    }
}
