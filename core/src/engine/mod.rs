//! Pure correlation: sessions, detectors, findings. No I/O, no clock reads, no async: time
//! arrives with the observations ([`Engine::observe`]) and with ticks ([`Engine::tick`]).

mod bot;
mod config;
mod detectors;
mod findings;
mod rate;
mod snapshot;
mod state;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use chrono::TimeDelta;

pub use bot::{BotState, Histogram, OVERLAP_BUCKETS};
pub use config::EngineConfig;
pub use findings::{Change, Evidence, Finding, Kind, Severity};
pub use snapshot::{BotView, SessionSeries, Snapshot};
pub use state::{EndReason, Instance, Risk, Session, SessionState};
use state::{Instances, PodKey, SessionTable};

use bot::LogIdentify;
use findings::{Assertion, Book, Key};

use crate::observation::{
    Body, InstanceChange, InstanceId, InstanceObservation, Observation, SessionEvent,
    SessionObservation, StartLimit, Timestamp,
};

/// Gateway close codes Discord documents as not to be retried.
pub const FATAL_CLOSE_CODES: [u16; 6] = [4004, 4010, 4011, 4012, 4013, 4014];

/// A session of the same bot and shard that ended at most this long before a new one started
/// is the new one's predecessor (a handover: a rollout, a restart, scale 0 then 1).
pub const HANDOVER_WINDOW_SECS: i64 = 1800;

/// Ended sessions kept per pod beyond the open ones (older ones are folded into counters).
const MAX_ENDED_SESSIONS_PER_POD: usize = 16;
/// Evidence lines kept per session.
const MAX_SESSION_EVIDENCE: usize = 8;

/// Hash maps of the per-line path: names are not attacker-chosen keys in a way that matters
/// here (a bounded set of pods), and the fast hash is a large share of a line's cost.
type FastMap<K, V> = HashMap<K, V, foldhash::fast::RandomState>;

/// The sessions live next to one session (their rows in the session table), valid for times
/// in `[from, until)` while the table's rows stay where they are.
#[derive(Debug)]
struct Peers {
    generation: u64,
    from: Timestamp,
    until: Option<Timestamp>,
    rows: Vec<usize>,
    /// Those of them newer than the session (ready later).
    newer: Vec<usize>,
}

/// The correlation engine. One task owns it; everything else sees [`Snapshot`]s.
#[derive(Debug)]
pub struct Engine {
    cfg: EngineConfig,
    default_bot: Option<String>,
    now: Option<Timestamp>,
    sessions: SessionTable,
    next_session: u64,
    instances: Instances,
    /// Events of sessions already forgotten, per (namespace, pod, shard), so counters never drop.
    folded_events: HashMap<(String, String, u32), u64>,
    /// Bot learned for each workload, so a pod that never names its bot inherits it.
    workload_bots: HashMap<String, String>,
    bots: BTreeMap<String, BotState>,
    book: Book,
    /// Source health as last reported.
    sources: BTreeMap<String, (bool, String)>,
    /// (namespace, pod) a log line named -> the index of the instance it resolved to: looked
    /// up by `&str`, so a line costs no allocation and no key comparison in the instance map.
    resolved: FastMap<String, FastMap<String, usize>>,
    /// A log stream's shared instance (by address; the `Arc` kept so the address stays its
    /// own) -> the instance index: no hashing or comparing of names per line.
    by_stream: FastMap<usize, (Arc<InstanceId>, usize)>,
    /// Per session: the other live sessions of its bot and shard, and the time range over
    /// which that stays true. Cleared whenever a session starts, ends, leaves or changes bot.
    peers: FastMap<u64, Peers>,
    /// Reused per event (the sessions overlapping the one that received it).
    scratch: Vec<usize>,
    scratch_newer: Vec<usize>,
    /// Per (bot, shard): what `concurrent_sessions` last asserted from, to skip re-asserting
    /// the same findings on every tick.
    concurrent_memo: HashMap<String, HashMap<u32, detectors::ConcurrentMemo>>,
}

impl Engine {
    pub fn new(cfg: EngineConfig) -> Self {
        Self {
            cfg,
            default_bot: None,
            now: None,
            sessions: SessionTable::default(),
            next_session: 0,
            instances: Instances::default(),
            folded_events: HashMap::new(),
            workload_bots: HashMap::new(),
            bots: BTreeMap::new(),
            book: Book::default(),
            sources: BTreeMap::new(),
            resolved: FastMap::default(),
            by_stream: FastMap::default(),
            peers: FastMap::default(),
            scratch: Vec::new(),
            scratch_newer: Vec::new(),
            concurrent_memo: HashMap::new(),
        }
    }

