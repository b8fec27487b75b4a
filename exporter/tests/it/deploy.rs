//! deploy/: the Kubernetes manifests, the container image and the bot-side fix.
//!
//! Renders every variant with `kubectl kustomize` (kubectl with its built-in kustomize) and
//! checks what `kubectl apply -k` would install:
//!
//! * every core object against the Kubernetes OpenAPI schemas of several minor versions
//!   (`kubernetes-validate --strict`), every prometheus-operator object against the strict
//!   schemas in deploy/schemas/ (`deploy/schemas/validate.py`, Python `jsonschema`);
//! * the PrometheusRule is the rules of alerts/, the dashboard ConfigMaps are dashboards/;
//! * the Deployment and DaemonSet pass a security check; RBAC is read-only;
//! * each variant's exporter.toml loads (`discord-gateway-exporter check-config`) and agrees
//!   with the manifests (paths, port, namespaces);
//! * deploy/Dockerfile is multi-stage, runs as a numeric non-root user and labels its version;
//! * deploy/bot-fix/ removes the overlap from an example bot Deployment;
//! * README.md's "Install in a cluster" block is exactly [`INSTALL`], whose every command is
//!   exercised here offline (`--dry-run=client`, `kubectl kustomize`).
//!
//! No network. A missing tool fails the test with what to install; it never skips:
//! kubectl (on the machine image) and `python3 -m pip install -r deploy/requirements.txt`
//! (kubernetes-validate==1.37.0, PyYAML, jsonschema; .ci/run installs it).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde::Deserialize;
use serde_yaml::Value;

/// The variants an operator installs with `kubectl apply -k`.
const VARIANTS: [&str; 3] = [
    "deploy/base",
    "deploy/overlays/node-mode",
    "deploy/overlays/namespaced",
];

/// The example bot with deploy/bot-fix/component applied.
const BOT_FIX_EXAMPLE: &str = "deploy/bot-fix/example";

/// Kubernetes minor versions every rendered object is validated against.
const K8S_VERSIONS: [&str; 4] = ["1.31.0", "1.33.0", "1.35.0", "1.37.0"];

const KUBERNETES_VALIDATE_PIP: &str =
    "python3 -m pip install -r deploy/requirements.txt (kubernetes-validate==1.37.0)";

/// README.md's "## Install in a cluster" ```sh block, exactly. Every command in it is run or
/// checked by `install_commands_are_exercised`.
const INSTALL: &str = "\
# The namespace, and the bot token as a file the exporter reads (optional: without it the
# exporter still runs, with no Discord-side count). Never put a token in a flag or a manifest.
kubectl create namespace discord-gateway-exporter
kubectl -n discord-gateway-exporter create secret generic discord-bot-token --from-file=token=./discord-bot-token
# Cluster mode. Or: deploy/overlays/node-mode (a DaemonSet reading /var/log/pods on each
# node), deploy/overlays/namespaced (a Role in the bots' namespace instead of a ClusterRole).
kubectl apply -k deploy/base
kubectl -n discord-gateway-exporter rollout status deployment/discord-gateway-exporter --timeout=180s
";

const EXPORTER_NAMESPACE: &str = "discord-gateway-exporter";
const CONFIG_DIR: &str = "/etc/discord-gateway-exporter";
const PORT: u64 = 9464;

// ---------------------------------------------------------------------------------------
// Tools and rendering
// ---------------------------------------------------------------------------------------

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("crate has a parent directory")
        .to_path_buf()
}

/// Runs `cmd`; a program that cannot be started fails the test with `install`.
fn run(mut cmd: Command, install: &str) -> Output {
    let program = cmd.get_program().to_string_lossy().into_owned();
    cmd.output().unwrap_or_else(|e| {
        panic!("cannot run `{program}` ({e}); it is required by this test: {install}")
    })
}

fn stdout_ok(cmd: Command, install: &str, what: &str) -> String {
    let out = run(cmd, install);
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8 output")
}

