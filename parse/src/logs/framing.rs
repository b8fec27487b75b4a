//! Container framing: raw physical lines -> logical lines with their time.
//!
//! `kubectl logs --timestamps` prefixes `<RFC3339Nano> `; kubelet CRI files hold
//! `<RFC3339Nano> stdout|stderr F|P <text>` where `P` continues on the next line of the same
//! stream. Lines without a container timestamp take the message's own timestamp (a zone-less
//! one read in the stream's [`LogZone`]); a tab-led line continues its message and takes the
//! time of the line it continues. Any other line has no time: it is never given its
//! neighbour's.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::{ansi, time, zone::LogZone};
use dge_core::observation::Timestamp;

/// Default bound on one logical line (a joined CRI line, or one physical line): 1 MiB.
pub const DEFAULT_MAX_LINE_BYTES: usize = 1 << 20;

/// How a stream's lines are framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Framing {
    /// Per line: CRI first, then a kubectl timestamp prefix, else plain.
    #[default]
    Auto,
    /// `kubectl logs --timestamps`: `<RFC3339Nano> <text>` (lines without the prefix are read
    /// as plain).
    Kubectl,
    /// Kubelet CRI log files: `<RFC3339Nano> stdout|stderr F|P <text>` (other lines are
    /// malformed).
    Cri,
    /// The bot's own output, nothing in front.
    Plain,
}

impl Framing {
    /// Every framing, for help texts.
    pub const ALL: [Framing; 4] = [Self::Auto, Self::Kubectl, Self::Cri, Self::Plain];

    /// Stable name (`auto`, `kubectl`, `cri`, `plain`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Kubectl => "kubectl",
            Self::Cri => "cri",
            Self::Plain => "plain",
        }
    }
}

impl fmt::Display for Framing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Framing {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|f| f.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| format!("unknown framing {s:?} (expected auto, kubectl, cri or plain)"))
    }
}

/// One complete logical line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FramedLine<'a> {
    /// Container timestamp, else the message's own, else (a tab-led continuation line) the time
    /// of the message it continues; `None` when the line has none.
    pub at: Option<Timestamp>,
    /// The text without container prefix and without ANSI escapes (bytes: may be invalid UTF-8).
    pub text: &'a [u8],
    /// Bytes were dropped (a joined line over the bound), or the line never got its end (a
    /// partial flushed at EOF).
    pub truncated: bool,
    /// `at` is this line's own (container or message) time, not its message's.
    pub own_time: bool,
}

/// What one physical line amounted to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Frame<'a> {
    Line(FramedLine<'a>),
    /// A CRI `P` part, held until its stream's `F` line.
    Partial,
    /// Unusable, with the reason.
    Malformed(&'static str),
}

/// A CRI partial line being joined.
#[derive(Debug, Default)]
struct Pending {
    active: bool,
    at: Option<Timestamp>,
    buf: Vec<u8>,
    truncated: bool,
}

impl Pending {
    fn reset(&mut self) {
        self.active = false;
        self.at = None;
        self.buf.clear();
        self.truncated = false;
    }

    fn append(&mut self, part: &[u8], max: usize) {
        let room = max.saturating_sub(self.buf.len());
        if part.len() > room {
            self.truncated = true;
        }
        self.buf.extend_from_slice(&part[..part.len().min(room)]);
    }
}

/// Stateful per-stream framer. Buffers are reused: a line costs no allocation once they have
/// grown to the stream's longest line.
#[derive(Debug)]
pub struct LineFramer {
    framing: Framing,
    max_line_bytes: usize,
    /// CRI partials of stdout (0) and stderr (1).
    pending: [Pending; 2],
    /// A pending line handed out by the last call, to reset on the next one.
    handed_out: Option<usize>,
    /// ANSI-stripped text.
    scratch: Vec<u8>,
    last_at: Option<Timestamp>,
    /// Zone-less message times are local times of this zone.
    zone: LogZone,
    /// The own time of the last line that was not tab-led: a continuation line's time.
    message_at: Option<Timestamp>,
}

struct Cri<'a> {
    at: Timestamp,
    stream: usize,
    partial: bool,
    content: &'a [u8],
}

