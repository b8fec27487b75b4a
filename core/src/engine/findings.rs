//! Findings: what the engine concluded, about which subject, with its evidence, and the book
//! that opens and closes them.

use std::collections::{BTreeMap, VecDeque};

use serde::Serialize;

use super::Kind;
use super::changes::Change;
use super::kinds::Severity;
use super::state::Session;
use crate::observation::Timestamp;

/// One observation that supports a finding.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evidence {
    pub at: Timestamp,
    pub source: std::sync::Arc<str>,
    pub text: String,
}

/// An event's evidence, made (its line cut, see `LogLine`) only when something keeps it: the
/// per-event path reads most lines only to count them.
pub(super) struct LazyEvidence {
    at: Timestamp,
    source: std::sync::Arc<str>,
    line: Option<crate::observation::LogLine>,
    made: std::cell::OnceCell<Evidence>,
}

impl LazyEvidence {
    /// Evidence of `line`, or of `fallback()` (made now) when there is no line.
    pub fn new(
        at: Timestamp,
        source: std::sync::Arc<str>,
        line: Option<crate::observation::LogLine>,
        fallback: impl FnOnce() -> String,
    ) -> Self {
        let made = std::cell::OnceCell::new();
        if line.is_none() {
            let _ = made.set(Evidence {
                at,
                source: source.clone(),
                text: fallback(),
            });
        }
        Self {
            at,
            source,
            line,
            made,
        }
    }

    /// Evidence already made.
    pub fn made(e: Evidence) -> Self {
        Self {
            at: e.at,
            source: e.source.clone(),
            line: None,
            made: std::cell::OnceCell::from(e),
        }
    }

    /// The evidence (made on the first call).
    pub fn get(&self) -> &Evidence {
        self.made.get_or_init(|| Evidence {
            at: self.at,
            source: self.source.clone(),
            text: self.line.as_ref().map(|l| l.text()).unwrap_or_default(),
        })
    }

    /// The evidence, owned.
    pub fn into_evidence(self) -> Evidence {
        let _ = self.get();
        self.made.into_inner().expect("made")
    }
}

/// What a finding is about, within its bot. Replaces the empty strings that meant "namespace
/// unknown" and "the whole bot": code that compares subjects cannot mistake one for the other.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Subject {
    /// The bot as a whole (`start_limit_low`, `unattributed_identify`), or its pods of one
    /// namespace (`bot_offline`).
    Bot { namespace: Option<String> },
    /// One pod, and one shard of it when the finding concerns a session.
    Pod {
        /// `None` while no lifecycle source named the pod's namespace.
        namespace: Option<String>,
        pod: String,
        shard: Option<u32>,
    },
}

/// An empty namespace, as log sources send it, is an unknown one.
fn known(namespace: &str) -> Option<String> {
    (!namespace.is_empty()).then(|| namespace.to_string())
}

impl Subject {
    /// The bot-wide subject.
    pub const BOT: Subject = Subject::Bot { namespace: None };

    /// A pod's subject from the engine's names (an empty namespace is unknown).
    pub fn pod(namespace: &str, pod: &str, shard: Option<u32>) -> Self {
        Subject::Pod {
            namespace: known(namespace),
            pod: pod.to_string(),
            shard,
        }
    }

    /// The bot's pods in one namespace (an empty one is unknown).
    pub fn bot_in(namespace: &str) -> Self {
        Subject::Bot {
            namespace: known(namespace),
        }
    }

    /// The session's own subject: its pod and shard.
    pub fn of_session(s: &Session) -> Self {
        Subject::pod(&s.namespace, &s.pod, Some(s.shard))
    }

    /// The namespace, `None` while unknown (or for a bot-wide subject without one).
    pub fn namespace(&self) -> Option<&str> {
        match self {
            Subject::Bot { namespace } | Subject::Pod { namespace, .. } => namespace.as_deref(),
        }
    }

    /// The pod, `None` for a bot-wide subject.
    pub fn pod_name(&self) -> Option<&str> {
        match self {
            Subject::Bot { .. } => None,
            Subject::Pod { pod, .. } => Some(pod),
        }
    }

