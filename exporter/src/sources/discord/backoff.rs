//! When to ask Discord next. Pure timing: no clock and no randomness of its own (the caller
//! passes the jitter draw), so every schedule is tested on simulated time.
//!
//! - A good answer: the poll interval, jittered by ±`jitter` so that many bots (or many
//!   exporters) do not ask in lockstep.
//! - Start-up: until Discord (or the proxy in front of it) has answered once, a refused or
//!   reset connection is retried after 1 s, 2 s, 4 s, ... while that step is shorter than the
//!   poll interval: a proxy sidecar that starts a second after the exporter costs a second,
//!   not a minute. Then the normal backoff below takes over, from its first step. No request
//!   reached anyone, so quick retries load nothing.
//! - 5xx, timeouts, refused connections, malformed or truncated bodies: exponential backoff
//!   from the poll interval, doubled per consecutive failure up to `backoff_max`, with "equal
//!   jitter" (a draw between half and all of the step).
//! - 429: never before Discord's `Retry-After`/reset when it is known, and never before the
//!   backoff step either (a 429 means slow down); at least one interval when it is unknown.
//! - 401/403: the token is rejected; at most one try per `rejected_retry` (an hour): Discord
//!   bans an IP after 10,000 invalid requests in 10 minutes.

use std::time::Duration;

/// The timing parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Policy {
    /// The normal poll interval.
    pub interval: Duration,
    /// ± fraction of the interval drawn at random for each poll.
    pub jitter: f64,
    /// Longest wait between tries while Discord keeps failing.
    pub backoff_max: Duration,
    /// Wait after a rejected token (401/403) before trying the same token again.
    pub rejected_retry: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(60),
            jitter: 0.1,
            backoff_max: Duration::from_secs(15 * 60),
            rejected_retry: Duration::from_secs(3600),
        }
    }
}

/// How an attempt ended, as far as timing is concerned.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Outcome {
    Ok,
    /// 401/403.
    Rejected,
    /// 429, with what Discord said about when to come back (when it could be read).
    RateLimited {
        retry_after: Option<Duration>,
    },
    /// Anything transient with an answer or a wait: 5xx, timeout, malformed or truncated.
    Failed,
    /// No connection at all (refused, reset, DNS, TLS): quick retries at start-up, otherwise
    /// the same as [`Outcome::Failed`].
    Unreachable,
}

/// The first quick retry at start-up; each next one doubles.
pub const STARTUP_FIRST_RETRY: Duration = Duration::from_secs(1);

/// The state between attempts: how many consecutive failures.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub policy: Policy,
    failures: u32,
    /// Whether any attempt got past the connection (an answer, or a timeout waiting for one).
    reached: bool,
    /// Failures spent on start-up quick retries: the normal backoff's steps start after them.
    quick: u32,
}

impl Schedule {
    pub fn new(policy: Policy) -> Self {
        Self {
            policy,
            failures: 0,
            reached: false,
            quick: 0,
        }
    }

    /// Still starting: nothing has been reached yet and quick retries are not used up.
    pub fn starting(&self) -> bool {
        !self.reached && self.quick == self.failures
    }

    /// Consecutive failed attempts so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Forgets past failures (a new token, say).
    pub fn reset(&mut self) {
        self.failures = 0;
        self.quick = 0;
    }