    /// The bot of instances that nothing else attributes (`--bot`, or the config).
    pub fn with_default_bot(mut self, bot: Option<String>) -> Self {
        self.default_bot = bot;
        self
    }

    pub fn config(&self) -> &EngineConfig {
        &self.cfg
    }

    /// The latest time the engine has seen.
    pub fn now(&self) -> Option<Timestamp> {
        self.now
    }

    /// Feeds one observation. Out-of-order observations are applied at their own time; the
    /// detectors never move backwards.
    pub fn observe(&mut self, obs: Observation) {
        let at = obs.at;
        self.now = Some(self.now.map_or(at, |n| n.max(at)));
        match obs.body {
            Body::Session(s) => self.on_session(at, obs.source, s),
            Body::Instance(i) => self.on_instance(at, &obs.source, i),
            Body::StartLimit(sl) => self.on_start_limit(at, sl),
            Body::SourceHealth(h) => {
                self.sources.insert(h.source, (h.up, h.detail));
            }
        }
    }

    /// Advances time: runs the time-driven detectors.
    pub fn tick(&mut self, now: Timestamp) {
        let now = self.now.map_or(now, |n| n.max(now));
        self.now = Some(now);
        self.evaluate(now, false);
    }

    /// End of input (replay): also settles Discord-count intervals whose slack has not passed.
    pub fn finish(&mut self) {
        if let Some(now) = self.now {
            self.evaluate(now, true);
        }
    }

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

    /// Findings opened or closed since the last call.
    pub fn take_changes(&mut self) -> Vec<Change> {
        self.book.take_changes()
    }

    pub fn active_findings(&self) -> impl Iterator<Item = &Finding> {
        self.book.active()
    }

    /// Active and (bounded) closed findings, oldest first.
    pub fn all_findings(&self) -> Vec<Finding> {
        let mut v: Vec<Finding> = self
            .book
            .closed()
            .chain(self.book.active())
            .cloned()
            .collect();
        v.sort_by_key(|f| (f.since, f.id));
        v
    }

    pub fn sessions(&self) -> impl Iterator<Item = &Session> {
        self.sessions.values()
    }

    pub fn instances(&self) -> impl Iterator<Item = &Instance> {
        self.instances.values()
    }

    pub fn bots(&self) -> &BTreeMap<String, BotState> {
        &self.bots
    }

    // ----- sessions -------------------------------------------------------------------------

