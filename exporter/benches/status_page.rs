//! Benchmark: the status page (`/`) of a large fleet. A simulated fleet of BOTS bots with
//! PODS pods each (defaults 50 and 10: 500 pods), one rollout per bot every 18 min over 3 h,
//! an event every 15 s on each bot's live session; every fifth bot's last rollout leaves a
//! silent session, every fifth (another) a duplicate delivery, every seventh a pod killed
//! without a clean close. The engine runs over it in simulated time; the bench then renders
//! the page from the engine's snapshot, as the `/` handler does, and reports its size and
//! the render time (the server's whole work for a request: the snapshot is already taken).
//!
//! `cargo bench --bench status_page [-- BOTS [PODS [ROUNDS]]]` (defaults 50, 10, 50). Prints
//! a Markdown report.

use std::sync::Arc;
use std::time::Instant;

use chrono::{DateTime, TimeDelta, Utc};
use dge::sinks::status::{self, Mode, SourceLine, StatusConfig};
use dge_core::engine::{Engine, EngineConfig};
use dge_core::observation::{
    Body, InstanceChange, InstanceId, InstanceObservation, Observation, SessionEvent,
    SessionObservation,
};

const ROLLOUT_SECS: i64 = 1080;
const EVENT_SECS: i64 = 15;

