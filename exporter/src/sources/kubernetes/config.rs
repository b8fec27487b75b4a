//! `[kubernetes]`: which pods are the bots, how their logs are read.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::KubernetesSource;
use crate::error::{Error, Result};
use crate::sources::{LogSettings, Source, SourceConfig};
use dge_parse::kube_json::PodAttribution;

/// The Kubernetes source's key: `[kubernetes]`, absent: off.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct KubernetesSection {
    /// The live Kubernetes sources (pod watch, pod logs).
    pub kubernetes: Option<KubernetesConfig>,
}

impl SourceConfig for KubernetesSection {
    fn validate(&self, _: &LogSettings) -> Result<()> {
        self.kubernetes
            .as_ref()
            .map_or(Ok(()), KubernetesConfig::validate)
    }

    /// Node mode resolves this node's name here (it exists where the daemon runs only).
    fn build(&self, log: &LogSettings) -> Result<Option<Box<dyn Source>>> {
        let s = KubernetesSource::new(self.kubernetes.as_ref(), log)?;
        Ok(s.map(|s| Box::new(s) as Box<dyn Source>))
    }
}

/// Where the bots' logs come from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// One exporter for the cluster: watch the pods, stream their logs through the API server.
    #[default]
    Cluster,
    /// One exporter per node (a DaemonSet): watch this node's pods, read the kubelet's CRI log
    /// files under `log_root`.
    Node,
}

/// `[kubernetes]`. Present: the pod watch (and, by `mode`, the pod logs) are sources of `run`.
///
/// The API server and credentials come from kube's own config loading: `KUBECONFIG`, then
/// `~/.kube/config`, then the in-cluster service account.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KubernetesConfig {
    pub mode: Mode,
    /// Namespaces to watch; empty: every namespace (needs the ClusterRole).
    pub namespaces: Vec<String>,
    /// Label selector of the bots' pods (`app.kubernetes.io/component=discord-bot`).
    pub label_selector: Option<String>,
    /// How a pod maps to a bot; unset: the top-level `[attribution]`.
    pub attribution: Option<PodAttribution>,
    /// This node's name (node mode); unset: the environment variable `node_name_env`.
    pub node_name: Option<String>,
    /// The environment variable holding the node name (the downward API's `spec.nodeName`).
    pub node_name_env: String,
    /// The kubelet's pod log directory (node mode).
    pub log_root: PathBuf,
    /// Where node mode remembers how far each log file was read, so that a restart neither
    /// re-reads nor skips lines; unset: every start reads the files from their beginning.
    pub positions_file: Option<PathBuf>,
    /// Concurrent pod log streams (cluster mode); the containers beyond it wait their turn.
    pub max_log_streams: usize,
    /// Lines read back from a container's log on first sight (cluster mode: `tailLines`), so
    /// the sessions already live are known before the next rollout.
    pub readback_lines: u64,
    /// How often node mode looks at the log files, in milliseconds.
    pub poll_ms: u64,
}

impl Default for KubernetesConfig {
    fn default() -> Self {
        Self {
            mode: Mode::Cluster,
            namespaces: Vec::new(),
            label_selector: None,
            attribution: None,
            node_name: None,
            node_name_env: "NODE_NAME".into(),
            log_root: PathBuf::from("/var/log/pods"),
            positions_file: None,
            max_log_streams: 200,
            readback_lines: 5000,
            poll_ms: 250,
        }
    }
}

