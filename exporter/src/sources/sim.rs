//! The simulated fleet behind `demo` and the recorded incidents in `examples/`.
//!
//! The simulator writes what an operator would capture, in the real formats (OpenAB and
//! discord.py log lines behind `kubectl logs --timestamps` or kubelet CRI framing, Pod objects
//! of `kubectl get pods -w -o json --output-watch-events`, `GET /gateway/bot` samples), so
//! the demo and the examples go through the same readers as real captures.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use chrono::{SecondsFormat, TimeDelta};
use serde_json::{Value, json};

use dge_core::observation::Timestamp;

/// One captured thing, at its time.
#[derive(Debug, Clone, PartialEq)]
pub enum Artifact {
    /// A line of a pod's log (the bot's own text, without any container prefix).
    Log { pod: PodRef, text: String },
    /// A watch event of `kubectl get pods -w -o json --output-watch-events`.
    PodWatch { kind: &'static str, object: Value },
    /// A `GET /gateway/bot` answer.
    GatewayBot { bot: String, body: Value },
}

/// Which pod a log line comes from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct PodRef {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub container: String,
}

/// How the simulated bot writes its log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Style {
    /// OpenAB with tracing-subscriber's default ANSI colours.
    OpenAbAnsi,
    OpenAbPlain,
    DiscordPy,
}

/// A simulated pod: its identity and what its Pod object says right now.
#[derive(Debug, Clone)]
pub struct SimPod {
    pub pod: PodRef,
    pub workload: String,
    pub hash: String,
    pub style: Style,
    pub bot: String,
    grace: u64,
    created: Timestamp,
    started: Option<Timestamp>,
    ready: Option<Timestamp>,
    deletion: Option<Timestamp>,
    terminated: Option<(Timestamp, i32, &'static str)>,
    last_terminated: Option<(Timestamp, Timestamp, i32, &'static str)>,
    restarts: u32,
}

/// A deterministic random source (splitmix64), so every run writes the same files.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1].
    fn unit(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 1.0) / (1u64 << 53) as f64
    }

    /// Exponential with the given mean (Poisson arrivals).
    pub fn exp(&mut self, mean: f64) -> f64 {
        -mean * self.unit().ln()
    }

    fn pick<'a>(&mut self, xs: &'a [&'a str]) -> &'a str {
        xs[(self.next_u64() % xs.len() as u64) as usize]
    }
}

/// A growing, time-sorted list of artifacts.
#[derive(Debug, Default, Clone)]
pub struct Scenario {
    pub artifacts: Vec<(Timestamp, Artifact)>,
    identifies: BTreeMap<String, Vec<Timestamp>>,
    seq: u64,
}

fn ms(secs: f64) -> TimeDelta {
    TimeDelta::milliseconds((secs * 1000.0) as i64)
}

fn rfc(t: Timestamp) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

impl Scenario {
    pub fn new() -> Self {
        Self::default()
    }

    /// Artifacts sorted by time (stable).
    pub fn sorted(mut self) -> Vec<(Timestamp, Artifact)> {
        self.artifacts.sort_by_key(|(t, _)| *t);
        self.artifacts
    }

    /// A pod of `workload` created at `at` (Pending).
    #[allow(clippy::too_many_arguments)]
    pub fn create_pod(
        &mut self,
        at: Timestamp,
        namespace: &str,
        workload: &str,
        hash: &str,
        suffix: &str,
        bot: &str,
        style: Style,
        grace: u64,
    ) -> SimPod {
        self.seq += 1;
        let name = format!("{workload}-{hash}-{suffix}");
        let uid = format!(
            "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
            0x5eed_0000u32 + self.seq as u32,
            self.seq * 7 % 0xffff,
            self.seq % 0xfff,
            self.seq * 3 % 0xfff,
            self.seq * 0x1_0001
        );
        let pod = SimPod {
            pod: PodRef {
                namespace: namespace.into(),
                name,
                uid,
                container: workload.into(),
            },
            workload: workload.into(),
            hash: hash.into(),
            style,
            bot: bot.into(),
            grace,
            created: at,
            started: None,
            ready: None,
            deletion: None,
            terminated: None,
            last_terminated: None,
            restarts: 0,
        };
        self.watch(at, "ADDED", &pod);
        pod
    }

