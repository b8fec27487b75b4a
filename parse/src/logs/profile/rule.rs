//! One rule compiled: which event it means, which captures fill which field, and building the
//! event from a match.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use regex::bytes::{Captures, Regex, RegexBuilder};

use super::compiled::RuleMatch;
use super::vars::substitute;
use super::{Fields, ProfileError, Rule};
use crate::logs::memo::Confirmer;
use dge_core::observation::SessionEvent;

/// Longest captured value kept (bytes); longer values are cut.
const MAX_CAPTURE_BYTES: usize = 200;

/// Capture names a rule's regex may use.
pub const CAPTURE_NAMES: [&str; 13] = [
    "bot",
    "shard",
    "session_id",
    "code",
    "kind",
    "reason",
    "resumable",
    "sequence",
    "millis",
    "seconds",
    "total",
    "remaining",
    "reset_after",
];
/// The event a rule produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum EventKind {
    Starting,
    Identifying,
    Ready,
    Resumed,
    Dispatch,
    HeartbeatAck,
    Heartbeat,
    HeartbeatMissed,
    Stalled,
    IdentifyThrottled,
    Resuming,
    SessionLimit,
    Reconnecting,
    InvalidSession,
    Closed,
    Fatal,
    ShuttingDown,
    Stopped,
    /// Swallow the line (shown by `parse`, no observation).
    Ignore,
}

impl EventKind {
    pub(super) const ALL: [EventKind; 19] = [
        Self::Starting,
        Self::Identifying,
        Self::Ready,
        Self::Resumed,
        Self::Dispatch,
        Self::HeartbeatAck,
        Self::Heartbeat,
        Self::HeartbeatMissed,
        Self::Stalled,
        Self::IdentifyThrottled,
        Self::Resuming,
        Self::SessionLimit,
        Self::Reconnecting,
        Self::InvalidSession,
        Self::Closed,
        Self::Fatal,
        Self::ShuttingDown,
        Self::Stopped,
        Self::Ignore,
    ];

    /// The rule schema's event names: [`SessionEvent::name`] plus `ignore`.
    pub(super) fn name(self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Identifying => "identifying",
            Self::Ready => "ready",
            Self::Resumed => "resumed",
            Self::Dispatch => "dispatch",
            Self::HeartbeatAck => "heartbeat_ack",
            Self::Heartbeat => "heartbeat",
            Self::HeartbeatMissed => "heartbeat_missed",
            Self::Stalled => "stalled",
            Self::IdentifyThrottled => "identify_throttled",
            Self::Resuming => "resuming",
            Self::SessionLimit => "session_limit",
            Self::Reconnecting => "reconnecting",
            Self::InvalidSession => "invalid_session",
            Self::Closed => "closed",
            Self::Fatal => "fatal",
            Self::ShuttingDown => "shutting_down",
            Self::Stopped => "stopped",
            Self::Ignore => "ignore",
        }
    }

    pub(super) fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == s)
    }

    /// Which fields (besides bot and shard) the event takes.
    fn takes(self, field: &str) -> bool {
        matches!(
            (self, field),
            (_, "bot" | "shard")
                | (Self::Ready, "session_id")
                | (Self::Closed | Self::Fatal, "code")
                | (Self::Dispatch, "kind")
                | (Self::Fatal, "reason")
                | (Self::InvalidSession, "resumable")
                | (Self::Heartbeat, "sequence")
                | (
                    Self::Stalled | Self::IdentifyThrottled,
                    "millis" | "seconds"
                )
                | (Self::SessionLimit, "total" | "remaining" | "reset_after")
        )
    }

    pub(super) fn build(self, v: Values, rule: &str) -> Option<SessionEvent> {
        Some(match self {
            Self::Starting => SessionEvent::Starting,
            Self::Identifying => SessionEvent::Identifying,
            Self::Ready => SessionEvent::Ready {
                session_id: v.session_id,
            },
            Self::Resumed => SessionEvent::Resumed,
            Self::Dispatch => SessionEvent::Dispatch { kind: v.kind },
            Self::HeartbeatAck => SessionEvent::HeartbeatAck,
            Self::Heartbeat => SessionEvent::Heartbeat {
                sequence: v.sequence,
            },
            Self::HeartbeatMissed => SessionEvent::HeartbeatMissed,
            Self::Stalled => SessionEvent::Stalled {
                behind_ms: v.millis,
            },
            Self::IdentifyThrottled => SessionEvent::IdentifyThrottled { wait_ms: v.millis },
            Self::Resuming => SessionEvent::Resuming,
            Self::SessionLimit => SessionEvent::SessionLimit {
                total: v.total,
                remaining: v.remaining,
                reset_after_ms: v.reset_after,
            },
            Self::Reconnecting => SessionEvent::Reconnecting,
            Self::InvalidSession => SessionEvent::InvalidSession {
                resumable: v.resumable.unwrap_or(false),
            },
            Self::Closed => SessionEvent::Closed { code: v.code },
            Self::Fatal => SessionEvent::Fatal {
                reason: v.reason.unwrap_or_else(|| rule.to_owned()),
                code: v.code,
            },
            Self::ShuttingDown => SessionEvent::ShuttingDown,
            Self::Stopped => SessionEvent::Stopped,
            Self::Ignore => return None,
        })
    }
}

