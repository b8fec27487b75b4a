//! "Report health when it changes", written once for every source: a source calls
//! [`Health::report`] as often as it likes, and a `SourceHealth` observation (hence
//! `source_up` and `/healthz`) goes out only when `up` or the detail changed.

use tokio::sync::mpsc;

use dge_core::observation::{Body, Observation, SourceHealth, Timestamp};

/// One source's health reporter.
pub struct Health {
    source: String,
    tx: mpsc::Sender<Observation>,
    last: Option<(bool, String)>,
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

    /// The last report sent: (up, detail).
    pub fn last(&self) -> Option<(bool, &str)> {
        self.last.as_ref().map(|(u, d)| (*u, d.as_str()))
    }

    /// Sends a health observation if it differs from the last one. False when the engine is
    /// gone (the source may stop).
    pub async fn report(&mut self, up: bool, detail: impl Into<String>) -> bool {
        let detail = detail.into();
        if self
            .last
            .as_ref()
            .is_some_and(|(u, d)| *u == up && *d == detail)
        {
            return true;
        }
        if !up && self.warn_when_down {
            tracing::warn!(source = %self.source, %detail, "source down");
        }
        let o = observation(chrono::Utc::now(), &self.source, up, detail.clone());
        self.last = Some((up, detail));
        self.tx.send(o).await.is_ok()
    }
}

/// A source-health observation.
fn observation(at: Timestamp, source: &str, up: bool, detail: impl Into<String>) -> Observation {
    Observation {
        at,
        source: source.into(),
        body: Body::SourceHealth(SourceHealth {
            source: source.to_string(),
            up,
            detail: detail.into(),
        }),
    }
}
