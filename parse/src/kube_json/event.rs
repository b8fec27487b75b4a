//! Kubernetes Events (core/v1 and events.k8s.io/v1) about pods -> Instance observations.
//!
//! Events are a coarser view than the pods themselves: they are used for what the pod objects
//! of the same capture do not already say. Mapping (by `reason`):
//!
//! - `Killing` -> `Terminating` (grace unknown), unless the message says the container "will be
//!   restarted" (a failed liveness/startup probe: the pod is not going away);
//! - `Started` -> `Running`;
//! - `Created` (container created) and `Scheduled` -> `Created`, the earliest per pod;
//! - anything else (`BackOff`, `Pulling`, `Unhealthy`, ...) is ignored and counted. `BackOff`
//!   in particular does not say when the container exited, only that it is waiting; the exit
//!   itself comes from the pod's `lastState` when pods are captured too.
//!
//! Only the bot's container counts: the one the pod object says (see [`PodTracker`]) or the
//! configured one; for a pod known only from events, the container named like the workload
//! when events name several.
//!
//! Time: `eventTime`, else `lastTimestamp` (`deprecatedLastTimestamp`), else `firstTimestamp`
//! (`deprecatedFirstTimestamp`), else `metadata.creationTimestamp`. An event that repeats
//! (`count` > 1) is therefore placed at its last occurrence.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

use super::PodAttribution;
use super::fields::{Fallible, get, opt_obj, opt_str, opt_time, req_str};
use super::pod::{PodTracker, workload_from_pod_name};
use dge_core::observation::{
    Body, InstanceChange, InstanceId, InstanceObservation, Observation, Timestamp,
};

/// A validated Event about a pod.
#[derive(Debug)]
pub(super) struct PodEvent {
    namespace: String,
    name: String,
    uid: Option<String>,
    /// From `fieldPath: spec.containers{bot}`.
    container: Option<String>,
    /// About an init or ephemeral container.
    other_container: bool,
    reason: String,
    message: String,
    at: Timestamp,
}

/// Ok(None): a well-formed event about something other than a pod.
pub(super) fn parse_event(ev: &Value) -> Fallible<Option<PodEvent>> {
    let meta = get(ev, "metadata");
    opt_obj(ev, "metadata", "metadata")?;
    let (obj, path) = match (get(ev, "involvedObject"), get(ev, "regarding")) {
        (Some(o), _) => (o, "involvedObject"),
        (None, Some(o)) => (o, "regarding"),
        (None, None) => return Err("event has neither involvedObject nor regarding".to_owned()),
    };
    if !obj.is_object() {
        return Err(format!("{path} is not an object"));
    }
    let kind = req_str(obj, "kind", &format!("{path}.kind"))?;
    if kind != "Pod" {
        return Ok(None);
    }
    let reason = req_str(ev, "reason", "reason")?.to_owned();
    let name = req_str(obj, "name", &format!("{path}.name"))?.to_owned();
    let namespace = match opt_str(obj, "namespace", &format!("{path}.namespace"))? {
        Some(ns) if !ns.is_empty() => ns.to_owned(),
        _ => match meta {
            Some(m) => req_str(m, "namespace", "metadata.namespace")?.to_owned(),
            None => return Err(format!("{path}.namespace is missing")),
        },
    };
    let uid = opt_str(obj, "uid", &format!("{path}.uid"))?
        .filter(|u| !u.is_empty() && !u.contains('/'))
        .map(str::to_owned);
    let field_path = opt_str(obj, "fieldPath", &format!("{path}.fieldPath"))?.unwrap_or("");
    let container = field_path
        .strip_prefix("spec.containers{")
        .and_then(|r| r.strip_suffix('}'))
        .map(str::to_owned);
    let other_container = field_path.starts_with("spec.initContainers")
        || field_path.starts_with("spec.ephemeralContainers");
    let message = match (
        opt_str(ev, "message", "message")?,
        opt_str(ev, "note", "note")?,
    ) {
        (Some(m), _) | (None, Some(m)) => m.to_owned(),
        (None, None) => String::new(),
    };
    let mut at = opt_time(ev, "eventTime", "eventTime")?;
    for (key, label) in [
        ("lastTimestamp", "lastTimestamp"),
        ("deprecatedLastTimestamp", "deprecatedLastTimestamp"),
        ("firstTimestamp", "firstTimestamp"),
        ("deprecatedFirstTimestamp", "deprecatedFirstTimestamp"),
    ] {
        if at.is_some() {
            break;
        }
        at = opt_time(ev, key, label)?;
    }
    if at.is_none()
        && let Some(m) = meta
    {
        at = opt_time(m, "creationTimestamp", "metadata.creationTimestamp")?;
    }
    let at = at.ok_or("event has no time (eventTime, lastTimestamp, firstTimestamp)")?;
    Ok(Some(PodEvent {
        namespace,
        name,
        uid,
        container,
        other_container,
        reason,
        message,
        at,
    }))
}

