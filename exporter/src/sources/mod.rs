//! The outside world -> [`Observation`]s. Sources never decide anything: they translate and
//! count what they could not translate.
//!
//! Every source implements [`Source`] and is started the same way ([`start`]) with a
//! [`SourceContext`]: where observations go, when to stop, how to report health and where to
//! count. Its config section (the TOML keys it owns) is one type next to it implementing
//! [`SourceConfig`]; its line in `registry!` below declares the module and gathers the section
//! into [`SourcesConfig`], which the root `Config` flattens in and `run` builds from. Nothing
//! here reaches up into the sinks, the daemon, the commands or the root config (a unit test
//! below reads every file under `sources/` and fails if one does).
//!
//! Adding a source (say Docker/Compose logs):
//!
//! 1. `sources/docker/mod.rs` (and any files under `sources/docker/`):
//!    - a section type owning exactly the source's top-level TOML keys (say `[docker]`):
//!      `#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]` and
//!      `#[serde(default)]`, without `deny_unknown_fields` (it sees the whole top level; its
//!      nested tables may deny) or `skip_serializing_if` (the keys its `Default` serializes to
//!      are the keys it owns); implementing [`SourceConfig`]: `validate` (what serde cannot
//!      check), `build` (`None` when the section does not turn the source on);
//!    - a type implementing [`Source`]: it sends observations to `ctx.tx`, reports health with
//!      `ctx.health(name)`, counts lines with `ctx.metrics`, fires `ctx.ready` once its
//!      history is read back, and returns from its task after `ctx.shutdown`.
//! 2. `sources/mod.rs`: one line in `registry!` below, `docker: docker::DockerSection,`.
//!
//! Nothing else: `Config` loading and `check-config` validate it, `run` starts it, in registry
//! order. `exporter/tests/it/sources.rs` walks this with a test-only source gathered by the
//! same macro ([`gather_sources!`](crate::gather_sources)).

#[macro_use]
mod registry;

// The one list of sources, in start order.
registry! {
    files: files::FilesSection,
    discord: discord::DiscordSection,
    kubernetes: kubernetes::KubernetesSection,
}

pub mod health;
mod log_settings;
pub mod positions;
pub mod sim;

use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;

pub use health::Health;
pub use log_settings::LogSettings;

use crate::error::Result;
use crate::self_metrics::SelfMetrics;
use dge_core::observation::Observation;

/// A source's config section: the top-level TOML keys it owns, checked and turned into the
/// running source. Gathered into [`SourcesConfig`] by one line in `registry!`.
pub trait SourceConfig: Default + serde::Serialize + serde::de::DeserializeOwned {
    /// Checks what serde cannot (values that cannot work, profiles that do not compile), for
    /// `check-config` as for every start. What only exists where the daemon runs waits: a node
    /// name for [`build`](Self::build), a token for the source's start.
    fn validate(&self, log: &LogSettings) -> Result<()>;

    /// The source this section turns on, or `None` when the section does not configure it.
    fn build(&self, log: &LogSettings) -> Result<Option<Box<dyn Source>>>;
}

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

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    /// Every `.rs` file under `src/sources`.
    fn source_files() -> Vec<PathBuf> {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/sources");
        let mut files = Vec::new();
        let mut dirs = vec![root];
        while let Some(d) = dirs.pop() {
            for e in std::fs::read_dir(&d).expect("readable sources dir") {
                let p = e.expect("entry").path();
                if p.is_dir() {
                    dirs.push(p);
                } else if p.extension().is_some_and(|x| x == "rs") {
                    files.push(p);
                }
            }
        }
        assert!(files.len() > 10, "found the source files: {files:?}");
        files.sort();
        files
    }

    /// `cargo fmt` follows `mod` items but does not expand macros, so it never reaches the
    /// modules `registry!` declares: their files are checked here. Skipped without rustfmt.
    #[test]
    fn the_registered_sources_are_formatted() {
        let rustfmt = std::env::var_os("RUSTFMT").unwrap_or_else(|| "rustfmt".into());
        let run = || std::process::Command::new(&rustfmt);
        if !run()
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
        {
            eprintln!("no rustfmt: the formatting of src/sources is not checked");
            return;
        }
        let files = source_files();
        let out = run()
            .args(["--check", "--edition", "2024"])
            .args(&files)
            .output()
            .expect("rustfmt runs");
        assert!(
            out.status.success(),
            "src/sources is not formatted; `cargo fmt` does not reach the modules `registry!` \
             declares, run `rustfmt --edition 2024` on them:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The layering rule: sources depend on the observation model, `self_metrics`, `clock`
    /// and `error` only. A source reaching into a sink, the daemon, a command or the root config
    /// fails here, whether by a `use` line or a full path.
    #[test]
    fn no_source_reaches_up_into_sinks_daemon_commands_or_the_root_config() {
        let files = source_files();
        // Built, not written out, so that this test does not find itself.
        let forbidden: Vec<String> = ["crate", "dge"]
            .iter()
            .flat_map(|c| ["sinks", "daemon", "cmd", "config"].map(|m| format!("{c}::{m}")))
            .collect();
        let climb = "super::".repeat(3);
        let mut offences = Vec::new();
        for f in &files {
            let text = std::fs::read_to_string(f).expect("readable");
            for (n, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or("");
                // `super::` chains that climb out of `sources/` end at the crate root too.
                let climbs = code.contains(&climb);
                if climbs || forbidden.iter().any(|w| code.contains(w)) {
                    offences.push(format!("{}:{}: {}", f.display(), n + 1, line.trim()));
                }
            }
        }
        assert!(
            offences.is_empty(),
            "sources must not depend on sinks, daemon, commands or the root config:\n{}",
            offences.join("\n")
        );
    }
}
