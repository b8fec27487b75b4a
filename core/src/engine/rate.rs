//! Per-bot event rate, learned from the bot's own history, and the silence thresholds it gives.
//!
//! Model (docs/detection.md): events arrive as a Poisson process of rate λ, estimated as the
//! count of events over the covered part of a sliding window. A healthy session stays silent
//! for τ with probability e^(-λτ), so τ = ln(1/p)/λ bounds the false-alarm rate per silence by
//! p. Chat traffic is bursty, so τ is never shorter than a multiple of the longest gap seen in
//! the window either.

use std::collections::VecDeque;

use chrono::TimeDelta;

use super::config::EngineConfig;
use crate::observation::{NANOS_PER_SEC, Timestamp, nanos_between};

const BUCKET_SECS: i64 = 60;

/// Sliding-window event counter with the longest recent gap.
#[derive(Debug, Clone, Default)]
pub struct RateLearner {
    /// (minute index, events in that minute), oldest first.
    buckets: VecDeque<(i64, u64)>,
    total: u64,
    first_seen: Option<Timestamp>,
    last_event: Option<Timestamp>,
    /// (end of gap, gap seconds); only gaps longer than a bucket, oldest first.
    gaps: VecDeque<(Timestamp, f64)>,
}

impl RateLearner {
    /// Records one delivered event.
    pub fn record(&mut self, at: Timestamp) {
        if self.first_seen.is_none() {
            self.first_seen = Some(at);
        }
        if let Some(last) = self.last_event {
            let d_nanos = nanos_between(at, last);
            // A second session seeing the same event (duplicate delivery) is not more traffic.
            if d_nanos.abs() < 200_000_000 {
                return;
            }
            if d_nanos > i128::from(BUCKET_SECS) * NANOS_PER_SEC {
                self.gaps.push_back((at, (at - last).as_seconds_f64()));
            }
        }
        self.last_event = Some(self.last_event.map_or(at, |l| l.max(at)));
        let minute = at.timestamp().div_euclid(BUCKET_SECS);
        match self.buckets.back_mut() {
            Some((m, n)) if *m == minute => *n += 1,
            Some((m, _)) if *m > minute => {
                // Out of order within the window: credit the newest bucket, the rate is the same.
                if let Some((_, n)) = self.buckets.back_mut() {
                    *n += 1;
                }
            }
            _ => self.buckets.push_back((minute, 1)),
        }
        self.total += 1;
    }

    /// Forgets what fell out of the window.
    pub fn prune(&mut self, now: Timestamp, window: TimeDelta) {
        let oldest = (now - window).timestamp().div_euclid(BUCKET_SECS);
        while let Some(&(m, n)) = self.buckets.front() {
            if m >= oldest {
                break;
            }
            self.total -= n;
            self.buckets.pop_front();
        }
        while let Some(&(end, _)) = self.gaps.front() {
            if end >= now - window {
                break;
            }
            self.gaps.pop_front();
        }
    }

    /// Events in the window.
    pub fn events(&self) -> u64 {
        self.total
    }

    /// Events per second, once enough events were seen; measured up to the last event so that
    /// an ongoing silence does not lower the rate it is judged against.
    pub fn rate(&self, cfg: &EngineConfig) -> Option<f64> {
        if self.total < cfg.rate_min_events.max(2) {
            return None;
        }
        let (first_min, _) = *self.buckets.front()?;
        let start = (first_min * BUCKET_SECS).max(self.first_seen?.timestamp());
        let end = self.last_event?.timestamp_millis() as f64 / 1000.0;
        let span = (end - start as f64).max(BUCKET_SECS as f64);
        Some(self.total as f64 / span)
    }

    /// Longest gap between events in the window, in seconds.
    pub fn longest_gap(&self) -> f64 {
        self.gaps.iter().map(|&(_, g)| g).fold(0.0, f64::max)
    }

    /// The mean interval between events the bot's history predicts.
    pub fn expected_interval(&self, cfg: &EngineConfig) -> Option<f64> {
        self.rate(cfg).map(|r| 1.0 / r)
    }

