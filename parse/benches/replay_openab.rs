//! Benchmark: replay a generated OpenAB log behind `kubectl logs --timestamps` through the
//! whole parse-and-correlate path (the same code `replay` runs), and report lines/s, CPU
//! seconds and peak RSS.
//!
//! `cargo bench --bench replay_openab [-- LINES [ansi]]` (default 1,000,000 plain lines).
//! The generated file is kept under `target/bench-data/` so the CLI can be timed on it too:
//! `/usr/bin/time -v target/release/discord-gateway-exporter replay --format json FILE`.

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use dge_core::engine::{Engine, EngineConfig};
use dge_parse::kube_json::PodAttribution;
use dge_parse::logs::builtin_profile;
use dge_parse::replay::{ReadOptions, open_paths};

fn generate(path: &PathBuf, lines: usize, ansi: bool) -> std::io::Result<u64> {
    let mut w = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let start = chrono::DateTime::parse_from_rfc3339("2026-04-19T00:00:00Z")
        .unwrap()
        .to_utc();
    let (dim, reset, green, italic) = if ansi {
        ("\x1b[2m", "\x1b[0m", "\x1b[32m", "\x1b[3m")
    } else {
        ("", "", "", "")
    };
    let mut x: u64 = 42;
    for i in 0..lines {
        // ~10 lines per second of log time: a busy bot.
        let t = start + chrono::TimeDelta::microseconds(i as i64 * 100_000 + (i as i64 % 7) * 311);
        let k = t.to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
        let ts = t.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let msg = if i == 0 {
            format!(
                "{dim}openab::discord{reset}{dim}:{reset} discord bot connected {italic}user{reset}{dim}={reset}AgentBroker"
            )
        } else {
            match x % 10 {
                0..=5 => format!(
                    "dispatch{{channel=1496011987654321098 adapter=\"discord\"}}: {dim}openab::dispatch{reset}{dim}:{reset} batch dispatched {italic}thread_key{reset}{dim}={reset}discord:1496011987654321098 events_per_dispatch=1 packed_block_count=2 agent_dispatch_ms={} tokens_per_event=[37] wait_ms=[4] senders=[\"alice\"]",
                    x % 20000
                ),
                6 => format!(
                    "{dim}openab::discord{reset}{dim}:{reset} denied user, ignoring user_id={}",
                    x % 1_000_000_000
                ),
                7 => format!(
                    "{dim}openab::discord{reset}{dim}:{reset} registered guild slash commands guild_id=1491295327620169908"
                ),
                8 => format!(
                    "{dim}openab::acp{reset}{dim}:{reset} agent session refreshed pool_size=3 idle_ms={}",
                    x % 5000
                ),
                _ => format!(
                    "{dim}openab::discord{reset}{dim}:{reset} failed to create thread: A thread has already been created for this message"
                ),
            }
        };
        writeln!(w, "{k} {dim}{ts}{reset} {green} INFO{reset} {msg}")?;
    }
    w.flush()?;
    Ok(std::fs::metadata(path)?.len())
}

fn proc_status(key: &str) -> Option<u64> {
    std::fs::read_to_string("/proc/self/status")
        .ok()?
        .lines()
        .find(|l| l.starts_with(key))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// (user + system) CPU seconds of this process.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // Fields after the command: state is [0], utime [11], stime [12]; clock ticks are 100 Hz.
    (ticks(11) + ticks(12)) / 100.0
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let lines: usize = args
        .first()
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let ansi = args.iter().any(|a| a == "ansi");
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/bench-data");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!(
        "agentbroker-6c9f7d8b4-k2x7q-{lines}{}.log",
        if ansi { "-ansi" } else { "" }
    ));
    let bytes = if path.exists() {
        std::fs::metadata(&path).unwrap().len()
    } else {
        generate(&path, lines, ansi).unwrap()
    };
    let rss_before = proc_status("VmRSS:").unwrap_or(0);

    let attribution = PodAttribution::default();
    let opts = ReadOptions {
        profile: builtin_profile("auto").unwrap(),
        attribution: &attribution,
        default_bot: None,
        max_line_bytes: 1 << 20,
        zone: Default::default(),
    };
    let cpu0 = cpu_seconds();
    let t0 = Instant::now();
    let mut replay = open_paths(std::slice::from_ref(&path), &opts).unwrap();
    let cfg = EngineConfig {
        retention_secs: u64::MAX,
        ..EngineConfig::default()
    };
    let mut engine = Engine::new(cfg);
    if args.iter().any(|a| a == "parse-only") {
        // Where the time goes: the readers alone, without the engine.
        for _ in replay.by_ref() {}
    } else {
        engine.run_to_end(&mut replay);
    }
    let wall = t0.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    let report = &replay.reports()[0];
    let read = report.matched + report.ignored + report.malformed;
    assert_eq!(read as usize, lines, "every line counted");
    let events: u64 = engine.sessions().map(|s| s.events).sum();
    println!(
        "file            {} ({:.1} MB, {lines} lines, ansi={ansi})",
        path.display(),
        bytes as f64 / 1e6
    );
    println!(
        "outcomes        matched={} ignored={} malformed={}",
        report.matched, report.ignored, report.malformed
    );
    println!("sessions/events {} / {events}", engine.sessions().count());
    println!("wall            {wall:.3} s");
    println!("cpu             {cpu:.2} s");
    println!("lines/s (wall)  {:.0}", lines as f64 / wall);
    println!("lines per cpu-s {:.0}", lines as f64 / cpu.max(0.01));
    println!(
        "peak RSS        {:.1} MB (VmHWM; {:.1} MB before the replay)",
        proc_status("VmHWM:").unwrap_or(0) as f64 / 1024.0,
        rss_before as f64 / 1024.0
    );
}
