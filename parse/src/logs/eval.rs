//! Matching one logical line: structured decoding, continuation, the prefilter, redaction,
//! the rules, and the observation with its evidence.

use super::stream::{Buffers, Meta};
use super::structured::{self, Format};
use super::{Classified, CompiledProfile, Outcome, redact};
use crate::logs::framing::FramedLine;
use dge_core::observation::{Body, LogLine, Observation, SessionObservation, Timestamp};

/// Longest multi-line message (its first line and continuation lines) the rules read whole.
const MAX_MESSAGE_BYTES: usize = 4096;

/// What came of one logical line.
pub(super) struct Done {
    pub(super) outcome: Outcome,
    /// The matched rule's family.
    pub(super) group: Option<u8>,
    /// A time read from the line's content (JSON / logfmt) for the framer's clock.
    pub(super) new_time: Option<Timestamp>,
    /// The line's time, when it had one.
    pub(super) at: Option<Timestamp>,
}

impl Done {
    pub(super) fn ignored() -> Self {
        Self {
            outcome: Outcome::Ignored,
            group: None,
            new_time: None,
            at: None,
        }
    }

    fn malformed() -> Self {
        Self {
            outcome: Outcome::Malformed,
            ..Self::ignored()
        }
    }
}

/// Matching one logical line, over the stream's parts.
pub(super) struct Eval<'s, 'd> {
    pub(super) profile: &'s CompiledProfile,
    pub(super) meta: &'s Meta,
    pub(super) bufs: &'s mut Buffers,
    pub(super) last_malformed: &'s mut Option<&'static str>,
    pub(super) mask: u64,
    pub(super) detail: Option<&'d mut Classified>,
}

pub(super) fn note(detail: &mut Option<&mut Classified>, note: &'static str) {
    if let Some(d) = detail.as_deref_mut() {
        d.note = Some(note);
    }
}

impl Eval<'_, '_> {
    pub(super) fn line(self, line: FramedLine<'_>, out: &mut Vec<Observation>) -> Done {
        let Eval {
            profile,
            meta,
            bufs,
            last_malformed,
            mask,
            mut detail,
        } = self;
        let raw = line.text;
        // A tab-led (`indent`: or space-led) line continues the message of the last line that
        // was not one.
        let cont = profile.continues_line(raw, mask);
        let mut fmt = if cont {
            Format::Text
        } else {
            structured::line_format(raw, profile.format())
        };
        let mut at = line.at;
        let mut new_time = None;
        if fmt != Format::Text
            && !line.own_time
            && let Some(t) =
                structured::line_time_in(raw, fmt, profile.structured_fields(), meta.zone)
        {
            at = Some(t);
            new_time = Some(t);
        }
        if cont {
            at = at.or(bufs.message_at);
        } else {
            bufs.message_at = at;
        }
        if let Some(d) = detail.as_deref_mut() {
            d.at = at;
            d.truncated = line.truncated;
        }
        let untimed = at.is_none();
        if untimed {
            if raw.iter().all(u8::is_ascii_whitespace) {
                note(&mut detail, "blank");
                return Done::ignored();
            }
            // Counted, never given a neighbour's time. Only `parse` goes on, to say what the
            // line would have been with a time.
            *last_malformed = Some("no timestamp");
            if detail.is_none() {
                if !cont {
                    bufs.header_ok = false;
                }
                return Done::malformed();
            }
        }
        let ignored = |detail: &mut Option<&mut Classified>, why| {
            note(detail, why);
            if untimed {
                if let Some(d) = detail.as_deref_mut() {
                    d.would_be = Some(Outcome::Ignored);
                    d.note = Some("no timestamp");
                }
                return Done::malformed();
            }
            Done {
                new_time,
                at,
                ..Done::ignored()
            }
        };
        let Buffers {
            scratch,
            redacted,
            work,
            header,
            header_ok,
            ..
        } = bufs;
        if !cont {
            *header_ok = false;
        }
        // The hot path: a line without any rule's literal ends here, without allocating.
        let (text, min_end): (&[u8], usize) = if cont {
            if !*header_ok {
                return ignored(&mut detail, "continuation");
            }
            work.clear();
            work.extend_from_slice(header);
            work.push(b'\n');
            work.extend_from_slice(raw);
            let min_end = header.len() + 1;
            // Later lines of the message are read with this one (`Total:` then `Remaining:`),
            // up to a bound.
            if min_end + raw.len() <= MAX_MESSAGE_BYTES {
                header.push(b'\n');
                header.extend_from_slice(raw);
            }
            if !profile.prefilter(work, scratch) {
                return ignored(&mut detail, "no literal");
            }
            (work.as_slice(), min_end)
        } else {
            if !profile.prefilter(raw, scratch) {
                return ignored(&mut detail, "no literal");
            }
            let decoded = match fmt {
                Format::Json => structured::render_json(raw, profile.structured_fields(), work),
                Format::Logfmt => structured::render_logfmt(raw, profile.structured_fields(), work),
                _ => false,
            };
            if decoded {
                if !profile.prefilter(work, scratch) {
                    return ignored(&mut detail, "no literal");
                }
                (work.as_slice(), 0)
            } else {
                // Not really JSON / logfmt after all: read as text.
                fmt = Format::Text;
                if profile.continues(mask) {
                    header.clear();
                    header.extend_from_slice(raw);
                    *header_ok = true;
                }
                (raw, 0)
            }
        };
        let _ = fmt;
        let text: &[u8] = if redact::redact_into(text, redacted) {
            redacted
        } else {
            text
        };
        let Some(m) = profile.match_in(text, scratch, true, detail.is_some(), mask, min_end) else {
            return ignored(&mut detail, "no regex matched");
        };
        let bot = m.bot.or_else(|| meta.bot.clone());
        if let Some(d) = detail.as_deref_mut() {
            d.rule = Some(m.rule.to_owned());
            d.event.clone_from(&m.event);
            d.bot.clone_from(&bot);
            d.shard = m.shard;
            d.captures = m.captures;
        }
        let Some(event) = m.event else {
            return ignored(&mut detail, "ignore rule");
        };
        let Some(at) = at else {
            if let Some(d) = detail {
                d.event = Some(event);
                d.would_be = Some(Outcome::Matched);
                d.note = Some("no timestamp");
            }
            return Done::malformed();
        };
        out.push(Observation {
            at,
            source: meta.source.clone(),
            body: Body::Session(SessionObservation {
                bot,
                instance: meta.instance.clone(),
                shard: m.shard,
                event,
                line: Some(LogLine::new(text)),
            }),
        });
        Done {
            outcome: Outcome::Matched,
            group: m.group,
            new_time,
            at: Some(at),
        }
    }
}