    fn watch(&mut self, at: Timestamp, kind: &'static str, pod: &SimPod) {
        self.artifacts.push((
            at,
            Artifact::PodWatch {
                kind,
                object: pod.to_json(),
            },
        ));
    }

    fn log(&mut self, at: Timestamp, pod: &SimPod, level: &str, target: &str, msg: &str) {
        let text = pod.format_line(at, level, target, msg);
        self.artifacts.push((
            at,
            Artifact::Log {
                pod: pod.pod.clone(),
                text,
            },
        ));
    }

    /// The container starts and the bot connects `connect_after` seconds later; the pod turns
    /// Ready a second after that.
    pub fn start(&mut self, at: Timestamp, pod: &mut SimPod, connect_after: f64) {
        pod.started = Some(at);
        pod.terminated = None;
        self.watch(at, "MODIFIED", pod);
        match pod.style {
            Style::DiscordPy => {
                self.log(
                    at + ms(0.3),
                    pod,
                    "INFO",
                    "discord.client",
                    "logging in using static token",
                );
                let sid = format!(
                    "{:032x}",
                    self.seq.wrapping_mul(0x9e37_79b9_7f4a_7c15) as u128 * 0x1_0000_0001
                );
                let sid = &sid[sid.len() - 32..];
                self.log(
                    at + ms(connect_after - 0.01),
                    pod,
                    "DEBUG",
                    "discord.gateway",
                    &format!(
                        "For Shard ID None: WebSocket Event: {{'t': 'READY', 's': 1, 'op': 0, 'd': {{'v': 10, 'user_settings': {{}}, 'user': {{'verified': True, 'username': '{}', 'mfa_enabled': False, 'id': '1259347692690096105', 'flags': 0, 'discriminator': '0000', 'bot': True, 'avatar': None}}, 'session_type': 'normal', 'session_id': '{sid}', 'resume_gateway_url': 'wss://gateway-us-east1-b.discord.gg', 'relationships': [], 'private_channels': [], 'presences': [], 'guilds': [{{'unavailable': True, 'id': '1491295327620169908'}}], 'guild_join_requests': [], 'geo_ordered_rtc_regions': ['us-east'], 'application': {{'id': '1259347692690096105', 'flags': 8953856}}}}}}",
                        pod.bot
                    ),
                );
                self.log(
                    at + ms(connect_after),
                    pod,
                    "INFO",
                    "discord.gateway",
                    &format!("Shard ID None has connected to Gateway (Session ID: {sid})."),
                );
            }
            _ => {
                self.log(at + ms(0.1), pod, "INFO", "openab", "config loaded agent_cmd=kiro-cli pool_max=10 discord=true slack=false reactions=true");
                self.log(at + ms(0.2), pod, "INFO", "openab", "discord bot running");
                self.log(
                    at + ms(connect_after),
                    pod,
                    "INFO",
                    "openab::discord",
                    &format!("discord bot connected user={}", pod.bot),
                );
                self.log(
                    at + ms(connect_after + 0.3),
                    pod,
                    "INFO",
                    "openab::discord",
                    "registered global slash commands",
                );
            }
        }
        self.identifies
            .entry(pod.bot.clone())
            .or_default()
            .push(at + ms(connect_after));
        let ready = at + ms(connect_after + 1.0);
        pod.ready = Some(ready);
        self.watch(ready, "MODIFIED", pod);
    }

