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
        }
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
            write!(f, " {}", event.name())?;
            match event {
                SessionEvent::Ready {
                    session_id: Some(s),
                } => write!(f, " session_id={s}")?,
                SessionEvent::Dispatch { kind: Some(k) } => write!(f, " kind={k}")?,
                SessionEvent::InvalidSession { resumable } => write!(f, " resumable={resumable}")?,
                SessionEvent::Closed { code: Some(c) } => write!(f, " code={c}")?,
                SessionEvent::Fatal { reason, code } => {
                    write!(f, " reason={reason:?}")?;
                    if let Some(c) = code {
                        write!(f, " code={c}")?;
                    }
                }
                _ => {}
            }
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
        if let Some(note) = self.note {
            write!(f, " ({note})")?;
        }
        if self.truncated {
            f.write_str(" (truncated)")?;
        }
        if !self.captures.is_empty() {
            f.write_str(" [")?;
            for (i, (k, v)) in self.captures.iter().enumerate() {
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
