//! Findings: what the engine concluded, with its evidence, and the book that opens and closes
//! them.

use std::collections::{BTreeMap, VecDeque};

use serde::Serialize;

use super::state::{Session, SessionState};
use crate::observation::Timestamp;

/// The kinds of finding (DESIGN.md). Their names are a contract with alerts and dashboards.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    ConcurrentSessions,
    SilentSession,
    QuietSession,
    DuplicateDelivery,
    LingeringSession,
    UnattributedIdentify,
    StartLimitLow,
    FatalClose,
    BotOffline,
}

impl Kind {
    /// Every kind, for metrics that list them.
    pub const ALL: [Kind; 9] = [
        Kind::ConcurrentSessions,
        Kind::SilentSession,
        Kind::QuietSession,
        Kind::DuplicateDelivery,
        Kind::LingeringSession,
        Kind::UnattributedIdentify,
        Kind::StartLimitLow,
        Kind::FatalClose,
        Kind::BotOffline,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::ConcurrentSessions => "concurrent_sessions",
            Kind::SilentSession => "silent_session",
            Kind::QuietSession => "quiet_session",
            Kind::DuplicateDelivery => "duplicate_delivery",
            Kind::LingeringSession => "lingering_session",
            Kind::UnattributedIdentify => "unattributed_identify",
            Kind::StartLimitLow => "start_limit_low",
            Kind::FatalClose => "fatal_close",
            Kind::BotOffline => "bot_offline",
        }
    }

    /// The troubleshooting guide's section for this kind.
    pub fn runbook(self) -> &'static str {
        match self {
            Kind::ConcurrentSessions => "docs/troubleshooting.md#discordbotconcurrentsessions",
            Kind::SilentSession => "docs/troubleshooting.md#discordbotsilentsession",
            Kind::QuietSession => "docs/troubleshooting.md#discordbotquietsession",
            Kind::DuplicateDelivery => "docs/troubleshooting.md#discordbotduplicatedelivery",
            Kind::LingeringSession => "docs/troubleshooting.md#discordbotlingeringsession",
            Kind::UnattributedIdentify => "docs/troubleshooting.md#discordbotunattributedidentify",
            Kind::StartLimitLow => "docs/troubleshooting.md#discordbotstartlimitlow",
            Kind::FatalClose => "docs/troubleshooting.md#discordbotfatalclose",
            Kind::BotOffline => "docs/troubleshooting.md#discordbotoffline",
        }
    }
}

/// How urgent a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// One observation that supports a finding.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evidence {
    pub at: Timestamp,
    pub source: std::sync::Arc<str>,
    pub text: String,
}

/// Identity of a finding: one per kind and subject.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Key {
    pub kind: Kind,
    pub bot: String,
    pub namespace: String,
    pub pod: String,
    pub shard: Option<u32>,
}

/// A conclusion of the engine.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub id: u64,
    pub kind: Kind,
    pub bot: String,
    pub namespace: String,
    pub pod: String,
    pub shard: Option<u32>,
    pub since: Timestamp,
    /// `None` while the finding is active.
    pub until: Option<Timestamp>,
    pub severity: Severity,
    pub explanation: String,
    pub evidence: Vec<Evidence>,
    pub runbook: &'static str,
}

impl Finding {
    pub fn key(&self) -> Key {
        Key {
            kind: self.kind,
            bot: self.bot.clone(),
            namespace: self.namespace.clone(),
            pod: self.pod.clone(),
            shard: self.shard,
        }
    }
}

/// What changed since the last [`super::Engine::take_changes`]: a finding opened or closed, or
/// a step in a session's life. Sinks (the daemon's log, the demo's printer, traces) consume
/// these; every time in them comes from the observations.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "change", rename_all = "snake_case")]
pub enum Change {
    Opened(Finding),
    Closed(Finding),
    /// A session became live (READY, RESUMED, or inferred from its first event).
    SessionStarted {
        session: Box<Session>,
        /// The session of the same bot and shard this one takes over from: still live when
        /// this one started, or ended within [`super::HANDOVER_WINDOW_SECS`] before.
        predecessor: Option<u64>,
        /// Whether that is a handover (a rollout, a restart: another pod or another run of the
        /// pod) rather than a reconnect of the same process.
        handover: bool,
    },
    /// A step of a live session (first event, resume, reconnect, pod terminating, ...).
    SessionUpdate {
        id: u64,
        at: Timestamp,
        state: SessionState,
    },
    /// A session ended (its `end`, `ended_at` and `live_until` are set).
    SessionEnded {
        session: Box<Session>,
    },
}