fn kubectl() -> Command {
    let mut cmd = Command::new("kubectl");
    // Offline: never a kubeconfig, never a server.
    cmd.env("KUBECONFIG", "/nonexistent/kubeconfig")
        .current_dir(repo_root());
    cmd
}

const KUBECTL_INSTALL: &str = "install kubectl (1.27 or newer, kustomize built in), e.g. the \
     `kubectl` package from the Kubernetes apt repository or the machine image";

/// `kubectl kustomize DIR` as YAML text.
fn render_text(dir: &str) -> String {
    let mut cmd = kubectl();
    cmd.args(["kustomize", dir]);
    stdout_ok(cmd, KUBECTL_INSTALL, &format!("kubectl kustomize {dir}"))
}

/// `kubectl kustomize DIR` as objects.
fn render(dir: &str) -> Vec<Value> {
    docs(&render_text(dir), dir)
}

fn docs(text: &str, what: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(text)
        .map(|d| Value::deserialize(d).unwrap_or_else(|e| panic!("{what}: not YAML: {e}")))
        .filter(|v| !v.is_null())
        .collect()
}

fn kind(o: &Value) -> &str {
    o["kind"].as_str().unwrap_or("")
}

fn name(o: &Value) -> &str {
    o["metadata"]["name"].as_str().unwrap_or("")
}

fn namespace(o: &Value) -> Option<&str> {
    o["metadata"]["namespace"].as_str()
}

fn id(o: &Value) -> String {
    format!("{}/{}", kind(o), name(o))
}

fn of_kind<'a>(objs: &'a [Value], k: &str) -> Vec<&'a Value> {
    objs.iter().filter(|o| kind(o) == k).collect()
}

fn one<'a>(objs: &'a [Value], k: &str, variant: &str) -> &'a Value {
    let found = of_kind(objs, k);
    assert_eq!(
        found.len(),
        1,
        "{variant}: expected one {k}, got {}",
        found.len()
    );
    found[0]
}

fn is_crd_kind(o: &Value) -> bool {
    o["apiVersion"]
        .as_str()
        .is_some_and(|a| a.starts_with("monitoring.coreos.com/"))
}

/// The one workload (Deployment or DaemonSet) of a variant.
fn workload<'a>(objs: &'a [Value], variant: &str) -> &'a Value {
    let found: Vec<&Value> = objs
        .iter()
        .filter(|o| matches!(kind(o), "Deployment" | "DaemonSet" | "StatefulSet"))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "{variant}: expected exactly one workload, got {:?}",
        found.iter().map(|o| id(o)).collect::<Vec<_>>()
    );
    found[0]
}

fn str_seq(v: &Value) -> Vec<String> {
    v.as_sequence()
        .map(|s| {
            s.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn seq(v: &Value) -> &[Value] {
    v.as_sequence().map(Vec::as_slice).unwrap_or(&[])
}

fn map_of_strings(v: &Value) -> BTreeMap<String, String> {
    v.as_mapping()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.as_str()?.to_string(), v.as_str()?.to_string())))
                .collect()
        })
        .unwrap_or_default()
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temporary directory")
}

fn yaml_text(objs: &[&Value]) -> String {
    objs.iter()
        .map(|o| serde_yaml::to_string(o).expect("serialize"))
        .collect::<Vec<_>>()
        .join("---\n")
}

// ---------------------------------------------------------------------------------------
// 1. Schemas
// ---------------------------------------------------------------------------------------

#[test]
fn overlays_directory_holds_exactly_the_tested_variants() {
    let dir = repo_root().join("deploy/overlays");
    let on_disk: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.expect("entry"))
        .filter(|e| e.path().join("kustomization.yaml").is_file())
        .map(|e| format!("deploy/overlays/{}", e.file_name().to_string_lossy()))
        .collect();
    let tested: BTreeSet<String> = VARIANTS[1..].iter().map(|s| s.to_string()).collect();
    assert_eq!(
        on_disk, tested,
        "add a new overlay to VARIANTS in this test"
    );
}

