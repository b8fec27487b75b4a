//! The timeline of `replay` and of the status page: per bot, one pair of rows per pod (its
//! lifecycle, its sessions and the findings on them) on a common time axis. [`model`] builds
//! the rows; [`render`] draws them as text, `sinks::status` as SVG.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write;

use dge_core::engine::{Finding, Instance, Kind, Legend, Session, TimelineMark};
use dge_core::observation::Timestamp;

const WIDTH: usize = 64;

/// One bot's rows, from the first thing seen of it to `end`.
#[derive(Clone)]
pub struct BotTimeline<'a> {
    pub bot: String,
    pub start: Timestamp,
    pub end: Timestamp,
    /// Pods in order of creation (or of their first session).
    pub pods: Vec<PodRow>,
    /// The bot's findings, open and closed, in the engine's order.
    pub findings: Vec<&'a Finding>,
}

/// One pod: its lifecycle row and its session row. Stretches are in drawing order: a later
/// one is drawn over an earlier one.
#[derive(Clone)]
pub struct PodRow {
    pub namespace: String,
    pub pod: String,
    pub life: Vec<Stretch>,
    pub sessions: Vec<Stretch>,
}

/// A stretch of a row, from `from` to `to` (equal for a point).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stretch {
    pub from: Timestamp,
    pub to: Timestamp,
    pub what: Mark,
}

/// What a stretch shows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Mark {
    /// The pod exists but no container runs (pending, or exited and not yet deleted).
    Pending,
    Running,
    Terminating,
    /// A session is live.
    Live,
    /// Discord may still hold the session after an unclean end.
    Lingering,
    /// A finding of `kind`, drawn with its kind's legend over its duration (or at its start).
    Finding {
        kind: Kind,
        legend: Legend,
        point: bool,
    },
}

impl Mark {
    /// The character of the text timeline.
    pub fn char(self) -> char {
        match self {
            Mark::Pending => '.',
            Mark::Running => '#',
            Mark::Terminating => '+',
            Mark::Live => '=',
            Mark::Lingering => '~',
            Mark::Finding { legend, .. } => legend.mark,
        }
    }
}

/// The lifecycle marks and their legend words, in the legend's order.
pub const LIFECYCLE: [(Mark, &str); 5] = [
    (Mark::Running, "running"),
    (Mark::Terminating, "terminating"),
    (Mark::Pending, "pending/exited"),
    (Mark::Live, "session live"),
    (Mark::Lingering, "lingering on Discord"),
];

/// The bot each pod ran, as `replay` attributes it: its first session's bot, else its first
/// finding's bot; keyed by (namespace, pod).
pub fn pod_bots(sessions: &[&Session], findings: &[Finding]) -> BTreeMap<(String, String), String> {
    let mut bots = BTreeMap::new();
    for s in sessions {
        bots.entry((s.namespace.clone(), s.pod.clone()))
            .or_insert_with(|| s.bot.clone());
    }
    for f in findings {
        if let Some(pod) = f.subject.pod_name() {
            bots.entry((f.subject.namespace_label().to_string(), pod.to_string()))
                .or_insert_with(|| f.bot.clone());
        }
    }
    bots
}

/// The rows of every bot that has a session or a finding, in bot name order.
pub fn model<'a>(
    instances: &[&Instance],
    sessions: &[&Session],
    findings: &'a [Finding],
    end: Timestamp,
    bot_of_pod: impl Fn(&str, &str) -> Option<String>,
) -> Vec<BotTimeline<'a>> {
    let bots: BTreeSet<String> = sessions
        .iter()
        .map(|s| s.bot.clone())
        .chain(findings.iter().map(|f| f.bot.clone()))
        .collect();
    bots.into_iter()
        .map(|bot| {
            let pods: Vec<&Instance> = instances
                .iter()
                .copied()
                .filter(|i| bot_of_pod(&i.namespace, &i.pod).as_deref() == Some(bot.as_str()))
                .collect();
            let sessions: Vec<&Session> =
                sessions.iter().copied().filter(|s| s.bot == bot).collect();
            let findings: Vec<&Finding> = findings.iter().filter(|f| f.bot == bot).collect();
            bot_model(bot, &pods, &sessions, findings, end)
        })
        .collect()
}

