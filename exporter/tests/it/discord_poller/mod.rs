//! The Discord start-limit poller over real HTTP: twilight-http pointed (`proxy`, `use_http`) at
//! a local fake Discord on 127.0.0.1 that counts requests per route and answers from a script.
//!
//! In-process tests run the daemon's pipeline (pollers -> channel -> engine task -> shared
//! state that `/metrics` and `/healthz` render) with short intervals; the last test runs the
//! real binary (`run --record`, RUST_LOG=debug) and checks that no token appears in anything it
//! writes, and that `replay` of its recording gives the live findings.

use crate::support::fake_discord;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use dge::clock::Clock;
use dge::daemon::EngineTask;
use dge::sinks::http::Shared;
use dge::sources::discord::{self, BotSpec, Endpointing, Policy, Settings, TokenSource};
use dge_core::engine::{Engine, EngineConfig};
use dge_core::observation::Observation;
use fake_discord::{FakeDiscord, Reply};
use serde_json::Value;
use tokio::sync::{mpsc, watch};

const TOK_A: &str = "MTExMTExMTExMTExMTExMTEx.AAAAAA.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const TOK_B: &str = "MjIyMjIyMjIyMjIyMjIyMjIy.BBBBBB.bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";
const TOK_GONE: &str = "MzMzMzMzMzMzMzMzMzMzMzMz.CCCCCC.cccccccccccccccccccccccccccccccccccccc";
const TOK_FORBIDDEN: &str =
    "NDQ0NDQ0NDQ0NDQ0NDQ0NDQ0.DDDDDD.dddddddddddddddddddddddddddddddddddddd";

mod optional_token;
mod polling;
mod recorded;
mod the_binary;

/// The value of the first sample of `name` carrying all `labels`.
fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter(|l| l.starts_with(&format!("{name}{{")) || l.starts_with(&format!("{name} ")))
        .find(|l| {
            labels
                .iter()
                .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

async fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let end = Instant::now() + limit;
    while !cond() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
