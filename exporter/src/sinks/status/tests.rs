//! The page from hand-built snapshots: every kind rendered from its metadata, everything from
//! the inputs escaped, the window and the modes. The browser test (`tests/it/status_page.rs`)
//! checks the page of the demo and of the examples in Chromium.

use std::sync::Arc;

use chrono::TimeDelta;

use super::{Mode, SourceLine, StatusConfig, render};
use dge_core::engine::{Evidence, Finding, Instance, Kind, Snapshot, Subject};
use dge_core::observation::Timestamp;

fn t0() -> Timestamp {
    chrono::DateTime::parse_from_rfc3339("2026-04-19T04:00:00Z")
        .unwrap()
        .to_utc()
}

const HOSTILE: &str = "<script>alert('x')</script> & \"quoted\" <img src=x onerror=y>";

fn finding(id: u64, kind: Kind, bot: &str, pod: &str, since: Timestamp) -> Finding {
    Finding {
        id,
        kind,
        bot: bot.into(),
        subject: Subject::pod("bots", pod, Some(0)),
        since,
        until: None,
        severity: kind.meta().severity,
        explanation: format!("{} explained {HOSTILE}", kind.as_str()),
        evidence: vec![Evidence {
            at: since,
            source: Arc::from("file:/var/log/<pod>.log"),
            text: HOSTILE.into(),
        }],
        runbook: kind.runbook(),
        session: None,
    }
}

fn pod(name: &str, created: Timestamp, deleted: Option<Timestamp>) -> Instance {
    let mut i = Instance::new("bots", name, created);
    i.created_at = Some(created);
    i.runs = vec![(created, deleted)];
    i.deleted_at = deleted;
    i.exited_at = deleted;
    i.bot = Some("Bot<1>".into());
    i
}

fn snapshot() -> Snapshot {
    let now = t0() + TimeDelta::hours(5);
    Snapshot {
        at: Some(now),
        findings: Kind::ALL
            .iter()
            .enumerate()
            .map(|(i, k)| {
                finding(
                    i as u64,
                    *k,
                    "Bot<1>",
                    "bot-1-new",
                    now - TimeDelta::minutes(3),
                )
            })
            .collect(),
        instances: vec![
            pod("bot-1-ancient", t0(), Some(t0() + TimeDelta::minutes(30))),
            pod("bot-1-new", now - TimeDelta::minutes(10), None),
        ],
        ..Snapshot::default()
    }
}

#[test]
fn every_kind_renders_from_its_metadata_with_its_runbook() {
    let cfg = StatusConfig::default();
    let page = render(&snapshot(), &[], &cfg, Mode::Live);
    assert!(!Kind::ALL.is_empty());
    for k in Kind::ALL {
        assert!(
            page.contains(&format!("data-kind=\"{}\"", k.as_str())),
            "{} missing",
            k.as_str()
        );
        let href = format!("href=\"{}{}\"", cfg.runbook_base_url, k.runbook());
        assert!(page.contains(&href), "{href}");
    }
}

#[test]
fn everything_from_the_inputs_is_escaped() {
    let sources = [SourceLine {
        name: "file:<x>".into(),
        up: false,
        detail: HOSTILE.into(),
    }];
    let page = render(&snapshot(), &sources, &StatusConfig::default(), Mode::Live);
    assert!(!page.contains("<script"), "no script at all");
    assert!(!page.contains("<img"));
    assert!(
        !page.contains("Bot<1>"),
        "the bot name is escaped everywhere"
    );
    assert!(page.contains("Bot&lt;1&gt;"));
    assert!(
        page.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;quoted&quot;")
    );
    assert!(page.contains("file:&lt;x&gt;"));
    assert!(page.contains("id=\"bot-Bot-1-\""), "a safe anchor");
    assert!(page.contains("✖ DOWN"), "a down source says so in words");
}

#[test]
fn the_live_page_reloads_and_shows_its_window_a_report_does_not() {
    let snap = snapshot();
    let cfg = StatusConfig::default();
    let live = render(&snap, &[], &cfg, Mode::Live);
    assert!(live.contains("<meta http-equiv=\"refresh\" content=\"15\">"));
    assert!(live.contains("Timeline (last 3 h)"));
    // The pod deleted four and a half hours ago is outside the 3 h window.
    assert!(!live.contains("data-pod=\"bot-1-ancient\""));
    assert!(live.contains("1 older pod(s) ended before this period"));
    assert!(live.contains("3 min ago"));
    // A close-up of the last 15 min, which holds the active findings' start.
    assert!(live.contains("Close-up (last 15 min)"));

    let report = render(&snap, &[], &cfg, Mode::Replay);
    assert!(!report.contains("http-equiv=\"refresh\""));
    assert!(report.contains("Timeline (the whole capture)"));
    assert!(report.contains("data-pod=\"bot-1-ancient\""));
    assert!(report.contains("3 min before the capture's end"));
    assert!(!report.contains("Close-up"));
}

#[test]
fn runbook_links_follow_the_configured_base() {
    let snap = snapshot();
    let relative = StatusConfig {
        runbook_base_url: String::new(),
        ..StatusConfig::default()
    };
    let page = render(&snap, &[], &relative, Mode::Replay);
    assert!(page.contains("href=\"docs/troubleshooting.md#"));
    assert!(StatusConfig::default().validate().is_ok());
    let bad = StatusConfig {
        runbook_base_url: "javascript:alert(1)".into(),
        ..StatusConfig::default()
    };
    assert!(bad.validate().is_err());
    let no_window = StatusConfig {
        window_hours: 0,
        ..StatusConfig::default()
    };
    assert!(no_window.validate().is_err());
}

#[test]
fn an_empty_snapshot_is_a_readable_page() {
    let page = render(
        &Snapshot::default(),
        &[],
        &StatusConfig::default(),
        Mode::Live,
    );
    assert!(page.contains("No bot seen yet"));
    assert!(page.contains("No source reported yet."));
    assert!(page.ends_with("</html>\n"));
}