    /// The shard, when the finding concerns one session.
    pub fn shard(&self) -> Option<u32> {
        match self {
            Subject::Bot { .. } => None,
            Subject::Pod { shard, .. } => *shard,
        }
    }

    /// The namespace as a label value: empty when unknown.
    pub fn namespace_label(&self) -> &str {
        self.namespace().unwrap_or("")
    }

    /// The pod as a label value: empty for a bot-wide subject.
    pub fn pod_label(&self) -> &str {
        self.pod_name().unwrap_or("")
    }

    /// Whether it is about session `s`'s pod and shard.
    pub fn is_of(&self, s: &Session) -> bool {
        self.shard() == Some(s.shard) && self.is_pod(&s.namespace, &s.pod)
    }

    /// Whether it is about the pod the engine knows as (`namespace`, `pod`), any shard.
    pub fn is_pod(&self, namespace: &str, pod: &str) -> bool {
        self.pod_name() == Some(pod) && self.namespace_label() == namespace
    }
}

/// Serialized as the flat `namespace`, `pod`, `shard` fields findings always had (empty strings
/// for unknown or bot-wide), so the API and replay reports stay as they were.
impl Serialize for Subject {
    fn serialize<S: serde::Serializer>(&self, ser: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut st = ser.serialize_struct("Subject", 3)?;
        st.serialize_field("namespace", self.namespace_label())?;
        st.serialize_field("pod", self.pod_label())?;
        st.serialize_field("shard", &self.shard())?;
        st.end()
    }
}

/// Identity of a finding: one per kind and subject.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key {
    pub kind: Kind,
    pub bot: String,
    pub subject: Subject,
}

impl Key {
    /// The key of a finding about one session (its pod and shard).
    pub fn session(kind: Kind, s: &Session) -> Self {
        Key {
            kind,
            bot: s.bot.clone(),
            subject: Subject::of_session(s),
        }
    }

    /// The key of a bot-wide finding.
    pub fn bot(kind: Kind, bot: &str) -> Self {
        Key {
            kind,
            bot: bot.to_string(),
            subject: Subject::BOT,
        }
    }
}

/// A conclusion of the engine.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Finding {
    pub id: u64,
    pub kind: Kind,
    pub bot: String,
    #[serde(flatten)]
    pub subject: Subject,
    pub since: Timestamp,
    /// `None` while the finding is active.
    pub until: Option<Timestamp>,
    pub severity: Severity,
    pub explanation: String,
    pub evidence: Vec<Evidence>,
    pub runbook: &'static str,
    /// The session the finding concerns, when it concerns one (not serialized: an engine id).
    #[serde(skip)]
    pub session: Option<u64>,
}

impl Finding {
    /// Its identity in the book (kind, bot, subject).
    pub fn key(&self) -> Key {
        Key {
            kind: self.kind,
            bot: self.bot.clone(),
            subject: self.subject.clone(),
        }
    }
}

/// What a detector asserts right now about one subject.
pub struct Assertion {
    pub key: Key,
    pub since: Timestamp,
    pub severity: Severity,
    pub explanation: String,
    pub evidence: Vec<Evidence>,
    /// The session it concerns, if one.
    pub session: Option<u64>,
}

impl Assertion {
    /// An assertion with the kind's default severity, about no particular session.
    pub fn new(key: Key, since: Timestamp, explanation: String, evidence: Vec<Evidence>) -> Self {
        Self {
            severity: key.kind.meta().severity,
            key,
            since,
            explanation,
            evidence,
            session: None,
        }
    }

    /// About session `id` (the one whose pod and shard the key names).
    pub fn about(mut self, id: u64) -> Self {
        self.session = Some(id);
        self
    }

    /// With another severity than the kind's default.
    pub fn severity(mut self, severity: Severity) -> Self {
        self.severity = severity;
        self
    }
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
            f.session = a.session.or(f.session);
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
            subject: a.key.subject.clone(),
            since: a.since,
            until: None,
            severity: a.severity,
            explanation: a.explanation,
            evidence,
            runbook: a.key.kind.runbook(),
            session: a.session,
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