/// Field values of one match.
#[derive(Debug, Default)]
pub(super) struct Values {
    session_id: Option<String>,
    kind: Option<std::sync::Arc<str>>,
    code: Option<u16>,
    reason: Option<String>,
    resumable: Option<bool>,
    sequence: Option<u64>,
    /// A duration in milliseconds (from a `millis` or a `seconds` capture).
    millis: Option<u64>,
    total: Option<u32>,
    remaining: Option<u32>,
    /// Milliseconds until the start limit resets.
    reset_after: Option<u64>,
}

/// Capture group indices of the known names.
#[derive(Debug, Default, Clone, Copy)]
struct Groups {
    bot: Option<usize>,
    shard: Option<usize>,
    session_id: Option<usize>,
    code: Option<usize>,
    kind: Option<usize>,
    reason: Option<usize>,
    resumable: Option<usize>,
    sequence: Option<usize>,
    millis: Option<usize>,
    seconds: Option<usize>,
    total: Option<usize>,
    remaining: Option<usize>,
    reset_after: Option<usize>,
}

/// A rule's regex: its capture names known when the profile loads, the regex itself built
/// then (a user's rule: its errors are the loader's) or on first use (a compiled-in rule: a
/// log shows few libraries, and building every built-in regex was three quarters of the
/// start-up, docs/performance.md).
#[derive(Debug)]
pub(super) struct RuleRegex {
    pattern: String,
    /// Capture names by group index (0: the whole match).
    names: Vec<Option<String>>,
    /// `None` inside: the regex could not be built (the rule never matches).
    built: OnceLock<Option<Regex>>,
}

impl RuleRegex {
    fn new(pattern: String, eager: bool) -> Result<Self, regex::Error> {
        if eager {
            let re = Self::build_from(&pattern)?;
            let names = re.capture_names().map(|n| n.map(str::to_owned)).collect();
            return Ok(Self {
                pattern,
                names,
                built: OnceLock::from(Some(re)),
            });
        }
        // The syntax tree names the groups; the rest is checked when the regex is built (for
        // the compiled-in rules, by the tests).
        let ast = regex_syntax::ast::parse::Parser::new()
            .parse(&pattern)
            .map_err(|e| regex::Error::Syntax(e.to_string()))?;
        let mut names = vec![None];
        capture_names(&ast, &mut names);
        Ok(Self {
            pattern,
            names,
            built: OnceLock::new(),
        })
    }

    fn build_from(pattern: &str) -> Result<Regex, regex::Error> {
        RegexBuilder::new(pattern).unicode(false).build()
    }

    /// The regex (built now if not yet); `None` if it cannot be.
    pub(super) fn get(&self) -> Option<&Regex> {
        self.built
            .get_or_init(|| Self::build_from(&self.pattern).ok())
            .as_ref()
    }

    /// Groups, the whole match included (1: no capture group).
    pub(super) fn captures_len(&self) -> usize {
        self.names.len()
    }

    /// Capture names by group index.
    pub(super) fn capture_names(&self) -> impl Iterator<Item = Option<&str>> {
        self.names.iter().map(Option::as_deref)
    }
}

