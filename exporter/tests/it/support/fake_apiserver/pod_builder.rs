//! Pods as the API server returns them, built up step by step.

use super::*;

/// A pod as the API server returns it, built up step by step.
#[derive(Debug, Clone)]
pub struct PodBuilder {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub labels: BTreeMap<String, String>,
    pub node: String,
    pub container: String,
    pub owner: Option<String>,
    pub created: Ts,
    /// Current run: (containerID, startedAt, restartCount).
    pub running: Option<(String, Ts, u32)>,
    /// Current run ended: (containerID, startedAt, finishedAt, exitCode, reason).
    pub terminated: Option<(String, Ts, Ts, i32, String)>,
    /// Previous run: (startedAt, finishedAt, exitCode, reason).
    pub last: Option<(Ts, Ts, i32, String)>,
    pub ready_since: Option<Ts>,
    /// deletionTimestamp, grace seconds.
    pub deletion: Option<(Ts, u64)>,
}

impl PodBuilder {
    pub fn new(namespace: &str, name: &str, uid: &str, container: &str, created: Ts) -> Self {
        Self {
            namespace: namespace.into(),
            name: name.into(),
            uid: uid.into(),
            labels: BTreeMap::new(),
            node: "node-a".into(),
            container: container.into(),
            owner: None,
            created,
            running: None,
            terminated: None,
            last: None,
            ready_since: None,
            deletion: None,
        }
    }

    pub fn label(mut self, k: &str, v: &str) -> Self {
        self.labels.insert(k.into(), v.into());
        self
    }

    pub fn node(mut self, n: &str) -> Self {
        self.node = n.into();
        self
    }

    pub fn owner(mut self, replicaset: &str) -> Self {
        self.owner = Some(replicaset.into());
        self
    }

    pub fn json(&self) -> Value {
        let restarts = self
            .running
            .as_ref()
            .map(|r| r.2)
            .unwrap_or(u32::from(self.last.is_some()));
        let mut cs = json!({"name": self.container, "image": "example/bot:1", "ready":
            self.ready_since.is_some(), "restartCount": restarts});
        cs["state"] = match (&self.running, &self.terminated) {
            (Some((id, started, _)), _) => {
                cs["containerID"] = json!(id);
                json!({"running": {"startedAt": fmt_ts(started)}})
            }
            (None, Some((id, started, finished, code, reason))) => {
                cs["containerID"] = json!(id);
                json!({"terminated": {"startedAt": fmt_ts(started), "finishedAt":
                    fmt_ts(finished), "exitCode": code, "reason": reason, "containerID": id}})
            }
            _ => json!({"waiting": {"reason": "ContainerCreating"}}),
        };
        if let Some((started, finished, code, reason)) = &self.last {
            cs["lastState"] = json!({"terminated": {"startedAt": fmt_ts(started), "finishedAt":
                fmt_ts(finished), "exitCode": code, "reason": reason}});
        }
        let mut conditions = vec![json!({"type": "PodScheduled", "status": "True",
            "lastTransitionTime": fmt_ts(&self.created)})];
        conditions.push(match &self.ready_since {
            Some(t) => json!({"type": "Ready", "status": "True", "lastTransitionTime": fmt_ts(t)}),
            None => json!({"type": "Ready", "status": "False", "lastTransitionTime":
                fmt_ts(&self.created)}),
        });
        let mut meta = json!({"name": self.name, "namespace": self.namespace, "uid": self.uid,
            "creationTimestamp": fmt_ts(&self.created), "labels": self.labels,
            "managedFields": [{"manager": "kubelet", "operation": "Update",
                "fieldsType": "FieldsV1", "fieldsV1": {"f:status": {"f:conditions": {}}}}]});
        if let Some(rs) = &self.owner {
            meta["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                "name": rs, "uid": "rs-uid", "controller": true, "blockOwnerDeletion": true}]);
        }
        if let Some((t, grace)) = &self.deletion {
            meta["deletionTimestamp"] = json!(fmt_ts(t));
            meta["deletionGracePeriodSeconds"] = json!(grace);
        }
        let phase = if self.running.is_some() {
            "Running"
        } else if self.terminated.is_some() {
            "Succeeded"
        } else {
            "Pending"
        };
        json!({
            "metadata": meta,
            "spec": {"nodeName": self.node, "terminationGracePeriodSeconds": 30,
                "containers": [{"name": self.container, "image": "example/bot:1"}]},
            "status": {"phase": phase, "conditions": conditions, "containerStatuses": [cs]}
        })
    }
}
