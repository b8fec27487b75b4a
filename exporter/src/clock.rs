//! Where "now" comes from, shared by the engine task (ticks) and the sources that play recorded
//! or simulated time (`demo`): one definition, so both agree on what a timestamp means.

use std::time::{Duration, Instant};

use chrono::TimeDelta;

use dge_core::observation::Timestamp;

/// The wall clock, or simulated time that runs `speed` times faster until it has caught up with
/// the wall clock, and then follows it. Starting the simulation in the past by exactly the lead
/// it will gain keeps every exported timestamp at or before the real time (dashboards computing
/// `time() - last_event` never see the future).
#[derive(Debug, Clone, Copy)]
pub enum Clock {
    Real,
    Simulated {
        wall0: Instant,
        sim0: Timestamp,
        speed: f64,
    },
}

impl Clock {
    /// A simulated clock that runs `speed` times faster for `fast` simulated seconds, ending
    /// at the real time, then in real time.
    pub fn compressed(speed: f64, fast: f64) -> Self {
        let lead = fast * (1.0 - 1.0 / speed).max(0.0);
        Clock::Simulated {
            wall0: Instant::now(),
            sim0: chrono::Utc::now() - TimeDelta::milliseconds((lead * 1000.0) as i64),
            speed,
        }
    }

    /// The time now, on this clock (never after the wall clock).
    pub fn now(&self) -> Timestamp {
        match self {
            Clock::Real => chrono::Utc::now(),
            Clock::Simulated { wall0, sim0, speed } => {
                let ms = wall0.elapsed().as_secs_f64() * speed * 1000.0;
                (*sim0 + TimeDelta::milliseconds(ms as i64)).min(chrono::Utc::now())
            }
        }
    }

    /// How long to wait in real time until the clock reads `at`.
    pub fn until(&self, at: Timestamp) -> Duration {
        match self {
            Clock::Real => {
                Duration::from_secs_f64((at - chrono::Utc::now()).as_seconds_f64().max(0.0))
            }
            Clock::Simulated { wall0, sim0, speed } => {
                // The later of: the fast clock reaching `at`, the wall clock reaching `at`.
                let fast = (at - *sim0).as_seconds_f64() / speed - wall0.elapsed().as_secs_f64();
                let real = (at - chrono::Utc::now()).as_seconds_f64();
                Duration::from_secs_f64(fast.max(real).max(0.0))
            }
        }
    }
}
