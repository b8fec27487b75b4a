//! The pod watch's state, with no I/O: watcher events -> `Instance` observations (through the
//! [`PodTracker`], so each transition once) and [`PodInfo`]s for the log readers.
//!
//! A watch that is cut resumes from its last resourceVersion and repeats nothing; a re-list
//! (after `410 Gone`, or a watch that could not resume) hands every pod again, which the tracker
//! turns into nothing new. What a re-list cannot show is a pod deleted while nobody watched:
//! [`PodSet::init_done`] reports the pods the list no longer holds as deleted, with the time the
//! tracker infers from the last state seen.

use std::collections::{HashMap, HashSet};

use serde_json::{Map, Value};

use dge_core::observation::{Observation, Timestamp};
use dge_parse::kube_json::{PodAttribution, PodTracker};

/// The followed container's current run, as the pod's status shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunInfo {
    /// `containerID` (`containerd://..`), else the start time: what tells two runs apart.
    pub id: String,
    pub restarts: u32,
    /// `state.running` (not `terminated`).
    pub running: bool,
    /// `startedAt`: a log line at or after it belongs to this run.
    pub started: Option<Timestamp>,
}

/// What the log readers need to know about one pod.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodInfo {
    /// The uid (`namespace/name` for a pod without one).
    pub key: String,
    pub namespace: String,
    pub name: String,
    pub uid: Option<String>,
    pub bot: Option<String>,
    /// The container that runs the bot (see [`PodTracker`]).
    pub container: Option<String>,
    /// Its current (or last) run; `None` before it first started.
    pub current: Option<RunInfo>,
    /// A previous run's log may exist (`lastState.terminated`).
    pub previous: bool,
    /// The pod object is gone.
    pub gone: bool,
}

struct Entry {
    group: usize,
    /// The pod as last seen, without what the tracker does not read (for a deletion that a
    /// re-list reveals).
    slim: Value,
    info: PodInfo,
}

/// Counters, for tests and `/healthz`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PodSetStats {
    /// Lists started (the first one included).
    pub lists: u64,
    /// Pods found deleted by a re-list (no DELETED event seen).
    pub vanished: u64,
    /// Pod objects the tracker rejected as malformed.
    pub rejected: u64,
}

/// Pods of one or more watches (`group`: one per watched namespace, or one for all).
pub struct PodSet {
    tracker: PodTracker,
    source: String,
    pods: HashMap<String, Entry>,
    listing: HashMap<usize, HashSet<String>>,
    stats: PodSetStats,
}

impl PodSet {
    pub fn new(attribution: PodAttribution, source: impl Into<String>) -> Self {
        Self {
            tracker: PodTracker::new(attribution),
            source: source.into(),
            pods: HashMap::new(),
            listing: HashMap::new(),
            stats: PodSetStats::default(),
        }
    }

    /// A (re-)list of `group` starts.
    pub fn init(&mut self, group: usize) {
        self.stats.lists += 1;
        self.listing.insert(group, HashSet::new());
    }

    /// One pod from a list page or a watch event (`deleted`: a DELETED event). Appends its new
    /// transitions to `out`; returns what the log readers need, `None` for a malformed pod.
    pub fn apply(
        &mut self,
        group: usize,
        pod: &Value,
        deleted: bool,
        out: &mut Vec<Observation>,
    ) -> Option<PodInfo> {
        if self
            .tracker
            .try_observe_pod(pod, deleted, &self.source, out)
            .is_err()
        {
            self.stats.rejected += 1;
            return None;
        }
        let meta = pod.get("metadata")?;
        let name = meta.get("name")?.as_str()?.to_owned();
        let namespace = meta.get("namespace")?.as_str()?.to_owned();
        let uid = meta
            .get("uid")
            .and_then(Value::as_str)
            .filter(|u| !u.is_empty())
            .map(str::to_owned);
        let key = uid.clone().unwrap_or_else(|| format!("{namespace}/{name}"));
        let known = self.tracker.known(&namespace, &name, uid.as_deref());
        let container = known.as_ref().and_then(|k| k.container.clone());
        let (current, previous) = container
            .as_deref()
            .map(|c| run_of(pod, c))
            .unwrap_or((None, false));
        let info = PodInfo {
            key: key.clone(),
            namespace,
            name,
            uid,
            bot: known.and_then(|k| k.bot),
            container,
            current,
            previous,
            gone: deleted,
        };
        if let Some(listing) = self.listing.get_mut(&group) {
            listing.insert(key.clone());
        }
        if deleted {
            self.pods.remove(&key);
        } else {
            self.pods.insert(
                key,
                Entry {
                    group,
                    slim: slim(pod),
                    info: info.clone(),
                },
            );
        }
        Some(info)
    }

