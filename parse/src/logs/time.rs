//! Timestamps on the hot path: the fixed RFC3339 layout parsed by hand, chrono only for odd
//! shapes (leap seconds, anything the fixed layout does not cover).
//!
//! Layout read by hand: `YYYY-MM-DD(T|t| )HH:MM:SS[(.|,)fraction][Z|z|±HH:MM|±HHMM]`.

use std::cell::Cell;

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};

use super::zone::LogZone;
use dge_core::observation::Timestamp;

/// A timestamp found at the start of some bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Found {
    pub at: Timestamp,
    /// Bytes consumed.
    pub len: usize,
    /// Whether a zone (`Z` or an offset) was present.
    pub zoned: bool,
}

/// An RFC3339 timestamp (`T` separator and a zone required) at the start of `s`, as written by
/// `kubectl logs --timestamps`, kubelet CRI files and tracing-subscriber.
pub(crate) fn rfc3339_prefix(s: &[u8]) -> Option<Found> {
    match scan(s) {
        Some(f) if f.zoned && matches!(s[10], b'T' | b't') => Some(f),
        Some(_) => None,
        None => chrono_fallback(s),
    }
}

/// The message's own timestamp at the start of a line without a container timestamp:
/// tracing-subscriber (`2026-04-19T04:12:03.481227Z  INFO ..`), discord.py
/// (`[2026-04-19 04:12:26] [INFO    ] ..`), env_logger (`[2026-04-19T04:12:03Z INFO ..`) and
/// python's basicConfig with asctime (`2026-04-19 04:12:26,123 ..`). A zone written after a
/// space (`2026-04-19 07:12:26 +0300`, `.. UTC`) is the time's own; a time without any zone is
/// local time in `zone`.
pub(crate) fn message_time(text: &[u8], zone: LogZone) -> Option<Timestamp> {
    let mut s = text;
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    let bracketed = s.first() == Some(&b'[');
    if bracketed {
        s = &s[1..];
    }
    let f = scan(s).or_else(|| chrono_fallback(s))?;
    let (mut at, mut end) = (f.at, f.len);
    if !f.zoned {
        if let Some((offset_secs, len)) = spaced_zone(&s[end..]) {
            at -= chrono::TimeDelta::seconds(offset_secs);
            end += len;
        } else if !zone.is_utc() {
            at = zone.to_utc(at.naive_utc())?;
        }
    }
    // Must end the token: a space, a closing bracket or the end of the line.
    match s.get(end) {
        None | Some(b' ' | b'\t' | b']') => Some(at),
        _ => None,
    }
}

/// A zone after a space, ending the token: ` Z`, ` UTC`, ` GMT`, ` +03:00`, ` -0530`.
/// (offset east of UTC in seconds, bytes consumed).
fn spaced_zone(s: &[u8]) -> Option<(i64, usize)> {
    let rest = s.strip_prefix(b" ")?;
    let ends = |n: usize| matches!(rest.get(n), None | Some(b' ' | b'\t' | b']'));
    for word in [&b"UTC"[..], b"GMT", b"Z"] {
        if rest.starts_with(word) && ends(word.len()) {
            return Some((0, 1 + word.len()));
        }
    }
    let sign: i64 = match rest.first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let oh = digits(rest, 1, 2)?;
    let (om, len) = if rest.get(3) == Some(&b':') {
        (digits(rest, 4, 2)?, 6)
    } else {
        (digits(rest, 3, 2)?, 5)
    };
    if oh > 23 || om > 59 || !ends(len) {
        return None;
    }
    Some((sign * i64::from(oh * 3600 + om * 60), 1 + len))
}

/// The fixed layout, by hand. `None` when it does not fit (the caller may try chrono).
fn scan(s: &[u8]) -> Option<Found> {
    if s.len() < 19
        || s[4] != b'-'
        || s[7] != b'-'
        || !matches!(s[10], b'T' | b't' | b' ')
        || s[13] != b':'
        || s[16] != b':'
    {
        return None;
    }
    let (days, date) = day_of(&s[..10])?;
    let hour = digits(s, 11, 2)?;
    let minute = digits(s, 14, 2)?;
    let second = digits(s, 17, 2)?;
    if hour > 23 || minute > 59 || second > 59 {
        // Leap seconds (:60) and nonsense go to chrono, which knows the former.
        return None;
    }
    let mut i = 19;
    let mut nanos: u32 = 0;
    if matches!(s.get(i), Some(b'.' | b',')) {
        let start = i + 1;
        let mut j = start;
        while j < s.len() && s[j].is_ascii_digit() {
            if j - start < 9 {
                nanos = nanos * 10 + u32::from(s[j] - b'0');
            }
            j += 1;
        }
        if j == start {
            return None;
        }
        for _ in (j - start)..9 {
            nanos *= 10;
        }
        i = j;
    }
    let mut offset_secs: i64 = 0;
    let mut zoned = false;
    match s.get(i) {
        Some(b'Z' | b'z') => {
            zoned = true;
            i += 1;
        }
        Some(&sign @ (b'+' | b'-')) => {
            let oh = digits(s, i + 1, 2)?;
            let (om, len) = if s.get(i + 3) == Some(&b':') {
                (digits(s, i + 4, 2)?, 6)
            } else {
                (digits(s, i + 3, 2)?, 5)
            };
            if oh > 23 || om > 59 {
                return None;
            }
            offset_secs = i64::from(oh * 3600 + om * 60);
            if sign == b'-' {
                offset_secs = -offset_secs;
            }
            zoned = true;
            i += len;
        }
        _ => {}
    }
    let in_day = i64::from(hour * 3600 + minute * 60 + second) - offset_secs;
    let at = if (0..86_400).contains(&in_day) {
        // Same as `from_timestamp` below, with the date (the costly part) cached.
        let time = NaiveTime::from_num_seconds_from_midnight_opt(in_day as u32, nanos)?;
        date.and_time(time).and_utc()
    } else {
        DateTime::<Utc>::from_timestamp(days * 86_400 + in_day, nanos)?
    };
    Some(Found { at, len: i, zoned })
}

