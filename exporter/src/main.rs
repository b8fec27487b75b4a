//! Command line only: parse, load config, wire, run.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use dge::cmd;
use dge::config::Config;
use dge::sinks::traces::{Traces, TracesConfig};
use dge::telemetry;

#[derive(Parser)]
#[command(
    name = "discord-gateway-exporter",
    version,
    about = "Detects connected-but-silent, concurrent and duplicate Discord Gateway sessions of bots on Kubernetes"
)]
struct Cli {
    /// Diagnostics format of the exporter's own log (stderr).
    #[arg(long, global = true, value_enum, default_value = "text")]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon: follow the configured sources, serve /metrics and the API.
    Run {
        #[arg(long, env = "DGE_CONFIG")]
        config: Option<PathBuf>,
        /// Listen address (overrides the config's `listen`).
        #[arg(long)]
        listen: Option<String>,
        /// Append every observation as JSON lines to FILE (replayable).
        #[arg(long)]
        record: Option<PathBuf>,
        /// Bot of lines and pods nothing else attributes.
        #[arg(long)]
        bot: Option<String>,
    },
    /// Post-mortem of recorded captures (files or folders): timeline and findings.
    Replay {
        #[arg(long, value_enum, default_value = "text")]
        format: cmd::replay::Format,
        #[arg(long)]
        config: Option<PathBuf>,
        /// Bot of lines and pods nothing else attributes.
        #[arg(long)]
        bot: Option<String>,
        /// Export the incident's traces (sessions, handovers, findings) with their original
        /// times over OTLP: OTEL_EXPORTER_OTLP_* or the config's [traces], else localhost:4317.
        #[arg(long)]
        otlp: bool,
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// The daemon on a built-in simulated fleet that goes through the incident.
    Demo {
        #[arg(long, default_value = "127.0.0.1:9464")]
        listen: String,
        /// How many times faster than real time the simulation runs.
        #[arg(long, default_value_t = 10.0)]
        speed: f64,
        /// Write the recorded incidents (examples/) instead of running.
        #[arg(long, value_name = "DIR")]
        write_examples: Option<PathBuf>,
    },
    /// Check a config file and explain what is wrong and where.
    CheckConfig { file: Option<PathBuf> },
    /// Show how each line of a log is classified.
    Parse {
        #[arg(long, default_value = "auto")]
        profile: String,
        #[arg(long)]
        config: Option<PathBuf>,
        /// A log file, or `-` for standard input.
        file: PathBuf,
    },
}

/// Builds the trace pipeline (inside `rt`: the gRPC exporter needs it) and the daemon's own
/// tracing, with trace export when traces are configured.
fn start_traces(
    rt: &tokio::runtime::Runtime,
    cfg: &TracesConfig,
    force: bool,
    json: bool,
) -> Result<Option<Traces>, dge::Error> {
    let traces = {
        let _entered = rt.enter();
        Traces::from_config(cfg, force)
    };
    match traces {
        Ok(t) => {
            telemetry::init(json, t.as_ref());
            if let Some(t) = &t {
                tracing::info!(status = ?t.export().status(), "exporting traces over OTLP");
            }
            Ok(t)
        }
        Err(e) => {
            telemetry::init(json, None);
            Err(e)
        }
    }
}

/// Flushes what is queued (bounded: an unreachable collector cannot hold the exit).
fn stop_traces(rt: &tokio::runtime::Runtime, traces: Option<Traces>) {
    if let Some(t) = traces {
        // The batch thread's export runs on the runtime: keep it alive while flushing.
        let _entered = rt.enter();
        t.shutdown(std::time::Duration::from_secs(5));
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let json = matches!(cli.log_format, LogFormat::Json);
    // Commands that may export traces set up tracing once the pipeline is built.
    let traced = matches!(
        &cli.command,
        Command::Run { .. }
            | Command::Demo {
                write_examples: None,
                ..
            }
            | Command::Replay { otlp: true, .. }
    );
    if !traced {
        telemetry::init(json, None);
    }
    let result = match cli.command {
        Command::Run {
            config,
            listen,
            record,
            bot,
        } => match Config::load(config.as_deref()) {
            Ok(cfg) => {
                let rt = runtime();
                start_traces(&rt, &cfg.traces, false, json).and_then(|traces| {
                    let r = rt.block_on(cmd::run::run(
                        cfg,
                        cmd::run::RunOptions {
                            listen,
                            record,
                            bot,
                            traces: traces.clone(),
                        },
                    ));
                    stop_traces(&rt, traces);
                    r
                })
            }
            Err(e) => {
                telemetry::init(json, None);
                Err(e)
            }
        },
        Command::Replay {
            format,
            config,
            bot,
            otlp,
            paths,
        } => match Config::load(config.as_deref()) {
            Ok(cfg) if otlp => {
                let rt = runtime();
                start_traces(&rt, &cfg.traces, true, json).and_then(|traces| {
                    let r = cmd::replay::replay_with_traces(
                        &cfg,
                        &paths,
                        format,
                        bot,
                        &mut std::io::stdout().lock(),
                        traces.as_ref(),
                    );
                    stop_traces(&rt, traces);
                    r
                })
            }
            Ok(cfg) => {
                cmd::replay::replay(&cfg, &paths, format, bot, &mut std::io::stdout().lock())
            }
            Err(e) => {
                telemetry::init(json, None);
                Err(e)
            }
        },
        Command::Demo {
            listen,
            speed,
            write_examples,
        } => match write_examples {
            Some(dir) => cmd::demo::write_examples(&dir),
            None => {
                // No config file: the OTEL_* variables alone turn traces on.
                let rt = runtime();
                start_traces(&rt, &TracesConfig::default(), false, json).and_then(|traces| {
                    let r = rt.block_on(cmd::demo::demo(&listen, speed, traces.clone()));
                    stop_traces(&rt, traces);
                    r
                })
            }
        },
        Command::CheckConfig { file } => {
            cmd::check::check(file.as_deref()).map(|s| println!("{s}"))
        }
        Command::Parse {
            profile,
            config,
            file,
        } => Config::load(config.as_deref()).and_then(|cfg| {
            cmd::parse::parse(&cfg, &profile, &file, &mut std::io::stdout().lock())
        }),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("discord-gateway-exporter: {e}");
            ExitCode::from(2)
        }
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}
