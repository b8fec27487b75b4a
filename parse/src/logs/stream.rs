//! One file or pod stream: framing, the shared compiled profile, counts and library
//! auto-detection.

use std::sync::Arc;

use super::eval::Eval;
use super::framing::{DEFAULT_MAX_LINE_BYTES, Frame, Framing, LineFramer};
use super::zone::LogZone;
use super::{Classified, CompiledProfile, Counts, MatchScratch, Outcome};
use chrono::TimeDelta;
use dge_core::observation::{
    Body, InstanceId, LOG_ACTIVITY_EVERY_SECS, LogActivity, Observation, Timestamp,
};

/// Who the stream's observations are about.
#[derive(Debug, Clone)]
pub(super) struct Meta {
    pub(super) instance: Arc<InstanceId>,
    pub(super) source: Arc<str>,
    pub(super) bot: Option<String>,
    /// Zone-less times are local times of this zone.
    pub(super) zone: LogZone,
}

/// When a stream tells the engine that its lines go on without saying anything about a
/// session ([`LogActivity`]): at most every [`LOG_ACTIVITY_EVERY_SECS`] of log time, and for
/// the last line at the end. Costs one comparison per line.
#[derive(Debug, Default)]
struct Activity {
    /// Off unless asked for ([`LogStream::with_activity`]).
    on: bool,
    /// No activity observation before this time.
    due: Option<Timestamp>,
    /// The latest line time the engine has not been told.
    pending: Option<Timestamp>,
}

impl Activity {
    /// A line at `at`; whether an observation of it is due (`matched`: it made one).
    fn line(&mut self, at: Timestamp, matched: bool) -> bool {
        if !self.on {
            return false;
        }
        if matched {
            if self.pending.is_some_and(|p| p <= at) {
                self.pending = None;
            }
            return false;
        }
        match self.due {
            Some(due) if at < due => {
                if self.pending.is_none_or(|p| at > p) {
                    self.pending = Some(at);
                }
                false
            }
            _ => {
                self.due = Some(at + TimeDelta::seconds(LOG_ACTIVITY_EVERY_SECS));
                self.pending = None;
                true
            }
        }
    }
}

/// Auto-detection of the library families a stream shows: after [`DETECT_MATCHES`] matched
/// lines (or [`DETECT_LINES`] lines with at least one match), only the rules of the families
/// seen are tried (user rules always are).
pub const DETECT_MATCHES: u32 = 50;
/// See [`DETECT_MATCHES`].
pub const DETECT_LINES: u32 = 5000;

#[derive(Debug, Clone, Default)]
struct Detect {
    lines: u32,
    matched: u32,
    seen: u64,
}

/// Per-stream buffers that grow to the longest line once, then are reused.
#[derive(Debug, Default)]
pub(super) struct Buffers {
    pub(super) scratch: MatchScratch,
    pub(super) redacted: Vec<u8>,
    /// A decoded structured line, or a continuation joined to its first line.
    pub(super) work: Vec<u8>,
    /// The current message so far (its first line and continuation lines), when its first line
    /// had a literal.
    pub(super) header: Vec<u8>,
    pub(super) header_ok: bool,
    /// The time of the current message's first line: a continuation line the framing did not
    /// recognise (a profile's `indent` continuation, space-led) takes it, as a tab-led one does.
    pub(super) message_at: Option<dge_core::observation::Timestamp>,
}

/// One file or pod stream: framer + compiled profile + instance.
#[derive(Debug)]
pub struct LogStream {
    framer: LineFramer,
    profile: Arc<CompiledProfile>,
    meta: Meta,
    counts: Counts,
    /// Boxed: the stream stays small in the containers that hold many.
    bufs: Box<Buffers>,
    last_malformed: Option<&'static str>,
    /// Families whose rules are tried (bit = group index).
    mask: u64,
    detect: Option<Detect>,
    /// The families auto-detection settled on.
    detected: Option<Vec<String>>,
    activity: Activity,
}

impl LogStream {
    pub fn new(
        profile: Arc<CompiledProfile>,
        framing: Framing,
        instance: InstanceId,
        source: String,
    ) -> Self {
        let detect = (profile.families().len() > 1).then(Detect::default);
        Self {
            framer: LineFramer::new(framing, DEFAULT_MAX_LINE_BYTES),
            profile,
            meta: Meta {
                instance: Arc::new(instance),
                source: source.into(),
                bot: None,
                zone: LogZone::Utc,
            },
            counts: Counts::default(),
            bufs: Box::default(),
            last_malformed: None,
            mask: u64::MAX,
            detect,
            detected: None,
            activity: Activity::default(),
        }
    }

