//! The detectors: each turns the current state into assertions and closings of one kind.

use chrono::TimeDelta;

use super::findings::{Assertion, Evidence, Key, Kind, Severity};
use super::state::Risk;
use super::{Engine, session_key};
use crate::observation::{NANOS_PER_SEC, Timestamp, nanos_between};

fn secs(d: f64) -> String {
    if d >= 3600.0 {
        format!("{:.1} h", d / 3600.0)
    } else if d >= 120.0 {
        format!("{:.0} min", d / 60.0)
    } else {
        format!("{d:.0} s")
    }
}

fn hms(t: Timestamp) -> String {
    t.format("%H:%M:%S").to_string()
}

/// What `concurrent_sessions` of one bot and shard was last evaluated from: the live sessions
/// (oldest first), the oldest's end and its pod's termination, and the book's generation.
#[derive(Debug, PartialEq)]
pub(super) struct ConcurrentMemo {
    live: Vec<u64>,
    oldest_end: Option<Timestamp>,
    oldest_terminating: Option<Timestamp>,
    generation: u64,
}

impl Engine {
    /// Runs every time-driven detector at `now`.
    pub(super) fn evaluate(&mut self, now: Timestamp, finishing: bool) {
        self.expire_lingering(now);
        let mut groups: Vec<(String, u32)> = Vec::new();
        for s in self.sessions.values() {
            if !groups.iter().any(|(b, sh)| *sh == s.shard && *b == s.bot) {
                groups.push((s.bot.clone(), s.shard));
            }
        }
        groups.sort();
        for (bot, shard) in groups {
            self.evaluate_concurrent(&bot, shard, now);
        }
        self.evaluate_silence(now);
        self.expire_duplicates(now);
        self.evaluate_offline(now);
        self.settle_identifies(now, finishing);
        self.collect_garbage(now);
    }

    /// `concurrent_sessions`: more than one live session for one bot and shard. The finding
    /// belongs to every session but the oldest.
    pub(super) fn evaluate_concurrent(&mut self, bot: &str, shard: u32, now: Timestamp) {
        let mut live: Vec<&super::Session> = self
            .sessions
            .values()
            .filter(|s| s.bot == bot && s.shard == shard && s.is_live(now))
            .collect();
        live.sort_by_key(|s| (s.ready_at, s.id));
        let old_terminating = live
            .first()
            .filter(|_| live.len() > 1)
            .and_then(|o| self.instance_of(&o.namespace, &o.pod))
            .and_then(|i| i.terminating_at);
        let memo = ConcurrentMemo {
            live: live.iter().map(|s| s.id).collect(),
            oldest_end: live.first().and_then(|s| s.ended_at),
            oldest_terminating: old_terminating,
            generation: self.book.generation(),
        };
        if self
            .concurrent_memo
            .get(bot)
            .and_then(|m| m.get(&shard))
            .is_some_and(|m| *m == memo)
        {
            // Same sessions, same states, no finding opened or closed since: the same
            // findings would be asserted again and none closed.
            return;
        }
        let mut keep = Vec::new();
        if live.len() > 1 {
            let oldest = live[0];
            let old_state = match (oldest.ended_at, old_terminating) {
                (Some(end), _) => format!(
                    ", lingering on Discord's side since its pod ended at {}",
                    hms(end)
                ),
                (None, Some(t)) => format!(", its pod terminating since {}", hms(t)),
                _ => String::new(),
            };
            for s in &live[1..] {
                let key = session_key(Kind::ConcurrentSessions, s);
                let mut evidence = vec![s.evidence[0].clone(), oldest.evidence[0].clone()];
                if let Some(t) = old_terminating {
                    evidence.push(Evidence {
                        at: t,
                        source: "lifecycle".into(),
                        text: format!("pod {} terminating", oldest.pod),
                    });
                }
                keep.push(key.clone());
                let a = Assertion {
                    key,
                    since: s.ready_at,
                    severity: Severity::Warning,
                    explanation: format!(
                        "{} sessions of {bot} on shard {shard} are live: pod {} connected at {} \
                         while pod {}'s session (live since {}{old_state}) still held the same shard.",
                        live.len(),
                        s.pod,
                        hms(s.ready_at),
                        oldest.pod,
                        hms(oldest.ready_at),
                    ),
                    evidence,
                };
                self.book.assert(a);
            }
        }
        // Close the ones that no longer hold, at the moment the overlap ended.
        let end_at = self
            .sessions
            .values()
            .filter(|s| s.bot == bot && s.shard == shard)
            .filter_map(|s| s.live_until)
            .filter(|u| *u <= now)
            .max()
            .unwrap_or(now);
        for k in self.book.active_keys(Kind::ConcurrentSessions) {
            if k.bot == bot && k.shard == Some(shard) && !keep.contains(&k) {
                let since = self
                    .book
                    .active()
                    .find(|f| f.key() == k)
                    .map(|f| f.since)
                    .unwrap_or(now);
                let at = end_at.max(since);
                self.bot_state(bot)
                    .overlap
                    .observe((at - since).as_seconds_f64());
                self.book.close(&k, at, self.cfg.max_closed_findings);
            }
        }
        let memo = ConcurrentMemo {
            generation: self.book.generation(),
            ..memo
        };
        self.concurrent_memo
            .entry(bot.to_string())
            .or_default()
            .insert(shard, memo);
    }

