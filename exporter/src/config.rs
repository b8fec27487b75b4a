//! The TOML configuration, with `DGE_`-prefixed environment overrides (`DGE_LISTEN`,
//! `DGE_ENGINE__LINGERING_SECS`, ...).
//!
//! The root [`Config`] only gathers: each source's section is declared (and checked) next to
//! the source (`sources/*/config.rs`), the sinks' next to the sink.

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::sources::LogSettings;
use crate::sources::discord::config::{BotConfig, DiscordConfig, validate_bots};
use crate::sources::files::FileSource;
use crate::sources::kubernetes::KubernetesConfig;
use dge_core::engine::EngineConfig;
use dge_parse::kube_json::PodAttribution;
use dge_parse::logs::{Placement, Rule};

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
    /// Where `run` keeps how far each `[[file]]` was read, so that a restart neither re-reads
    /// nor skips lines; unset: every start reads as `from_start` says.
    pub positions_file: Option<PathBuf>,
    /// Extra parsing rules, tried before or after the profile's own.
    #[serde(rename = "rule")]
    pub rules: Vec<Rule>,
    pub rule_placement: Placement,
    /// The profile that reads a bot's logs (`[bot_profiles]`, `AgentBroker = "openab"`);
    /// streams of other bots use `profile`.
    pub bot_profiles: std::collections::BTreeMap<String, String>,
    /// Keys of JSON / logfmt lines (time, level, message, target, ...) for the profiles that
    /// decode them; unset: the profile's own mapping.
    pub json_fields: Option<dge_parse::logs::StructuredFields>,
    /// Bots whose session start limit is polled from Discord (`[[bot]]`).
    #[serde(rename = "bot")]
    pub bots: Vec<BotConfig>,
    /// How Discord is reached and polled.
    pub discord: DiscordConfig,
    /// The live Kubernetes sources (pod watch, pod logs); absent: off.
    pub kubernetes: Option<KubernetesConfig>,
    /// OTLP export of session traces (`OTEL_*` variables override it).
    pub traces: crate::sinks::traces::TracesConfig,
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
            positions_file: None,
            rules: Vec::new(),
            rule_placement: Placement::After,
            bot_profiles: Default::default(),
            json_fields: None,
            bots: Vec::new(),
            discord: DiscordConfig::default(),
            kubernetes: None,
            traces: crate::sinks::traces::TracesConfig::default(),
        }
    }
}

impl Config {
    /// Loads `path` (when given) over the defaults, then the environment over both.
    pub fn load(path: Option<&Path>) -> Result<Self> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(p) = path {
            if !p.exists() {
                return Err(Error::ConfigMissing { path: p.into() });
            }
            fig = fig.merge(Toml::file_exact(p));
        }
        let cfg: Config = fig
            .merge(Env::prefixed("DGE_").split("__"))
            .extract()
            .map_err(Error::config_file)?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks what serde cannot: listen address, rules that compile, sane numbers; each
    /// section through its own `validate`.
    pub fn validate(&self) -> Result<()> {
        self.listen
            .parse::<std::net::SocketAddr>()
            .map_err(|source| Error::ListenAddr {
                value: self.listen.clone(),
                source,
            })?;
        if self.tick_ms == 0 {
            return Err(Error::invalid("tick_ms", "must be at least 1"));
        }
        if let Some(j) = &self.json_fields {
            j.validate().map_err(|e| Error::invalid("json_fields", e))?;
        }
        let log = self.log_settings();
        log.compile(&self.profile)?;
        for (bot, p) in &self.bot_profiles {
            log.compile(p).map_err(|e| match e {
                Error::Profile { source, .. } => Error::Profile {
                    context: Some(format!("bot_profiles.{bot}")),
                    source,
                },
                other => other,
            })?;
        }
        for f in &self.files {
            f.validate(&log)?;
        }
        if let Some(p) = &self.positions_file
            && p.is_dir()
        {
            return Err(Error::invalid(
                format!("positions_file {:?}", p.display().to_string()),
                "is a directory (name the file to keep the positions in)",
            ));
        }
        if let Some(k) = &self.kubernetes {
            k.validate()?;
        }
        self.traces.validate()?;
        self.discord.validate()?;
        validate_bots(&self.bots)
    }

