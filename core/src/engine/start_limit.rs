//! Start-limit accounting: identifies seen in the logs and session starts Discord counted
//! (`session_start_limit.remaining`), kept per bot for the `unattributed_identify` and
//! `start_limit_low` detectors.

use chrono::TimeDelta;

use super::Engine;
use super::bot::{self, LogIdentify};
use super::state::PodKey;
use crate::observation::{StartLimit, Timestamp};

impl Engine {
    /// Counts an IDENTIFY of the pod's current connection attempt (once per attempt); true when
    /// it follows a lost connection of the same process (a resume that failed or was skipped).
    pub(super) fn count_identify(&mut self, key: &PodKey, bot: &str, at: Timestamp) -> bool {
        let inst = self.instances.get_mut(key).expect("resolved");
        if inst.identified {
            return false;
        }
        inst.identified = true;
        let reidentified = std::mem::take(&mut inst.interrupted);
        let pod = inst.pod.clone();
        let b = self.bot_state(bot);
        b.identifies_logs += 1;
        b.log_identifies.push_back(LogIdentify {
            at,
            pod,
            matched: false,
        });
        if b.log_identifies.len() > bot::MAX_LOG_IDENTIFIES {
            b.log_identifies.pop_front();
        }
        reidentified
    }

    pub(super) fn on_start_limit(&mut self, at: Timestamp, sl: StartLimit) {
        let b = self.bot_state(&sl.bot);
        if let Some((t1, prev)) = &b.last_sample {
            let window_end = *t1 + TimeDelta::milliseconds(prev.reset_after_ms as i64);
            let same_window = at <= window_end && sl.remaining <= prev.remaining;
            let drop = if same_window {
                prev.remaining - sl.remaining
            } else {
                // The window reset in between: everything used since the reset is new.
                sl.total.saturating_sub(sl.remaining)
            };
            // Empty intervals are kept too: settling one closes an earlier finding.
            if at > *t1 {
                b.identifies_discord += u64::from(drop);
                b.pending.push_back(bot::PendingDrop {
                    from: *t1,
                    to: at,
                    count: drop,
                });
            }
        }
        b.burn.push_back((at, b.identifies_discord));
        while b
            .burn
            .front()
            .is_some_and(|(t, _)| *t < at - TimeDelta::hours(1))
        {
            b.burn.pop_front();
        }
        b.last_sample = Some((at, sl.clone()));
        self.detectors_on_start_limit(&sl.bot, at);
    }
}
