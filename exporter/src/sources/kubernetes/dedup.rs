//! Dropping the lines a resumed log stream brings back.
//!
//! A pod log stream read with `timestamps=true` prefixes each line with the kubelet's RFC 3339
//! (nanosecond) time. After a cut, the stream is opened again with `sinceTime` = the last line's
//! time (whole seconds: the API takes no finer), so the lines from that second on come back.
//! [`Dedup`] remembers the last time and how many lines carried it, and on a resume drops every
//! line older than that time and that many lines at it.

use dge_core::observation::Timestamp;

#[derive(Debug, Default, Clone)]
pub struct Dedup {
    last: Option<Timestamp>,
    at_last: u32,
    /// While resuming: lines at or before this time were seen (`n` of them at the time).
    skip: Option<(Timestamp, u32)>,
    dropped: u64,
}

impl Dedup {
    /// The time of the last line taken.
    pub fn last(&self) -> Option<Timestamp> {
        self.last
    }

    /// The stream is opened again from [`Dedup::last`]: what comes back up to there was seen.
    pub fn resume(&mut self) {
        self.skip = self.last.map(|t| (t, self.at_last));
    }

    /// Lines dropped as repeats so far.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// Whether to take this line (`raw`: as the API sends it, time first).
    pub fn admit(&mut self, raw: &[u8]) -> bool {
        let Some(at) = line_time(raw) else {
            // Without a time nothing can be compared: take it.
            return true;
        };
        if let Some((t, n)) = &mut self.skip {
            if at < *t {
                self.dropped += 1;
                return false;
            }
            if at == *t && *n > 0 {
                *n -= 1;
                self.dropped += 1;
                return false;
            }
            self.skip = None;
        }
        match self.last {
            Some(l) if l == at => self.at_last += 1,
            Some(l) if l > at => {} // an older line after a newer one: taken, the mark stays
            _ => {
                self.last = Some(at);
                self.at_last = 1;
            }
        }
        true
    }
}

/// The time that prefixes a `timestamps=true` log line.
pub fn line_time(raw: &[u8]) -> Option<Timestamp> {
    let end = memchr::memchr(b' ', raw).unwrap_or(raw.len());
    let s = std::str::from_utf8(&raw[..end]).ok()?;
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resume_drops_exactly_the_overlap() {
        let mut d = Dedup::default();
        let first = [
            "2026-04-19T04:00:00.5Z a",
            "2026-04-19T04:00:01.1Z b",
            "2026-04-19T04:00:01.7Z c",
            "2026-04-19T04:00:01.7Z d",
        ];
        for l in first {
            assert!(d.admit(l.as_bytes()));
        }
        d.resume();
        // sinceTime=04:00:01Z brings back b, c, d, then new lines (one at the same instant).
        let again = [
            ("2026-04-19T04:00:01.1Z b", false),
            ("2026-04-19T04:00:01.7Z c", false),
            ("2026-04-19T04:00:01.7Z d", false),
            ("2026-04-19T04:00:01.7Z e", true),
            ("2026-04-19T04:00:02Z f", true),
        ];
        for (l, want) in again {
            assert_eq!(d.admit(l.as_bytes()), want, "{l}");
        }
        assert_eq!(d.dropped(), 3);
        // A resume that brings back nothing old takes everything.
        d.resume();
        assert!(d.admit(b"2026-04-19T04:00:03Z g"));
        assert!(d.admit(b"no time here"));
    }

    #[test]
    fn line_times() {
        assert!(line_time(b"2026-04-19T04:00:01.123456789Z x").is_some());
        assert!(line_time(b"2026-04-19T04:00:01+02:00 x").is_some());
        assert!(line_time(b"garbage").is_none());
        assert!(line_time(b"").is_none());
    }
}
