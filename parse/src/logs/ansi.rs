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
    // sixteen bytes are copied at a time and tested for ESC together.
    const W: usize = 16;
    let n = src.len();
    dst.clear();
    dst.resize(n, 0);
    let out = dst.as_mut_slice();
    let (mut i, mut o) = (0, 0);
    while i + W <= n {
        let chunk: [u8; W] = src[i..i + W].try_into().expect("a word");
        // Always written whole: `o <= i`, so it fits; bytes past an escape are overwritten.
        out[o..o + W].copy_from_slice(&chunk);
        let found = esc_mask(&chunk);
        if found == 0 {
            i += W;
            o += W;
            continue;
        }
        let k = found.trailing_zeros() as usize;
        o += k;
        i = skip_escape(src, i + k);
    }
    let o = strip_bytewise(src, i, out, o);
    dst.truncate(o);
}

/// The byte-at-a-time strip of `src[i..]` into `out[o..]` (the tail shorter than a word, and
/// the reference the word loop is tested against); returns the end of the output.
fn strip_bytewise(src: &[u8], mut i: usize, out: &mut [u8], mut o: usize) -> usize {
    while i < src.len() {
        if src[i] == ESC {
            i = skip_escape(src, i);
        } else {
            out[o] = src[i];
            o += 1;
            i += 1;
        }
    }
    o
}

/// One bit per ESC byte of the word: a vector compare and a mask move where SSE2 exists (every
/// x86_64), a portable SWAR test elsewhere.
#[inline]
fn esc_mask(chunk: &[u8; 16]) -> u32 {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_cmpeq_epi8, _mm_movemask_epi8, _mm_set_epi64x, _mm_set1_epi8};
        let lo = i64::from_le_bytes(chunk[..8].try_into().expect("8 bytes"));
        let hi = i64::from_le_bytes(chunk[8..].try_into().expect("8 bytes"));
        // SAFETY: SSE2 is part of the x86_64 baseline, and these are register operations only.
        unsafe {
            let eq = _mm_cmpeq_epi8(_mm_set_epi64x(hi, lo), _mm_set1_epi8(ESC as i8));
            _mm_movemask_epi8(eq) as u32
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        esc_mask_swar(chunk)
    }
}

/// [`esc_mask`] without SIMD instructions: only the lowest set bit is exact (a borrow flags the
/// byte above a real ESC too), which is the only one the caller reads.
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
fn esc_mask_swar(chunk: &[u8; 16]) -> u32 {
    const ONES: u128 = u128::from_ne_bytes([0x01; 16]);
    const HIGHS: u128 = u128::from_ne_bytes([0x80; 16]);
    const ESCS: u128 = u128::from_ne_bytes([ESC; 16]);
    let x = u128::from_le_bytes(*chunk) ^ ESCS;
    let found = x.wrapping_sub(ONES) & !x & HIGHS;
    if found == 0 {
        0
    } else {
        1 << (found.trailing_zeros() / 8)
    }
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

    /// A xorshift step: the same pseudo-random bytes on every run.
    fn next(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    /// The word-at-a-time copy against the plain byte loop, on lines dense with escape-ish
    /// bytes at every offset (escapes straddling the 16-byte words, sequences at the end).
    #[test]
    fn word_copy_agrees_with_a_byte_loop() {
        let alphabet = b"\x1b\x1b[]0;1m\x07\\aZ \xff";
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        for len in 0..200 {
            for _ in 0..20 {
                let line: Vec<u8> = (0..len)
                    .map(|_| alphabet[(next(&mut state) % alphabet.len() as u64) as usize])
                    .collect();
                let mut want = vec![0; len];
                let end = strip_bytewise(&line, 0, &mut want, 0);
                want.truncate(end);
                assert_eq!(strip(&line), want, "{line:?}");
            }
        }
    }

    /// Both mask functions name the same first ESC (the only bit the caller reads).
    #[test]
    fn masks_agree_on_the_first_escape() {
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        for _ in 0..20_000 {
            let mut chunk = [0u8; 16];
            for b in &mut chunk {
                // Mostly ESC and its neighbours, where a borrow could mislead.
                *b = [ESC, ESC - 1, ESC + 1, 0x00, 0xff, b'a'][(next(&mut state) % 6) as usize];
            }
            let (simd, swar) = (esc_mask(&chunk), esc_mask_swar(&chunk));
            assert_eq!(simd.trailing_zeros(), swar.trailing_zeros(), "{chunk:?}");
            assert_eq!(simd == 0, swar == 0);
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