    fn on_session(&mut self, at: Timestamp, source: Arc<str>, s: SessionObservation) {
        let ix = self.resolve_shared(&s.instance, at);
        let shard = s.shard.unwrap_or(0);
        // One lookup for everything the hot path (a dispatch line) needs.
        let current = {
            let inst = self.instances.at_mut(ix);
            inst.has_logs = true;
            inst.last_seen = inst.last_seen.max(at);
            if inst.uid.is_none() && s.instance.uid.is_some() {
                inst.uid = s.instance.uid.clone();
            }
            if let Some(b) = &s.bot
                && inst.bot.as_ref() != Some(b)
            {
                inst.bot = Some(b.clone());
                if let Some(w) = &inst.workload {
                    self.workload_bots.insert(w.clone(), b.clone());
                }
            }
            if inst.running_since.is_none() {
                // Plain logs with no lifecycle source: the process runs since its first line.
                inst.running_since = Some(at);
                inst.runs.push((at, None));
            }
            inst.current
                .get(&shard)
                .or_else(|| inst.current.values().next())
                .copied()
        };
        let evidence = |key: &str| Evidence {
            at,
            source,
            text: s
                .line
                .unwrap_or_else(|| format!("{key} {}", s.event.name())),
        };
        if let (SessionEvent::Dispatch { .. }, Some(id)) = (&s.event, current) {
            // The hot path: an event of the session the pod already has.
            let evidence = evidence(&self.instances.at(ix).pod);
            self.on_dispatch(id, at, evidence);
            return;
        }
        let key: PodKey = {
            let inst = self.instances.at(ix);
            (inst.namespace.clone(), inst.pod.clone())
        };
        let bot = bot_of(
            self.instances.at(ix),
            &self.workload_bots,
            self.default_bot.as_deref(),
        )
        .to_string();
        let evidence = evidence(&key.1);
        match s.event {
            SessionEvent::Starting => {
                let inst = self.instances.get_mut(&key).expect("resolved");
                inst.identified = false;
                inst.clean_shutdown = false;
            }
            SessionEvent::Identifying => self.count_identify(&key, &bot, at),
            SessionEvent::Ready { session_id } => {
                // Libraries log one READY twice (discord.py: the raw payload and the connect
                // line): the same session, not a new one.
                if let Some(id) = self.current(&key, shard) {
                    let s = self.sessions.get_mut(&id).expect("exists");
                    let same = match (&s.session_id, &session_id) {
                        (Some(a), Some(b)) => a == b,
                        _ => s.events == 0 && at - s.ready_at < TimeDelta::seconds(10),
                    };
                    if same && !s.inferred {
                        if s.session_id.is_none()
                            && let Some(sid) = session_id
                        {
                            s.session_id = Some(sid.clone());
                            self.book.record(Change::SessionUpdate {
                                id,
                                at,
                                state: SessionState::SessionId { session_id: sid },
                            });
                        }
                        if s.bot != bot && s.events == 0 {
                            s.bot = bot.clone();
                            self.peers.clear();
                        }
                        return;
                    }
                }
                self.count_identify(&key, &bot, at);
                self.instances.get_mut(&key).expect("resolved").identified = false;
                self.start_session(&key, &bot, shard, at, session_id, false, evidence);
            }
            SessionEvent::Resumed => match self.current(&key, shard) {
                None => {
                    self.start_session(&key, &bot, shard, at, None, true, evidence);
                }
                Some(id) => self.update(id, at, SessionState::Resumed),
            },
            SessionEvent::Dispatch { .. } => {
                let id = match current {
                    Some(id) => id,
                    None => self.start_session(&key, &bot, shard, at, None, true, evidence.clone()),
                };
                self.on_dispatch(id, at, evidence);
            }
            SessionEvent::HeartbeatAck => {}
            SessionEvent::Reconnecting => {
                if let Some(id) = self.current(&key, shard) {
                    self.update(id, at, SessionState::Reconnecting { code: None });
                }
            }
            SessionEvent::InvalidSession { resumable } => {
                if let Some(id) = self.current(&key, shard) {
                    if resumable {
                        self.update(id, at, SessionState::Reconnecting { code: None });
                    } else {
                        self.end_session(id, at, EndReason::Invalidated, false);
                    }
                }
            }
            SessionEvent::Closed { code } => {
                if let Some(code) = code {
                    *self.bot_state(&bot).close_codes.entry(code).or_default() += 1;
                }
                match code {
                    Some(c) if FATAL_CLOSE_CODES.contains(&c) => {
                        let reason = format!("gateway closed with code {c}");
                        self.on_fatal(&key, &bot, at, reason, Some(c), evidence);
                    }
                    Some(1000 | 1001) => {
                        if let Some(id) = self.current(&key, shard) {
                            self.end_session(id, at, EndReason::Closed { code }, false);
                        }
                    }
                    // Other closes are followed by a resume or a new READY.
                    _ => {
                        if let Some(id) = self.current(&key, shard) {
                            self.update(id, at, SessionState::Reconnecting { code });
                        }
                    }
                }
            }
            SessionEvent::Fatal { reason, code } => {
                if let Some(c) = code {
                    *self.bot_state(&bot).close_codes.entry(c).or_default() += 1;
                }
                self.on_fatal(&key, &bot, at, reason, code, evidence);
            }
            SessionEvent::ShuttingDown => {
                let inst = self.instances.get_mut(&key).expect("resolved");
                inst.clean_shutdown = true;
                let ids: Vec<u64> = inst.current.values().copied().collect();
                for id in ids {
                    self.update(id, at, SessionState::ShuttingDown);
                }
            }
            SessionEvent::Stopped => {
                let inst = self.instances.get_mut(&key).expect("resolved");
                inst.clean_shutdown = true;
                let ids: Vec<u64> = inst.current.values().copied().collect();
                for id in ids {
                    self.end_session(id, at, EndReason::Closed { code: None }, false);
                }
            }
        }
    }

    fn count_identify(&mut self, key: &PodKey, bot: &str, at: Timestamp) {
        let inst = self.instances.get_mut(key).expect("resolved");
        if inst.identified {
            return;
        }
        inst.identified = true;
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
    }