    /// `duplicate_delivery`: two live sessions of one bot and shard both receive events.
    /// The session at row `row` received an event while those at rows `others` were live.
    pub(super) fn evaluate_duplicate(&mut self, row: usize, others: &[usize], at: Timestamp) {
        let min = self.cfg.duplicate_min_events;
        let s = self.sessions.at(row);
        if s.overlap_events < min {
            return;
        }
        let window = i128::from(self.cfg.duplicate_window_secs) * NANOS_PER_SEC;
        for &o in others {
            let o = self.sessions.at(o);
            let recent = o
                .last_event_at
                .is_some_and(|l| nanos_between(at, l) <= window);
            if !recent || o.overlap_events < min {
                continue;
            }
            let (older, newer) = if o.ready_at <= s.ready_at {
                (o, s)
            } else {
                (s, o)
            };
            if newer.duplicate_open {
                // Already reported: every further event of the overlap would only re-assert it.
                return;
            }
            let newer_id = newer.id;
            let since = newer.ready_at.max(older.ready_at);
            let a = Assertion {
                key: session_key(Kind::DuplicateDelivery, newer),
                since,
                severity: Severity::Critical,
                explanation: format!(
                    "Pods {} and {} both receive {}'s events on shard {} ({} and {} events since {} \
                     when detected), so the bot handles each event twice and answers twice.",
                    older.pod,
                    newer.pod,
                    s.bot,
                    s.shard,
                    older.overlap_events,
                    newer.overlap_events,
                    hms(since)
                ),
                evidence: vec![
                    older
                        .evidence
                        .last()
                        .cloned()
                        .expect("sessions carry evidence"),
                    newer
                        .evidence
                        .last()
                        .cloned()
                        .expect("sessions carry evidence"),
                ],
            };
            self.book.assert(a);
            self.sessions
                .get_mut(&newer_id)
                .expect("exists")
                .duplicate_open = true;
            return;
        }
    }

    fn expire_duplicates(&mut self, now: Timestamp) {
        let window = 2 * i128::from(self.cfg.duplicate_window_secs) * NANOS_PER_SEC;
        let recent = |l: Timestamp| nanos_between(now, l) <= window;
        // Decided over borrowed state first (a tick of a long overlap closes nothing).
        let mut closes: Vec<(Key, Timestamp, Option<u64>)> = Vec::new();
        for f in self.book.active_of(Kind::DuplicateDelivery) {
            let newer = self
                .sessions
                .values()
                .filter(|s| s.bot == f.bot && s.pod == f.pod && Some(s.shard) == f.shard)
                .max_by_key(|s| s.ready_at);
            let Some(newer) = newer else {
                closes.push((f.key(), now, None));
                continue;
            };
            let partner_active = self.sessions.values().any(|o| {
                o.id != newer.id
                    && o.bot == newer.bot
                    && o.shard == newer.shard
                    && o.is_live(now)
                    && o.last_event_at.is_some_and(recent)
            });
            let newer_active = newer.is_live(now) && newer.last_event_at.is_some_and(recent);
            if !(partner_active && newer_active) {
                let at = newer.ended_at.filter(|e| *e <= now).unwrap_or(now);
                closes.push((f.key(), at, Some(newer.id)));
            }
        }
        for (k, at, newer) in closes {
            self.book.close(&k, at, self.cfg.max_closed_findings);
            if let Some(id) = newer {
                self.sessions.get_mut(&id).expect("exists").duplicate_open = false;
            }
        }
    }