#[test]
fn every_rendered_object_validates_against_the_schemas() {
    let tmp = tempdir();
    for dir in VARIANTS.iter().chain([&BOT_FIX_EXAMPLE]) {
        let objs = render(dir);
        assert!(!objs.is_empty(), "{dir} renders nothing");
        let (crds, core): (Vec<&Value>, Vec<&Value>) = objs.iter().partition(|o| is_crd_kind(o));
        let stem = dir.replace('/', "_");

        // Core kinds: kubernetes-validate, strict (unknown fields are errors), each version.
        let core_file = tmp.path().join(format!("{stem}.core.yaml"));
        std::fs::write(&core_file, yaml_text(&core)).expect("write");
        for version in K8S_VERSIONS {
            let mut cmd = Command::new("kubernetes-validate");
            cmd.args(["--strict", "-k", version]).arg(&core_file);
            let out = run(cmd, KUBERNETES_VALIDATE_PIP);
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                out.status.success(),
                "{dir} does not validate against Kubernetes {version} \
                 (kubernetes-validate; a version it does not know needs `{KUBERNETES_VALIDATE_PIP}`):\n{text}"
            );
            assert!(
                !text.contains("WARN"),
                "{dir}: kubernetes-validate {version} warned (an object without a schema is not \
                 validated):\n{text}"
            );
            let passed = text.matches(" passed for resource ").count();
            assert_eq!(
                passed,
                core.len(),
                "{dir}: {} core objects, {passed} validated against {version}:\n{text}",
                core.len()
            );
        }

        // prometheus-operator kinds: the strict schemas in deploy/schemas/.
        if !crds.is_empty() {
            let crd_file = tmp.path().join(format!("{stem}.crd.yaml"));
            std::fs::write(&crd_file, yaml_text(&crds)).expect("write");
            let mut cmd = Command::new("python3");
            cmd.arg(repo_root().join("deploy/schemas/validate.py"))
                .arg(&crd_file);
            let out = run(
                cmd,
                &format!("install Python 3 and `{KUBERNETES_VALIDATE_PIP}`"),
            );
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                out.status.success(),
                "{dir}: prometheus-operator objects do not validate against deploy/schemas/ \
                 (ModuleNotFoundError means: {KUBERNETES_VALIDATE_PIP}):\n{text}"
            );
            assert_eq!(
                text.lines().filter(|l| l.starts_with("OK ")).count(),
                crds.len(),
                "{dir}: not every CRD object was validated:\n{text}"
            );
        }
    }
}

#[test]
fn strict_crd_schemas_reject_a_typo() {
    // The CRD check is not vacuous: a misspelt field and a bad duration are errors.
    let objs = render("deploy/base");
    let mut sm = one(&objs, "ServiceMonitor", "deploy/base").clone();
    sm["spec"]["endpoints"][0]["intreval"] = Value::from("15s");
    let mut rule = one(&objs, "PrometheusRule", "deploy/base").clone();
    let first_alert = seq(&rule["spec"]["groups"])
        .iter()
        .enumerate()
        .find_map(|(g, group)| {
            seq(&group["rules"])
                .iter()
                .position(|r| r.get("alert").is_some())
                .map(|r| (g, r))
        })
        .expect("an alerting rule");
    rule["spec"]["groups"][first_alert.0]["rules"][first_alert.1]["for"] = Value::from("5 min");
    let tmp = tempdir();
    for (what, obj) in [("ServiceMonitor", &sm), ("PrometheusRule", &rule)] {
        let file = tmp.path().join(format!("{what}.yaml"));
        std::fs::write(&file, yaml_text(&[obj])).expect("write");
        let mut cmd = Command::new("python3");
        cmd.arg(repo_root().join("deploy/schemas/validate.py"))
            .arg(&file);
        let out = run(
            cmd,
            &format!("install Python 3 and `{KUBERNETES_VALIDATE_PIP}`"),
        );
        let text = String::from_utf8_lossy(&out.stdout);
        assert_eq!(
            out.status.code(),
            Some(1),
            "a broken {what} must fail validation:\n{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("ERROR"), "{what}: {text}");
    }
}

// ---------------------------------------------------------------------------------------
// 2. One source of truth: alerts/ and dashboards/
// ---------------------------------------------------------------------------------------

/// The `groups` of every alerts/*.yml|yaml file that has a top-level `groups:` key.
fn alert_groups() -> (Vec<Value>, Vec<String>) {
    let dir = repo_root().join("alerts");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "yml" || x == "yaml"))
        .collect();
    files.sort();
    let mut groups = Vec::new();
    let mut used = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read");
        let doc: Value = serde_yaml::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not YAML: {e}", file.display()));
        if let Some(g) = doc.get("groups") {
            groups.extend(seq(g).iter().cloned());
            used.push(file.file_name().unwrap().to_string_lossy().into_owned());
        }
    }
    assert!(!used.is_empty(), "no rule file with `groups:` in alerts/");
    (groups, used)
}