fn bot_model<'a>(
    bot: String,
    pods: &[&Instance],
    sessions: &[&Session],
    findings: Vec<&'a Finding>,
    end: Timestamp,
) -> BotTimeline<'a> {
    let start = pods
        .iter()
        .map(|i| i.created_at.unwrap_or(i.first_seen))
        .chain(sessions.iter().map(|s| s.ready_at))
        .min()
        .unwrap_or(end);
    let mut pod_names: Vec<(Timestamp, String, String)> = pods
        .iter()
        .map(|i| {
            (
                i.created_at.unwrap_or(i.first_seen),
                i.namespace.clone(),
                i.pod.clone(),
            )
        })
        .collect();
    for s in sessions {
        if !pod_names
            .iter()
            .any(|(_, ns, p)| ns == &s.namespace && p == &s.pod)
        {
            pod_names.push((s.ready_at, s.namespace.clone(), s.pod.clone()));
        }
    }
    pod_names.sort();
    let stretch = |from, to, what| Stretch { from, to, what };
    let rows = pod_names
        .into_iter()
        .map(|(_, namespace, pod)| {
            let mut life = Vec::new();
            if let Some(i) = pods
                .iter()
                .find(|i| i.namespace == namespace && i.pod == pod)
            {
                let created = i.created_at.unwrap_or(i.first_seen);
                let gone = i.deleted_at.or(i.exited_at).unwrap_or(end);
                life.push(stretch(created, gone, Mark::Pending));
                for (a, b) in &i.runs {
                    life.push(stretch(*a, b.unwrap_or(end), Mark::Running));
                }
                if let Some(t) = i.terminating_at {
                    let stop = i.exited_at.filter(|e| *e >= t).unwrap_or(end);
                    life.push(stretch(t, stop, Mark::Terminating));
                }
            }
            let mut row = Vec::new();
            for s in sessions
                .iter()
                .filter(|s| s.namespace == namespace && s.pod == pod)
            {
                let ended = s.ended_at.unwrap_or(end);
                row.push(stretch(s.ready_at, ended, Mark::Live));
                if let Some(u) = s.live_until.filter(|u| Some(*u) != s.ended_at) {
                    row.push(stretch(ended, u.min(end), Mark::Lingering));
                }
            }
            for f in findings
                .iter()
                .filter(|f| f.subject.is_pod(&namespace, &pod))
            {
                let (legend, point) = match f.kind.meta().timeline {
                    TimelineMark::None => continue,
                    TimelineMark::Span(l) => (l, false),
                    TimelineMark::Point(l) => (l, true),
                };
                let to = if point {
                    f.since
                } else {
                    f.until.unwrap_or(end)
                };
                let what = Mark::Finding {
                    kind: f.kind,
                    legend,
                    point,
                };
                row.push(stretch(f.since, to, what));
            }
            PodRow {
                namespace,
                pod,
                life,
                sessions: row,
            }
        })
        .collect();
    BotTimeline {
        bot,
        start,
        end,
        pods: rows,
        findings,
    }
}

/// Renders the whole report.
pub fn render(
    instances: &[&Instance],
    sessions: &[&Session],
    findings: &[Finding],
    end: Timestamp,
    bot_of_pod: impl Fn(&str, &str) -> Option<String>,
) -> String {
    let mut out = String::new();
    let bots = model(instances, sessions, findings, end, bot_of_pod);
    for b in &bots {
        render_bot(&mut out, b);
    }
    if bots.is_empty() {
        out.push_str("No bot sessions found in the input.\n");
    }
    out
}