/// A CRI line, given the timestamp found at its start.
fn parse_cri(raw: &[u8], ts: time::Found) -> Option<Cri<'_>> {
    let rest = raw.get(ts.len..)?.strip_prefix(b" ")?;
    let (stream, rest) = if let Some(r) = rest.strip_prefix(b"stdout ") {
        (0, r)
    } else {
        (1, rest.strip_prefix(b"stderr ")?)
    };
    // Tags: `F` or `P`, possibly followed by `:`-separated future tags.
    let partial = match rest.first()? {
        b'F' => false,
        b'P' => true,
        _ => return None,
    };
    let content = match rest.get(1) {
        None => &rest[1..],
        Some(b' ') => &rest[2..],
        Some(b':') => {
            let sp = memchr::memchr(b' ', rest)?;
            &rest[sp + 1..]
        }
        Some(_) => return None,
    };
    Some(Cri {
        at: ts.at,
        stream,
        partial,
        content,
    })
}

/// The text with ANSI removed (into `scratch` only when it holds an escape byte).
fn unescape<'a>(body: &'a [u8], scratch: &'a mut Vec<u8>) -> &'a [u8] {
    if ansi::has_escape(body) {
        ansi::strip_into(body, scratch);
        scratch
    } else {
        body
    }
}

impl LineFramer {
    pub fn new(framing: Framing, max_line_bytes: usize) -> Self {
        Self {
            framing,
            max_line_bytes: max_line_bytes.max(1),
            pending: Default::default(),
            handed_out: None,
            scratch: Vec::new(),
            last_at: None,
            zone: LogZone::Utc,
            message_at: None,
        }
    }

    /// Read zone-less message times as local times of `zone` (default UTC).
    pub fn with_zone(mut self, zone: LogZone) -> Self {
        self.zone = zone;
        self
    }

    /// The zone of zone-less message times.
    pub fn zone(&self) -> LogZone {
        self.zone
    }

    pub fn framing(&self) -> Framing {
        self.framing
    }

    pub fn max_line_bytes(&self) -> usize {
        self.max_line_bytes
    }

    /// The time of the last line that had one.
    pub fn last_at(&self) -> Option<Timestamp> {
        self.last_at
    }

    /// A time found in the line's content (a JSON or logfmt time): the clock of the lines after.
    pub fn set_last_at(&mut self, at: Timestamp) {
        self.last_at = Some(at);
    }

    /// Whether a CRI partial line is waiting for its end.
    pub fn has_pending(&self) -> bool {
        self.pending.iter().any(|p| p.active)
    }

    /// Take one physical line (without its `\n`; a trailing `\r` is dropped).
    pub fn push<'a>(&'a mut self, raw: &'a [u8]) -> Frame<'a> {
        if let Some(i) = self.handed_out.take() {
            self.pending[i].reset();
        }
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let max = self.max_line_bytes;

        // CRI and kubectl lines both start with the timestamp: it is read once for both.
        let ts = match self.framing {
            Framing::Auto | Framing::Cri | Framing::Kubectl => time::rfc3339_prefix(raw),
            _ => None,
        };
        if matches!(self.framing, Framing::Auto | Framing::Cri) {
            if let Some(cri) = ts.and_then(|ts| parse_cri(raw, ts)) {
                return self.push_cri(cri);
            }
            if self.framing == Framing::Cri {
                return Frame::Malformed(if raw.len() > max {
                    "line too long"
                } else {
                    "not a CRI log line"
                });
            }
        }
        if raw.len() > max {
            return Frame::Malformed("line too long");
        }
        let (container_at, body) = match ts {
            Some(ts) if ts.len == raw.len() => (Some(ts.at), &raw[ts.len..]),
            Some(ts) if raw[ts.len] == b' ' => (Some(ts.at), &raw[ts.len + 1..]),
            _ => (None, raw),
        };
        let text = unescape(body, &mut self.scratch);
        let own = container_at.or_else(|| time::message_time(text, self.zone));
        let at = if own.is_some() {
            own
        } else if text.first() == Some(&b'\t') {
            self.message_at
        } else {
            None
        };
        if text.first() != Some(&b'\t') {
            self.message_at = own;
        }
        if at.is_some() {
            self.last_at = at;
        }
        Frame::Line(FramedLine {
            at,
            text,
            truncated: false,
            own_time: own.is_some(),
        })
    }

