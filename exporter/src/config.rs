//! The TOML configuration, with `DGE_`-prefixed environment overrides (`DGE_LISTEN`,
//! `DGE_ENGINE__LINGERING_SECS`, ...).

use std::path::{Path, PathBuf};

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
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

/// A bot whose token the exporter may use to ask Discord for its session start limit. The
/// token comes from a file (a mounted Secret) or an environment variable, never from the
/// config itself or a flag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BotConfig {
    /// The `bot` label (as the logs name the bot); default: the token's bot name on Discord.
    #[serde(default)]
    pub name: Option<String>,
    /// A file holding the token (`Bot ` prefix optional, surrounding whitespace ignored).
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// An environment variable holding the token.
    #[serde(default)]
    pub token_env: Option<String>,
}

/// `[discord]`: where requests go and how often.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DiscordConfig {
    /// `host:port` of a Discord stand-in or twilight's http-proxy; unset: discord.com.
    pub proxy: Option<String>,
    /// Speak plain HTTP to `proxy` (HTTPS otherwise).
    pub use_http: bool,
    /// Seconds between `GET /gateway/bot` polls (jittered by ±10%); at least 10.
    pub poll_interval_secs: u64,
    /// Bound on one call (waiting, request and body), in seconds.
    pub request_timeout_secs: u64,
    /// Longest wait between tries while Discord keeps failing, in seconds.
    pub backoff_max_secs: u64,
    /// Wait before trying a rejected (401/403) token again, in seconds; at least 3600.
    pub rejected_retry_secs: u64,
}

/// Discord bans an IP after 10,000 invalid requests in 10 minutes: a rejected token is tried
/// at most once an hour.
pub const MIN_REJECTED_RETRY_SECS: u64 = 3600;
/// The poll interval is never shorter than this.
pub const MIN_POLL_INTERVAL_SECS: u64 = 10;

