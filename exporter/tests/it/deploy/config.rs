//! The exporter's config, ports, probes and scrape target agree with the manifests.

use super::*;

const CONFIG_DIR: &str = "/etc/discord-gateway-exporter";
const PORT: u64 = 9464;

fn map_of_strings(v: &Value) -> BTreeMap<String, String> {
    v.as_mapping()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.as_str()?.to_string(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn each_variant_config_loads_and_matches_the_manifests() {
    let bin = env!("CARGO_BIN_EXE_discord-gateway-exporter");
    let tmp = tempdir();
    for variant in VARIANTS {
        let objs = render(variant);
        let w = workload(&objs, variant);
        let pod = &w["spec"]["template"]["spec"];
        let c = &pod["containers"][0];
        let (text, mount) = mounted_config(&objs, w, variant);
        assert_eq!(mount, CONFIG_DIR, "{variant}: config mount");
        assert_eq!(
            str_seq(&c["args"]),
            ["run", "--config", &format!("{CONFIG_DIR}/exporter.toml")],
            "{variant}: args"
        );

        // The exporter itself accepts the file.
        let file = tmp
            .path()
            .join(format!("{}.toml", variant.replace('/', "_")));
        std::fs::write(&file, &text).expect("write");
        let mut cmd = Command::new(bin);
        cmd.arg("check-config").arg(&file);
        for (k, _) in std::env::vars() {
            if k.starts_with("DGE_") {
                cmd.env_remove(k);
            }
        }
        let out = run(cmd, "cargo builds it");
        assert!(
            out.status.success(),
            "{variant}: exporter.toml does not load: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let cfg: toml::Table = toml::from_str(&text).expect("TOML");
        let listen = cfg["listen"].as_str().expect("listen");
        assert!(
            listen.ends_with(&format!(":{PORT}")),
            "{variant}: listen {listen}"
        );

        // Port, probes.
        let ports = seq(&c["ports"]);
        assert!(
            ports
                .iter()
                .any(|p| p["name"] == "http" && p["containerPort"].as_u64() == Some(PORT)),
            "{variant}: container port http = {PORT}"
        );
        assert_eq!(
            c["livenessProbe"]["httpGet"]["path"].as_str(),
            Some("/healthz")
        );
        assert_eq!(
            c["readinessProbe"]["httpGet"]["path"].as_str(),
            Some("/readyz")
        );
        for p in ["livenessProbe", "readinessProbe"] {
            assert_eq!(
                c[p]["httpGet"]["port"].as_str(),
                Some("http"),
                "{variant} {p}"
            );
        }

        // The token path the config names (now or in its intended shape) is the Secret's.
        let token_mount = seq(&c["volumeMounts"])
            .iter()
            .find(|m| {
                seq(&pod["volumes"])
                    .iter()
                    .any(|v| v["name"] == m["name"] && v.get("secret").is_some())
            })
            .and_then(|m| m["mountPath"].as_str());
        let token_files = toml_string_values(&text, "token_file");
        match token_mount {
            Some(dir) => {
                assert!(
                    !token_files.is_empty(),
                    "{variant}: config names no token_file"
                );
                for f in &token_files {
                    assert!(
                        f.starts_with(&format!("{dir}/")),
                        "{variant}: token_file {f} is not in the Secret mount {dir}"
                    );
                }
            }
            None => assert!(
                token_files.is_empty(),
                "{variant}: token_file but no Secret"
            ),
        }

        match variant {
            "deploy/overlays/node-mode" => {
                assert_eq!(kind(w), "DaemonSet");
                let env = seq(&c["env"]);
                assert!(
                    env.iter().any(|e| e["name"] == "NODE_NAME"
                        && e["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"),
                    "{variant}: NODE_NAME from the downward API"
                );
                let host: BTreeSet<String> = seq(&pod["volumes"])
                    .iter()
                    .filter_map(|v| v["hostPath"]["path"].as_str().map(str::to_string))
                    .collect();
                assert_eq!(
                    host,
                    [
                        "/var/log/containers".to_string(),
                        "/var/log/pods".to_string()
                    ]
                    .into(),
                    "{variant}: hostPaths"
                );
                for m in seq(&c["volumeMounts"]) {
                    let p = m["mountPath"].as_str().unwrap_or("");
                    if p.starts_with("/var/log") {
                        assert_eq!(m["readOnly"].as_bool(), Some(true), "{variant}: {p}");
                    }
                }
                assert!(toml_string_values(&text, "mode").contains(&"node".to_string()));
                // The Kubernetes source in node mode reads the mounted kubelet logs, keeps its
                // positions on the writable state volume, and finds the node from NODE_NAME.
                let k = &cfg["kubernetes"];
                assert_eq!(k["mode"].as_str(), Some("node"), "{variant}");
                assert_eq!(k["log_root"].as_str(), Some("/var/log/pods"), "{variant}");
                assert_eq!(k["node_name_env"].as_str(), Some("NODE_NAME"), "{variant}");
                let positions = k["positions_file"].as_str().expect("positions_file");
                assert!(
                    seq(&c["volumeMounts"]).iter().any(|m| {
                        m["readOnly"].as_bool() != Some(true)
                            && m["mountPath"]
                                .as_str()
                                .is_some_and(|d| positions.starts_with(&format!("{d}/")))
                    }),
                    "{variant}: positions_file {positions} is not on a writable mount"
                );
                assert!(
                    cfg.get("file").is_none(),
                    "{variant}: [[file]] would read twice"
                );
            }
            "deploy/overlays/namespaced" => {
                let role_ns: BTreeSet<String> = of_kind(&objs, "Role")
                    .iter()
                    .filter_map(|r| namespace(r).map(str::to_string))
                    .collect();
                let cfg_ns: BTreeSet<String> = toml_string_values(&text, "namespaces")
                    .into_iter()
                    .collect();
                assert_eq!(
                    role_ns, cfg_ns,
                    "{variant}: the Roles' namespaces and exporter.toml's `namespaces` differ"
                );
                assert!(!role_ns.contains(EXPORTER_NAMESPACE));
            }
            _ => assert_eq!(kind(w), "Deployment"),
        }
    }
}

#[test]
fn service_and_service_monitor_scrape_the_exporter_as_the_alerts_expect() {
    let (groups, _) = alert_groups();
    let exprs = serde_yaml::to_string(&groups).expect("yaml");
    let workspace: toml::Table = toml::from_str(
        &std::fs::read_to_string(repo_root().join("Cargo.toml")).expect("Cargo.toml"),
    )
    .expect("TOML");
    let version = workspace["workspace"]["package"]["version"]
        .as_str()
        .expect("workspace version");
    for variant in VARIANTS {
        let objs = render(variant);
        for o in &objs {
            let cluster_scoped = matches!(kind(o), "ClusterRole" | "ClusterRoleBinding");
            let in_bots_namespace =
                variant.ends_with("namespaced") && matches!(kind(o), "Role" | "RoleBinding");
            if !cluster_scoped && !in_bots_namespace {
                assert_eq!(
                    namespace(o),
                    Some(EXPORTER_NAMESPACE),
                    "{variant}: {}",
                    id(o)
                );
            }
        }
        let svc = one(&objs, "Service", variant);
        let sm = one(&objs, "ServiceMonitor", variant);
        let w = workload(&objs, variant);
        // ServiceMonitor's job label is the Service's name; the alerts match on it.
        assert!(
            exprs.contains(&format!("job=\"{}\"", name(svc))),
            "{variant}: the alerts do not use job=\"{}\"",
            name(svc)
        );
        assert!(sm["spec"].get("jobLabel").is_none());
        let pod_labels = map_of_strings(&w["spec"]["template"]["metadata"]["labels"]);
        let svc_sel = map_of_strings(&svc["spec"]["selector"]);
        assert!(
            !svc_sel.is_empty() && svc_sel.iter().all(|(k, v)| pod_labels.get(k) == Some(v)),
            "{variant}: the Service does not select the pods"
        );
        let svc_labels = map_of_strings(&svc["metadata"]["labels"]);
        let sm_sel = map_of_strings(&sm["spec"]["selector"]["matchLabels"]);
        assert!(
            !sm_sel.is_empty() && sm_sel.iter().all(|(k, v)| svc_labels.get(k) == Some(v)),
            "{variant}: the ServiceMonitor does not select the Service"
        );
        let port = &svc["spec"]["ports"][0];
        assert_eq!(port["port"].as_u64(), Some(PORT));
        assert_eq!(port["targetPort"].as_str(), Some("http"));
        let ep = &sm["spec"]["endpoints"][0];
        assert_eq!(ep["port"], port["name"], "{variant}: ServiceMonitor port");
        assert_eq!(ep["path"].as_str(), Some("/metrics"));
        let image = w["spec"]["template"]["spec"]["containers"][0]["image"]
            .as_str()
            .expect("image");
        assert_eq!(
            image,
            format!("ghcr.io/discord-gateway-exporter/discord-gateway-exporter:{version}"),
            "{variant}: the image tag is the workspace version"
        );
    }
}