    fn expire_lingering(&mut self, now: Timestamp) {
        for k in self.book.active_keys(Kind::LingeringSession) {
            let until = self
                .sessions
                .values()
                .filter(|s| s.bot == k.bot && s.pod == k.pod && Some(s.shard) == k.shard)
                .filter_map(|s| s.live_until)
                .max();
            match until {
                Some(u) if u > now => {}
                Some(u) => self.book.close(&k, u, self.cfg.max_closed_findings),
                None => self.book.close(&k, now, self.cfg.max_closed_findings),
            }
        }
    }

    /// `silent_session` (at risk) and `quiet_session` (no risk factor).
    fn evaluate_silence(&mut self, now: Timestamp) {
        let ids: Vec<u64> = self
            .sessions
            .values()
            .filter(|s| s.is_open() && s.is_live(now))
            .map(|s| s.id)
            .collect();
        for id in ids {
            let s = &self.sessions[&id];
            let since = s.quiet_since();
            let silent_for = now - since;
            let Some(b) = self.bots.get(&s.bot) else {
                // No event ever seen for the bot: still judge at-risk sessions by the fallback.
                if s.at_risk()
                    && silent_for >= TimeDelta::seconds(self.cfg.silent_fallback_secs as i64)
                {
                    self.flag_silent(id, since, now, None);
                }
                continue;
            };
            if s.at_risk() {
                if silent_for >= b.rate.silent_threshold(&self.cfg) {
                    let interval = b.rate.expected_interval(&self.cfg);
                    self.flag_silent(id, since, now, interval);
                }
            } else if s.inferred && s.events == 0 {
                // Only a RESUME was seen: nothing to judge it by.
            } else if let Some(th) = b.rate.quiet_threshold(&self.cfg)
                && silent_for >= th
            {
                let interval = b.rate.expected_interval(&self.cfg).unwrap_or(0.0);
                let s = self.sessions.get_mut(&id).expect("exists");
                s.silent_since = Some(since);
                let s = &self.sessions[&id];
                let a = Assertion {
                    key: session_key(Kind::QuietSession, s),
                    since,
                    severity: Severity::Warning,
                    explanation: format!(
                        "Pod {}'s session of {} has received no event for {}, far longer than \
                         the bot's usual one event every {}; no rollout or overlap explains it, \
                         so it may be a quiet period or a deaf session.",
                        s.pod,
                        s.bot,
                        secs(silent_for.as_seconds_f64()),
                        secs(interval)
                    ),
                    evidence: s.evidence.iter().take(2).cloned().collect(),
                };
                self.book.assert(a);
            }
        }
    }

    fn flag_silent(&mut self, id: u64, since: Timestamp, now: Timestamp, interval: Option<f64>) {
        let p = self.cfg.silent_false_alarm;
        let s = self.sessions.get_mut(&id).expect("exists");
        s.silent_since = Some(since);
        let s = &self.sessions[&id];
        let why: Vec<String> = s
            .risks
            .iter()
            .map(|r| match r {
                Risk::StartedDuringOverlap { other_pod } => {
                    format!("pod {other_pod}'s session was still live when it connected")
                }
                Risk::PredecessorActive {
                    other_pod, events, ..
                } => {
                    format!("pod {other_pod} kept receiving the bot's events ({events} since then)")
                }
                Risk::UnexplainedIdentify => {
                    "Discord counted a session start around then that no log explains".into()
                }
            })
            .collect();
        let rate = match interval {
            Some(i) => format!(
                "at the bot's usual one event every {}, a healthy session stays this silent with probability under {p}",
                secs(i)
            ),
            None => {
                "the bot's event rate is not learned yet, so the fallback threshold applied".into()
            }
        };
        let explanation = format!(
            "Pod {} logged a gateway connection for {} at {} but has received no event for {} \
             while {}; {rate}: it is connected but deaf.",
            s.pod,
            s.bot,
            hms(s.ready_at),
            secs((now - since).as_seconds_f64()),
            why.join(" and "),
        );
        let a = Assertion {
            key: session_key(Kind::SilentSession, s),
            since,
            severity: Severity::Critical,
            explanation,
            evidence: s.evidence.clone(),
        };
        self.book.assert(a);
    }

