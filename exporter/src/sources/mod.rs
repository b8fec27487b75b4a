//! The outside world -> [`Observation`]s. Sources never decide anything: they translate and
//! count what they could not translate.
//!
//! Every source implements [`Source`] and is started the same way ([`start`]) with a
//! [`SourceContext`]: where observations go, when to stop, how to report health and where to
//! count. A source's config type lives next to it (`files/config.rs`, `discord/config.rs`,
//! `kubernetes/config.rs`); the root `Config` only gathers them. Nothing here reaches up into
//! the sinks or the daemon (a unit test checks the `use` lines).

pub mod discord;
pub mod files;
pub mod health;
pub mod kubernetes;
mod log_settings;
pub mod positions;
pub mod sim;

use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

pub use health::Health;
pub use log_settings::LogSettings;

use crate::self_metrics::SelfMetrics;
use dge_core::observation::Observation;

/// One kind of source (all `[[file]]`s, all `[[bot]]` pollers, `[kubernetes]`, ...): built from
/// its own config, then handed to [`start`], which gives it a [`SourceContext`].
pub trait Source: Send {
    /// What the source is, for the daemon's own log (`files`, `discord`, `kubernetes`).
    fn name(&self) -> &str;

    /// Starts the source's task(s). The returned task ends after shutdown, once the source
    /// has saved what it keeps across restarts (log positions): the daemon waits for it.
    fn spawn(self: Box<Self>, ctx: SourceContext) -> JoinHandle<()>;
}

/// What a running source is given.
pub struct SourceContext {
    /// Where observations go (to the engine task).
    pub tx: mpsc::Sender<Observation>,
    /// Turns true when the daemon stops.
    pub shutdown: watch::Receiver<bool>,
    /// The exporter's own counters (`log_lines_total`, `discord_requests_total`, ...).
    pub metrics: SelfMetrics,
    /// Fire once the source has read back its history; the daemon is ready when every source
    /// is. Dropping it counts as ready (a source that must not hold readiness back).
    pub ready: Ready,
}

impl SourceContext {
    /// A health reporter for `source` (one per `source_up` series) on this context's channel.
    pub fn health(&self, source: impl Into<String>) -> Health {
        Health::new(source, self.tx.clone())
    }
}

/// Readiness of one source: fired at most once.
pub struct Ready(Option<oneshot::Sender<()>>);

impl Ready {
    /// Says the source has read back its history (only the first call counts).
    pub fn fire(&mut self) {
        if let Some(r) = self.0.take() {
            let _ = r.send(());
        }
    }

    /// Whether it was not fired yet.
    pub fn pending(&self) -> bool {
        self.0.is_some()
    }
}

/// The started sources: their tasks and readiness.
pub struct Running {
    tasks: Vec<(String, JoinHandle<()>)>,
    ready: Vec<oneshot::Receiver<()>>,
}

/// Starts every source on one channel. Call inside the runtime.
pub fn start(
    sources: Vec<Box<dyn Source>>,
    tx: &mpsc::Sender<Observation>,
    shutdown: &watch::Receiver<bool>,
    metrics: &SelfMetrics,
) -> Running {
    let mut running = Running {
        tasks: Vec::new(),
        ready: Vec::new(),
    };
    for s in sources {
        let (ready_tx, ready_rx) = oneshot::channel();
        let name = s.name().to_owned();
        tracing::debug!(source = %name, "starting source");
        let task = s.spawn(SourceContext {
            tx: tx.clone(),
            shutdown: shutdown.clone(),
            metrics: metrics.clone(),
            ready: Ready(Some(ready_tx)),
        });
        running.tasks.push((name, task));
        running.ready.push(ready_rx);
    }
    running
}

impl Running {
    /// Resolves once every source is ready (fired or dropped its [`Ready`]).
    pub fn ready(&mut self) -> impl Future<Output = ()> + Send + 'static {
        let all = std::mem::take(&mut self.ready);
        async move {
            for r in all {
                let _ = r.await;
            }
        }
    }

    /// Waits (at most `limit` each) for the tasks to end after shutdown.
    pub async fn join(self, limit: Duration) {
        for (name, t) in self.tasks {
            if tokio::time::timeout(limit, t).await.is_err() {
                tracing::warn!(source = %name, "source did not stop in time");
            }
        }
    }
}
