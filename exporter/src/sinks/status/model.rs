//! What the page shows, gathered from the snapshot: per bot its timeline (clipped to the
//! window), its findings and what its inputs can show. No correlation happens here: findings,
//! sessions and pods are the engine's; the rows are `timeline::model`'s.

use chrono::TimeDelta;

use super::{Mode, SourceLine, StatusConfig};
use crate::sinks::timeline::{self, BotTimeline, Stretch};
use dge_core::engine::{BotView, Finding, Severity, Snapshot};
use dge_core::observation::Timestamp;

/// The shortest span of the live page's close-up timeline.
const ZOOM_MINUTES: i64 = 15;

/// The page's content.
pub struct Page<'a> {
    pub mode: Mode,
    /// The snapshot's time: "now" for the live page, the capture's end for a replay.
    pub now: Timestamp,
    /// Live only: seconds between reloads (0: none).
    pub refresh_secs: u64,
    pub runbook_base: &'a str,
    /// Live only: the timeline's span.
    pub window: Option<TimeDelta>,
    /// Bots with an active critical finding first, then warnings, then the rest, by name.
    pub bots: Vec<BotPage<'a>>,
    pub sources: &'a [SourceLine],
}

/// One bot's section.
pub struct BotPage<'a> {
    pub timeline: BotTimeline<'a>,
    /// Live only: the same rows over the last minutes (from a little before the oldest active
    /// finding, at least the last 15 min), when that is much shorter than the window.
    pub zoom: Option<BotTimeline<'a>>,
    /// Pods left out because everything about them ended before the window.
    pub hidden_pods: usize,
    /// Open findings, most severe first, then oldest first.
    pub active: Vec<&'a Finding>,
    /// Closed findings, most recent first.
    pub closed: Vec<&'a Finding>,
    pub live_sessions: u64,
    /// The most severe open finding's severity.
    pub worst: Option<Severity>,
    /// What the exporter can and cannot see of this bot.
    pub sight: Vec<Sight>,
}

/// One of the three views the exporter joins (logs, pods, Discord's count), for one bot.
pub struct Sight {
    pub what: &'static str,
    pub seen: bool,
    pub detail: String,
}

impl<'a> Page<'a> {
    pub fn build(
        snap: &'a Snapshot,
        sources: &'a [SourceLine],
        cfg: &'a StatusConfig,
        mode: Mode,
    ) -> Self {
        let now = snap.at.unwrap_or_default();
        let window = (mode == Mode::Live).then(|| TimeDelta::hours(cfg.window_hours as i64));
        let sessions: Vec<_> = snap.sessions.iter().collect();
        let instances: Vec<_> = snap.instances.iter().collect();
        let mut pod_bots = timeline::pod_bots(&sessions, &snap.findings);
        // A pod that never logged a session (crash-looping before READY) still belongs to
        // the bot its labels name.
        for i in &snap.instances {
            if let Some(bot) = &i.bot {
                pod_bots
                    .entry((i.namespace.clone(), i.pod.clone()))
                    .or_insert_with(|| bot.clone());
            }
        }
        let mut timelines = timeline::model(&instances, &sessions, &snap.findings, now, |ns, p| {
            pod_bots.get(&(ns.to_string(), p.to_string())).cloned()
        });
        // A bot known only from Discord's count (no session, no finding) still gets a section.
        for b in &snap.bots {
            if !timelines.iter().any(|t| t.bot == b.bot) {
                timelines.push(BotTimeline {
                    bot: b.bot.clone(),
                    start: now,
                    end: now,
                    pods: Vec::new(),
                    findings: Vec::new(),
                });
            }
        }
        let mut bots: Vec<BotPage> = timelines
            .into_iter()
            .map(|t| {
                let view = snap.bots.iter().find(|b| b.bot == t.bot);
                bot_page(t, view, snap, window)
            })
            .collect();
        bots.sort_by(|a, b| {
            b.worst
                .cmp(&a.worst)
                .then_with(|| a.timeline.bot.cmp(&b.timeline.bot))
        });
        Page {
            mode,
            now,
            refresh_secs: cfg.refresh_secs,
            runbook_base: &cfg.runbook_base_url,
            window,
            bots,
            sources,
        }
    }

    /// Open findings over all bots, per severity (critical, warning, info).
    pub fn active_counts(&self) -> [usize; 3] {
        let mut n = [0; 3];
        for f in self.bots.iter().flat_map(|b| &b.active) {
            n[2 - f.severity as usize] += 1;
        }
        n
    }
}