    fn on_fatal(
        &mut self,
        key: &PodKey,
        bot: &str,
        at: Timestamp,
        reason: String,
        code: Option<u16>,
        evidence: Evidence,
    ) {
        // The IDENTIFY that Discord refused still counted as a session start.
        self.count_identify(key, bot, at);
        let inst = self.instances.get_mut(key).expect("resolved");
        inst.identified = false;
        let ids: Vec<u64> = inst.current.values().copied().collect();
        for id in ids {
            self.end_session(
                id,
                at,
                EndReason::Fatal {
                    reason: reason.clone(),
                },
                false,
            );
        }
        let code_text = code
            .map(|c| format!(" (close code {c})"))
            .unwrap_or_default();
        let inst = &self.instances[key];
        let restarts = if inst.restarts > 0 {
            format!("; the pod has restarted {} times", inst.restarts)
        } else {
            String::new()
        };
        self.book.assert(Assertion {
            key: Key {
                kind: Kind::FatalClose,
                bot: bot.to_string(),
                namespace: key.0.clone(),
                pod: key.1.clone(),
                shard: None,
            },
            since: at,
            severity: Severity::Critical,
            explanation: format!(
                "Discord refused {bot}'s gateway connection from pod {}: {reason}{code_text}; \
                 retrying cannot help until the token or the intents in the Developer Portal are fixed{restarts}.",
                key.1
            ),
            evidence: vec![evidence],
        });
    }

    /// Records a step of a session's life for the sinks.
    fn update(&mut self, id: u64, at: Timestamp, state: SessionState) {
        self.book.record(Change::SessionUpdate { id, at, state });
    }

    /// The session a new one of `bot` and `shard` on `key` takes over from: the latest still
    /// live or ended within [`HANDOVER_WINDOW_SECS`]; and whether that is a handover (another
    /// pod, or another run of this pod) rather than a reconnect.
    fn predecessor(
        &self,
        key: &PodKey,
        bot: &str,
        shard: u32,
        at: Timestamp,
    ) -> Option<(u64, bool)> {
        let window = TimeDelta::seconds(HANDOVER_WINDOW_SECS);
        let p = self
            .sessions
            .values()
            .filter(|o| o.bot == bot && o.shard == shard && o.ready_at <= at)
            .filter(|o| o.is_live(at) || o.ended_at.is_some_and(|e| at - e <= window))
            .max_by_key(|o| (o.ready_at, o.id))?;
        let handover = p.namespace != key.0
            || p.pod != key.1
            || matches!(p.end, Some(EndReason::PodEnded { .. }));
        Some((p.id, handover))
    }

    fn current(&self, key: &PodKey, shard: u32) -> Option<u64> {
        self.instances.get(key)?.current.get(&shard).copied()
    }

    #[allow(clippy::too_many_arguments)]
    fn start_session(
        &mut self,
        key: &PodKey,
        bot: &str,
        shard: u32,
        at: Timestamp,
        session_id: Option<String>,
        inferred: bool,
        evidence: Evidence,
    ) -> u64 {
        if let Some(prev) = self.current(key, shard) {
            self.end_session(prev, at, EndReason::Replaced, false);
        }
        let predecessor = self.predecessor(key, bot, shard, at);
        let mut risks = Vec::new();
        if !inferred {
            for o in self.sessions.values() {
                if o.bot == bot && o.shard == shard && o.is_live(at) {
                    let r = Risk::StartedDuringOverlap {
                        other_pod: o.pod.clone(),
                    };
                    if !risks.contains(&r) {
                        risks.push(r);
                    }
                }
            }
        }
        self.next_session += 1;
        let id = self.next_session;
        let inst = self.instances.get_mut(key).expect("resolved");
        inst.current.insert(shard, id);
        let session = Session {
            id,
            bot: bot.to_string(),
            namespace: key.0.clone(),
            pod: key.1.clone(),
            instance: crate::observation::InstanceId {
                namespace: key.0.clone(),
                pod: key.1.clone(),
                uid: inst.uid.clone(),
                container: None,
            },
            shard,
            session_id,
            ready_at: at,
            inferred,
            events: 0,
            last_event_at: None,
            overlap_events: 0,
            ended_at: None,
            end: None,
            live_until: None,
            risks,
            proven: false,
            silent_since: None,
            duplicate_open: false,
            predecessor_risks: Vec::new(),
            evidence: vec![evidence],
        };
        self.book.record(Change::SessionStarted {
            session: Box::new(session.clone()),
            predecessor: predecessor.map(|p| p.0),
            handover: predecessor.is_some_and(|p| p.1),
        });
        self.sessions.insert(id, session);
        self.peers.clear();
        // A session of this bot is ready again: refusals are over.
        for k in self.book.active_keys(Kind::FatalClose) {
            if k.bot == bot {
                self.book.close(&k, at, self.cfg.max_closed_findings);
            }
        }
        self.evaluate_concurrent(bot, shard, at);
        self.prune_pod_sessions(key);
        id
    }

