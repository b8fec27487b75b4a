//! Bot log lines -> session Observations: container framing, ANSI, data-driven rule profiles.
//!
//! One [`LogStream`] per file or pod stream: its [`LineFramer`] turns physical lines into
//! logical lines with a time (kubectl / CRI prefixes, CRI partial joining, ANSI stripping), its
//! [`CompiledProfile`] (shared, `Arc`) turns them into [`SessionEvent`]s. Every physical line is
//! counted exactly once as matched, ignored or malformed (the `outcome` label of
//! `discord_gateway_exporter_log_lines_total`); nothing here panics on input or allocates for an
//! ignored line once the stream's buffers have grown.
//!
//! Tokens: a Discord-token-shaped string is replaced by `[REDACTED]` before the line is matched
//! by a regex, so neither the evidence line nor any captured field can hold one.

mod ansi;
pub mod framing;
mod memo;
pub mod profile;
mod redact;
pub mod structured;
mod time;

use std::fmt;
use std::sync::Arc;

use memchr::memchr_iter;

pub use framing::{DEFAULT_MAX_LINE_BYTES, Frame, FramedLine, Framing, LineFramer};
pub use profile::{
    Builtins, CAPTURE_NAMES, CompiledProfile, Continuation, Fields, Literals, MatchScratch,
    Placement, Profile, ProfileError, ProfileSet, Rule, RuleMatch, builtin_names, builtin_profile,
    builtins, compile_profile, compile_profile_with, library_names,
};
pub use redact::{REDACTED, redact_tokens};
pub use structured::{Format, StructuredFields};

use dge_core::observation::{
    Body, InstanceId, Observation, SessionEvent, SessionObservation, Timestamp,
};

/// Longest evidence line kept (bytes); longer lines are cut and end with `…`.
pub const MAX_EVIDENCE_BYTES: usize = 2048;

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
    /// except a partial flushed by [`LogStream::finish`], which has no physical line left).
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

    fn add(&mut self, outcome: Outcome) {
        match outcome {
            Outcome::Matched => self.matched += 1,
            Outcome::Ignored => self.ignored += 1,
            Outcome::Malformed => self.malformed += 1,
        }
    }
}

