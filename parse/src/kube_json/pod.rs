//! Pod objects -> Instance observations, each transition once per pod uid and container run.

use std::collections::{BTreeMap, HashMap, HashSet};

use serde_json::Value;

use super::PodAttribution;
use super::fields::{
    Fallible, get, opt_array, opt_i32, opt_obj, opt_str, opt_time, opt_u64, req_str, req_time,
};
use dge_core::observation::{
    Body, InstanceChange, InstanceId, InstanceObservation, Observation, Timestamp,
};

/// What one container status says (only the parts that carry transitions).
#[derive(Debug, Default)]
struct ContainerView {
    name: String,
    running_since: Option<Timestamp>,
    terminated: Option<Run>,
    last_terminated: Option<Run>,
}

/// A finished container run (`state.terminated` or `lastState.terminated`).
#[derive(Debug)]
struct Run {
    started: Option<Timestamp>,
    finished: Option<Timestamp>,
    code: Option<i32>,
    reason: Option<String>,
}

/// A validated pod: every field used below was present with the right type.
#[derive(Debug)]
struct PodView {
    key: String,
    instance: InstanceId,
    bot: Option<String>,
    workload: Option<String>,
    created: Timestamp,
    /// When deletion was requested (`deletionTimestamp - deletionGracePeriodSeconds`) and the
    /// grace period.
    terminating: Option<(Timestamp, Option<u64>)>,
    deletion_deadline: Option<Timestamp>,
    ready_since: Option<Timestamp>,
    container: Option<String>,
    containers: Vec<ContainerView>,
}

/// Identity of a transition, for "emit once".
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Seen {
    Created,
    Running(Timestamp),
    Ready(Timestamp),
    Terminating,
    Exited(Timestamp),
    Deleted,
}

#[derive(Debug, Default)]
struct PodState {
    seen: HashSet<Seen>,
    /// The latest time of anything emitted for this pod.
    latest: Option<Timestamp>,
    emitted: Vec<(&'static str, Timestamp)>,
    deleted: Option<Timestamp>,
    namespace: String,
    name: String,
    container: Option<String>,
    bot: Option<String>,
    workload: Option<String>,
}

/// What the tracker knows about a pod, for resolving Events that name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownPod {
    pub uid: Option<String>,
    pub bot: Option<String>,
    pub workload: Option<String>,
    /// The container whose runs are reported (see [`PodTracker`]).
    pub container: Option<String>,
    /// Every transition emitted for the pod: change name and time.
    pub emitted: Vec<(&'static str, Timestamp)>,
}

/// Stateful pod -> [`Observation`] converter, shared by capture replay and the live watcher.
///
/// It remembers what it already emitted per pod (by uid; by namespace/name when a pod has no
/// uid), so the same pod seen in many snapshots or watch events produces each transition once:
///
/// - `Created` at `metadata.creationTimestamp`;
/// - `Running` at each run's `startedAt` (`state.running`, and the previous run from
///   `lastState.terminated`, whose `finishedAt` also gives that run's `Exited` with `exitCode`
///   and `reason`); runs between two snapshots that `lastState` no longer shows are invisible;
/// - `Ready` at the `Ready` condition's `lastTransitionTime` while it is `True` (again after
///   every NotReady -> Ready flip);
/// - `Terminating` once, at `deletionTimestamp - deletionGracePeriodSeconds` (when the deletion
///   was requested), with the grace period;
/// - `Exited` at `state.terminated.finishedAt`; a terminated state without `finishedAt` (e.g.
///   `ContainerStatusUnknown` after a node loss) has no time and is skipped;
/// - `Deleted` for a pod reported deleted (see [`PodTracker::observe_pod`] for its time).
///
/// One container per pod is followed: the one [`PodAttribution::container`] names; else the one
/// named like the app (the workload, the `app.kubernetes.io/name` or `app` label, or the bot);
/// else the first container of `spec.containers`. Sidecars restarting do not mean the bot
/// restarted. Init and ephemeral containers are ignored.
#[derive(Debug, Default)]
pub struct PodTracker {
    attribution: PodAttribution,
    pods: HashMap<String, PodState>,
    by_name: HashMap<(String, String), String>,
    rejected: usize,
}

impl PodTracker {
    pub fn new(attribution: PodAttribution) -> Self {
        Self {
            attribution,
            ..Self::default()
        }
    }

    /// Converts one pod object (`deleted`: it came in a `DELETED` watch event), appending what
    /// is new to `out`, sorted by time. A malformed pod adds nothing and is counted in
    /// [`PodTracker::rejected`]; use [`PodTracker::try_observe_pod`] for the reason.
    pub fn observe_pod(
        &mut self,
        pod: &Value,
        deleted: bool,
        source: &str,
        out: &mut Vec<Observation>,
    ) {
        let _ = self.try_observe_pod(pod, deleted, source, out);
    }