    fn on_dispatch(&mut self, id: u64, at: Timestamp, evidence: Evidence) {
        // Per event: no name is copied, no map keyed by names is searched but the bot's, and
        // sessions are reached by row (searched once, for this one).
        let mut others = std::mem::take(&mut self.scratch);
        let mut newer = std::mem::take(&mut self.scratch_newer);
        others.clear();
        newer.clear();
        let row = self.sessions.row_of(id).expect("exists");
        let generation = self.sessions.generation();
        {
            let s = self.sessions.at(row);
            match self.bots.get_mut(s.bot.as_str()) {
                Some(b) => b.rate.record(at),
                None => {
                    let mut b = BotState::default();
                    b.rate.record(at);
                    self.bots.insert(s.bot.clone(), b);
                }
            }
            match self.peers.get(&id) {
                Some(p)
                    if p.generation == generation
                        && p.from <= at
                        && p.until.is_none_or(|u| at < u) =>
                {
                    others.extend_from_slice(&p.rows);
                    newer.extend_from_slice(&p.newer);
                }
                _ => {
                    // Liveness changes only at a session's ready_at and live_until: between
                    // the nearest such times around `at`, the same sessions are live.
                    let mut from = Timestamp::MIN_UTC;
                    let mut until: Option<Timestamp> = None;
                    for (r, o) in self.sessions.values().enumerate() {
                        if r == row || o.shard != s.shard || o.bot != s.bot {
                            continue;
                        }
                        for b in [Some(o.ready_at), o.live_until].into_iter().flatten() {
                            if b <= at {
                                from = from.max(b);
                            } else {
                                until = Some(until.map_or(b, |u| u.min(b)));
                            }
                        }
                        if o.is_live(at) {
                            others.push(r);
                            if o.ready_at > s.ready_at {
                                newer.push(r);
                            }
                        }
                    }
                    self.peers.insert(
                        id,
                        Peers {
                            generation,
                            from,
                            until,
                            rows: others.clone(),
                            newer: newer.clone(),
                        },
                    );
                }
            }
        }
        let s = self.sessions.at_mut(row);
        s.events += 1;
        if s.events == 1 {
            self.book.record(Change::SessionUpdate {
                id,
                at,
                state: SessionState::FirstEvent,
            });
        }
        s.last_event_at = Some(s.last_event_at.map_or(at, |l| l.max(at)));
        if others.is_empty() {
            s.proven = true;
        } else {
            s.overlap_events += 1;
        }
        if s.evidence.len() < MAX_SESSION_EVIDENCE {
            s.evidence.push(evidence.clone());
        }
        let was_silent = s.silent_since.take().is_some();
        if !newer.is_empty() {
            self.flag_newer_sessions(row, &newer, at, &evidence);
        }
        if was_silent {
            let s = self.sessions.at(row);
            for kind in [Kind::SilentSession, Kind::QuietSession] {
                let k = session_key(kind, s);
                self.book.close(&k, at, self.cfg.max_closed_findings);
            }
        }
        if !others.is_empty() {
            self.evaluate_duplicate(row, &others, at);
        }
        self.scratch = others;
        self.scratch_newer = newer;
    }

    /// The session at row `older` received an event while the ones at rows `newer` were live:
    /// their silence is now suspicious.
    fn flag_newer_sessions(
        &mut self,
        older: usize,
        newer: &[usize],
        at: Timestamp,
        evidence: &Evidence,
    ) {
        let older_id = self.sessions.at(older).id;
        for &o in newer {
            let other = self.sessions.at_mut(o);
            if let Some(&(_, i)) = other
                .predecessor_risks
                .iter()
                .find(|(id, _)| *id == older_id)
            {
                note_predecessor_event(other, i, at, evidence);
                continue;
            }
            let i = self.link_predecessor(older, o, at);
            note_predecessor_event(self.sessions.at_mut(o), i, at, evidence);
        }
    }

    /// The index of the `PredecessorActive` entry in the risks of the session at row `newer`
    /// for the pod of the one at row `older`: the pod's entry from an earlier session of that
    /// pod, or a new one (a state change).
    fn link_predecessor(&mut self, older: usize, newer: usize, at: Timestamp) -> usize {
        let (older_id, pod) = {
            let o = self.sessions.at(older);
            (o.id, o.pod.clone())
        };
        let other = self.sessions.at_mut(newer);
        let i = match other.risks.iter().position(
            |r| matches!(r, Risk::PredecessorActive { other_pod, .. } if *other_pod == pod),
        ) {
            Some(i) => i,
            None => {
                other.risks.push(Risk::PredecessorActive {
                    other_pod: pod.clone(),
                    events: 0,
                    last_at: at,
                });
                self.book.record(Change::SessionUpdate {
                    id: other.id,
                    at,
                    state: SessionState::PredecessorActive { other_pod: pod },
                });
                other.risks.len() - 1
            }
        };
        other.predecessor_risks.push((older_id, i));
        i
    }

