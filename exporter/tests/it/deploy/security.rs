//! The workloads pass the security check; RBAC is read-only and scoped per variant.

use super::*;

/// Every violation of the security policy in one workload, as readable sentences.
fn security_violations(w: &Value) -> Vec<String> {
    let mut bad = Vec::new();
    let who = id(w);
    let pod = &w["spec"]["template"]["spec"];
    let psc = &pod["securityContext"];
    for host in ["hostNetwork", "hostPID", "hostIPC"] {
        if pod[host].as_bool() == Some(true) {
            bad.push(format!("{who}: {host} is set"));
        }
    }
    if psc["runAsUser"].as_u64() == Some(0) {
        bad.push(format!("{who}: pod runAsUser is 0"));
    }
    let containers: Vec<&Value> = seq(&pod["containers"])
        .iter()
        .chain(seq(&pod["initContainers"]))
        .collect();
    if containers.is_empty() {
        bad.push(format!("{who}: no containers"));
    }
    let read_only_mounts: BTreeMap<String, bool> = containers
        .iter()
        .flat_map(|c| seq(&c["volumeMounts"]))
        .map(|m| {
            (
                m["name"].as_str().unwrap_or("").to_string(),
                m["readOnly"].as_bool() == Some(true),
            )
        })
        .collect();
    for v in seq(&pod["volumes"]) {
        let vname = v["name"].as_str().unwrap_or("");
        if v.get("hostPath").is_some() && read_only_mounts.get(vname) != Some(&true) {
            bad.push(format!(
                "{who}: hostPath volume {vname} is not mounted read-only"
            ));
        }
        if v.get("secret").is_some() && read_only_mounts.get(vname) != Some(&true) {
            bad.push(format!(
                "{who}: secret volume {vname} is not mounted read-only"
            ));
        }
    }
    for c in containers {
        let cname = format!("{who} container {}", c["name"].as_str().unwrap_or("?"));
        let sc = &c["securityContext"];
        let either = |key: &str| {
            if sc.get(key).is_some() {
                &sc[key]
            } else {
                &psc[key]
            }
        };
        if either("runAsNonRoot").as_bool() != Some(true) {
            bad.push(format!("{cname}: runAsNonRoot is not true"));
        }
        if either("runAsUser").as_u64() == Some(0) {
            bad.push(format!("{cname}: runAsUser is 0"));
        }
        if sc["readOnlyRootFilesystem"].as_bool() != Some(true) {
            bad.push(format!("{cname}: readOnlyRootFilesystem is not true"));
        }
        if sc["allowPrivilegeEscalation"].as_bool() != Some(false) {
            bad.push(format!("{cname}: allowPrivilegeEscalation is not false"));
        }
        if sc["privileged"].as_bool() == Some(true) {
            bad.push(format!("{cname}: privileged"));
        }
        if !str_seq(&sc["capabilities"]["drop"])
            .iter()
            .any(|d| d == "ALL")
        {
            bad.push(format!("{cname}: capabilities do not drop ALL"));
        }
        if !seq(&sc["capabilities"]["add"]).is_empty() {
            bad.push(format!("{cname}: capabilities added"));
        }
        if either("seccompProfile")["type"].as_str() != Some("RuntimeDefault") {
            bad.push(format!("{cname}: seccompProfile is not RuntimeDefault"));
        }
        for res in ["cpu", "memory"] {
            if c["resources"]["limits"].get(res).is_none() {
                bad.push(format!("{cname}: no {res} limit"));
            }
            if c["resources"]["requests"].get(res).is_none() {
                bad.push(format!("{cname}: no {res} request"));
            }
        }
        for e in seq(&c["env"]) {
            if e["valueFrom"].get("secretKeyRef").is_some() {
                bad.push(format!(
                    "{cname}: env {} comes from a Secret (mount it as a file)",
                    e["name"].as_str().unwrap_or("?")
                ));
            }
            let n = e["name"].as_str().unwrap_or("").to_ascii_lowercase();
            if n.contains("token") && e.get("value").is_some() {
                bad.push(format!("{cname}: env {n} holds a token-like value"));
            }
        }
        for e in seq(&c["envFrom"]) {
            if e.get("secretRef").is_some() {
                bad.push(format!("{cname}: envFrom a Secret (mount it as a file)"));
            }
        }
        for a in str_seq(&c["args"]).iter().chain(&str_seq(&c["command"])) {
            if a.to_ascii_lowercase().contains("token") {
                bad.push(format!("{cname}: a token on the command line ({a})"));
            }
        }
    }
    bad
}

#[test]
fn workloads_pass_the_security_check() {
    for variant in VARIANTS {
        let objs = render(variant);
        let w = workload(&objs, variant);
        let bad = security_violations(w);
        assert!(bad.is_empty(), "{variant}:\n{}", bad.join("\n"));
        // The bot token: only ever a Secret volume, read-only, optional (the exporter starts
        // without it). Node mode holds no token at all.
        let pod = &w["spec"]["template"]["spec"];
        let secrets: Vec<&Value> = seq(&pod["volumes"])
            .iter()
            .filter(|v| v.get("secret").is_some())
            .collect();
        match kind(w) {
            "Deployment" => {
                assert_eq!(
                    w["spec"]["replicas"].as_u64(),
                    Some(1),
                    "{variant}: replicas"
                );
                assert_eq!(secrets.len(), 1, "{variant}: one token Secret volume");
                let s = &secrets[0]["secret"];
                assert_eq!(s["secretName"].as_str(), Some("discord-bot-token"));
                assert_eq!(s["optional"].as_bool(), Some(true), "{variant}: optional");
            }
            "DaemonSet" => assert!(secrets.is_empty(), "{variant}: node mode holds no token"),
            other => panic!("{variant}: unexpected workload {other}"),
        }
    }
}