/// What a detector asserts right now about one subject.
pub struct Assertion {
    pub key: Key,
    pub since: Timestamp,
    pub severity: Severity,
    pub explanation: String,
    pub evidence: Vec<Evidence>,
}

/// Evidence kept per finding: enough to convince, bounded so a long incident cannot grow it.
pub const MAX_EVIDENCE: usize = 12;

/// Active findings by key, a bounded history of closed ones, counters, and the pending changes.
#[derive(Debug, Default)]
pub struct Book {
    next_id: u64,
    active: BTreeMap<Key, Finding>,
    closed: VecDeque<Finding>,
    totals: BTreeMap<(Kind, String), u64>,
    changes: Vec<Change>,
    /// Bumped whenever a finding opens, closes or is re-keyed.
    generation: u64,
}

impl Book {
    /// Opens a finding, or refreshes the explanation and evidence of the open one.
    pub fn assert(&mut self, a: Assertion) {
        if let Some(f) = self.active.get_mut(&a.key) {
            f.explanation = a.explanation;
            f.severity = a.severity;
            for e in a.evidence {
                if f.evidence.len() >= MAX_EVIDENCE {
                    break;
                }
                if !f.evidence.contains(&e) {
                    f.evidence.push(e);
                }
            }
            return;
        }
        self.next_id += 1;
        let mut evidence = a.evidence;
        evidence.truncate(MAX_EVIDENCE);
        let f = Finding {
            id: self.next_id,
            kind: a.key.kind,
            bot: a.key.bot.clone(),
            namespace: a.key.namespace.clone(),
            pod: a.key.pod.clone(),
            shard: a.key.shard,
            since: a.since,
            until: None,
            severity: a.severity,
            explanation: a.explanation,
            evidence,
            runbook: a.key.kind.runbook(),
        };
        *self.totals.entry((f.kind, f.bot.clone())).or_default() += 1;
        self.generation += 1;
        self.changes.push(Change::Opened(f.clone()));
        self.active.insert(a.key, f);
    }

    /// Closes the finding with this key, if open.
    pub fn close(&mut self, key: &Key, at: Timestamp, max_closed: usize) {
        if let Some(mut f) = self.active.remove(key) {
            f.until = Some(at.max(f.since));
            self.generation += 1;
            self.changes.push(Change::Closed(f.clone()));
            self.closed.push_back(f);
            while self.closed.len() > max_closed {
                self.closed.pop_front();
            }
        }
    }

    /// Keys of active findings of one kind (copied, so callers may close them).
    pub fn active_keys(&self, kind: Kind) -> Vec<Key> {
        self.active_of(kind).map(Finding::key).collect()
    }

    /// Active findings of one kind, in key order (the kind leads the key's order).
    pub fn active_of(&self, kind: Kind) -> impl Iterator<Item = &Finding> {
        let first = Key {
            kind,
            bot: String::new(),
            namespace: String::new(),
            pod: String::new(),
            shard: None,
        };
        self.active
            .range(first..)
            .map(|(_, f)| f)
            .take_while(move |f| f.kind == kind)
    }

    pub fn active(&self) -> impl Iterator<Item = &Finding> {
        self.active.values()
    }

    pub fn closed(&self) -> impl Iterator<Item = &Finding> {
        self.closed.iter()
    }

    /// Findings opened so far, per kind and bot (never decreases).
    pub fn totals(&self) -> &BTreeMap<(Kind, String), u64> {
        &self.totals
    }

    /// Changes whenever the set of active findings changes: a detector whose inputs and this
    /// are unchanged since its last run would assert nothing new.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Moves active findings of a pod known without namespace to its namespace.
    pub fn rekey_namespace(&mut self, pod: &str, namespace: &str) -> Vec<Key> {
        self.generation += 1;
        let keys: Vec<Key> = self
            .active
            .keys()
            .filter(|k| k.namespace.is_empty() && k.pod == pod)
            .cloned()
            .collect();
        for k in &keys {
            if let Some(mut f) = self.active.remove(k) {
                f.namespace = namespace.to_string();
                self.active.insert(f.key(), f);
            }
        }
        keys
    }

    /// Queues a session change, in order with the findings' changes.
    pub fn record(&mut self, c: Change) {
        self.changes.push(c);
    }

    pub fn take_changes(&mut self) -> Vec<Change> {
        std::mem::take(&mut self.changes)
    }
}