fn arg(i: usize, default: usize) -> usize {
    std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .nth(i)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

struct Fleet {
    obs: Vec<Observation>,
    t0: DateTime<Utc>,
}

impl Fleet {
    fn at(&self, secs: i64) -> DateTime<Utc> {
        self.t0 + TimeDelta::seconds(secs)
    }

    fn pod(&mut self, secs: i64, id: &Arc<InstanceId>, bot: &str, change: InstanceChange) {
        self.obs.push(Observation {
            at: self.at(secs),
            source: Arc::from("kubernetes"),
            body: Body::Instance(InstanceObservation {
                instance: (**id).clone(),
                bot: Some(bot.to_string()),
                workload: Some(bot.to_lowercase()),
                change,
            }),
        });
    }

    fn log(&mut self, secs: i64, id: &Arc<InstanceId>, bot: &str, event: SessionEvent) {
        let at = self.at(secs);
        let line = format!(
            "{} INFO {} user={bot} shard=0 <@{}> \"quoted\" & more",
            at.to_rfc3339(),
            event.name(),
            secs
        );
        self.obs.push(Observation {
            at,
            source: Arc::from(format!("file:/var/log/pods/{}.log", id.pod).as_str()),
            body: Body::Session(SessionObservation {
                bot: Some(bot.to_string()),
                instance: id.clone(),
                shard: Some(0),
                event,
                line: Some(line.into()),
            }),
        });
    }

    fn traffic(&mut self, id: &Arc<InstanceId>, bot: &str, from: i64, to: i64) {
        let mut t = from;
        while t < to {
            self.log(t, id, bot, SessionEvent::Dispatch { kind: None });
            t += EVENT_SECS;
        }
    }
}

/// One bot's three hours: `pods` pods, each replacing the previous one.
fn bot(f: &mut Fleet, b: usize, pods: usize, end: i64) {
    let bot = format!("Bot{b:02}");
    let ids: Vec<Arc<InstanceId>> = (0..pods)
        .map(|k| {
            Arc::new(InstanceId::pod(
                "bots",
                format!("bot{b:02}-7d4b9f6c5-{k:05}"),
            ))
        })
        .collect();
    let stagger = (b as i64 * 7) % 60;
    for (k, id) in ids.iter().enumerate() {
        let t = k as i64 * ROLLOUT_SECS + stagger;
        let last = k + 1 == pods;
        f.pod(t, id, &bot, InstanceChange::Created);
        f.pod(t + 1, id, &bot, InstanceChange::Running);
        f.log(t + 2, id, &bot, SessionEvent::Starting);
        f.log(t + 3, id, &bot, SessionEvent::Ready { session_id: None });
        f.pod(t + 4, id, &bot, InstanceChange::Ready);
        let stop = if last { end } else { t + ROLLOUT_SECS + 5 };
        // The last rollout: every fifth bot's new session stays silent, every fifth (other)
        // bot's old and new sessions both receive.
        let role = b % 5;
        let silent = last && role == 0;
        if !silent {
            f.traffic(id, &bot, t + 5, stop);
        }
        if k > 0 {
            let old = &ids[k - 1];
            let keeps = last && role <= 1;
            if keeps {
                f.traffic(old, &bot, t + 5, end);
            } else if last && b % 7 == 2 {
                f.pod(
                    t + 5,
                    old,
                    &bot,
                    InstanceChange::Terminating { grace: Some(30) },
                );
                let killed = InstanceChange::Exited {
                    code: Some(137),
                    reason: Some("Error".into()),
                };
                f.pod(t + 35, old, &bot, killed);
                f.pod(t + 36, old, &bot, InstanceChange::Deleted);
            } else {
                f.pod(
                    t + 5,
                    old,
                    &bot,
                    InstanceChange::Terminating { grace: Some(30) },
                );
                f.log(t + 6, old, &bot, SessionEvent::ShuttingDown);
                f.log(t + 7, old, &bot, SessionEvent::Closed { code: Some(1000) });
                f.log(t + 8, old, &bot, SessionEvent::Stopped);
                let exited = InstanceChange::Exited {
                    code: Some(0),
                    reason: Some("Completed".into()),
                };
                f.pod(t + 9, old, &bot, exited);
                f.pod(t + 10, old, &bot, InstanceChange::Deleted);
            }
        }
    }
}

fn main() {
    let (bots, pods, rounds) = (arg(0, 50), arg(1, 10), arg(2, 50).max(1));
    let t0 = DateTime::parse_from_rfc3339("2026-04-19T01:00:00Z")
        .unwrap()
        .to_utc();
    let end = pods as i64 * ROLLOUT_SECS + 600;
    let mut f = Fleet {
        obs: Vec::new(),
        t0,
    };
    for b in 0..bots {
        bot(&mut f, b, pods, end);
    }
    f.obs.sort_by_key(|o| o.at);
    let observations = f.obs.len();
    // Every pod kept to the end (the daemon forgets a deleted pod after `retention_secs`):
    // the page draws all BOTS x PODS of them, its worst case.
    let mut engine = Engine::new(EngineConfig {
        retention_secs: u64::MAX,
        ..EngineConfig::default()
    });
    let mut next_tick = t0;
    for o in f.obs {
        while o.at >= next_tick {
            engine.tick(next_tick);
            next_tick += TimeDelta::seconds(5);
        }
        engine.observe(o);
    }
    engine.tick(f.t0 + TimeDelta::seconds(end));
    let snap = engine.snapshot();
    let sources: Vec<SourceLine> = ["kubernetes", "kubernetes:logs", "discord"]
        .iter()
        .map(|s| SourceLine {
            name: s.to_string(),
            up: true,
            detail: "watching".into(),
        })
        .collect();
    let cfg = StatusConfig::default();

    let mut times = Vec::with_capacity(rounds);
    let mut page = String::new();
    for _ in 0..rounds {
        let start = Instant::now();
        page = status::render(&snap, &sources, &cfg, Mode::Live);
        times.push(start.elapsed().as_secs_f64() * 1000.0);
        std::hint::black_box(&page);
    }
    times.sort_by(f64::total_cmp);
    let median = times[times.len() / 2];
    let p95 = times[(times.len() * 95 / 100).min(times.len() - 1)];
    let active = snap.findings.iter().filter(|f| f.until.is_none()).count();
    let replay_start = Instant::now();
    let report = status::render(&snap, &sources, &cfg, Mode::Replay);
    // `STATUS_PAGE_DUMP=FILE` keeps the live page, to see where its bytes go.
    if let Some(path) = std::env::var_os("STATUS_PAGE_DUMP") {
        std::fs::write(path, &page).expect("write the page");
    }
    let replay_ms = replay_start.elapsed().as_secs_f64() * 1000.0;

    println!("| fleet | value |\n|---|---|");
    println!(
        "| bots / pods in the snapshot | {bots} / {} |",
        snap.instances.len()
    );
    println!(
        "| sessions / findings (active) | {} / {} ({active}) |",
        snap.sessions.len(),
        snap.findings.len()
    );
    println!("| observations fed | {observations} |");
    println!(
        "| `/` page size | {:.0} KiB ({} bytes) |",
        page.len() as f64 / 1024.0,
        page.len()
    );
    println!("| `/` render time, median / p95 of {rounds} | {median:.1} ms / {p95:.1} ms |");
    println!(
        "| `replay --format html` page of the same snapshot | {:.0} KiB, {replay_ms:.1} ms |",
        report.len() as f64 / 1024.0
    );
}
