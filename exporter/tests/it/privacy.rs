//! What users wrote never leaves the exporter: DEBUG and TRACE lines that carry a gateway
//! payload (a message's text, its author's names and id) are matched and kept as evidence,
//! and no output holds the payload: `replay` text and JSON, the spans of `replay --otlp`,
//! `run`'s `/api/v1/*`, `/metrics`, `/healthz` and its recording. (Tokens: `otlp.rs` and the
//! parse crate's tests.)

use std::path::Path;
use std::time::Duration;

use crate::support::exporter::{Exporter, run};
use crate::support::otlp_receiver::{Receiver, all_text};

/// What a user wrote, a user's names and id: never in any output.
const SECRETS: [&str; 5] = [
    "my secret plan",
    "alice",
    "Alice Liddell",
    "412233445566778899",
    "Helper Secret Name",
];

/// discord.py's `log.debug('For Shard ID %s: WebSocket Event: %s', self.shard_id, msg)` (a
/// Python dict), for the READY that names the bot and a MESSAGE_CREATE.
fn discordpy(session: &str, times: &[&str]) -> String {
    let mut s = format!(
        "[2026-04-19 04:12:26] [INFO    ] discord.client: logging in using static token\n\
         [2026-04-19 {t0}] [DEBUG   ] discord.gateway: For Shard ID None: WebSocket Event: {{'t': 'READY', 's': 1, 'op': 0, 'd': {{'v': 10, 'user': {{'username': 'HelperBot', 'id': '1259347692690096105', 'global_name': 'Helper Secret Name'}}, 'session_id': '{session}', 'guilds': [{{'id': '1491295327620169908', 'unavailable': True}}]}}}}\n",
        t0 = times[0]
    );
    for (i, t) in times[1..].iter().enumerate() {
        s += &format!(
            "[2026-04-19 {t}] [DEBUG   ] discord.gateway: For Shard ID None: WebSocket Event: {{'t': 'MESSAGE_CREATE', 's': {seq}, 'op': 0, 'd': {{'type': 0, 'content': 'my secret plan', 'channel_id': '1496011987654321098', 'author': {{'username': 'alice', 'global_name': 'Alice Liddell', 'id': '412233445566778899'}}}}}}\n",
            seq = i + 2
        );
    }
    s
}

/// The capture: two discord.py pods of one bot that both get the messages (duplicate
/// delivery, so findings hold the payload lines as evidence), an OpenAB pod whose dispatch line
/// names its senders and that also logs serenity's TRACE of the event (Rust `Debug`), and a JDA
/// pod logging the raw JSON at TRACE.
fn capture(dir: &Path) {
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    std::fs::write(
        logs.join("helperbot-7d4b9f6c5-q7w3n.log"),
        discordpy(
            "50e9976fbd504c7fe9699035b1600dcc",
            &["04:12:27", "04:12:40", "04:12:50", "04:13:00"],
        ),
    )
    .unwrap();
    std::fs::write(
        logs.join("helperbot-7d4b9f6c5-x8k2m.log"),
        discordpy(
            "77aa976fbd504c7fe9699035b1600dcc",
            &["04:12:35", "04:12:41", "04:12:51", "04:13:01"],
        ),
    )
    .unwrap();
    std::fs::write(
        logs.join("agentbroker-5f7b9c6d8-p4m2z.log"),
        "2026-04-19T04:12:04.912640Z  INFO openab::discord: discord bot connected user=AgentBroker\n\
         2026-04-19T04:12:31.100000Z TRACE serenity::gateway::shard: [ShardInfo { id: ShardId(0), total: 1 }] Received event: Dispatch(7, MessageCreate(MessageCreateEvent { message: Message { id: MessageId(1), channel_id: ChannelId(1496011987654321098), author: User { id: UserId(412233445566778899), name: \"alice\", global_name: Some(\"Alice Liddell\") }, content: \"my secret plan\" } }))\n\
         2026-04-19T04:12:32.364881Z  INFO dispatch{channel=1496011987654321098 adapter=\"discord\"}: openab::dispatch: batch dispatched thread_key=discord:1496011987654321098 events_per_dispatch=1 senders=[\"alice\", \"Alice Liddell\"]\n",
    )
    .unwrap();
    std::fs::write(
        logs.join("tallybot-59c8d7f6b-m4n8p.log"),
        "2026-04-19T04:12:20Z [JDA MainWS-ReadThread] INFO JDA - Finished Loading!\n\
         2026-04-19T04:12:33Z [JDA MainWS-ReadThread] TRACE WebSocketClient - <- {\"op\":0,\"s\":9,\"t\":\"MESSAGE_CREATE\",\"d\":{\"content\":\"my secret plan\",\"channel_id\":\"1496011987654321098\",\"author\":{\"username\":\"alice\",\"global_name\":\"Alice Liddell\",\"id\":\"412233445566778899\"}}}\n",
    )
    .unwrap();
    // The user's own rules take the payload lines (the built-in ones read only READY's).
    let config = format!(
        r#"[[file]]
path = "{logs}/*.log"

[[rule]]
name = "mine.py_message"
literal = "'t': 'MESSAGE_CREATE'"
event = "dispatch"

[[rule]]
name = "mine.serenity_event"
literal = "Received event: Dispatch"
event = "dispatch"

[[rule]]
name = "mine.jda_message"
literal = "\"t\":\"MESSAGE_CREATE\""
event = "dispatch"
"#,
        logs = logs.display()
    );
    std::fs::write(dir.join("exporter.toml"), config).unwrap();
}