    /// `bot_offline`: pods that should serve the bot but no live session.
    fn evaluate_offline(&mut self, now: Timestamp) {
        let grace = TimeDelta::seconds(self.cfg.offline_grace_secs as i64);
        let mut bots: std::collections::BTreeMap<String, (Timestamp, String, Vec<String>)> =
            Default::default();
        // Bots with a live session are not offline: most ticks end here, without allocating.
        let mut live_bots: Vec<&str> = Vec::new();
        for s in self.sessions.values() {
            if s.is_live(now) && !live_bots.contains(&s.bot.as_str()) {
                live_bots.push(&s.bot);
            }
        }
        for inst in self.instances.values() {
            if !inst.is_wanted() || !(inst.has_logs || inst.bot.is_some()) {
                continue;
            }
            let bot = super::bot_of(inst, &self.workload_bots, self.default_bot.as_deref());
            if live_bots.contains(&bot) {
                continue;
            }
            let bot = bot.to_string();
            let started = inst
                .created_at
                .or(inst.running_since)
                .unwrap_or(inst.first_seen);
            let e = bots
                .entry(bot)
                .or_insert((started, inst.namespace.clone(), Vec::new()));
            e.0 = e.0.min(started);
            e.2.push(inst.pod.clone());
        }
        let mut keep = Vec::new();
        for (bot, (started, namespace, pods)) in bots {
            let last_live = self
                .sessions
                .values()
                .filter(|s| s.bot == bot)
                .filter_map(|s| s.live_until)
                .max();
            let since = last_live.map_or(started, |l| l.max(started));
            if now - since < grace {
                continue;
            }
            let key = Key {
                kind: Kind::BotOffline,
                bot: bot.clone(),
                namespace,
                pod: String::new(),
                shard: None,
            };
            keep.push(key.clone());
            let a = Assertion {
                key,
                since,
                severity: Severity::Critical,
                explanation: format!(
                    "{bot} has running pods ({}) but no live gateway session for {}: the bot is offline.",
                    pods.join(", "),
                    secs((now - since).as_seconds_f64())
                ),
                evidence: vec![],
            };
            self.book.assert(a);
        }
        for k in self.book.active_keys(Kind::BotOffline) {
            if !keep.contains(&k) {
                let at = self
                    .sessions
                    .values()
                    .filter(|s| s.bot == k.bot && s.is_live(now))
                    .map(|s| s.ready_at)
                    .min()
                    .unwrap_or(now);
                self.book.close(&k, at, self.cfg.max_closed_findings);
            }
        }
    }

    /// `unattributed_identify`: match Discord's counted drops with the identifies in the logs,
    /// once the slack after each interval has passed.
    fn settle_identifies(&mut self, now: Timestamp, finishing: bool) {
        let skew = TimeDelta::seconds(self.cfg.identify_skew_secs as i64);
        let bots: Vec<String> = self.bots.keys().cloned().collect();
        for bot in bots {
            loop {
                let b = self.bots.get_mut(&bot).expect("exists");
                let Some(p) = b.pending.front().cloned() else {
                    break;
                };
                if !finishing && now < p.to + skew {
                    break;
                }
                b.pending.pop_front();
                let mut matched = 0u32;
                for li in b.log_identifies.iter_mut() {
                    if matched == p.count {
                        break;
                    }
                    if !li.matched && li.at > p.from - skew && li.at <= p.to + skew {
                        li.matched = true;
                        matched += 1;
                    }
                }
                let unexplained = p.count - matched;
                let key = Key {
                    kind: Kind::UnattributedIdentify,
                    bot: bot.clone(),
                    namespace: String::new(),
                    pod: String::new(),
                    shard: None,
                };
                if unexplained == 0 {
                    self.book.close(&key, p.to, self.cfg.max_closed_findings);
                    continue;
                }
                b.unattributed += u64::from(unexplained);
                for s in self.sessions.values_mut() {
                    if s.bot == bot
                        && s.ready_at > p.from - skew
                        && s.ready_at <= p.to + skew
                        && !s.risks.contains(&Risk::UnexplainedIdentify)
                    {
                        s.risks.push(Risk::UnexplainedIdentify);
                    }
                }
                let a = Assertion {
                    key,
                    since: p.from,
                    severity: Severity::Warning,
                    explanation: format!(
                        "Discord counted {} new session(s) of {bot} between {} and {} but the logs \
                         show {matched}: {unexplained} session(s) were started by something this \
                         exporter does not see (another pod, cluster or machine using the token).",
                        p.count,
                        hms(p.from),
                        hms(p.to)
                    ),
                    evidence: vec![Evidence {
                        at: p.to,
                        source: format!("discord:{bot}").into(),
                        text: format!(
                            "session_start_limit.remaining fell by {} between {} and {}",
                            p.count, p.from, p.to
                        ),
                    }],
                };
                self.book.assert(a);
            }
            let b = self.bots.get_mut(&bot).expect("exists");
            // Identifies older than any interval still to come can never match.
            let horizon = b.pending.front().map_or(now, |p| p.from) - skew * 2;
            while b.log_identifies.front().is_some_and(|li| li.at < horizon) {
                b.log_identifies.pop_front();
            }
        }
    }