    /// Whether the finding with this key is active.
    pub fn is_active(&self, key: &Key) -> bool {
        self.active.contains_key(key)
    }

    /// The active finding with this key.
    pub fn get(&self, key: &Key) -> Option<&Finding> {
        self.active.get(key)
    }

    /// Active findings of one kind, in key order (the kind leads the key's order).
    pub fn active_of(&self, kind: Kind) -> impl Iterator<Item = &Finding> {
        // The least key of the kind: the empty bot, the bot-wide subject without namespace.
        let first = Key::bot(kind, "");
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
            .filter(|k| k.subject.namespace().is_none() && k.subject.pod_name() == Some(pod))
            .cloned()
            .collect();
        for k in &keys {
            if let Some(mut f) = self.active.remove(k) {
                if let Subject::Pod { namespace: ns, .. } = &mut f.subject {
                    *ns = Some(namespace.to_string());
                }
                self.active.insert(f.key(), f);
            }
        }
        keys
    }

    /// Files every finding of bot `from` (a name guessed from the workload) under `to`, the
    /// bot its pods turned out to run: open and closed findings and the totals.
    pub fn rekey_bot(&mut self, from: &str, to: &str) {
        self.generation += 1;
        let keys: Vec<Key> = self
            .active
            .keys()
            .filter(|k| k.bot == from)
            .cloned()
            .collect();
        let rename = |f: &mut Finding| {
            f.bot = to.to_string();
            f.explanation = replace_name(&f.explanation, from, to);
        };
        for k in keys {
            if let Some(mut f) = self.active.remove(&k) {
                rename(&mut f);
                let key = f.key();
                match self.active.get_mut(&key) {
                    // The real bot already has this finding: the earlier one's evidence joins.
                    Some(existing) => {
                        existing.since = existing.since.min(f.since);
                        for e in f.evidence {
                            if existing.evidence.len() < MAX_EVIDENCE
                                && !existing.evidence.contains(&e)
                            {
                                existing.evidence.push(e);
                            }
                        }
                    }
                    None => {
                        self.active.insert(key, f);
                    }
                }
            }
        }
        for f in self.closed.iter_mut().filter(|f| f.bot == from) {
            rename(f);
        }
        let moved: Vec<(Kind, u64)> = self
            .totals
            .iter()
            .filter(|((_, b), _)| b == from)
            .map(|((k, _), n)| (*k, *n))
            .collect();
        for (kind, n) in moved {
            self.totals.remove(&(kind, from.to_string()));
            *self.totals.entry((kind, to.to_string())).or_default() += n;
        }
    }

    /// Queues a session change, in order with the findings' changes.
    pub fn record(&mut self, c: Change) {
        self.changes.push(c);
    }

    /// The changes queued since the last [`Book::take_changes`].
    pub fn changes(&self) -> &[Change] {
        &self.changes
    }

    pub fn take_changes(&mut self) -> Vec<Change> {
        std::mem::take(&mut self.changes)
    }
}

/// `text` with the bot name `from` replaced by `to` where it stands as a name of its own (not
/// inside a pod name such as `helper-5d6c7b8a9-q2w3e`).
fn replace_name(text: &str, from: &str, to: &str) -> String {
    let part = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '-' || c == '_');
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(from) {
        let before = rest[..i].chars().next_back().or(out.chars().next_back());
        let after = rest[i + from.len()..].chars().next();
        out.push_str(&rest[..i]);
        out.push_str(if part(before) || part(after) {
            from
        } else {
            to
        });
        rest = &rest[i + from.len()..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_bot_name_is_replaced_but_not_inside_pod_names() {
        assert_eq!(
            super::replace_name(
                "helper has pods (helper-5d6c7b8a9-q2w3e); helper's",
                "helper",
                "HelperBot"
            ),
            "HelperBot has pods (helper-5d6c7b8a9-q2w3e); HelperBot's"
        );
    }
}