    /// The delay before the next attempt after `outcome`; `u` is a uniform draw in [0, 1).
    pub fn next(&mut self, outcome: Outcome, u: f64) -> Duration {
        let u = if u.is_finite() {
            u.clamp(0.0, 1.0)
        } else {
            0.5
        };
        let p = self.policy;
        if outcome != Outcome::Unreachable {
            self.reached = true;
        }
        match outcome {
            Outcome::Unreachable if self.starting() => {
                let quick = STARTUP_FIRST_RETRY.saturating_mul(1u32 << self.failures.min(30));
                self.failures = self.failures.saturating_add(1);
                if quick < p.interval {
                    self.quick = self.failures;
                    return quick;
                }
                self.step().mul_f64(0.5 + 0.5 * u)
            }
            Outcome::Ok => {
                self.failures = 0;
                self.quick = 0;
                p.interval.mul_f64(1.0 - p.jitter + 2.0 * p.jitter * u)
            }
            Outcome::Failed | Outcome::Unreachable => {
                self.failures = self.failures.saturating_add(1);
                self.step().mul_f64(0.5 + 0.5 * u)
            }
            Outcome::RateLimited { retry_after } => {
                self.failures = self.failures.saturating_add(1);
                let backoff = self.step().mul_f64(0.5 + 0.5 * u);
                match retry_after {
                    // Never earlier than Discord asked; a little later so that many clients
                    // told the same reset do not return at the same instant.
                    Some(r) => backoff.max(r.mul_f64(1.0 + 0.1 * u) + Duration::from_millis(50)),
                    // twilight does not show an unscoped (global) 429's Retry-After: wait at
                    // least a whole interval, longer than Discord's global-limit waits.
                    None => backoff.max(p.interval),
                }
            }
            Outcome::Rejected => {
                self.failures = self.failures.saturating_add(1);
                p.rejected_retry.mul_f64(1.0 + 0.1 * u)
            }
        }
    }

