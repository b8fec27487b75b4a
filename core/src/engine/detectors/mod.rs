//! The detectors, one file per finding kind; core/build.rs generates the rest from them.
//!
//! Adding a kind is one new file `detectors/<kind>.rs` (docs/architecture.md, "Add a finding
//! kind") with:
//! - `pub(super) const META: KindMeta` (name = the file name, severity, runbook anchor,
//!   description, handover effect, timeline mark; every field is required);
//! - `pub(super) const ORDER: u32 = N;` its place among the kinds (`Kind`'s order);
//! - `pub(super) struct <KindInCamelCase>;` implementing [`Detector`]: the hooks it needs,
//!   each with its turn `pub(super) const ON_<HOOK>: u32 = N;` among the detectors that
//!   have that hook (finding ids follow the turns);
//! - if it remembers anything between calls, `pub(super) struct State` (`Debug`, `Default`),
//!   which the engine keeps as `engine.detectors.<kind>`.
//!
//! build.rs generates the `mod` lines, [`Kind`] (a variant per file), `Kind::ALL`,
//! `Kind::meta` (a `match` without `_`), [`States`] and `Engine::detectors_on_*`, which the
//! engine calls at each event. Nothing outside this folder names a kind in a `match`.

use super::Engine;
use super::findings::Evidence;
use super::signals::Signal;
use super::state::PodKey;
use crate::observation::Timestamp;

include!(concat!(env!("OUT_DIR"), "/detectors.rs"));

/// What a detector hooks into. Every hook is a no-op unless the detector implements it; the
/// engine calls the detectors that do, in their turns (see the module's doc). A hook that
/// decides a kind in a way no existing hook covers is a new method here, a line in
/// core/build.rs's `HOOKS`, and one call in the engine.
#[allow(unused_variables)]
trait Detector {
    /// Time passed to `now` (a tick; `finishing`: the input ended).
    fn on_tick(engine: &mut Engine, now: Timestamp, finishing: bool) {}
    /// Session `id` of `bot` and `shard` started at `at` (recorded, its peers not yet judged).
    fn on_session_started(engine: &mut Engine, id: u64, bot: &str, shard: u32, at: Timestamp) {}
    /// Session `id` ended at `at`; `was_silent`: it had been flagged silent or quiet.
    fn on_session_ended(
        engine: &mut Engine,
        id: u64,
        bot: &str,
        shard: u32,
        at: Timestamp,
        was_silent: bool,
    ) {
    }
    /// Session `id` (at row `row`) received an event at `at` while the sessions at rows
    /// `others` were live next to it; `was_silent`: it had been flagged silent or quiet.
    fn on_dispatch(
        engine: &mut Engine,
        id: u64,
        row: usize,
        others: &[usize],
        at: Timestamp,
        was_silent: bool,
    ) {
    }
    /// The pod of session `id` ended (`code`, `clean`: closed cleanly; `was_live`: the session
    /// was live just before), after the session was ended. Once per session the pod had.
    fn on_pod_session_ended(
        engine: &mut Engine,
        id: u64,
        at: Timestamp,
        code: Option<i32>,
        clean: bool,
        was_live: bool,
        source: &str,
    ) {
    }
    /// The pod `key` was deleted (after its sessions ended).
    fn on_pod_deleted(engine: &mut Engine, key: &PodKey, at: Timestamp) {}
    /// The pod `key` logged a fatal close of `bot`'s connection (after its sessions ended).
    fn on_fatal(
        engine: &mut Engine,
        key: &PodKey,
        bot: &str,
        at: Timestamp,
        reason: &str,
        code: Option<u16>,
        evidence: &Evidence,
    ) {
    }
    /// The pod `key`, known by its name alone until now, got its namespace: every name-keyed
    /// cache is stale.
    fn on_pod_adopted(engine: &mut Engine, key: &PodKey) {}
    /// A `session_start_limit` sample of `bot` was accounted for.
    fn on_start_limit(engine: &mut Engine, bot: &str, at: Timestamp) {}
    /// The pod `key` logged a gateway-health line about `bot`'s connection on `shard`
    /// (heartbeats, reconnects, resumes; see [`Signal`]), after the engine applied it.
    fn on_gateway_signal(
        engine: &mut Engine,
        key: &PodKey,
        bot: &str,
        shard: u32,
        at: Timestamp,
        signal: &Signal,
        evidence: &Evidence,
    ) {
    }
    /// The remediation actor reported `r` (an action, its outcome, or why it did not act).
    fn on_remediation(
        engine: &mut Engine,
        at: Timestamp,
        r: &crate::observation::Remediation,
        source: &str,
    ) {
    }
}