    /// Read zone-less times (`[2026-04-19 04:12:26]`) as local times of `zone` (default UTC).
    /// Call before the first line.
    pub fn with_zone(mut self, zone: LogZone) -> Self {
        self.meta.zone = zone;
        self.framer =
            LineFramer::new(self.framer.framing(), self.framer.max_line_bytes()).with_zone(zone);
        self
    }

    /// Also push a [`LogActivity`] observation for lines no rule takes, at most one per
    /// [`LOG_ACTIVITY_EVERY_SECS`] of log time and one for the last line at
    /// [`finish`](Self::finish): the engine's time then reaches the log's last line, matched or
    /// not (replay; a live engine has the clock).
    pub fn with_activity(mut self, on: bool) -> Self {
        self.activity.on = on;
        self
    }

    /// The zone of zone-less times.
    pub fn zone(&self) -> LogZone {
        self.meta.zone
    }

    /// Turn library auto-detection off (every rule of the profile stays on) or back on.
    pub fn with_detection(mut self, on: bool) -> Self {
        self.detect = (on && self.profile.families().len() > 1).then(Detect::default);
        self
    }

    /// The library families auto-detection settled on; `None` while it is still looking (or
    /// when the profile has one family).
    pub fn detected(&self) -> Option<Vec<&str>> {
        self.detected
            .as_ref()
            .map(|v| v.iter().map(String::as_str).collect())
    }

    /// The bot for lines that do not name one (config / `--bot`).
    pub fn with_bot(mut self, bot: Option<String>) -> Self {
        self.meta.bot = bot;
        self
    }

    /// Bound on one logical line (default [`DEFAULT_MAX_LINE_BYTES`]). Call before the first
    /// line: it resets the framer.
    pub fn with_max_line_bytes(mut self, max: usize) -> Self {
        self.framer = LineFramer::new(self.framer.framing(), max).with_zone(self.meta.zone);
        self
    }

    pub fn profile(&self) -> &Arc<CompiledProfile> {
        &self.profile
    }

    pub fn instance(&self) -> &InstanceId {
        &self.meta.instance
    }

    pub fn source(&self) -> &str {
        &self.meta.source
    }

    pub fn bot(&self) -> Option<&str> {
        self.meta.bot.as_deref()
    }

    pub fn framing(&self) -> Framing {
        self.framer.framing()
    }

    /// Matched / ignored / malformed / truncated so far.
    pub fn counts(&self) -> &Counts {
        &self.counts
    }