fn render_bot(out: &mut String, b: &BotTimeline) {
    let (bot, start, end) = (&b.bot, b.start, b.end);
    let span = (end - start).num_milliseconds().max(1) as f64;
    let col = |t: Timestamp| -> usize {
        let x = (t - start).num_milliseconds() as f64 / span * WIDTH as f64;
        (x.max(0.0) as usize).min(WIDTH - 1)
    };
    let _ = writeln!(out, "== {bot} ==");
    let _ = writeln!(
        out,
        "{:<34}{}{}{}",
        "",
        start.format("%m-%d %H:%M:%S"),
        " ".repeat(WIDTH.saturating_sub(28)),
        end.format("%m-%d %H:%M:%S")
    );
    let _ = writeln!(
        out,
        "{:<34}|{}| 1 column = {}",
        "",
        "-".repeat(WIDTH - 2),
        human(span / 1000.0 / WIDTH as f64)
    );
    let paint = |stretches: &[Stretch]| -> String {
        let mut row = vec![' '; WIDTH];
        for s in stretches {
            match s.what {
                Mark::Finding { point: true, .. } => row[col(s.from)] = s.what.char(),
                m => fill(&mut row, col(s.from), col(s.to), m.char()),
            }
        }
        row.into_iter().collect()
    };
    for p in &b.pods {
        let pod = &p.pod;
        let short = if pod.len() > 32 {
            &pod[pod.len() - 32..]
        } else {
            pod
        };
        let _ = writeln!(out, "  {short:<32}{}", paint(&p.life));
        let _ = writeln!(out, "  {:<32}{}", "  session", paint(&p.sessions));
    }
    let _ = writeln!(out, "{}\n", legend());
    let findings = &b.findings;
    if findings.is_empty() {
        let _ = writeln!(out, "  No findings for {bot}.\n");
        return;
    }
    let _ = writeln!(out, "  Findings:");
    for f in findings {
        let until = f
            .until
            .map(|u| format!("until {}", u.format("%H:%M:%S")))
            .unwrap_or_else(|| "still active".into());
        let subject = match f.subject.pod_name() {
            None => String::new(),
            Some(pod) => format!(" pod {pod}"),
        };
        let _ = writeln!(
            out,
            "  [{}] {}{subject} since {} ({until})",
            f.severity.as_str(),
            f.kind.as_str(),
            f.since.format("%H:%M:%S"),
        );
        for l in wrap(&f.explanation, 96) {
            let _ = writeln!(out, "      {l}");
        }
        let _ = writeln!(out, "      what to do: {}", f.runbook);
        for e in f.evidence.iter().take(4) {
            let text: String = e.text.chars().take(140).collect();
            let _ = writeln!(
                out,
                "      evidence {}  {}",
                e.at.format("%H:%M:%S%.3f"),
                text
            );
        }
    }
    out.push('\n');
}

/// Each kind's timeline mark in its legend rank (from the kinds' metadata, so a new kind's
/// mark needs no edit here).
pub fn finding_legend() -> Vec<Legend> {
    let mut marks: Vec<Legend> = Kind::ALL
        .iter()
        .filter_map(|k| match k.meta().timeline {
            TimelineMark::None => None,
            TimelineMark::Span(l) | TimelineMark::Point(l) => Some(l),
        })
        .collect();
    marks.sort_by_key(|l| l.rank);
    marks
}

/// The legend under each bot's rows: the lifecycle marks, then each kind's timeline mark in
/// its legend rank (from the kinds' metadata, so a new kind's mark needs no edit here).
fn legend() -> String {
    let mut out = String::from("  legend:");
    for (m, means) in LIFECYCLE {
        let _ = write!(out, " {} {means} ", m.char());
    }
    out.pop();
    for l in finding_legend() {
        let _ = write!(out, "  {} {}", l.mark, l.means);
    }
    out
}

/// Word-wraps `text` at `width` columns.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = vec![String::new()];
    for word in text.split_whitespace() {
        let cur = lines.last_mut().expect("one line at least");
        if !cur.is_empty() && cur.chars().count() + 1 + word.chars().count() > width {
            lines.push(word.to_string());
        } else {
            if !cur.is_empty() {
                cur.push(' ');
            }
            cur.push_str(word);
        }
    }
    lines
}

fn fill(row: &mut [char], a: usize, b: usize, c: char) {
    for x in row.iter_mut().take(b.max(a) + 1).skip(a) {
        *x = c;
    }
}

fn human(secs: f64) -> String {
    if secs >= 3600.0 {
        format!("{:.1} h", secs / 3600.0)
    } else if secs >= 60.0 {
        format!("{:.1} min", secs / 60.0)
    } else {
        format!("{secs:.1} s")
    }
}