    /// The container starts and Discord refuses its intents: OpenAB logs it and exits 1.
    pub fn crash_on_intents(&mut self, at: Timestamp, pod: &mut SimPod) -> Timestamp {
        pod.started = Some(at);
        pod.ready = None;
        self.watch(at, "MODIFIED", pod);
        self.log(at + ms(0.2), pod, "INFO", "openab", "discord bot running");
        self.log(
            at + ms(1.1),
            pod,
            "ERROR",
            "serenity::gateway::bridge::shard_runner",
            "Shard handler received err: Gateway(DisallowedGatewayIntents)",
        );
        self.log(
            at + ms(1.2),
            pod,
            "ERROR",
            "openab",
            "Discord rejected privileged intents. Enable MESSAGE CONTENT INTENT at: https://discord.com/developers/applications \u{2192} Bot \u{2192} Privileged Gateway Intents",
        );
        self.identifies
            .entry(pod.bot.clone())
            .or_default()
            .push(at + ms(1.0));
        let end = at + ms(1.4);
        pod.last_terminated = Some((at, end, 1, "Error"));
        pod.terminated = Some((end, 1, "Error"));
        pod.started = None;
        self.watch(end, "MODIFIED", pod);
        end
    }

    /// Kubelet restarts a crashed container (CrashLoopBackOff).
    pub fn restart_count(&mut self, pod: &mut SimPod) {
        pod.restarts += 1;
        pod.terminated = None;
    }

    /// Deletion requested (rollout, scale down): the pod turns Terminating.
    pub fn terminate(&mut self, at: Timestamp, pod: &mut SimPod) {
        pod.deletion = Some(at);
        pod.ready = None;
        self.watch(at, "MODIFIED", pod);
    }

    /// The bot shuts down gracefully (closing its gateway session) and exits 0.
    pub fn graceful_exit(&mut self, at: Timestamp, pod: &mut SimPod) {
        match pod.style {
            Style::DiscordPy => {}
            _ => {
                self.log(at, pod, "INFO", "openab", "SIGTERM received");
                self.log(
                    at + ms(0.02),
                    pod,
                    "INFO",
                    "openab",
                    "shutdown signal received",
                );
                self.log(at + ms(0.6), pod, "INFO", "openab", "openab shut down");
            }
        }
        self.exit(at + ms(0.8), pod, 0, "Completed");
    }

    /// The container ends with `code` (137: killed at the end of the grace period).
    pub fn exit(&mut self, at: Timestamp, pod: &mut SimPod, code: i32, reason: &'static str) {
        pod.terminated = Some((at, code, reason));
        self.watch(at, "MODIFIED", pod);
        self.watch(at + ms(1.0), "DELETED", pod);
    }

    /// Poisson traffic of mean interval `mean` seconds in [from, to), each event logged by
    /// every pod in `receivers` (two receivers = duplicate delivery).
    pub fn traffic(
        &mut self,
        rng: &mut Rng,
        from: Timestamp,
        to: Timestamp,
        mean: f64,
        receivers: &[&SimPod],
    ) {
        let mut t = from + ms(rng.exp(mean));
        while t < to {
            let user = rng.pick(&["alice", "bob", "carol", "dave", "erin"]);
            let channel = 1_496_011_987_654_321_098u64 + (rng.next_u64() % 5);
            let wait = rng.next_u64() % 40;
            for p in receivers {
                let msg = match p.style {
                    Style::DiscordPy => "Dispatching event message".to_string(),
                    _ => format!(
                        "batch dispatched thread_key=discord:{channel} events_per_dispatch=1 packed_block_count=2 agent_dispatch_ms={} tokens_per_event=[37] wait_ms=[{wait}] senders=[\"{user}\"]",
                        1000 + wait * 300
                    ),
                };
                let (level, target) = match p.style {
                    Style::DiscordPy => ("DEBUG", "discord.client"),
                    _ => ("INFO", "openab::dispatch"),
                };
                let target = if p.style == Style::DiscordPy {
                    target.to_string()
                } else {
                    format!("dispatch{{channel={channel} adapter=\"discord\"}}: {target}")
                };
                self.log(t, p, level, &target, &msg);
            }
            t += ms(rng.exp(mean).max(0.05));
        }
    }