fn change_for(ev: &PodEvent) -> Option<InstanceChange> {
    match ev.reason.as_str() {
        "Killing" if !ev.message.contains("will be restarted") => {
            Some(InstanceChange::Terminating { grace: None })
        }
        "Started" => Some(InstanceChange::Running),
        "Created" | "Scheduled" => Some(InstanceChange::Created),
        _ => None,
    }
}

/// How close an event-derived `Running` must be to a pod-derived one to be the same start.
const SAME_START_SECS: i64 = 10;

/// Turns the events of a capture into observations, after all its pods went through
/// `tracker`: what a pod object already said is not repeated. Returns how many events were
/// ignored.
pub(super) fn resolve(
    mut events: Vec<PodEvent>,
    tracker: &PodTracker,
    attribution: &PodAttribution,
    source: &str,
    out: &mut Vec<Observation>,
) -> usize {
    events.sort_by_key(|e| e.at);
    // For pods the capture has no object of: when events name several containers of one pod
    // and one is named like the workload, that one is the bot (the others are sidecars).
    let mut containers: HashMap<(&str, &str), HashSet<&str>> = HashMap::new();
    for ev in &events {
        if let Some(c) = ev.container.as_deref() {
            containers
                .entry((&ev.namespace, &ev.name))
                .or_default()
                .insert(c);
        }
    }
    let guessed: HashMap<(String, String), String> = containers
        .into_iter()
        .filter(|(_, set)| set.len() > 1)
        .filter_map(|((ns, pod), set)| {
            let workload = workload_from_pod_name(pod)?;
            let c = set
                .into_iter()
                .find(|c| c.eq_ignore_ascii_case(&workload))?;
            Some(((ns.to_owned(), pod.to_owned()), c.to_owned()))
        })
        .collect();
    let mut ignored = 0;
    let mut once: HashSet<(String, String, Option<String>, &'static str)> = HashSet::new();
    let mut runs: HashSet<(String, String, Option<String>, Timestamp)> = HashSet::new();
    for ev in events {
        let Some(change) = change_for(&ev).filter(|_| !ev.other_container) else {
            ignored += 1;
            continue;
        };
        let known = tracker.known(&ev.namespace, &ev.name, ev.uid.as_deref());
        let followed = known
            .as_ref()
            .and_then(|k| k.container.as_deref())
            .or(attribution.container.as_deref())
            .or_else(|| {
                guessed
                    .get(&(ev.namespace.clone(), ev.name.clone()))
                    .map(String::as_str)
            });
        if let (Some(c), Some(f)) = (ev.container.as_deref(), followed)
            && c != f
        {
            ignored += 1;
            continue;
        }
        let already = known.as_ref().is_some_and(|k| {
            k.emitted.iter().any(|(name, t)| {
                *name == change.name()
                    && (change != InstanceChange::Running
                        || (*t - ev.at).num_seconds().abs() <= SAME_START_SECS)
            })
        });
        let uid = ev.uid.clone().or_else(|| known.as_ref()?.uid.clone());
        let fresh = match change {
            InstanceChange::Running => {
                runs.insert((ev.namespace.clone(), ev.name.clone(), uid.clone(), ev.at))
            }
            _ => once.insert((
                ev.namespace.clone(),
                ev.name.clone(),
                uid.clone(),
                change.name(),
            )),
        };
        if already || !fresh {
            ignored += 1;
            continue;
        }
        let (bot, workload) = match known {
            Some(k) => (k.bot, k.workload),
            None => (
                attribution.default.clone(),
                workload_from_pod_name(&ev.name),
            ),
        };
        out.push(Observation {
            at: ev.at,
            source: source.into(),
            body: Body::Instance(InstanceObservation {
                instance: InstanceId {
                    namespace: ev.namespace,
                    pod: ev.name,
                    uid,
                    container: None,
                },
                bot,
                workload,
                change,
            }),
        });
    }
    ignored
}
