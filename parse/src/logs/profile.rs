//! Rule profiles as data: which log lines mean which [`SessionEvent`].
//!
//! A profile is a list of rules (TOML, see `parse/profiles/*.toml`):
//!
//! ```toml
//! name = "mylib"
//! [vars]                      # regex fragments, used as ${name} in regexes (and other vars)
//! prefix = '^\S+ (?:INFO|WARN) mylib: '
//! [[rule]]
//! name = "mylib.ready"        # unique; shown by `parse`
//! literal = "connected as"    # or a list: any of them makes the rule a candidate
//! regex = '${prefix}connected as (?P<bot>\S+) on shard (?P<shard>\d+)'   # optional
//! event = "ready"             # a SessionEvent name, or "ignore" (swallow the line)
//! fields = { session_id = "x" }                                           # optional
//! ```
//!
//! Named captures fill the event: `bot`, `shard` (a number; `None` = no shard),
//! `session_id` (ready), `code` (closed, fatal), `kind` (dispatch), `reason` (fatal),
//! `resumable` (invalid_session: true/false). `fields` gives the same values fixed; a capture
//! that took part in the match wins over the fixed value. `fatal` needs a `reason` and
//! `invalid_session` a `resumable`, fixed or captured.
//!
//! Matching: one multi-literal search over all literals (Teddy, or the Aho-Corasick automaton
//! when Teddy cannot be built). A line without any literal is
//! ignored without running a regex; otherwise the candidate rules' regexes run in rule order
//! and the first match wins. Regexes run on bytes with Unicode classes off (`\w`, `\d`, `\s`
//! and `.` are ASCII/byte-wise; `(?u)` turns them back on), so invalid UTF-8 never stops a
//! match.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, OnceLock};

use aho_corasick::{AhoCorasick, MatchKind};
use regex::bytes::{Captures, Regex, RegexBuilder};
use serde::{Deserialize, Serialize};

use super::memo::Confirmer;
use super::structured::{Format, StructuredFields};
use dge_core::observation::SessionEvent;

/// Names of the built-in profiles. `auto` is every library profile together (and decodes JSON
/// and logfmt lines by their first bytes); `tracing-json`, `logfmt` and `json` are the library
/// rules behind a structured decoder.
pub const BUILTIN_PROFILES: [&str; 10] = [
    "auto",
    "openab",
    "serenity",
    "twilight",
    "discordpy",
    "discordjs",
    "jda",
    "tracing-json",
    "logfmt",
    "json",
];

/// The library profiles that make up `auto`, in matching order.
pub const LIBRARY_PROFILES: [&str; 6] = [
    "openab",
    "serenity",
    "twilight",
    "discordpy",
    "discordjs",
    "jda",
];

const COMMON_TOML: &str = include_str!("../../profiles/common.toml");
const BUILTIN_TOML: [(&str, &str); 9] = [
    ("openab", include_str!("../../profiles/openab.toml")),
    ("serenity", include_str!("../../profiles/serenity.toml")),
    ("twilight", include_str!("../../profiles/twilight.toml")),
    ("discordpy", include_str!("../../profiles/discordpy.toml")),
    ("discordjs", include_str!("../../profiles/discordjs.toml")),
    ("jda", include_str!("../../profiles/jda.toml")),
    (
        "tracing-json",
        include_str!("../../profiles/tracing-json.toml"),
    ),
    ("logfmt", include_str!("../../profiles/logfmt.toml")),
    ("json", include_str!("../../profiles/json.toml")),
];

/// Most families one compiled profile tells apart (a bit each in a stream's mask).
pub const MAX_FAMILIES: usize = 63;

/// Longest captured value kept (bytes); longer values are cut.
const MAX_CAPTURE_BYTES: usize = 200;

/// Capture names a rule's regex may use.
pub const CAPTURE_NAMES: [&str; 7] = [
    "bot",
    "shard",
    "session_id",
    "code",
    "kind",
    "reason",
    "resumable",
];

/// A rule's prefilter: one literal or several.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Literals {
    One(String),
    Many(Vec<String>),
}

impl Literals {
    pub fn as_slice(&self) -> &[String] {
        match self {
            Self::One(s) => std::slice::from_ref(s),
            Self::Many(v) => v,
        }
    }
}

impl From<&str> for Literals {
    fn from(s: &str) -> Self {
        Self::One(s.to_owned())
    }
}

/// Fixed event fields of a rule.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fields {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bot: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<u16>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<std::sync::Arc<str>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resumable: Option<bool>,
}

/// One line rule (the same schema for built-in and user rules).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    pub name: String,
    pub literal: Literals,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regex: Option<String>,
    /// A [`SessionEvent::name`], or `ignore`.
    pub event: String,
    #[serde(default)]
    pub fields: Fields,
    /// The library family of a built-in rule (set when profiles are merged; user rules have
    /// none and are always tried).
    #[serde(skip)]
    family: Option<String>,
}

impl Rule {
    /// A rule without regex and fields.
    pub fn new(
        name: impl Into<String>,
        literal: impl Into<String>,
        event: impl Into<String>,
    ) -> Self {
        Self {
            name: name.into(),
            literal: Literals::One(literal.into()),
            regex: None,
            event: event.into(),
            fields: Fields::default(),
            family: None,
        }
    }

    pub fn with_regex(mut self, regex: impl Into<String>) -> Self {
        self.regex = Some(regex.into());
        self
    }

    pub fn with_fields(mut self, fields: Fields) -> Self {
        self.fields = fields;
        self
    }
}

/// Where user rules go relative to a profile's own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Placement {
    /// Tried before the profile's rules (to override them).
    Before,
    /// Tried after them (to add lines they do not know).
    #[default]
    After,
}