#[test]
fn prometheus_rule_is_the_rules_in_alerts() {
    let (groups, files) = alert_groups();
    let want = Value::Sequence(groups);
    for dir in VARIANTS {
        let objs = render(dir);
        let rule = one(&objs, "PrometheusRule", dir);
        let got = &rule["spec"]["groups"];
        if *got == want {
            continue;
        }
        // Name the first group and rule that differ.
        let (got, want) = (seq(got), seq(&want));
        let mut detail = format!("{} groups rendered, {} in alerts/", got.len(), want.len());
        if let Some(g) = (0..got.len().min(want.len())).find(|&g| got[g] != want[g]) {
            let (a, b) = (seq(&got[g]["rules"]), seq(&want[g]["rules"]));
            let r = (0..a.len().max(b.len())).find(|&r| a.get(r) != b.get(r));
            detail = format!(
                "group {} ({:?}), rule {:?}: rendered {:?}, alerts/ {:?}",
                g,
                want[g]["name"].as_str().unwrap_or("?"),
                r,
                r.and_then(|r| a.get(r))
                    .map(|v| serde_yaml::to_string(v).unwrap_or_default()),
                r.and_then(|r| b.get(r))
                    .map(|v| serde_yaml::to_string(v).unwrap_or_default()),
            );
        }
        panic!(
            "{dir}: the PrometheusRule's spec.groups differ from the groups of alerts/{}: \
             {detail}. Run `python3 deploy/generate.py` and commit deploy/base/generated/.",
            files.join(", alerts/")
        );
    }
}