#[test]
fn security_check_catches_each_violation() {
    // The check is not vacuous: break a compliant Deployment one way at a time.
    let objs = render("deploy/base");
    let good = workload(&objs, "deploy/base").clone();
    assert!(security_violations(&good).is_empty());
    type Breaker = fn(&mut Value);
    let breakers: [(&str, Breaker); 9] = [
        ("runAsNonRoot", |w| {
            w["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] = false.into();
            w["spec"]["template"]["spec"]["containers"][0]["securityContext"]["runAsNonRoot"] =
                false.into();
        }),
        ("readOnlyRootFilesystem", |w| {
            w["spec"]["template"]["spec"]["containers"][0]["securityContext"]["readOnlyRootFilesystem"] =
                false.into();
        }),
        ("allowPrivilegeEscalation", |w| {
            w["spec"]["template"]["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] =
                true.into();
        }),
        ("drop ALL", |w| {
            w["spec"]["template"]["spec"]["containers"][0]["securityContext"]["capabilities"] =
                serde_yaml::from_str("drop: [NET_RAW]").unwrap();
        }),
        ("memory limit", |w| {
            w["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"] =
                serde_yaml::from_str("cpu: '1'").unwrap();
        }),
        ("secretKeyRef", |w| {
            w["spec"]["template"]["spec"]["containers"][0]["env"] = serde_yaml::from_str(
                "[{name: DISCORD_TOKEN, valueFrom: {secretKeyRef: {name: t, key: token}}}]",
            )
            .unwrap();
        }),
        ("envFrom secret", |w| {
            w["spec"]["template"]["spec"]["containers"][0]["envFrom"] =
                serde_yaml::from_str("[{secretRef: {name: t}}]").unwrap();
        }),
        ("token flag", |w| {
            w["spec"]["template"]["spec"]["containers"][0]["args"] =
                serde_yaml::from_str("[run, --token, abc]").unwrap();
        }),
        ("seccomp", |w| {
            w["spec"]["template"]["spec"]["securityContext"]["seccompProfile"]["type"] =
                "Unconfined".into();
            w["spec"]["template"]["spec"]["containers"][0]["securityContext"]["seccompProfile"]["type"] =
                "Unconfined".into();
        }),
    ];
    for (what, breaker) in breakers {
        let mut w = good.clone();
        breaker(&mut w);
        assert!(
            !security_violations(&w).is_empty(),
            "the security check misses: {what}"
        );
    }
}

#[test]
fn rbac_is_read_only_and_scoped_per_variant() {
    let allowed: BTreeSet<&str> = ["get", "list", "watch"].into();
    for variant in VARIANTS {
        let objs = render(variant);
        let sa = one(&objs, "ServiceAccount", variant);
        let roles: Vec<&Value> = objs
            .iter()
            .filter(|o| matches!(kind(o), "ClusterRole" | "Role"))
            .collect();
        assert!(!roles.is_empty(), "{variant}: no RBAC");
        for role in &roles {
            for rule in seq(&role["rules"]) {
                for verb in str_seq(&rule["verbs"]) {
                    assert!(
                        allowed.contains(verb.as_str()),
                        "{variant}: {} grants `{verb}`",
                        id(role)
                    );
                }
                for r in str_seq(&rule["resources"]) {
                    assert!(
                        ["pods", "pods/log"].contains(&r.as_str()),
                        "{variant}: {} grants {r}",
                        id(role)
                    );
                }
                assert!(
                    str_seq(&rule["apiGroups"]) == [""],
                    "{variant}: core API group only"
                );
            }
        }
        for b in objs
            .iter()
            .filter(|o| matches!(kind(o), "ClusterRoleBinding" | "RoleBinding"))
        {
            let subjects = seq(&b["subjects"]);
            assert_eq!(subjects.len(), 1, "{variant}: {}", id(b));
            assert_eq!(subjects[0]["kind"].as_str(), Some("ServiceAccount"));
            assert_eq!(subjects[0]["name"].as_str(), Some(name(sa)));
            assert_eq!(subjects[0]["namespace"].as_str(), namespace(sa));
            let role_ref = &b["roleRef"];
            assert!(
                roles
                    .iter()
                    .any(|r| kind(r) == role_ref["kind"].as_str().unwrap_or("")
                        && name(r) == role_ref["name"].as_str().unwrap_or("")
                        && (kind(r) == "ClusterRole" || namespace(r) == namespace(b))),
                "{variant}: {} binds a role that is not rendered",
                id(b)
            );
        }
        let kinds: BTreeSet<&str> = roles.iter().map(|r| kind(r)).collect();
        let resources: BTreeSet<String> = roles
            .iter()
            .flat_map(|r| seq(&r["rules"]))
            .flat_map(|r| str_seq(&r["resources"]))
            .collect();
        match variant {
            "deploy/overlays/namespaced" => {
                assert_eq!(kinds, ["Role"].into(), "{variant}: no cluster-wide RBAC");
                assert!(of_kind(&objs, "ClusterRoleBinding").is_empty());
                assert!(resources.contains("pods/log"));
            }
            "deploy/overlays/node-mode" => {
                assert_eq!(kinds, ["ClusterRole"].into());
                assert!(
                    !resources.contains("pods/log"),
                    "{variant}: node mode reads log files, not pods/log"
                );
            }
            _ => {
                assert_eq!(kinds, ["ClusterRole"].into());
                assert!(resources.contains("pods/log") && resources.contains("pods"));
            }
        }
    }
}
