//! The profiles of one configuration, by bot.

use std::sync::Arc;

use super::CompiledProfile;

/// The profiles of one configuration: the default, and the ones named per bot. Compiled once;
/// a stream asks for its bot's.
#[derive(Debug, Clone)]
pub struct ProfileSet {
    default: Arc<CompiledProfile>,
    by_bot: Vec<(String, Arc<CompiledProfile>)>,
}

impl ProfileSet {
    pub fn new(default: Arc<CompiledProfile>) -> Self {
        Self {
            default,
            by_bot: Vec::new(),
        }
    }

    /// Use `profile` for the streams of `bot` (names compare without case).
    pub fn with_bot(mut self, bot: impl Into<String>, profile: Arc<CompiledProfile>) -> Self {
        self.by_bot.push((bot.into(), profile));
        self
    }

    /// The profile for a stream of `bot` (the default when the bot is unknown or has none).
    pub fn for_bot(&self, bot: Option<&str>) -> Arc<CompiledProfile> {
        bot.and_then(|b| {
            self.by_bot
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(b))
                .map(|(_, p)| Arc::clone(p))
        })
        .unwrap_or_else(|| Arc::clone(&self.default))
    }

    pub fn default_profile(&self) -> &Arc<CompiledProfile> {
        &self.default
    }
}
