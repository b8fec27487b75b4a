//! Bot log lines -> session Observations: container framing, ANSI, data-driven rule profiles.
//!
//! One [`LogStream`] per file or pod stream: its [`LineFramer`] turns physical lines into
//! logical lines with a time (kubectl / CRI prefixes, CRI partial joining, ANSI stripping), its
//! [`CompiledProfile`] (shared, `Arc`) turns them into
//! [`SessionEvent`](dge_core::observation::SessionEvent)s. Every physical line is
//! counted exactly once as matched, ignored or malformed (the `outcome` label of
//! `discord_gateway_exporter_log_lines_total`); nothing here panics on input or allocates for an
//! ignored line once the stream's buffers have grown.
//!
//! Tokens: a Discord-token-shaped string is replaced by `[REDACTED]` before the line is matched
//! by a regex, so neither the evidence line nor any captured field can hold one. User text: a
//! gateway payload and user-text fields are cut from the evidence line whenever it is read
//! ([`dge_core::observation::LogLine`]), so what a user wrote is never kept.

//!
//! Modules: `stream` ([`LogStream`]), `eval` (one logical line through the rules), `outcome`
//! ([`Outcome`], [`Counts`], [`Classified`]), [`report`] (the `parse` command's text),
//! [`profile`] (the rules as data).

mod ansi;
mod eval;
pub mod framing;
mod memo;
mod outcome;
pub mod profile;
mod redact;
pub mod report;
mod stream;
pub mod structured;
mod time;
pub mod zone;

use memchr::memchr_iter;

pub use dge_core::{CUT, MAX_EVIDENCE_BYTES};
pub use framing::{DEFAULT_MAX_LINE_BYTES, Frame, FramedLine, Framing, LineFramer};
pub use outcome::{Classified, Counts, Outcome, event_text};
pub use profile::{
    Builtins, CAPTURE_NAMES, CompiledProfile, Continuation, Fields, Literals, MatchScratch,
    Placement, Profile, ProfileError, ProfileSet, Rule, RuleMatch, builtin_names, builtin_profile,
    builtins, compile_profile, compile_profile_with, library_names,
};
pub use redact::{REDACTED, redact_tokens};
pub use report::{write_parse_report, write_parse_report_in};
pub use stream::{DETECT_LINES, DETECT_MATCHES, LogStream};
pub use structured::{Format, StructuredFields};
pub use zone::LogZone;

use dge_core::observation::Observation;

/// Call `f` with each line of `bytes` (split on `\n`, a trailing `\r` removed; a last line
/// without `\n` included, an empty tail after the last `\n` not).
pub fn for_each_line(bytes: &[u8], mut f: impl FnMut(&[u8])) {
    let strip = |l: &[u8]| -> usize { l.len() - usize::from(l.last() == Some(&b'\r')) };
    let mut start = 0;
    for nl in memchr_iter(b'\n', bytes) {
        let line = &bytes[start..nl];
        f(&line[..strip(line)]);
        start = nl + 1;
    }
    if start < bytes.len() {
        let line = &bytes[start..];
        f(&line[..strip(line)]);
    }
}

/// Read a whole captured log: every line, then [`LogStream::finish`] (a pending CRI partial is
/// flushed). For a live tail, feed complete lines to [`LogStream::push_line`] instead.
pub fn read_log_bytes(bytes: &[u8], stream: &mut LogStream, out: &mut Vec<Observation>) {
    for_each_line(bytes, |line| {
        stream.push_line(line, out);
    });
    stream.finish(out);
}

/// Like [`read_log_bytes`], and report how each line was classified: `f(line_number, how)`
/// (1-based; a partial flushed at the end carries the last line's number).
pub fn classify_log_bytes(
    bytes: &[u8],
    stream: &mut LogStream,
    out: &mut Vec<Observation>,
    mut f: impl FnMut(usize, Classified),
) {
    let mut n = 0;
    for_each_line(bytes, |line| {
        n += 1;
        f(n, stream.classify_line(line, out));
    });
    for c in stream.classify_finish(out) {
        f(n, c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_lines() {
        let mut lines = Vec::new();
        for_each_line(b"a\r\nb\n\nc", |l| lines.push(l.to_vec()));
        assert_eq!(
            lines,
            vec![b"a".to_vec(), b"b".to_vec(), b"".to_vec(), b"c".to_vec()]
        );
        lines.clear();
        for_each_line(b"a\n", |l| lines.push(l.to_vec()));
        assert_eq!(lines, vec![b"a".to_vec()]);
        lines.clear();
        for_each_line(b"", |l| lines.push(l.to_vec()));
        assert!(lines.is_empty());
    }
}