#[test]
fn dashboard_configmaps_are_the_dashboards() {
    let dir = repo_root().join("dashboards");
    let mut want: BTreeMap<String, String> = BTreeMap::new();
    for e in std::fs::read_dir(&dir).expect("read dashboards/") {
        let p = e.expect("entry").path();
        if p.extension().is_some_and(|x| x == "json") {
            let file = p.file_name().unwrap().to_string_lossy().into_owned();
            want.insert(
                format!("discord-gateway-exporter-{file}"),
                std::fs::read_to_string(&p).expect("read dashboard"),
            );
        }
    }
    assert!(!want.is_empty(), "no dashboards/*.json");
    for variant in VARIANTS {
        let objs = render(variant);
        let mut got: BTreeMap<String, String> = BTreeMap::new();
        for cm in of_kind(&objs, "ConfigMap") {
            if cm["metadata"]["labels"]["grafana_dashboard"].as_str() != Some("1") {
                continue;
            }
            let data = cm["data"].as_mapping().expect("dashboard ConfigMap data");
            assert_eq!(data.len(), 1, "{}: one dashboard per ConfigMap", id(cm));
            // A stable name (no content hash): a renamed ConfigMap would stay behind, since
            // `kubectl apply` does not prune, and Grafana would load the dashboard twice.
            let key = data.keys().next().and_then(Value::as_str).unwrap_or("");
            let stem = key
                .trim_start_matches("discord-gateway-exporter-")
                .trim_end_matches(".json");
            assert_eq!(
                name(cm),
                format!("discord-gateway-exporter-dashboard-{stem}"),
                "dashboard ConfigMap name"
            );
            // A client-side `kubectl apply` keeps the whole object in an annotation, which
            // must stay under 256 KiB.
            let size = serde_json::to_string(cm).expect("json").len();
            assert!(
                size < 250 * 1024,
                "{}: {size} bytes is too big to apply",
                id(cm)
            );
            for (k, v) in data {
                got.insert(
                    k.as_str().expect("key").to_string(),
                    v.as_str().expect("string value").to_string(),
                );
            }
        }
        assert_eq!(
            got.keys().collect::<Vec<_>>(),
            want.keys().collect::<Vec<_>>(),
            "{variant}: dashboard ConfigMaps vs dashboards/*.json \
             (run `python3 deploy/generate.py`)"
        );
        for (k, v) in &want {
            assert!(
                got[k] == *v,
                "{variant}: ConfigMap key {k} differs from dashboards/ byte for byte \
                 (run `python3 deploy/generate.py`)"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// 3. Security
// ---------------------------------------------------------------------------------------

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
                        ["pods", "pods/log", "events"].contains(&r.as_str()),
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

// ---------------------------------------------------------------------------------------
// The exporter's config, ports, probes and scrape target agree with the manifests
// ---------------------------------------------------------------------------------------

/// The exporter.toml the workload mounts, and where.
fn mounted_config(objs: &[Value], w: &Value, variant: &str) -> (String, String) {
    let pod = &w["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    let vol = seq(&pod["volumes"])
        .iter()
        .find(|v| v.get("configMap").is_some())
        .unwrap_or_else(|| panic!("{variant}: no config volume"));
    let cm_name = vol["configMap"]["name"].as_str().expect("configMap name");
    let cm = of_kind(objs, "ConfigMap")
        .into_iter()
        .find(|cm| name(cm) == cm_name)
        .unwrap_or_else(|| panic!("{variant}: ConfigMap {cm_name} is not rendered"));
    let mount = seq(&c["volumeMounts"])
        .iter()
        .find(|m| m["name"] == vol["name"])
        .unwrap_or_else(|| panic!("{variant}: config volume not mounted"));
    let text = cm["data"]["exporter.toml"]
        .as_str()
        .unwrap_or_else(|| panic!("{variant}: {cm_name} has no exporter.toml"))
        .to_string();
    (text, mount["mountPath"].as_str().unwrap_or("").to_string())
}

/// Every `key = "value"` in a TOML text, commented out (intended shape) or not.
fn toml_string_values(text: &str, key: &str) -> Vec<String> {
    text.lines()
        .map(|l| l.trim_start_matches(['#', ' ']))
        .filter_map(|l| l.strip_prefix(key))
        .filter_map(|rest| rest.trim_start().strip_prefix('='))
        .flat_map(|v| {
            v.split('#')
                .next()
                .unwrap_or("")
                .split('"')
                .skip(1)
                .step_by(2)
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .collect()
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

// ---------------------------------------------------------------------------------------
// 4. The install commands in README.md
// ---------------------------------------------------------------------------------------

/// The first ```sh block of README.md's `## Install in a cluster` section.
fn readme_install_block() -> Result<String, String> {
    let path = repo_root().join("README.md");
    let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    install_block(&text)
}

/// The first ```sh block of the `## Install in a cluster` section of a README text.
fn install_block(text: &str) -> Result<String, String> {
    let start = text
        .lines()
        .position(|l| l.trim_end() == "## Install in a cluster")
        .ok_or("README.md has no `## Install in a cluster` heading")?;
    let mut block = None;
    for line in text.lines().skip(start + 1) {
        if line.starts_with("## ") {
            break;
        }
        match &mut block {
            None if line.trim_end() == "```sh" => block = Some(String::new()),
            None => {}
            Some(b) if line.trim_end() == "```" => return Ok(b.clone()),
            Some(b) => {
                b.push_str(line);
                b.push('\n');
            }
        }
    }
    Err("README.md's `## Install in a cluster` section has no complete ```sh block".into())
}

#[test]
fn readme_install_section_is_exactly_the_tested_commands() {
    match readme_install_block() {
        Ok(block) => assert!(
            block == INSTALL,
            "README.md's `## Install in a cluster` ```sh block differs from the commands this \
             test exercises. It must read exactly:\n```sh\n{INSTALL}```\n\nREADME has:\n{block}"
        ),
        Err(e) => panic!("{e}. It must hold exactly:\n```sh\n{INSTALL}```"),
    }
}

#[test]
fn install_block_is_read_from_its_section_only() {
    let readme = format!(
        "# x\n\n## Quick start\n\n```sh\nnot this\n```\n\n## Install in a cluster\n\nProse.\n\n\
         ```toml\nnor = 1\n```\n\n```sh\n{INSTALL}```\n\n```sh\nnor this\n```\n\n## Next\n"
    );
    assert_eq!(install_block(&readme).as_deref(), Ok(INSTALL));
    assert!(
        install_block("## Install in a cluster\n\nno block\n## Next\n```sh\nx\n```\n").is_err()
    );
    assert!(install_block("# nothing\n").is_err());
}

#[test]
fn install_commands_are_exercised() {
    let tmp = tempdir();
    let base = render("deploy/base");
    let base_w = workload(&base, "deploy/base");
    let token_volume = seq(&base_w["spec"]["template"]["spec"]["volumes"])
        .iter()
        .find(|v| v.get("secret").is_some())
        .expect("token volume")
        .clone();
    let mut applied = Vec::new();
    let mut lines = 0;
    for line in INSTALL.lines() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        if let Some(comment) = line.strip_prefix('#') {
            // Variants named in comments are real ones.
            for word in comment.split_whitespace() {
                let w = word.trim_matches(|c: char| !c.is_alphanumeric() && c != '/' && c != '-');
                if w.starts_with("deploy/") {
                    assert!(
                        VARIANTS.contains(&w),
                        "the install block names {w}: not a variant"
                    );
                }
            }
            continue;
        }
        assert!(!line.ends_with('\\'), "one command per line: {line}");
        lines += 1;
        let words: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(words[0], "kubectl", "not exercised by this test: {line}");
        // `-n NS` before the verb.
        let (ns, rest) = match words[1] {
            "-n" => (Some(words[2]), &words[3..]),
            _ => (None, &words[1..]),
        };
        match rest {
            ["create", "namespace", n] => {
                let mut cmd = kubectl();
                cmd.args(["create", "namespace", n, "--dry-run=client", "-o", "yaml"]);
                let obj = &docs(&stdout_ok(cmd, KUBECTL_INSTALL, line), line)[0];
                assert_eq!(name(obj), EXPORTER_NAMESPACE, "{line}");
            }
            ["create", "secret", "generic", secret, from] => {
                let (key, file) = from
                    .strip_prefix("--from-file=")
                    .and_then(|s| s.split_once('='))
                    .unwrap_or_else(|| panic!("{line}: --from-file=KEY=PATH"));
                std::fs::write(tmp.path().join(file), "not-a-real-token").expect("write");
                let mut cmd = kubectl();
                cmd.current_dir(tmp.path()).args(&words[1..]).args([
                    "--dry-run=client",
                    "-o",
                    "yaml",
                ]);
                let obj = &docs(&stdout_ok(cmd, KUBECTL_INSTALL, line), line)[0];
                assert_eq!(kind(obj), "Secret");
                assert_eq!(namespace(obj), Some(EXPORTER_NAMESPACE), "{line}");
                assert_eq!(
                    Some(*secret),
                    token_volume["secret"]["secretName"].as_str(),
                    "{line}: the Deployment mounts another Secret"
                );
                assert!(obj["data"].get(key).is_some(), "{line}: key {key}");
                // The exporter reads <mount>/<key>: the config names that file.
                let mount =
                    seq(&base_w["spec"]["template"]["spec"]["containers"][0]["volumeMounts"])
                        .iter()
                        .find(|m| m["name"] == token_volume["name"])
                        .and_then(|m| m["mountPath"].as_str())
                        .expect("token mount")
                        .to_string();
                let (config, _) = mounted_config(&base, base_w, "deploy/base");
                assert!(
                    toml_string_values(&config, "token_file").contains(&format!("{mount}/{key}")),
                    "{line}: exporter.toml does not read {mount}/{key}"
                );
            }
            ["apply", "-k", dir] => {
                assert!(
                    VARIANTS.contains(dir),
                    "{line}: {dir} is not a tested variant"
                );
                assert!(!render(dir).is_empty());
                applied.push(dir.to_string());
            }
            ["rollout", "status", target, timeout] => {
                assert!(timeout.starts_with("--timeout="), "{line}");
                let dir = applied.last().expect("rollout status after an apply");
                let objs = render(dir);
                let w = workload(&objs, dir);
                assert_eq!(
                    *target,
                    format!("{}/{}", kind(w).to_ascii_lowercase(), name(w)),
                    "{line}: the workload of {dir}"
                );
                assert_eq!(namespace(w), ns, "{line}: namespace");
            }
            _ => panic!("the install block has a command this test does not exercise: {line}"),
        }
    }
    assert!(lines >= 3, "the install block is too short");
    assert_eq!(applied, ["deploy/base"], "the block applies the base once");
}

// ---------------------------------------------------------------------------------------
// Dockerfile
// ---------------------------------------------------------------------------------------

#[test]
fn dockerfile_is_multi_stage_non_root_and_labelled() {
    let path = repo_root().join("deploy/Dockerfile");
    let text = std::fs::read_to_string(&path).expect("deploy/Dockerfile");
    // Instructions, with continuation lines joined and comments dropped.
    let mut instructions: Vec<String> = Vec::new();
    let mut cur = String::new();
    for line in text.lines() {
        let t = line.trim();
        if cur.is_empty() && (t.is_empty() || t.starts_with('#')) {
            continue;
        }
        match t.strip_suffix('\\') {
            Some(head) => {
                cur.push_str(head);
                cur.push(' ');
            }
            None => {
                cur.push_str(t);
                instructions.push(std::mem::take(&mut cur));
            }
        }
    }
    let stages: Vec<Vec<&String>> = instructions.iter().fold(Vec::new(), |mut acc, i| {
        if i.to_ascii_uppercase().starts_with("FROM ") {
            acc.push(vec![i]);
        } else if let Some(last) = acc.last_mut() {
            last.push(i);
        }
        acc
    });
    assert!(stages.len() >= 2, "multi-stage: {} FROM", stages.len());
    assert!(
        stages[0][0].contains("rust:") && stages[0][0].contains(" AS builder"),
        "first stage builds with the Rust image: {}",
        stages[0][0]
    );
    assert!(
        stages[0]
            .iter()
            .any(|i| i.contains("cargo build --release --locked")),
        "the builder builds with --release --locked"
    );
    let last = stages.last().unwrap();
    let from = last[0];
    assert!(
        from.contains("distroless") || from.contains("-slim"),
        "small final image: {from}"
    );
    let users: Vec<&&String> = last.iter().filter(|i| i.starts_with("USER ")).collect();
    let user = users.last().expect("the final stage sets USER");
    let uid = user["USER ".len()..].split(':').next().unwrap().trim();
    let uid: u64 = uid
        .parse()
        .unwrap_or_else(|_| panic!("USER must be numeric (runAsNonRoot checks it): {user}"));
    assert_ne!(uid, 0, "USER is root");
    assert!(
        last.iter().any(|i| i.starts_with("ARG VERSION")),
        "ARG VERSION in the final stage (ARGs do not cross stages)"
    );
    assert!(
        last.iter().any(|i| i.starts_with("LABEL")
            && i.contains("org.opencontainers.image.version=\"${VERSION}\"")),
        "LABEL org.opencontainers.image.version from the VERSION build arg"
    );
    assert!(
        last.iter().any(|i| i.starts_with("COPY --from=builder")),
        "the final stage copies the binary from the builder"
    );
    assert!(
        last.iter()
            .any(|i| i.starts_with("ENTRYPOINT") && i.contains("discord-gateway-exporter"))
    );
    // The image's user is the one the manifests run as.
    for variant in VARIANTS {
        let objs = render(variant);
        let w = workload(&objs, variant);
        assert_eq!(
            w["spec"]["template"]["spec"]["securityContext"]["runAsUser"].as_u64(),
            Some(uid),
            "{variant}: runAsUser vs the Dockerfile's USER"
        );
    }
    let ignore = std::fs::read_to_string(repo_root().join(".dockerignore")).expect(".dockerignore");
    assert!(
        ignore.lines().any(|l| l.trim() == "*") || ignore.lines().any(|l| l.contains("target")),
        ".dockerignore keeps target/ out of the build context"
    );
}

// ---------------------------------------------------------------------------------------
// deploy/bot-fix
// ---------------------------------------------------------------------------------------

#[test]
fn bot_fix_removes_the_overlap_from_the_example_bot() {
    let before: Value = serde_yaml::from_str(
        &std::fs::read_to_string(repo_root().join("deploy/bot-fix/example/deployment.yaml"))
            .expect("example deployment"),
    )
    .expect("YAML");
    assert!(
        before["spec"].get("strategy").is_none(),
        "the example starts from the default RollingUpdate (the overlap)"
    );
    let objs = render(BOT_FIX_EXAMPLE);
    let d = one(&objs, "Deployment", BOT_FIX_EXAMPLE);
    let strategy = &d["spec"]["strategy"];
    match strategy["type"].as_str() {
        Some("Recreate") => assert!(
            strategy.get("rollingUpdate").is_none(),
            "Recreate with a rollingUpdate block is rejected by the API server"
        ),
        Some("RollingUpdate") => {
            assert_eq!(strategy["rollingUpdate"]["maxSurge"].as_u64(), Some(0));
            assert!(strategy["rollingUpdate"]["maxUnavailable"].as_u64() >= Some(1));
        }
        other => panic!("strategy {other:?}"),
    }
    let pod = &d["spec"]["template"]["spec"];
    let pre_stop = &pod["containers"][0]["lifecycle"]["preStop"];
    assert!(pre_stop.is_mapping(), "a preStop hook on the bot container");
    let sleep = pre_stop["sleep"]["seconds"].as_u64().unwrap_or(0);
    let grace = pod["terminationGracePeriodSeconds"]
        .as_u64()
        .expect("terminationGracePeriodSeconds");
    assert!(
        grace >= sleep + 30,
        "grace {grace}s leaves under 30s after the {sleep}s preStop for a clean close"
    );
    // Everything else of the bot is untouched.
    assert_eq!(
        pod["containers"][0]["image"],
        before["spec"]["template"]["spec"]["containers"][0]["image"]
    );
    let readme = std::fs::read_to_string(repo_root().join("deploy/bot-fix/README.md"))
        .expect("deploy/bot-fix/README.md");
    for word in [
        "Recreate",
        "maxSurge",
        "preStop",
        "terminationGracePeriodSeconds",
    ] {
        assert!(
            readme.contains(word),
            "the trade-offs README explains {word}"
        );
    }
}
