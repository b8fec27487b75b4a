//! What every log-reading source shares, gathered from the root config's top-level keys
//! (`profile`, `[bot_profiles]`, `[[rule]]`, `json_fields`, `max_line_bytes`, `log_timezone`,
//! `default_bot`, `[attribution]`): a source builds its readers from this, not from the root config, so the
//! config module depends on the sources and never the other way round.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::error::{Error, Result};
use dge_parse::kube_json::PodAttribution;
use dge_parse::logs::{CompiledProfile, LogZone, Placement, ProfileSet, Rule, StructuredFields};

/// The shared parsing settings of the log sources.
#[derive(Debug, Clone, PartialEq)]
pub struct LogSettings {
    /// The profile of streams nothing else names (`auto`: every built-in).
    pub profile: String,
    /// A bot's own profile (`AgentBroker = "openab"`).
    pub bot_profiles: BTreeMap<String, String>,
    /// The user's rules, added to every profile.
    pub rules: Vec<Rule>,
    pub rule_placement: Placement,
    pub json_fields: Option<StructuredFields>,
    /// Longest line kept.
    pub max_line_bytes: usize,
    /// The zone of zone-less times in plain logs (`log_timezone`, default UTC).
    pub zone: LogZone,
    /// The bot of lines and pods nothing else attributes.
    pub default_bot: Option<String>,
    /// How a pod's labels name its bot.
    pub attribution: PodAttribution,
}

impl LogSettings {
    /// The named profile with the user's rules added.
    pub fn compile(&self, name: &str) -> Result<Arc<CompiledProfile>> {
        dge_parse::logs::compile_profile_with(
            name,
            self.rules.iter().cloned(),
            self.rule_placement,
            self.json_fields.as_ref(),
        )
        .map_err(|source| Error::Profile {
            context: None,
            source,
        })
    }

    /// `profile` and the `[bot_profiles]`, compiled once: a stream asks for its bot's.
    pub fn profile_set(&self) -> Result<ProfileSet> {
        let mut set = ProfileSet::new(self.compile(&self.profile)?);
        for (bot, p) in &self.bot_profiles {
            set = set.with_bot(bot.clone(), self.compile(p)?);
        }
        Ok(set)
    }

    /// The profile of a stream: its own (`own`), else its bot's (`[bot_profiles]`), else
    /// `profile`. `bot` falls back to `default_bot`.
    pub fn profile_for(
        &self,
        own: Option<&str>,
        bot: Option<&str>,
    ) -> Result<Arc<CompiledProfile>> {
        let bot = bot.or(self.default_bot.as_deref());
        let name = own
            .or_else(|| {
                let b = bot?;
                self.bot_profiles
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(b))
                    .map(|(_, p)| p.as_str())
            })
            .unwrap_or(&self.profile);
        self.compile(name)
    }
}