/// How a line that starts with a tab relates to the line before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Continuation {
    /// A line starting with a tab continues the message of the last line that did not (the
    /// discord.js debug layout): it is matched as `first line \n this line`.
    Tab,
}

/// A profile as data (not yet compiled).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    pub name: String,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// The library family (auto-detection keeps the families a stream shows); default: the
    /// profile's name. OpenAB and serenity are one family (OpenAB logs serenity's lines).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub family: String,
    /// Built-in profiles whose rules (and vars) come first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include: Vec<String>,
    /// How lines are encoded (text, JSON, logfmt; `auto` by each line's first bytes).
    #[serde(default)]
    pub format: Format,
    /// Which keys of a structured line hold the time, level, message and target.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json: Option<StructuredFields>,
    /// Continuation lines (discord.js: tab-led).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continuation: Option<Continuation>,
    /// Regex fragments, `${name}` in regexes and other vars.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub vars: BTreeMap<String, String>,
    #[serde(default, rename = "rule", alias = "rules")]
    pub rules: Vec<Rule>,
}

/// Why a profile or rule cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProfileError {
    #[error("profile {profile:?}: {message}")]
    Parse { profile: String, message: String },
    #[error(
        "unknown profile {0:?} (built-in: auto, openab, serenity, twilight, discordpy, discordjs, jda, tracing-json, logfmt, json)"
    )]
    UnknownProfile(String),
    #[error("rule {rule:?}: {message}")]
    Rule { rule: String, message: String },
    #[error("rule {rule:?}: bad regex{}: {message}", position.map(|p| format!(" at column {p}")).unwrap_or_default())]
    Regex {
        rule: String,
        /// 1-based column in the regex (after `${var}` expansion), when the parser says.
        position: Option<usize>,
        message: String,
    },
    #[error("var {var:?}: {message}")]
    Var { var: String, message: String },
}

impl ProfileError {
    fn rule(rule: &str, message: impl Into<String>) -> Self {
        Self::Rule {
            rule: rule.to_owned(),
            message: message.into(),
        }
    }

    fn regex(rule: &str, err: &regex::Error) -> Self {
        let (position, message) = match err {
            regex::Error::Syntax(text) => describe_syntax_error(text),
            other => (None, other.to_string()),
        };
        Self::Regex {
            rule: rule.to_owned(),
            position,
            message,
        }
    }
}

/// `regex::Error::Syntax` text is `regex parse error:\n    <pattern>\n    ^^^\nerror: <msg>`:
/// take the caret column and the message.
fn describe_syntax_error(text: &str) -> (Option<usize>, String) {
    let mut position = None;
    let mut message = None;
    let lines: Vec<&str> = text.lines().collect();
    for (i, l) in lines.iter().enumerate() {
        if let Some(m) = l.strip_prefix("error: ") {
            message = Some(m.to_owned());
        } else if i > 1
            && position.is_none()
            && l.contains('^')
            && l.chars().all(|c| c == ' ' || c == '^')
        {
            // The caret line is indented like the pattern line above it.
            let indent = lines[1].len() - lines[1].trim_start().len();
            position = l.find('^').map(|p| p.saturating_sub(indent) + 1);
        }
    }
    let message = message.unwrap_or_else(|| text.replace('\n', " "));
    (position, message)
}

impl Profile {
    /// Parse a profile from TOML.
    pub fn from_toml(text: &str) -> Result<Self, ProfileError> {
        toml::from_str(text).map_err(|e| ProfileError::Parse {
            profile: toml_name(text),
            message: e.to_string(),
        })
    }

    /// A built-in profile, uncompiled (so user rules can be added): one of [`BUILTIN_PROFILES`].
    pub fn builtin(name: &str) -> Option<Self> {
        Self::builtin_depth(name, 0)
    }

    fn builtin_depth(name: &str, depth: usize) -> Option<Self> {
        let parse = |text: &str| Self::from_toml(text).expect("built-in profiles are valid TOML");
        if depth > 4 {
            return None;
        }
        let common = parse(COMMON_TOML);
        let parts: Vec<Profile> = if name == "auto" {
            LIBRARY_PROFILES
                .iter()
                .map(|n| Self::builtin_depth(n, depth + 1))
                .collect::<Option<_>>()?
        } else {
            let (_, text) = BUILTIN_TOML.iter().find(|(n, _)| *n == name)?;
            let mut own = parse(text);
            let mut parts: Vec<Profile> = std::mem::take(&mut own.include)
                .iter()
                .map(|n| Self::builtin_depth(n, depth + 1))
                .collect::<Option<_>>()?;
            parts.push(own);
            parts
        };
        let (format, json) = parts
            .last()
            .map(|p| (p.format, p.json.clone()))
            .unwrap_or_default();
        let mut merged = Self::merge(name, std::iter::once(common).chain(parts))
            .expect("built-in profiles do not conflict");
        if name == "auto" {
            merged.description = format!(
                "All library profiles ({}), in that order; JSON and logfmt lines decoded by their first bytes.",
                LIBRARY_PROFILES.join(", ")
            );
        } else {
            // The profile's own encoding, not its includes'.
            merged.format = format;
            merged.json = json;
        }
        Some(merged)
    }