/// `YYYY-MM-DD` -> (days since 1970-01-01, the date), remembered per thread for the next line:
/// consecutive lines nearly always fall on the same day. `None` for an invalid date.
fn day_of(ymd: &[u8]) -> Option<(i64, NaiveDate)> {
    thread_local! {
        static LAST: Cell<Option<([u8; 10], i64, NaiveDate)>> = const { Cell::new(None) };
    }
    let key: [u8; 10] = ymd.try_into().ok()?;
    if let Some((k, days, date)) = LAST.get()
        && k == key
    {
        return Some((days, date));
    }
    let year = i64::from(digits(ymd, 0, 4)?);
    let month = digits(ymd, 5, 2)?;
    let day = digits(ymd, 8, 2)?;
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let date = DateTime::<Utc>::from_timestamp(days.checked_mul(86_400)?, 0)?.date_naive();
    LAST.set(Some((key, days, date)));
    Some((days, date))
}

/// Odd shapes: hand the first token to chrono's RFC3339 parser. Only tried when the bytes start
/// like a date, so ordinary lines never get here.
fn chrono_fallback(s: &[u8]) -> Option<Found> {
    if s.len() < 20 || !s[..4].iter().all(u8::is_ascii_digit) || s[4] != b'-' {
        return None;
    }
    let end = s
        .iter()
        .take(64)
        .position(|b| matches!(b, b' ' | b'\t' | b']'))
        .unwrap_or(s.len().min(64));
    let token = std::str::from_utf8(&s[..end]).ok()?;
    let at = DateTime::parse_from_rfc3339(token)
        .ok()?
        .with_timezone(&Utc);
    Some(Found {
        at,
        len: end,
        zoned: true,
    })
}

