//! Confirming a rule's regex without walking its DFA over the same line prefix again.
//!
//! A rule's regex is confirmed on nearly every line that carries its literal, and that work is
//! the part of the line up to the literal: timestamp, level, spans, target. A DFA does not see
//! bytes, only their equivalence classes (bytes no state tells apart: for these regexes, every
//! digit is one class), and in class terms that prefix repeats line after line although the
//! timestamp and the ids in it change. So the regex runs here as a lazy DFA walked by hand: the
//! prefix up to just past the literal, mapped to classes, goes through a memo of
//! `class sequence -> (DFA state, matched on the way)`; the rest of the line is walked byte by
//! byte. A DFA's run is a function of its start state and the classes it reads, so the memo
//! changes how fast the answer comes, never the answer; a line whose prefix shape was never
//! seen costs one walk and one memo entry. Anything unexpected (the DFA's cache giving up)
//! falls back to the regex itself.

use regex_automata::hybrid::LazyStateID;
use regex_automata::hybrid::dfa::{Cache, DFA};
use regex_automata::nfa::thompson;
use regex_automata::util::pool::Pool;
use regex_automata::util::syntax;
use regex_automata::{Input, MatchKind};

use std::hash::{BuildHasher, Hash, Hasher};

/// Memo entries kept per rule (and thread); prefixes that never repeat clear it when full (so
/// a hostile stream costs one DFA walk per line, as without the memo).
const MAX_ENTRIES: usize = 64;
/// Segments longer than this are walked, not remembered.
const MAX_SEGMENT: usize = 512;

/// The regex as the `regex` crate builds it for bytes with Unicode off, as a lazy DFA.
fn build_dfa(pattern: &str) -> Option<DFA> {
    DFA::builder()
        .configure(DFA::config().match_kind(MatchKind::LeftmostFirst))
        .syntax(syntax::Config::new().unicode(false).utf8(false))
        .thompson(thompson::Config::new().utf8(false))
        .build(pattern)
        .ok()
}

type MakeMemo = Box<dyn Fn() -> RuleMemo + Send + Sync>;

/// A capture-free rule's regex as a lazy DFA, with its cache and memo pooled: one pair per
/// thread confirming at the same moment, shared by every stream that thread serves (memory
/// does not grow with the number of streams, and one pod's line shapes serve the next).
pub(super) struct Confirmer {
    dfa: DFA,
    pool: Pool<RuleMemo, MakeMemo>,
}

impl std::fmt::Debug for Confirmer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Confirmer").finish_non_exhaustive()
    }
}

impl Confirmer {
    /// `None` when the pattern cannot be built as a lazy DFA (the regex confirms alone).
    pub fn new(pattern: &str) -> Option<Self> {
        let dfa = build_dfa(pattern)?;
        let make = dfa.clone();
        Some(Self {
            dfa,
            pool: Pool::new(Box::new(move || RuleMemo::new(&make))),
        })
    }

    /// Whether the regex matches `text`, the bytes before `seg_end` going through the memo.
    /// `None`: the DFA gave up; ask the regex.
    pub fn is_match(&self, text: &[u8], seg_end: usize) -> Option<bool> {
        self.pool.get().is_match(&self.dfa, text, seg_end)
    }
}

struct RuleMemo {
    cache: Cache,
    /// The cache's clear count the entries were made under (its state ids die with a clear).
    clears: usize,
    entries: Vec<Entry>,
    /// The current line's prefix as byte classes (reused).
    classes: Vec<u8>,
    /// Hash -> index into `entries`.
    index: std::collections::HashMap<u64, usize, foldhash::fast::FixedState>,
}

#[derive(Debug)]
struct Entry {
    from: LazyStateID,
    segment: Box<[u8]>,
    to: LazyStateID,
    matched: bool,
}

enum Walk {
    Matched,
    Dead,
    At(LazyStateID),
}

fn walk(dfa: &DFA, cache: &mut Cache, mut sid: LazyStateID, bytes: &[u8]) -> Option<Walk> {
    for &b in bytes {
        sid = dfa.next_state(cache, sid, b).ok()?;
        if sid.is_tagged() {
            if sid.is_match() {
                return Some(Walk::Matched);
            }
            if sid.is_dead() {
                return Some(Walk::Dead);
            }
            if sid.is_quit() || sid.is_unknown() {
                return None;
            }
        }
    }
    Some(Walk::At(sid))
}

fn key(from: LazyStateID, segment: &[u8]) -> u64 {
    let mut h = foldhash::fast::FixedState::default().build_hasher();
    from.hash(&mut h);
    segment.hash(&mut h);
    h.finish()
}

impl RuleMemo {
    fn new(dfa: &DFA) -> Self {
        Self {
            cache: dfa.create_cache(),
            clears: 0,
            entries: Vec::new(),
            classes: Vec::new(),
            index: Default::default(),
        }
    }