    /// Join profiles: rules in order (each keeps its part's family), vars united (the same var
    /// with two values is an error), continuation if any part has it, the format the parts
    /// agree on (else `auto`), the first JSON mapping.
    pub fn merge(
        name: impl Into<String>,
        parts: impl IntoIterator<Item = Profile>,
    ) -> Result<Self, ProfileError> {
        let mut out = Profile {
            name: name.into(),
            ..Profile::default()
        };
        let mut descriptions = Vec::new();
        let mut formats = Vec::new();
        for p in parts {
            for (k, v) in p.vars {
                match out.vars.get(&k) {
                    Some(old) if *old != v => {
                        return Err(ProfileError::Var {
                            var: k,
                            message: format!("defined twice with different values (in {})", p.name),
                        });
                    }
                    _ => {
                        out.vars.insert(k, v);
                    }
                }
            }
            if !p.description.is_empty() {
                descriptions.push(p.description);
            }
            if !p.rules.is_empty() {
                formats.push(p.format);
            }
            out.continuation = out.continuation.or(p.continuation);
            if out.json.is_none() {
                out.json = p.json;
            }
            let family = if p.family.is_empty() {
                p.name.clone()
            } else {
                p.family.clone()
            };
            out.rules.extend(p.rules.into_iter().map(|mut r| {
                if r.family.is_none() {
                    r.family = Some(family.clone());
                }
                r
            }));
        }
        if descriptions.len() == 1 {
            out.description = descriptions.pop().unwrap_or_default();
        }
        formats.dedup();
        out.format = match formats.as_slice() {
            [one] => *one,
            _ => Format::Auto,
        };
        Ok(out)
    }

    /// Add user rules before or after the profile's own.
    pub fn with_user_rules(
        mut self,
        rules: impl IntoIterator<Item = Rule>,
        placement: Placement,
    ) -> Self {
        match placement {
            Placement::After => self.rules.extend(rules),
            Placement::Before => {
                let mut user: Vec<Rule> = rules.into_iter().collect();
                user.append(&mut self.rules);
                self.rules = user;
            }
        }
        self
    }

    /// Add vars (user fragments); an existing var keeps its value unless `replace`.
    pub fn with_vars(
        mut self,
        vars: impl IntoIterator<Item = (String, String)>,
        replace: bool,
    ) -> Self {
        for (k, v) in vars {
            if replace {
                self.vars.insert(k, v);
            } else {
                self.vars.entry(k).or_insert(v);
            }
        }
        self
    }

    /// Check and compile every rule.
    pub fn compile(&self) -> Result<CompiledProfile, ProfileError> {
        let vars = expand_vars(&self.vars)?;
        if let Some(j) = &self.json {
            j.validate().map_err(|message| ProfileError::Parse {
                profile: self.name.clone(),
                message: format!("json: {message}"),
            })?;
        }
        let mut names = HashSet::new();
        let mut rules = Vec::with_capacity(self.rules.len());
        let mut literal_ids: HashMap<String, usize> = HashMap::new();
        let mut literals: Vec<String> = Vec::new();
        let mut literal_rules: Vec<Vec<u32>> = Vec::new();
        let mut families: Vec<String> = Vec::new();
        for (idx, rule) in self.rules.iter().enumerate() {
            if rule.name.trim().is_empty() {
                return Err(ProfileError::rule(
                    &format!("#{}", idx + 1),
                    "a rule needs a name",
                ));
            }
            if !names.insert(rule.name.as_str()) {
                return Err(ProfileError::rule(&rule.name, "two rules have this name"));
            }
            let mut compiled = CompiledRule::new(rule, &vars)?;
            if let Some(f) = &rule.family {
                let g = match families.iter().position(|x| x == f) {
                    Some(g) => g,
                    None => {
                        families.push(f.clone());
                        families.len() - 1
                    }
                };
                if g >= MAX_FAMILIES {
                    return Err(ProfileError::rule(&rule.name, "too many library families"));
                }
                compiled.group = Some(g as u8);
            }
            if rule.literal.as_slice().is_empty() {
                return Err(ProfileError::rule(&rule.name, "a rule needs a literal"));
            }
            let idx =
                u32::try_from(idx).map_err(|_| ProfileError::rule(&rule.name, "too many rules"))?;
            for lit in rule.literal.as_slice() {
                if lit.is_empty() {
                    return Err(ProfileError::rule(&rule.name, "empty literal"));
                }
                // In a JSON string or a quoted logfmt value, `"` and `\` are escaped: the
                // escaped spelling is a literal of the rule too (the prefilter runs on the
                // line before it is decoded).
                let escaped = lit.replace('\\', "\\\\").replace('"', "\\\"");
                let spellings = if escaped != *lit {
                    vec![lit.clone(), escaped]
                } else {
                    vec![lit.clone()]
                };
                for l in spellings {
                    let id = *literal_ids.entry(l.clone()).or_insert_with(|| {
                        literals.push(l);
                        literal_rules.push(Vec::new());
                        literals.len() - 1
                    });
                    if !literal_rules[id].contains(&idx) {
                        literal_rules[id].push(idx);
                    }
                }
            }
            rules.push(compiled);
        }
        let search = if literals.is_empty() {
            None
        } else {
            Some(
                LiteralSearch::new(&literals).map_err(|e| ProfileError::Parse {
                    profile: self.name.clone(),
                    message: format!("literals: {e}"),
                })?,
            )
        };
        // Literals that contain one another: a non-overlapping scan reports one of them, the
        // others are checked directly (see `prefilter`).
        let related = literals
            .iter()
            .enumerate()
            .map(|(i, a)| {
                literals
                    .iter()
                    .enumerate()
                    .filter(|&(j, b)| i != j && (a.contains(b.as_str()) || b.contains(a.as_str())))
                    .map(|(j, _)| j as u32)
                    .collect()
            })
            .collect();
        // Families whose rules read continuation lines.
        let continued_families = if self.continuation.is_some() {
            let mut mask = 0u64;
            for r in &rules {
                match r.group {
                    Some(g) if r.continued => mask |= 1 << g,
                    None => mask |= 1 << 63,
                    _ => {}
                }
            }
            // Only rules whose regex reads a line break use continuation lines.
            mask
        } else {
            0
        };
        Ok(CompiledProfile {
            source: self.clone(),
            narrowed: Mutex::new(Vec::new()),
            name: self.name.clone(),
            description: self.description.clone(),
            format: self.format,
            json: self.json.clone().unwrap_or_default(),
            continued_families,
            families,
            words: rules.len().div_ceil(64),
            rules,
            search,
            literal_rules,
            related,
            finders: literals
                .iter()
                .map(|l| memchr::memmem::Finder::new(l.as_bytes()).into_owned())
                .collect(),
        })
    }
}