    /// The reason of the last malformed line.
    pub fn last_malformed_reason(&self) -> Option<&'static str> {
        self.last_malformed
    }

    /// The time of the last line that had one (the stream's clock).
    pub fn last_at(&self) -> Option<Timestamp> {
        self.framer.last_at()
    }

    /// Whether a CRI partial (`P`) line is waiting for its end: the bytes read so far are not
    /// all accounted for (a positions file must not move past the partial's start).
    pub fn has_pending(&self) -> bool {
        self.framer.has_pending()
    }

    /// Feed one raw line (no trailing newline; a trailing `\r` is dropped). Pushes 0..1
    /// Observations and returns the line's outcome. A CRI `P` part is `Ignored` (counted in
    /// `partial` too); the line that completes it carries the joined line's outcome.
    pub fn push_line(&mut self, raw: &[u8], out: &mut Vec<Observation>) -> Outcome {
        self.step(raw, out, None)
    }

    /// Like [`push_line`](Self::push_line), and say how the line was classified.
    pub fn classify_line(&mut self, raw: &[u8], out: &mut Vec<Observation>) -> Classified {
        let mut c = Classified::new(Outcome::Ignored);
        c.outcome = self.step(raw, out, Some(&mut c));
        c
    }

    /// At the end of the stream: a CRI partial line that never got its `F` is matched as it is
    /// (counted as truncated, not as a physical line).
    pub fn finish(&mut self, out: &mut Vec<Observation>) {
        self.finish_inner(out, None);
    }

    /// Like [`finish`](Self::finish), and say how each flushed line was classified.
    pub fn classify_finish(&mut self, out: &mut Vec<Observation>) -> Vec<Classified> {
        let mut all = Vec::new();
        self.finish_inner(out, Some(&mut all));
        all
    }

    fn finish_inner(&mut self, out: &mut Vec<Observation>, mut all: Option<&mut Vec<Classified>>) {
        self.flush_activity(out);
        loop {
            let Self {
                framer,
                profile,
                meta,
                counts,
                bufs,
                last_malformed,
                mask,
                ..
            } = self;
            let Some(line) = framer.flush() else { break };
            counts.truncated += 1;
            let mut c = Classified::new(Outcome::Ignored);
            let want = all.is_some();
            let done = Eval {
                profile,
                meta,
                bufs,
                last_malformed,
                mask: *mask,
                detail: want.then_some(&mut c),
            }
            .line(line, out);
            if let Some(at) = done.new_time {
                self.framer.set_last_at(at);
            }
            if let Some(at) = done.at {
                self.activity.line(at, done.outcome == Outcome::Matched);
            }
            if let Some(all) = all.as_deref_mut() {
                c.outcome = done.outcome;
                c.note = Some(c.note.unwrap_or("unterminated partial"));
                all.push(c);
            }
        }
        self.flush_activity(out);
    }

    /// The last line's time, when the engine has not been told it yet.
    fn flush_activity(&mut self, out: &mut Vec<Observation>) {
        if let Some(at) = self.activity.pending.take() {
            out.push(self.activity_at(at));
        }
    }

    fn activity_at(&self, at: Timestamp) -> Observation {
        Observation {
            at,
            source: self.meta.source.clone(),
            body: Body::LogActivity(LogActivity {
                instance: self.meta.instance.clone(),
            }),
        }
    }

    fn step(
        &mut self,
        raw: &[u8],
        out: &mut Vec<Observation>,
        detail: Option<&mut Classified>,
    ) -> Outcome {
        let Self {
            framer,
            profile,
            meta,
            counts,
            bufs,
            last_malformed,
            mask,
            ..
        } = self;
        let (outcome, group, new_time, at) = match framer.push(raw) {
            Frame::Partial => {
                counts.partial += 1;
                if let Some(d) = detail {
                    d.note = Some("partial");
                }
                (Outcome::Ignored, None, None, None)
            }
            Frame::Malformed(reason) => {
                *last_malformed = Some(reason);
                if let Some(d) = detail {
                    d.note = Some(reason);
                }
                (Outcome::Malformed, None, None, None)
            }
            Frame::Line(line) => {
                if line.truncated {
                    counts.truncated += 1;
                }
                let done = Eval {
                    profile,
                    meta,
                    bufs,
                    last_malformed,
                    mask: *mask,
                    detail,
                }
                .line(line, out);
                if done.outcome == Outcome::Malformed {
                    counts.untimed += 1;
                }
                (done.outcome, done.group, done.new_time, done.at)
            }
        };
        if let Some(at) = new_time {
            self.framer.set_last_at(at);
        }
        if let Some(at) = at
            && self.activity.line(at, outcome == Outcome::Matched)
        {
            out.push(self.activity_at(at));
        }
        self.counts.add(outcome);
        if let Some(d) = &mut self.detect {
            d.lines += 1;
            if outcome == Outcome::Matched {
                d.matched += 1;
                if let Some(g) = group {
                    d.seen |= 1 << g;
                }
            }
            if d.matched >= DETECT_MATCHES || (d.lines >= DETECT_LINES && d.matched > 0) {
                let seen = d.seen;
                self.detect = None;
                if seen != 0 {
                    self.settle(seen);
                }
            }
        }
        outcome
    }
}