/// The capture groups of `ast` into `names`, at their group index (the regex crate's order).
fn capture_names(ast: &regex_syntax::ast::Ast, names: &mut Vec<Option<String>>) {
    use regex_syntax::ast::{Ast, GroupKind};
    match ast {
        Ast::Group(g) => {
            let (index, name) = match &g.kind {
                GroupKind::CaptureIndex(i) => (Some(*i), None),
                GroupKind::CaptureName { name, .. } => (Some(name.index), Some(name.name.clone())),
                GroupKind::NonCapturing(_) => (None, None),
            };
            if let Some(i) = index {
                let i = i as usize;
                if names.len() <= i {
                    names.resize(i + 1, None);
                }
                names[i] = name;
            }
            capture_names(&g.ast, names);
        }
        Ast::Concat(c) => c.asts.iter().for_each(|a| capture_names(a, names)),
        Ast::Alternation(a) => a.asts.iter().for_each(|a| capture_names(a, names)),
        Ast::Repetition(r) => capture_names(&r.ast, names),
        _ => {}
    }
}

#[derive(Debug)]
pub(super) struct CompiledRule {
    pub(super) name: String,
    pub(super) regex: Option<RuleRegex>,
    pub(super) event: EventKind,
    fields: Fields,
    groups: Groups,
    /// Library family index (`None`: a user rule, always tried).
    pub(super) group: Option<u8>,
    /// The regex reads a line break (a rule for continued messages).
    pub(super) continued: bool,
    /// The regex as a memoized lazy DFA, built on first use (capture-free rules).
    confirmer: OnceLock<Option<Confirmer>>,
}

impl CompiledRule {
    pub(super) fn new(rule: &Rule, vars: &BTreeMap<String, String>) -> Result<Self, ProfileError> {
        let name = rule.name.as_str();
        let event = EventKind::parse(&rule.event).ok_or_else(|| {
            let known: Vec<&str> = EventKind::ALL.iter().map(|k| k.name()).collect();
            ProfileError::rule(
                name,
                format!(
                    "unknown event {:?} (known: {})",
                    rule.event,
                    known.join(", ")
                ),
            )
        })?;
        let f = &rule.fields;
        let fixed = [
            ("bot", f.bot.is_some()),
            ("shard", f.shard.is_some()),
            ("session_id", f.session_id.is_some()),
            ("code", f.code.is_some()),
            ("kind", f.kind.is_some()),
            ("reason", f.reason.is_some()),
            ("resumable", f.resumable.is_some()),
        ];
        for (field, set) in fixed {
            if set && !event.takes(field) {
                return Err(ProfileError::rule(
                    name,
                    format!("field {field} does not apply to event {}", rule.event),
                ));
            }
        }
        let mut groups = Groups::default();
        let mut continued = false;
        let regex = match &rule.regex {
            None => None,
            Some(src) => {
                let expanded = substitute(src, vars).map_err(|m| ProfileError::rule(name, m))?;
                continued = expanded.contains("\\n");
                let re = RuleRegex::new(expanded, !rule.compiled_in)
                    .map_err(|e| ProfileError::regex(name, &e))?;
                for (i, cap) in re.capture_names().enumerate() {
                    let Some(cap) = cap else { continue };
                    let slot = match cap {
                        "bot" => &mut groups.bot,
                        "shard" => &mut groups.shard,
                        "session_id" => &mut groups.session_id,
                        "code" => &mut groups.code,
                        "kind" => &mut groups.kind,
                        "reason" => &mut groups.reason,
                        "resumable" => &mut groups.resumable,
                        "sequence" => &mut groups.sequence,
                        "millis" => &mut groups.millis,
                        "seconds" => &mut groups.seconds,
                        "total" => &mut groups.total,
                        "remaining" => &mut groups.remaining,
                        "reset_after" => &mut groups.reset_after,
                        other => {
                            return Err(ProfileError::rule(
                                name,
                                format!(
                                    "unknown capture name {other:?} (known: {})",
                                    CAPTURE_NAMES.join(", ")
                                ),
                            ));
                        }
                    };
                    if !event.takes(cap) {
                        return Err(ProfileError::rule(
                            name,
                            format!("capture {cap} does not apply to event {}", rule.event),
                        ));
                    }
                    *slot = Some(i);
                }
                Some(re)
            }
        };
        if event == EventKind::Fatal && f.reason.is_none() && groups.reason.is_none() {
            return Err(ProfileError::rule(
                name,
                "a fatal rule needs a reason (fields.reason or a (?P<reason>..) capture)",
            ));
        }
        if event == EventKind::InvalidSession && f.resumable.is_none() && groups.resumable.is_none()
        {
            return Err(ProfileError::rule(
                name,
                "an invalid_session rule needs resumable (fields.resumable or a (?P<resumable>..) capture)",
            ));
        }
        Ok(Self {
            name: rule.name.clone(),
            regex,
            event,
            fields: rule.fields.clone(),
            groups,
            group: None,
            continued,
            confirmer: OnceLock::new(),
        })
    }