/// The `name = "..."` of a TOML text that did not parse (for the error).
fn toml_name(text: &str) -> String {
    text.lines()
        .find_map(|l| {
            let l = l.trim();
            let v = l
                .strip_prefix("name")?
                .trim_start()
                .strip_prefix('=')?
                .trim();
            Some(v.trim_matches('"').trim_matches('\'').to_owned())
        })
        .unwrap_or_else(|| "?".into())
}

/// Expand `${name}` references among the vars themselves (nesting up to a few levels).
fn expand_vars(vars: &BTreeMap<String, String>) -> Result<BTreeMap<String, String>, ProfileError> {
    let mut out = vars.clone();
    for _ in 0..8 {
        let mut changed = false;
        for k in vars.keys() {
            let cur = out[k].clone();
            if !cur.contains("${") {
                continue;
            }
            let next = substitute(&cur, &out).map_err(|m| ProfileError::Var {
                var: k.clone(),
                message: m,
            })?;
            if next != cur {
                changed = true;
                out.insert(k.clone(), next);
            }
        }
        if !changed {
            break;
        }
    }
    if let Some((k, _)) = out.iter().find(|(_, v)| v.contains("${")) {
        return Err(ProfileError::Var {
            var: k.clone(),
            message: "refers to itself (or nests too deep)".into(),
        });
    }
    Ok(out)
}

/// Replace each `${name}` with its var. Unknown names are an error.
fn substitute(text: &str, vars: &BTreeMap<String, String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| "unterminated ${".to_owned())?;
        let name = &after[..end];
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return Err(format!("bad variable reference ${{{name}}}"));
        }
        let value = vars
            .get(name)
            .ok_or_else(|| format!("unknown variable ${{{name}}}"))?;
        out.push_str(value);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The event a rule produces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum EventKind {
    Starting,
    Identifying,
    Ready,
    Resumed,
    Dispatch,
    HeartbeatAck,
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
    const ALL: [EventKind; 13] = [
        Self::Starting,
        Self::Identifying,
        Self::Ready,
        Self::Resumed,
        Self::Dispatch,
        Self::HeartbeatAck,
        Self::Reconnecting,
        Self::InvalidSession,
        Self::Closed,
        Self::Fatal,
        Self::ShuttingDown,
        Self::Stopped,
        Self::Ignore,
    ];

    /// The rule schema's event names: [`SessionEvent::name`] plus `ignore`.
    fn name(self) -> &'static str {
        match self {
            Self::Starting => "starting",
            Self::Identifying => "identifying",
            Self::Ready => "ready",
            Self::Resumed => "resumed",
            Self::Dispatch => "dispatch",
            Self::HeartbeatAck => "heartbeat_ack",
            Self::Reconnecting => "reconnecting",
            Self::InvalidSession => "invalid_session",
            Self::Closed => "closed",
            Self::Fatal => "fatal",
            Self::ShuttingDown => "shutting_down",
            Self::Stopped => "stopped",
            Self::Ignore => "ignore",
        }
    }

    fn parse(s: &str) -> Option<Self> {
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
        )
    }

    fn build(self, v: Values, rule: &str) -> Option<SessionEvent> {
        Some(match self {
            Self::Starting => SessionEvent::Starting,
            Self::Identifying => SessionEvent::Identifying,
            Self::Ready => SessionEvent::Ready {
                session_id: v.session_id,
            },
            Self::Resumed => SessionEvent::Resumed,
            Self::Dispatch => SessionEvent::Dispatch { kind: v.kind },
            Self::HeartbeatAck => SessionEvent::HeartbeatAck,
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
struct Values {
    session_id: Option<String>,
    kind: Option<std::sync::Arc<str>>,
    code: Option<u16>,
    reason: Option<String>,
    resumable: Option<bool>,
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
}

#[derive(Debug)]
struct CompiledRule {
    name: String,
    regex: Option<Regex>,
    event: EventKind,
    fields: Fields,
    groups: Groups,
    /// Library family index (`None`: a user rule, always tried).
    group: Option<u8>,
    /// The regex reads a line break (a rule for continued messages).
    continued: bool,
    /// The regex as a memoized lazy DFA, built on first use (capture-free rules).
    confirmer: OnceLock<Option<Confirmer>>,
}

impl CompiledRule {
    fn new(rule: &Rule, vars: &BTreeMap<String, String>) -> Result<Self, ProfileError> {
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
                let re = RegexBuilder::new(&expanded)
                    .unicode(false)
                    .build()
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
    fn confirmer(&self) -> Option<&Confirmer> {
        self.confirmer
            .get_or_init(|| {
                let re = self.regex.as_ref()?;
                (re.captures_len() == 1)
                    .then(|| Confirmer::new(re.as_str()))
                    .flatten()
            })
            .as_ref()
    }

    fn build(&self, caps: Option<&Captures<'_>>, want_captures: bool) -> RuleMatch<'_> {
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

/// The rule a line matched and what it means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleMatch<'p> {
    /// The rule's name.
    pub rule: &'p str,
    /// The rule's library family (an index into [`CompiledProfile::families`]); `None` for a
    /// user rule.
    pub group: Option<u8>,
    /// `None` for an `ignore` rule.
    pub event: Option<SessionEvent>,
    pub bot: Option<String>,
    pub shard: Option<u32>,
    /// Named captures that took part (only when asked for).
    pub captures: Vec<(String, String)>,
}

/// Reusable candidate set (a bitset over the rules).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct MatchScratch {
    bits: Vec<u64>,
    /// Per rule: where its literal's first occurrence ends (valid where `bits` is set).
    ends: Vec<u32>,
}

/// A profile ready to match: share it with `Arc` between streams.
#[derive(Debug)]
pub struct CompiledProfile {
    /// What it was compiled from (to compile a narrowed copy).
    source: Profile,
    /// Copies with only some families' rules, by family mask (see [`narrowed`](Self::narrowed)).
    narrowed: Mutex<Vec<(u64, Arc<CompiledProfile>)>>,
    name: String,
    description: String,
    /// How lines are encoded.
    format: Format,
    /// Keys of structured lines.
    json: StructuredFields,
    /// Families (bits) whose rules read continuation lines; bit 63: user rules; 0: none.
    continued_families: u64,
    /// Library families, by group index.
    families: Vec<String>,
    rules: Vec<CompiledRule>,
    /// The literal searcher; `None` without rules.
    search: Option<LiteralSearch>,
    /// Per literal pattern id: the rules it is a literal of.
    literal_rules: Vec<Vec<u32>>,
    /// Per literal: the literals that contain it or that it contains.
    related: Vec<Vec<u32>>,
    /// Per literal: a substring finder, to check a related literal directly.
    finders: Vec<memchr::memmem::Finder<'static>>,
    /// Bitset words for the rules.
    words: usize,
}

/// The literal search: the packed (Teddy) searcher itself where it can be built, else the
/// whole Aho-Corasick automaton (which would wrap the same searcher as its prefilter, with a
/// layer of dispatch per call that a 200-byte line notices).
enum LiteralSearch {
    Packed(aho_corasick::packed::Searcher),
    Automaton(AhoCorasick),
}

impl std::fmt::Debug for LiteralSearch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            LiteralSearch::Packed(_) => "LiteralSearch::Packed",
            LiteralSearch::Automaton(_) => "LiteralSearch::Automaton",
        })
    }
}

impl LiteralSearch {
    fn new(literals: &[String]) -> Result<Self, aho_corasick::BuildError> {
        let packed = aho_corasick::packed::Config::new()
            .match_kind(aho_corasick::packed::MatchKind::LeftmostFirst)
            .builder()
            .extend(literals)
            .build();
        if let Some(p) = packed {
            return Ok(LiteralSearch::Packed(p));
        }
        AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostFirst)
            .build(literals)
            .map(LiteralSearch::Automaton)
    }

    /// The leftmost-first literal starting at or after `from`.
    #[inline]
    fn find(&self, text: &[u8], from: usize) -> Option<aho_corasick::Match> {
        match self {
            LiteralSearch::Packed(p) => p.find_in(text, aho_corasick::Span::from(from..text.len())),
            LiteralSearch::Automaton(ac) => {
                ac.find(aho_corasick::Input::new(text).span(from..text.len()))
            }
        }
    }
}