impl Default for DiscordConfig {
    fn default() -> Self {
        Self {
            proxy: None,
            use_http: false,
            poll_interval_secs: 60,
            request_timeout_secs: 10,
            backoff_max_secs: 900,
            rejected_retry_secs: MIN_REJECTED_RETRY_SECS,
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
        if let Some(j) = &self.json_fields {
            j.validate()
                .map_err(|e| Error::Config(format!("json_fields: {e}")))?;
        }
        self.compile_profile(&self.profile)?;
        for (bot, p) in &self.bot_profiles {
            self.compile_profile(p)
                .map_err(|e| Error::Config(format!("bot_profiles.{bot}: {e}")))?;
        }
        for f in &self.files {
            if let Some(p) = &f.profile {
                self.compile_profile(p)?;
            }
            if let Some(fr) = &f.framing {
                fr.parse::<dge_parse::logs::Framing>()
                    .map_err(|e| Error::Config(format!("file {:?}: framing: {e}", f.path)))?;
            }
            glob::Pattern::new(&f.path)
                .map_err(|e| Error::Config(format!("file {:?}: {e}", f.path)))?;
        }
        if let Some(p) = &self.positions_file
            && p.is_dir()
        {
            return Err(Error::Config(format!(
                "positions_file {:?}: is a directory (name the file to keep the positions in)",
                p.display().to_string()
            )));
        }
        if let Some(k) = &self.kubernetes {
            k.validate().map_err(Error::Config)?;
        }
        self.traces.validate()?;
        self.validate_discord()
    }

    /// `[[bot]]` and `[discord]`: one token source per bot, unique names, sane timing.
    fn validate_discord(&self) -> Result<()> {
        let d = &self.discord;
        if d.poll_interval_secs < MIN_POLL_INTERVAL_SECS {
            return Err(Error::Config(format!(
                "discord.poll_interval_secs = {}: at least {MIN_POLL_INTERVAL_SECS}",
                d.poll_interval_secs
            )));
        }
        if !(1..=300).contains(&d.request_timeout_secs) {
            return Err(Error::Config(format!(
                "discord.request_timeout_secs = {}: between 1 and 300",
                d.request_timeout_secs
            )));
        }
        if d.rejected_retry_secs < MIN_REJECTED_RETRY_SECS {
            return Err(Error::Config(format!(
                "discord.rejected_retry_secs = {}: at least {MIN_REJECTED_RETRY_SECS} (Discord \
                 bans an IP that sends too many invalid requests)",
                d.rejected_retry_secs
            )));
        }
        if let Some(p) = &d.proxy
            && (p.contains("://") || p.contains('/') || p.trim().is_empty())
        {
            return Err(Error::Config(format!(
                "discord.proxy = {p:?}: host:port only (use_http chooses http or https)"
            )));
        }
        let mut names = std::collections::BTreeSet::new();
        for (i, b) in self.bots.iter().enumerate() {
            let what = match &b.name {
                Some(n) => format!("[[bot]] {n:?}"),
                None => format!("[[bot]] #{}", i + 1),
            };
            match (&b.token_file, &b.token_env) {
                (Some(_), Some(_)) => {
                    return Err(Error::Config(format!(
                        "{what}: token_file and token_env both set; choose one"
                    )));
                }
                (None, None) => {
                    return Err(Error::Config(format!(
                        "{what}: needs token_file (a mounted Secret) or token_env"
                    )));
                }
                (None, Some(v)) if v.is_empty() || v.contains('=') => {
                    return Err(Error::Config(format!(
                        "{what}: token_env must name an environment variable"
                    )));
                }
                (None, Some(v)) if v.to_ascii_uppercase().starts_with("DGE_") => {
                    return Err(Error::Config(format!(
                        "{what}: token_env = {v:?}: DGE_ variables are read as configuration; \
                         name the token's variable otherwise (DISCORD_TOKEN_...)"
                    )));
                }
                _ => {}
            }
            if let Some(n) = &b.name {
                if n.trim().is_empty() {
                    return Err(Error::Config(format!("{what}: name is empty")));
                }
                if !names.insert(n.to_ascii_lowercase()) {
                    return Err(Error::Config(format!("{what}: configured twice")));
                }
            }
        }
        Ok(())
    }

    /// The named profile with the user's rules added.
    pub fn compile_profile(
        &self,
        name: &str,
    ) -> Result<std::sync::Arc<dge_parse::logs::CompiledProfile>> {
        dge_parse::logs::compile_profile_with(
            name,
            self.rules.iter().cloned(),
            self.rule_placement,
            self.json_fields.as_ref(),
        )
        .map_err(|e| Error::Config(e.to_string()))
    }

    /// `profile` and the `[bot_profiles]`, compiled once: a stream asks for its bot's.
    pub fn profile_set(&self) -> Result<dge_parse::logs::ProfileSet> {
        let mut set = dge_parse::logs::ProfileSet::new(self.compile_profile(&self.profile)?);
        for (bot, p) in &self.bot_profiles {
            set = set.with_bot(bot.clone(), self.compile_profile(p)?);
        }
        Ok(set)
    }

    /// The profile of a followed file: its own `profile`, else its bot's, else `profile`.
    pub fn file_profile(
        &self,
        spec: &FileSource,
    ) -> Result<std::sync::Arc<dge_parse::logs::CompiledProfile>> {
        let bot = spec.bot.as_deref().or(self.default_bot.as_deref());
        let name = spec
            .profile
            .as_deref()
            .or_else(|| {
                let b = bot?;
                self.bot_profiles
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(b))
                    .map(|(_, p)| p.as_str())
            })
            .unwrap_or(&self.profile);
        self.compile_profile(name)
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

#[cfg(test)]
mod discord_config_tests {
    use super::*;

    fn parse(toml: &str) -> Result<Config> {
        let cfg: Config = Figment::from(Serialized::defaults(Config::default()))
            .merge(Toml::string(toml))
            .extract()
            .map_err(|e| Error::Config(describe(e)))?;
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
