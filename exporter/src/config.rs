//! The TOML configuration, with `DGE_`-prefixed environment overrides (`DGE_LISTEN`,
//! `DGE_ENGINE__LINGERING_SECS`, ...).
//!
//! The root [`Config`] only gathers: each source's section is declared (and checked) next to
//! the source and gathered by the one list in `sources/mod.rs` ([`SourcesConfig`], flattened
//! in here), the sinks' next to the sink.

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::sources::files::FileSource;
use crate::sources::{LogSettings, SourcesConfig};
use dge_core::engine::{Engine, EngineConfig};
use dge_parse::kube_json::PodAttribution;
use dge_parse::logs::{Placement, Rule};

/// The whole configuration.
///
/// Not `deny_unknown_fields` (serde cannot with `flatten`): [`Config::from_figment`] rejects
/// unknown top-level keys itself; nested tables still deny their own.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
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
    /// The zone of times that a log line writes without one (`[2026-04-19 04:12:26]`): `UTC`
    /// (the default), an offset (`+02:00`) or an IANA name (`Europe/Berlin`). A container's
    /// timestamp, and a time with its own zone, are read as written.
    pub log_timezone: dge_parse::logs::LogZone,
    pub engine: EngineConfig,
    /// How a pod's labels name its bot.
    pub attribution: PodAttribution,
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
    /// OTLP export of session traces (`OTEL_*` variables override it).
    pub traces: crate::sinks::traces::TracesConfig,
    /// Opt-in remediation of deaf sessions (`[remediation]`, off by default).
    pub remediation: crate::actors::remediation::RemediationConfig,
    /// The status page at `/` (`[status]`: runbook links, reload, window).
    pub status: crate::sinks::status::StatusConfig,
    /// Every source's own keys (`[[file]]`, `[[bot]]`, `[kubernetes]`, ...).
    #[serde(flatten)]
    pub sources: SourcesConfig,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: "0.0.0.0:9464".into(),
            profile: "auto".into(),
            default_bot: None,
            tick_ms: 1000,
            max_line_bytes: 1 << 20,
            log_timezone: dge_parse::logs::LogZone::Utc,
            engine: EngineConfig::default(),
            attribution: PodAttribution::default(),
            rules: Vec::new(),
            rule_placement: Placement::After,
            bot_profiles: Default::default(),
            json_fields: None,
            traces: crate::sinks::traces::TracesConfig::default(),
            remediation: Default::default(),
            status: crate::sinks::status::StatusConfig::default(),
            sources: SourcesConfig::default(),
        }
    }
}

impl Config {
    /// The engine this configuration describes, with `engine` settings and `default_bot`:
    /// the `[[bot]]` names claim the pods of a workload of the same name (ignoring case and
    /// punctuation) from their first line, and their `events_visible` declares whether their
    /// logs show events.
    pub fn engine(&self, engine: EngineConfig, default_bot: Option<String>) -> Engine {
        let bots = &self.sources.discord.bots;
        let mut e = Engine::new(engine)
            .with_default_bot(default_bot)
            .with_known_bots(bots.iter().filter_map(|b| b.name.clone()));
        for b in bots {
            if let (Some(name), Some(v)) = (&b.name, b.events_visible) {
                e.declare_events_visible(name, v);
            }
        }
        e
    }

    /// Loads `path` (when given) over the defaults, then the environment over both.
    pub fn load(path: Option<&Path>) -> Result<Self> {
        let mut fig = Figment::from(Serialized::defaults(Config::default()));
        if let Some(p) = path {
            if !p.exists() {
                return Err(Error::ConfigMissing { path: p.into() });
            }
            fig = fig.merge(Toml::file_exact(p));
        }
        // `DGE_CONFIG` names the file (`run --config`): it is not a key of it.
        Self::from_figment(&fig.merge(Env::prefixed("DGE_").ignore(&["config"]).split("__")))
    }