/// How one line was classified, for `parse` (see [`LogStream::classify_line`]).
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
    fn new(outcome: Outcome) -> Self {
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

/// Who the stream's observations are about.
#[derive(Debug, Clone)]
struct Meta {
    instance: Arc<InstanceId>,
    source: Arc<str>,
    bot: Option<String>,
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
struct Buffers {
    scratch: MatchScratch,
    redacted: Vec<u8>,
    /// A decoded structured line, or a continuation joined to its first line.
    work: Vec<u8>,
    /// The first line of the current message (continuation), when it had a literal.
    header: Vec<u8>,
    header_ok: bool,
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
            },
            counts: Counts::default(),
            bufs: Box::default(),
            last_malformed: None,
            mask: u64::MAX,
            detect,
            detected: None,
        }
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
        self.framer = LineFramer::new(self.framer.framing(), max);
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
            if let Some(all) = all.as_deref_mut() {
                c.outcome = done.outcome;
                c.note = Some(c.note.unwrap_or("unterminated partial"));
                all.push(c);
            }
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
        let (outcome, group, new_time) = match framer.push(raw) {
            Frame::Partial => {
                counts.partial += 1;
                if let Some(d) = detail {
                    d.note = Some("partial");
                }
                (Outcome::Ignored, None, None)
            }
            Frame::Malformed(reason) => {
                *last_malformed = Some(reason);
                if let Some(d) = detail {
                    d.note = Some(reason);
                }
                (Outcome::Malformed, None, None)
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
                (done.outcome, done.group, done.new_time)
            }
        };
        if let Some(at) = new_time {
            self.framer.set_last_at(at);
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

/// What came of one logical line.
struct Done {
    outcome: Outcome,
    /// The matched rule's family.
    group: Option<u8>,
    /// A time read from the line's content (JSON / logfmt) for the framer's clock.
    new_time: Option<Timestamp>,
}

impl Done {
    fn ignored() -> Self {
        Self {
            outcome: Outcome::Ignored,
            group: None,
            new_time: None,
        }
    }
}

/// Matching one logical line, over the stream's parts.
struct Eval<'s, 'd> {
    profile: &'s CompiledProfile,
    meta: &'s Meta,
    bufs: &'s mut Buffers,
    last_malformed: &'s mut Option<&'static str>,
    mask: u64,
    detail: Option<&'d mut Classified>,
}

fn note(detail: &mut Option<&mut Classified>, note: &'static str) {
    if let Some(d) = detail.as_deref_mut() {
        d.note = Some(note);
    }
}

impl Eval<'_, '_> {
    fn line(self, line: FramedLine<'_>, out: &mut Vec<Observation>) -> Done {
        let Eval {
            profile,
            meta,
            bufs,
            last_malformed,
            mask,
            mut detail,
        } = self;
        let raw = line.text;
        // A tab-led line continues the message of the last line that was not one.
        let cont = raw.first() == Some(&b'\t') && profile.continues(mask);
        let mut fmt = if cont {
            Format::Text
        } else {
            structured::line_format(raw, profile.format())
        };
        let mut at = line.at;
        let mut new_time = None;
        if fmt != Format::Text
            && !line.own_time
            && let Some(t) = structured::line_time(raw, fmt, profile.structured_fields())
        {
            at = Some(t);
            new_time = Some(t);
        }
        if let Some(d) = detail.as_deref_mut() {
            d.at = at;
            d.truncated = line.truncated;
        }
        let Some(at) = at else {
            if raw.iter().all(u8::is_ascii_whitespace) {
                note(&mut detail, "blank");
                return Done::ignored();
            }
            *last_malformed = Some("no timestamp");
            note(&mut detail, "no timestamp");
            return Done {
                outcome: Outcome::Malformed,
                group: None,
                new_time: None,
            };
        };
        let ignored = |detail: &mut Option<&mut Classified>, why| {
            note(detail, why);
            Done {
                new_time,
                ..Done::ignored()
            }
        };
        let Buffers {
            scratch,
            redacted,
            work,
            header,
            header_ok,
        } = bufs;
        if !cont {
            *header_ok = false;
        }
        // The hot path: a line without any rule's literal ends here, without allocating.
        let (text, min_end): (&[u8], usize) = if cont {
            if !*header_ok {
                return ignored(&mut detail, "continuation");
            }
            work.clear();
            work.extend_from_slice(header);
            work.push(b'\n');
            work.extend_from_slice(raw);
            if !profile.prefilter(work, scratch) {
                return ignored(&mut detail, "no literal");
            }
            (work.as_slice(), header.len() + 1)
        } else {
            if !profile.prefilter(raw, scratch) {
                return ignored(&mut detail, "no literal");
            }
            let decoded = match fmt {
                Format::Json => structured::render_json(raw, profile.structured_fields(), work),
                Format::Logfmt => structured::render_logfmt(raw, profile.structured_fields(), work),
                _ => false,
            };
            if decoded {
                if !profile.prefilter(work, scratch) {
                    return ignored(&mut detail, "no literal");
                }
                (work.as_slice(), 0)
            } else {
                // Not really JSON / logfmt after all: read as text.
                fmt = Format::Text;
                if profile.continues(mask) {
                    header.clear();
                    header.extend_from_slice(raw);
                    *header_ok = true;
                }
                (raw, 0)
            }
        };
        let _ = fmt;
        let text: &[u8] = if redact::redact_into(text, redacted) {
            redacted
        } else {
            text
        };
        let Some(m) = profile.match_in(text, scratch, true, detail.is_some(), mask, min_end) else {
            return ignored(&mut detail, "no regex matched");
        };
        let bot = m.bot.or_else(|| meta.bot.clone());
        if let Some(d) = detail.as_deref_mut() {
            d.rule = Some(m.rule.to_owned());
            d.event.clone_from(&m.event);
            d.bot.clone_from(&bot);
            d.shard = m.shard;
            d.captures = m.captures;
        }
        let Some(event) = m.event else {
            return ignored(&mut detail, "ignore rule");
        };
        out.push(Observation {
            at,
            source: meta.source.clone(),
            body: Body::Session(SessionObservation {
                bot,
                instance: meta.instance.clone(),
                shard: m.shard,
                event,
                line: Some(evidence(text)),
            }),
        });
        Done {
            outcome: Outcome::Matched,
            group: m.group,
            new_time,
        }
    }
}

/// The evidence text: lossy UTF-8, bounded.
fn evidence(text: &[u8]) -> String {
    let text = text.trim_ascii_end();
    if text.len() <= MAX_EVIDENCE_BYTES {
        // Valid UTF-8 (nearly every line) is checked much faster than the lossy path walks it.
        return match std::str::from_utf8(text) {
            Ok(s) => s.to_owned(),
            Err(_) => String::from_utf8_lossy(text).into_owned(),
        };
    }
    let mut cut = MAX_EVIDENCE_BYTES;
    // Do not split a UTF-8 sequence: back up over continuation bytes.
    while cut > 0 && (text[cut] & 0xc0) == 0x80 {
        cut -= 1;
    }
    let mut s = String::from_utf8_lossy(&text[..cut]).into_owned();
    s.push('…');
    s
}

/// Call `f` with each line of `bytes` (split on `\n`, a trailing `\r` removed; a last line
/// without `\n` included, an empty tail after the last `\n` not).
pub fn for_each_line(bytes: &[u8], mut f: impl FnMut(&[u8])) {
    let strip = |l: &[u8]| -> usize { l.len() - usize::from(l.last() == Some(&b'\r')) };
    let mut start = 0;
    for nl in memchr_iter(b'\n', bytes) {
        let line = &bytes[start..nl];
        f(&line[..strip(line)]);
        start = nl + 1;
    }
    if start < bytes.len() {
        let line = &bytes[start..];
        f(&line[..strip(line)]);
    }
}

/// Read a whole captured log: every line, then [`LogStream::finish`] (a pending CRI partial is
/// flushed). For a live tail, feed complete lines to [`LogStream::push_line`] instead.
pub fn read_log_bytes(bytes: &[u8], stream: &mut LogStream, out: &mut Vec<Observation>) {
    for_each_line(bytes, |line| {
        stream.push_line(line, out);
    });
    stream.finish(out);
}

/// Like [`read_log_bytes`], and report how each line was classified: `f(line_number, how)`
/// (1-based; a partial flushed at the end carries the last line's number).
pub fn classify_log_bytes(
    bytes: &[u8],
    stream: &mut LogStream,
    out: &mut Vec<Observation>,
    mut f: impl FnMut(usize, Classified),
) {
    let mut n = 0;
    for_each_line(bytes, |line| {
        n += 1;
        f(n, stream.classify_line(line, out));
    });
    for c in stream.classify_finish(out) {
        f(n, c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(profile: &str, framing: Framing) -> LogStream {
        LogStream::new(
            builtin_profile(profile).unwrap(),
            framing,
            InstanceId::pod("bots", "agentbroker-0"),
            "test".into(),
        )
    }

    #[test]
    fn split_lines() {
        let mut lines = Vec::new();
        for_each_line(b"a\r\nb\n\nc", |l| lines.push(l.to_vec()));
        assert_eq!(
            lines,
            vec![b"a".to_vec(), b"b".to_vec(), b"".to_vec(), b"c".to_vec()]
        );
        lines.clear();
        for_each_line(b"a\n", |l| lines.push(l.to_vec()));
        assert_eq!(lines, vec![b"a".to_vec()]);
        lines.clear();
        for_each_line(b"", |l| lines.push(l.to_vec()));
        assert!(lines.is_empty());
    }

    #[test]
    fn evidence_is_bounded() {
        let long = "é".repeat(MAX_EVIDENCE_BYTES);
        let e = evidence(long.as_bytes());
        assert!(e.len() <= MAX_EVIDENCE_BYTES + '…'.len_utf8());
        assert!(e.ends_with('…'));
        assert!(!e.contains('\u{fffd}'));
        assert_eq!(evidence(b"ok \xff  "), "ok \u{fffd}");
    }

    #[test]
    fn ignored_lines_do_not_grow_buffers() {
        let mut s = stream("auto", Framing::Auto);
        let mut out = Vec::new();
        let line =
            b"2026-04-19T04:12:05.201377Z  INFO openab::discord: registered global slash commands";
        assert_eq!(s.push_line(line, &mut out), Outcome::Ignored);
        assert!(s.bufs.redacted.capacity() == 0 && s.bufs.scratch == MatchScratch::default());
        assert!(s.bufs.work.capacity() == 0 && s.bufs.header.capacity() == 0);
        assert!(out.is_empty());
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
            "matched   openab.ready ready bot=AgentBroker at=2026-04-19T04:12:04.912640Z [bot=\"AgentBroker\"]"
        );
        let c = s.classify_line(b"garbage without time", &mut out);
        assert_eq!(
            c.outcome,
            Outcome::Ignored,
            "a later line has the previous line's time"
        );
        assert_eq!(c.note, Some("no literal"));
    }
}
