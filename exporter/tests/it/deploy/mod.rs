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
//! * README.md's "Install in a cluster" block is exactly [`install::INSTALL`], whose every
//!   command is exercised here offline (`--dry-run=client`, `kubectl kustomize`).
//!
//! One module per topic; the rendering helpers they share are here.
//!
//! No network. A missing tool fails the test with what to install; it never skips:
//! kubectl (on the machine image) and `python3 -m pip install -r deploy/requirements.txt`
//! (kubernetes-validate==1.37.0, PyYAML, jsonschema; .ci/run installs it).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde::Deserialize;
use serde_yaml::Value;

mod alerts_and_dashboards;
mod bot_fix;
mod config;
mod dockerfile;
mod install;
mod monitoring;
mod remediation;
mod schemas;
mod security;

/// The variants an operator installs with `kubectl apply -k`.
const VARIANTS: [&str; 4] = [
    "deploy/base",
    "deploy/overlays/node-mode",
    "deploy/overlays/namespaced",
    "deploy/overlays/kube-prometheus-stack",
];

/// base scraped through deploy/components/podmonitor (with the kube-prometheus-stack
/// component): a PodMonitor instead of the ServiceMonitor.
const PODMONITOR_EXAMPLE: &str = "deploy/components/examples/podmonitor";

/// The example bot with deploy/bot-fix/component applied.
const BOT_FIX_EXAMPLE: &str = "deploy/bot-fix/example";

const EXPORTER_NAMESPACE: &str = "discord-gateway-exporter";

// Tools and rendering shared by the topics.

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

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("temporary directory")
}

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