fn assert_clean(what: &str, text: &str) {
    for s in SECRETS {
        assert!(!text.contains(s), "{s:?} in {what}:\n{text}");
    }
}

#[test]
fn no_payload_text_reaches_any_output() {
    let dir = tempfile::tempdir().unwrap();
    capture(dir.path());
    let cfg = dir.path().join("exporter.toml");
    let cfg = cfg.to_str().unwrap();
    let logs = dir.path().join("logs");
    let logs = logs.to_str().unwrap();

    // replay, text and JSON: the payload lines were read and kept, cut.
    let text = run(&["replay", "--config", cfg, logs]);
    assert!(
        text.status.success(),
        "{}",
        String::from_utf8_lossy(&text.stderr)
    );
    let text = String::from_utf8(text.stdout).unwrap();
    assert_clean("replay's text", &text);
    let json = run(&["replay", "--format", "json", "--config", cfg, logs]);
    let json = String::from_utf8(json.stdout).unwrap();
    assert_clean("replay's JSON", &json);
    assert!(
        json.contains("duplicate_delivery"),
        "both helperbot pods got the messages: {json}"
    );
    assert!(
        json.contains(
            "WebSocket Event: {t: MESSAGE_CREATE, s: 3, op: 0, channel_id: 1496011987654321098, …}"
        ),
        "the evidence keeps the event type, sequence and channel: {json}"
    );

    // replay --otlp: every attribute, event and link of every span.
    let rx = Receiver::start();
    let out = std::process::Command::new(crate::support::exporter::BIN)
        .args(["replay", "--otlp", "--config", cfg, logs])
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", rx.endpoint())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let spans = rx.spans();
    assert!(!spans.is_empty());
    for g in &spans {
        for t in all_text(g) {
            assert_clean(&format!("span {}", g.span.name), &t);
        }
    }

    // run: the API, the metrics, the health and the recording.
    let record = dir.path().join("record.jsonl");
    let mut daemon = Exporter::start(
        &["run", "--config", cfg, "--record", record.to_str().unwrap()],
        dir.path(),
    );
    // (A live source reads one file after the other: the two pods' sessions overlap, their
    // deliveries do not line up in time as in replay.)
    daemon.wait_for(Duration::from_secs(20), "the concurrent sessions", |e| {
        e.get("/api/v1/findings")
            .contains("concurrent_sessions")
            .then_some(())
    });
    daemon.wait_for(Duration::from_secs(20), "every file read", |e| {
        e.get("/api/v1/sessions")
            .contains("tallybot-59c8d7f6b-m4n8p")
            .then_some(())
    });
    for path in [
        "/api/v1/findings",
        "/api/v1/sessions",
        "/metrics",
        "/healthz",
        "/",
    ] {
        assert_clean(path, &daemon.get(path));
    }
    assert!(daemon.sigterm(Duration::from_secs(10)).success());
    let recording = std::fs::read_to_string(&record).unwrap();
    assert_clean("the recording", &recording);
    for kept in [
        "{t: MESSAGE_CREATE, s: 9, op: 0, channel_id: 1496011987654321098, …}",
        "content: [cut]",
        "senders=[cut]",
    ] {
        assert!(
            recording.contains(kept),
            "{kept:?} in the recording:\n{recording}"
        );
    }
    assert_clean("the daemon's log", &daemon.output());
}