    fn is_match(&mut self, dfa: &DFA, text: &[u8], seg_end: usize) -> Option<bool> {
        let m = self;
        let seg_end = seg_end.min(text.len());
        let input = Input::new(text).earliest(true);
        let start = dfa.start_state_forward(&mut m.cache, &input).ok()?;
        if start.is_match() {
            return Some(true);
        }
        let prefix = &text[..seg_end];
        if m.cache.clear_count() != m.clears {
            m.entries.clear();
            m.index.clear();
            m.clears = m.cache.clear_count();
        }
        let classes = dfa.byte_classes();
        m.classes.clear();
        m.classes.extend(prefix.iter().map(|&b| classes.get(b)));
        let k = key(start, &m.classes);
        let hit = m
            .index
            .get(&k)
            .map(|&i| &m.entries[i])
            .filter(|e| e.from == start && *e.segment == *m.classes)
            .map(|e| (e.to, e.matched));
        let sid = match hit {
            Some((_, true)) => return Some(true),
            Some((to, false)) => to,
            None => {
                let (to, matched) = match walk(dfa, &mut m.cache, start, prefix)? {
                    Walk::Matched => (start, true),
                    Walk::Dead => return Some(false),
                    Walk::At(s) => (s, false),
                };
                if prefix.len() <= MAX_SEGMENT && m.cache.clear_count() == m.clears {
                    if m.entries.len() >= MAX_ENTRIES {
                        m.entries.clear();
                        m.index.clear();
                    }
                    m.index.insert(k, m.entries.len());
                    m.entries.push(Entry {
                        from: start,
                        segment: m.classes.as_slice().into(),
                        to,
                        matched,
                    });
                }
                if matched {
                    return Some(true);
                }
                to
            }
        };
        match walk(dfa, &mut m.cache, sid, &text[seg_end..])? {
            Walk::Matched => Some(true),
            Walk::Dead => Some(false),
            Walk::At(s) => {
                let eoi = dfa.next_eoi_state(&mut m.cache, s).ok()?;
                Some(eoi.is_match())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The memo agrees with the regex on every line, whatever it remembered before.
    #[test]
    fn agrees_with_the_regex() {
        let patterns = [
            r#"^\s*(?:\d{4}-\d\d-\d\d[Tt ][0-9:.,]+Z\s+)?INFO\s+(?:[\w-]+(?:\{[^{}]*\})?:)*\s*openab(?:::[\w-]+)*: batch dispatched\b"#,
            r"discord bot running\s*$",
            r"\bsession \w+ ready",
            r"^$",
            r"x*",
        ];
        let lines: &[&[u8]] = &[
            b"2026-04-19T00:00:00.800311Z  INFO dispatch{channel=1 adapter=\"discord\"}: openab::dispatch: batch dispatched x=1",
            b"2026-04-19T00:00:01.800311Z  INFO dispatch{channel=1 adapter=\"discord\"}: openab::dispatch: batch dispatched x=2",
            b"2026-04-19T00:00:02.800311Z  INFO dispatch{channel=1 adapter=\"discord\"}: openab::dispatch: batch dispatchedx",
            b"2026-04-19T00:00:03.800311Z  INFO openab::dispatch: batch dispatched",
            b"2026-04-19T00:00:04.800311Z  WARN openab::dispatch: batch dispatched",
            b"2026-04-19T00:00:05Z  INFO openab: discord bot running   ",
            b"2026-04-19T00:00:06Z  INFO openab: discord bot running more",
            b"[2026-04-19 00:00:07] session abc ready",
            b"",
            b"\xff\xfe batch dispatched \xff",
            b"INFO openab: batch dispatched",
        ];
        for p in patterns {
            let re = regex::bytes::RegexBuilder::new(p)
                .unicode(false)
                .build()
                .unwrap();
            let c = Confirmer::new(p).unwrap();
            for round in 0..3 {
                for line in lines {
                    for seg_end in [0, 5, 30, line.len() / 2, line.len(), line.len() + 9] {
                        let got = c.is_match(line, seg_end);
                        assert_eq!(
                            got,
                            Some(re.is_match(line)),
                            "{p} on {:?} (seg_end {seg_end}, round {round})",
                            String::from_utf8_lossy(line)
                        );
                    }
                }
            }
        }
    }

    /// Lines that differ only in their digits (timestamps, ids) share one memo entry.
    #[test]
    fn digits_do_not_split_the_memo() {
        let p = r"^\S+\s+INFO\s+dispatch\{channel=\d+\}: openab::dispatch: batch dispatched\b";
        let c = Confirmer::new(p).unwrap();
        for i in 0..50u64 {
            let line = format!(
                "2026-04-19T00:00:{:02}.{:06}Z  INFO dispatch{{channel={}}}: openab::dispatch: batch dispatched n={i}",
                i % 60,
                i * 7919 % 1_000_000,
                1_496_011_987_654_321_098u64 - i * 1_000_003,
            );
            let end = line.find("dispatched").unwrap() + "dispatched".len() + 1;
            assert_eq!(c.is_match(line.as_bytes(), end), Some(true));
        }
        assert_eq!(c.pool.get().entries.len(), 1);
    }
}