    fn push_cri<'a>(&'a mut self, cri: Cri<'a>) -> Frame<'a> {
        let max = self.max_line_bytes;
        self.last_at = Some(cri.at);
        let p = &mut self.pending[cri.stream];
        if cri.partial {
            if !p.active {
                p.active = true;
                p.at = Some(cri.at);
            }
            p.append(cri.content, max);
            return Frame::Partial;
        }
        if p.active {
            p.append(cri.content, max);
            // Complete: no longer pending; its buffer is cleared on the next call.
            p.active = false;
            self.handed_out = Some(cri.stream);
            let (at, truncated) = (p.at, p.truncated);
            let text = unescape(&self.pending[cri.stream].buf, &mut self.scratch);
            return Frame::Line(FramedLine {
                at,
                text,
                truncated,
                own_time: true,
            });
        }
        let truncated = cri.content.len() > max;
        let content = &cri.content[..cri.content.len().min(max)];
        Frame::Line(FramedLine {
            at: Some(cri.at),
            text: unescape(content, &mut self.scratch),
            truncated,
            own_time: true,
        })
    }

    /// At the end of the stream: hand out a CRI partial line that never got its `F` (marked
    /// truncated). Call until it returns `None`.
    pub fn flush(&mut self) -> Option<FramedLine<'_>> {
        if let Some(i) = self.handed_out.take() {
            self.pending[i].reset();
        }
        let i = self.pending.iter().position(|p| p.active)?;
        self.pending[i].active = false;
        self.handed_out = Some(i);
        let at = self.pending[i].at;
        let text = unescape(&self.pending[i].buf, &mut self.scratch);
        Some(FramedLine {
            at,
            text,
            truncated: true,
            own_time: true,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};

    fn ts(s: &str) -> Timestamp {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn line(f: Frame<'_>) -> (Option<Timestamp>, String, bool) {
        match f {
            Frame::Line(l) => (
                l.at,
                String::from_utf8_lossy(l.text).into_owned(),
                l.truncated,
            ),
            other => panic!("expected a line, got {other:?}"),
        }
    }

    #[test]
    fn kubectl_prefix() {
        let mut f = LineFramer::new(Framing::Auto, 1024);
        let (at, text, _) = line(f.push(b"2026-04-19T04:12:04.912640123Z hello world"));
        assert_eq!(at, Some(ts("2026-04-19T04:12:04.912640123Z")));
        assert_eq!(text, "hello world");
        let (at, text, _) = line(f.push(b"2026-04-19T04:12:05Z"));
        assert_eq!(at, Some(ts("2026-04-19T04:12:05Z")));
        assert_eq!(text, "");
        // Plain framing keeps the text whole, and reads the message's own time.
        let mut f = LineFramer::new(Framing::Plain, 1024);
        let (at, text, _) = line(f.push(b"2026-04-19T04:12:04Z hello"));
        assert_eq!(at, Some(ts("2026-04-19T04:12:04Z")));
        assert_eq!(text, "2026-04-19T04:12:04Z hello");
    }

    #[test]
    fn cri_join_and_streams() {
        let mut f = LineFramer::new(Framing::Cri, 1024);
        assert_eq!(
            f.push(b"2026-04-19T04:12:04.1Z stdout P hel"),
            Frame::Partial
        );
        assert_eq!(
            f.push(b"2026-04-19T04:12:04.2Z stderr P err-"),
            Frame::Partial
        );
        assert_eq!(
            f.push(b"2026-04-19T04:12:04.3Z stdout P lo "),
            Frame::Partial
        );
        let (at, text, tr) = line(f.push(b"2026-04-19T04:12:04.4Z stdout F world"));
        assert_eq!(
            (at, text.as_str(), tr),
            (Some(ts("2026-04-19T04:12:04.1Z")), "hello world", false)
        );
        let (_, text, _) = line(f.push(b"2026-04-19T04:12:04.5Z stdout F next"));
        assert_eq!(text, "next");
        let (at, text, _) = line(f.push(b"2026-04-19T04:12:04.6Z stderr F line"));
        assert_eq!(
            (at, text.as_str()),
            (Some(ts("2026-04-19T04:12:04.2Z")), "err-line")
        );
        assert!(!f.has_pending());
        assert_eq!(f.push(b"garbage"), Frame::Malformed("not a CRI log line"));
        let (_, text, _) = line(f.push(b"2026-04-19T04:12:04.7Z stdout F"));
        assert_eq!(text, "");
    }

    #[test]
    fn cri_join_is_bounded_and_flushes() {
        let mut f = LineFramer::new(Framing::Auto, 8);
        assert_eq!(
            f.push(b"2026-04-19T04:12:04Z stdout P 12345"),
            Frame::Partial
        );
        assert_eq!(
            f.push(b"2026-04-19T04:12:04Z stdout P 67890"),
            Frame::Partial
        );
        let (_, text, tr) = line(f.push(b"2026-04-19T04:12:04Z stdout F abc"));
        assert_eq!((text.as_str(), tr), ("12345678", true));
        assert_eq!(
            f.push(b"2026-04-19T04:12:05Z stdout P tail"),
            Frame::Partial
        );
        let fl = f.flush().unwrap();
        assert_eq!((fl.text, fl.truncated), (&b"tail"[..], true));
        assert!(f.flush().is_none());
    }

    #[test]
    fn no_neighbours_time() {
        let mut f = LineFramer::new(Framing::Auto, 1024);
        let (at, _, _) = line(f.push(b"INFO  serenity::gateway::shard: no time yet"));
        assert_eq!(at, None);
        let (at, text, _) = line(f.push(b"[2026-04-19 04:12:26] [INFO    ] discord.client: x"));
        assert_eq!(at, Some(ts("2026-04-19T04:12:26Z")));
        assert_eq!(text, "[2026-04-19 04:12:26] [INFO    ] discord.client: x");
        // A tab-led line continues that message and has its time ...
        let (at, _, _) = line(f.push(b"\tat net.dv8tion.jda.internal.requests.WebSocketClient"));
        assert_eq!(at, Some(ts("2026-04-19T04:12:26Z")));
        // ... any other line has none of its own: not the previous line's.
        let (at, _, _) = line(f.push(b"INFO  serenity::gateway::shard: later"));
        assert_eq!(at, None);
        let (at, _, _) = line(f.push(b"\tcontinues a line without a time"));
        assert_eq!(at, None);
        assert_eq!(f.last_at(), Some(ts("2026-04-19T04:12:26Z")));
    }

    #[test]
    fn untimed_lines_behind_prefixes_take_the_prefix() {
        // kubectl --timestamps and CRI: the container's time, whatever the text holds.
        let mut f = LineFramer::new(Framing::Auto, 1024);
        let (at, text, _) = line(f.push(b"2026-04-19T04:12:04.5Z [WS => Shard 0] Identifying"));
        assert_eq!(at, Some(ts("2026-04-19T04:12:04.5Z")));
        assert_eq!(text, "[WS => Shard 0] Identifying");
        let (at, _, _) = line(
            f.push(b"2026-04-19T04:12:05.25+03:00 stdout F INFO  serenity::gateway::shard: x"),
        );
        assert_eq!(at, Some(ts("2026-04-19T01:12:05.25Z")));
        let (at, _, _) = line(f.push(b"2026-04-19T04:12:06,5Z stderr F INFO x"));
        assert_eq!(at, Some(ts("2026-04-19T04:12:06.5Z")));
        // The prefix wins over a zone-less time in the message, whatever the zone.
        let mut f = LineFramer::new(Framing::Kubectl, 1024).with_zone("+03:00".parse().unwrap());
        let (at, _, _) = line(f.push(b"2026-04-19T04:12:07Z [2026-04-19 07:00:00] [INFO    ] x"));
        assert_eq!(at, Some(ts("2026-04-19T04:12:07Z")));
        // Without a prefix the message's own local time is read in the zone.
        let (at, _, _) = line(f.push(b"[2026-04-19 07:00:00] [INFO    ] x"));
        assert_eq!(at, Some(ts("2026-04-19T04:00:00Z")));
    }

    #[test]
    fn ansi_crlf_and_long_lines() {
        let mut f = LineFramer::new(Framing::Auto, 64);
        let (at, text, _) = line(
            f.push(b"\x1b[2m2026-04-19T04:12:03.483915Z\x1b[0m \x1b[32m INFO\x1b[0m openab: x\r"),
        );
        assert_eq!(at, Some(ts("2026-04-19T04:12:03.483915Z")));
        assert_eq!(text, "2026-04-19T04:12:03.483915Z  INFO openab: x");
        assert_eq!(f.push(&[b'a'; 65]), Frame::Malformed("line too long"));
        let (_, text, _) = line(f.push(&[b'a'; 64]));
        assert_eq!(text.len(), 64);
    }

    #[test]
    fn framing_names() {
        for fr in Framing::ALL {
            assert_eq!(fr.as_str().parse::<Framing>(), Ok(fr));
        }
        assert!("json".parse::<Framing>().is_err());
    }
}
