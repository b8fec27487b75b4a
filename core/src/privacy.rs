//! What users wrote never leaves the engine: a log line travels in an observation as a
//! [`LogLine`], whose only way out is the cut text (evidence in findings, the API, traces and
//! recordings). The cut drops the gateway payloads and user-text fields a DEBUG or TRACE line
//! carries; the rules have read the line before (a READY payload still names the bot and its
//! session). It is made when something keeps the line, not per line read: most dispatch lines
//! are counted and dropped, and cutting each of them was a tenth of the parse-and-correlate
//! path's instructions (docs/performance.md).
//!
//! - A payload object, JSON or a Python dict (`{'t': 'MESSAGE_CREATE', 's': 5, 'op': 0, 'd':
//!   {...}}`, `{"t":...}`), is replaced by what a finding needs: its event type, sequence,
//!   opcode and channel id (`{t: MESSAGE_CREATE, s: 5, op: 0, channel_id: 1496011987654321098,
//!   …}`).
//! - The value of a user-text field (`content`, `username`, `global_name`, `nick`,
//!   `display_name`, `author`, `senders`) in any spelling (`key=..`, `key: ..`, `"key": ..`,
//!   `'key': ..`; a quoted string, a bracketed list or object, or a bare word) becomes `[cut]`.

use memchr::memchr2;

/// What a user-text value is replaced with.
pub const CUT: &str = "[cut]";

/// The longest evidence text kept per line, in bytes (a longer one ends with `…`).
pub const MAX_EVIDENCE_BYTES: usize = 2048;

/// Lines longer than this are cut when made, not when read: an observation in flight holds at
/// most this much of a line.
const LAZY_MAX_BYTES: usize = 8 * MAX_EVIDENCE_BYTES;

/// A log line in an observation (tokens already redacted by the reader). What it says is read
/// only through [`LogLine::text`], its `Display`, `Debug` and `Serialize`: all give the cut text.
#[derive(Clone)]
pub struct LogLine(Box<[u8]>);

impl LogLine {
    /// The line's bytes, as read (UTF-8 or not).
    pub fn new(line: &[u8]) -> Self {
        let line = line.trim_ascii_end();
        if line.len() > LAZY_MAX_BYTES {
            return Self(evidence_text(line).into_bytes().into_boxed_slice());
        }
        Self(line.into())
    }

    /// The line without payloads and user text, lossy UTF-8, at most [`MAX_EVIDENCE_BYTES`]
    /// (then ending with `…`).
    pub fn text(&self) -> String {
        evidence_text(&self.0)
    }
}

impl From<&str> for LogLine {
    fn from(s: &str) -> Self {
        Self::new(s.as_bytes())
    }
}

impl From<String> for LogLine {
    fn from(s: String) -> Self {
        Self::new(s.as_bytes())
    }
}

impl std::fmt::Display for LogLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text())
    }
}

impl std::fmt::Debug for LogLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&self.text(), f)
    }
}

/// Two lines are the same when what they show is (a recorded line, cut, equals its original).
impl PartialEq for LogLine {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0 || self.text() == other.text()
    }
}

impl serde::Serialize for LogLine {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text())
    }
}

impl<'de> serde::Deserialize<'de> for LogLine {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Self::from)
    }
}

/// The evidence text of a line: payloads and user text cut, lossy UTF-8, bounded.
fn evidence_text(text: &[u8]) -> String {
    let mut cut = Vec::new();
    if cut_into(text, &mut cut) {
        let keep = cut.trim_ascii_end().len();
        if keep <= MAX_EVIDENCE_BYTES {
            cut.truncate(keep);
            // The line's own bytes with UTF-8 put in: no copy when the line is UTF-8.
            return String::from_utf8(cut)
                .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
        }
        return bounded(&cut);
    }
    bounded(text)
}

/// Lossy UTF-8, cut at [`MAX_EVIDENCE_BYTES`] (ending with `…`).
fn bounded(text: &[u8]) -> String {
    let text = text.trim_ascii_end();
    if text.len() <= MAX_EVIDENCE_BYTES {
        // Valid UTF-8 (nearly every line) is checked much faster than the lossy path walks it.
        return match std::str::from_utf8(text) {
            Ok(s) => s.to_owned(),
            Err(_) => String::from_utf8_lossy(text).into_owned(),
        };
    }
    let mut cut = MAX_EVIDENCE_BYTES;
    // Do not split a UTF-8 sequence: back up over continuation bytes.
    while cut > 0 && (text[cut] & 0xc0) == 0x80 {
        cut -= 1;
    }
    let mut s = String::from_utf8_lossy(&text[..cut]).into_owned();
    s.push('…');
    s
}

