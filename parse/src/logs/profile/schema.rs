//! The profile schema as TOML reads it: rules, fields, placement, and how profiles merge.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::ProfileError;
use super::builtin::BuiltinMeta;
use crate::logs::structured::{Format, StructuredFields};

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
    /// A [`SessionEvent::name`](dge_core::observation::SessionEvent::name), or `ignore`.
    pub event: String,
    #[serde(default)]
    pub fields: Fields,
    /// The library family of a built-in rule (set when profiles are merged; user rules have
    /// none and are always tried).
    #[serde(skip)]
    pub(super) family: Option<String>,
    /// A rule of a compiled-in profile: its regex, checked by the tests, is built when a line
    /// first needs it (a user's is built, and its errors reported, when the profile loads).
    #[serde(skip)]
    pub(super) compiled_in: bool,
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
            compiled_in: false,
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

/// How a line that starts with a tab (or, for `indent`, with spaces) relates to the line
/// before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Continuation {
    /// A line starting with a tab continues the message of the last line that did not (the
    /// discord.js debug layout): it is matched as `first line \n this line`.
    Tab,
    /// As `tab`, and a line starting with three or more spaces too: discord.js v12/v13 indent
    /// their multi-line messages with spaces, and pasted logs turn tabs into spaces. (Two
    /// spaces would take tracing's `pretty` lines.)
    Indent,
}

impl Continuation {
    /// Whether `line` continues the message before it.
    pub fn leads(self, line: &[u8]) -> bool {
        match self {
            Self::Tab => line.first() == Some(&b'\t'),
            Self::Indent => line.first() == Some(&b'\t') || line.starts_with(b"   "),
        }
    }
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
    /// Continuation lines (discord.js: tab- or space-led).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continuation: Option<Continuation>,
    /// Regex fragments, `${name}` in regexes and other vars.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub vars: BTreeMap<String, String>,
    #[serde(default, rename = "rule", alias = "rules")]
    pub rules: Vec<Rule>,
    /// Where a file of `parse/profiles/` stands among the built-ins (its `[builtin]` table);
    /// `None` for any other profile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub builtin: Option<BuiltinMeta>,
}

impl Profile {
    /// Parse a profile from TOML.
    pub fn from_toml(text: &str) -> Result<Self, ProfileError> {
        toml::from_str(text).map_err(|e| ProfileError::Parse {
            profile: toml_name(text),
            message: e.to_string(),
        })
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
            // The widest wins (`indent` also reads tab-led lines).
            out.continuation = out.continuation.max(p.continuation);
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
