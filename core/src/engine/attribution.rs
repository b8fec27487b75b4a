//! Which bot a pod runs, learned from everything that names it: a line of the pod (later
//! lines included), the pod's labels through the config, another pod of its workload, a
//! configured `[[bot]]` or a bot Discord's count names. A pod nothing names yet is filed under
//! its workload's name; when its bot is learned, everything filed under that guess (sessions,
//! counts, findings) moves to the real name, so one bot is never split in two by naming.

use super::Engine;
use super::bot::BotState;
use super::instances::bot_of;
use super::state::Instance;

/// A name reduced to what naming conventions keep (`AgentBroker`, `agent-broker` and
/// `agentbroker` are one name).
fn folded(name: &str) -> String {
    name.chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

impl Engine {
    /// Bots configured by name (`[[bot]] name`): a pod whose workload has the same name
    /// (ignoring case and punctuation) runs that bot.
    pub fn with_known_bots(mut self, bots: impl IntoIterator<Item = String>) -> Self {
        for b in bots {
            self.learn_known_bot(&b);
        }
        self
    }

    /// Declares whether `bot`'s logs show its events (`[[bot]] events_visible`), instead of
    /// learning it from its lines.
    pub fn declare_events_visible(&mut self, bot: &str, visible: bool) {
        self.bot_state(bot).declared_events = Some(visible);
    }

    /// A bot name that configuration or Discord's count gives.
    /// Pods already filed under a guess that is this name in another spelling move to it.
    pub(super) fn learn_known_bot(&mut self, bot: &str) {
        if self.known_bots.len() >= 1024 || self.known_bots.iter().any(|(_, b)| b == bot) {
            return;
        }
        let f = folded(bot);
        let guesses: Vec<String> = self
            .sessions
            .values()
            .map(|s| s.bot.as_str())
            .chain(self.bots.keys().map(String::as_str))
            .filter(|b| *b != bot && folded(b) == f)
            .map(str::to_string)
            .collect();
        self.known_bots.push((f, bot.to_string()));
        let mut done: Vec<String> = Vec::new();
        for g in guesses {
            if !done.contains(&g) && !self.bot_claimed(&g) {
                self.rename_bot(&g, bot);
                done.push(g);
            }
        }
    }

    /// The bot of an instance (see [`bot_of`]), with the known bots matched by workload name.
    pub(super) fn bot_name(&self, inst: &Instance) -> String {
        if !self.known_bots.is_empty()
            && self.guessed(inst)
            && let Some(b) = self.known_for(inst)
        {
            return b.to_string();
        }
        bot_of(inst, &self.workload_bots, self.default_bot.as_deref()).to_string()
    }

    /// A known bot whose name is the instance's workload name.
    fn known_for(&self, inst: &Instance) -> Option<&str> {
        let w = folded(inst.workload.as_deref().unwrap_or(&inst.pod));
        self.known_bots
            .iter()
            .find(|(f, _)| !f.is_empty() && *f == w)
            .map(|(_, b)| b.as_str())
    }

    /// Whether nothing but the workload or pod name attributes the instance.
    fn guessed(&self, inst: &Instance) -> bool {
        inst.bot.is_none()
            && self.default_bot.is_none()
            && inst
                .workload
                .as_ref()
                .is_none_or(|w| !self.workload_bots.contains_key(w))
    }

    /// The instance at `ix` is named `named` (by a line or its labels). If its bot was only a
    /// guess until now, whatever was filed under the guess moves to `named`.
    pub(super) fn learn_bot(&mut self, ix: usize, named: &str) {
        let inst = self.instances.at(ix);
        if inst.bot.as_deref() == Some(named) {
            return;
        }
        let before = self
            .guessed(inst)
            .then(|| self.bot_name(inst))
            .filter(|b| b != named);
        let inst = self.instances.at_mut(ix);
        inst.bot = Some(named.to_string());
        if let Some(w) = &inst.workload {
            self.workload_bots.insert(w.clone(), named.to_string());
        }
        if let Some(from) = before
            && !self.bot_claimed(&from)
        {
            self.rename_bot(&from, named);
        }
    }

    /// Whether `bot` is only a name guessed from a workload (nothing claims it, no Discord
    /// count names it).
    pub(super) fn is_guessed_bot(&self, bot: &str) -> bool {
        !self.bot_claimed(bot) && self.bots.get(bot).is_some_and(|b| b.last_sample.is_none())
    }

    /// Whether an instance is explicitly attributed to `bot` (then it is not a guess to move).
    fn bot_claimed(&self, bot: &str) -> bool {
        self.instances
            .values()
            .any(|i| i.bot.as_deref() == Some(bot))
            || self.workload_bots.values().any(|b| b == bot)
            || self.default_bot.as_deref() == Some(bot)
            || self.known_bots.iter().any(|(_, b)| b == bot)
    }

    /// Moves everything filed under the guessed name `from` to `to`.
    fn rename_bot(&mut self, from: &str, to: &str) {
        for s in self.sessions.values_mut() {
            if s.bot == from {
                s.bot = to.to_string();
            }
        }
        self.peers.clear();
        if let Some(old) = self.bots.remove(from) {
            let new = self.bot_state(to);
            merge(new, old);
        }
        self.book.rekey_bot(from, to);
        self.handovers.rename_bot(from, to);
    }
}

/// Adds the counts of `old` (a guessed name) to `new` (the real one).
fn merge(new: &mut BotState, old: BotState) {
    if new.rate.events() == 0 {
        new.rate = old.rate;
    }
    new.identifies_logs += old.identifies_logs;
    new.identifies_discord += old.identifies_discord;
    new.unattributed += old.unattributed;
    for (c, n) in old.close_codes {
        *new.close_codes.entry(c).or_default() += n;
    }
    for (k, n) in old.pod_close_codes {
        *new.pod_close_codes.entry(k).or_default() += n;
    }
    for (k, n) in old.pod_signals {
        let e = new.pod_signals.entry(k).or_default();
        for (a, b) in e.iter_mut().zip(n) {
            *a += b;
        }
    }
    for (i, n) in old.overlap.counts.iter().enumerate() {
        new.overlap.counts[i] += n;
    }
    new.overlap.sum += old.overlap.sum;
    new.overlap.count += old.overlap.count;
    if new.last_sample.is_none() {
        new.last_sample = old.last_sample;
        new.pending = old.pending;
        new.burn = old.burn;
    }
    let mut ids: Vec<_> = new
        .log_identifies
        .drain(..)
        .chain(old.log_identifies)
        .collect();
    ids.sort_by_key(|li| li.at);
    new.log_identifies = ids.into();
    new.dispatch_seen |= old.dispatch_seen;
    new.declared_events = new.declared_events.or(old.declared_events);
    new.discord_polled |= old.discord_polled;
}