    /// `GET /gateway/bot` samples every `every` seconds in [from, to], with `remaining`
    /// following the identifies so far (plus `hidden`: identifies no log shows).
    pub fn gateway_samples(
        &mut self,
        bot: &str,
        from: Timestamp,
        to: Timestamp,
        every: f64,
        used_before: u32,
        hidden: &[Timestamp],
    ) {
        let mut t = from;
        let reset_at = from + TimeDelta::hours(20);
        while t <= to {
            let seen = self
                .identifies
                .get(bot)
                .map_or(0, |v| v.iter().filter(|i| **i <= t).count()) as u32;
            let extra = hidden.iter().filter(|h| **h <= t).count() as u32;
            let remaining = 1000u32.saturating_sub(used_before + seen + extra);
            let body = json!({
                "url": "wss://gateway.discord.gg",
                "shards": 1,
                "session_start_limit": {
                    "total": 1000,
                    "remaining": remaining,
                    "reset_after": (reset_at - t).num_milliseconds().max(0),
                    "max_concurrency": 1
                }
            });
            self.artifacts.push((
                t,
                Artifact::GatewayBot {
                    bot: bot.into(),
                    body,
                },
            ));
            t += ms(every);
        }
    }
}

impl SimPod {
    fn format_line(&self, at: Timestamp, level: &str, target: &str, msg: &str) -> String {
        let ts = at.to_rfc3339_opts(SecondsFormat::Micros, true);
        match self.style {
            Style::DiscordPy => {
                format!(
                    "[{}] [{level:<8}] {target}: {msg}",
                    at.format("%Y-%m-%d %H:%M:%S")
                )
            }
            Style::OpenAbPlain => format!("{ts} {level:>5} {target}: {msg}"),
            Style::OpenAbAnsi => {
                let colour = match level {
                    "ERROR" => "31",
                    "WARN" => "33",
                    "DEBUG" => "34",
                    _ => "32",
                };
                // tracing-subscriber's fmt(): dimmed time and target, coloured level, italic
                // field names with dimmed '='.
                let mut fields = String::new();
                let mut words = Vec::new();
                for w in msg.split(' ') {
                    if let Some((k, v)) = w.split_once('=')
                        && !k.is_empty()
                        && k.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')
                    {
                        let _ = write!(fields, " \x1b[3m{k}\x1b[0m\x1b[2m=\x1b[0m{v}");
                        continue;
                    }
                    words.push(w);
                }
                format!(
                    "\x1b[2m{ts}\x1b[0m \x1b[{colour}m{level:>5}\x1b[0m \x1b[2m{target}\x1b[0m\x1b[2m:\x1b[0m {}{fields}",
                    words.join(" ")
                )
            }
        }
    }

