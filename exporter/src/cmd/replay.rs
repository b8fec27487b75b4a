//! `replay`: a post-mortem of recorded captures.

use std::io::Write;
use std::path::PathBuf;

use serde_json::json;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::sinks::status::{self, SourceLine};
use crate::sinks::timeline;
use dge_parse::replay::{ReadOptions, open_paths};

/// Output format of `replay`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Text,
    Json,
    /// The status page of the whole capture, self-contained (`sinks::status`).
    Html,
}

/// Reads `paths`, runs the engine over them and writes the report to `out`.
pub fn replay(
    cfg: &Config,
    paths: &[PathBuf],
    format: Format,
    bot: Option<String>,
    out: &mut dyn Write,
) -> Result<()> {
    replay_with_traces(cfg, paths, format, bot, out, None)
}

/// [`replay`], also exporting the incident's session and handover spans with their original
/// times through `traces` (`replay --otlp`). The caller flushes the pipeline.
pub fn replay_with_traces(
    cfg: &Config,
    paths: &[PathBuf],
    format: Format,
    bot: Option<String>,
    out: &mut dyn Write,
    traces: Option<&crate::sinks::traces::Traces>,
) -> Result<()> {
    let profile = cfg.compile_profile(&cfg.profile)?;
    let default_bot = bot.or_else(|| cfg.default_bot.clone());
    let opts = ReadOptions {
        profile,
        attribution: &cfg.attribution,
        default_bot: default_bot.clone(),
        max_line_bytes: cfg.max_line_bytes,
        zone: cfg.log_timezone,
    };
    let mut input = open_paths(paths, &opts)?;
    let mut engine_cfg = cfg.engine.clone();
    // A post-mortem keeps every pod it saw until the end.
    engine_cfg.retention_secs = u64::MAX;
    engine_cfg.max_closed_findings = usize::MAX;
    let mut engine = cfg.engine(engine_cfg, default_bot);
    // `[remediation]` on: what the actor would have done, and when (a capture has no
    // cluster to act on, so `on` replays as a dry run).
    let mut planner = crate::actors::remediation::OfflinePlanner::new(cfg.remediation.clone());
    match traces {
        None => engine.run_to_end_with(&mut input, |e| {
            planner.after(e);
            e.take_changes();
        }),
        Some(t) => {
            // No segments: a recorded session's whole span is exported at once.
            let mut sink = t.sink(false);
            engine.run_to_end_with(&mut input, |e| {
                planner.after(e);
                let Some(now) = e.now() else { return };
                for c in e.take_changes() {
                    sink.apply(&c, now);
                }
                sink.advance(now);
            });
            if let Some(now) = engine.now() {
                sink.finish(now);
            }
        }
    }
    let files = input.reports();
    let findings = engine.all_findings();
    let write = |out: &mut dyn Write, s: &str| {
        out.write_all(s.as_bytes()).map_err(|source| Error::Write {
            what: "writing the report",
            source,
        })
    };
    match format {
        Format::Json => {
            let sessions: Vec<_> = engine.sessions().collect();
            let doc = json!({
                "findings": findings,
                "sessions": sessions,
                "inputs": files,
            });
            let mut s = serde_json::to_string_pretty(&doc).expect("serializable");
            s.push('\n');
            write(out, &s)
        }
        Format::Html => {
            let inputs: Vec<SourceLine> = files
                .iter()
                .map(|f| SourceLine {
                    name: format!("{} ({})", f.path.display(), f.kind),
                    up: f.problems.is_empty(),
                    detail: std::iter::once(format!(
                        "{} matched, {} ignored, {} malformed",
                        f.matched, f.ignored, f.malformed
                    ))
                    .chain(f.problems.iter().map(|p| format!("problem: {p}")))
                    .collect::<Vec<_>>()
                    .join("; "),
                })
                .collect();
            let snap = engine.snapshot();
            write(
                out,
                &status::render(&snap, &inputs, &cfg.status, status::Mode::Replay),
            )
        }
        Format::Text => {
            let end = engine.now().unwrap_or_default();
            let instances: Vec<_> = engine.instances().collect();
            let sessions: Vec<_> = engine.sessions().collect();
            let bots = timeline::pod_bots(&sessions, &findings);
            let bot_of =
                |ns: &str, pod: &str| bots.get(&(ns.to_string(), pod.to_string())).cloned();
            let mut s = timeline::render(&instances, &sessions, &findings, end, bot_of);
            s.push_str("Inputs:\n");
            for f in &files {
                s.push_str(&format!(
                    "  {} ({}): {} matched, {} ignored, {} malformed\n",
                    f.path.display(),
                    f.kind,
                    f.matched,
                    f.ignored,
                    f.malformed
                ));
                for p in &f.problems {
                    s.push_str(&format!("    problem: {p}\n"));
                }
            }
            write(out, &s)
        }
    }
}
