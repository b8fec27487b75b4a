//! Splitting a capture into JSON values, surviving anything.
//!
//! The bytes are read as a stream of concatenated JSON values (that covers one document,
//! `kubectl get -w -o json` pretty objects back to back, and JSON lines). When a value fails
//! to parse (truncated, corrupt, binary garbage, invalid UTF-8, nested too deep) the bad
//! region is reported once, from the start of the failed value, and reading resumes at the
//! next line that starts with `{` or `[` in column 0. kubectl indents everything inside an
//! object, so that line is the next top-level object of a pretty stream, or simply the next
//! line of JSON lines. Resuming from the *start* of the failed value (not from where the parser
//! gave up) matters: a truncated object swallows the next line before the parser notices, and
//! that next line is a good object that must not be lost.

use serde_json::Value;
use serde_json::error::Category;

pub(super) enum Frame {
    /// A well-formed JSON value starting at `offset`.
    Value { offset: usize, value: Value },
    /// Bytes from `offset` (for `len` bytes) that are not JSON.
    Bad {
        offset: usize,
        len: usize,
        reason: String,
    },
}

fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\n' | b'\t' | b'\r')
}

fn skip_ws(bytes: &[u8], mut pos: usize) -> usize {
    while pos < bytes.len() && is_ws(bytes[pos]) {
        pos += 1;
    }
    pos
}

/// The first line start after `from` whose first byte opens a JSON object or array.
fn next_resync_point(bytes: &[u8], from: usize) -> usize {
    let mut at = from.min(bytes.len());
    while let Some(nl) = memchr::memchr(b'\n', &bytes[at..]) {
        let line = at + nl + 1;
        if matches!(bytes.get(line), Some(b'{' | b'[')) {
            return line;
        }
        at = line;
    }
    bytes.len()
}

fn describe(e: &serde_json::Error) -> String {
    let full = e.to_string();
    // serde's position is relative to where this attempt started; the caller reports its own.
    let msg = full
        .rfind(" at line ")
        .map_or(full.as_str(), |i| &full[..i]);
    match e.classify() {
        Category::Eof => "truncated JSON: the input ends inside this value".to_owned(),
        _ => format!("not valid JSON ({msg})"),
    }
}

/// Calls `sink` with every value and every bad region of `bytes`, in order.
///
/// A value directly followed by a stray closing bracket (`}` or `]`) is not
/// trusted: its braces balanced only by accident (a chunk cut out of the middle of an object),
/// so the value and the stray bytes are reported together as one bad region.
pub(super) fn frames(bytes: &[u8], mut sink: impl FnMut(Frame)) {
    let mut pos = 0;
    if bytes.starts_with(b"\xEF\xBB\xBF") {
        pos = 3;
    }
    let mut pending: Option<(usize, Value)> = None;
    while pos < bytes.len() {
        let base = pos;
        let slice = &bytes[base..];
        let mut stream = serde_json::Deserializer::from_slice(slice).into_iter::<Value>();
        loop {
            let start = skip_ws(slice, stream.byte_offset());
            match stream.next() {
                None => {
                    pos = bytes.len();
                    break;
                }
                Some(Ok(value)) => {
                    if let Some((offset, value)) = pending.replace((base + start, value)) {
                        sink(Frame::Value { offset, value });
                    }
                }
                Some(Err(e)) => {
                    let mut offset = base + start;
                    let stray = matches!(bytes.get(offset), Some(b'}' | b']'));
                    let reason = match pending.take() {
                        Some((previous, _)) if stray => {
                            offset = previous;
                            "corrupt JSON: a value ends early and stray brackets follow it \
                             (part of it is missing)"
                                .to_owned()
                        }
                        Some((offset, value)) => {
                            sink(Frame::Value { offset, value });
                            describe(&e)
                        }
                        None => describe(&e),
                    };
                    let resume = next_resync_point(bytes, base + start);
                    sink(Frame::Bad {
                        offset,
                        len: resume - offset,
                        reason,
                    });
                    pos = resume;
                    break;
                }
            }
        }
    }
    if let Some((offset, value)) = pending {
        sink(Frame::Value { offset, value });
    }
}

/// 1-based line numbers for increasing byte offsets, counted once.
pub(super) struct Lines<'a> {
    bytes: &'a [u8],
    offset: usize,
    line: usize,
}

impl<'a> Lines<'a> {
    pub(super) fn new(bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            offset: 0,
            line: 1,
        }
    }

    pub(super) fn line_of(&mut self, offset: usize) -> usize {
        let offset = offset.min(self.bytes.len());
        if offset < self.offset {
            self.offset = 0;
            self.line = 1;
        }
        self.line += memchr::memchr_iter(b'\n', &self.bytes[self.offset..offset]).count();
        self.offset = offset;
        self.line
    }
}
