//! The profile API beyond what the golden files show: user rules and their errors, the
//! built-in registry (and its loader's errors), configurable JSON keys, auto-detection, token
//! redaction, and the evidence of decoded and continued lines.

use std::sync::Arc;

use dge_core::observation::SessionEvent;
use dge_parse::logs::{
    Builtins, Fields, Framing, Outcome, Placement, Profile, ProfileError, Rule, builtin_names,
    builtin_profile, classify_log_bytes, library_names,
};

use crate::support::{TOKEN, session, stream, stream_with, ts};

#[test]
fn tokens_never_reach_an_observation() {
    let lines = [
        format!(
            "2026-04-19T04:12:04Z ERROR openab: Discord rejected bot token. Verify your bot_token {TOKEN}"
        ),
        format!("2026-04-19T04:12:05Z  INFO openab::discord: discord bot connected user={TOKEN}"),
        format!(
            "2026-04-19T04:12:06Z  INFO openab::discord: denied user, ignoring header=\"Bot {TOKEN}\""
        ),
        format!(
            "[2026-04-19 04:12:26] [DEBUG   ] discord.http: GET /gateway/bot with Authorization: Bot {TOKEN}"
        ),
        // Split over CRI partial lines: joined first, then redacted.
        format!(
            "2026-04-19T04:12:07Z stdout P 2026-04-19T04:12:07Z  INFO openab: SIGTERM received by {}",
            &TOKEN[..30]
        ),
        format!("2026-04-19T04:12:07Z stdout F {}", &TOKEN[30..]),
    ];
    let user = Profile::from_toml(
        r#"
        name = "user"
        [[rule]]
        name = "user.token_error"
        literal = "login failed"
        regex = 'login failed: (?P<reason>.*)'
        event = "fatal"
        "#,
    )
    .unwrap();
    let profile = Profile::builtin("auto")
        .unwrap()
        .with_user_rules(user.rules, Placement::After)
        .compile()
        .unwrap();
    let mut log = lines.join("\n");
    log += &format!("\n2026-04-19T04:12:08Z login failed: token {TOKEN} rejected");
    let mut s = stream_with(Arc::new(profile), Framing::Auto);
    let mut out = Vec::new();
    let mut classified = Vec::new();
    classify_log_bytes(log.as_bytes(), &mut s, &mut out, |_, c| classified.push(c));
    let events: Vec<&str> = out.iter().map(|o| session(o).event.name()).collect();
    assert_eq!(
        events,
        ["fatal", "ready", "dispatch", "shutting_down", "fatal"]
    );
    let json = serde_json::to_string(&out).unwrap();
    let debug = format!("{out:?} {classified:?}");
    for hay in [&json, &debug] {
        assert!(!hay.contains(TOKEN), "token leaked: {hay}");
        assert!(
            !hay.contains("abcdefghijklmnopqrstuvwxyz0123456789AB"),
            "token part leaked"
        );
    }
    assert_eq!(session(&out[1]).bot.as_deref(), Some("[REDACTED]"));
    assert_eq!(
        session(&out[4]).event,
        SessionEvent::Fatal {
            reason: "token [REDACTED] rejected".into(),
            code: None
        }
    );
    assert!(
        session(&out[3])
            .line
            .as_ref()
            .unwrap()
            .text()
            .ends_with("SIGTERM received by [REDACTED]")
    );
}

#[test]
fn user_rules_and_errors() {
    let user = Profile::from_toml(
        r#"
        name = "mine"
        [[rule]]
        name = "mine.connected"
        literal = "connected to Discord as"
        regex = '${tracing}mybot(?:::\w+)*: connected to Discord as (?P<bot>\S+) \(shard (?P<shard>\d+)\)'
        event = "ready"
        [[rule]]
        name = "mine.override"
        literal = "discord bot running"
        event = "identifying"
        "#,
    )
    .unwrap();
    let before = Profile::builtin("auto")
        .unwrap()
        .with_user_rules(user.rules.clone(), Placement::Before)
        .compile()
        .unwrap();
    let after = Profile::builtin("openab")
        .unwrap()
        .with_user_rules(user.rules.clone(), Placement::After)
        .compile()
        .unwrap();
    let line = b"2026-04-19T04:12:03Z  INFO mybot::gw: connected to Discord as Helper (shard 2)";
    for p in [&before, &after] {
        let m = p.match_text(line).unwrap();
        assert_eq!(
            (m.rule, m.bot.as_deref(), m.shard),
            ("mine.connected", Some("Helper"), Some(2))
        );
    }
    let running = b"2026-04-19T04:12:03Z  INFO openab: discord bot running";
    assert_eq!(before.match_text(running).unwrap().rule, "mine.override");
    assert_eq!(after.match_text(running).unwrap().rule, "openab.starting");

    let bad = Rule::new("mine.bad", "x", "ready").with_regex("connected (?P<bot>[a-z");
    let err = Profile::builtin("openab")
        .unwrap()
        .with_user_rules([bad], Placement::After)
        .compile()
        .unwrap_err();
    match &err {
        ProfileError::Regex { rule, position, .. } => {
            assert_eq!(rule, "mine.bad");
            assert_eq!(*position, Some(19), "the unclosed [");
        }
        other => panic!("{other:?}"),
    }
    assert!(err.to_string().contains("mine.bad"), "{err}");
    assert!(err.to_string().contains("column 19"), "{err}");

    let fields = Fields {
        reason: Some("x".into()),
        ..Fields::default()
    };
    let err = Profile::builtin("serenity")
        .unwrap()
        .with_user_rules(
            [Rule::new("mine.r", "x", "ready").with_fields(fields)],
            Placement::After,
        )
        .compile()
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "rule \"mine.r\": field reason does not apply to event ready"
    );
    assert!(matches!(
        dge_parse::logs::compile_profile("nope", [], Placement::After),
        Err(ProfileError::UnknownProfile(_))
    ));
}