/// Keys a payload's summary keeps (values that are numbers, `null` or event-type words).
const KEPT_KEYS: [&[u8]; 4] = [b"t", b"s", b"op", b"channel_id"];

/// `text` without payloads and user text, into `dst`. False (and `dst` untouched) when there
/// is nothing to cut, so the caller keeps `text`. A cut starts at a `{`, `=` or `:`: the line
/// is read 32 bytes at a time for those (vector compares where SSE2 exists), and each one
/// found is checked where it stands (a separator whose previous byte cannot end a key costs one
/// table look-up); no allocation when nothing is cut.
pub(crate) fn cut_into(text: &[u8], dst: &mut Vec<u8>) -> bool {
    let mut out: Option<Vec<u8>> = None;
    let mut copied = 0;
    let mut base = 0;
    'chunks: while base < text.len() {
        let mut mask = marks(&text[base..]);
        while mask != 0 {
            let at = base + mask.trailing_zeros() as usize;
            mask &= mask - 1;
            let cut = if text[at] == b'{' {
                starts_object(&text[at + 1..]).then_some((at, None))
            } else if at > 0 && KEY_END[usize::from(text[at - 1])] {
                user_key_before(text, at).map(|value| (value, Some(CUT)))
            } else {
                None
            };
            let Some((start, with)) = cut else {
                continue;
            };
            let end = value_end(text, start);
            if end == start {
                continue;
            }
            let o = out.get_or_insert_with(|| Vec::with_capacity(text.len()));
            o.extend_from_slice(&text[copied..start]);
            match with {
                Some(w) => o.extend_from_slice(w.as_bytes()),
                None => summarize(&text[start..end], o),
            }
            copied = end;
            base = end;
            continue 'chunks;
        }
        base += 32;
    }
    let Some(mut o) = out else {
        return false;
    };
    o.extend_from_slice(&text[copied..]);
    *dst = o;
    true
}

/// The bytes a user-text key (or its closing quote) can end with, before its `=` or `:`.
static KEY_END: [bool; 256] = {
    let mut t = [false; 256];
    let ends = *b"tekrs'\"";
    let mut i = 0;
    while i < ends.len() {
        t[ends[i] as usize] = true;
        i += 1;
    }
    t
};

/// One bit per `{`, `=` or `:` among the first 32 bytes of `s`.
#[inline]
fn marks(s: &[u8]) -> u32 {
    #[cfg(target_arch = "x86_64")]
    {
        // The tail is copied into a zeroed block (zero is none of the three).
        let mut tail = [0u8; 32];
        let chunk = match s.first_chunk::<32>() {
            Some(c) => c,
            None => {
                tail[..s.len()].copy_from_slice(s);
                &tail
            }
        };
        let lo = marks16(chunk[..16].try_into().expect("16 bytes"));
        let hi = marks16(chunk[16..].try_into().expect("16 bytes"));
        lo | hi << 16
    }
    #[cfg(not(target_arch = "x86_64"))]
    marks_bytewise(s)
}

/// [`marks`] of 16 bytes: three vector compares and a mask move.
#[cfg(target_arch = "x86_64")]
#[inline]
fn marks16(chunk: &[u8; 16]) -> u32 {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_movemask_epi8, _mm_or_si128, _mm_set_epi64x, _mm_set1_epi8,
    };
    let lo = i64::from_le_bytes(chunk[..8].try_into().expect("8 bytes"));
    let hi = i64::from_le_bytes(chunk[8..].try_into().expect("8 bytes"));
    // SAFETY: SSE2 is part of the x86_64 baseline, and these are register operations only.
    unsafe {
        let v = _mm_set_epi64x(hi, lo);
        let eq = _mm_or_si128(
            _mm_or_si128(
                _mm_cmpeq_epi8(v, _mm_set1_epi8(b'{' as i8)),
                _mm_cmpeq_epi8(v, _mm_set1_epi8(b'=' as i8)),
            ),
            _mm_cmpeq_epi8(v, _mm_set1_epi8(b':' as i8)),
        );
        (_mm_movemask_epi8(eq) as u32) & 0xffff
    }
}

/// [`marks`] a byte at a time (targets without SSE2, and the reference it is tested against).
#[cfg_attr(target_arch = "x86_64", allow(dead_code))]
fn marks_bytewise(s: &[u8]) -> u32 {
    s.iter()
        .take(32)
        .enumerate()
        .filter(|(_, b)| matches!(b, b'{' | b'=' | b':'))
        .fold(0, |m, (i, _)| m | 1 << i)
}

/// After `{`: a quoted key (spaces allowed), the start of a JSON object or Python dict.
fn starts_object(rest: &[u8]) -> bool {
    let rest = rest.trim_ascii_start();
    matches!(rest.first(), Some(b'\'' | b'"'))
}

