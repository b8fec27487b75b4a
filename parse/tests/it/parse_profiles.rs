//! The built-in log profiles against the reference lines of `log-formats.md`, through the public
//! API: every rule, plain and ANSI-coloured, behind kubectl and CRI prefixes; look-alikes that
//! must not match; bad input (invalid UTF-8, binary garbage, huge lines, CRLF); token redaction.

use std::collections::BTreeSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use dge_core::observation::{Body, InstanceId, Observation, SessionEvent, SessionObservation};
use dge_parse::logs::{
    Classified, CompiledProfile, Fields, Framing, LogStream, Outcome, Placement, Profile,
    ProfileError, Rule, builtin_profile, classify_log_bytes, read_log_bytes,
};

const TOKEN: &str = "MTA1NjY3ODk2MjU4NzY1ODE4OA.GhI3kL.abcdefghijklmnopqrstuvwxyz0123456789AB";
const PRIME: &str = "2026-04-19T04:00:00Z  INFO openab: config loaded discord=true";

fn ts(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn instance() -> InstanceId {
    InstanceId::pod("bots", "agentbroker-7d9f8-x2x4q")
}

fn stream_with(profile: Arc<CompiledProfile>, framing: Framing) -> LogStream {
    LogStream::new(profile, framing, instance(), "file:test.log".into())
}

fn stream(framing: Framing) -> LogStream {
    stream_with(builtin_profile("auto").unwrap(), framing)
}

fn session(o: &Observation) -> &SessionObservation {
    match &o.body {
        Body::Session(s) => s,
        other => panic!("not a session observation: {other:?}"),
    }
}

/// Expected meaning of one line.
#[derive(Debug, Clone, PartialEq)]
struct Want {
    rule: &'static str,
    event: SessionEvent,
    bot: Option<&'static str>,
    shard: Option<u32>,
}

fn want(rule: &'static str, event: SessionEvent) -> Want {
    Want {
        rule,
        event,
        bot: None,
        shard: None,
    }
}

impl Want {
    fn bot(mut self, bot: &'static str) -> Self {
        self.bot = Some(bot);
        self
    }
    fn shard(mut self, shard: u32) -> Self {
        self.shard = Some(shard);
        self
    }
}

fn fatal(reason: &str, code: Option<u16>) -> SessionEvent {
    SessionEvent::Fatal {
        reason: reason.into(),
        code,
    }
}

fn dispatch(kind: &str) -> SessionEvent {
    SessionEvent::Dispatch {
        kind: Some(kind.into()),
    }
}

/// Classify `line` on a fresh stream primed with a timestamped line; assert the outcome and,
/// for a match, the rule, event, bot, shard and evidence.
fn check(framing: Framing, line: &[u8], expect: Option<&Want>) -> Classified {
    let mut s = stream(framing);
    let mut out = Vec::new();
    let prime = if framing == Framing::Cri {
        format!("2026-04-19T04:00:00Z stdout F {PRIME}")
    } else {
        PRIME.to_owned()
    };
    assert_eq!(s.push_line(prime.as_bytes(), &mut out), Outcome::Ignored);
    let c = s.classify_line(line, &mut out);
    let shown = String::from_utf8_lossy(line);
    match expect {
        None => {
            assert_eq!(c.outcome, Outcome::Ignored, "{shown}\n{c}");
            assert!(out.is_empty(), "{shown}: {out:?}");
        }
        Some(w) => {
            assert_eq!(c.outcome, Outcome::Matched, "{shown}\n{c}");
            assert_eq!(c.rule.as_deref(), Some(w.rule), "{shown}");
            assert_eq!(out.len(), 1, "{shown}");
            let o = &out[0];
            assert_eq!(&*o.source, "file:test.log");
            let so = session(o);
            assert_eq!(so.event, w.event, "{shown}");
            assert_eq!(so.bot.as_deref(), w.bot, "{shown}");
            assert_eq!(so.shard, w.shard, "{shown}");
            assert_eq!(*so.instance, instance());
            let evidence = so.line.as_deref().unwrap();
            assert!(
                !evidence.contains('\x1b'),
                "no ANSI in evidence: {evidence:?}"
            );
            assert!(!evidence.ends_with('\r'));
            assert_eq!(s.counts().matched, 1);
        }
    }
    assert_eq!(s.counts().lines(), 2);
    c
}

// ---------------------------------------------------------------------------------------------
// tracing-subscriber lines, plain and coloured the way its fmt layer colours them.

struct Tr {
    ts: &'static str,
    level: &'static str,
    /// `(name, [(field, value)])`
    spans: Vec<(&'static str, Vec<(&'static str, &'static str)>)>,
    target: &'static str,
    msg: &'static str,
    fields: Vec<(&'static str, &'static str)>,
}

fn tr(ts: &'static str, level: &'static str, target: &'static str, msg: &'static str) -> Tr {
    Tr {
        ts,
        level,
        spans: Vec::new(),
        target,
        msg,
        fields: Vec::new(),
    }
}

impl Tr {
    fn fields(mut self, f: &[(&'static str, &'static str)]) -> Self {
        self.fields = f.to_vec();
        self
    }
    fn span(mut self, name: &'static str, f: &[(&'static str, &'static str)]) -> Self {
        self.spans.push((name, f.to_vec()));
        self
    }

    fn plain(&self) -> String {
        let mut s = self.ts.to_string();
        if !self.ts.is_empty() {
            s.push(' ');
        }
        s += &format!("{:>5} ", self.level);
        if !self.spans.is_empty() {
            let spans: Vec<String> = self
                .spans
                .iter()
                .map(|(n, f)| {
                    if f.is_empty() {
                        n.to_string()
                    } else {
                        let f: Vec<String> = f.iter().map(|(k, v)| format!("{k}={v}")).collect();
                        format!("{n}{{{}}}", f.join(" "))
                    }
                })
                .collect();
            s += &format!("{}: ", spans.join(":"));
        }
        s += &format!("{}: {}", self.target, self.msg);
        for (k, v) in &self.fields {
            s += &format!(" {k}={v}");
        }
        s
    }

    fn ansi(&self) -> String {
        let colour = match self.level {
            "ERROR" => "31",
            "WARN" => "33",
            "INFO" => "32",
            "DEBUG" => "34",
            _ => "35",
        };
        let field = |k: &str, v: &str| format!("\x1b[3m{k}\x1b[0m\x1b[2m=\x1b[0m{v}");
        let mut s = String::new();
        if !self.ts.is_empty() {
            s += &format!("\x1b[2m{}\x1b[0m ", self.ts);
        }
        s += &format!("\x1b[{colour}m{:>5}\x1b[0m ", self.level);
        if !self.spans.is_empty() {
            for (n, f) in &self.spans {
                s += &format!("\x1b[1m{n}\x1b[0m");
                if !f.is_empty() {
                    let f: Vec<String> = f.iter().map(|(k, v)| field(k, v)).collect();
                    s += &format!("\x1b[1m{{\x1b[0m{}\x1b[1m}}\x1b[0m", f.join(" "));
                }
                s += "\x1b[2m:\x1b[0m";
            }
            s += " ";
        }
        s += &format!("\x1b[2m{}\x1b[0m\x1b[2m:\x1b[0m {}", self.target, self.msg);
        for (k, v) in &self.fields {
            s += &format!(" {}", field(k, v));
        }
        s
    }
}

/// Every tracing-format line: plain, coloured, behind kubectl and CRI prefixes, all framings
/// that apply.
fn check_tracing(line: &Tr, expect: Option<&Want>) {
    let plain = line.plain();
    let ansi = line.ansi();
    check(Framing::Auto, plain.as_bytes(), expect);
    check(Framing::Plain, plain.as_bytes(), expect);
    check(Framing::Auto, ansi.as_bytes(), expect);
    let c = check(Framing::Plain, ansi.as_bytes(), expect);
    if !line.ts.is_empty() {
        assert_eq!(c.at, Some(ts(line.ts)), "the message's own time: {plain}");
    }
    for body in [&plain, &ansi] {
        let kubectl = format!("2026-04-19T09:09:09.123456789Z {body}");
        let c = check(Framing::Kubectl, kubectl.as_bytes(), expect);
        assert_eq!(c.at, Some(ts("2026-04-19T09:09:09.123456789Z")));
        check(Framing::Auto, kubectl.as_bytes(), expect);
        let cri = format!("2026-04-19T09:09:09.5Z stderr F {body}");
        let c = check(Framing::Cri, cri.as_bytes(), expect);
        assert_eq!(c.at, Some(ts("2026-04-19T09:09:09.5Z")));
        check(Framing::Auto, cri.as_bytes(), expect);
    }
    // The evidence of a plain-framed line is the plain line, whatever the colours.
    if expect.is_some() {
        for body in [&plain, &ansi] {
            let mut st = stream(Framing::Plain);
            let mut out = Vec::new();
            st.push_line(PRIME.as_bytes(), &mut out);
            st.push_line(body.as_bytes(), &mut out);
            assert_eq!(session(&out[0]).line.as_deref(), Some(plain.as_str()));
        }
    }
}

#[test]
fn openab_lines() {
    let t = "2026-04-19T04:12:03.483915Z";
    let cases: Vec<(Tr, Option<Want>)> = vec![
        (
            tr(t, "INFO", "openab", "config loaded").fields(&[
                ("agent_cmd", "kiro-cli"),
                ("pool_max", "10"),
                ("discord", "true"),
                ("slack", "false"),
                ("reactions", "true"),
            ]),
            None,
        ),
        (
            tr(t, "INFO", "openab", "discord bot running"),
            Some(want("openab.starting", SessionEvent::Starting)),
        ),
        (
            tr(t, "INFO", "openab::discord", "discord bot connected")
                .fields(&[("user", "AgentBroker")]),
            Some(want("openab.ready", SessionEvent::Ready { session_id: None }).bot("AgentBroker")),
        ),
        (
            tr(t, "INFO", "openab::discord", "discord bot connected")
                .fields(&[("user", "\"Agent Broker\"")]),
            Some(
                want("openab.ready", SessionEvent::Ready { session_id: None }).bot("Agent Broker"),
            ),
        ),
        (
            tr(
                t,
                "INFO",
                "openab::discord",
                "registered global slash commands",
            ),
            None,
        ),
        (
            tr(
                t,
                "INFO",
                "openab::discord",
                "registered guild slash commands",
            )
            .fields(&[("guild_id", "1491295327620169908")]),
            None,
        ),
        (
            tr(t, "INFO", "openab::dispatch", "batch dispatched")
                .span(
                    "dispatch",
                    &[
                        ("channel", "1496011987654321098"),
                        ("adapter", "\"discord\""),
                    ],
                )
                .fields(&[
                    ("thread_key", "discord:1496011987654321098"),
                    ("events_per_dispatch", "1"),
                    ("packed_block_count", "2"),
                    ("agent_dispatch_ms", "18342"),
                    ("tokens_per_event", "[37]"),
                    ("wait_ms", "[4]"),
                    ("senders", "[\"alice\"]"),
                ]),
            Some(want("openab.dispatch.batch", dispatch("message"))),
        ),
        (
            tr(t, "INFO", "openab::discord", "denied user, ignoring")
                .fields(&[("user_id", "412233445566778899")]),
            Some(want("openab.dispatch.denied", dispatch("message"))),
        ),
        (
            tr(
                t,
                "ERROR",
                "openab::discord",
                "failed to create thread: A thread has already been created for this message",
            ),
            None,
        ),
        (
            tr(t, "INFO", "openab", "SIGTERM received"),
            Some(want("openab.shutting_down", SessionEvent::ShuttingDown)),
        ),
        (
            tr(t, "INFO", "openab", "shutdown signal received"),
            Some(want("openab.shutting_down", SessionEvent::ShuttingDown)),
        ),
        (
            tr(t, "INFO", "openab", "openab shut down"),
            Some(want("openab.stopped", SessionEvent::Stopped)),
        ),
        (
            tr(
                t,
                "ERROR",
                "serenity::gateway::bridge::shard_runner",
                "Shard handler received err: Gateway(DisallowedGatewayIntents)",
            ),
            Some(want(
                "serenity.runner.disallowed_intents",
                fatal("disallowed gateway intents", Some(4014)),
            )),
        ),
        (
            tr(
                t,
                "ERROR",
                "openab",
                "Discord rejected privileged intents. Enable MESSAGE CONTENT INTENT at: https://discord.com/developers/applications → Bot → Privileged Gateway Intents",
            ),
            Some(want(
                "openab.fatal.intents",
                fatal(
                    "disallowed intents: privileged intents are not enabled",
                    Some(4014),
                ),
            )),
        ),
        (
            tr(
                t,
                "ERROR",
                "openab",
                "Discord rejected bot token. Verify your bot_token ...",
            ),
            Some(want(
                "openab.fatal.token",
                fatal("authentication failed: bot token rejected", Some(4004)),
            )),
        ),
        // Look-alikes: a user's words inside another line.
        (
            tr(t, "DEBUG", "openab::dispatch", "processing")
                .fields(&[("content", "\"discord bot connected user=Mallory\"")]),
            None,
        ),
        (
            tr(t, "DEBUG", "openab::dispatch", "processing").fields(&[(
                "content",
                "\": openab::discord: discord bot connected user=Mallory\"",
            )]),
            None,
        ),
        (
            tr(t, "DEBUG", "openab::dispatch", "thread check")
                .fields(&[("content", "\"denied user, ignoring SIGTERM received\"")]),
            None,
        ),
        (
            tr(t, "INFO", "mybot", "discord bot connected").fields(&[("user", "Mallory")]),
            None,
        ),
        (tr(t, "INFO", "openab", "discord bot running late"), None),
    ];
    for (line, expect) in &cases {
        check_tracing(line, expect.as_ref());
    }
}

#[test]
fn openab_spans_with_nested_braces_and_env_logger() {
    let ready = want("openab.ready", SessionEvent::Ready { session_id: None }).bot("AgentBroker");
    let line = tr(
        "2026-04-19T04:12:04.912640Z",
        "INFO",
        "openab::discord",
        "discord bot connected",
    )
    .span("run", &[])
    .span(
        "handle_event",
        &[(
            "event",
            "Ready(Ready { v: 10, user: CurrentUser { id: 1 } })",
        )],
    )
    .fields(&[("user", "AgentBroker")]);
    check_tracing(&line, Some(&ready));
    check(
        Framing::Auto,
        b"[2026-04-19T04:12:04Z INFO  openab::discord] discord bot connected user=AgentBroker",
        Some(&ready),
    );
}

#[test]
fn serenity_lines() {
    let si = "[ShardInfo { id: ShardId(0), total: 1 }]";
    let cases: Vec<(String, Option<Want>)> = vec![
        (
            "INFO  serenity::gateway::bridge::shard_runner: [ShardRunner ShardInfo { id: ShardId(0), total: 1 }] Running".into(),
            Some(want("serenity.starting", SessionEvent::Starting).shard(0)),
        ),
        (
            format!("DEBUG serenity::gateway::ws: {si} Identifying"),
            Some(want("serenity.identifying", SessionEvent::Identifying).shard(0)),
        ),
        (
            format!("DEBUG serenity::gateway::shard: {si} Received a Hello; interval: 41250"),
            None,
        ),
        (
            format!("DEBUG serenity::gateway::shard: {si} Received Ready"),
            Some(want("serenity.ready", SessionEvent::Ready { session_id: None }).shard(0)),
        ),
        (
            format!("INFO  serenity::gateway::shard: {si} Resumed"),
            Some(want("serenity.resumed", SessionEvent::Resumed).shard(0)),
        ),
        (
            format!("INFO  serenity::gateway::shard: {si} Received session invalidation"),
            Some(
                want(
                    "serenity.invalid_session",
                    SessionEvent::InvalidSession { resumable: false },
                )
                .shard(0),
            ),
        ),
        (
            format!("INFO  serenity::gateway::shard: {si} Attempting to reconnect"),
            Some(want("serenity.reconnecting", SessionEvent::Reconnecting).shard(0)),
        ),
        (
            format!("TRACE serenity::gateway::shard: {si} Received heartbeat ack"),
            Some(want("serenity.heartbeat_ack", SessionEvent::HeartbeatAck).shard(0)),
        ),
        (
            format!("DEBUG serenity::gateway::shard: {si} Last heartbeat not acknowledged"),
            None,
        ),
        (
            "WARN  serenity::gateway::bridge::shard_runner: [ShardRunner ShardInfo { id: ShardId(0), total: 1 }] Error heartbeating".into(),
            None,
        ),
        (
            format!("ERROR serenity::gateway::shard: {si} Disallowed gateway intents have been provided."),
            Some(
                want("serenity.fatal.intents", fatal("disallowed gateway intents", Some(4014)))
                    .shard(0),
            ),
        ),
        (
            format!("ERROR serenity::gateway::shard: {si} Sent invalid authentication, please check the token."),
            Some(
                want(
                    "serenity.fatal.auth",
                    fatal("authentication failed: invalid token", Some(4004)),
                )
                .shard(0),
            ),
        ),
        (
            format!("WARN  serenity::gateway::shard: {si} Unknown unclean close 4000: Some(CloseFrame {{ code: Library(4000), reason: \"\" }})"),
            Some(want("serenity.closed", SessionEvent::Closed { code: Some(4000) }).shard(0)),
        ),
        (
            "INFO  serenity::gateway::bridge::shard_manager: Restarting shard 0".into(),
            Some(want("serenity.restarting", SessionEvent::Reconnecting).shard(0)),
        ),
        (
            "INFO  serenity::gateway::bridge::shard_manager: Restarting shard 7".into(),
            Some(want("serenity.restarting", SessionEvent::Reconnecting).shard(7)),
        ),
        (
            "ERROR serenity::gateway::bridge::shard_runner: Shard handler received err: Gateway(InvalidGatewayIntents)".into(),
            Some(want("serenity.runner.invalid_intents", fatal("invalid gateway intents", Some(4013)))),
        ),
        (
            "ERROR serenity::gateway::bridge::shard_runner: Shard handler received err: Gateway(InvalidAuthentication)".into(),
            Some(want(
                "serenity.runner.invalid_authentication",
                fatal("authentication failed: invalid token", Some(4004)),
            )),
        ),
        (
            "ERROR serenity::gateway::bridge::shard_runner: [ShardRunner ShardInfo { id: ShardId(2), total: 4 }] Shard handler received err: Gateway(InvalidShardData)".into(),
            Some(want("serenity.runner.invalid_shard", fatal("invalid shard", Some(4010))).shard(2)),
        ),
        (
            "ERROR serenity::gateway::bridge::shard_runner: Shard handler received err: Gateway(OverloadedShard)".into(),
            Some(want("serenity.runner.overloaded_shard", fatal("sharding required", Some(4011)))),
        ),
        (
            "ERROR serenity::gateway::bridge::shard_runner: Shard handler received err: Gateway(InvalidApiVersion)".into(),
            Some(want("serenity.runner.invalid_api_version", fatal("invalid API version", Some(4012)))),
        ),
        // Sharded, with span prefixes and a tracing timestamp.
        (
            "2026-04-19T04:12:04.1Z  INFO run:handle_event{event=\"x\"}: serenity::gateway::shard: [ShardInfo { id: ShardId(3), total: 4 }] Resumed".into(),
            Some(want("serenity.resumed", SessionEvent::Resumed).shard(3)),
        ),
        // Look-alikes.
        (
            format!("INFO  mybot::handler: {si} Resumed"),
            None,
        ),
        (
            "INFO  serenity::gateway::shard: someone said Received Ready".into(),
            None,
        ),
    ];
    for (line, expect) in &cases {
        check(Framing::Auto, line.as_bytes(), expect.as_ref());
        check(Framing::Plain, line.as_bytes(), expect.as_ref());
        let kubectl = format!("2026-04-19T09:09:09Z {line}");
        check(Framing::Kubectl, kubectl.as_bytes(), expect.as_ref());
    }
    // Only the serenity profile: same answers for serenity lines.
    let mut s = stream_with(builtin_profile("serenity").unwrap(), Framing::Auto);
    let mut out = Vec::new();
    s.push_line(PRIME.as_bytes(), &mut out);
    s.push_line(
        format!("INFO  serenity::gateway::shard: {si} Resumed").as_bytes(),
        &mut out,
    );
    assert_eq!(out.len(), 1);
    assert_eq!(
        out[0].at,
        ts("2026-04-19T04:00:00Z"),
        "the previous line's time"
    );
}

#[test]
fn discordpy_lines() {
    let p = |level: &str, logger: &str, msg: &str| {
        format!("[2026-04-19 04:12:27] [{level:<8}] {logger}: {msg}")
    };
    let sid = "388b826d2f5e4c0b9a7f1e2d3c4b5a69";
    let ready_payload = "For Shard ID None: WebSocket Event: {'t': 'READY', 's': 1, 'op': 0, 'd': {'v': 10, 'user_settings': {}, 'user': {'verified': True, 'username': 'HelperBot', 'mfa_enabled': False, 'id': '1259347692690096105', 'global_name': None, 'flags': 0, 'email': None, 'discriminator': '0000', 'bot': True, 'avatar': None}, 'session_type': 'normal', 'session_id': '50e9976fbd504c7fe9699035b1600dcc', 'resume_gateway_url': 'wss://gateway-us-east1-b.discord.gg', 'guilds': [{'unavailable': True, 'id': '1'}]}}";
    let cases: Vec<(String, Option<Want>)> = vec![
        (
            p("INFO", "discord.client", "logging in using static token"),
            Some(want("discordpy.starting", SessionEvent::Starting)),
        ),
        (
            p(
                "INFO",
                "discord.gateway",
                &format!("Shard ID None has connected to Gateway (Session ID: {sid})."),
            ),
            Some(want(
                "discordpy.ready",
                SessionEvent::Ready {
                    session_id: Some(sid.into()),
                },
            )),
        ),
        (
            p(
                "INFO",
                "discord.gateway",
                &format!("Shard ID 3 has connected to Gateway (Session ID: {sid})."),
            ),
            Some(
                want(
                    "discordpy.ready",
                    SessionEvent::Ready {
                        session_id: Some(sid.into()),
                    },
                )
                .shard(3),
            ),
        ),
        (
            p(
                "INFO",
                "discord.gateway",
                &format!("Shard ID None has successfully RESUMED session {sid}."),
            ),
            Some(want("discordpy.resumed", SessionEvent::Resumed)),
        ),
        (
            p(
                "INFO",
                "discord.gateway",
                "Shard ID None session has been invalidated.",
            ),
            Some(want(
                "discordpy.invalid_session",
                SessionEvent::InvalidSession { resumable: false },
            )),
        ),
        (
            p(
                "WARNING",
                "discord.gateway",
                "Shard ID None has stopped responding to the gateway. Closing and restarting.",
            ),
            Some(want("discordpy.zombie", SessionEvent::Reconnecting)),
        ),
        (
            p(
                "WARNING",
                "discord.gateway",
                "Shard ID None heartbeat blocked for more than 10 seconds.",
            ),
            None,
        ),
        (
            p(
                "WARNING",
                "discord.ext.commands.bot",
                "Privileged message content intent is missing, commands may not work as expected.",
            ),
            None,
        ),
        (
            p("DEBUG", "discord.client", "Dispatching event message"),
            Some(want("discordpy.dispatch", dispatch("message"))),
        ),
        (
            p(
                "DEBUG",
                "discord.client",
                "Dispatching event raw_reaction_add",
            ),
            Some(want("discordpy.dispatch", dispatch("raw_reaction_add"))),
        ),
        (
            p("DEBUG", "discord.client", "Dispatching event ready"),
            None,
        ),
        (
            p(
                "DEBUG",
                "discord.client",
                "Dispatching event socket_event_type",
            ),
            None,
        ),
        (
            p(
                "DEBUG",
                "discord.gateway",
                "Shard ID 3 has sent the IDENTIFY payload.",
            ),
            Some(want("discordpy.identifying", SessionEvent::Identifying).shard(3)),
        ),
        (
            p(
                "DEBUG",
                "discord.gateway",
                "Keeping shard ID None websocket alive with sequence 42.",
            ),
            None,
        ),
        (
            p("DEBUG", "discord.gateway", "Received RECONNECT opcode."),
            Some(want(
                "discordpy.reconnect_opcode",
                SessionEvent::Reconnecting,
            )),
        ),
        (
            p(
                "DEBUG",
                "discord.gateway",
                "Websocket closed with 4014, cannot reconnect.",
            ),
            Some(want(
                "discordpy.fatal.intents",
                fatal("invalid or disallowed gateway intents", Some(4014)),
            )),
        ),
        (
            p(
                "DEBUG",
                "discord.gateway",
                "Websocket closed with 4004, cannot reconnect.",
            ),
            Some(want(
                "discordpy.fatal.auth",
                fatal("authentication failed: invalid token", Some(4004)),
            )),
        ),
        (
            p(
                "DEBUG",
                "discord.gateway",
                "Websocket closed with 4011, cannot reconnect.",
            ),
            Some(want(
                "discordpy.fatal.shard",
                fatal(
                    "invalid shard, sharding required or invalid API version",
                    Some(4011),
                ),
            )),
        ),
        (
            p(
                "DEBUG",
                "discord.gateway",
                "Websocket closed with 1000, cannot reconnect.",
            ),
            Some(want(
                "discordpy.closed",
                SessionEvent::Closed { code: Some(1000) },
            )),
        ),
        (
            p(
                "DEBUG",
                "discord.gateway",
                "Websocket closed with 1006, attempting a reconnect.",
            ),
            Some(want(
                "discordpy.closed",
                SessionEvent::Closed { code: Some(1006) },
            )),
        ),
        (
            p("DEBUG", "discord.gateway", ready_payload),
            Some(
                want(
                    "discordpy.ready_payload",
                    SessionEvent::Ready {
                        session_id: Some("50e9976fbd504c7fe9699035b1600dcc".into()),
                    },
                )
                .bot("HelperBot"),
            ),
        ),
        (
            "INFO:discord.gateway:Shard ID None has connected to Gateway (Session ID: abc123)."
                .into(),
            Some(want(
                "discordpy.ready",
                SessionEvent::Ready {
                    session_id: Some("abc123".into()),
                },
            )),
        ),
        // Look-alikes: the bot's own logger repeating a user, a payload quoting READY.
        (
            p(
                "INFO",
                "mybot",
                &format!("user said: Shard ID None has connected to Gateway (Session ID: {sid})."),
            ),
            None,
        ),
        (
            p(
                "DEBUG",
                "discord.gateway",
                "For Shard ID None: WebSocket Event: {'t': 'MESSAGE_CREATE', 's': 5, 'op': 0, 'd': {'content': \"'t': 'READY', 'username': 'Evil'\"}}",
            ),
            None,
        ),
        (
            p("DEBUG", "discord.client", "Dispatching eventually nothing"),
            None,
        ),
    ];
    for (line, expect) in &cases {
        let c = check(Framing::Auto, line.as_bytes(), expect.as_ref());
        if line.starts_with('[') {
            assert_eq!(
                c.at,
                Some(ts("2026-04-19T04:12:27Z")),
                "discord.py time as UTC"
            );
        }
        let kubectl = format!("2026-04-19T09:09:09Z {line}");
        let c = check(Framing::Auto, kubectl.as_bytes(), expect.as_ref());
        assert_eq!(
            c.at,
            Some(ts("2026-04-19T09:09:09Z")),
            "container time first"
        );
    }
}

#[test]
fn every_builtin_rule_has_a_reference_line() {
    // The tests above assert each line; here: that together they reach every built-in rule.
    let lines = format!("{}\n{}", reference_log(), reference_log_more());
    // Every library in one stream: no narrowing to the first library seen.
    let mut s = stream(Framing::Auto).with_detection(false);
    let mut out = Vec::new();
    let mut seen = BTreeSet::new();
    classify_log_bytes(lines.as_bytes(), &mut s, &mut out, |_, c| {
        if let Some(r) = c.rule {
            seen.insert(r);
        }
    });
    let all: BTreeSet<String> = builtin_profile("auto")
        .unwrap()
        .rule_names()
        .map(str::to_owned)
        .collect();
    let missing: Vec<&String> = all.difference(&seen).collect();
    assert!(
        missing.is_empty(),
        "rules without a reference line: {missing:?}"
    );
}

/// One line per built-in rule (plus noise), as a log.
fn reference_log() -> String {
    let si = "[ShardInfo { id: ShardId(0), total: 1 }]";
    let lines = [
        "2026-04-19T04:12:03.481227Z  INFO openab: config loaded agent_cmd=kiro-cli",
        "2026-04-19T04:12:03.483915Z  INFO openab: discord bot running",
        "2026-04-19T04:12:04.912640Z  INFO openab::discord: discord bot connected user=AgentBroker",
        "2026-04-19T04:15:58.364881Z  INFO dispatch{channel=1 adapter=\"discord\"}: openab::dispatch: batch dispatched thread_key=discord:1",
        "2026-04-19T04:21:07.005311Z  INFO openab::discord: denied user, ignoring user_id=4",
        "2026-04-19T07:00:00.301455Z  INFO openab: SIGTERM received",
        "2026-04-19T07:00:00.912044Z  INFO openab: openab shut down",
        "2026-04-19T07:00:01Z ERROR openab: Discord rejected privileged intents. Enable it",
        "2026-04-19T07:00:02Z ERROR openab: Discord rejected bot token. Verify your bot_token ...",
        "INFO  serenity::gateway::bridge::shard_runner: [ShardRunner ShardInfo { id: ShardId(0), total: 1 }] Running",
        &format!("DEBUG serenity::gateway::ws: {si} Identifying"),
        &format!("DEBUG serenity::gateway::shard: {si} Received Ready"),
        &format!("INFO  serenity::gateway::shard: {si} Resumed"),
        &format!("INFO  serenity::gateway::shard: {si} Received session invalidation"),
        &format!("INFO  serenity::gateway::shard: {si} Attempting to reconnect"),
        "INFO  serenity::gateway::bridge::shard_manager: Restarting shard 0",
        &format!("TRACE serenity::gateway::shard: {si} Received heartbeat ack"),
        &format!("WARN  serenity::gateway::shard: {si} Unknown unclean close 4000: Some(..)"),
        &format!(
            "ERROR serenity::gateway::shard: {si} Disallowed gateway intents have been provided."
        ),
        &format!(
            "ERROR serenity::gateway::shard: {si} Sent invalid authentication, please check the token."
        ),
        "ERROR serenity::gateway::bridge::shard_runner: Shard handler received err: Gateway(DisallowedGatewayIntents)",
        "ERROR serenity::gateway::bridge::shard_runner: Shard handler received err: Gateway(InvalidGatewayIntents)",
        "ERROR serenity::gateway::bridge::shard_runner: Shard handler received err: Gateway(InvalidAuthentication)",
        "ERROR serenity::gateway::bridge::shard_runner: Shard handler received err: Gateway(InvalidShardData)",
        "ERROR serenity::gateway::bridge::shard_runner: Shard handler received err: Gateway(OverloadedShard)",
        "ERROR serenity::gateway::bridge::shard_runner: Shard handler received err: Gateway(InvalidApiVersion)",
        "[2026-04-19 04:12:26] [INFO    ] discord.client: logging in using static token",
        "[2026-04-19 04:12:26] [DEBUG   ] discord.gateway: Shard ID None has sent the IDENTIFY payload.",
        "[2026-04-19 04:12:27] [DEBUG   ] discord.gateway: For Shard ID None: WebSocket Event: {'t': 'READY', 's': 1, 'op': 0, 'd': {'v': 10, 'user': {'username': 'HelperBot', 'id': '1'}, 'session_id': '50e9'}}",
        "[2026-04-19 04:12:27] [INFO    ] discord.gateway: Shard ID None has connected to Gateway (Session ID: 50e9).",
        "[2026-04-19 04:12:28] [DEBUG   ] discord.client: Dispatching event ready",
        "[2026-04-19 04:12:29] [DEBUG   ] discord.client: Dispatching event message",
        "[2026-04-19 04:30:10] [INFO    ] discord.gateway: Shard ID None has successfully RESUMED session 50e9.",
        "[2026-04-19 04:31:00] [INFO    ] discord.gateway: Shard ID None session has been invalidated.",
        "[2026-04-19 04:32:00] [WARNING ] discord.gateway: Shard ID None has stopped responding to the gateway. Closing and restarting.",
        "[2026-04-19 04:32:01] [DEBUG   ] discord.gateway: Received RECONNECT opcode.",
        "[2026-04-19 04:33:00] [DEBUG   ] discord.gateway: Websocket closed with 1006, attempting a reconnect.",
        "[2026-04-19 04:34:00] [DEBUG   ] discord.gateway: Websocket closed with 4004, cannot reconnect.",
        "[2026-04-19 04:34:00] [DEBUG   ] discord.gateway: Websocket closed with 4014, cannot reconnect.",
        "[2026-04-19 04:34:00] [DEBUG   ] discord.gateway: Websocket closed with 4010, cannot reconnect.",
    ];
    lines.join("\n")
}

#[test]
fn whole_log_counts_and_times() {
    let log = reference_log();
    let mut s = stream(Framing::Auto).with_bot(Some("configured".into()));
    let mut out = Vec::new();
    read_log_bytes(log.as_bytes(), &mut s, &mut out);
    let c = *s.counts();
    assert_eq!(c.lines(), 40);
    assert_eq!(
        (c.matched, c.ignored, c.malformed, c.truncated),
        (38, 2, 0, 0)
    );
    assert_eq!(out.len(), 38);
    // Serenity lines (no time of their own) take the previous line's time.
    let running = out
        .iter()
        .find(|o| session(o).event == SessionEvent::Starting && session(o).shard == Some(0))
        .unwrap();
    assert_eq!(running.at, ts("2026-04-19T07:00:02Z"));
    // The configured bot fills in where a line names none; a line's own name wins.
    assert_eq!(session(&out[0]).bot.as_deref(), Some("configured"));
    assert_eq!(session(&out[1]).bot.as_deref(), Some("AgentBroker"));
    // Times never go backwards in this log except where the log itself does.
    assert!(out.iter().all(|o| &*o.source == "file:test.log"));
}

#[test]
fn kubectl_and_cri_framing() {
    let kubectl = "2026-04-19T04:12:04.912640123Z \x1b[2m2026-04-19T04:12:04.912640Z\x1b[0m \x1b[32m INFO\x1b[0m \x1b[2mopenab::discord\x1b[0m\x1b[2m:\x1b[0m discord bot connected \x1b[3muser\x1b[0m\x1b[2m=\x1b[0mAgentBroker";
    for framing in [Framing::Auto, Framing::Kubectl] {
        let mut s = stream(framing);
        let mut out = Vec::new();
        assert_eq!(s.push_line(kubectl.as_bytes(), &mut out), Outcome::Matched);
        assert_eq!(out[0].at, ts("2026-04-19T04:12:04.912640123Z"));
        assert_eq!(
            session(&out[0]).line.as_deref(),
            Some(
                "2026-04-19T04:12:04.912640Z  INFO openab::discord: discord bot connected user=AgentBroker"
            )
        );
    }

    // CRI: a READY line split over three P parts, a stderr line in between, then F.
    let cri = [
        "2026-04-19T04:12:04.100000000Z stdout P 2026-04-19T04:12:04.912640Z  INFO openab::disc",
        "2026-04-19T04:12:04.150000000Z stderr F 2026-04-19T04:12:04.9Z  INFO openab: discord bot running",
        "2026-04-19T04:12:04.200000000Z stdout P ord: discord bot conn",
        "2026-04-19T04:12:04.300000000Z stdout P ected user=Agent",
        "2026-04-19T04:12:04.400000000Z stdout F Broker",
        "2026-04-19T04:12:05.000000000Z stdout F 2026-04-19T04:12:05Z  INFO openab: SIGTERM received",
        "2026-04-19T04:12:06.000000000Z stdout P 2026-04-19T04:12:06Z  INFO openab: openab shut",
    ]
    .join("\n");
    for framing in [Framing::Auto, Framing::Cri] {
        let mut s = stream(framing);
        let mut out = Vec::new();
        let mut outcomes = Vec::new();
        classify_log_bytes(cri.as_bytes(), &mut s, &mut out, |n, c| {
            outcomes.push((n, c.outcome, c.note))
        });
        let events: Vec<(&str, DateTime<Utc>, Option<&str>)> = out
            .iter()
            .map(|o| (session(o).event.name(), o.at, session(o).bot.as_deref()))
            .collect();
        assert_eq!(
            events,
            vec![
                ("starting", ts("2026-04-19T04:12:04.15Z"), None),
                ("ready", ts("2026-04-19T04:12:04.1Z"), Some("AgentBroker")),
                ("shutting_down", ts("2026-04-19T04:12:05Z"), None),
                // The partial at EOF, flushed as it is: "openab shut" is no rule's literal.
            ]
        );
        assert_eq!(
            outcomes,
            vec![
                (1, Outcome::Ignored, Some("partial")),
                (2, Outcome::Matched, None),
                (3, Outcome::Ignored, Some("partial")),
                (4, Outcome::Ignored, Some("partial")),
                (5, Outcome::Matched, None),
                (6, Outcome::Matched, None),
                (7, Outcome::Ignored, Some("partial")),
                (7, Outcome::Ignored, Some("no literal")),
            ]
        );
        let c = s.counts();
        assert_eq!(
            (c.matched, c.ignored, c.malformed, c.partial, c.truncated),
            (3, 4, 0, 4, 1)
        );
    }

    // A partial at EOF that does match is still seen.
    let tail = "2026-04-19T04:12:06.000000000Z stdout P 2026-04-19T04:12:06Z  INFO openab: openab shut down";
    let mut s = stream(Framing::Cri);
    let mut out = Vec::new();
    read_log_bytes(tail.as_bytes(), &mut s, &mut out);
    assert_eq!(out.len(), 1);
    assert_eq!(session(&out[0]).event, SessionEvent::Stopped);
    assert_eq!(out[0].at, ts("2026-04-19T04:12:06Z"));
    assert_eq!((s.counts().ignored, s.counts().truncated), (1, 1));
}

#[test]
fn cri_join_is_bounded() {
    // 2 MiB of P parts then the F: joined up to 1 MiB, counted truncated, the next line fine.
    let mut log = Vec::new();
    log.extend_from_slice(
        b"2026-04-19T04:12:04Z stdout P 2026-04-19T04:12:04Z  INFO openab: discord bot running ",
    );
    let chunk = vec![b'x'; 16 * 1024];
    for _ in 0..128 {
        log.extend_from_slice(b"\n2026-04-19T04:12:04Z stdout P ");
        log.extend_from_slice(&chunk);
    }
    log.extend_from_slice(b"\n2026-04-19T04:12:04Z stdout F end\n");
    log.extend_from_slice(
        b"2026-04-19T04:12:05Z stdout F 2026-04-19T04:12:05Z  INFO openab: openab shut down\n",
    );
    let mut s = stream(Framing::Cri);
    let mut out = Vec::new();
    read_log_bytes(&log, &mut s, &mut out);
    let c = *s.counts();
    assert_eq!(
        (c.lines(), c.partial, c.truncated, c.malformed),
        (131, 129, 1, 0)
    );
    assert_eq!(
        out.len(),
        1,
        "the joined line ends with x's and no rule wants it whole"
    );
    assert_eq!(session(&out[0]).event, SessionEvent::Stopped);
}

#[test]
fn huge_line_between_good_lines() {
    let good1 = "2026-04-19T04:12:03.483915Z  INFO openab: discord bot running";
    let good2 =
        "2026-04-19T04:12:04.912640Z  INFO openab::discord: discord bot connected user=AgentBroker";
    let mut huge = "discord bot connected user=Huge "
        .repeat((10 << 20) / 32)
        .into_bytes();
    huge.splice(
        0..0,
        b"2026-04-19T04:12:04Z  INFO openab::discord: "
            .iter()
            .copied(),
    );
    for framing in [Framing::Auto, Framing::Plain, Framing::Kubectl] {
        let mut log = Vec::new();
        log.extend_from_slice(good1.as_bytes());
        log.push(b'\n');
        log.extend_from_slice(&huge);
        log.push(b'\n');
        log.extend_from_slice(good2.as_bytes());
        let mut s = stream(framing);
        let mut out = Vec::new();
        read_log_bytes(&log, &mut s, &mut out);
        let events: Vec<&str> = out.iter().map(|o| session(o).event.name()).collect();
        assert_eq!(events, ["starting", "ready"], "{framing}");
        assert_eq!(session(&out[1]).bot.as_deref(), Some("AgentBroker"));
        let c = *s.counts();
        assert_eq!((c.matched, c.ignored, c.malformed), (2, 0, 1), "{framing}");
        assert_eq!(s.last_malformed_reason(), Some("line too long"));
    }
    // A huge CRI F line is cut to the bound (and counted truncated), not dropped.
    let mut log = b"2026-04-19T04:12:04Z stdout F ".to_vec();
    log.extend_from_slice(&huge);
    log.push(b'\n');
    log.extend_from_slice(format!("2026-04-19T04:12:05Z stdout F {good2}").as_bytes());
    let mut s = stream(Framing::Cri);
    let mut out = Vec::new();
    read_log_bytes(&log, &mut s, &mut out);
    assert_eq!(out.len(), 2);
    assert_eq!(session(&out[0]).bot.as_deref(), Some("Huge"));
    assert!(session(&out[0]).line.as_ref().unwrap().len() <= 2048 + 3);
    assert_eq!(session(&out[1]).bot.as_deref(), Some("AgentBroker"));
    assert_eq!((s.counts().matched, s.counts().truncated), (2, 1));
}

#[test]
fn invalid_utf8_and_garbage() {
    let mut log: Vec<u8> = Vec::new();
    log.extend_from_slice(b"\xff\xfe\x00\x01 not text \xc3\x28\n");
    log.extend_from_slice(b"2026-04-19T04:12:04.912640Z  INFO openab::discord: discord bot connected user=Agent\xffBroker\n");
    log.extend_from_slice(b"\x80\x81\x82 discord bot connected \xe2\x82\n");
    log.extend_from_slice(b"2026-04-19T04:15:58Z  INFO openab::dispatch: batch dispatched senders=[\"\xf0\x9f\x98\x80\xf0\x9f\"]\n");
    // Deterministic binary noise with escapes, NULs, CRs and newlines.
    let mut x: u32 = 0x1234_5678;
    for _ in 0..200_000 {
        x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        log.push((x >> 24) as u8);
    }
    log.push(b'\n');
    log.extend_from_slice(b"2026-04-19T07:00:00.912044Z  INFO openab: openab shut down\n");
    log.extend_from_slice(b"\x1b[\x1b]\x1b");
    let mut s = stream(Framing::Auto);
    let mut out = Vec::new();
    read_log_bytes(&log, &mut s, &mut out);
    let events: Vec<&str> = out.iter().map(|o| session(o).event.name()).collect();
    assert_eq!(events, ["ready", "dispatch", "stopped"]);
    assert_eq!(session(&out[0]).bot.as_deref(), Some("Agent\u{fffd}Broker"));
    assert!(
        session(&out[1])
            .line
            .as_ref()
            .unwrap()
            .contains("\u{1f600}")
    );
    let c = *s.counts();
    let newlines = log.iter().filter(|&&b| b == b'\n').count() as u64;
    assert_eq!(c.lines(), newlines + 1, "every physical line counted once");
    assert_eq!(c.matched, 3);
    assert_eq!(
        c.malformed, 1,
        "only the first line, before any time: {c:?}"
    );

    // Same garbage through the CRI framer: all malformed except the good lines.
    let mut s = stream(Framing::Cri);
    let mut out = Vec::new();
    read_log_bytes(&log, &mut s, &mut out);
    assert!(out.is_empty());
    assert_eq!(s.counts().malformed, newlines + 1);
}

#[test]
fn no_timestamp_is_malformed_until_there_is_one() {
    let mut s = stream(Framing::Auto);
    let mut out = Vec::new();
    let resumed =
        "INFO  serenity::gateway::shard: [ShardInfo { id: ShardId(0), total: 1 }] Resumed";
    let c = s.classify_line(resumed.as_bytes(), &mut out);
    assert_eq!(
        (c.outcome, c.note),
        (Outcome::Malformed, Some("no timestamp"))
    );
    assert_eq!(s.last_malformed_reason(), Some("no timestamp"));
    assert_eq!(
        s.push_line(b"", &mut out),
        Outcome::Ignored,
        "blank lines are not malformed"
    );
    assert_eq!(s.push_line(PRIME.as_bytes(), &mut out), Outcome::Ignored);
    assert_eq!(s.push_line(resumed.as_bytes(), &mut out), Outcome::Matched);
    assert_eq!(out[0].at, ts("2026-04-19T04:00:00Z"));
    assert_eq!(
        *s.counts(),
        dge_parse::logs::Counts {
            matched: 1,
            ignored: 2,
            malformed: 1,
            truncated: 0,
            partial: 0,
        }
    );
}

#[test]
fn crlf_lines() {
    let log = "2026-04-19T04:12:03.483915Z  INFO openab: discord bot running\r\n\r\n2026-04-19T04:12:04.912640Z  INFO openab::discord: discord bot connected user=AgentBroker\r\n";
    let mut s = stream(Framing::Auto);
    let mut out = Vec::new();
    read_log_bytes(log.as_bytes(), &mut s, &mut out);
    assert_eq!(out.len(), 2);
    assert_eq!(session(&out[1]).bot.as_deref(), Some("AgentBroker"));
    assert!(
        out.iter()
            .all(|o| !session(o).line.as_ref().unwrap().contains('\r'))
    );
    assert_eq!((s.counts().matched, s.counts().ignored), (2, 1));
    // push_line itself drops a trailing \r too.
    let mut s = stream(Framing::Plain);
    let mut out = Vec::new();
    s.push_line(
        b"2026-04-19T04:12:04Z  INFO openab: openab shut down\r",
        &mut out,
    );
    assert_eq!(session(&out[0]).event, SessionEvent::Stopped);
}

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
        fatal("token [REDACTED] rejected", None)
    );
    assert!(
        session(&out[3])
            .line
            .as_ref()
            .unwrap()
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

// ---------------------------------------------------------------------------------------------
// twilight, discord.js, JDA; JSON and logfmt; auto-detection.

/// One line per rule of the profiles added after the first three (kubectl-framed where the
/// library prints no time).
fn reference_log_more() -> String {
    let k = "2026-04-19T05:00:00.000000001Z";
    let lines = [
        format!(
            "{k} DEBUG shard{{id=[0, 1]}}: twilight_gateway::shard: received dispatch event_type=READY sequence=1"
        ),
        format!(
            "{k} DEBUG shard{{id=[0, 1]}}: twilight_gateway::shard: received dispatch event_type=RESUMED sequence=9"
        ),
        format!(
            "{k} DEBUG shard{{id=[0, 1]}}: twilight_gateway::shard: received dispatch event_type=GUILD_CREATE sequence=2"
        ),
        format!(
            "{k} DEBUG shard{{id=[0, 1]}}: twilight_gateway::shard: received dispatch event_type=MESSAGE_CREATE sequence=3"
        ),
        format!("{k} DEBUG twilight_gateway::shard: sending identify"),
        format!("{k} DEBUG twilight_gateway::shard: received heartbeat ack"),
        format!("{k} DEBUG twilight_gateway::shard: received invalid session resumable=false"),
        format!("{k} DEBUG twilight_gateway::shard: received reconnect"),
        format!(
            "{k}  INFO shard{{id=[77, 79]}}: twilight_gateway::shard: connection is failed or \"zombied\""
        ),
        format!(
            "{k} DEBUG twilight_gateway::shard: received WebSocket close message frame=Some(CloseFrame {{ code: 4014, reason: \"Disallowed intent(s).\" }})"
        ),
        format!("{k} DEBUG twilight_gateway::shard: gateway WebSocket connection closed"),
        format!("{k} DEBUG twilight_gateway::shard: connecting url=wss://gateway.discord.gg"),
        format!("{k} [WS => Shard 0] Identifying"),
        format!("{k} \tshard id: 0"),
        format!("{k} [WS => Shard 0] Shard received all its guilds. Marking as fully ready."),
        format!("{k} [WS => Shard 0] Resumed and replayed 38 events"),
        format!("{k} [WS => Shard 0] Heartbeat acknowledged, latency of 24ms."),
        format!("{k} [WS => Shard 0] Invalid session; will attempt to resume: false"),
        format!("{k} [WS => Shard 0] Shard not recoverable: 4014 (DisallowedIntents)"),
        format!("{k} [WS => Shard 0] Destroying shard"),
        format!("{k} \tReason: Got disconnected by Discord"),
        format!("{k} \tCode: 1000"),
        format!("{k} \tRecover: Reconnect"),
        format!(
            "{k} [WS => Shard 0] The gateway closed with an unexpected code 4000, attempting to resume."
        ),
        format!("{k} [WS => Shard 0] Zombie connection detected, terminating and resuming."),
        format!("{k} [WS => Manager] Session Limit Information"),
        format!("{k} \tTotal: 1000"),
        format!("{k} [main] INFO JDA - Login Successful!"),
        format!("{k} [JDA MainWS-WriteThread] DEBUG WebSocketClient - Sending Identify-packet..."),
        format!("{k} [JDA MainWS-WriteThread] INFO WebSocketClient - Connected to WebSocket"),
        format!("{k} INFO  JDA - Finished Loading!"),
        format!("{k} DEBUG JDA - Successfully resumed Session!"),
        format!(
            "{k} WARN  WebSocketClient - Got disconnected from WebSocket (Code 1000). Appending to reconnect queue"
        ),
        format!("{k} WARN  WebSocketClient - Missed 2 heartbeats! Trying to reconnect..."),
        format!(
            "{k} WARN  WebSocketClient - Got Reconnect request (OP 7). Closing connection now..."
        ),
        format!(
            "{k} ERROR WebSocketClient - WebSocket connection was closed and cannot be recovered due to identification issues"
        ),
    ];
    lines.join("\n")
}

#[test]
fn twilight_lines() {
    let t = "2026-04-19T04:12:03.483915Z";
    let shard = |l: Tr| l.span("shard", &[("id", "[0, 1]")]);
    let tw = "twilight_gateway::shard";
    let cases: Vec<(Tr, Option<Want>)> = vec![
        // 0.16: the shard span names the shard.
        (
            shard(tr(t, "DEBUG", tw, "received dispatch"))
                .fields(&[("event_type", "PRESENCE_UPDATE"), ("sequence", "5017")]),
            Some(want("twilight.dispatch", dispatch("PRESENCE_UPDATE")).shard(0)),
        ),
        (
            shard(tr(t, "DEBUG", tw, "received dispatch"))
                .fields(&[("event_type", "READY"), ("sequence", "1")]),
            Some(want("twilight.ready", SessionEvent::Ready { session_id: None }).shard(0)),
        ),
        (
            shard(tr(t, "DEBUG", tw, "received dispatch"))
                .fields(&[("event_type", "RESUMED"), ("sequence", "44")]),
            Some(want("twilight.resumed", SessionEvent::Resumed).shard(0)),
        ),
        (
            shard(tr(t, "DEBUG", tw, "received dispatch"))
                .fields(&[("event_type", "GUILD_CREATE"), ("sequence", "2")]),
            None,
        ),
        (shard(tr(t, "DEBUG", tw, "sending heartbeat")), None),
        (
            tr(t, "INFO", tw, "connection is failed or \"zombied\"")
                .span("shard", &[("id", "[77, 79]")]),
            Some(want("twilight.zombie", SessionEvent::Reconnecting).shard(77)),
        ),
        // 0.18 (no span: no shard).
        (
            tr(t, "DEBUG", tw, "connecting").fields(&[("url", "wss://gateway.discord.gg")]),
            None,
        ),
        (
            tr(t, "DEBUG", tw, "received hello")
                .fields(&[("heartbeat_interval", "41250"), ("jitter", "0.31")]),
            None,
        ),
        (
            tr(t, "DEBUG", tw, "sending identify"),
            Some(want("twilight.identifying", SessionEvent::Identifying)),
        ),
        (
            tr(t, "DEBUG", tw, "received heartbeat ack"),
            Some(want("twilight.heartbeat_ack", SessionEvent::HeartbeatAck)),
        ),
        (
            tr(t, "DEBUG", tw, "received invalid session").fields(&[("resumable", "false")]),
            Some(want(
                "twilight.invalid_session",
                SessionEvent::InvalidSession { resumable: false },
            )),
        ),
        (
            tr(t, "DEBUG", tw, "received invalid session").fields(&[("resumable", "true")]),
            Some(want(
                "twilight.invalid_session",
                SessionEvent::InvalidSession { resumable: true },
            )),
        ),
        (
            tr(t, "DEBUG", tw, "received reconnect"),
            Some(want("twilight.reconnect", SessionEvent::Reconnecting)),
        ),
        (
            tr(t, "DEBUG", tw, "received WebSocket close message").fields(&[(
                "frame",
                "Some(CloseFrame { code: 4014, reason: \"Disallowed intent(s).\" })",
            )]),
            Some(want(
                "twilight.close_frame",
                SessionEvent::Closed { code: Some(4014) },
            )),
        ),
        (
            tr(t, "DEBUG", tw, "received WebSocket close message").fields(&[("frame", "None")]),
            Some(want(
                "twilight.close_frame",
                SessionEvent::Closed { code: None },
            )),
        ),
        (
            tr(t, "DEBUG", tw, "gateway WebSocket connection closed"),
            Some(want(
                "twilight.connection_closed",
                SessionEvent::Closed { code: None },
            )),
        ),
        // Sharded bots run several spans; other targets and quoted messages are not twilight's.
        (
            tr(t, "DEBUG", tw, "received dispatch")
                .span("shard", &[("id", "[3, 4]")])
                .span("dispatch", &[])
                .fields(&[("event_type", "INTERACTION_CREATE")]),
            Some(want("twilight.dispatch", dispatch("INTERACTION_CREATE")).shard(3)),
        ),
        (
            tr(t, "DEBUG", "mybot::events", "received dispatch").fields(&[("event_type", "READY")]),
            None,
        ),
        (tr(t, "INFO", tw, "user said: sending identify"), None),
        (
            tr(
                t,
                "INFO",
                "mybot::events",
                "twilight_gateway::shard: received dispatch event_type=READY",
            ),
            None,
        ),
    ];
    for (line, expect) in &cases {
        check_tracing(line, expect.as_ref());
    }
    // env_logger layout.
    check(
        Framing::Auto,
        b"[2026-04-19T04:12:03Z DEBUG twilight_gateway::shard] sending identify",
        Some(&want("twilight.identifying", SessionEvent::Identifying)),
    );
}

#[test]
fn discordjs_lines() {
    let cases: Vec<(&str, Option<Want>)> = vec![
        (
            "[WS => Shard 0] Identifying",
            Some(want("discordjs.identifying", SessionEvent::Identifying).shard(0)),
        ),
        (
            "[WS => Shard 2] Shard received all its guilds. Marking as fully ready.",
            Some(want("discordjs.ready", SessionEvent::Ready { session_id: None }).shard(2)),
        ),
        (
            "[WS => Shard 0] Shard will not receive anymore guild packets.",
            Some(want("discordjs.ready", SessionEvent::Ready { session_id: None }).shard(0)),
        ),
        (
            "[WS => Shard 0] Heartbeat acknowledged, latency of 24ms.",
            Some(want("discordjs.heartbeat_ack", SessionEvent::HeartbeatAck).shard(0)),
        ),
        (
            "[WS => Shard 0] Resumed and replayed 38 events",
            Some(want("discordjs.resumed", SessionEvent::Resumed).shard(0)),
        ),
        (
            "[WS => Shard 0] Invalid session; will attempt to resume: false",
            Some(
                want(
                    "discordjs.invalid_session",
                    SessionEvent::InvalidSession { resumable: false },
                )
                .shard(0),
            ),
        ),
        (
            "[WS => Shard 1] Invalid session; will attempt to resume: true",
            Some(
                want(
                    "discordjs.invalid_session",
                    SessionEvent::InvalidSession { resumable: true },
                )
                .shard(1),
            ),
        ),
        (
            "[WS => Shard 0] Shard not recoverable: 4014 (DisallowedIntents)",
            Some(
                want(
                    "discordjs.not_recoverable",
                    SessionEvent::Closed { code: Some(4014) },
                )
                .shard(0),
            ),
        ),
        (
            "[WS => Shard 0] The gateway closed with an unexpected code 4000, attempting to resume.",
            Some(
                want(
                    "discordjs.unexpected_close",
                    SessionEvent::Closed { code: Some(4000) },
                )
                .shard(0),
            ),
        ),
        ("[WS => Manager] Session Limit Information", None),
        (
            "[WS => Shard 0] Connecting to wss://gateway.discord.gg?v=10&encoding=json",
            None,
        ),
        // The same lines behind a logger's prefix, coloured by winston.
        (
            "2026-04-19T04:12:26.118Z \x1b[34mdebug\x1b[39m: [WS => Shard 0] Identifying",
            Some(want("discordjs.identifying", SessionEvent::Identifying).shard(0)),
        ),
        (
            "[2026-04-19 04:12:26] [DEBUG] [WS => Shard 0] Resumed and replayed 2 events",
            Some(want("discordjs.resumed", SessionEvent::Resumed).shard(0)),
        ),
        // Look-alikes: a user quoting the debug text, the message elsewhere in the line.
        ("user wrote: [WS => Shard 0] Identifying", None),
        ("[WS => Shard 0] Identifying the user", None),
        (
            "[WS => Shard 0] Someone said Resumed and replayed 3 events",
            None,
        ),
        ("\tCode: 1000", None),
    ];
    for (line, expect) in &cases {
        check(Framing::Auto, line.as_bytes(), expect.as_ref());
        check(Framing::Plain, line.as_bytes(), expect.as_ref());
        let kubectl = format!("2026-04-19T09:09:09Z {line}");
        check(Framing::Kubectl, kubectl.as_bytes(), expect.as_ref());
        let cri = format!("2026-04-19T09:09:09Z stdout F {line}");
        check(Framing::Cri, cri.as_bytes(), expect.as_ref());
    }
}

/// Classify a whole log, returning (line number, rule, event) of each match and the counts.
fn classify_all(
    profile: &str,
    log: &str,
) -> (
    Vec<(usize, String, SessionEvent)>,
    dge_parse::logs::Counts,
    Vec<Observation>,
) {
    let mut s = stream_with(builtin_profile(profile).unwrap(), Framing::Auto);
    let mut out = Vec::new();
    let mut matched = Vec::new();
    classify_log_bytes(log.as_bytes(), &mut s, &mut out, |n, c| {
        if c.outcome == Outcome::Matched {
            matched.push((n, c.rule.unwrap(), c.event.unwrap()));
        }
    });
    (matched, *s.counts(), out)
}

#[test]
fn discordjs_continuation_lines() {
    // `client.on('debug', console.log)` behind kubectl --timestamps: each physical line gets
    // the container's time, continuation lines start with a tab after it.
    let log = "\
2026-04-19T04:12:25.000000001Z [WS => Manager] Session Limit Information
2026-04-19T04:12:25.000000002Z \tTotal: 1000
2026-04-19T04:12:25.000000003Z \tRemaining: 998
2026-04-19T04:12:26.000000001Z [WS => Shard 0] Identifying
2026-04-19T04:12:26.000000002Z \tshard id: 0
2026-04-19T04:12:26.000000003Z \tshard count: 1
2026-04-19T04:12:26.000000004Z \tintents: 37635
2026-04-19T04:12:27Z [WS => Shard 0] Shard received all its guilds. Marking as fully ready.
2026-04-19T05:00:00.000000001Z [WS => Shard 0] Destroying shard
2026-04-19T05:00:00.000000002Z \tReason: Got disconnected by Discord
2026-04-19T05:00:00.000000003Z \tCode: 1000
2026-04-19T05:00:00.000000004Z \tRecover: Reconnect
2026-04-19T05:00:01Z Bot: message from alice
2026-04-19T05:00:01.1Z \tCode: 4004
2026-04-19T05:00:02Z [WS => Shard 3] Destroying shard
2026-04-19T05:00:02.1Z \tCode: 4014
2026-04-19T05:00:03Z [WS => Shard 0] Destroying shard
2026-04-19T05:00:03.1Z \tReason: none
2026-04-19T05:00:03.2Z \tCode: undefined
";
    let (matched, counts, out) = classify_all("auto", log);
    let got: Vec<(usize, &str)> = matched.iter().map(|(n, r, _)| (*n, r.as_str())).collect();
    assert_eq!(
        got,
        vec![
            (4, "discordjs.identifying"),
            (8, "discordjs.ready"),
            (11, "discordjs.destroyed"),
            (16, "discordjs.destroyed"),
        ]
    );
    assert_eq!(matched[2].2, SessionEvent::Closed { code: Some(1000) });
    assert_eq!(matched[3].2, SessionEvent::Closed { code: Some(4014) });
    assert_eq!(session(&out[3]).shard, Some(3));
    // Every physical line counted once; the match sits on the line that completes it, at its time.
    assert_eq!(counts.lines(), 19);
    assert_eq!((counts.matched, counts.malformed), (4, 0));
    assert_eq!(out[2].at, ts("2026-04-19T05:00:00.000000003Z"));
    assert_eq!(
        session(&out[2]).line.as_deref(),
        Some("[WS => Shard 0] Destroying shard\n\tCode: 1000")
    );
    // Only discord.js reads continuations: in the openab profile a tab-led line is a line.
    assert!(!builtin_profile("openab").unwrap().continues(u64::MAX));
    assert!(builtin_profile("discordjs").unwrap().continues(u64::MAX));
}

#[test]
fn jda_lines() {
    let cases: Vec<(&str, Option<Want>)> = vec![
        (
            "[main] INFO JDA - Login Successful!",
            Some(want("jda.starting", SessionEvent::Starting)),
        ),
        (
            "[JDA MainWS-WriteThread] INFO WebSocketClient - Connected to WebSocket",
            None,
        ),
        (
            "[JDA MainWS-ReadThread] DEBUG WebSocketClient - Sending Identify-packet...",
            Some(want("jda.identifying", SessionEvent::Identifying)),
        ),
        (
            "INFO  JDA - Finished Loading!",
            Some(want("jda.ready", SessionEvent::Ready { session_id: None })),
        ),
        (
            "DEBUG JDA - Successfully resumed Session!",
            Some(want("jda.resumed", SessionEvent::Resumed)),
        ),
        (
            "WARN  WebSocketClient - Got disconnected from WebSocket (Code 1000). Appending to reconnect queue",
            Some(want(
                "jda.disconnected",
                SessionEvent::Closed { code: Some(1000) },
            )),
        ),
        (
            "WARN  WebSocketClient - Got disconnected from WebSocket (Code: 4000). Appending to reconnect queue",
            Some(want(
                "jda.disconnected",
                SessionEvent::Closed { code: Some(4000) },
            )),
        ),
        (
            "WARN  WebSocketClient - Missed 2 heartbeats! Trying to reconnect...",
            Some(want("jda.missed_heartbeats", SessionEvent::Reconnecting)),
        ),
        (
            "ERROR WebSocketClient - WebSocket connection was closed and cannot be recovered due to identification issues",
            Some(want(
                "jda.fatal.identify",
                fatal(
                    "authentication failed: the gateway rejected the identify",
                    None,
                ),
            )),
        ),
        // logback layouts: time, thread, padded level, (abbreviated) logger.
        (
            "12:34:56.789 [main] INFO  net.dv8tion.jda.api.JDA - Finished Loading!",
            Some(want("jda.ready", SessionEvent::Ready { session_id: None })),
        ),
        (
            "2026-04-19 04:12:26.118 [JDA MainWS-ReadThread] WARN  n.d.j.i.requests.WebSocketClient - Missed 3 heartbeats! Trying to reconnect...",
            Some(want("jda.missed_heartbeats", SessionEvent::Reconnecting)),
        ),
        (
            "2026-04-19 04:12:26 INFO [main] net.dv8tion.jda.internal.JDAImpl - Login Successful!",
            Some(want("jda.starting", SessionEvent::Starting)),
        ),
        // Look-alikes: another logger, the text later in the message.
        ("[main] INFO MyBot - Login Successful!", None),
        ("[main] INFO JDA - user wrote Finished Loading!", None),
        ("INFO  JDA - Finished Loading", None),
    ];
    for (line, expect) in &cases {
        check(Framing::Auto, line.as_bytes(), expect.as_ref());
        let kubectl = format!("2026-04-19T09:09:09Z {line}");
        check(Framing::Kubectl, kubectl.as_bytes(), expect.as_ref());
        // Coloured level (logback's %highlight).
        let coloured = line.replacen("INFO", "\x1b[34mINFO\x1b[0;39m", 1);
        check(Framing::Auto, coloured.as_bytes(), expect.as_ref());
    }
}

#[test]
fn structured_json_and_logfmt() {
    let log = r#"{"timestamp":"2026-04-19T04:12:03.481227Z","level":"INFO","fields":{"message":"config loaded","agent_cmd":"kiro-cli"},"target":"openab"}
{"timestamp":"2026-04-19T04:12:04.912640Z","level":"INFO","fields":{"message":"discord bot connected","user":"AgentBroker"},"target":"openab::discord"}
{"timestamp":"2026-04-19T04:15:58.364881Z","level":"INFO","fields":{"message":"batch dispatched","thread_key":"discord:1"},"target":"openab::dispatch","span":{"channel":"1","name":"dispatch"},"spans":[{"channel":"1","name":"dispatch"}]}
{"timestamp":"2026-04-19T04:16:00Z","level":"INFO","fields":{"message":"user said \"discord bot connected\""},"target":"openab::discord"}
{"timestamp":"2026-04-19T04:16:01Z","level":"DEBUG","message":"received dispatch","event_type":"READY","sequence":1,"target":"twilight_gateway::shard","spans":[{"id":"[2, 4]","name":"shard"}]}
{"timestamp":"2026-04-19T04:16:02Z","level":"INFO","message":"connection is failed or \"zombied\"","target":"twilight_gateway::shard"}
{"level":20,"time":1776572163000,"pid":7,"hostname":"bot-0","msg":"[WS => Shard 0] Destroying shard\n\tReason: none\n\tCode: 4014\n\tRecover: none"}
{"asctime": "2026-04-19 04:16:04", "levelname": "INFO", "name": "discord.gateway", "message": "Shard ID None has connected to Gateway (Session ID: 388b826d)."}
{"@timestamp":"2026-04-19T04:16:05Z","level":"INFO","logger_name":"net.dv8tion.jda.api.JDA","message":"Finished Loading!"}
{"not": "a log line with a literal: discord bot connected"
time=2026-04-19T04:16:06Z level=info target=openab::discord msg="discord bot connected" user=Helper
ts=2026-04-19T04:16:07Z lvl=debug msg="[WS => Shard 1] Resumed and replayed 3 events"
level=info msg="nothing to see"
"#;
    let (matched, counts, out) = classify_all("auto", log);
    let got: Vec<(usize, &str)> = matched.iter().map(|(n, r, _)| (*n, r.as_str())).collect();
    assert_eq!(
        got,
        vec![
            (2, "openab.ready"),
            (3, "openab.dispatch.batch"),
            (5, "twilight.ready"),
            (6, "twilight.zombie"),
            (7, "discordjs.destroyed"),
            (8, "discordpy.ready"),
            (9, "jda.ready"),
            (11, "openab.ready"),
            (12, "discordjs.resumed"),
        ]
    );
    assert_eq!(counts.lines(), 13);
    assert_eq!(counts.malformed, 0, "JSON lines carry their own time");
    let at: Vec<String> = out.iter().map(|o| o.at.to_rfc3339()).collect();
    assert_eq!(at[0], "2026-04-19T04:12:04.912640+00:00");
    assert_eq!(
        at[4], "2026-04-19T04:16:03+00:00",
        "pino epoch milliseconds"
    );
    assert_eq!(at[5], "2026-04-19T04:16:04+00:00", "python asctime");
    assert_eq!(session(&out[0]).bot.as_deref(), Some("AgentBroker"));
    assert_eq!(session(&out[2]).shard, Some(2));
    assert_eq!(matched[4].2, SessionEvent::Closed { code: Some(4014) });
    assert_eq!(session(&out[7]).bot.as_deref(), Some("Helper"));
    assert_eq!(
        session(&out[0]).line.as_deref(),
        Some(" INFO openab::discord: discord bot connected user=AgentBroker"),
        "the evidence is the decoded line"
    );
    // The structured profiles read only their own encoding's lines as structured.
    let (m, _, _) = classify_all("tracing-json", log);
    let rules: Vec<&str> = m.iter().map(|(_, r, _)| r.as_str()).collect();
    assert_eq!(
        rules,
        vec![
            "openab.ready",
            "openab.dispatch.batch",
            "twilight.ready",
            "twilight.zombie"
        ]
    );
    let (m, _, _) = classify_all("logfmt", log);
    let rules: Vec<&str> = m.iter().map(|(_, r, _)| r.as_str()).collect();
    assert_eq!(rules, vec!["openab.ready", "discordjs.resumed"]);
    // JSON behind kubectl: the container's time wins; ANSI inside the message is stripped.
    let (m, _, out) = classify_all(
        "json",
        "2026-04-19T09:09:09Z {\"level\":\"info\",\"target\":\"openab::discord\",\"message\":\"discord bot connected\",\"user\":\"X\"}\n",
    );
    assert_eq!(m.len(), 1);
    assert_eq!(out[0].at, ts("2026-04-19T09:09:09Z"));
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
    let mut s = stream_with(builtin_profile("json").unwrap(), Framing::Auto);
    s.push_line(PRIME.as_bytes(), &mut out);
    assert_eq!(s.push_line(line, &mut out), Outcome::Ignored);
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
    let ser = b"INFO  serenity::gateway::shard: [ShardInfo { id: ShardId(0), total: 1 }] Resumed";
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