/// `a == b` in a constant (build.rs's checks of each `META.name`).
const fn str_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// A duration for an explanation: seconds, minutes or hours.
fn secs(d: f64) -> String {
    if d >= 3600.0 {
        format!("{:.1} h", d / 3600.0)
    } else if d >= 120.0 {
        format!("{:.0} min", d / 60.0)
    } else {
        format!("{d:.0} s")
    }
}

/// A time of day for an explanation.
fn hms(t: Timestamp) -> String {
    t.format("%H:%M:%S").to_string()
}

impl Engine {
    /// Runs every time-driven detector at `now` (`finishing`: the input ended), in their
    /// turns, then forgets pods deleted long ago.
    pub(super) fn detect(&mut self, now: Timestamp, finishing: bool) {
        self.detectors_on_tick(now, finishing);
        self.collect_garbage(now);
    }
}

/// Evidence lines a health finding keeps per pod (the latest ones).
const HEALTH_EVIDENCE_KEPT: usize = 8;

/// The gateway-health detectors' per-pod windows: drop times older than `window` before `at`,
/// and the oldest beyond `cap`.
fn prune_window(
    q: &mut std::collections::VecDeque<Timestamp>,
    at: Timestamp,
    window: chrono::TimeDelta,
    cap: usize,
) {
    while q.front().is_some_and(|t| *t + window < at) || q.len() > cap {
        q.pop_front();
    }
}

/// Keeps `e` among the latest [`HEALTH_EVIDENCE_KEPT`] evidence lines.
fn keep_evidence(v: &mut Vec<Evidence>, e: &Evidence) {
    if v.len() >= HEALTH_EVIDENCE_KEPT {
        v.remove(0);
    }
    v.push(e.clone());
}

/// Forgets the pods of a gateway-health detector (`pods`) whose latest signal (`last`) is older
/// than `window` before `now`, and closes their finding (`close`).
fn close_quiet_pods<T>(
    engine: &mut Engine,
    now: Timestamp,
    window: chrono::TimeDelta,
    pods: fn(&mut Engine) -> &mut std::collections::BTreeMap<PodKey, T>,
    last: impl Fn(&T) -> Option<&Timestamp>,
    close: fn(&mut Engine, &PodKey, Timestamp),
) {
    let quiet: Vec<PodKey> = pods(engine)
        .iter()
        .filter(|(_, p)| last(p).is_none_or(|t| *t + window < now))
        .map(|(k, _)| k.clone())
        .collect();
    for k in quiet {
        pods(engine).remove(&k);
        close(engine, &k, now);
    }
}

#[cfg(test)]
mod tests {
    use super::Kind;

    /// The kinds' order is a contract (metrics list kinds in it, `Kind`'s `Ord` sorts findings
    /// by it): each file's `ORDER` must keep it. New kinds come after these.
    #[test]
    fn the_kinds_keep_their_order() {
        let names: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(
            names[..9],
            [
                "concurrent_sessions",
                "silent_session",
                "quiet_session",
                "duplicate_delivery",
                "lingering_session",
                "unattributed_identify",
                "start_limit_low",
                "fatal_close",
                "bot_offline",
            ]
        );
    }

    #[test]
    fn every_kind_serializes_under_its_file_name() {
        for k in Kind::ALL {
            let json = serde_json::to_string(&k).unwrap();
            assert_eq!(json, format!("\"{}\"", k.as_str()));
            assert!(
                k.runbook()
                    .starts_with("docs/troubleshooting.md#discordbot")
            );
            assert!(!k.meta().description.is_empty());
        }
    }
}