impl LogStream {
    /// Keep only the families in `seen`: the stream goes on with the narrowed profile (fewer
    /// literals), or, when it cannot be had, with a mask over the whole one.
    fn settle(&mut self, seen: u64) {
        let families = self.profile.families();
        self.detected = Some(
            families
                .iter()
                .enumerate()
                .filter(|(g, _)| seen & (1 << g) != 0)
                .map(|(_, f)| f.clone())
                .collect(),
        );
        match self.profile.narrowed(seen) {
            Some(p) => {
                self.profile = p;
                self.mask = u64::MAX;
                self.bufs.header_ok = false;
            }
            None => self.mask = seen,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logs::builtin_profile;

    fn stream(profile: &str, framing: Framing) -> LogStream {
        LogStream::new(
            builtin_profile(profile).unwrap(),
            framing,
            InstanceId::pod("bots", "agentbroker-0"),
            "test".into(),
        )
    }

    #[test]
    fn ignored_lines_do_not_grow_buffers() {
        let mut s = stream("auto", Framing::Auto).with_activity(true);
        let mut out = Vec::new();
        let line =
            b"2026-04-19T04:12:05.201377Z  INFO openab::discord: registered global slash commands";
        assert_eq!(s.push_line(line, &mut out), Outcome::Ignored);
        assert!(s.bufs.redacted.capacity() == 0 && s.bufs.scratch == MatchScratch::default());
        assert!(s.bufs.work.capacity() == 0 && s.bufs.header.capacity() == 0);
        // Only the news that the pod's log goes on.
        assert!(matches!(&out[..], [o] if matches!(o.body, Body::LogActivity(_))));
    }

    #[test]
    fn display_of_classified() {
        let mut s = stream("openab", Framing::Auto).with_bot(Some("fallback".into()));
        let mut out = Vec::new();
        let c = s.classify_line(
            b"2026-04-19T04:12:04.912640Z  INFO openab::discord: discord bot connected user=AgentBroker",
            &mut out,
        );
        assert_eq!(
            c.to_string(),
            "matched   openab.ready ready bot=AgentBroker at=2026-04-19T04:12:04.912640Z"
        );
        let c = s.classify_line(b"garbage without time", &mut out);
        assert_eq!(
            (c.outcome, c.at, c.would_be),
            (Outcome::Malformed, None, Some(Outcome::Ignored)),
            "a later line does not get the previous line's time"
        );
        assert_eq!(c.note, Some("no timestamp"));
        assert_eq!(c.to_string(), "malformed (no timestamp)");
        assert_eq!((s.counts().malformed, s.counts().untimed), (1, 1));
    }

    fn activity(out: &[Observation]) -> Vec<String> {
        out.iter()
            .filter(|o| matches!(o.body, Body::LogActivity(_)))
            .map(|o| o.at.format("%H:%M:%S").to_string())
            .collect()
    }

    #[test]
    fn unmatched_lines_advance_time() {
        let mut s = stream("openab", Framing::Auto).with_activity(true);
        let mut out = Vec::new();
        let log = "2026-04-19T04:00:00Z  INFO openab::discord: discord bot connected user=A\n\
                   2026-04-19T04:00:10Z DEBUG serenity: heartbeat\n\
                   2026-04-19T04:00:20Z DEBUG serenity: heartbeat\n\
                   2026-04-19T04:00:50Z DEBUG serenity: heartbeat\n\
                   no time: not a time to tell\n\
                   2026-04-19T04:01:30Z DEBUG serenity: heartbeat\n\
                   2026-04-19T04:03:05Z DEBUG serenity: heartbeat\n\
                   2026-04-19T04:03:15Z DEBUG serenity: heartbeat\n";
        crate::logs::read_log_bytes(log.as_bytes(), &mut s, &mut out);
        // At most one per 30 s of log time, and the last line's at the end.
        assert_eq!(
            activity(&out),
            ["04:00:10", "04:00:50", "04:01:30", "04:03:05", "04:03:15"]
        );
        // A matched line after the last one leaves nothing to tell.
        let mut s = stream("openab", Framing::Auto).with_activity(true);
        let mut out = Vec::new();
        let log = "2026-04-19T04:00:10Z DEBUG serenity: heartbeat\n\
                   2026-04-19T04:00:20Z DEBUG serenity: heartbeat\n\
                   2026-04-19T04:00:30Z  INFO openab::discord: discord bot connected user=A\n";
        crate::logs::read_log_bytes(log.as_bytes(), &mut s, &mut out);
        assert_eq!(activity(&out), ["04:00:10"]);
        assert_eq!(out.len(), 2);
        // Off by default.
        let mut s = stream("openab", Framing::Auto);
        let mut out = Vec::new();
        crate::logs::read_log_bytes(log.as_bytes(), &mut s, &mut out);
        assert_eq!(out.len(), 1);
    }
}