impl CompiledProfile {
    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn description(&self) -> &str {
        &self.description
    }

    /// How lines are encoded.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Which keys of a structured line hold what.
    pub fn structured_fields(&self) -> &StructuredFields {
        &self.json
    }

    /// The library families of its rules, by group index (`RuleMatch::group`).
    pub fn families(&self) -> &[String] {
        &self.families
    }

    /// The same profile with only the rules of the families in `mask` (bit = group index) and
    /// the rules without a family (user rules): fewer literals, a faster prefilter. Compiled
    /// once per mask and shared. `None` when that would be the whole profile.
    pub fn narrowed(&self, mask: u64) -> Option<Arc<CompiledProfile>> {
        let keep: Vec<&str> = self
            .families
            .iter()
            .enumerate()
            .filter(|(g, _)| mask & (1 << g) != 0)
            .map(|(_, f)| f.as_str())
            .collect();
        if keep.is_empty() || keep.len() == self.families.len() {
            return None;
        }
        let mut cache = self.narrowed.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, p)) = cache.iter().find(|(m, _)| *m == mask) {
            return Some(Arc::clone(p));
        }
        let mut src = self.source.clone();
        src.rules
            .retain(|r| r.family.as_deref().is_none_or(|f| keep.contains(&f)));
        let compiled = Arc::new(src.compile().ok()?);
        cache.push((mask, Arc::clone(&compiled)));
        Some(compiled)
    }

    /// Whether tab-led lines continue a message with every family in `mask` enabled.
    pub fn continues(&self, mask: u64) -> bool {
        self.continued_families & mask != 0
    }

    /// Rule names, in matching order.
    pub fn rule_names(&self) -> impl Iterator<Item = &str> {
        self.rules.iter().map(|r| r.name.as_str())
    }

    /// Rule names with their event name (`ignore` included).
    pub fn rule_events(&self) -> impl Iterator<Item = (&str, &'static str)> {
        self.rules.iter().map(|r| (r.name.as_str(), r.event.name()))
    }

    /// The hot path's first step: mark the rules whose literal occurs in `text`. False (and no
    /// allocation once `scratch` has its size) when none does.
    pub fn prefilter(&self, text: &[u8], scratch: &mut MatchScratch) -> bool {
        let Some(search) = &self.search else {
            return false;
        };
        // Non-overlapping search uses the automaton's SIMD prefilter (an overlapping one cannot):
        // restarting one byte after each hit's start finds every literal that starts later, and
        // literals nested in (or around) a hit are checked directly.
        let mut pos = 0;
        let mut any = false;
        while pos < text.len() {
            let Some(m) = search.find(text, pos) else {
                break;
            };
            if !any {
                if scratch.bits.len() != self.words || scratch.ends.len() != self.rules.len() {
                    scratch.bits.resize(self.words, 0);
                    scratch.ends.resize(self.rules.len(), 0);
                }
                scratch.bits.fill(0);
                any = true;
            }
            let id = m.pattern().as_usize();
            self.mark(id, m.end(), scratch);
            for &other in &self.related[id] {
                let f = &self.finders[other as usize];
                if let Some(at) = f.find(text) {
                    self.mark(other as usize, at + f.needle().len(), scratch);
                }
            }
            pos = m.start() + 1;
        }
        any
    }

    fn mark(&self, literal: usize, end: usize, scratch: &mut MatchScratch) {
        for &r in &self.literal_rules[literal] {
            let (word, bit) = (r as usize / 64, 1 << (r % 64));
            if scratch.bits[word] & bit == 0 {
                scratch.bits[word] |= bit;
                scratch.ends[r as usize] = u32::try_from(end).unwrap_or(u32::MAX);
            }
        }
    }

    /// The second step: the candidate rules marked by [`prefilter`](Self::prefilter), in rule
    /// order; the first whose regex matches `text` (or that has none) wins.
    pub fn match_candidates(
        &self,
        text: &[u8],
        scratch: &MatchScratch,
        want_captures: bool,
    ) -> Option<RuleMatch<'_>> {
        self.match_in(text, scratch, false, want_captures, u64::MAX, 0)
    }

    /// [`match_candidates`](Self::match_candidates) among the rules of the families in `mask`
    /// (bit = group index; rules without a family always), where a match must end after byte
    /// `min_end` (a continuation line joined to its first line: the match must reach into it).
    pub(super) fn match_in(
        &self,
        text: &[u8],
        scratch: &MatchScratch,
        memoize: bool,
        want_captures: bool,
        mask: u64,
        min_end: usize,
    ) -> Option<RuleMatch<'_>> {
        for (w, &word) in scratch.bits.iter().enumerate() {
            let mut bits = word;
            while bits != 0 {
                let r = w * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                let Some(rule) = self.rules.get(r) else {
                    continue;
                };
                if let Some(g) = rule.group
                    && mask & (1 << g) == 0
                {
                    continue;
                }
                let Some(re) = &rule.regex else {
                    if min_end == 0 {
                        return Some(rule.build(None, want_captures));
                    }
                    continue;
                };
                if re.captures_len() == 1 {
                    // Without capture groups, a match test is enough (and much cheaper).
                    let hit = if min_end == 0 {
                        let memoized = match rule.confirmer().filter(|_| memoize) {
                            Some(c) => {
                                // Just past the literal: a `\b` after it is decided there.
                                let seg_end = scratch
                                    .ends
                                    .get(r)
                                    .map_or(text.len(), |&e| (e as usize).saturating_add(1));
                                c.is_match(text, seg_end)
                            }
                            None => None,
                        };
                        memoized.unwrap_or_else(|| re.is_match(text))
                    } else {
                        re.find(text).is_some_and(|m| m.end() > min_end)
                    };
                    if hit {
                        return Some(rule.build(None, want_captures));
                    }
                } else if let Some(caps) = re.captures(text)
                    && caps.get(0).is_some_and(|m| m.end() > min_end)
                {
                    return Some(rule.build(Some(&caps), want_captures));
                }
            }
        }
        None
    }

    /// Match one line's text (already without container prefix and ANSI; not redacted: use
    /// [`LogStream`](super::LogStream) for that). With the named captures.
    pub fn match_text(&self, text: &[u8]) -> Option<RuleMatch<'_>> {
        let mut scratch = MatchScratch::default();
        if !self.prefilter(text, &mut scratch) {
            return None;
        }
        self.match_candidates(text, &scratch, true)
    }
}

