//! The stories: the reported incident, the workaround, duplicate delivery, a quiet night, a
//! crash loop. Each is written relative to a time `r` (the moment the story's action starts),
//! with `history` seconds of normal traffic before it.

use chrono::TimeDelta;

use super::{Rng, Scenario, Style};
use dge_core::observation::Timestamp;

fn s(secs: f64) -> TimeDelta {
    TimeDelta::milliseconds((secs * 1000.0) as i64)
}

/// Namespace every simulated bot runs in.
pub const NAMESPACE: &str = "bots";

/// `kubectl rollout restart` of an OpenAB bot: the new pod connects while the old one still
/// holds its session (a `preStop` sleep keeps it alive and receiving); the old one then shuts
/// down cleanly, and the new session never receives an event.
pub fn rollout_silent(sc: &mut Scenario, r: Timestamp, history: f64, after: f64, seed: u64) {
    let mut rng = Rng::new(seed);
    let bot = "AgentBroker";
    let start = r - s(history);
    let mut old = sc.create_pod(
        start - s(5.0),
        NAMESPACE,
        "agentbroker",
        "6c9f7d8b4",
        "k2x7q",
        bot,
        Style::OpenAbAnsi,
        30,
    );
    sc.start(start - s(3.0), &mut old, 1.4);
    sc.traffic(&mut rng, start, r + s(4.0), 20.0, &[&old]);
    let mut new = sc.create_pod(
        r,
        NAMESPACE,
        "agentbroker",
        "5f7b9c6d8",
        "p4m2z",
        bot,
        Style::OpenAbAnsi,
        30,
    );
    sc.start(r + s(2.0), &mut new, 1.4);
    // The new pod is Ready at r+4.4: the Deployment deletes the old one, whose preStop hook
    // sleeps 10 s while its session keeps receiving every event.
    sc.terminate(r + s(4.5), &mut old);
    sc.traffic(&mut rng, r + s(4.0), r + s(14.5), 3.0, &[&old]);
    sc.graceful_exit(r + s(14.5), &mut old);
    // From here the bot's events reach nobody: the new session is connected but deaf.
    sc.gateway_samples(bot, start, r + s(after), 60.0, 3, &[]);
}

/// The workaround: scale to 0, wait until the old pod is gone, scale to 1 (discord.py bot).
pub fn scale_zero_one(sc: &mut Scenario, r: Timestamp, history: f64, after: f64, seed: u64) {
    let mut rng = Rng::new(seed);
    let bot = "HelperBot";
    let start = r - s(history);
    let mut a = sc.create_pod(
        start - s(5.0),
        NAMESPACE,
        "helperbot",
        "7d4b9f6c5",
        "x8k2m",
        bot,
        Style::DiscordPy,
        30,
    );
    sc.start(start - s(3.0), &mut a, 1.2);
    sc.traffic(&mut rng, start, r, 15.0, &[&a]);
    sc.terminate(r, &mut a);
    sc.exit(r + s(1.5), &mut a, 0, "Completed");
    let mut b = sc.create_pod(
        r + s(40.0),
        NAMESPACE,
        "helperbot",
        "7d4b9f6c5",
        "q7w3n",
        bot,
        Style::DiscordPy,
        30,
    );
    sc.start(r + s(42.0), &mut b, 1.2);
    sc.traffic(&mut rng, r + s(43.5), r + s(after), 15.0, &[&b]);
    sc.gateway_samples(bot, start, r + s(after), 60.0, 12, &[]);
}

/// An older bot build that ignores SIGTERM: during a rollout both sessions receive every
/// event (the bot answers twice) until the old pod is killed after a 300 s grace period,
/// leaving its session lingering on Discord's side.
pub fn duplicate_delivery(sc: &mut Scenario, r: Timestamp, history: f64, after: f64, seed: u64) {
    let mut rng = Rng::new(seed);
    let bot = "TallyBot";
    let start = r - s(history);
    let mut old = sc.create_pod(
        start - s(5.0),
        NAMESPACE,
        "tallybot",
        "59c8d7f6b",
        "m4n8p",
        bot,
        Style::OpenAbPlain,
        300,
    );
    sc.start(start - s(3.0), &mut old, 1.6);
    sc.traffic(&mut rng, start, r + s(3.6), 12.0, &[&old]);
    let mut new = sc.create_pod(
        r,
        NAMESPACE,
        "tallybot",
        "6f9b8c7d5",
        "r2t6v",
        bot,
        Style::OpenAbPlain,
        300,
    );
    sc.start(r + s(2.0), &mut new, 1.6);
    sc.terminate(r + s(4.6), &mut old);
    sc.traffic(&mut rng, r + s(3.6), r + s(304.6), 12.0, &[&old, &new]);
    sc.exit(r + s(304.6), &mut old, 137, "Error");
    sc.traffic(&mut rng, r + s(304.6), r + s(after), 12.0, &[&new]);
    sc.gateway_samples(bot, start, r + s(after), 60.0, 40, &[]);
}