    /// Build the match from the captures (if the rule has a regex).
    /// The memoized lazy DFA of a capture-free regex (`None` with captures, or if it cannot
    /// be built).
    pub(super) fn confirmer(&self) -> Option<&Confirmer> {
        self.confirmer
            .get_or_init(|| {
                let re = self.regex.as_ref()?;
                (re.captures_len() == 1)
                    .then(|| Confirmer::new(&re.pattern))
                    .flatten()
            })
            .as_ref()
    }

    pub(super) fn build(&self, caps: Option<&Captures<'_>>, want_captures: bool) -> RuleMatch<'_> {
        let get = |g: Option<usize>| -> Option<&[u8]> {
            let m = caps?.get(g?)?;
            Some(m.as_bytes())
        };
        let text = |g: Option<usize>| get(g).map(capture_text).filter(|s| !s.is_empty());
        let f = &self.fields;
        let shard = match get(self.groups.shard) {
            Some(raw) => parse_num::<u32>(raw),
            None => f.shard,
        };
        let values = Values {
            session_id: text(self.groups.session_id).or_else(|| f.session_id.clone()),
            kind: text(self.groups.kind)
                .map(Into::into)
                .or_else(|| f.kind.clone()),
            code: get(self.groups.code).and_then(parse_num::<u16>).or(f.code),
            reason: text(self.groups.reason).or_else(|| f.reason.clone()),
            resumable: get(self.groups.resumable)
                .and_then(parse_bool)
                .or(f.resumable),
            sequence: get(self.groups.sequence).and_then(parse_num::<u64>),
            millis: get(self.groups.millis)
                .and_then(parse_millis)
                .or_else(|| get(self.groups.seconds).and_then(parse_seconds_as_millis)),
            total: get(self.groups.total).and_then(parse_num::<u32>),
            remaining: get(self.groups.remaining).and_then(parse_num::<u32>),
            reset_after: get(self.groups.reset_after).and_then(parse_millis),
        };
        let mut captures = Vec::new();
        if let (true, Some(caps), Some(re)) = (want_captures, caps, &self.regex) {
            for (i, name) in re.capture_names().enumerate() {
                if let (Some(name), Some(m)) = (name, caps.get(i)) {
                    captures.push((name.to_owned(), capture_text(m.as_bytes())));
                }
            }
        }
        RuleMatch {
            rule: &self.name,
            group: self.group,
            bot: text(self.groups.bot).or_else(|| f.bot.clone()),
            shard,
            event: self.event.build(values, &self.name),
            captures,
        }
    }
}

/// A captured value as text: lossy UTF-8, one pair of surrounding quotes removed, bounded.
fn capture_text(raw: &[u8]) -> String {
    let mut v = raw.trim_ascii();
    if let [a @ (b'"' | b'\''), inner @ .., b] = v
        && a == b
    {
        v = inner;
    }
    let v = &v[..v.len().min(MAX_CAPTURE_BYTES)];
    String::from_utf8_lossy(v).into_owned()
}

/// Milliseconds, whole or with a fraction (`1234`, `1234.5`).
fn parse_millis(raw: &[u8]) -> Option<u64> {
    let ms: f64 = std::str::from_utf8(raw.trim_ascii()).ok()?.parse().ok()?;
    (0.0..1e15).contains(&ms).then(|| ms.round() as u64)
}

/// Seconds (`2.5`) as milliseconds.
fn parse_seconds_as_millis(raw: &[u8]) -> Option<u64> {
    let s: f64 = std::str::from_utf8(raw.trim_ascii()).ok()?.parse().ok()?;
    (0.0..1e12)
        .contains(&s)
        .then(|| (s * 1000.0).round() as u64)
}

fn parse_num<T: std::str::FromStr>(raw: &[u8]) -> Option<T> {
    std::str::from_utf8(raw.trim_ascii()).ok()?.parse().ok()
}

fn parse_bool(raw: &[u8]) -> Option<bool> {
    let s = std::str::from_utf8(raw.trim_ascii()).ok()?;
    match s.to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" => Some(true),
        "false" | "no" | "0" => Some(false),
        _ => None,
    }
}