fn bot_page<'a>(
    mut t: BotTimeline<'a>,
    view: Option<&BotView>,
    snap: &Snapshot,
    window: Option<TimeDelta>,
) -> BotPage<'a> {
    let mut active: Vec<&Finding> = t
        .findings
        .iter()
        .copied()
        .filter(|f| f.until.is_none())
        .collect();
    active.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.since.cmp(&b.since)));
    let mut closed: Vec<&Finding> = t
        .findings
        .iter()
        .copied()
        .filter(|f| f.until.is_some())
        .collect();
    closed.sort_by_key(|f| std::cmp::Reverse(f.until));
    let hidden_pods = match window {
        Some(w) => {
            let from = t.end - w;
            clip(&mut t, from)
        }
        None => 0,
    };
    let zoom = window.and_then(|_| {
        let from = active
            .iter()
            .map(|f| f.since - TimeDelta::minutes(2))
            .chain([t.end - TimeDelta::minutes(ZOOM_MINUTES)])
            .min()?;
        // Worth a second drawing only when it magnifies at least four times.
        (t.end - from < (t.end - t.start) / 4).then(|| {
            let mut z = t.clone();
            clip(&mut z, from);
            z
        })
    });
    let live_sessions = view.map(|v| v.live_sessions.values().sum()).unwrap_or(0);
    BotPage {
        worst: active.iter().map(|f| f.severity).max(),
        sight: sight(&t.bot, view, snap),
        timeline: t,
        zoom,
        hidden_pods,
        active,
        closed,
        live_sessions,
    }
}

/// Clips the rows to `from`..end; drops the pods with nothing after `from`. Returns how many.
fn clip(t: &mut BotTimeline, from: Timestamp) -> usize {
    if t.start >= from {
        return 0;
    }
    t.start = from;
    let keep = |s: &Stretch| s.to >= from;
    let before = t.pods.len();
    t.pods
        .retain(|p| p.life.iter().chain(&p.sessions).any(keep));
    for p in &mut t.pods {
        for row in [&mut p.life, &mut p.sessions] {
            row.retain(keep);
            for s in row.iter_mut() {
                s.from = s.from.max(from);
            }
        }
    }
    before - t.pods.len()
}

/// What the exporter sees of `bot` through each of the three views it joins.
fn sight(bot: &str, view: Option<&BotView>, snap: &Snapshot) -> Vec<Sight> {
    let sessions: Vec<_> = snap.sessions.iter().filter(|s| s.bot == bot).collect();
    let events: u64 = snap
        .series
        .iter()
        .filter(|s| s.bot == bot)
        .map(|s| s.events_total)
        .sum();
    let interval = view.and_then(|v| v.expected_interval_secs);
    let pods_known = snap
        .instances
        .iter()
        .filter(|i| i.created_at.is_some())
        .filter(|i| {
            i.bot.as_deref() == Some(bot)
                || sessions
                    .iter()
                    .any(|s| s.namespace == i.namespace && s.pod == i.pod)
        })
        .count();
    let limit = view.and_then(|v| v.start_limit.as_ref());
    vec![
        Sight {
            what: "Gateway sessions (bot logs)",
            seen: !sessions.is_empty(),
            detail: if sessions.is_empty() {
                "no gateway session seen in this bot's logs".into()
            } else {
                format!("{} session(s) seen in its logs", sessions.len())
            },
        },
        Sight {
            what: "Events (bot logs)",
            seen: events > 0,
            detail: match (events, interval) {
                (0, _) => "events not visible for this bot: its logs show no handled event, so \
                           a silent session can only be reported as a warning"
                    .into(),
                (n, Some(i)) => format!("{n} events seen; usual gap learned: {}", span(i)),
                (n, None) => format!("{n} events seen; usual gap not learned yet"),
            },
        },
        Sight {
            what: "Pod lifecycle (Kubernetes)",
            seen: pods_known > 0,
            detail: if pods_known > 0 {
                format!("{pods_known} pod(s) seen through the Kubernetes API or pod captures")
            } else {
                "pod lifecycle not visible: pods are known only from their logs, so terminating \
                 and deleted pods are not seen"
                    .into()
            },
        },
        Sight {
            what: "Discord's session count (GET /gateway/bot)",
            seen: limit.is_some(),
            detail: match limit {
                Some(l) => format!(
                    "{} of {} session starts remaining, reset in {}",
                    l.remaining,
                    l.total,
                    span(l.reset_after_ms as f64 / 1000.0)
                ),
                None => "not visible: no token configured for this bot, so identifies by \
                         sessions nobody can see are not detected"
                    .into(),
            },
        },
    ]
}

/// A duration in words: "45 s", "12 min", "3 h 5 min", "2 d 4 h".
pub fn span(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        3600..86_400 => match (s / 3600, s % 3600 / 60) {
            (h, 0) => format!("{h} h"),
            (h, m) => format!("{h} h {m} min"),
        },
        _ => match (s / 86_400, s % 86_400 / 3600) {
            (d, 0) => format!("{d} d"),
            (d, h) => format!("{d} d {h} h"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::span;

    #[test]
    fn spans_read_as_words() {
        assert_eq!(span(0.4), "0 s");
        assert_eq!(span(59.0), "59 s");
        assert_eq!(span(180.0), "3 min");
        assert_eq!(span(3600.0), "1 h");
        assert_eq!(span(3900.0), "1 h 5 min");
        assert_eq!(span(2.0 * 86_400.0 + 4.0 * 3600.0), "2 d 4 h");
        assert_eq!(span(-5.0), "0 s");
    }
}