/// The `=` or `:` at `sep` ends a user-text key (a whole word, maybe quoted: `content=`,
/// `content: `, `"content": `, `'content': `): where its value starts. The word's last byte
/// picks the keys to compare, so most separators cost a compare or two.
fn user_key_before(text: &[u8], sep: usize) -> Option<usize> {
    let mut end = sep;
    let quote = match end.checked_sub(1).map(|i| text[i]) {
        Some(q @ (b'"' | b'\'')) => {
            end -= 1;
            Some(q)
        }
        _ => None,
    };
    let keys: &[&[u8]] = match end.checked_sub(1).map(|i| text[i])? {
        b't' => &[b"content"],
        b'e' => &[b"username", b"global_name", b"display_name"],
        b'k' => &[b"nick"],
        b'r' => &[b"author"],
        b's' => &[b"senders"],
        _ => return None,
    };
    let head = &text[..end];
    let key = keys.iter().find(|k| head.ends_with(k))?;
    let start = end - key.len();
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    match (quote, start.checked_sub(1).map(|i| text[i])) {
        (Some(q), Some(b)) if b == q => {}
        (Some(_), _) => return None,
        (None, Some(b)) if word(b) => return None,
        (None, _) => {}
    }
    let mut value = sep + 1;
    if text[sep] == b':' {
        while text.get(value) == Some(&b' ') {
            value += 1;
        }
    }
    Some(value)
}

