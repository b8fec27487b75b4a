//! The actor's narrow Kubernetes client: read a workload's annotation, get and patch its
//! scale subresource, and publish an Event on it. Nothing else (the Role allows nothing else).

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::ObjectReference;
use kube::Api;
use kube::api::{Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use serde_json::json;

/// A Deployment or a StatefulSet, resolved by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Workload {
    /// `deployment` or `statefulset`.
    pub kind: &'static str,
    pub namespace: String,
    pub name: String,
    pub uid: Option<String>,
    /// Whether it carries the configured annotation set to `"true"`.
    pub allowed: bool,
}

impl Workload {
    /// `deployment/<name>`.
    pub fn display(&self) -> String {
        format!("{}/{}", self.kind, self.name)
    }
}

/// Why a request failed, sorted by what the actor does about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepError {
    /// RBAC refused it (403): never retried.
    #[error("forbidden by RBAC: {0}")]
    Forbidden(String),
    #[error("not found: {0}")]
    NotFound(String),
    #[error("{0}")]
    Other(String),
}

impl StepError {
    fn from_kube(what: &str, e: kube::Error) -> Self {
        match &e {
            kube::Error::Api(s) if s.code == 403 => Self::Forbidden(format!(
                "{what}: {} (the exporter's Role must allow it: deploy/components/remediation)",
                s.message
            )),
            kube::Error::Api(s) if s.code == 404 => {
                Self::NotFound(format!("{what}: {}", s.message))
            }
            _ => Self::Other(format!("{what}: {e}")),
        }
    }

    /// The reason word in findings and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Forbidden(_) => "forbidden",
            Self::NotFound(_) => "not_found",
            Self::Other(_) => "api_error",
        }
    }
}

/// The client and the Event recorder.
#[derive(Clone)]
pub struct Cluster {
    client: kube::Client,
    recorder: Recorder,
    annotation: String,
}

impl Cluster {
    /// `identity` names this exporter instance in Events (its pod name).
    pub fn new(client: kube::Client, annotation: &str, identity: &str) -> Self {
        let reporter = Reporter {
            controller: "discord-gateway-exporter".into(),
            instance: Some(identity.to_string()),
        };
        Self {
            recorder: Recorder::new(client.clone(), reporter),
            client,
            annotation: annotation.to_string(),
        }
    }

    /// The Deployment, else the StatefulSet, named `name`.
    pub async fn resolve(&self, namespace: &str, name: &str) -> Result<Workload, StepError> {
        let allowed = |a: Option<&std::collections::BTreeMap<String, String>>| {
            a.and_then(|a| a.get(&self.annotation))
                .is_some_and(|v| v == "true")
        };
        let deploys: Api<Deployment> = Api::namespaced(self.client.clone(), namespace);
        match deploys.get_opt(name).await {
            Ok(Some(d)) => {
                return Ok(Workload {
                    kind: "deployment",
                    namespace: namespace.into(),
                    name: name.into(),
                    uid: d.metadata.uid.clone(),
                    allowed: allowed(d.metadata.annotations.as_ref()),
                });
            }
            Ok(None) => {}
            Err(e) => return Err(StepError::from_kube("get deployment", e)),
        }
        let sets: Api<StatefulSet> = Api::namespaced(self.client.clone(), namespace);
        match sets.get_opt(name).await {
            Ok(Some(s)) => Ok(Workload {
                kind: "statefulset",
                namespace: namespace.into(),
                name: name.into(),
                uid: s.metadata.uid.clone(),
                allowed: allowed(s.metadata.annotations.as_ref()),
            }),
            Ok(None) => Err(StepError::NotFound(format!(
                "no deployment or statefulset {namespace}/{name}"
            ))),
            Err(e) => Err(StepError::from_kube("get statefulset", e)),
        }
    }

    /// Its `spec.replicas` through the scale subresource.
    pub async fn replicas(&self, w: &Workload) -> Result<i32, StepError> {
        let scale = match w.kind {
            "deployment" => {
                Api::<Deployment>::namespaced(self.client.clone(), &w.namespace)
                    .get_scale(&w.name)
                    .await
            }
            _ => {
                Api::<StatefulSet>::namespaced(self.client.clone(), &w.namespace)
                    .get_scale(&w.name)
                    .await
            }
        }
        .map_err(|e| StepError::from_kube(&format!("get {}/scale", w.kind), e))?;
        Ok(scale.spec.and_then(|s| s.replicas).unwrap_or(0))
    }

    /// Sets `spec.replicas` through the scale subresource (a merge patch).
    pub async fn scale(&self, w: &Workload, replicas: i32) -> Result<(), StepError> {
        let patch = Patch::Merge(json!({"spec": {"replicas": replicas}}));
        let pp = PatchParams::default();
        match w.kind {
            "deployment" => Api::<Deployment>::namespaced(self.client.clone(), &w.namespace)
                .patch_scale(&w.name, &pp, &patch)
                .await
                .map(|_| ()),
            _ => Api::<StatefulSet>::namespaced(self.client.clone(), &w.namespace)
                .patch_scale(&w.name, &pp, &patch)
                .await
                .map(|_| ()),
        }
        .map_err(|e| StepError::from_kube(&format!("patch {}/scale", w.kind), e))
    }

    /// An Event on the workload (a failure to publish is logged, never fatal: the finding
    /// and the metric still tell).
    pub async fn event(&self, w: &Workload, warning: bool, reason: &str, note: &str) {
        let reference = ObjectReference {
            api_version: Some("apps/v1".into()),
            kind: Some(
                if w.kind == "deployment" {
                    "Deployment"
                } else {
                    "StatefulSet"
                }
                .into(),
            ),
            name: Some(w.name.clone()),
            namespace: Some(w.namespace.clone()),
            uid: w.uid.clone(),
            ..Default::default()
        };
        let ev = Event {
            type_: if warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: reason.into(),
            note: Some(note.chars().take(1024).collect()),
            action: "Remediate".into(),
            secondary: None,
        };
        if let Err(e) = self.recorder.publish(&ev, &reference).await {
            tracing::warn!(workload = %w.display(), error = %e, "remediation: could not publish the Event");
        }
    }
}
