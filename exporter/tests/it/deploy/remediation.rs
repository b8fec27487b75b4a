//! deploy/components/remediation: off in base; included (deploy/components/remediation-example)
//! it turns the actor on in dry-run, with a namespaced Role that may only get the workloads
//! and get/patch their scale subresource (and write their Events), and its own Lease.

use super::*;
use dge::actors::remediation::{Mode, RemediationConfig};

pub(super) const REMEDIATION_EXAMPLE: &str = "deploy/components/remediation-example";

fn env_of(w: &Value) -> Vec<(String, Value)> {
    seq(&w["spec"]["template"]["spec"]["containers"][0]["env"])
        .iter()
        .map(|e| (e["name"].as_str().unwrap_or("").to_string(), e.clone()))
        .collect()
}

/// A rule's (apiGroups, resources, verbs, resourceNames).
type Rule = (Vec<String>, Vec<String>, Vec<String>, Vec<String>);

/// The rules of a Role, sorted.
fn rules(role: &Value) -> Vec<Rule> {
    let mut r: Vec<_> = seq(&role["rules"])
        .iter()
        .map(|r| {
            (
                str_seq(&r["apiGroups"]),
                str_seq(&r["resources"]),
                str_seq(&r["verbs"]),
                str_seq(&r["resourceNames"]),
            )
        })
        .collect();
    r.sort();
    r
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn base_does_not_remediate() {
    let objs = render("deploy/base");
    assert!(
        objs.iter().all(|o| !name(o).contains("remediation")),
        "base installs remediation RBAC"
    );
    let w = workload(&objs, "deploy/base");
    assert!(
        env_of(w)
            .iter()
            .all(|(n, _)| !n.starts_with("DGE_REMEDIATION"))
    );
    let (_, toml) = mounted_config(&objs, w, "deploy/base");
    assert!(
        !toml.contains("[remediation]"),
        "base's exporter.toml turns remediation on"
    );
    assert_eq!(RemediationConfig::default().mode, Mode::Off);
}

#[test]
fn the_component_turns_dry_run_on_with_a_narrow_namespaced_role() {
    let objs = render(REMEDIATION_EXAMPLE);
    let w = workload(&objs, REMEDIATION_EXAMPLE);
    let env = env_of(w);
    let mode = env
        .iter()
        .find(|(n, _)| n == "DGE_REMEDIATION__MODE")
        .map(|(_, e)| e["value"].as_str().unwrap_or("").to_string())
        .expect("DGE_REMEDIATION__MODE");
    let parsed: Mode = serde_json::from_value(serde_json::json!(mode)).expect("a mode");
    assert_eq!(parsed, Mode::DryRun, "the component starts in dry-run");
    for var in ["POD_NAME", "POD_NAMESPACE"] {
        assert!(env.iter().any(|(n, _)| n == var), "{var} for the Lease");
    }
    assert!(
        of_kind(&objs, "ClusterRole")
            .iter()
            .all(|r| !name(r).contains("remediation")),
        "remediation must not be cluster-wide"
    );
    let roles: Vec<&Value> = of_kind(&objs, "Role")
        .into_iter()
        .filter(|r| name(r).contains("remediation"))
        .collect();
    assert_eq!(roles.len(), 2);
    let scale = roles
        .iter()
        .find(|r| name(r) == "discord-gateway-exporter-remediation")
        .expect("the scale Role");
    assert_eq!(namespace(scale), Some("discord-bots"));
    assert_eq!(
        rules(scale),
        vec![
            (
                strings(&["apps"]),
                strings(&["deployments", "statefulsets"]),
                strings(&["get"]),
                vec![]
            ),
            (
                strings(&["apps"]),
                strings(&["deployments/scale", "statefulsets/scale"]),
                strings(&["get", "patch"]),
                vec![]
            ),
            (
                strings(&["events.k8s.io"]),
                strings(&["events"]),
                strings(&["create", "patch"]),
                vec![]
            ),
        ]
    );
    let lease = roles
        .iter()
        .find(|r| name(r) == "discord-gateway-exporter-remediation-lease")
        .expect("the Lease Role");
    assert_eq!(namespace(lease), Some(EXPORTER_NAMESPACE));
    let lease_name = RemediationConfig::default().lease_name;
    assert_eq!(
        rules(lease),
        vec![
            (
                strings(&["coordination.k8s.io"]),
                strings(&["leases"]),
                strings(&["create"]),
                vec![]
            ),
            (
                strings(&["coordination.k8s.io"]),
                strings(&["leases"]),
                strings(&["get", "update"]),
                vec![lease_name]
            ),
        ]
    );
    for b in of_kind(&objs, "RoleBinding")
        .into_iter()
        .filter(|b| name(b).contains("remediation"))
    {
        let role = roles
            .iter()
            .find(|r| name(r) == b["roleRef"]["name"].as_str().unwrap_or(""))
            .expect("binds a remediation Role");
        assert_eq!(namespace(b), namespace(role));
        let subject = &seq(&b["subjects"])[0];
        assert_eq!(subject["name"].as_str(), Some("discord-gateway-exporter"));
        assert_eq!(subject["namespace"].as_str(), Some(EXPORTER_NAMESPACE));
    }
}
