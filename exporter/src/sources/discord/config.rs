//! `[[bot]]` and `[discord]`: whose session start limit is polled, and how.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::DiscordSource;
use crate::error::{Error, Result};
use crate::sources::{LogSettings, Source, SourceConfig};

/// The Discord source's keys: the bots polled, and how.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DiscordSection {
    /// Bots whose session start limit is polled from Discord (`[[bot]]`).
    #[serde(rename = "bot")]
    pub bots: Vec<BotConfig>,
    /// How Discord is reached and polled.
    pub discord: DiscordConfig,
}

impl SourceConfig for DiscordSection {
    fn validate(&self, _: &LogSettings) -> Result<()> {
        self.discord.validate()?;
        validate_bots(&self.bots)
    }

    /// Tokens are read when each poller starts, not here.
    fn build(&self, _: &LogSettings) -> Result<Option<Box<dyn Source>>> {
        let s = DiscordSource::new(&self.bots, &self.discord);
        Ok(s.map(|s| Box::new(s) as Box<dyn Source>))
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
    /// The token may be absent (an optional Secret, a variable left unset): while it is, this
    /// bot's Discord source is *disabled* (logged, shown in `/healthz` and `/readyz`, no
    /// `source_up` series, no alert) instead of down, and it starts polling when the token
    /// appears. A token that is there but unreadable is down either way.
    #[serde(default)]
    pub optional: bool,
    /// Whether the bot's logs show the events it receives (a line per event or handled
    /// message); unset: learned from its lines. `false` keeps an unverifiable session a
    /// warning even after an old event line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events_visible: Option<bool>,
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

impl DiscordConfig {
    /// Sane timing and a `host:port` proxy.
    pub fn validate(&self) -> Result<()> {
        if self.poll_interval_secs < MIN_POLL_INTERVAL_SECS {
            return Err(Error::invalid_value(
                "discord.poll_interval_secs",
                self.poll_interval_secs,
                format!("at least {MIN_POLL_INTERVAL_SECS}"),
            ));
        }
        if !(1..=300).contains(&self.request_timeout_secs) {
            return Err(Error::invalid_value(
                "discord.request_timeout_secs",
                self.request_timeout_secs,
                "between 1 and 300",
            ));
        }
        if self.rejected_retry_secs < MIN_REJECTED_RETRY_SECS {
            return Err(Error::invalid_value(
                "discord.rejected_retry_secs",
                self.rejected_retry_secs,
                format!(
                    "at least {MIN_REJECTED_RETRY_SECS} (Discord bans an IP that sends too many \
                     invalid requests)"
                ),
            ));
        }
        if let Some(p) = &self.proxy
            && (p.contains("://") || p.contains('/') || p.trim().is_empty())
        {
            return Err(Error::invalid_value(
                "discord.proxy",
                format!("{p:?}"),
                "host:port only (use_http chooses http or https)",
            ));
        }
        Ok(())
    }
}

/// `[[bot]]`: one token source per bot, unique names (the token itself is never read here).
pub fn validate_bots(bots: &[BotConfig]) -> Result<()> {
    let mut names = std::collections::BTreeSet::new();
    for (i, b) in bots.iter().enumerate() {
        let what = match &b.name {
            Some(n) => format!("[[bot]] {n:?}"),
            None => format!("[[bot]] #{}", i + 1),
        };
        match (&b.token_file, &b.token_env) {
            (Some(_), Some(_)) => {
                return Err(Error::invalid(
                    what,
                    "token_file and token_env both set; choose one",
                ));
            }
            (None, None) => {
                return Err(Error::invalid(
                    what,
                    "needs token_file (a mounted Secret) or token_env",
                ));
            }
            (None, Some(v)) if v.is_empty() || v.contains('=') => {
                return Err(Error::invalid(
                    what,
                    "token_env must name an environment variable",
                ));
            }
            (None, Some(v)) if v.to_ascii_uppercase().starts_with("DGE_") => {
                return Err(Error::invalid(
                    what,
                    format!(
                        "token_env = {v:?}: DGE_ variables are read as configuration; name the \
                         token's variable otherwise (DISCORD_TOKEN_...)"
                    ),
                ));
            }
            _ => {}
        }
        if let Some(n) = &b.name {
            if n.trim().is_empty() {
                return Err(Error::invalid(what, "name is empty"));
            }
            if !names.insert(n.to_ascii_lowercase()) {
                return Err(Error::invalid(what, "configured twice"));
            }
        }
    }
    Ok(())
}