/// The end of the value starting at `i`: a quoted string, a bracketed list or object (nested,
/// quotes respected; the line's end when it never closes), or a bare word up to a space, comma
/// or closing bracket.
fn value_end(text: &[u8], i: usize) -> usize {
    let Some(&first) = text.get(i) else {
        return i;
    };
    match first {
        b'"' | b'\'' => string_end(text, i),
        b'{' | b'[' | b'(' => {
            let mut depth = 0usize;
            let mut j = i;
            while j < text.len() {
                match text[j] {
                    b'"' | b'\'' => {
                        j = string_end(text, j);
                        continue;
                    }
                    b'{' | b'[' | b'(' => depth += 1,
                    b'}' | b']' | b')' => {
                        depth -= 1;
                        if depth == 0 {
                            return j + 1;
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            text.len()
        }
        _ => {
            let rest = &text[i..];
            let stop = rest
                .iter()
                .position(|b| matches!(b, b' ' | b',' | b'{' | b'[' | b'(' | b'}' | b']' | b')'))
                .unwrap_or(rest.len());
            // `User { .. }`, `Some("..")`: the word and its group.
            let after = i + stop + usize::from(rest.get(stop) == Some(&b' '));
            if stop > 0 && matches!(text.get(after), Some(b'{' | b'(' | b'[')) {
                return value_end(text, after);
            }
            i + stop
        }
    }
}

/// The end of the quoted string at `i` (past its closing quote; the line's end when none).
fn string_end(text: &[u8], i: usize) -> usize {
    let q = text[i];
    let mut j = i + 1;
    while let Some(off) = memchr2(q, b'\\', &text[j..]) {
        let at = j + off;
        if text[at] == b'\\' {
            j = at + 2;
            if j >= text.len() {
                return text.len();
            }
            continue;
        }
        return at + 1;
    }
    text.len()
}

/// A payload object -> `{t: MESSAGE_CREATE, s: 5, op: 0, channel_id: 1, …}`.
fn summarize(obj: &[u8], out: &mut Vec<u8>) {
    out.push(b'{');
    let mut first = true;
    for key in KEPT_KEYS {
        if let Some(v) = kept_value(obj, key) {
            if !first {
                out.extend_from_slice(b", ");
            }
            first = false;
            out.extend_from_slice(key);
            out.extend_from_slice(b": ");
            out.extend_from_slice(v);
        }
    }
    out.extend_from_slice(if first { "…}" } else { ", …}" }.as_bytes());
}

/// The first value of the quoted key `key` in `obj` when it is harmless: a number, `null` /
/// `None`, or an upper-case event-type word.
fn kept_value<'a>(obj: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    let mut j = 0;
    while j < obj.len() {
        match obj[j] {
            b'"' | b'\'' => {
                let end = string_end(obj, j);
                let inner = &obj[j + 1..end.saturating_sub(1).max(j + 1)];
                let after = obj[end..].trim_ascii_start();
                if inner == key && after.first() == Some(&b':') {
                    let colon = obj.len() - after.len();
                    let rest = &obj[colon + 1..];
                    let vstart = colon + 1 + (rest.len() - rest.trim_ascii_start().len());
                    let v = &obj[vstart..value_end(obj, vstart)];
                    let v = match v {
                        [b'"' | b'\'', inner @ .., b'"' | b'\''] => inner,
                        v => v,
                    };
                    let harmless = !v.is_empty()
                        && v.len() <= 40
                        && (v.iter().all(u8::is_ascii_digit)
                            || v == b"null"
                            || v == b"None"
                            || v.iter().all(|b| {
                                b.is_ascii_uppercase() || *b == b'_' || b.is_ascii_digit()
                            }));
                    if harmless {
                        return Some(v);
                    }
                }
                j = end;
            }
            _ => j += 1,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cut(s: &str) -> String {
        let mut dst = Vec::new();
        if cut_into(s.as_bytes(), &mut dst) {
            String::from_utf8(dst).unwrap()
        } else {
            s.to_owned()
        }
    }

    #[test]
    fn payloads_keep_type_sequence_and_channel() {
        let py = "[2026-04-19 04:12:29] [DEBUG   ] discord.gateway: For Shard ID None: WebSocket Event: {'t': 'MESSAGE_CREATE', 's': 5, 'op': 0, 'd': {'content': 'my secret plan', 'channel_id': '1496011987654321098', 'author': {'username': 'alice', 'id': '412233445566778899'}}}";
        assert_eq!(
            cut(py),
            "[2026-04-19 04:12:29] [DEBUG   ] discord.gateway: For Shard ID None: WebSocket Event: {t: MESSAGE_CREATE, s: 5, op: 0, channel_id: 1496011987654321098, …}"
        );
        let json = r#"TRACE WebSocketClient - <- {"op":0,"s":7,"t":"MESSAGE_CREATE","d":{"content":"it's \"quoted\" {}","channel_id":"1"}}"#;
        assert_eq!(
            cut(json),
            "TRACE WebSocketClient - <- {t: MESSAGE_CREATE, s: 7, op: 0, channel_id: 1, …}"
        );
        // A type that is not a word is not kept; a payload cut at the line's end is cut whole.
        assert_eq!(cut("x {'t': 'hello there', 'd': {'content': 'a"), "x {…}");
    }

    #[test]
    fn evidence_is_bounded() {
        let long = "é".repeat(MAX_EVIDENCE_BYTES);
        let e = LogLine::from(long.as_str()).text();
        assert!(e.len() <= MAX_EVIDENCE_BYTES + '…'.len_utf8());
        assert!(e.ends_with('…'));
        assert!(!e.contains('\u{fffd}'));
        assert_eq!(LogLine::new(b"ok \xff  ").text(), "ok \u{fffd}");
    }

    #[test]
    fn a_line_shows_only_its_cut_text() {
        let raw = r#"batch dispatched senders=["alice"] n=1"#;
        let shown = "batch dispatched senders=[cut] n=1";
        let line = LogLine::from(raw);
        assert_eq!(line.text(), shown);
        assert_eq!(line.to_string(), shown);
        assert_eq!(format!("{line:?}"), format!("{shown:?}"));
        let json = serde_json::to_string(&line).unwrap();
        assert_eq!(json, format!("{shown:?}"));
        // Read back from a recording, it equals the line it was recorded from.
        let back: LogLine = serde_json::from_str(&json).unwrap();
        assert_eq!(back, line);
        // A line too long to carry whole is cut when made.
        let long = format!("{raw} {}", "x".repeat(LAZY_MAX_BYTES));
        let line = LogLine::from(long.as_str());
        assert!(!String::from_utf8_lossy(&line.0).contains("alice"));
        assert!(line.0.len() <= MAX_EVIDENCE_BYTES + '…'.len_utf8());
    }

    #[test]
    fn marks_agree_bytewise() {
        let s = b"a{b=c:d  {'x': 1} key=value: and the rest of a longer line =:{";
        for i in 0..s.len() {
            assert_eq!(marks(&s[i..]), marks_bytewise(&s[i..]), "{i}");
        }
    }

    #[test]
    fn user_text_fields() {
        assert_eq!(
            cut(r#"batch dispatched thread_key=discord:1 senders=["alice", "bob"] n=1"#),
            "batch dispatched thread_key=discord:1 senders=[cut] n=1"
        );
        assert_eq!(
            cut(
                r#"Message { id: MessageId(1), content: "my secret plan", author: User { name: "alice" }, nick: None }"#
            ),
            r#"Message { id: MessageId(1), content: [cut], author: [cut], nick: [cut] }"#
        );
        assert_eq!(
            cut(r#"received message content="my secret plan" username=alice"#),
            "received message content=[cut] username=[cut]"
        );
        // Look-alikes stay.
        for s in [
            "discord bot connected user=AgentBroker",
            "contents=1 nickname=x unauthor=y",
            "Shard ID None has connected to Gateway (Session ID: 388b).",
        ] {
            assert_eq!(cut(s), s);
        }
    }
}