impl KubernetesConfig {
    /// Checks what serde cannot (the node name is resolved at start, not here: `check-config`
    /// runs where the downward API does not).
    pub fn validate(&self) -> Result<()> {
        if self.max_log_streams == 0 {
            return Err(Error::invalid(
                "kubernetes.max_log_streams",
                "must be at least 1",
            ));
        }
        if self.poll_ms == 0 {
            return Err(Error::invalid("kubernetes.poll_ms", "must be at least 1"));
        }
        if i64::try_from(self.readback_lines).is_err() {
            return Err(Error::invalid("kubernetes.readback_lines", "is too large"));
        }
        let mut seen = std::collections::BTreeSet::new();
        for ns in &self.namespaces {
            if ns.is_empty() || ns.contains('/') {
                return Err(Error::invalid(
                    "kubernetes.namespaces",
                    format!("{ns:?} is not a namespace"),
                ));
            }
            if !seen.insert(ns) {
                return Err(Error::invalid(
                    "kubernetes.namespaces",
                    format!("{ns:?} listed twice"),
                ));
            }
        }
        if let Some(s) = &self.label_selector
            && s.trim().is_empty()
        {
            return Err(Error::invalid(
                "kubernetes.label_selector",
                "is empty (leave it unset for every pod)",
            ));
        }
        if self.mode == Mode::Node && self.node_name.is_none() && self.node_name_env.is_empty() {
            return Err(Error::invalid(
                "kubernetes",
                "node mode needs node_name or node_name_env",
            ));
        }
        Ok(())
    }

    /// The node name in node mode: `node_name`, else the environment variable.
    pub fn resolve_node_name(&self) -> Result<String> {
        if let Some(n) = self.node_name.as_ref().filter(|n| !n.is_empty()) {
            return Ok(n.clone());
        }
        match std::env::var(&self.node_name_env) {
            Ok(n) if !n.trim().is_empty() => Ok(n.trim().to_owned()),
            _ => Err(Error::invalid(
                "kubernetes",
                format!(
                    "node mode needs this node's name: set node_name, or ${} (the downward \
                     API's spec.nodeName)",
                    self.node_name_env
                ),
            )),
        }
    }

    /// The pod attribution in force: this section's, else the top-level one.
    pub fn attribution_or<'a>(&'a self, top: &'a PodAttribution) -> &'a PodAttribution {
        self.attribution.as_ref().unwrap_or(top)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_deploy_shapes_parse_and_validate() {
        let node: KubernetesConfig = toml::from_str(
            r#"
            mode = "node"
            node_name_env = "NODE_NAME"
            log_root = "/var/log/pods"
            positions_file = "/var/lib/discord-gateway-exporter/positions.json"
            namespaces = []
            label_selector = "app.kubernetes.io/component=discord-bot"
            [attribution]
            label = "app.kubernetes.io/name"
            "#,
        )
        .unwrap();
        assert_eq!(node.mode, Mode::Node);
        assert!(node.validate().is_ok());
        assert_eq!(node.max_log_streams, 200);
        let cluster: KubernetesConfig = toml::from_str("namespaces = [\"bots\"]").unwrap();
        assert_eq!(cluster.mode, Mode::Cluster);
        assert!(cluster.attribution.is_none());
    }

    #[test]
    fn bad_values_are_explained() {
        let bad = |s: &str| -> String {
            match toml::from_str::<KubernetesConfig>(s) {
                Ok(c) => c.validate().unwrap_err().to_string(),
                Err(e) => e.to_string(),
            }
        };
        assert!(bad("max_log_streams = 0").contains("at least 1"));
        assert!(bad("namespaces = [\"a\", \"a\"]").contains("twice"));
        assert!(bad("label_selector = \" \"").contains("empty"));
        assert!(bad("mode = \"everywhere\"").contains("unknown variant"));
        assert!(bad("kubeconfig = \"/x\"").contains("unknown field"));
        let named = KubernetesConfig {
            mode: Mode::Node,
            node_name: Some("node-a".into()),
            ..KubernetesConfig::default()
        };
        assert_eq!(named.resolve_node_name().unwrap(), "node-a");
        let unset = KubernetesConfig {
            mode: Mode::Node,
            node_name_env: "DGE_TEST_SURELY_UNSET_NODE".into(),
            ..KubernetesConfig::default()
        };
        assert!(
            unset
                .resolve_node_name()
                .unwrap_err()
                .to_string()
                .contains("spec.nodeName")
        );
    }
}