    /// [`PodTracker::observe_pod`], returning how many observations were added or why the pod
    /// was skipped (nothing is added then: a pod is taken whole or not at all).
    ///
    /// `Deleted` time: the API does not say when a pod object was removed, so it is inferred.
    /// The kubelet removes a pod only after all its containers stopped, so when every container
    /// shows `terminated`, it is the later of the last `finishedAt` and the deletion request
    /// (a pod that finished long before someone deleted it goes at the request). Otherwise the
    /// kubelet was still waiting for a container, and it kills that at `deletionTimestamp`
    /// (the grace deadline), which is then the time. Without either (a force-deleted pod, an
    /// odd capture) the latest time known for the pod is used. The result is never earlier
    /// than anything already emitted for the pod.
    pub fn try_observe_pod(
        &mut self,
        pod: &Value,
        deleted: bool,
        source: &str,
        out: &mut Vec<Observation>,
    ) -> Result<usize, String> {
        let view = match parse_pod(pod, &self.attribution) {
            Ok(v) => v,
            Err(e) => {
                self.rejected += 1;
                return Err(e);
            }
        };
        let mut changes: Vec<(Seen, Timestamp, InstanceChange)> = Vec::new();
        changes.push((Seen::Created, view.created, InstanceChange::Created));
        if let Some(c) = view
            .container
            .as_deref()
            .and_then(|n| view.containers.iter().find(|c| c.name == n))
        {
            for run in [&c.last_terminated, &c.terminated].into_iter().flatten() {
                if let Some(t) = run.started {
                    changes.push((Seen::Running(t), t, InstanceChange::Running));
                }
                if let Some(t) = run.finished {
                    let change = InstanceChange::Exited {
                        code: run.code,
                        reason: run.reason.clone(),
                    };
                    changes.push((Seen::Exited(t), t, change));
                }
            }
            if let Some(t) = c.running_since {
                changes.push((Seen::Running(t), t, InstanceChange::Running));
            }
        }
        if let Some(t) = view.ready_since {
            changes.push((Seen::Ready(t), t, InstanceChange::Ready));
        }
        if let Some((t, grace)) = view.terminating {
            changes.push((Seen::Terminating, t, InstanceChange::Terminating { grace }));
        }

        let state = self.pods.entry(view.key.clone()).or_default();
        state.namespace.clone_from(&view.instance.namespace);
        state.name.clone_from(&view.instance.pod);
        state.container.clone_from(&view.container);
        state.bot.clone_from(&view.bot);
        state.workload.clone_from(&view.workload);
        self.by_name.insert(
            (view.instance.namespace.clone(), view.instance.pod.clone()),
            view.key.clone(),
        );

        let first = out.len();
        let mut emit = |state: &mut PodState, seen: Seen, at: Timestamp, change: InstanceChange| {
            if !state.seen.insert(seen) {
                return;
            }
            state.latest = state.latest.max(Some(at));
            state.emitted.push((change.name(), at));
            out.push(Observation {
                at,
                source: source.into(),
                body: Body::Instance(InstanceObservation {
                    instance: view.instance.clone(),
                    bot: view.bot.clone(),
                    workload: view.workload.clone(),
                    change,
                }),
            });
        };
        for (seen, at, change) in changes {
            emit(state, seen, at, change);
        }
        if deleted && !state.seen.contains(&Seen::Deleted) {
            let all_stopped = !view.containers.is_empty()
                && view.containers.iter().all(|c| c.terminated.is_some());
            let at = if all_stopped {
                view.containers
                    .iter()
                    .filter_map(|c| c.terminated.as_ref()?.finished)
                    .chain(view.terminating.map(|(t, _)| t))
                    .max()
            } else {
                view.deletion_deadline
            };
            let at = at.max(state.latest).unwrap_or(view.created);
            emit(state, Seen::Deleted, at, InstanceChange::Deleted);
            state.deleted = Some(at);
        }
        out[first..].sort_by_key(|o| o.at);
        Ok(out.len() - first)
    }

    /// How many pod objects were skipped as malformed.
    pub fn rejected(&self) -> usize {
        self.rejected
    }

    /// Number of pods remembered.
    pub fn len(&self) -> usize {
        self.pods.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pods.is_empty()
    }

    /// Forgets pods deleted before `before`, bounding memory in a long-running watcher. A
    /// forgotten pod seen again would be reported again.
    pub fn forget_deleted_before(&mut self, before: Timestamp) {
        self.pods
            .retain(|_, p| p.deleted.is_none_or(|deleted| deleted >= before));
        let pods = &self.pods;
        self.by_name.retain(|_, key| pods.contains_key(key));
    }