    fn end_session(&mut self, id: u64, at: Timestamp, reason: EndReason, lingering: bool) {
        let linger = TimeDelta::seconds(self.cfg.lingering_secs as i64);
        let Some(s) = self.sessions.get_mut(&id) else {
            return;
        };
        if s.ended_at.is_some() {
            return;
        }
        s.ended_at = Some(at);
        s.end = Some(reason);
        s.live_until = Some(if lingering { at + linger } else { at });
        self.peers.clear();
        let (bot, shard, ns, pod) = (s.bot.clone(), s.shard, s.namespace.clone(), s.pod.clone());
        let silent = s.silent_since.take().is_some();
        let ended = Box::new(s.clone());
        self.book.record(Change::SessionEnded { session: ended });
        if let Some(inst) = self.instances.get_mut(&(ns.clone(), pod.clone()))
            && inst.current.get(&shard) == Some(&id)
        {
            inst.current.remove(&shard);
        }
        if silent {
            let s = &self.sessions[&id];
            for kind in [Kind::SilentSession, Kind::QuietSession] {
                let k = session_key(kind, s);
                self.book.close(&k, at, self.cfg.max_closed_findings);
            }
        }
        self.evaluate_concurrent(&bot, shard, at);
    }

    /// Keeps a pod's ended sessions bounded; their events move into the folded counters.
    fn prune_pod_sessions(&mut self, key: &PodKey) {
        let ended: Vec<u64> = self
            .sessions
            .values()
            .filter(|s| s.namespace == key.0 && s.pod == key.1 && s.ended_at.is_some())
            .map(|s| s.id)
            .collect();
        if ended.len() <= MAX_ENDED_SESSIONS_PER_POD {
            return;
        }
        let now = self.now.unwrap_or_default();
        for id in &ended[..ended.len() - MAX_ENDED_SESSIONS_PER_POD] {
            if self.sessions[id].is_live(now) {
                continue;
            }
            if let Some(s) = self.sessions.remove(id) {
                self.peers.clear();
                *self
                    .folded_events
                    .entry((s.namespace, s.pod, s.shard))
                    .or_default() += s.events;
            }
        }
    }

    // ----- instances ------------------------------------------------------------------------

    fn on_instance(&mut self, at: Timestamp, source: &str, i: InstanceObservation) {
        let key = (i.instance.namespace.clone(), i.instance.pod.clone());
        self.adopt_unnamespaced(&key);
        let ix = self
            .instances
            .index_or_insert_with(&key, || Instance::new(&key.0, &key.1, at));
        let inst = self.instances.at_mut(ix);
        inst.last_seen = inst.last_seen.max(at);
        inst.first_seen = inst.first_seen.min(at);
        if i.instance.uid.is_some() {
            inst.uid = i.instance.uid.clone();
        }
        if let Some(w) = i.workload {
            inst.workload = Some(w);
        }
        if let Some(b) = i.bot {
            inst.bot = Some(b);
        }
        if let (Some(w), Some(b)) = (&inst.workload, &inst.bot) {
            self.workload_bots.insert(w.clone(), b.clone());
        }
        match i.change {
            InstanceChange::Created => {
                inst.created_at = Some(inst.created_at.map_or(at, |c| c.min(at)));
            }
            InstanceChange::Running => {
                if inst.runs.iter().any(|r| r.0 == at) {
                    return;
                }
                // A run started by log lines before the lifecycle was known is this run.
                if let Some(last) = inst.runs.last_mut()
                    && last.1.is_none()
                    && inst.exited_at.is_none()
                    && inst.running_since.is_some_and(|r| r >= at)
                {
                    last.0 = at;
                    inst.running_since = Some(at);
                    return;
                }
                if inst.runs.iter().any(|r| r.1.is_some()) || inst.exited_at.is_some() {
                    inst.restarts += 1;
                }
                inst.runs.push((at, None));
                inst.running_since = Some(at);
                inst.exited_at = None;
                inst.exit_code = None;
                inst.clean_shutdown = false;
                inst.identified = false;
            }
            InstanceChange::Ready => inst.ready_at = Some(at),
            InstanceChange::Terminating { grace } => {
                let first = inst.terminating_at.is_none();
                inst.terminating_at = Some(inst.terminating_at.map_or(at, |t| t.min(at)));
                inst.grace = grace.or(inst.grace);
                if first {
                    let ids: Vec<u64> = inst.current.values().copied().collect();
                    for id in ids {
                        self.update(id, at, SessionState::PodTerminating { grace });
                    }
                }
            }
            InstanceChange::Exited { code, .. } => {
                if inst.exited_at.is_some() && inst.runs.last().is_some_and(|r| r.1.is_some()) {
                    return;
                }
                inst.exited_at = Some(at);
                inst.exit_code = code;
                if let Some(last) = inst.runs.last_mut()
                    && last.1.is_none()
                {
                    last.1 = Some(at.max(last.0));
                }
                self.pod_ended(&key, at, code, source);
            }
            InstanceChange::Deleted => {
                if inst.deleted_at.is_some() {
                    return;
                }
                inst.deleted_at = Some(at);
                if inst.exited_at.is_none() {
                    inst.exited_at = Some(at);
                    if let Some(last) = inst.runs.last_mut()
                        && last.1.is_none()
                    {
                        last.1 = Some(at.max(last.0));
                    }
                    self.pod_ended(&key, at, None, source);
                }
                for k in self.book.active_keys(Kind::FatalClose) {
                    if k.namespace == key.0 && k.pod == key.1 {
                        self.book.close(&k, at, self.cfg.max_closed_findings);
                    }
                }
            }
        }
    }