    /// The (re-)list of `group` is complete: the pods it did not hold were deleted unseen.
    pub fn init_done(&mut self, group: usize, out: &mut Vec<Observation>) -> Vec<PodInfo> {
        let Some(listed) = self.listing.remove(&group) else {
            return Vec::new();
        };
        let gone: Vec<String> = self
            .pods
            .iter()
            .filter(|(k, e)| e.group == group && !listed.contains(*k))
            .map(|(k, _)| k.clone())
            .collect();
        let mut infos = Vec::new();
        for key in gone {
            let Some(e) = self.pods.remove(&key) else {
                continue;
            };
            self.stats.vanished += 1;
            self.tracker.observe_pod(&e.slim, true, &self.source, out);
            infos.push(PodInfo {
                gone: true,
                ..e.info
            });
        }
        infos
    }

    /// Forgets pods deleted before `before` (bounded memory over months of churn).
    pub fn forget_deleted_before(&mut self, before: Timestamp) {
        self.tracker.forget_deleted_before(before);
    }

    /// Pods currently present.
    pub fn len(&self) -> usize {
        self.pods.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pods.is_empty()
    }

    pub fn stats(&self) -> PodSetStats {
        self.stats
    }

    /// The present pods' infos.
    pub fn infos(&self) -> impl Iterator<Item = &PodInfo> {
        self.pods.values().map(|e| &e.info)
    }
}

/// The container's current run and whether a previous one ended.
fn run_of(pod: &Value, container: &str) -> (Option<RunInfo>, bool) {
    let Some(status) = pod
        .pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .and_then(|cs| {
            cs.iter()
                .find(|c| c.get("name").and_then(Value::as_str) == Some(container))
        })
    else {
        return (None, false);
    };
    let restarts = status
        .get("restartCount")
        .and_then(Value::as_u64)
        .and_then(|n| u32::try_from(n).ok())
        .unwrap_or(0);
    let previous = status.pointer("/lastState/terminated").is_some();
    let id = status
        .get("containerID")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty());
    let state = status.get("state");
    let (running, started) = match (
        state.and_then(|s| s.get("running")),
        state.and_then(|s| s.get("terminated")),
    ) {
        (Some(r), _) => (true, r.get("startedAt").and_then(Value::as_str)),
        (None, Some(t)) => (false, t.get("startedAt").and_then(Value::as_str)),
        _ => return (None, previous),
    };
    let id = match (id, started) {
        (Some(id), _) => id.to_owned(),
        (None, Some(t)) => format!("started:{t}"),
        (None, None) => format!("restart:{restarts}"),
    };
    let started_at = started
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&chrono::Utc));
    (
        Some(RunInfo {
            id,
            restarts,
            running,
            started: started_at,
        }),
        previous,
    )
}