/// A night with no restart: traffic thins from one event a minute to one every half hour.
pub fn quiet_night(sc: &mut Scenario, r: Timestamp, seed: u64) {
    let mut rng = Rng::new(seed);
    let bot = "AgentBroker";
    let mut pod = sc.create_pod(
        r - s(5.0),
        NAMESPACE,
        "agentbroker",
        "6c9f7d8b4",
        "k2x7q",
        bot,
        Style::OpenAbPlain,
        30,
    );
    sc.start(r - s(3.0), &mut pod, 1.4);
    let hour = 3600.0;
    for (h, mean) in [
        (0.0, 60.0),
        (2.0, 120.0),
        (3.0, 300.0),
        (4.0, 900.0),
        (5.0, 1800.0),
        (8.0, 600.0),
        (9.0, 90.0),
    ] {
        let next = match h {
            x if x < 9.0 => [2.0, 3.0, 4.0, 5.0, 8.0, 9.0, 10.0]
                .into_iter()
                .find(|n| *n > x)
                .unwrap_or(10.0),
            _ => 10.0,
        };
        sc.traffic(&mut rng, r + s(h * hour), r + s(next * hour), mean, &[&pod]);
    }
    sc.gateway_samples(bot, r, r + s(10.0 * hour), 300.0, 2, &[]);
}

/// A bot whose MESSAGE CONTENT intent was not enabled: every start is refused (4014) and the
/// container exits 1; Kubernetes restarts it with growing back-off.
pub fn crashloop_intents(sc: &mut Scenario, r: Timestamp) {
    let bot = "AgentBroker";
    let mut pod = sc.create_pod(
        r,
        NAMESPACE,
        "agentbroker",
        "8b7c6d5f4",
        "z9y8x",
        bot,
        Style::OpenAbPlain,
        30,
    );
    let mut t = r + s(2.0);
    for i in 0..6 {
        let end = sc.crash_on_intents(t, &mut pod);
        sc.restart_count(&mut pod);
        t = end + s(10.0 * 2f64.powi(i));
    }
}

/// The demo fleet: the three stories staggered so that the whole incident plays in about ten
/// simulated minutes after `r`, with two hours of history before it.
pub fn demo_fleet(r: Timestamp, horizon: f64) -> Vec<(Timestamp, super::Artifact)> {
    let mut sc = Scenario::new();
    rollout_silent(&mut sc, r + s(15.0), 7200.0, horizon, 11);
    scale_zero_one(&mut sc, r + s(60.0), 7200.0, horizon, 22);
    duplicate_delivery(&mut sc, r + s(120.0), 7200.0, horizon, 33);
    sc.sorted()
}

/// A recorded example: folder name, how its logs are captured, its artifacts.
pub type Example = (
    &'static str,
    super::LogCapture,
    Vec<(Timestamp, super::Artifact)>,
);

/// Every recorded example.
pub fn examples(r: Timestamp) -> Vec<Example> {
    let one = |f: &dyn Fn(&mut Scenario)| {
        let mut sc = Scenario::new();
        f(&mut sc);
        sc.sorted()
    };
    vec![
        (
            "rollout-restart-silent",
            super::LogCapture::Kubectl,
            one(&|sc| rollout_silent(sc, r, 3600.0, 1800.0, 11)),
        ),
        (
            "scale-0-1-clean",
            super::LogCapture::Kubectl,
            one(&|sc| scale_zero_one(sc, r, 3600.0, 1800.0, 22)),
        ),
        (
            "duplicate-delivery",
            super::LogCapture::Kubectl,
            one(&|sc| duplicate_delivery(sc, r, 3600.0, 900.0, 33)),
        ),
        (
            "quiet-night",
            super::LogCapture::Cri,
            one(&|sc| quiet_night(sc, r, 44)),
        ),
        (
            "crashloop-intents",
            super::LogCapture::Kubectl,
            one(&|sc| crashloop_intents(sc, r)),
        ),
    ]
}
