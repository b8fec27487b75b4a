//! Gateway-health lines (heartbeats and their sequence numbers, acknowledgements, missed
//! acknowledgements, a blocked event loop, reconnects, resumes, the library's own start-limit
//! figures): what they mean for a session, and the [`Signal`]s the health detectors hook into.

use super::Engine;
use super::close_codes::{self, CloseClass};
use super::findings::Evidence;
use super::state::{PodKey, SequenceTrack};
use crate::observation::{StartLimit, Timestamp};

/// What a gateway-health line says, for the detectors' `on_gateway_signal` hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// The connection dropped and the library reconnects: a close that is neither clean nor
    /// fatal, an invalid session, a logged reconnect or RESUME attempt. `failed_resume`: Discord
    /// refused to resume (invalid session, not resumable; a close that needs a new identify).
    /// `new_loss`: the first line about this lost connection (a close, then RESUME, then an
    /// invalid session are one loss).
    Interrupted { failed_resume: bool, new_loss: bool },
    /// A new IDENTIFY after a lost connection on the same process (the resume failed or was not
    /// possible): one of the day's session starts spent.
    Reidentified,
    /// The session resumed.
    Resumed,
    /// A heartbeat was not acknowledged (`derived`: the exporter saw two heartbeats with no
    /// acknowledgement in between, rather than the library saying so).
    HeartbeatMissed { derived: bool },
    /// The bot's event loop could not keep up (a heartbeat blocked, "N s behind").
    Stalled { behind_ms: Option<u64> },
    /// A heartbeat was acknowledged: the connection is alive.
    Acknowledged,
    /// Session `id`'s heartbeat sequence advanced: it received events.
    SequenceAdvanced { id: u64, was_silent: bool },
}

impl Engine {
    /// Passes a signal to the detectors that hook into it.
    pub(super) fn signal(
        &mut self,
        key: &PodKey,
        bot: &str,
        shard: u32,
        at: Timestamp,
        signal: Signal,
        evidence: &Evidence,
    ) {
        let counted = match signal {
            Signal::Interrupted { new_loss: true, .. } => Some(0),
            Signal::Reidentified => Some(1),
            Signal::Resumed => Some(2),
            Signal::HeartbeatMissed { .. } => Some(3),
            Signal::Stalled { .. } => Some(4),
            _ => None,
        };
        if let Some(i) = counted {
            let b = self.bot_state(bot);
            let pod = (key.0.clone(), key.1.clone());
            b.pod_signals.entry(pod).or_default()[i] += 1;
        }
        self.detectors_on_gateway_signal(key, bot, shard, at, &signal, evidence);
    }

    /// A heartbeat acknowledgement.
    pub(super) fn on_ack(
        &mut self,
        key: &PodKey,
        bot: &str,
        shard: u32,
        at: Timestamp,
        ev: &Evidence,
    ) {
        if let Some(id) = self.current(key, shard)
            && let Some(s) = self.sessions.get_mut(&id)
        {
            s.heartbeat.last_ack_at = Some(at);
            s.heartbeat.unacked = 0;
        }
        self.signal(key, bot, shard, at, Signal::Acknowledged, ev);
    }