    /// Deserializes and validates merged providers. A top-level key no part of the config
    /// owns is an error naming it and where it came from (file or `DGE_` variable).
    pub fn from_figment(fig: &Figment) -> Result<Self> {
        let known = top_level_keys();
        let given: figment::value::Dict = fig.extract().map_err(Error::config_file)?;
        if let Some(key) = given.keys().find(|k| !known.contains(k.as_str())) {
            let expected = known
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ");
            let mut e = figment::Error::from(figment::error::Kind::Message(format!(
                "unknown field: found `{key}`, expected one of {expected}"
            )));
            e.path = vec![key.clone()];
            e.metadata = fig.find_metadata(key).cloned();
            return Err(Error::config_file(e));
        }
        // The sections alone first: an error inside one keeps its key path and origin, which
        // serde's `flatten` drops from the whole config's error.
        SourcesConfig::extract_each(fig)?;
        let cfg: Config = fig.extract().map_err(Error::config_file)?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// Checks what serde cannot: listen address, rules that compile, sane numbers; each
    /// section (each source's too) through its own `validate`.
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
        self.traces.validate()?;
        self.remediation.validate()?;
        self.status.validate()?;
        self.sources.validate(&log)
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
            zone: self.log_timezone,
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

/// Every top-level key some part of the config owns: the keys the default serializes to (a
/// section serializes each of its keys, `None` as `null`).
fn top_level_keys() -> std::collections::BTreeSet<String> {
    match serde_json::to_value(Config::default()) {
        Ok(serde_json::Value::Object(m)) => m.into_iter().map(|(k, _)| k).collect(),
        other => unreachable!("the config serializes to a map: {other:?}"),
    }
}

#[cfg(test)]
mod discord_config_tests {
    use super::*;

    fn parse(toml: &str) -> Result<Config> {
        Config::from_figment(
            &Figment::from(Serialized::defaults(Config::default())).merge(Toml::string(toml)),
        )
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
        let d = &cfg.sources.discord;
        assert_eq!(d.bots.len(), 2);
        assert_eq!(d.bots[1].name, None);
        assert_eq!(d.discord.poll_interval_secs, 30);
        assert_eq!(d.discord.request_timeout_secs, 10);
        assert_eq!(d.discord.rejected_retry_secs, 3600);
        assert!(Config::default().sources.discord.bots.is_empty());
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

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml: &str) -> Result<Config> {
        Config::from_figment(
            &Figment::from(Serialized::defaults(Config::default())).merge(Toml::string(toml)),
        )
    }

    #[test]
    fn an_unknown_top_level_key_is_named_with_where_it_came_from() {
        let e = parse("listen = \"127.0.0.1:9464\"\nlisten_addr = \"x\"\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("key `listen_addr`: unknown field") && e.contains("TOML"),
            "{e}"
        );
        // What is expected lists every section's keys too.
        for k in [
            "`listen`",
            "`file`",
            "`positions_file`",
            "`bot`",
            "`kubernetes`",
        ] {
            assert!(e.contains(k), "{k} in {e}");
        }
        let from_env = Config::from_figment(
            &Figment::from(Serialized::defaults(Config::default()))
                .merge(Serialized::default("not_a_key", 1)),
        )
        .unwrap_err()
        .to_string();
        assert!(
            from_env.contains("key `not_a_key`: unknown field"),
            "{from_env}"
        );
    }

    #[test]
    fn every_sections_keys_are_accepted_where_they_were() {
        let cfg = parse(
            r#"
            positions_file = "/var/lib/dge/positions.json"
            [[file]]
            path = "/var/log/bots/*.log"
            bot = "AgentBroker"
            [[bot]]
            name = "AgentBroker"
            token_env = "DISCORD_TOKEN_AGENTBROKER"
            [discord]
            poll_interval_secs = 30
            [kubernetes]
            mode = "node"
            node_name = "node-a"
            "#,
        )
        .unwrap();
        let s = &cfg.sources;
        assert_eq!(s.files.files[0].bot.as_deref(), Some("AgentBroker"));
        assert_eq!(
            s.files.positions_file.as_deref(),
            Some(Path::new("/var/lib/dge/positions.json"))
        );
        assert_eq!(s.discord.bots[0].name.as_deref(), Some("AgentBroker"));
        assert_eq!(s.discord.discord.poll_interval_secs, 30);
        let k = s.kubernetes.kubernetes.as_ref().unwrap();
        assert_eq!(k.node_name.as_deref(), Some("node-a"));
        // A config with none of them has no source.
        let log = Config::default().log_settings();
        assert!(Config::default().sources.build(&log).unwrap().is_empty());
    }

    #[test]
    fn an_error_inside_a_section_keeps_its_key_path() {
        let e = parse("[[file]]\npath = \"/x\"\n[[bot]]\nname = \"A\"\ntoken = \"abc\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("key `bot.0.token`: unknown field"), "{e}");
        let e = parse("[kubernetes]\nmax_log_streams = \"many\"")
            .unwrap_err()
            .to_string();
        assert!(e.contains("key `kubernetes.max_log_streams`"), "{e}");
    }

    /// The sections' keys sit at the top level, as a user writes them, and a config survives
    /// the trip through the TOML it serializes to.
    #[test]
    fn a_config_round_trips_through_its_toml() {
        let cfg = Config {
            sources: SourcesConfig {
                files: crate::sources::files::FilesSection {
                    positions_file: Some("/p".into()),
                    ..Default::default()
                },
                ..Default::default()
            },
            ..Config::default()
        };
        let text = toml::to_string(&cfg).unwrap();
        assert!(text.starts_with("listen = ") && text.contains("\npositions_file = \"/p\"\n"));
        assert!(!text.contains("sources"), "{text}");
        assert_eq!(parse(&text).unwrap(), cfg, "{text}");
    }
}
