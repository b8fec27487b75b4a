//! The multi-literal search behind the prefilter.

use aho_corasick::{AhoCorasick, MatchKind};

/// The literal search: the packed (Teddy) searcher itself where it can be built, else the
/// whole Aho-Corasick automaton (which would wrap the same searcher as its prefilter, with a
/// layer of dispatch per call that a 200-byte line notices).
pub(super) enum LiteralSearch {
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
    pub(super) fn new(literals: &[String]) -> Result<Self, aho_corasick::BuildError> {
        // Fat Teddy (16 buckets, AVX2) first, whatever the count: slim Teddy (8 buckets) is
        // aho-corasick's choice up to 32 literals, but with three literals to a bucket, which
        // lines look like candidates depends on how the literals happen to fall into buckets.
        // Three literals more in the OpenAB + serenity family (24) made every OpenAB line a
        // candidate several times and the prefilter 2.5 times slower; fat Teddy is within 30 %
        // of slim's best case there and has no such cliff (docs/performance.md).
        for fat in [Some(true), None] {
            let packed = aho_corasick::packed::Config::new()
                .match_kind(aho_corasick::packed::MatchKind::LeftmostFirst)
                .only_teddy_fat(fat)
                .builder()
                .extend(literals)
                .build();
            if let Some(p) = packed {
                return Ok(LiteralSearch::Packed(p));
            }
        }
        AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostFirst)
            .build(literals)
            .map(LiteralSearch::Automaton)
    }

    /// The leftmost-first literal starting at or after `from`.
    #[inline]
    pub(super) fn find(&self, text: &[u8], from: usize) -> Option<aho_corasick::Match> {
        match self {
            LiteralSearch::Packed(p) => p.find_in(text, aho_corasick::Span::from(from..text.len())),
            LiteralSearch::Automaton(ac) => {
                ac.find(aho_corasick::Input::new(text).span(from..text.len()))
            }
        }
    }
}