    /// A heartbeat sent, with the last sequence the session received when the line logs it.
    pub(super) fn on_heartbeat(
        &mut self,
        key: &PodKey,
        bot: &str,
        shard: u32,
        at: Timestamp,
        sequence: Option<u64>,
        ev: &Evidence,
    ) {
        let Some(id) = self.current(key, shard) else {
            return;
        };
        let alone = !self
            .sessions
            .values()
            .any(|o| o.id != id && o.bot == bot && o.shard == shard && o.is_live(at));
        let Some(s) = self.sessions.get_mut(&id) else {
            return;
        };
        // Only a library that logs acknowledgements can show a missing one.
        let mut missed = false;
        if s.heartbeat.last_ack_at.is_some() {
            s.heartbeat.unacked += 1;
            missed = s.heartbeat.unacked == 2;
        }
        let mut advanced = false;
        if let Some(n) = sequence {
            match &mut s.sequence {
                None => {
                    s.sequence = Some(SequenceTrack {
                        first: n,
                        first_at: at,
                        last: n,
                        last_at: at,
                        advanced_at: None,
                        interval_secs: None,
                    });
                }
                Some(q) if at > q.last_at => {
                    q.interval_secs = Some((at - q.last_at).as_seconds_f64());
                    if n > q.last {
                        q.advanced_at = Some(at);
                        advanced = true;
                    } else if n < q.last {
                        // A sequence that went back belongs to a session the logs did not
                        // show starting: start counting anew.
                        q.first = n;
                        q.first_at = at;
                        q.advanced_at = None;
                    }
                    q.last = n;
                    q.last_at = at;
                }
                Some(_) => {}
            }
        }
        let mut was_silent = false;
        if advanced {
            was_silent = s.silent_since.take().is_some();
            if alone {
                s.proven = true;
            }
        }
        if missed {
            let sig = Signal::HeartbeatMissed { derived: true };
            self.signal(key, bot, shard, at, sig, ev);
        }
        if advanced {
            let sig = Signal::SequenceAdvanced { id, was_silent };
            self.signal(key, bot, shard, at, sig, ev);
        }
    }

    /// A close of `bot`'s connection on `key` with `code`: counted per bot and per pod.
    pub(super) fn count_close(&mut self, key: &PodKey, bot: &str, code: u16) {
        let b = self.bot_state(bot);
        *b.close_codes.entry(code).or_default() += 1;
        let code = if close_codes::countable(code) {
            code
        } else {
            0
        };
        let (ns, pod) = (key.0.clone(), key.1.clone());
        let pod_codes = b
            .pod_close_codes
            .range((ns.clone(), pod.clone(), 0)..=(ns.clone(), pod.clone(), u16::MAX))
            .count();
        let k = (ns, pod, code);
        let k = if b.pod_close_codes.contains_key(&k) || pod_codes < close_codes::MAX_CODES_PER_POD
        {
            k
        } else {
            (k.0, k.1, 0)
        };
        *b.pod_close_codes.entry(k).or_default() += 1;
    }

    /// The class of a close, and the signal it gives (none for clean and fatal closes, which
    /// end the session or the process).
    pub(super) fn close_signal(code: Option<u16>, new_loss: bool) -> Option<Signal> {
        let failed_resume = match code.map(close_codes::classify) {
            Some(CloseClass::Clean | CloseClass::Fatal) => return None,
            Some(CloseClass::Reidentify) => true,
            _ => false,
        };
        Some(Signal::Interrupted {
            failed_resume,
            new_loss,
        })
    }

    /// The library logged Discord's start-limit figures itself: with no token configured,
    /// they are the samples Discord's count is read from.
    pub(super) fn on_logged_start_limit(
        &mut self,
        bot: &str,
        at: Timestamp,
        total: Option<u32>,
        remaining: Option<u32>,
        reset_after_ms: Option<u64>,
    ) {
        let (Some(total), Some(remaining)) = (total, remaining) else {
            return;
        };
        let b = self.bot_state(bot);
        if b.discord_polled || remaining > total {
            return;
        }
        // The log line does not say max_concurrency: the last known one, else Discord's
        // default of 1.
        let max_concurrency = b.last_sample.as_ref().map_or(1, |(_, s)| s.max_concurrency);
        let recommended_shards = b
            .last_sample
            .as_ref()
            .map_or(0, |(_, s)| s.recommended_shards);
        let sl = StartLimit {
            bot: bot.to_string(),
            total,
            remaining,
            reset_after_ms: reset_after_ms.unwrap_or(0),
            max_concurrency,
            recommended_shards,
        };
        self.on_start_limit(at, sl);
    }

    /// Whether session `id`'s bot can show events in its logs: declared in the configuration,
    /// else a dispatch line of the bot was ever seen, or the session logs heartbeat sequences.
    pub(super) fn events_visible(&self, id: u64) -> bool {
        let Some(s) = self.sessions.get(&id) else {
            return false;
        };
        if s.sequence.is_some() {
            return true;
        }
        let b = self.bots.get(&s.bot);
        match b.and_then(|b| b.declared_events) {
            Some(d) => d,
            None => b.is_some_and(|b| b.dispatch_seen),
        }
    }
}
