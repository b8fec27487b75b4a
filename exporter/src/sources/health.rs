//! "Report health when it changes", written once for every source: a source calls
//! [`Health::report`] as often as it likes, and a `SourceHealth` observation (hence
//! `source_up` and `/healthz`) goes out only when `up` or the detail changed.

use tokio::sync::mpsc;

use dge_core::observation::{Body, Observation, SourceHealth, Timestamp};

/// What a report says about a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Up,
    Down,
    Disabled,
}

/// One source's health reporter.
pub struct Health {
    source: String,
    tx: mpsc::Sender<Observation>,
    last: Option<(State, String)>,
    warn_when_down: bool,
}

impl Health {
    /// A reporter for `source` that logs a warning each time the source goes down with a new
    /// detail.
    pub fn new(source: impl Into<String>, tx: mpsc::Sender<Observation>) -> Self {
        Self {
            source: source.into(),
            tx,
            last: None,
            warn_when_down: true,
        }
    }

    /// No warning of its own: for sources that log their failures themselves (once per streak,
    /// as the Discord poller does), where the detail changes on every try.
    pub fn quiet(mut self) -> Self {
        self.warn_when_down = false;
        self
    }

    /// The source name the reports carry.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// The last report sent: (up, detail); a disabled source is not up.
    pub fn last(&self) -> Option<(bool, &str)> {
        self.last
            .as_ref()
            .map(|(s, d)| (*s == State::Up, d.as_str()))
    }

    /// Whether the last report said the source is disabled.
    pub fn is_disabled(&self) -> bool {
        self.last
            .as_ref()
            .is_some_and(|(s, _)| *s == State::Disabled)
    }

    /// Sends a health observation if it differs from the last one. False when the engine is
    /// gone (the source may stop).
    pub async fn report(&mut self, up: bool, detail: impl Into<String>) -> bool {
        let state = if up { State::Up } else { State::Down };
        self.send(state, detail.into()).await
    }

    /// Reports the source disabled by configuration (no `source_up` series, no alert), if it
    /// was not already with this detail. False when the engine is gone.
    pub async fn disabled(&mut self, detail: impl Into<String>) -> bool {
        self.send(State::Disabled, detail.into()).await
    }

    async fn send(&mut self, state: State, detail: String) -> bool {
        if self
            .last
            .as_ref()
            .is_some_and(|(s, d)| *s == state && *d == detail)
        {
            return true;
        }
        if state == State::Down && self.warn_when_down {
            tracing::warn!(source = %self.source, %detail, "source down");
        }
        let o = observation(chrono::Utc::now(), &self.source, state, detail.clone());
        self.last = Some((state, detail));
        self.tx.send(o).await.is_ok()
    }
}

/// A source-health observation.
fn observation(at: Timestamp, source: &str, state: State, detail: String) -> Observation {
    Observation {
        at,
        source: source.into(),
        body: Body::SourceHealth(SourceHealth {
            source: source.to_string(),
            up: state == State::Up,
            detail,
            disabled: state == State::Disabled,
        }),
    }
}
