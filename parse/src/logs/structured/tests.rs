//! Decoding JSON and logfmt lines and rendering them as fmt lines.

use super::*;

fn json(line: &str) -> String {
    let mut out = Vec::new();
    assert!(render_json(
        line.as_bytes(),
        &StructuredFields::default(),
        &mut out
    ));
    String::from_utf8(out).unwrap()
}

fn logfmt(line: &str) -> String {
    let mut out = Vec::new();
    assert!(render_logfmt(
        line.as_bytes(),
        &StructuredFields::default(),
        &mut out
    ));
    String::from_utf8(out).unwrap()
}

#[test]
fn tracing_json_renders_like_fmt() {
    let l = r#"{"timestamp":"2026-04-19T04:12:04.912640Z","level":"INFO","fields":{"message":"discord bot connected","user":"AgentBroker"},"target":"openab::discord"}"#;
    assert_eq!(
        json(l),
        " INFO openab::discord: discord bot connected user=AgentBroker"
    );
    let l = r#"{"timestamp":"2026-04-19T04:15:58Z","level":"INFO","fields":{"message":"batch dispatched","thread_key":"discord:1"},"target":"openab::dispatch","span":{"channel":"1","name":"dispatch"},"spans":[{"adapter":"discord","channel":"1","name":"dispatch"}]}"#;
    assert_eq!(
        json(l),
        " INFO dispatch{adapter=discord channel=1}: openab::dispatch: batch dispatched thread_key=discord:1"
    );
    // Flattened events: the fields are top-level.
    let l = r#"{"timestamp":"2026-04-19T04:12:04Z","level":"DEBUG","message":"received dispatch","event_type":"READY","target":"twilight_gateway::shard"}"#;
    assert_eq!(
        json(l),
        "DEBUG twilight_gateway::shard: received dispatch event_type=READY"
    );
}

#[test]
fn pino_and_python_json() {
    let l = r#"{"level":20,"time":1776571924912,"pid":7,"hostname":"bot-0","msg":"[WS => Shard 0] Identifying\n\tshard id: 0"}"#;
    assert_eq!(
        json(l),
        "DEBUG [WS => Shard 0] Identifying\n\tshard id: 0 hostname=bot-0 pid=7"
    );
    let l = r#"{"asctime": "2026-04-19 04:12:27", "levelname": "WARNING", "name": "discord.gateway", "message": "Shard ID None session has been invalidated."}"#;
    assert_eq!(
        json(l),
        " WARN discord.gateway: Shard ID None session has been invalidated."
    );
    assert!(!render_json(
        b"[1,2]",
        &StructuredFields::default(),
        &mut Vec::new()
    ));
    assert!(!render_json(
        b"{\"a\":",
        &StructuredFields::default(),
        &mut Vec::new()
    ));
}

#[test]
fn logfmt_renders_like_fmt() {
    let l = r#"time=2026-04-19T04:12:04Z level=info target=openab::discord msg="discord bot connected" user=AgentBroker"#;
    assert_eq!(
        logfmt(l),
        " INFO openab::discord: discord bot connected user=AgentBroker"
    );
    let l = r#"ts=1 lvl=warn msg="say \"hi\"\tnow" bare k="v w""#;
    assert_eq!(logfmt(l), " WARN say \"hi\"\tnow bare k=\"v w\"");
    assert!(!render_logfmt(
        b"level=info no message",
        &StructuredFields::default(),
        &mut Vec::new()
    ));
    // Unterminated quotes and lone escapes do not panic.
    logfmt("msg=\"abc\\");
    logfmt("msg=\"");
}

#[test]
fn times_without_decoding() {
    let map = StructuredFields::default();
    let t = |s: &str, f| line_time(s.as_bytes(), f, &map).map(|t| t.to_rfc3339());
    assert_eq!(
        t(
            r#"{"timestamp":"2026-04-19T04:12:04.5Z","x":1}"#,
            Format::Json
        )
        .as_deref(),
        Some("2026-04-19T04:12:04.500+00:00")
    );
    assert_eq!(
        t(r#"{"level":30, "time" : 1776571924912}"#, Format::Json).as_deref(),
        Some("2026-04-19T04:12:04.912+00:00")
    );
    assert_eq!(
        t(r#"{"ts":1776571924.25}"#, Format::Json).as_deref(),
        Some("2026-04-19T04:12:04.250+00:00")
    );
    assert_eq!(
        t("level=info ts=2026-04-19T04:12:04Z msg=x", Format::Logfmt).as_deref(),
        Some("2026-04-19T04:12:04+00:00")
    );
    assert_eq!(t(r#"{"msg":"x"}"#, Format::Json), None);
    assert_eq!(t(r#"{"time":"soon"}"#, Format::Json), None);
    assert_eq!(t(r#"{"time":-5}"#, Format::Json), None);
    assert_eq!(t(r#"{"time":1e400}"#, Format::Json), None);
}

#[test]
fn structured_times_with_offsets_commas_and_zones() {
    let map = StructuredFields::default();
    let berlin: LogZone = "Europe/Berlin".parse().unwrap();
    let t = |s: &str, f, z| line_time_in(s.as_bytes(), f, &map, z).map(|t| t.to_rfc3339());
    // python's asctime: comma fraction, no zone: local time in the configured zone.
    let py = r#"{"asctime": "2026-04-19 06:12:27,250", "levelname": "INFO", "message": "x"}"#;
    assert_eq!(
        t(py, Format::Json, LogZone::Utc).as_deref(),
        Some("2026-04-19T06:12:27.250+00:00")
    );
    assert_eq!(
        t(py, Format::Json, berlin).as_deref(),
        Some("2026-04-19T04:12:27.250+00:00")
    );
    // Its own offset wins over the zone.
    assert_eq!(
        t(
            "time=2026-04-19T07:12:04+03:00 level=info msg=x",
            Format::Logfmt,
            berlin
        )
        .as_deref(),
        Some("2026-04-19T04:12:04+00:00")
    );
}

#[test]
fn formats_by_first_bytes() {
    assert_eq!(line_format(b"  {\"a\":1}", Format::Auto), Format::Json);
    assert_eq!(
        line_format(b"level=info msg=x", Format::Auto),
        Format::Logfmt
    );
    assert_eq!(line_format(b"lvl", Format::Auto), Format::Text);
    assert_eq!(line_format(b"level=info", Format::Json), Format::Text);
    assert_eq!(line_format(b"{", Format::Text), Format::Text);
    assert_eq!(line_format(b"anything", Format::Logfmt), Format::Logfmt);
    assert_eq!(level_str(b"warning"), Some("WARN"));
    assert_eq!(level_str(b"verylonglevel"), None);
}
