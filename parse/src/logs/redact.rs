//! Discord bot tokens never leave the parser: a token-shaped string in a line is replaced before
//! the line (or anything captured from it) is kept.
//!
//! Shape: three base64url segments joined by dots, the first 20+ characters (the bot's id), the
//! second 4+ (a timestamp), the third 20+ (an HMAC), e.g.
//! `MTA1NjY3ODk2MjU4NzY1ODE4OA.GhI3kL.abcdefghijklmnopqrstuvwxyz0123456789AB`. `Bot <token>`
//! keeps its `Bot ` and loses the token.

use std::borrow::Cow;

use memchr::{memchr, memchr_iter};

/// What a token is replaced with.
pub const REDACTED: &str = "[REDACTED]";

const MIN_FIRST: usize = 20;
const MIN_SECOND: usize = 4;
const MIN_THIRD: usize = 20;

#[inline]
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}

/// The cheap prefilter: a token needs two dots.
#[inline]
pub(crate) fn may_hold_token(s: &[u8]) -> bool {
    let mut dots = memchr_iter(b'.', s);
    dots.next().is_some() && dots.next().is_some()
}

/// The next token-shaped span at or after `from`: `(start, end)`.
fn find_token(s: &[u8], from: usize) -> Option<(usize, usize)> {
    let n = s.len();
    let mut search = from;
    while let Some(off) = memchr(b'.', &s[search..]) {
        let dot1 = search + off;
        let mut a = dot1;
        while a > from && is_token_byte(s[a - 1]) {
            a -= 1;
        }
        if dot1 - a >= MIN_FIRST {
            let mut b = dot1 + 1;
            while b < n && is_token_byte(s[b]) {
                b += 1;
            }
            let second = b - (dot1 + 1);
            if second >= MIN_SECOND && b < n && s[b] == b'.' {
                let mut c = b + 1;
                while c < n && is_token_byte(s[c]) {
                    c += 1;
                }
                let third = c - (b + 1);
                if third >= MIN_THIRD {
                    return Some((a, c));
                }
            }
        }
        search = dot1 + 1;
    }
    None
}

/// Write `s` into `dst` with every token replaced. Returns false (and leaves `dst` untouched)
/// when `s` holds no token, so the caller can keep using `s`.
pub(crate) fn redact_into(s: &[u8], dst: &mut Vec<u8>) -> bool {
    if !may_hold_token(s) {
        return false;
    }
    let Some(mut span) = find_token(s, 0) else {
        return false;
    };
    dst.clear();
    let mut copied = 0;
    loop {
        dst.extend_from_slice(&s[copied..span.0]);
        dst.extend_from_slice(REDACTED.as_bytes());
        copied = span.1;
        match find_token(s, copied) {
            Some(next) => span = next,
            None => break,
        }
    }
    dst.extend_from_slice(&s[copied..]);
    true
}

/// `s` with every token-shaped string replaced by [`REDACTED`].
pub fn redact_tokens(s: &str) -> Cow<'_, str> {
    let mut buf = Vec::new();
    if redact_into(s.as_bytes(), &mut buf) {
        // Only ASCII runs were replaced by ASCII, so the result is still UTF-8.
        Cow::Owned(
            String::from_utf8(buf)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
        )
    } else {
        Cow::Borrowed(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "MTA1NjY3ODk2MjU4NzY1ODE4OA.GhI3kL.abcdefghijklmnopqrstuvwxyz0123456789AB";

    #[test]
    fn redacts_tokens() {
        assert_eq!(redact_tokens(TOKEN), REDACTED);
        assert_eq!(
            redact_tokens(&format!("Authorization: Bot {TOKEN}")),
            "Authorization: Bot [REDACTED]"
        );
        assert_eq!(
            redact_tokens(&format!("token='{TOKEN}', again {TOKEN}.")),
            "token='[REDACTED]', again [REDACTED]."
        );
        assert_eq!(
            redact_tokens(&format!("a.b.{TOKEN}")),
            "a.b.[REDACTED]",
            "dots before the token"
        );
    }

    #[test]
    fn leaves_lookalikes() {
        for s in [
            "discord.ext.commands.bot: x",
            "my-very-long-service-name-here.default.svc.cluster.local",
            "version 1.2.3",
            "https://discord.com/developers/applications",
            "short.abcd.abcdefghijklmnopqrstuvwxyz",
            "no dots at all",
        ] {
            assert_eq!(redact_tokens(s), s);
        }
    }

    #[test]
    fn prefilter() {
        assert!(!may_hold_token(b"one. dot"));
        assert!(may_hold_token(b"a.b.c"));
    }
}
