//! A compiled profile: the literal prefilter over every rule, then the candidates' regexes in
//! rule order; narrowed copies for the families a stream shows.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use super::rule::CompiledRule;
use super::search::LiteralSearch;
use super::vars::expand_vars;
use super::{Continuation, Profile, ProfileError};
use crate::logs::structured::{Format, StructuredFields};
use dge_core::observation::SessionEvent;

/// Most families one compiled profile tells apart (a bit each in a stream's mask).
pub const MAX_FAMILIES: usize = 63;

impl Profile {
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
            continuation: self.continuation,
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
    pub(super) bits: Vec<u64>,
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
    /// Which lines continue a message (when `continued_families` is not 0).
    continuation: Option<Continuation>,
    /// Library families, by group index.
    families: Vec<String>,
    pub(super) rules: Vec<CompiledRule>,
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

    /// Whether `line` continues the message before it (a tab- or, with `indent`, space-led
    /// line) with every family in `mask` enabled.
    pub fn continues_line(&self, line: &[u8], mask: u64) -> bool {
        self.continues(mask) && self.continuation.is_some_and(|c| c.leads(line))
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
    pub(in crate::logs) fn match_in(
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
                let Some(lazy) = &rule.regex else {
                    if min_end == 0 {
                        return Some(rule.build(None, want_captures));
                    }
                    continue;
                };
                if lazy.captures_len() == 1 {
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
                        match memoized {
                            Some(hit) => hit,
                            None => lazy.get().is_some_and(|re| re.is_match(text)),
                        }
                    } else {
                        lazy.get()
                            .and_then(|re| re.find(text))
                            .is_some_and(|m| m.end() > min_end)
                    };
                    if hit {
                        return Some(rule.build(None, want_captures));
                    }
                } else if let Some(caps) = lazy.get().and_then(|re| re.captures(text))
                    && caps.get(0).is_some_and(|m| m.end() > min_end)
                {
                    return Some(rule.build(Some(&caps), want_captures));
                }
            }
        }
        None
    }

    /// Match one line's text (already without container prefix and ANSI; not redacted: use
    /// [`LogStream`](crate::logs::LogStream) for that). With the named captures.
    pub fn match_text(&self, text: &[u8]) -> Option<RuleMatch<'_>> {
        let mut scratch = MatchScratch::default();
        if !self.prefilter(text, &mut scratch) {
            return None;
        }
        self.match_candidates(text, &scratch, true)
    }
}
