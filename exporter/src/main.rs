//! Command line only: parse, load config, wire, run.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use dge::cmd;
use dge::config::Config;

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

fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.log_format);
    let result = match cli.command {
        Command::Run {
            config,
            listen,
            record,
            bot,
        } => Config::load(config.as_deref()).and_then(|cfg| {
            runtime().block_on(cmd::run::run(
                cfg,
                cmd::run::RunOptions {
                    listen,
                    record,
                    bot,
                },
            ))
        }),
        Command::Replay {
            format,
            config,
            bot,
            paths,
        } => Config::load(config.as_deref()).and_then(|cfg| {
            cmd::replay::replay(&cfg, &paths, format, bot, &mut std::io::stdout().lock())
        }),
        Command::Demo {
            listen,
            speed,
            write_examples,
        } => match write_examples {
            Some(dir) => cmd::demo::write_examples(&dir),
            None => runtime().block_on(cmd::demo::demo(&listen, speed)),
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