#[test]
fn single_profiles_only_know_their_library() {
    let openab = builtin_profile("openab").unwrap();
    let py = "[2026-04-19 04:12:26] [INFO    ] discord.client: logging in using static token";
    assert!(openab.match_text(py.as_bytes()).is_none());
    let discordpy = builtin_profile("discordpy").unwrap();
    assert_eq!(
        discordpy.match_text(py.as_bytes()).unwrap().rule,
        "discordpy.starting"
    );
    let twilight = builtin_profile("twilight").unwrap();
    assert!(twilight.match_text(py.as_bytes()).is_none());
    assert!(builtin_profile("discord.js").is_none());
}

#[test]
fn configurable_json_fields() {
    // A logger with its own keys: `when`, `sev`, `text`, `component`.
    let mut p = Profile::builtin("json").unwrap();
    p.json = Some(dge_parse::logs::StructuredFields {
        time: vec!["when".into()],
        level: vec!["sev".into()],
        message: vec!["text".into()],
        target: vec!["component".into()],
        fields: vec![],
        spans: None,
        rest: true,
    });
    let p = Arc::new(p.compile().unwrap());
    let mut s = stream_with(p, Framing::Auto);
    let mut out = Vec::new();
    let line = br#"{"when":"2026-04-19T04:12:04Z","sev":"INFO","component":"openab::discord","text":"discord bot connected","user":"Mapped"}"#;
    assert_eq!(s.push_line(line, &mut out), Outcome::Matched);
    assert_eq!(out[0].at, ts("2026-04-19T04:12:04Z"));
    assert_eq!(session(&out[0]).bot.as_deref(), Some("Mapped"));
    // With the default keys the same line has no message: read as text, no match.
    let mut s = stream_with(builtin_profile("json").unwrap(), Framing::Kubectl);
    let prefixed = [&b"2026-04-19T04:12:04Z "[..], line].concat();
    assert_eq!(s.push_line(&prefixed, &mut out), Outcome::Ignored);
}

#[test]
fn auto_detection_narrows_to_the_library_seen() {
    let mut s = stream(Framing::Auto);
    let mut out = Vec::new();
    let twilight = b"2026-04-19T05:00:00Z DEBUG twilight_gateway::shard: sending identify";
    // Before detection settles, every library's rules are tried.
    assert_eq!(s.push_line(twilight, &mut out), Outcome::Matched);
    assert_eq!(s.detected(), None);
    for i in 0..60 {
        let l = format!(
            "2026-04-19T04:{:02}:00Z  INFO dispatch{{channel=1}}: openab::dispatch: batch dispatched n={i}",
            i % 60
        );
        assert_eq!(s.push_line(l.as_bytes(), &mut out), Outcome::Matched);
    }
    let mut families = s.detected().unwrap();
    families.sort();
    assert_eq!(families, vec!["serenity", "twilight"]);
    // Narrowed: discord.py's lines are no longer read; serenity's (OpenAB's family) still are.
    let py = b"[2026-04-19 04:12:26] [INFO    ] discord.client: logging in using static token";
    assert_eq!(s.push_line(py, &mut out), Outcome::Ignored);
    let ser = b"2026-04-19T04:12:27Z INFO  serenity::gateway::shard: [ShardInfo { id: ShardId(0), total: 1 }] Resumed";
    assert_eq!(s.push_line(ser, &mut out), Outcome::Matched);
    // User rules are always tried.
    let p = dge_parse::logs::compile_profile(
        "auto",
        [Rule::new("mine.dispatch", "handled a message", "dispatch")],
        Placement::After,
    )
    .unwrap();
    let mut s = stream_with(p, Framing::Auto);
    for _ in 0..60 {
        s.push_line(
            b"2026-04-19T04:00:00Z  INFO openab::dispatch: batch dispatched",
            &mut out,
        );
    }
    assert_eq!(s.detected(), Some(vec!["serenity"]));
    assert_eq!(
        s.push_line(b"2026-04-19T04:00:01Z handled a message", &mut out),
        Outcome::Matched
    );
    // Off: no narrowing.
    let mut s = stream(Framing::Auto).with_detection(false);
    for _ in 0..60 {
        s.push_line(
            b"2026-04-19T04:00:00Z  INFO openab::dispatch: batch dispatched",
            &mut out,
        );
    }
    assert_eq!(s.detected(), None);
    assert_eq!(s.push_line(py, &mut out), Outcome::Matched);
}