    /// The Pod object as the API server returns it.
    pub fn to_json(&self) -> Value {
        let mut metadata = json!({
            "name": self.pod.name,
            "generateName": format!("{}-{}-", self.workload, self.hash),
            "namespace": self.pod.namespace,
            "uid": self.pod.uid,
            "resourceVersion": format!("{}", 100_000 + self.created.timestamp() % 100_000),
            "creationTimestamp": rfc(self.created),
            "labels": {"app.kubernetes.io/name": self.workload, "pod-template-hash": self.hash},
            "ownerReferences": [{
                "apiVersion": "apps/v1", "kind": "ReplicaSet",
                "name": format!("{}-{}", self.workload, self.hash),
                "uid": "0a1b2c3d-0000-4000-8000-00000000000a", "controller": true, "blockOwnerDeletion": true
            }]
        });
        if let Some(d) = self.deletion {
            metadata["deletionTimestamp"] = json!(rfc(d + TimeDelta::seconds(self.grace as i64)));
            metadata["deletionGracePeriodSeconds"] = json!(self.grace);
        }
        let mut state = json!({"waiting": {"reason": "ContainerCreating"}});
        let mut phase = "Pending";
        if let Some(s) = self.started {
            state = json!({"running": {"startedAt": rfc(s)}});
            phase = "Running";
        }
        if let Some((f, code, reason)) = self.terminated {
            let started = self
                .started
                .or(self.last_terminated.map(|l| l.0))
                .unwrap_or(self.created);
            state = json!({"terminated": {"exitCode": code, "reason": reason,
                "startedAt": rfc(started), "finishedAt": rfc(f), "containerID": format!("containerd://{:064x}", self.created.timestamp())}});
            phase = if code == 0 { "Succeeded" } else { "Failed" };
            if self.restarts > 0 || self.deletion.is_none() {
                // A crash-looping container waits to restart.
                phase = "Running";
                state = json!({"waiting": {"reason": "CrashLoopBackOff",
                    "message": format!("back-off restarting failed container {}", self.pod.container)}});
            }
        }
        let mut status = json!({
            "phase": phase,
            "conditions": [
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": rfc(self.created)},
                {"type": "Ready", "status": if self.ready.is_some() { "True" } else { "False" },
                 "lastTransitionTime": rfc(self.ready.unwrap_or(self.created))}
            ],
            "containerStatuses": [{
                "name": self.pod.container,
                "image": format!("ghcr.io/example/{}:1.4.2", self.workload),
                "ready": self.ready.is_some(),
                "restartCount": self.restarts,
                "started": self.started.is_some(),
                "state": state
            }],
            "startTime": rfc(self.created),
            "hostIP": "10.0.3.17",
            "podIP": "10.244.1.23",
            "qosClass": "Burstable"
        });
        if let Some((s, f, code, reason)) = self.last_terminated {
            status["containerStatuses"][0]["lastState"] = json!({"terminated": {
                "exitCode": code, "reason": reason, "startedAt": rfc(s), "finishedAt": rfc(f)}});
        }
        json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": metadata,
            "spec": {
                "nodeName": "worker-2",
                "terminationGracePeriodSeconds": self.grace,
                "containers": [{"name": self.pod.container, "image": format!("ghcr.io/example/{}:1.4.2", self.workload)}]
            },
            "status": status
        })
    }
}

/// How log files of an example are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogCapture {
    /// `kubectl logs --timestamps <pod> > <pod>.log`
    Kubectl,
    /// The kubelet's files: `pods/<ns>_<pod>_<uid>/<container>/0.log`.
    Cri,
}

/// Writes a scenario as the files an operator captures. Returns the files written.
pub fn write_capture(
    dir: &Path,
    artifacts: &[(Timestamp, Artifact)],
    logs: LogCapture,
) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let mut files: BTreeMap<PathBuf, String> = BTreeMap::new();
    for (at, a) in artifacts {
        match a {
            Artifact::Log { pod, text } => {
                let ts = at.to_rfc3339_opts(SecondsFormat::Nanos, true);
                let (path, line) = match logs {
                    LogCapture::Kubectl => (
                        dir.join(format!("{}.log", pod.name)),
                        format!("{ts} {text}\n"),
                    ),
                    LogCapture::Cri => (
                        dir.join("pods")
                            .join(format!("{}_{}_{}", pod.namespace, pod.name, pod.uid))
                            .join(&pod.container)
                            .join("0.log"),
                        format!("{ts} stdout F {text}\n"),
                    ),
                };
                files.entry(path).or_default().push_str(&line);
            }
            Artifact::PodWatch { kind, object } => {
                let ev = json!({"type": kind, "object": object});
                let s = files.entry(dir.join("pods.watch.json")).or_default();
                s.push_str(&serde_json::to_string_pretty(&ev).expect("json"));
                s.push('\n');
            }
            Artifact::GatewayBot { bot, body } => {
                let line = json!({"at": at.to_rfc3339_opts(SecondsFormat::Secs, true), "bot": bot, "gateway_bot": body});
                let s = files.entry(dir.join("gateway-bot.jsonl")).or_default();
                s.push_str(&line.to_string());
                s.push('\n');
            }
        }
    }
    let mut written = Vec::new();
    for (path, text) in files {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, text)?;
        written.push(path);
    }
    Ok(written)
}

pub mod player;
pub mod scenarios;