    /// Log lines seen before the lifecycle source named the pod's namespace created an
    /// instance without one: it is this pod.
    fn adopt_unnamespaced(&mut self, key: &PodKey) {
        if key.0.is_empty() || self.instances.contains_key(key) {
            return;
        }
        let Some(mut inst) = self.instances.remove(&(String::new(), key.1.clone())) else {
            return;
        };
        self.forget_resolutions();
        self.concurrent_memo.clear();
        inst.namespace = key.0.clone();
        for s in self.sessions.values_mut() {
            if s.namespace.is_empty() && s.pod == key.1 {
                s.namespace = key.0.clone();
                s.instance.namespace = key.0.clone();
            }
        }
        self.book.rekey_namespace(&key.1, &key.0);
        self.instances.insert(key.clone(), inst);
    }

    fn pod_ended(&mut self, key: &PodKey, at: Timestamp, code: Option<i32>, source: &str) {
        let inst = &self.instances[key];
        let clean = inst.clean_shutdown || code == Some(0);
        let ids: Vec<u64> = inst.current.values().copied().collect();
        for id in ids {
            let was_live = self.sessions[&id].is_live(at);
            self.end_session(id, at, EndReason::PodEnded { code, clean }, !clean);
            if clean || !was_live {
                continue;
            }
            let s = &self.sessions[&id];
            let code_text = match code {
                Some(c) => format!("exit code {c}{}", signal_name(c)),
                None => "no exit code".to_string(),
            };
            let evidence = vec![Evidence {
                at,
                source: source.into(),
                text: format!("pod {} container exited ({code_text})", s.pod),
            }];
            self.book.assert(Assertion {
                key: session_key(Kind::LingeringSession, s),
                since: at,
                severity: Severity::Warning,
                explanation: format!(
                    "Pod {} ended ({code_text}) without closing its gateway session, so Discord \
                     keeps that session of {} alive for up to {} s and may keep routing events to it.",
                    s.pod, s.bot, self.cfg.lingering_secs
                ),
                evidence,
            });
        }
    }

    // ----- bots -----------------------------------------------------------------------------

    fn bot_state(&mut self, bot: &str) -> &mut BotState {
        if !self.bots.contains_key(bot) {
            self.bots.insert(bot.to_string(), BotState::default());
        }
        self.bots.get_mut(bot).expect("present")
    }

    /// [`Engine::resolve_instance`] for an instance a log stream shares with all its lines.
    fn resolve_shared(&mut self, instance: &Arc<InstanceId>, at: Timestamp) -> usize {
        let addr = Arc::as_ptr(instance) as usize;
        if let Some(&(_, i)) = self.by_stream.get(&addr) {
            return i;
        }
        let i = self.resolve_instance(&instance.namespace, &instance.pod, at);
        // Only a shared one will come again (a deserialized observation has its own).
        if Arc::strong_count(instance) > 1 {
            if self.by_stream.len() >= 4096 {
                self.by_stream.clear();
            }
            self.by_stream.insert(addr, (Arc::clone(instance), i));
        }
        i
    }

