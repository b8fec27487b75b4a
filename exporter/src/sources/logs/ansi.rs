//! ANSI escape sequences (tracing-subscriber colours its output even without a terminal).

use memchr::memchr;

/// ESC.
pub(crate) const ESC: u8 = 0x1b;

/// Whether `s` holds an escape byte at all (the cheap test before [`strip_into`]).
#[inline]
pub(crate) fn has_escape(s: &[u8]) -> bool {
    memchr(ESC, s).is_some()
}

/// Copy `src` into `dst` (cleared first, capacity kept) without its escape sequences: CSI
/// (`ESC [ params intermediates final`), OSC (`ESC ] .. BEL|ESC \`) and two-byte `ESC X`.
/// An unterminated CSI drops the rest of the line; a lone ESC is dropped.
pub(crate) fn strip_into(src: &[u8], dst: &mut Vec<u8>) {
    // The output is never longer than the input: size it once and write words into it. A
    // colour code every few bytes makes a search call per escape cost more than the copy, so
    // sixteen bytes are copied at a time and tested for ESC together (SWAR).
    const W: usize = 16;
    const ONES: u128 = u128::from_ne_bytes([0x01; W]);
    const HIGHS: u128 = u128::from_ne_bytes([0x80; W]);
    const ESCS: u128 = u128::from_ne_bytes([ESC; W]);
    let n = src.len();
    dst.clear();
    dst.resize(n, 0);
    let out = dst.as_mut_slice();
    let (mut i, mut o) = (0, 0);
    while i + W <= n {
        let chunk: [u8; W] = src[i..i + W].try_into().expect("a word");
        // Always written whole: `o <= i`, so it fits; bytes past an escape are overwritten.
        out[o..o + W].copy_from_slice(&chunk);
        let x = u128::from_le_bytes(chunk) ^ ESCS;
        // The lowest flagged byte is exactly the first ESC (borrows only flag bytes above it).
        let found = x.wrapping_sub(ONES) & !x & HIGHS;
        if found == 0 {
            i += W;
            o += W;
            continue;
        }
        let k = (found.trailing_zeros() / 8) as usize;
        o += k;
        i = skip_escape(src, i + k);
    }
    while i < n {
        if src[i] == ESC {
            i = skip_escape(src, i);
        } else {
            out[o] = src[i];
            o += 1;
            i += 1;
        }
    }
    dst.truncate(o);
}

/// Index just past the escape sequence starting at `esc`.
fn skip_escape(src: &[u8], esc: usize) -> usize {
    let n = src.len();
    match src.get(esc + 1) {
        None => n,
        Some(b'[') => {
            let mut j = esc + 2;
            while j < n {
                match src[j] {
                    0x40..=0x7e => return j + 1,
                    0x20..=0x3f => j += 1,
                    // Not a CSI byte: the sequence is broken; keep what follows.
                    _ => return j,
                }
            }
            n
        }
        Some(b']') => {
            let mut j = esc + 2;
            while j < n {
                match src[j] {
                    0x07 => return j + 1,
                    ESC if src.get(j + 1) == Some(&b'\\') => return j + 2,
                    _ => j += 1,
                }
            }
            // Unterminated OSC: drop only its introducer.
            esc + 2
        }
        Some(0x40..=0x5f) => esc + 2,
        Some(_) => esc + 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strip(s: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        strip_into(s, &mut v);
        v
    }

    #[test]
    fn strips_tracing_colours() {
        let line = b"\x1b[2m2026-04-19T04:12:04.912640Z\x1b[0m \x1b[32m INFO\x1b[0m \x1b[2mopenab::discord\x1b[0m\x1b[2m:\x1b[0m discord bot connected \x1b[3muser\x1b[0m\x1b[2m=\x1b[0mAgentBroker";
        assert_eq!(
            strip(line),
            b"2026-04-19T04:12:04.912640Z  INFO openab::discord: discord bot connected user=AgentBroker"
        );
    }

    /// The word-at-a-time copy against the plain byte loop, on lines dense with escape-ish
    /// bytes at every offset (escapes straddling the 16-byte words, sequences at the end).
    #[test]
    fn word_copy_agrees_with_a_byte_loop() {
        fn reference(src: &[u8]) -> Vec<u8> {
            let (mut out, mut i) = (Vec::new(), 0);
            while i < src.len() {
                if src[i] == ESC {
                    i = skip_escape(src, i);
                } else {
                    out.push(src[i]);
                    i += 1;
                }
            }
            out
        }
        let alphabet = b"\x1b\x1b[]0;1m\x07\\aZ \xff";
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        for len in 0..200 {
            for _ in 0..20 {
                let line: Vec<u8> = (0..len)
                    .map(|_| {
                        state ^= state << 13;
                        state ^= state >> 7;
                        state ^= state << 17;
                        alphabet[(state % alphabet.len() as u64) as usize]
                    })
                    .collect();
                assert_eq!(strip(&line), reference(&line), "{line:?}");
            }
        }
    }

    #[test]
    fn odd_sequences() {
        assert_eq!(strip(b"a\x1b[1;31mb\x1b[0m"), b"ab");
        assert_eq!(strip(b"a\x1b[38;5;208mb"), b"ab");
        assert_eq!(strip(b"a\x1b]0;title\x07b"), b"ab");
        assert_eq!(strip(b"a\x1b]8;;http://x\x1b\\b"), b"ab");
        assert_eq!(strip(b"a\x1b(Bb"), b"a(Bb");
        assert_eq!(strip(b"a\x1bMb"), b"ab");
        assert_eq!(strip(b"abc\x1b"), b"abc");
        assert_eq!(strip(b"abc\x1b[12"), b"abc");
        assert_eq!(strip(b"a\x1b[1\xffb"), b"a\xffb");
        assert_eq!(strip(b"\x1b]unterminated"), b"unterminated");
        assert_eq!(strip(b"plain"), b"plain");
    }
}
