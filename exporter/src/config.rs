//! The TOML configuration, with `DGE_`-prefixed environment overrides (`DGE_LISTEN`,
//! `DGE_ENGINE__LINGERING_SECS`, ...).

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

use crate::engine::EngineConfig;
use crate::error::{Error, Result};
use crate::sources::kube_json::PodAttribution;
use crate::sources::logs::{Placement, Rule};

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address the HTTP server listens on.
    pub listen: String,
    /// Log profile used when a file does not name one: `auto` (every built-in) or a name.
    pub profile: String,
    /// The bot of lines and pods that nothing else attributes.
    pub default_bot: Option<String>,
    /// How often the engine's time-driven detectors run, in milliseconds.
    pub tick_ms: u64,
    /// Longest line kept; the rest is counted and dropped.
    pub max_line_bytes: usize,
    pub engine: EngineConfig,
    /// How a pod's labels name its bot.
    pub attribution: PodAttribution,
    /// Log files to follow (`run`).
    #[serde(rename = "file")]
    pub files: Vec<FileSource>,
    /// Extra parsing rules, tried before or after the profile's own.
    #[serde(rename = "rule")]
    pub rules: Vec<Rule>,
    pub rule_placement: Placement,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "0.0.0.0:9464".into(),
            profile: "auto".into(),
            default_bot: None,
            tick_ms: 1000,
            max_line_bytes: 1 << 20,
            engine: EngineConfig::default(),
            attribution: PodAttribution::default(),
            files: Vec::new(),
            rules: Vec::new(),
            rule_placement: Placement::After,
        }
    }
}

/// A followed log file (or glob of them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSource {
    /// A path or glob (`/var/log/bots/*.log`); new matches are picked up.
    pub path: String,
    /// Pod (instance) name; default: from the file name or the kubelet path.
    #[serde(default)]
    pub pod: Option<String>,
    #[serde(default)]
    pub namespace: Option<String>,
    #[serde(default)]
    pub bot: Option<String>,
    #[serde(default)]
    pub profile: Option<String>,
    /// `auto`, `kubectl`, `cri` or `plain`.
    #[serde(default)]
    pub framing: Option<String>,
    /// Read an existing file from its start (true) or only what is appended (false).
    #[serde(default = "yes")]
    pub from_start: bool,
}

fn yes() -> bool {
    true
}

impl Config {
    /// Loads `path` (when given) over the defaults, then the environment over both.
    pub fn load(path: Option<&Path>) -> Result<Self> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(p) = path {
            if !p.exists() {
                return Err(Error::Config(format!("{}: no such file", p.display())));
            }
            fig = fig.merge(Toml::file_exact(p));
        }
        let cfg: Config = fig
            .merge(Env::prefixed("DGE_").split("__"))
            .extract()
            .map_err(|e| Error::Config(describe(e)))?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks what serde cannot: listen address, rules that compile, sane numbers.
    pub fn validate(&self) -> Result<()> {
        self.listen
            .parse::<std::net::SocketAddr>()
            .map_err(|e| Error::Config(format!("listen = {:?}: {e}", self.listen)))?;
        if self.tick_ms == 0 {
            return Err(Error::Config("tick_ms must be at least 1".into()));
        }
        self.compile_profile(&self.profile)?;
        for f in &self.files {
            if let Some(p) = &f.profile {
                self.compile_profile(p)?;
            }
            if let Some(fr) = &f.framing {
                fr.parse::<crate::sources::logs::Framing>()
                    .map_err(|e| Error::Config(format!("file {:?}: framing: {e}", f.path)))?;
            }
            glob::Pattern::new(&f.path)
                .map_err(|e| Error::Config(format!("file {:?}: {e}", f.path)))?;
        }
        Ok(())
    }

    /// The named profile with the user's rules added.
    pub fn compile_profile(
        &self,
        name: &str,
    ) -> Result<std::sync::Arc<crate::sources::logs::CompiledProfile>> {
        crate::sources::logs::compile_profile(name, self.rules.iter().cloned(), self.rule_placement)
            .map_err(|e| Error::Config(e.to_string()))
    }

    /// Where a config file was looked for, for messages.
    pub fn default_path() -> PathBuf {
        PathBuf::from("/etc/discord-gateway-exporter/exporter.toml")
    }
}

/// A figment error as one readable paragraph: what, where (key, file, line).
fn describe(e: figment::Error) -> String {
    e.into_iter()
        .map(|e| {
            let key = if e.path.is_empty() {
                String::new()
            } else {
                format!("key `{}`: ", e.path.join("."))
            };
            let from = e
                .metadata
                .as_ref()
                .map(|m| format!(" (from {})", m.name))
                .unwrap_or_default();
            format!("{key}{}{from}", e.kind)
        })
        .collect::<Vec<_>>()
        .join("; ")
}