    /// How long a session at risk may stay silent before it is called silent.
    pub fn silent_threshold(&self, cfg: &EngineConfig) -> TimeDelta {
        let secs = match self.rate(cfg) {
            Some(r) => ((1.0 / cfg.silent_false_alarm).ln() / r).max(self.longest_gap()),
            None => cfg.silent_fallback_secs as f64,
        };
        let secs = secs.clamp(cfg.silent_min_secs as f64, cfg.silent_max_secs as f64);
        TimeDelta::milliseconds((secs * 1000.0) as i64)
    }

    /// How long a session with no risk factor may stay silent before it is called quiet;
    /// `None` while the rate is unknown (no quiet findings on a bot we know nothing about).
    pub fn quiet_threshold(&self, cfg: &EngineConfig) -> Option<TimeDelta> {
        let r = self.rate(cfg)?;
        let secs = ((1.0 / cfg.quiet_false_alarm).ln() / r)
            .max(cfg.quiet_gap_factor * self.longest_gap())
            .max(cfg.quiet_min_secs as f64);
        Some(TimeDelta::milliseconds((secs * 1000.0) as i64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    fn t(s: i64) -> Timestamp {
        Utc.timestamp_opt(1_700_000_000 + s, 0).unwrap()
    }

    #[test]
    fn steady_rate_gives_poisson_threshold() {
        let cfg = EngineConfig::default();
        let mut r = RateLearner::default();
        for i in 0..600 {
            r.record(t(i * 20));
        }
        r.prune(t(600 * 20), TimeDelta::seconds(cfg.rate_window_secs as i64));
        let rate = r.rate(&cfg).unwrap();
        assert!((rate - 0.05).abs() < 0.005, "{rate}");
        let th = r.silent_threshold(&cfg).num_seconds();
        // ln(1000)/0.05 = 138 s
        assert!((125..=150).contains(&th), "{th}");
    }

    #[test]
    fn unknown_rate_uses_fallback_and_no_quiet() {
        let cfg = EngineConfig::default();
        let mut r = RateLearner::default();
        r.record(t(0));
        assert_eq!(r.silent_threshold(&cfg).num_seconds(), 300);
        assert!(r.quiet_threshold(&cfg).is_none());
    }

    #[test]
    fn long_gaps_raise_quiet_threshold() {
        let cfg = EngineConfig::default();
        let mut r = RateLearner::default();
        for i in 0..100 {
            r.record(t(i * 10));
        }
        r.record(t(1000 + 3600));
        assert!(r.quiet_threshold(&cfg).unwrap().num_seconds() >= 3 * 3600);
    }

    #[test]
    fn duplicates_are_not_traffic() {
        let cfg = EngineConfig::default();
        let mut r = RateLearner::default();
        for i in 0..100 {
            r.record(t(i * 10));
            r.record(t(i * 10));
        }
        assert_eq!(r.events(), 100);
        assert!(r.rate(&cfg).unwrap() < 0.11);
    }
    /// The integer fast path keeps chrono's edges: under 200 ms either way is the same event,
    /// and only a gap longer than a bucket is remembered.
    #[test]
    fn duplicate_and_gap_edges() {
        let at = |s: i64, ns: u32| Utc.timestamp_opt(1_700_000_000 + s, ns).unwrap();
        let mut r = RateLearner::default();
        r.record(at(0, 500_000_000));
        r.record(at(0, 699_999_999));
        r.record(at(0, 300_000_001));
        assert_eq!(r.events(), 1);
        r.record(at(0, 700_000_000));
        assert_eq!(r.events(), 2);
        r.record(at(0, 500_000_000));
        assert_eq!(r.events(), 3, "200 ms earlier is another event");
        r.record(at(60, 700_000_000));
        assert_eq!(r.longest_gap(), 0.0, "exactly a bucket is not a gap");
        r.record(at(120, 700_000_001));
        assert!((r.longest_gap() - 60.000_000_001).abs() < 1e-6);
    }
}