/// A built-in profile, compiled once and shared: one of [`BUILTIN_PROFILES`] (`auto`, the
/// default, is every library profile).
pub fn builtin_profile(name: &str) -> Option<Arc<CompiledProfile>> {
    // Compiled on first use, one by one: a process that reads one library's logs does not
    // hold every profile's regexes.
    static CACHE: [OnceLock<Arc<CompiledProfile>>; BUILTIN_PROFILES.len()] =
        [const { OnceLock::new() }; BUILTIN_PROFILES.len()];
    let i = BUILTIN_PROFILES.iter().position(|n| *n == name)?;
    let p = CACHE[i].get_or_init(|| {
        let p = Profile::builtin(name)
            .and_then(|p| p.compile().ok())
            .expect("built-in profiles compile");
        Arc::new(p)
    });
    Some(Arc::clone(p))
}

/// Compile a profile by name with user rules, as the config describes it.
pub fn compile_profile(
    name: &str,
    user_rules: impl IntoIterator<Item = Rule>,
    placement: Placement,
) -> Result<Arc<CompiledProfile>, ProfileError> {
    compile_profile_with(name, user_rules, placement, None)
}

/// [`compile_profile`] with the config's `[json_fields]`: the keys of JSON / logfmt lines for
/// a profile that decodes them (`auto`, `json`, `tracing-json`, `logfmt`).
pub fn compile_profile_with(
    name: &str,
    user_rules: impl IntoIterator<Item = Rule>,
    placement: Placement,
    json_fields: Option<&StructuredFields>,
) -> Result<Arc<CompiledProfile>, ProfileError> {
    let mut base =
        Profile::builtin(name).ok_or_else(|| ProfileError::UnknownProfile(name.into()))?;
    let mut user_rules = user_rules.into_iter().peekable();
    let own_fields = json_fields.is_some() && base.format != Format::Text;
    if user_rules.peek().is_none() && !own_fields {
        // Nothing of the config's own: the built-in, compiled once per process (`check-config`
        // and the command that follows it, and every stream, share it).
        return builtin_profile(name).ok_or_else(|| ProfileError::UnknownProfile(name.into()));
    }
    if let Some(j) = json_fields
        && base.format != Format::Text
    {
        base.json = Some(j.clone());
    }
    Ok(Arc::new(
        base.with_user_rules(user_rules, placement).compile()?,
    ))
}