    /// Forgets how names resolved (an instance was removed or re-keyed).
    fn forget_resolutions(&mut self) {
        self.resolved.clear();
        self.by_stream.clear();
    }

    /// Finds the instance a log line belongs to (its index). Log sources that do not know the
    /// namespace send an empty one; the pod name then finds the instance the lifecycle source
    /// knows.
    fn resolve_instance(&mut self, namespace: &str, pod: &str, at: Timestamp) -> usize {
        if let Some(&i) = self.resolved.get(namespace).and_then(|m| m.get(pod)) {
            return i;
        }
        let i = self.resolve_uncached(namespace, pod, at);
        self.resolved
            .entry(namespace.to_string())
            .or_default()
            .insert(pod.to_string(), i);
        i
    }

    /// The instance of (namespace, pod), without allocating when a log line resolved it.
    fn instance_of(&self, namespace: &str, pod: &str) -> Option<&Instance> {
        match self.resolved.get(namespace).and_then(|m| m.get(pod)) {
            Some(&i) => Some(self.instances.at(i)),
            None => self
                .instances
                .get(&(namespace.to_string(), pod.to_string())),
        }
    }

    fn resolve_uncached(&mut self, namespace: &str, pod: &str, at: Timestamp) -> usize {
        let key = (namespace.to_string(), pod.to_string());
        if let Some(i) = self.instances.index(&key) {
            return i;
        }
        if namespace.is_empty()
            && let Some(k) = self.instances.keys().find(|k| k.1 == pod).cloned()
        {
            return self.instances.index(&k).expect("listed");
        }
        let mut inst = Instance::new(namespace, pod, at);
        inst.workload = Some(workload_of(pod));
        self.instances.insert(key, inst)
    }

    fn on_start_limit(&mut self, at: Timestamp, sl: StartLimit) {
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
        self.evaluate_start_limit(&sl.bot, at);
    }
}

/// Which bot an instance runs: its own lines, its labels, its workload, the config, and last
/// the workload or pod name.
fn bot_of<'a>(
    inst: &'a Instance,
    workload_bots: &'a HashMap<String, String>,
    default_bot: Option<&'a str>,
) -> &'a str {
    if let Some(b) = &inst.bot {
        return b;
    }
    if let Some(b) = inst.workload.as_ref().and_then(|w| workload_bots.get(w)) {
        return b;
    }
    if let Some(b) = default_bot {
        return b;
    }
    inst.workload.as_deref().unwrap_or(&inst.pod)
}

/// The finding key of a session-scoped finding.
fn session_key(kind: Kind, s: &Session) -> Key {
    Key {
        kind,
        bot: s.bot.clone(),
        namespace: s.namespace.clone(),
        pod: s.pod.clone(),
        shard: Some(s.shard),
    }
}

fn signal_name(code: i32) -> &'static str {
    match code {
        137 => ", SIGKILL",
        143 => ", SIGTERM not handled",
        _ => "",
    }
}

/// A pod's workload from its name: `agentbroker-7d9f8c6b5d-x2x9k` -> `agentbroker`,
/// `tally-0` -> `tally`.
pub fn workload_of(pod: &str) -> String {
    let parts: Vec<&str> = pod.split('-').collect();
    let is_suffix = |s: &str| s.len() == 5 && s.bytes().all(|b| b.is_ascii_alphanumeric());
    let is_hash =
        |s: &str| (6..=10).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric());
    let n = parts.len();
    if n >= 3 && is_suffix(parts[n - 1]) && is_hash(parts[n - 2]) {
        return parts[..n - 2].join("-");
    }
    if n >= 2 && (is_suffix(parts[n - 1]) || parts[n - 1].bytes().all(|b| b.is_ascii_digit())) {
        return parts[..n - 1].join("-");
    }
    pod.to_string()
}

/// One more event of a predecessor while `newer` (holding entry `i`) was live; the line is
/// evidence for `newer` until it has events of its own.
fn note_predecessor_event(newer: &mut Session, i: usize, at: Timestamp, evidence: &Evidence) {
    if let Risk::PredecessorActive {
        events, last_at, ..
    } = &mut newer.risks[i]
    {
        *events += 1;
        *last_at = at;
    }
    if newer.events == 0 && newer.evidence.len() < MAX_SESSION_EVIDENCE {
        newer.evidence.push(evidence.clone());
    }
}

#[cfg(test)]
mod tests;