    /// What is known about a pod, by uid when given and known, else by namespace and name
    /// (unless that name now belongs to a pod with another uid, like a StatefulSet's
    /// recreated `bot-0`).
    pub fn known(&self, namespace: &str, name: &str, uid: Option<&str>) -> Option<KnownPod> {
        let key = match uid.filter(|u| self.pods.contains_key(*u)) {
            Some(u) => u,
            None => {
                let key = self.by_name.get(&(namespace.to_owned(), name.to_owned()))?;
                if uid.is_some() && is_uid(key) {
                    return None;
                }
                key.as_str()
            }
        };
        let p = self.pods.get(key)?;
        Some(KnownPod {
            uid: is_uid(key).then(|| key.to_owned()),
            bot: p.bot.clone(),
            workload: p.workload.clone(),
            container: p.container.clone(),
            emitted: p.emitted.clone(),
        })
    }
}

/// Pods without a uid are keyed `namespace/name`; a uid never contains `/`.
fn is_uid(key: &str) -> bool {
    !key.contains('/')
}

fn parse_pod(pod: &Value, attribution: &PodAttribution) -> Fallible<PodView> {
    if !pod.is_object() {
        return Err("pod is not a JSON object".to_owned());
    }
    let meta = get(pod, "metadata").ok_or("pod has no metadata")?;
    opt_obj(pod, "metadata", "metadata")?;
    let name = req_str(meta, "name", "metadata.name")?;
    let namespace = req_str(meta, "namespace", "metadata.namespace")?;
    let uid = opt_str(meta, "uid", "metadata.uid")?.filter(|u| !u.is_empty() && is_uid(u));
    let created = req_time(meta, "creationTimestamp", "metadata.creationTimestamp")?;
    let deletion = opt_time(meta, "deletionTimestamp", "metadata.deletionTimestamp")?;
    let grace = opt_u64(
        meta,
        "deletionGracePeriodSeconds",
        "metadata.deletionGracePeriodSeconds",
    )?;
    let terminating = match deletion {
        None => None,
        Some(deadline) => {
            let secs = i64::try_from(grace.unwrap_or(0)).ok();
            let requested = secs
                .and_then(chrono::TimeDelta::try_seconds)
                .and_then(|d| deadline.checked_sub_signed(d))
                .ok_or("metadata.deletionGracePeriodSeconds is out of range")?;
            Some((requested, grace))
        }
    };

    let mut labels = BTreeMap::new();
    if let Some(map) = opt_obj(meta, "labels", "metadata.labels")? {
        for (k, v) in map {
            match v {
                Value::String(s) => {
                    labels.insert(k.clone(), s.clone());
                }
                Value::Null => {}
                _ => return Err("metadata.labels has a value that is not a string".to_owned()),
            }
        }
    }
    let bot = attribution.bot_for(&labels);
    let workload = workload(
        meta,
        name,
        labels.get("pod-template-hash").map(String::as_str),
    )?;

    let spec_names: Vec<&str> = opt_array(
        get(pod, "spec").unwrap_or(&Value::Null),
        "containers",
        "spec.containers",
    )?
    .iter()
    .map(|c| req_str(c, "name", "spec.containers[].name"))
    .collect::<Fallible<_>>()?;
    let status = get(pod, "status").unwrap_or(&Value::Null);
    if !status.is_null() && !status.is_object() {
        return Err("status is not an object".to_owned());
    }
    let mut containers = Vec::new();
    for c in opt_array(status, "containerStatuses", "status.containerStatuses")? {
        containers.push(parse_container(c)?);
    }
    let mut ready_since = None;
    for c in opt_array(status, "conditions", "status.conditions")? {
        if opt_str(c, "type", "status.conditions[].type")? == Some("Ready")
            && opt_str(c, "status", "status.conditions[].status")? == Some("True")
        {
            ready_since = opt_time(
                c,
                "lastTransitionTime",
                "status.conditions[Ready].lastTransitionTime",
            )?;
        }
    }

    let container = choose_container(
        attribution,
        &spec_names,
        &containers,
        [
            workload.as_deref(),
            labels.get("app.kubernetes.io/name").map(String::as_str),
            labels.get("app").map(String::as_str),
            bot.as_deref(),
        ],
    );

    Ok(PodView {
        key: uid.map_or_else(|| format!("{namespace}/{name}"), str::to_owned),
        instance: InstanceId {
            namespace: namespace.to_owned(),
            pod: name.to_owned(),
            uid: uid.map(str::to_owned),
            container: None,
        },
        bot,
        workload,
        created,
        terminating,
        deletion_deadline: deletion,
        ready_since,
        container,
        containers,
    })
}

fn parse_run(v: &Value, path: &str) -> Fallible<Run> {
    Ok(Run {
        started: opt_time(v, "startedAt", &format!("{path}.startedAt"))?,
        finished: opt_time(v, "finishedAt", &format!("{path}.finishedAt"))?,
        code: opt_i32(v, "exitCode", &format!("{path}.exitCode"))?,
        reason: opt_str(v, "reason", &format!("{path}.reason"))?.map(str::to_owned),
    })
}

fn parse_container(c: &Value) -> Fallible<ContainerView> {
    const P: &str = "status.containerStatuses[]";
    let name = req_str(c, "name", "status.containerStatuses[].name")?.to_owned();
    let mut view = ContainerView {
        name,
        ..ContainerView::default()
    };
    if let Some(state) = get(c, "state") {
        opt_obj(c, "state", "status.containerStatuses[].state")?;
        if let Some(running) = get(state, "running") {
            view.running_since = opt_time(
                running,
                "startedAt",
                &format!("{P}.state.running.startedAt"),
            )?;
        }
        if let Some(t) = get(state, "terminated") {
            view.terminated = Some(parse_run(t, &format!("{P}.state.terminated"))?);
        }
    }
    if let Some(last) = get(c, "lastState") {
        opt_obj(c, "lastState", "status.containerStatuses[].lastState")?;
        if let Some(t) = get(last, "terminated") {
            view.last_terminated = Some(parse_run(t, &format!("{P}.lastState.terminated"))?);
        }
    }
    Ok(view)
}

fn choose_container(
    attribution: &PodAttribution,
    spec_names: &[&str],
    statuses: &[ContainerView],
    app_names: [Option<&str>; 4],
) -> Option<String> {
    let names: Vec<&str> = if spec_names.is_empty() {
        statuses.iter().map(|c| c.name.as_str()).collect()
    } else {
        spec_names.to_vec()
    };
    if let Some(wanted) = attribution.container.as_deref() {
        return Some(wanted.to_owned());
    }
    for app in app_names.into_iter().flatten() {
        if let Some(n) = names.iter().find(|n| n.eq_ignore_ascii_case(app)) {
            return Some((*n).to_owned());
        }
    }
    names.first().map(|n| (*n).to_owned())
}

/// The pod's workload: its controller (a ReplicaSet's name minus the pod-template-hash, which
/// is the Deployment; a StatefulSet, DaemonSet, Job... by its name), else the pod name minus a
/// Deployment pod's `-<hash>-<suffix>`; `None` for a bare pod.
fn workload(meta: &Value, pod: &str, template_hash: Option<&str>) -> Fallible<Option<String>> {
    let owners = opt_array(meta, "ownerReferences", "metadata.ownerReferences")?;
    let mut chosen = None;
    for o in owners {
        let kind = req_str(o, "kind", "metadata.ownerReferences[].kind")?;
        let name = req_str(o, "name", "metadata.ownerReferences[].name")?;
        let controller = matches!(get(o, "controller"), Some(Value::Bool(true)));
        if chosen.is_none() || controller {
            chosen = Some((kind, name));
        }
        if controller {
            break;
        }
    }
    Ok(match chosen {
        Some(("ReplicaSet", rs)) => Some(strip_hash(rs, template_hash).to_owned()),
        Some((_, name)) => Some(name.to_owned()),
        None => workload_from_pod_name(pod),
    })
}

/// A Deployment's pod `agentbroker-7d9f8b6c5d-x2kqp` -> `agentbroker`; `None` when the name
/// does not have that shape.
pub(super) fn workload_from_pod_name(pod: &str) -> Option<String> {
    let (rest, suffix) = pod.rsplit_once('-')?;
    let (base, hash) = rest.rsplit_once('-')?;
    (suffix.len() == 5
        && is_k8s_random(suffix)
        && hash.len() >= 5
        && is_k8s_random(hash)
        && !base.is_empty())
    .then(|| base.to_owned())
}

/// A ReplicaSet `agentbroker-7d9f8b6c5d` -> Deployment `agentbroker`.
fn strip_hash<'a>(rs: &'a str, template_hash: Option<&str>) -> &'a str {
    if let Some(h) = template_hash.filter(|h| !h.is_empty())
        && let Some(base) = rs.strip_suffix(h).and_then(|b| b.strip_suffix('-'))
        && !base.is_empty()
    {
        return base;
    }
    match rs.rsplit_once('-') {
        Some((base, hash)) if !base.is_empty() && hash.len() >= 5 && is_k8s_random(hash) => base,
        _ => rs,
    }
}

/// Kubernetes' random suffixes and hashes use digits and consonants only (no vowels, no 0/1/3).
fn is_k8s_random(s: &str) -> bool {
    s.len() <= 10
        && s.bytes()
            .all(|b| b"bcdfghjklmnpqrstvwxz2456789".contains(&b))
}