    /// `start_limit_low`: few session starts left, or burning them fast enough to run out.
    pub(super) fn evaluate_start_limit(&mut self, bot: &str, at: Timestamp) {
        let fraction = self.cfg.start_limit_low_fraction;
        let max_closed = self.cfg.max_closed_findings;
        let b = self.bot_state(bot);
        let Some((_, sl)) = b.last_sample.clone() else {
            return;
        };
        let reset_secs = sl.reset_after_ms as f64 / 1000.0;
        let burn = match (b.burn.front(), b.burn.back()) {
            (Some((t0, c0)), Some((t1, c1))) if t1 > t0 => {
                (c1 - c0) as f64 / (*t1 - *t0).as_seconds_f64()
            }
            _ => 0.0,
        };
        let low = (sl.remaining as f64) < sl.total as f64 * fraction;
        let runs_out = burn > 0.0 && burn * reset_secs > sl.remaining as f64;
        let key = Key {
            kind: Kind::StartLimitLow,
            bot: bot.to_string(),
            namespace: String::new(),
            pod: String::new(),
            shard: None,
        };
        if !(low || runs_out) {
            self.book.close(&key, at, max_closed);
            return;
        }
        let severity = if sl.remaining == 0 {
            Severity::Critical
        } else {
            Severity::Warning
        };
        let why = if runs_out && !low {
            format!(
                "at the last hour's rate of {:.1} per hour it runs out before the reset in {}",
                burn * 3600.0,
                secs(reset_secs)
            )
        } else {
            format!("the window resets in {}", secs(reset_secs))
        };
        self.book.assert(Assertion {
            key,
            since: at,
            severity,
            explanation: format!(
                "{bot} has {} of {} session starts left; {why}. When none are left Discord \
                 refuses new sessions, and exhausting them resets the token.",
                sl.remaining, sl.total
            ),
            evidence: vec![Evidence {
                at,
                source: format!("discord:{bot}").into(),
                text: format!(
                    "session_start_limit remaining={} total={} reset_after={}ms",
                    sl.remaining, sl.total, sl.reset_after_ms
                ),
            }],
        });
    }

    /// Forgets pods deleted longer ago than the retention window (and their series).
    fn collect_garbage(&mut self, now: Timestamp) {
        let retention = TimeDelta::seconds(self.cfg.retention_secs.min(1 << 40) as i64);
        let window = TimeDelta::seconds(self.cfg.rate_window_secs as i64);
        for b in self.bots.values_mut() {
            b.rate.prune(now, window);
        }
        let gone: Vec<(String, String)> = self
            .instances
            .iter()
            .filter(|(_, i)| i.deleted_at.is_some_and(|d| now - d > retention))
            .map(|(k, _)| k.clone())
            .collect();
        for k in gone {
            let still_live = self
                .sessions
                .values()
                .any(|s| s.namespace == k.0 && s.pod == k.1 && s.is_live(now));
            if still_live {
                continue;
            }
            self.instances.remove(&k);
            self.forget_resolutions();
            self.sessions
                .retain(|_, s| !(s.namespace == k.0 && s.pod == k.1));
            self.peers.clear();
            self.folded_events
                .retain(|f, _| !(f.0 == k.0 && f.1 == k.1));
        }
    }
}