fn digits(s: &[u8], at: usize, n: usize) -> Option<u32> {
    let bytes = s.get(at..at + n)?;
    let mut v = 0u32;
    for &b in bytes {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(b - b'0');
    }
    Some(v)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = i64::from((month + 9) % 12);
    let doy = (153 * mp + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chrono(s: &str) -> Timestamp {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn fixed_layout_agrees_with_chrono() {
        for s in [
            "2026-04-19T04:12:03.481227Z",
            "2026-04-19T04:12:03.481227123Z",
            "2026-04-19T04:12:03Z",
            "2026-04-19T04:12:03.4Z",
            "2024-02-29T23:59:59.999999999+05:30",
            "1999-12-31T00:00:00-08:00",
            "1970-01-01T00:00:00Z",
            "2100-03-01T12:00:00Z",
            // The per-thread date: same day twice, other days, before 1970, offsets that
            // cross midnight either way.
            "2026-04-19T00:00:00Z",
            "2026-04-19T23:59:59.5Z",
            "2026-04-20T00:00:00Z",
            "2026-04-19T00:00:01Z",
            "1969-12-31T23:59:59.25Z",
            "1900-01-01T00:00:00Z",
            "2026-04-19T00:30:00+01:00",
            "2026-04-19T23:30:00-01:00",
            "2026-04-19T12:00:00+01:00",
        ] {
            let f = rfc3339_prefix(s.as_bytes()).unwrap_or_else(|| panic!("{s}"));
            assert_eq!(f.at, chrono(s), "{s}");
            assert_eq!(f.len, s.len(), "{s}");
        }
    }

    #[test]
    fn offsets_without_colon_and_lowercase() {
        let f = rfc3339_prefix(b"2026-04-19t04:12:03z rest").unwrap();
        assert_eq!(f.at, chrono("2026-04-19T04:12:03Z"));
        assert_eq!(f.len, 20);
        let f = rfc3339_prefix(b"2026-04-19T06:12:03+0200").unwrap();
        assert_eq!(f.at, chrono("2026-04-19T04:12:03Z"));
    }

    #[test]
    fn leap_second_goes_to_chrono() {
        let f = rfc3339_prefix(b"2016-12-31T23:59:60Z x").unwrap();
        assert_eq!(f.at, chrono("2016-12-31T23:59:60Z"));
        assert_eq!(f.len, 20);
    }

    #[test]
    fn rejects_nonsense() {
        for s in [
            "2026-13-19T04:12:03Z",
            "2026-02-30T04:12:03Z",
            "2026-04-19T24:12:03Z",
            "2026-04-19T04:12:03",
            "2026-04-19 04:12:03Z",
            "2026-04-19T04:12:03.Z",
            "hello world, this is not a time",
            "2026-04",
            "",
        ] {
            assert!(rfc3339_prefix(s.as_bytes()).is_none(), "{s}");
        }
    }

    fn mt(s: &[u8]) -> Option<Timestamp> {
        message_time(s, LogZone::Utc)
    }

    #[test]
    fn message_times() {
        let t = mt(b"2026-04-19T04:12:03.481227Z  INFO openab: x").unwrap();
        assert_eq!(t, chrono("2026-04-19T04:12:03.481227Z"));
        let t = mt(b"[2026-04-19 04:12:26] [INFO    ] discord.client: x").unwrap();
        assert_eq!(t, chrono("2026-04-19T04:12:26Z"));
        let t = mt(b"[2026-04-19T04:12:26Z INFO  serenity] x").unwrap();
        assert_eq!(t, chrono("2026-04-19T04:12:26Z"));
        let t = mt(b"2026-04-19 04:12:26,123 INFO x").unwrap();
        assert_eq!(t, chrono("2026-04-19T04:12:26.123Z"));
        assert!(mt(b"INFO  serenity::gateway::shard: x").is_none());
        assert!(mt(b"2026-04-19T04:12:03.481227Zjunk").is_none());
        assert!(mt(b"[WS => Shard 0] Identifying").is_none());
    }

    #[test]
    fn offsets_are_honoured() {
        // Attached, with and without a colon, and after a space (python's `%z`, logback's `Z`).
        for line in [
            &b"2026-04-19T07:12:26+03:00 INFO x"[..],
            b"2026-04-19 07:12:26+0300 INFO x",
            b"[2026-04-19 07:12:26 +0300] [INFO    ] discord.client: x",
            b"2026-04-19 07:12:26 +03:00 INFO x",
            b"2026-04-19 01:12:26 -03:00 INFO x",
            b"2026-04-19 04:12:26 UTC INFO x",
            b"2026-04-19 04:12:26 Z",
        ] {
            let want = chrono("2026-04-19T04:12:26Z");
            assert_eq!(mt(line), Some(want), "{}", String::from_utf8_lossy(line));
            // A configured zone does not override the line's own.
            let berlin = "Europe/Berlin".parse().unwrap();
            assert_eq!(message_time(line, berlin), Some(want));
        }
        // Not a zone: a dash that starts the message.
        let t = mt(b"2026-04-19 04:12:26 - discord.gateway - INFO - x").unwrap();
        assert_eq!(t, chrono("2026-04-19T04:12:26Z"));
        // Not a zone either: the time ends at the space, zone-less.
        let t = mt(b"2026-04-19 04:12:26 +03:00x").unwrap();
        assert_eq!(t, chrono("2026-04-19T04:12:26Z"));
    }

    #[test]
    fn comma_decimals() {
        for (line, want) in [
            (
                &b"2026-04-19 04:12:26,123 INFO x"[..],
                "2026-04-19T04:12:26.123Z",
            ),
            (b"[2026-04-19 04:12:26,5] x", "2026-04-19T04:12:26.5Z"),
            (
                b"2026-04-19T07:12:26,123456+03:00 x",
                "2026-04-19T04:12:26.123456Z",
            ),
            (
                b"2026-04-19 07:12:26,123 +0300 x",
                "2026-04-19T04:12:26.123Z",
            ),
        ] {
            assert_eq!(
                mt(line),
                Some(chrono(want)),
                "{}",
                String::from_utf8_lossy(line)
            );
        }
        assert!(mt(b"2026-04-19 04:12:26, x").is_none());
    }

    #[test]
    fn zone_less_times_in_the_configured_zone() {
        let line = b"[2026-07-01 12:00:00,250] [INFO    ] discord.client: x";
        assert_eq!(mt(line), Some(chrono("2026-07-01T12:00:00.250Z")));
        let berlin: LogZone = "Europe/Berlin".parse().unwrap();
        assert_eq!(
            message_time(line, berlin),
            Some(chrono("2026-07-01T10:00:00.250Z"))
        );
        let winter = b"2026-01-01 12:00:00 INFO x";
        assert_eq!(
            message_time(winter, berlin),
            Some(chrono("2026-01-01T11:00:00Z"))
        );
        let minus: LogZone = "-05:30".parse().unwrap();
        assert_eq!(
            message_time(winter, minus),
            Some(chrono("2026-01-01T17:30:00Z"))
        );
    }
}
