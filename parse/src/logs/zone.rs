//! The zone of zone-less local times (`[2026-04-19 04:12:26]`, python's asctime, logback's
//! ISO8601): UTC unless configured (`log_timezone`), a fixed offset or an IANA name whose
//! daylight-saving rules apply to each line's own date.

use std::fmt;
use std::str::FromStr;

use chrono::{FixedOffset, LocalResult, NaiveDateTime, Offset, TimeZone};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use dge_core::observation::Timestamp;

/// Where a local time without a zone of its own was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogZone {
    /// The default: a zone-less time is taken as UTC.
    #[default]
    Utc,
    /// A fixed offset (`+02:00`).
    Fixed(FixedOffset),
    /// An IANA zone (`Europe/Berlin`): the offset in force at the time.
    Named(chrono_tz::Tz),
}

impl LogZone {
    /// The instant of a local time written in this zone. A time that occurs twice (the hour
    /// clocks go back) is taken at its first occurrence; one that never occurs (the hour they
    /// go forward) with the offset in force just before.
    pub fn to_utc(self, local: NaiveDateTime) -> Option<Timestamp> {
        match self {
            Self::Utc => Some(local.and_utc()),
            Self::Fixed(off) => Some(off.from_local_datetime(&local).single()?.to_utc()),
            Self::Named(tz) => match tz.from_local_datetime(&local) {
                LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => Some(t.to_utc()),
                LocalResult::None => {
                    let before = local - chrono::TimeDelta::hours(3);
                    let off = tz.offset_from_local_datetime(&before).earliest()?.fix();
                    Some(off.from_local_datetime(&local).single()?.to_utc())
                }
            },
        }
    }

    /// Whether zone-less times need converting at all.
    pub fn is_utc(self) -> bool {
        match self {
            Self::Utc => true,
            Self::Fixed(off) => off.local_minus_utc() == 0,
            Self::Named(_) => false,
        }
    }
}

impl fmt::Display for LogZone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Utc => f.write_str("UTC"),
            Self::Fixed(off) => write!(f, "{off}"),
            Self::Named(tz) => f.write_str(tz.name()),
        }
    }
}

impl FromStr for LogZone {
    type Err = String;

    /// `UTC` (or `Z`), an offset `+02:00` / `-0530`, or an IANA name `Europe/Berlin`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("utc") || s.eq_ignore_ascii_case("z") {
            return Ok(Self::Utc);
        }
        if s.starts_with(['+', '-']) {
            let digits: String = s[1..].chars().filter(|c| *c != ':').collect();
            let ok = matches!(digits.len(), 2 | 4) && digits.bytes().all(|b| b.is_ascii_digit());
            let (h, m) = if ok {
                let h: i32 = digits[..2].parse().unwrap_or(99);
                let m: i32 = digits.get(2..).map_or(0, |m| m.parse().unwrap_or(99));
                (h, m)
            } else {
                (99, 99)
            };
            let secs = (h * 3600 + m * 60) * if s.starts_with('-') { -1 } else { 1 };
            return match (h < 24 && m < 60)
                .then(|| FixedOffset::east_opt(secs))
                .flatten()
            {
                Some(off) => Ok(Self::Fixed(off)),
                None => Err(format!("bad offset {s:?} (expected +HH:MM)")),
            };
        }
        s.parse::<chrono_tz::Tz>()
            .map(Self::Named)
            .map_err(|_| {
                format!(
                    "unknown time zone {s:?} (expected UTC, an offset such as +02:00, or an IANA name such as Europe/Berlin)"
                )
            })
    }
}

impl Serialize for LogZone {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for LogZone {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local(s: &str) -> NaiveDateTime {
        NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").unwrap()
    }

    fn utc(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn names_and_offsets() {
        assert_eq!("UTC".parse::<LogZone>(), Ok(LogZone::Utc));
        assert_eq!("+03:00".parse::<LogZone>().unwrap().to_string(), "+03:00");
        assert_eq!("-0530".parse::<LogZone>().unwrap().to_string(), "-05:30");
        assert_eq!(
            "Europe/Berlin".parse::<LogZone>().unwrap().to_string(),
            "Europe/Berlin"
        );
        for bad in ["Mars/Olympus", "+25:00", "+3", "+03:7x", ""] {
            assert!(bad.parse::<LogZone>().is_err(), "{bad}");
        }
    }

    #[test]
    fn local_times_in_their_zone() {
        let berlin: LogZone = "Europe/Berlin".parse().unwrap();
        // Summer (+02:00) and winter (+01:00) on each line's own date.
        assert_eq!(
            berlin.to_utc(local("2026-07-01 12:00:00")),
            Some(utc("2026-07-01T10:00:00Z"))
        );
        assert_eq!(
            berlin.to_utc(local("2026-01-01 12:00:00")),
            Some(utc("2026-01-01T11:00:00Z"))
        );
        // 02:30 on 2026-03-29 never happens in Berlin: the offset before the jump.
        assert_eq!(
            berlin.to_utc(local("2026-03-29 02:30:00")),
            Some(utc("2026-03-29T01:30:00Z"))
        );
        // 02:30 on 2026-10-25 happens twice: the first.
        assert_eq!(
            berlin.to_utc(local("2026-10-25 02:30:00")),
            Some(utc("2026-10-25T00:30:00Z"))
        );
        let plus3: LogZone = "+03:00".parse().unwrap();
        assert_eq!(
            plus3.to_utc(local("2026-04-19 07:12:26")),
            Some(utc("2026-04-19T04:12:26Z"))
        );
        assert_eq!(
            LogZone::Utc.to_utc(local("2026-04-19 07:12:26")),
            Some(utc("2026-04-19T07:12:26Z"))
        );
    }
}
