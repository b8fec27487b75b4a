//! The replay driver: time-sorted observations through the engine with ticks in between, as
//! `replay` and the benches run it.

use chrono::TimeDelta;

use super::Engine;
use crate::observation::{Observation, Timestamp};

impl Engine {
    /// Runs time-sorted observations through, ticking every 5 s of their time (every 1/600 of
    /// a longer gap), then finishes: what `replay` does. Finding times come from the
    /// observations, so the tick step only bounds how late a time-driven finding is noticed.
    pub fn run_to_end(&mut self, observations: impl IntoIterator<Item = Observation>) {
        self.run_to_end_with(observations, |e| {
            e.take_changes();
        });
    }

    /// [`Engine::run_to_end`], calling `after` after every observation and tick (and at the
    /// end), so a sink can take the changes as they happen.
    pub fn run_to_end_with(
        &mut self,
        observations: impl IntoIterator<Item = Observation>,
        mut after: impl FnMut(&mut Engine),
    ) {
        let mut last_tick: Option<Timestamp> = None;
        let min_step = TimeDelta::seconds(5);
        // `from + min_step`, remembered for its `from`: most observations are within a tick
        // of the last one, and need no date arithmetic at all.
        let mut due: Option<(Timestamp, Timestamp)> = None;
        for o in observations {
            let from = last_tick.or(self.now).unwrap_or(o.at);
            let next = match due {
                Some((f, d)) if f == from => d,
                _ => {
                    let d = from + min_step;
                    due = Some((from, d));
                    d
                }
            };
            if o.at > next {
                let step = ((o.at - from) / 600).max(min_step);
                let mut t = from + step;
                while t < o.at {
                    self.tick(t);
                    after(self);
                    last_tick = Some(t);
                    t += step;
                }
            }
            if last_tick.is_none() {
                last_tick = Some(o.at);
            }
            self.observe(o);
            after(self);
        }
        self.finish();
        after(self);
    }
}
