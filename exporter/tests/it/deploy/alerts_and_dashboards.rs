//! One source of truth: the PrometheusRule is the rules of alerts/, the dashboard ConfigMaps
//! are dashboards/.

use super::*;

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