    /// The backoff step of the current failure count (quick start-up retries not counted):
    /// interval * 2^(failures-1), capped.
    fn step(&self) -> Duration {
        let p = self.policy;
        let exp = (self.failures - self.quick.min(self.failures))
            .saturating_sub(1)
            .min(30);
        let step = p.interval.saturating_mul(1u32 << exp);
        step.min(p.backoff_max.max(p.interval))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(d: Duration) -> f64 {
        d.as_secs_f64()
    }

    #[test]
    fn good_answers_poll_at_the_interval_within_the_jitter() {
        let mut s = Schedule::new(Policy::default());
        for i in 0..=100 {
            let d = secs(s.next(Outcome::Ok, i as f64 / 100.0));
            assert!((54.0..=66.0).contains(&d), "{d}");
        }
        assert_eq!(secs(s.next(Outcome::Ok, 0.0)), 54.0);
        assert_eq!(secs(s.next(Outcome::Ok, 1.0)), 66.0);
    }

    #[test]
    fn transient_failures_back_off_exponentially_to_the_cap_and_recover() {
        let mut s = Schedule::new(Policy::default());
        // Upper bounds (u = 1) double from the interval to the 15 min cap.
        let uppers: Vec<f64> = (0..8).map(|_| secs(s.next(Outcome::Failed, 1.0))).collect();
        assert_eq!(
            uppers,
            [60.0, 120.0, 240.0, 480.0, 900.0, 900.0, 900.0, 900.0]
        );
        // Lower bounds are half the step: jitter never makes a retry hammer.
        let mut s = Schedule::new(Policy::default());
        let lowers: Vec<f64> = (0..5).map(|_| secs(s.next(Outcome::Failed, 0.0))).collect();
        assert_eq!(lowers, [30.0, 60.0, 120.0, 240.0, 450.0]);
        assert_eq!(s.failures(), 5);
        let d = secs(s.next(Outcome::Ok, 0.5));
        assert_eq!(d, 60.0);
        assert_eq!(s.failures(), 0);
        assert_eq!(secs(s.next(Outcome::Failed, 1.0)), 60.0);
    }

    #[test]
    fn simulated_day_of_outage_stays_bounded() {
        // A day of Discord failing: the number of tries is bounded by the cap, not the interval.
        let mut s = Schedule::new(Policy::default());
        let (mut t, mut tries) = (0.0, 0);
        let mut rng = fastrand::Rng::with_seed(7);
        while t < 86_400.0 {
            t += secs(s.next(Outcome::Failed, rng.f64()));
            tries += 1;
        }
        assert!((96..=200).contains(&tries), "{tries} tries in a day");
    }

    #[test]
    fn rate_limits_honour_retry_after_and_back_off() {
        let mut s = Schedule::new(Policy::default());
        let d = s.next(
            Outcome::RateLimited {
                retry_after: Some(Duration::from_secs(300)),
            },
            0.0,
        );
        assert!(secs(d) >= 300.0, "{d:?}");
        // A short Retry-After still waits at least the backoff step.
        let mut s = Schedule::new(Policy::default());
        let d = s.next(
            Outcome::RateLimited {
                retry_after: Some(Duration::from_secs(2)),
            },
            0.0,
        );
        assert_eq!(secs(d), 30.0);
        // Unknown Retry-After: the backoff alone, growing with repeats.
        let mut s = Schedule::new(Policy::default());
        let a = s.next(Outcome::RateLimited { retry_after: None }, 1.0);
        let b = s.next(Outcome::RateLimited { retry_after: None }, 1.0);
        assert_eq!((secs(a), secs(b)), (60.0, 120.0));
    }

    #[test]
    fn a_rejected_token_is_tried_at_most_once_an_hour() {
        let mut s = Schedule::new(Policy::default());
        for i in 0..=10 {
            let d = secs(s.next(Outcome::Rejected, i as f64 / 10.0));
            assert!((3600.0..=3960.0).contains(&d), "{d}");
        }
        // A simulated week of a rejected token: at most 24 tries a day.
        let mut s = Schedule::new(Policy::default());
        let (mut t, mut tries) = (0.0, 0);
        while t < 7.0 * 86_400.0 {
            t += secs(s.next(Outcome::Rejected, 0.0));
            tries += 1;
        }
        assert_eq!(tries, 168);
    }

    #[test]
    fn an_unreachable_discord_at_start_up_is_retried_within_seconds_then_backs_off() {
        let mut s = Schedule::new(Policy::default());
        assert!(s.starting());
        let quick: Vec<f64> = (0..6)
            .map(|_| secs(s.next(Outcome::Unreachable, 1.0)))
            .collect();
        assert_eq!(quick, [1.0, 2.0, 4.0, 8.0, 16.0, 32.0]);
        // 64 s would pass the interval: the normal backoff takes over from its first step.
        assert_eq!(secs(s.next(Outcome::Unreachable, 1.0)), 60.0);
        assert!(!s.starting());
        assert_eq!(secs(s.next(Outcome::Unreachable, 1.0)), 120.0);
        assert_eq!(s.failures(), 8);
    }

    #[test]
    fn quick_retries_are_for_start_up_only() {
        // Once Discord answered, a refused connection is an outage: normal backoff.
        let mut s = Schedule::new(Policy::default());
        s.next(Outcome::Ok, 0.5);
        assert!(!s.starting());
        assert_eq!(secs(s.next(Outcome::Unreachable, 1.0)), 60.0);
        // An answer that failed (a 502 from the proxy) also ends start-up.
        let mut s = Schedule::new(Policy::default());
        assert_eq!(secs(s.next(Outcome::Unreachable, 1.0)), 1.0);
        assert_eq!(secs(s.next(Outcome::Failed, 1.0)), 60.0);
        assert_eq!(secs(s.next(Outcome::Unreachable, 1.0)), 120.0);
        // A recovery after quick retries polls at the interval as usual.
        let mut s = Schedule::new(Policy::default());
        s.next(Outcome::Unreachable, 1.0);
        s.next(Outcome::Unreachable, 1.0);
        assert_eq!(secs(s.next(Outcome::Ok, 0.5)), 60.0);
        assert_eq!(s.failures(), 0);
    }

    #[test]
    fn odd_draws_do_not_break_the_schedule() {
        let mut s = Schedule::new(Policy::default());
        assert_eq!(secs(s.next(Outcome::Ok, f64::NAN)), 60.0);
        assert_eq!(secs(s.next(Outcome::Ok, 7.0)), 66.0);
        for _ in 0..100 {
            s.next(Outcome::Failed, 1.0);
        }
        assert_eq!(secs(s.next(Outcome::Failed, 1.0)), 900.0);
    }
}