    /// The settings every log source shares (profiles, rules, line bound, attribution).
    pub fn log_settings(&self) -> LogSettings {
        LogSettings {
            profile: self.profile.clone(),
            bot_profiles: self.bot_profiles.clone(),
            rules: self.rules.clone(),
            rule_placement: self.rule_placement,
            json_fields: self.json_fields.clone(),
            max_line_bytes: self.max_line_bytes,
            default_bot: self.default_bot.clone(),
            attribution: self.attribution.clone(),
        }
    }

    /// The named profile with the user's rules added.
    pub fn compile_profile(
        &self,
        name: &str,
    ) -> Result<std::sync::Arc<dge_parse::logs::CompiledProfile>> {
        self.log_settings().compile(name)
    }

    /// `profile` and the `[bot_profiles]`, compiled once: a stream asks for its bot's.
    pub fn profile_set(&self) -> Result<dge_parse::logs::ProfileSet> {
        self.log_settings().profile_set()
    }

    /// The profile of a followed file: its own `profile`, else its bot's, else `profile`.
    pub fn file_profile(
        &self,
        spec: &FileSource,
    ) -> Result<std::sync::Arc<dge_parse::logs::CompiledProfile>> {
        self.log_settings()
            .profile_for(spec.profile.as_deref(), spec.bot.as_deref())
    }

    /// Where a config file was looked for, for messages.
    pub fn default_path() -> PathBuf {
        PathBuf::from("/etc/discord-gateway-exporter/exporter.toml")
    }
}

#[cfg(test)]
mod discord_config_tests {
    use super::*;

    fn parse(toml: &str) -> Result<Config> {
        let cfg: Config = Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::string(toml))
            .extract()
            .map_err(Error::config_file)?;
        cfg.validate()?;
        Ok(cfg)
    }

    fn err(toml: &str) -> String {
        parse(toml).unwrap_err().to_string()
    }

    #[test]
    fn bots_and_discord_settings() {
        let cfg = parse(
            r#"
            [[bot]]
            name = "AgentBroker"
            token_file = "/var/run/secrets/discord-bot-token/token"
            [[bot]]
            token_env = "DISCORD_TOKEN_TALLY"
            [discord]
            proxy = "127.0.0.1:8080"
            use_http = true
            poll_interval_secs = 30
            "#,
        )
        .unwrap();
        assert_eq!(cfg.bots.len(), 2);
        assert_eq!(cfg.bots[1].name, None);
        assert_eq!(cfg.discord.poll_interval_secs, 30);
        assert_eq!(cfg.discord.request_timeout_secs, 10);
        assert_eq!(cfg.discord.rejected_retry_secs, 3600);
        assert!(Config::default().bots.is_empty());
    }

    #[test]
    fn bad_bots_and_discord_settings_are_explained() {
        let both = err("[[bot]]\nname = \"A\"\ntoken_file = \"/t\"\ntoken_env = \"T\"");
        assert!(both.contains("both set"), "{both}");
        let neither = err("[[bot]]\nname = \"A\"");
        assert!(neither.contains("needs token_file"), "{neither}");
        let dge = err("[[bot]]\ntoken_env = \"DGE_TOKEN\"");
        assert!(dge.contains("DGE_ variables"), "{dge}");
        let twice = err(
            "[[bot]]\nname = \"A\"\ntoken_env = \"T\"\n[[bot]]\nname = \"a\"\ntoken_env = \"U\"",
        );
        assert!(twice.contains("configured twice"), "{twice}");
        let fast = err("[discord]\npoll_interval_secs = 5");
        assert!(fast.contains("at least 10"), "{fast}");
        let hammer = err("[discord]\nrejected_retry_secs = 60");
        assert!(hammer.contains("at least 3600"), "{hammer}");
        let scheme = err("[discord]\nproxy = \"http://127.0.0.1:8080\"");
        assert!(scheme.contains("host:port only"), "{scheme}");
        let token = err("[[bot]]\nname = \"A\"\ntoken = \"abc\"");
        assert!(token.contains("unknown field"), "{token}");
    }
}
