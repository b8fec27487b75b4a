//! Leadership through a `coordination.k8s.io/v1` Lease: only the holder acts, so two exporter
//! replicas (or node mode's one per node) never act twice. kube 5 has no leader election of
//! its own; this is the small part of it the actor needs: take the Lease when it is free or
//! expired, renew it while holding it, every write checked by `resourceVersion` (a conflict
//! means another instance won).

use chrono::{TimeDelta, Utc};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, ObjectMeta};
use kube::Api;
use kube::api::PostParams;

use super::cluster::StepError;

/// This instance's claim on the Lease.
pub struct Leadership {
    api: Api<Lease>,
    name: String,
    identity: String,
    duration_secs: i32,
}

impl Leadership {
    pub fn new(
        client: kube::Client,
        namespace: &str,
        name: &str,
        identity: &str,
        duration_secs: u64,
    ) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            name: name.to_string(),
            identity: identity.to_string(),
            duration_secs: duration_secs.min(i32::MAX as u64) as i32,
        }
    }

    /// How often a holder renews it while acting: a third of its duration, so a slow step
    /// never lets it expire and another instance start on the same workload.
    pub fn renew_every(&self) -> std::time::Duration {
        std::time::Duration::from_secs((self.duration_secs.max(3) / 3) as u64)
    }

    /// Takes or renews the Lease: `Ok(true)` when this instance holds it now, `Ok(false)` when
    /// another live holder does (or won the race).
    pub async fn acquire(&self) -> Result<bool, StepError> {
        let now = Utc::now();
        let mine = |spec: &LeaseSpec, transitions: i32| LeaseSpec {
            holder_identity: Some(self.identity.clone()),
            lease_duration_seconds: Some(self.duration_secs),
            acquire_time: spec
                .acquire_time
                .clone()
                .filter(|_| spec.holder_identity.as_deref() == Some(self.identity.as_str()))
                .or(Some(MicroTime(ts(now)))),
            renew_time: Some(MicroTime(ts(now))),
            lease_transitions: Some(transitions),
            ..Default::default()
        };
        let current = self
            .api
            .get_opt(&self.name)
            .await
            .map_err(|e| kube_err("get lease", e))?;
        let Some(mut lease) = current else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.name.clone()),
                    ..Default::default()
                },
                spec: Some(mine(&LeaseSpec::default(), 0)),
            };
            return match self.api.create(&PostParams::default(), &lease).await {
                Ok(_) => Ok(true),
                Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
                Err(e) => Err(kube_err("create lease", e)),
            };
        };
        let spec = lease.spec.clone().unwrap_or_default();
        let held_by_me = spec.holder_identity.as_deref() == Some(self.identity.as_str());
        let expired = match (&spec.renew_time, spec.lease_duration_seconds) {
            (Some(r), Some(d)) => {
                let renewed = chrono::DateTime::from_timestamp(
                    r.0.as_second(),
                    r.0.subsec_nanosecond().max(0) as u32,
                )
                .unwrap_or_default();
                now - renewed > TimeDelta::seconds(d.into())
            }
            _ => true,
        };
        if !held_by_me && !expired && spec.holder_identity.is_some() {
            return Ok(false);
        }
        let transitions = spec.lease_transitions.unwrap_or(0) + i32::from(!held_by_me);
        lease.spec = Some(mine(&spec, transitions));
        // `replace` sends the resourceVersion read above: a write in between is a 409.
        match self
            .api
            .replace(&self.name, &PostParams::default(), &lease)
            .await
        {
            Ok(_) => Ok(true),
            Err(kube::Error::Api(s)) if s.code == 409 => Ok(false),
            Err(e) => Err(kube_err("replace lease", e)),
        }
    }
}

fn ts(t: chrono::DateTime<Utc>) -> k8s_openapi::jiff::Timestamp {
    k8s_openapi::jiff::Timestamp::new(t.timestamp(), t.timestamp_subsec_nanos() as i32)
        .unwrap_or_default()
}

fn kube_err(what: &str, e: kube::Error) -> StepError {
    match &e {
        kube::Error::Api(s) if s.code == 403 => StepError::Forbidden(format!(
            "{what}: {} (the exporter's Role must allow leases: deploy/components/remediation)",
            s.message
        )),
        _ => StepError::Other(format!("{what}: {e}")),
    }
}
