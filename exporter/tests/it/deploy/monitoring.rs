//! How Prometheus Operator picks the exporter up: `honorLabels` on whatever scrapes it (the
//! exporter's `pod`/`namespace` name the bots' pods; without it they become `exported_pod`
//! and every alert names the exporter's own pod), and kube-prometheus-stack's `release`
//! label on everything the stack selects by it.

use super::*;

/// The release label kube-prometheus-stack's selectors match by default.
const RELEASE: &str = "kube-prometheus-stack";

/// Every scrape endpoint of the ServiceMonitors and PodMonitors in `objs`.
fn scrape_endpoints(objs: &[Value]) -> Vec<(String, &Value)> {
    let mut out = Vec::new();
    for o in objs {
        let eps = match kind(o) {
            "ServiceMonitor" => &o["spec"]["endpoints"],
            "PodMonitor" => &o["spec"]["podMetricsEndpoints"],
            _ => continue,
        };
        for ep in seq(eps) {
            out.push((id(o), ep));
        }
    }
    out
}

#[test]
fn every_scrape_honors_the_exporters_pod_and_namespace_labels() {
    for dir in VARIANTS.iter().chain([&PODMONITOR_EXAMPLE]) {
        let objs = render(dir);
        let eps = scrape_endpoints(&objs);
        assert!(!eps.is_empty(), "{dir}: no ServiceMonitor or PodMonitor");
        for (what, ep) in eps {
            assert_eq!(
                ep["honorLabels"].as_bool(),
                Some(true),
                "{dir}: {what} scrapes without honorLabels: true, so the bots' pod and \
                 namespace labels become exported_pod/exported_namespace"
            );
        }
    }
}

#[test]
fn the_podmonitor_replaces_the_servicemonitor_with_the_same_job() {
    let objs = render(PODMONITOR_EXAMPLE);
    assert!(of_kind(&objs, "ServiceMonitor").is_empty());
    let pm = one(&objs, "PodMonitor", PODMONITOR_EXAMPLE);
    assert_eq!(namespace(pm), Some(EXPORTER_NAMESPACE));
    // job = the value of this pod label, which must be the job the alerts match.
    let job_label = pm["spec"]["jobLabel"].as_str().expect("jobLabel");
    let w = one(&objs, "Deployment", PODMONITOR_EXAMPLE);
    let job = w["spec"]["template"]["metadata"]["labels"][job_label]
        .as_str()
        .expect("the pods carry the jobLabel");
    let (groups, _) = alert_groups();
    let exprs = serde_yaml::to_string(&groups).expect("yaml");
    assert!(exprs.contains(&format!("job=\"{job}\"")), "job {job}");
    let pod_labels = &w["spec"]["template"]["metadata"]["labels"];
    for (k, v) in pm["spec"]["selector"]["matchLabels"]
        .as_mapping()
        .expect("matchLabels")
    {
        assert_eq!(&pod_labels[k], v, "the PodMonitor does not select the pods");
    }
    let port = &w["spec"]["template"]["spec"]["containers"][0]["ports"][0]["name"];
    assert_eq!(&pm["spec"]["podMetricsEndpoints"][0]["port"], port);
}

#[test]
fn kube_prometheus_stack_variants_carry_the_release_label_where_the_stack_selects() {
    for dir in ["deploy/overlays/kube-prometheus-stack", PODMONITOR_EXAMPLE] {
        let objs = render(dir);
        let mut labelled = 0;
        for o in &objs {
            let selected = matches!(kind(o), "ServiceMonitor" | "PodMonitor" | "PrometheusRule")
                || (kind(o) == "ConfigMap"
                    && o["metadata"]["labels"]["grafana_dashboard"].as_str() == Some("1"));
            let release = o["metadata"]["labels"]["release"].as_str();
            if selected {
                assert_eq!(
                    release,
                    Some(RELEASE),
                    "{dir}: {} has no release label",
                    id(o)
                );
                labelled += 1;
            } else {
                assert_eq!(release, None, "{dir}: {} is labelled for no reason", id(o));
            }
        }
        // The scrape object, the PrometheusRule and at least one dashboard.
        assert!(labelled >= 3, "{dir}: {labelled} objects labelled");
    }
    // base itself stays neutral: no release label (other Prometheus installations).
    for o in render("deploy/base") {
        assert!(o["metadata"]["labels"]["release"].is_null(), "{}", id(&o));
    }
}
