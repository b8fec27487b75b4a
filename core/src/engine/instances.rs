//! Pod (instance) lifecycle: what the Kubernetes API (or a log stream) says about the pods
//! that run a bot, how a log line finds its pod, which bot a pod runs, and forgetting pods
//! deleted long ago.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::TimeDelta;

use super::Engine;
use super::state::{EndReason, Instance, PodKey, SessionState};
use crate::observation::{InstanceChange, InstanceId, InstanceObservation, Timestamp};

impl Engine {
    pub(super) fn on_instance(&mut self, at: Timestamp, source: &str, i: InstanceObservation) {
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
        if let (Some(w), Some(b)) = (&inst.workload, &inst.bot) {
            self.workload_bots.insert(w.clone(), b.clone());
        }
        if let Some(b) = i.bot {
            self.learn_bot(ix, &b);
        }
        let inst = self.instances.at_mut(ix);
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
                inst.interrupted = false;
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
                self.detectors_on_pod_deleted(&key, at);
            }
        }
    }

    /// A pod's log went on (lines no rule took): the pod was seen alive then. Only a pod the
    /// engine already knows is touched; time itself advanced in `observe`.
    pub(super) fn on_log_activity(&mut self, at: Timestamp, instance: &Arc<InstanceId>) {
        let addr = Arc::as_ptr(instance) as usize;
        let ix = match self.by_stream.get(&addr) {
            Some(&(_, i)) => Some(i),
            None => self
                .resolved
                .get(instance.namespace.as_str())
                .and_then(|m| m.get(instance.pod.as_str()))
                .copied(),
        };
        if let Some(i) = ix {
            let inst = self.instances.at_mut(i);
            inst.last_seen = inst.last_seen.max(at);
        }
    }

    /// Log lines seen before the lifecycle source named the pod's namespace created an
    /// instance without one: it is this pod.
    pub(super) fn adopt_unnamespaced(&mut self, key: &PodKey) {
        if key.0.is_empty() || self.instances.contains_key(key) {
            return;
        }
        let Some(mut inst) = self.instances.remove(&(String::new(), key.1.clone())) else {
            return;
        };
        self.forget_resolutions();
        self.detectors_on_pod_adopted(key);
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

    pub(super) fn pod_ended(
        &mut self,
        key: &PodKey,
        at: Timestamp,
        code: Option<i32>,
        source: &str,
    ) {
        let inst = &self.instances[key];
        let clean = inst.clean_shutdown || code == Some(0);
        let ids: Vec<u64> = inst.current.values().copied().collect();
        for id in ids {
            let was_live = self.sessions[&id].is_live(at);
            self.end_session(id, at, EndReason::PodEnded { code, clean }, !clean);
            self.detectors_on_pod_session_ended(id, at, code, clean, was_live, source);
        }
    }

    /// [`Engine::resolve_instance`] for an instance a log stream shares with all its lines.
    pub(super) fn resolve_shared(&mut self, instance: &Arc<InstanceId>, at: Timestamp) -> usize {
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
    pub(super) fn forget_resolutions(&mut self) {
        self.resolved.clear();
        self.by_stream.clear();
    }

    /// Finds the instance a log line belongs to (its index). Log sources that do not know the
    /// namespace send an empty one; the pod name then finds the instance the lifecycle source
    /// knows.
    pub(super) fn resolve_instance(&mut self, namespace: &str, pod: &str, at: Timestamp) -> usize {
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
    pub(super) fn instance_of(&self, namespace: &str, pod: &str) -> Option<&Instance> {
        match self.resolved.get(namespace).and_then(|m| m.get(pod)) {
            Some(&i) => Some(self.instances.at(i)),
            None => self
                .instances
                .get(&(namespace.to_string(), pod.to_string())),
        }
    }

    pub(super) fn resolve_uncached(&mut self, namespace: &str, pod: &str, at: Timestamp) -> usize {
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

    /// Forgets pods deleted longer ago than the retention window (and their series).
    pub(super) fn collect_garbage(&mut self, now: Timestamp) {
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
                .retain(|f, _| !(f.1 == k.0 && f.2 == k.1));
            for b in self.bots.values_mut() {
                b.pod_close_codes.retain(|c, _| !(c.0 == k.0 && c.1 == k.1));
                b.pod_signals.remove(&k);
            }
        }
    }
}

/// Which bot an instance runs: its own lines, its labels, its workload, the config, and last
/// the workload or pod name.
pub(super) fn bot_of<'a>(
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