/// The parts of a pod the tracker reads (a list's pod can be tens of KB with managedFields).
fn slim(pod: &Value) -> Value {
    fn pick(v: Option<&Value>, keys: &[&str]) -> Value {
        let mut m = Map::new();
        if let Some(Value::Object(o)) = v {
            for k in keys {
                if let Some(x) = o.get(*k) {
                    m.insert((*k).to_owned(), x.clone());
                }
            }
        }
        Value::Object(m)
    }
    let meta = pick(
        pod.get("metadata"),
        &[
            "name",
            "namespace",
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "labels",
            "ownerReferences",
        ],
    );
    let containers: Vec<Value> = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .map(|cs| cs.iter().map(|c| pick(Some(c), &["name"])).collect())
        .unwrap_or_default();
    let mut spec = Map::new();
    spec.insert("containers".into(), Value::Array(containers));
    let status = pick(pod.get("status"), &["conditions", "containerStatuses"]);
    let mut m = Map::new();
    m.insert("kind".into(), Value::from("Pod"));
    m.insert("metadata".into(), meta);
    m.insert("spec".into(), Value::Object(spec));
    m.insert("status".into(), status);
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use dge_core::observation::{Body, InstanceChange};
    use serde_json::json;

    fn pod(name: &str, uid: &str, running: Option<&str>, restarts: u32) -> Value {
        let mut cs = json!({"name": "bot", "restartCount": restarts, "state": {"waiting": {}}});
        if let Some(t) = running {
            cs["state"] = json!({"running": {"startedAt": t}});
            cs["containerID"] = json!(format!("containerd://{name}-{restarts}"));
        }
        json!({
            "kind": "Pod",
            "metadata": {"name": name, "namespace": "bots", "uid": uid,
                "creationTimestamp": "2026-04-19T04:00:00Z", "resourceVersion": "1",
                "labels": {"app.kubernetes.io/name": "agentbroker"},
                "managedFields": [{"manager": "kubelet", "fieldsV1": {"f:status": {}}}]},
            "spec": {"containers": [{"name": "bot", "image": "x"}]},
            "status": {"containerStatuses": [cs]}
        })
    }

    fn changes(out: &[Observation]) -> Vec<(String, &'static str)> {
        out.iter()
            .filter_map(|o| match &o.body {
                Body::Instance(i) => Some((i.instance.pod.clone(), i.change.name())),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn relist_repeats_nothing_and_reveals_unseen_deletions() {
        let attribution = PodAttribution {
            label: Some("app.kubernetes.io/name".into()),
            ..Default::default()
        };
        let mut set = PodSet::new(attribution, "kubernetes");
        let mut out = Vec::new();
        set.init(0);
        let a = set
            .apply(
                0,
                &pod("a", "u-a", Some("2026-04-19T04:00:01Z"), 0),
                false,
                &mut out,
            )
            .unwrap();
        assert_eq!(a.container.as_deref(), Some("bot"));
        assert_eq!(a.bot.as_deref(), Some("agentbroker"));
        assert!(a.current.as_ref().unwrap().running);
        set.apply(0, &pod("b", "u-b", None, 0), false, &mut out);
        assert!(set.init_done(0, &mut out).is_empty());
        assert_eq!(
            changes(&out),
            [
                ("a".into(), "created"),
                ("a".into(), "running"),
                ("b".into(), "created")
            ]
        );
        out.clear();

        // A re-list after 410 Gone: `a` unchanged, `b` gone while nobody watched.
        set.init(0);
        set.apply(
            0,
            &pod("a", "u-a", Some("2026-04-19T04:00:01Z"), 0),
            false,
            &mut out,
        );
        let gone = set.init_done(0, &mut out);
        assert_eq!(gone.len(), 1);
        assert!(gone[0].gone && gone[0].name == "b");
        assert_eq!(changes(&out), [("b".into(), "deleted")]);
        assert_eq!(set.len(), 1);
        assert_eq!(set.stats().vanished, 1);
        assert_eq!(set.stats().lists, 2);

        // A restart is a new run.
        out.clear();
        let mut restarted = pod("a", "u-a", Some("2026-04-19T04:05:00Z"), 1);
        restarted["status"]["containerStatuses"][0]["lastState"] = json!({"terminated": {
            "startedAt": "2026-04-19T04:00:01Z", "finishedAt": "2026-04-19T04:04:59Z",
            "exitCode": 137, "reason": "OOMKilled"}});
        let info = set.apply(0, &restarted, false, &mut out).unwrap();
        assert!(info.previous);
        assert_eq!(info.current.unwrap().restarts, 1);
        assert_eq!(
            changes(&out),
            [("a".into(), "exited"), ("a".into(), "running")]
        );
        let exited = out.iter().find_map(|o| match &o.body {
            Body::Instance(i) => match &i.change {
                InstanceChange::Exited { code, .. } => *code,
                _ => None,
            },
            _ => None,
        });
        assert_eq!(exited, Some(137));
    }

    #[test]
    fn slim_keeps_what_the_tracker_reads() {
        let p = pod("a", "u-a", Some("2026-04-19T04:00:01Z"), 0);
        let s = slim(&p);
        assert!(s.pointer("/metadata/managedFields").is_none());
        assert!(s.pointer("/spec/containers/0/image").is_none());
        let mut t1 = PodTracker::default();
        let mut t2 = PodTracker::default();
        let (mut o1, mut o2) = (Vec::new(), Vec::new());
        t1.observe_pod(&p, true, "k", &mut o1);
        t2.observe_pod(&s, true, "k", &mut o2);
        assert_eq!(o1, o2);
    }
}
