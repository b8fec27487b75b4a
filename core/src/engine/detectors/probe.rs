//! test-only kind
//!
//! `probe`: a live session of the bot named `probe`. It walks the "add a finding kind" recipe
//! for real: this file is the whole kind, and the test below proves that build.rs registered
//! it, that the engine runs its hooks in their turns and keeps its state, and that its
//! metadata reaches findings.

use super::Detector;
use crate::engine::findings::{Assertion, Key};
use crate::engine::{Engine, HandoverEffect, Kind, KindMeta, Legend, Severity, TimelineMark};
use crate::observation::Timestamp;

/// The bot whose sessions the probe reports (no other test uses it).
const BOT: &str = "probe";

/// The kind's metadata.
pub(super) const META: KindMeta = KindMeta {
    name: "probe",
    severity: Severity::Info,
    runbook: "docs/troubleshooting.md#discordbotprobe",
    description: "a live session of the bot named probe (tests only)",
    handover: HandoverEffect::None,
    timeline: TimelineMark::Point(Legend {
        mark: 'P',
        means: "probe",
        rank: 5,
    }),
};
/// Last among the kinds.
pub(super) const ORDER: u32 = 9999;
/// After every real detector's turn on a session start.
pub(super) const ON_SESSION_STARTED: u32 = 9999;
/// After every real detector's turn on a tick.
pub(super) const ON_TICK: u32 = 9999;

pub(super) struct Probe;

/// What it remembers between calls: how many sessions it reported.
#[derive(Debug, Default)]
pub(super) struct State {
    reported: u32,
}

impl Detector for Probe {
    fn on_session_started(engine: &mut Engine, id: u64, bot: &str, _shard: u32, at: Timestamp) {
        if bot == BOT {
            let a = Assertion::new(Key::bot(Kind::Probe, BOT), at, "probed".into(), vec![]);
            engine.book.assert(a.about(id));
            engine.detectors.probe.reported += 1;
        }
    }

    fn on_tick(engine: &mut Engine, now: Timestamp, _finishing: bool) {
        let live = engine
            .sessions
            .values()
            .any(|s| s.bot == BOT && s.is_live(now));
        if !live {
            let key = Key::bot(Kind::Probe, BOT);
            engine.book.close(&key, now, engine.cfg.max_closed_findings);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::tests::Sim;
    use crate::observation::SessionEvent;

    #[test]
    fn the_file_alone_registers_the_kind_runs_its_hooks_and_carries_its_metadata() {
        // Registered by build.rs: a variant, last in the kinds' order, with this file's META.
        assert_eq!(Kind::ALL.last(), Some(&Kind::Probe));
        assert!(Kind::ALL.iter().all(|k| *k <= Kind::Probe));
        assert_eq!(Kind::Probe.meta(), &META);
        assert_eq!(Kind::Probe.as_str(), "probe");
        assert_eq!(serde_json::to_string(&Kind::Probe).unwrap(), "\"probe\"");

        // Opened through the session-start hook, with the metadata's severity and runbook.
        let mut sim = Sim::new();
        sim.start_pod(0.0, "probe-0", BOT);
        let f = sim
            .engine
            .active_findings()
            .find(|f| f.kind == Kind::Probe)
            .cloned()
            .expect("the probe fired on the session start");
        assert_eq!(f.severity, Severity::Info);
        assert_eq!(f.runbook, META.runbook);
        assert_eq!(f.since, sim.at(3.0));
        assert!(f.session.is_some());
        // Its state is kept by the engine.
        assert_eq!(sim.engine.detectors.probe.reported, 1);

        // Closed through the tick hook once the session is gone.
        sim.log(10.0, "probe-0", None, SessionEvent::Stopped);
        sim.tick_to(11.0);
        assert!(sim.engine.active_findings().all(|f| f.kind != Kind::Probe));
        let closed = sim.findings();
        let closed = closed.iter().find(|f| f.kind == Kind::Probe).unwrap();
        assert_eq!(closed.until, Some(sim.at(11.0)));

        // Bots other than the probe's never see it.
        let mut sim = Sim::new();
        sim.start_pod(0.0, "app-0", "app");
        sim.tick_to(5.0);
        assert!(sim.findings().iter().all(|f| f.kind != Kind::Probe));
    }
}