/// The profiles of one configuration: the default, and the ones named per bot. Compiled once;
/// a stream asks for its bot's.
#[derive(Debug, Clone)]
pub struct ProfileSet {
    default: Arc<CompiledProfile>,
    by_bot: Vec<(String, Arc<CompiledProfile>)>,
}

impl ProfileSet {
    pub fn new(default: Arc<CompiledProfile>) -> Self {
        Self {
            default,
            by_bot: Vec::new(),
        }
    }

    /// Use `profile` for the streams of `bot` (names compare without case).
    pub fn with_bot(mut self, bot: impl Into<String>, profile: Arc<CompiledProfile>) -> Self {
        self.by_bot.push((bot.into(), profile));
        self
    }

    /// The profile for a stream of `bot` (the default when the bot is unknown or has none).
    pub fn for_bot(&self, bot: Option<&str>) -> Arc<CompiledProfile> {
        bot.and_then(|b| {
            self.by_bot
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(b))
                .map(|(_, p)| Arc::clone(p))
        })
        .unwrap_or_else(|| Arc::clone(&self.default))
    }

    pub fn default_profile(&self) -> &Arc<CompiledProfile> {
        &self.default
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The memoized confirmation picks the same rule as the regexes alone, on the examples'
    /// lines and the fuzz corpus, each line seen twice (the second time from the memo).
    #[test]
    fn memoized_confirmation_agrees_with_the_regexes() {
        fn collect(dir: &std::path::Path, out: &mut Vec<Vec<u8>>) {
            let Ok(entries) = std::fs::read_dir(dir) else {
                return;
            };
            let mut paths: Vec<_> = entries.flatten().map(|e| e.path()).collect();
            paths.sort();
            for p in paths {
                if p.is_dir() {
                    collect(&p, out);
                } else if let Ok(bytes) = std::fs::read(&p) {
                    for line in bytes.split(|&b| b == b'\n').take(2000) {
                        out.push(line.to_vec());
                        // Also without a container timestamp in front.
                        if let Some(sp) = line.iter().position(|&b| b == b' ') {
                            out.push(line[sp + 1..].to_vec());
                        }
                    }
                }
            }
        }
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let mut lines = Vec::new();
        collect(&root.join("examples"), &mut lines);
        collect(&root.join("fuzz/corpus/log_lines"), &mut lines);
        assert!(lines.len() > 1000, "{} lines", lines.len());
        let p = builtin_profile("auto").unwrap();
        let mut scratch = MatchScratch::default();
        let mut confirmed = 0;
        for _round in 0..2 {
            for l in &lines {
                if !p.prefilter(l, &mut scratch) {
                    continue;
                }
                let plain = p
                    .match_in(l, &scratch, false, false, u64::MAX, 0)
                    .map(|m| m.rule.to_owned());
                let memoized = p
                    .match_in(l, &scratch, true, false, u64::MAX, 0)
                    .map(|m| m.rule.to_owned());
                assert_eq!(plain, memoized, "{:?}", String::from_utf8_lossy(l));
                confirmed += usize::from(plain.is_some());
            }
        }
        assert!(confirmed > 100, "{confirmed} lines matched a rule");
    }

    #[test]
    fn builtins_compile_and_names_agree() {
        for name in BUILTIN_PROFILES {
            let p = builtin_profile(name).unwrap();
            assert_eq!(p.name(), name);
            assert!(p.rule_names().count() > 0);
        }
        assert!(builtin_profile("nope").is_none());
        let auto = builtin_profile("auto").unwrap();
        let parts: usize = LIBRARY_PROFILES
            .iter()
            .map(|n| builtin_profile(n).unwrap().rule_names().count())
            .sum();
        assert_eq!(auto.rule_names().count(), parts);
    }

    #[test]
    fn event_names_round_trip() {
        for k in EventKind::ALL {
            assert_eq!(EventKind::parse(k.name()), Some(k));
            if let Some(e) = k.build(Values::default(), "r") {
                assert_eq!(e.name(), k.name(), "schema names are SessionEvent::name()");
            }
        }
        assert_eq!(EventKind::Ready.name(), "ready");
        assert_eq!(EventKind::HeartbeatAck.name(), "heartbeat_ack");
        assert_eq!(EventKind::InvalidSession.name(), "invalid_session");
    }

    fn err(rules: Vec<Rule>) -> ProfileError {
        Profile {
            name: "t".into(),
            rules,
            ..Profile::default()
        }
        .compile()
        .unwrap_err()
    }

    #[test]
    fn errors_name_the_rule() {
        let e = err(vec![
            Rule::new("bad.re", "x", "ready").with_regex("x(?P<bot>y"),
        ]);
        match &e {
            ProfileError::Regex {
                rule,
                position,
                message,
            } => {
                assert_eq!(rule, "bad.re");
                assert_eq!(*position, Some(2));
                assert!(message.contains("unclosed group"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        assert!(
            e.to_string()
                .starts_with("rule \"bad.re\": bad regex at column 2:"),
            "{e}"
        );

        let e = err(vec![Rule::new("f", "x", "fatal")]);
        assert!(
            matches!(&e, ProfileError::Rule { rule, message } if rule == "f" && message.contains("reason")),
            "{e}"
        );
        let e = err(vec![Rule::new("i", "x", "invalid_session")]);
        assert!(e.to_string().contains("resumable"), "{e}");
        let e = err(vec![Rule::new("u", "x", "connected")]);
        assert!(e.to_string().contains("unknown event \"connected\""), "{e}");
        let e = err(vec![
            Rule::new("c", "x", "ready").with_regex("(?P<code>\\d+)"),
        ]);
        assert!(e.to_string().contains("capture code does not apply"), "{e}");
        let e = err(vec![
            Rule::new("c", "x", "ready").with_regex("(?P<user>\\w+)"),
        ]);
        assert!(
            e.to_string().contains("unknown capture name \"user\""),
            "{e}"
        );
        let e = err(vec![
            Rule::new("d", "x", "ready"),
            Rule::new("d", "y", "ready"),
        ]);
        assert!(e.to_string().contains("two rules"), "{e}");
        let e = err(vec![Rule::new("e", "", "ready")]);
        assert!(e.to_string().contains("empty literal"), "{e}");
        let e = err(vec![Rule::new("v", "x", "ready").with_regex("${nope}x")]);
        assert!(e.to_string().contains("unknown variable ${nope}"), "{e}");
        let fields = Fields {
            code: Some(4000),
            ..Fields::default()
        };
        let e = err(vec![Rule::new("fx", "x", "dispatch").with_fields(fields)]);
        assert!(e.to_string().contains("field code does not apply"), "{e}");
    }

    #[test]
    fn bad_toml_names_the_profile() {
        let e = Profile::from_toml("name = \"mine\"\n[[rule]]\nname = 3\n").unwrap_err();
        assert!(
            matches!(&e, ProfileError::Parse { profile, .. } if profile == "mine"),
            "{e}"
        );
        let e = Profile::from_toml("name = \"mine\"\n[[rule]]\nname = \"a\"\nliteral = \"b\"\nevent = \"ready\"\nregexp = \"x\"\n").unwrap_err();
        assert!(e.to_string().contains("regexp"), "{e}");
    }

    #[test]
    fn user_rules_and_vars() {
        let rules = Profile::from_toml(
            r#"
            name = "user"
            [vars]
            me = 'mybot: '
            [[rule]]
            name = "user.hello"
            literal = ["hello there", "hi there"]
            regex = '${me}h(?:ello|i) there from shard (?P<shard>\d+|None) as (?P<bot>\S+)'
            event = "ready"
            fields = { session_id = "fixed" }
            [[rule]]
            name = "user.fatal"
            literal = "goodbye"
            regex = 'goodbye (?P<code>\d+)(?: (?P<reason>.+))?'
            event = "fatal"
            fields = { reason = "default reason" }
            "#,
        )
        .unwrap();
        let p = Profile::builtin("openab")
            .unwrap()
            .with_vars(rules.vars.clone(), false)
            .with_user_rules(rules.rules.clone(), Placement::Before)
            .compile()
            .unwrap();
        assert_eq!(p.rule_names().next(), Some("user.hello"));
        let m = p
            .match_text(b"mybot: hi there from shard 3 as \"Helper\"")
            .unwrap();
        assert_eq!(m.rule, "user.hello");
        assert_eq!(
            m.event,
            Some(SessionEvent::Ready {
                session_id: Some("fixed".into())
            })
        );
        assert_eq!((m.bot.as_deref(), m.shard), (Some("Helper"), Some(3)));
        let m = p
            .match_text(b"mybot: hello there from shard None as x")
            .unwrap();
        assert_eq!(m.shard, None);
        let m = p.match_text(b"goodbye 4004").unwrap();
        assert_eq!(
            m.event,
            Some(SessionEvent::Fatal {
                reason: "default reason".into(),
                code: Some(4004)
            })
        );
        let m = p.match_text(b"goodbye 4014 intents off").unwrap();
        assert_eq!(
            m.event,
            Some(SessionEvent::Fatal {
                reason: "intents off".into(),
                code: Some(4014)
            })
        );
        assert_eq!(
            m.captures,
            vec![
                ("code".to_owned(), "4014".to_owned()),
                ("reason".to_owned(), "intents off".to_owned())
            ]
        );
        assert!(p.match_text(b"hello there, no prefix").is_none());
    }

    #[test]
    fn var_cycles_are_errors() {
        let mut p = Profile {
            name: "cyc".into(),
            ..Profile::default()
        };
        p.vars.insert("a".into(), "${b}".into());
        p.vars.insert("b".into(), "${a}".into());
        assert!(matches!(p.compile(), Err(ProfileError::Var { .. })));
        let a = Profile {
            name: "a".into(),
            vars: [("x".to_owned(), "1".to_owned())].into(),
            ..Profile::default()
        };
        let b = Profile {
            name: "b".into(),
            vars: [("x".to_owned(), "2".to_owned())].into(),
            ..Profile::default()
        };
        assert!(Profile::merge("ab", [a, b]).is_err());
    }

    #[test]
    fn ignored_lines_stay_cheap() {
        let p = builtin_profile("auto").unwrap();
        let mut s = MatchScratch::default();
        assert!(!p.prefilter(
            b"2026-04-19T04:12:05.201377Z  INFO openab::discord: registered global slash commands",
            &mut s
        ));
        assert!(
            s.bits.is_empty(),
            "no candidate set built for a line without a literal"
        );
    }
}
