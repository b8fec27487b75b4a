//! The exporter crate's one error type. Each variant carries what went wrong where, and the
//! underlying error as its `source`, so a caller can match on the kind and a user reads one
//! plain sentence (`main` prints the `Display`).

use std::path::PathBuf;

/// Everything that can stop a command. Bad *input lines* are not errors: they are counted and
/// skipped where they occur.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An I/O error on a named file.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A capture that cannot be read (`replay`, `parse`).
    #[error(transparent)]
    Capture(#[from] dge_parse::Error),
    /// The config file named on the command line does not exist.
    #[error("config: {}: no such file", path.display())]
    ConfigMissing { path: PathBuf },
    /// The config file or a `DGE_` variable does not deserialize: what, where (key, file).
    #[error("config: {}", describe(source))]
    ConfigFile {
        #[source]
        source: Box<figment::Error>,
    },
    /// A setting whose value cannot work (`value` shown when it helps).
    #[error("config: {key}{}: {reason}", value.as_ref().map(|v| format!(" = {v}")).unwrap_or_default())]
    InvalidValue {
        key: String,
        value: Option<String>,
        reason: String,
    },
    /// The listen address does not parse.
    #[error("config: listen = {value:?}: {source}")]
    ListenAddr {
        value: String,
        #[source]
        source: std::net::AddrParseError,
    },
    /// A `[[file]]` path that is not a valid glob.
    #[error("config: file {path:?}: {source}")]
    FilePattern {
        path: String,
        #[source]
        source: glob::PatternError,
    },
    /// A log profile or user rule that does not compile (`context`: the setting naming it).
    #[error("config: {}{source}", context.as_ref().map(|c| format!("{c}: ")).unwrap_or_default())]
    Profile {
        context: Option<String>,
        #[source]
        source: dge_parse::logs::ProfileError,
    },
    /// The OTLP trace exporter cannot be built from the `[traces]` / `OTEL_*` settings.
    #[error("config: OTLP exporter: {0}")]
    TraceExporter(#[source] opentelemetry_otlp::ExporterBuildError),
    /// Building the OTLP/HTTP exporter's client panicked.
    #[error("building the OTLP/HTTP exporter panicked")]
    TraceExporterPanicked,
    /// The HTTP server cannot listen.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    /// The HTTP server failed while serving.
    #[error("http server: {0}")]
    Serve(#[source] std::io::Error),
    /// Writing an output (`what`: the recording, the report, ...) failed.
    #[error("{what}: {source}")]
    Write {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// A task of the daemon panicked or was cancelled.
    #[error("{what} task: {source}")]
    Task {
        what: &'static str,
        #[source]
        source: tokio::task::JoinError,
    },
}

impl Error {
    /// An I/O error on a named file.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }

    /// A setting that cannot work: `key` names it (with its value when that reads better),
    /// `reason` says why.
    pub fn invalid(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidValue {
            key: key.into(),
            value: None,
            reason: reason.into(),
        }
    }

    /// A setting whose value is shown: `config: key = value: reason`.
    pub fn invalid_value(
        key: impl Into<String>,
        value: impl std::fmt::Display,
        reason: impl Into<String>,
    ) -> Self {
        Self::InvalidValue {
            key: key.into(),
            value: Some(value.to_string()),
            reason: reason.into(),
        }
    }

    /// A config that does not deserialize.
    pub fn config_file(source: figment::Error) -> Self {
        Self::ConfigFile {
            source: Box::new(source),
        }
    }
}

/// A figment error as one readable paragraph: what, where (key, file, line).
fn describe(e: &figment::Error) -> String {
    e.clone()
        .into_iter()
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

/// Result with the crate's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;
