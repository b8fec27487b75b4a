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
    dst.clear();
    let mut i = 0;
    // One searcher over the line (a colour code every few bytes makes per-call setup count);
    // escapes inside a sequence already skipped are passed over.
    for esc in memchr::memchr_iter(ESC, src) {
        if esc < i {
            continue;
        }
        dst.extend_from_slice(&src[i..esc]);
        i = skip_escape(src, esc);
    }
    dst.extend_from_slice(&src[i..]);
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
