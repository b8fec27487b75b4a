//! The text timeline of `replay`: per bot, one pair of rows per pod on a common time axis, then
//! the findings with their explanations.

use std::collections::BTreeSet;
use std::fmt::Write;

use dge_core::engine::{Finding, Instance, Kind, Legend, Session, TimelineMark};
use dge_core::observation::Timestamp;

const WIDTH: usize = 64;

/// Renders the whole report.
pub fn render(
    instances: &[&Instance],
    sessions: &[&Session],
    findings: &[Finding],
    end: Timestamp,
    bot_of_pod: impl Fn(&str, &str) -> Option<String>,
) -> String {
    let mut out = String::new();
    let bots: BTreeSet<String> = sessions
        .iter()
        .map(|s| s.bot.clone())
        .chain(findings.iter().map(|f| f.bot.clone()))
        .collect();
    for bot in &bots {
        let pods: Vec<&Instance> = instances
            .iter()
            .copied()
            .filter(|i| bot_of_pod(&i.namespace, &i.pod).as_deref() == Some(bot.as_str()))
            .collect();
        let bot_sessions: Vec<&Session> =
            sessions.iter().copied().filter(|s| &s.bot == bot).collect();
        let bot_findings: Vec<&Finding> = findings.iter().filter(|f| &f.bot == bot).collect();
        render_bot(&mut out, bot, &pods, &bot_sessions, &bot_findings, end);
    }
    if bots.is_empty() {
        out.push_str("No bot sessions found in the input.\n");
    }
    out
}

fn render_bot(
    out: &mut String,
    bot: &str,
    pods: &[&Instance],
    sessions: &[&Session],
    findings: &[&Finding],
    end: Timestamp,
) {
    let start = pods
        .iter()
        .map(|i| i.created_at.unwrap_or(i.first_seen))
        .chain(sessions.iter().map(|s| s.ready_at))
        .min()
        .unwrap_or(end);
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
    for (_, ns, pod) in &pod_names {
        let mut life = vec![' '; WIDTH];
        if let Some(i) = pods.iter().find(|i| &i.namespace == ns && &i.pod == pod) {
            let created = i.created_at.unwrap_or(i.first_seen);
            let gone = i.deleted_at.or(i.exited_at).unwrap_or(end);
            fill(&mut life, col(created), col(gone), '.');
            for (a, b) in &i.runs {
                fill(&mut life, col(*a), col(b.unwrap_or(end)), '#');
            }
            if let Some(t) = i.terminating_at {
                let stop = i.exited_at.filter(|e| *e >= t).unwrap_or(end);
                fill(&mut life, col(t), col(stop), '+');
            }
        }
        let mut sess = vec![' '; WIDTH];
        for s in sessions
            .iter()
            .filter(|s| &s.namespace == ns && &s.pod == pod)
        {
            let ended = s.ended_at.unwrap_or(end);
            fill(&mut sess, col(s.ready_at), col(ended), '=');
            if let Some(u) = s.live_until.filter(|u| Some(*u) != s.ended_at) {
                fill(&mut sess, col(ended), col(u.min(end)), '~');
            }
        }
        for f in findings.iter().filter(|f| f.subject.is_pod(ns, pod)) {
            let a = col(f.since);
            let b = col(f.until.unwrap_or(end));
            match f.kind.meta().timeline {
                TimelineMark::None => {}
                TimelineMark::Span(l) => fill(&mut sess, a, b, l.mark),
                TimelineMark::Point(l) => sess[a] = l.mark,
            }
        }
        let short = if pod.len() > 32 {
            &pod[pod.len() - 32..]
        } else {
            pod
        };
        let _ = writeln!(out, "  {short:<32}{}", life.iter().collect::<String>());
        let _ = writeln!(
            out,
            "  {:<32}{}",
            "  session",
            sess.iter().collect::<String>()
        );
    }
    let _ = writeln!(out, "{}\n", legend());
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

/// The legend under each bot's rows: the lifecycle marks, then each kind's timeline mark in
/// its legend rank (from the kinds' metadata, so a new kind's mark needs no edit here).
fn legend() -> String {
    let mut marks: Vec<Legend> = Kind::ALL
        .iter()
        .filter_map(|k| match k.meta().timeline {
            TimelineMark::None => None,
            TimelineMark::Span(l) | TimelineMark::Point(l) => Some(l),
        })
        .collect();
    marks.sort_by_key(|l| l.rank);
    let mut out = String::from(
        "  legend: # running  + terminating  . pending/exited  = session live  ~ lingering on Discord",
    );
    for l in marks {
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