#[test]
fn continued_and_decoded_lines_keep_their_evidence() {
    // discord.js: the message so far (its first line and the continuation lines up to the one
    // that completes the rule), at that line's time.
    let log = "2026-04-19T05:00:00Z [WS => Shard 0] Destroying shard\n\
               2026-04-19T05:00:00.1Z \tReason: Got disconnected by Discord\n\
               2026-04-19T05:00:00.2Z \tCode: 1000\n";
    let mut s = stream(Framing::Auto);
    let mut out = Vec::new();
    dge_parse::logs::read_log_bytes(log.as_bytes(), &mut s, &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(
        session(&out[0]).line.as_ref().map(|l| l.text()).as_deref(),
        Some(
            "[WS => Shard 0] Destroying shard\n\tReason: Got disconnected by Discord\n\tCode: 1000"
        )
    );
    assert_eq!(out[0].at, ts("2026-04-19T05:00:00.2Z"));
    // Only discord.js reads continuations: in the openab profile a tab-led line is a line.
    assert!(!builtin_profile("openab").unwrap().continues(u64::MAX));
    assert!(builtin_profile("discordjs").unwrap().continues(u64::MAX));
    // A JSON line's evidence is the decoded line.
    let json = r#"{"timestamp":"2026-04-19T04:12:04.912640Z","level":"INFO","fields":{"message":"discord bot connected","user":"AgentBroker"},"target":"openab::discord"}"#;
    let mut s = stream(Framing::Auto);
    assert_eq!(s.push_line(json.as_bytes(), &mut out), Outcome::Matched);
    assert_eq!(
        session(&out[1]).line.as_ref().map(|l| l.text()).as_deref(),
        Some(" INFO openab::discord: discord bot connected user=AgentBroker")
    );
}

#[test]
fn space_indented_messages_are_read_whole() {
    // discord.js v13 indents its multi-line messages with four spaces; the rules read the
    // whole message so far, so `Remaining:` is read with the `Total:` before it. A
    // continuation line takes its message's time.
    let log = "2026-04-19T05:00:00Z [WS => Manager] Session Limit Information\n    \
               Total: 1000\n    Remaining: 998\n\
               2026-04-19T05:00:01Z [WS => Shard 0] [CLOSE]\n    Event Code: 4014\n    Clean     : true\n";
    let mut s = stream(Framing::Auto);
    let mut out = Vec::new();
    dge_parse::logs::read_log_bytes(log.as_bytes(), &mut s, &mut out);
    let events: Vec<_> = out.iter().map(|o| session(o).event.clone()).collect();
    assert_eq!(
        events,
        vec![
            SessionEvent::SessionLimit {
                total: Some(1000),
                remaining: Some(998),
                reset_after_ms: None
            },
            SessionEvent::Closed { code: Some(4014) },
        ]
    );
    // Two spaces (tracing's `pretty` layout) do not continue a message: the line is its own.
    let p = builtin_profile("discordjs").unwrap();
    assert!(p.continues_line(b"    Event Code: 1006", u64::MAX));
    assert!(p.continues_line(b"\tCode: 1000", u64::MAX));
    assert!(!p.continues_line(b"  2026-04-19T05:00:00Z  INFO serenity: x", u64::MAX));
    assert!(
        !builtin_profile("openab")
            .unwrap()
            .continues_line(b"    x", u64::MAX)
    );
}

#[test]
fn builtin_profiles_come_from_the_files() {
    // The profiles of parse/profiles/ keep their order (a new file may come anywhere between
    // them, by its own `order`).
    let known = [
        "auto",
        "openab",
        "serenity",
        "twilight",
        "discordpy",
        "discordjs",
        "jda",
        "tracing-json",
        "logfmt",
        "json",
    ];
    let listed: Vec<&str> = builtin_names()
        .iter()
        .copied()
        .filter(|n| known.contains(n))
        .collect();
    assert_eq!(listed, known);
    let libraries: Vec<&str> = library_names()
        .iter()
        .copied()
        .filter(|n| known.contains(n))
        .collect();
    assert_eq!(
        libraries,
        [
            "openab",
            "serenity",
            "twilight",
            "discordpy",
            "discordjs",
            "jda"
        ]
    );
    // `auto`, `json` and `logfmt` include every library profile, in order.
    let rules = |name: &str| -> Vec<String> {
        builtin_profile(name)
            .unwrap()
            .rule_names()
            .map(str::to_owned)
            .collect()
    };
    let libraries: Vec<String> = library_names().iter().flat_map(|n| rules(n)).collect();
    for name in ["auto", "json", "logfmt"] {
        assert_eq!(rules(name), libraries, "{name}");
    }
    assert!(
        builtin_profile("common").is_none(),
        "common.toml holds vars, not a profile"
    );
    let e = dge_parse::logs::compile_profile("nope", [], Placement::After).unwrap_err();
    assert_eq!(
        e.to_string(),
        format!(
            "unknown profile \"nope\" (built-in: {})",
            builtin_names().join(", ")
        )
    );
}

fn with(extra: &[(&'static str, &'static str)]) -> Result<Builtins, ProfileError> {
    let builtin = dge_parse::logs::profile::builtin_toml().iter().copied();
    Builtins::from_texts(builtin.chain(extra.iter().copied()))
}

#[test]
fn a_new_profile_is_one_file() {
    // The test-only profile of the recipe (docs/profiles.md), read as the built-ins are.
    let testbot = include_str!("../profiles/testbot.toml");
    let reg = with(&[("testbot.toml", testbot)]).unwrap();
    assert!(reg.names().any(|n| n == "testbot"));
    let libraries: Vec<&str> = reg.library_names().collect();
    let at = |n: &str| libraries.iter().position(|l| *l == n).unwrap();
    assert!(at("testbot") > at("jda"), "order 1000: after jda");
    // `auto` of that set tries its rules after jda's, as its own family.
    let auto = reg.compile("auto").unwrap();
    let names: Vec<&str> = auto.rule_names().collect();
    let first = names
        .iter()
        .position(|r| r.starts_with("testbot."))
        .unwrap();
    let last_jda = names.iter().rposition(|r| r.starts_with("jda.")).unwrap();
    assert!(first > last_jda);
    assert_eq!(
        names.iter().filter(|r| r.starts_with("testbot.")).count(),
        7
    );
    assert!(auto.families().iter().any(|f| f == "testbot"));
    // The common vars (`${level}`) reach it.
    let m = auto
        .match_text(
            b"2026-04-19T04:12:04Z INFO testbot.gateway: ready as Helper on shard 2 session abc",
        )
        .unwrap();
    assert_eq!(
        (m.rule, m.bot.as_deref(), m.shard),
        ("testbot.ready", Some("Helper"), Some(2))
    );
    // The compiled-in set does not know it.
    assert!(builtin_profile("testbot").is_none());
}

#[test]
fn profile_files_that_cannot_load() {
    let err = |extra: &[(&'static str, &'static str)]| with(extra).unwrap_err().to_string();
    let e = err(&[("x.toml", "name = \"x\"\n")]);
    assert!(e.contains("x.toml") && e.contains("[builtin]"), "{e}");
    let e = err(&[(
        "dup.toml",
        "name = \"openab\"\n[builtin]\nkind = \"library\"\n",
    )]);
    assert!(e.contains("two built-in profiles have this name"), "{e}");
    let e = err(&[(
        "inc.toml",
        "name = \"inc\"\ninclude = [\"nope\"]\n[builtin]\nkind = \"profile\"\n",
    )]);
    assert!(e.starts_with("profile \"inc\": an include names no"), "{e}");
    let e = err(&[
        (
            "a.toml",
            "name = \"a\"\ninclude = [\"b\"]\n[builtin]\nkind = \"profile\"\n",
        ),
        (
            "b.toml",
            "name = \"b\"\ninclude = [\"a\"]\n[builtin]\nkind = \"profile\"\n",
        ),
    ]);
    assert!(e.contains("nest deeper"), "{e}");
    let e = err(&[("k.toml", "name = \"k\"\n[builtin]\nkind = \"plugin\"\n")]);
    assert!(e.contains("unknown variant"), "{e}");
}
