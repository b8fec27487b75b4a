//! Every rendered object against the Kubernetes OpenAPI schemas and the strict
//! prometheus-operator schemas.

use super::*;

/// Kubernetes minor versions every rendered object is validated against.
const K8S_VERSIONS: [&str; 4] = ["1.31.0", "1.33.0", "1.35.0", "1.37.0"];
const KUBERNETES_VALIDATE_PIP: &str =
    "python3 -m pip install -r deploy/requirements.txt (kubernetes-validate==1.37.0)";

fn is_crd_kind(o: &Value) -> bool {
    o["apiVersion"]
        .as_str()
        .is_some_and(|a| a.starts_with("monitoring.coreos.com/"))
}

fn yaml_text(objs: &[&Value]) -> String {
    objs.iter()
        .map(|o| serde_yaml::to_string(o).expect("serialize"))
        .collect::<Vec<_>>()
        .join("---\n")
}

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
    for dir in VARIANTS.iter().chain([
        &BOT_FIX_EXAMPLE,
        &PODMONITOR_EXAMPLE,
        &super::remediation::REMEDIATION_EXAMPLE,
    ]) {
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
