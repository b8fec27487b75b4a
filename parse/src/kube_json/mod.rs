//! Kubernetes JSON captures (kubectl get pods/events -o json, watch streams) -> Observations.
//!
//! [`read_json_capture`] accepts, in one file and mixed:
//!
//! - `kubectl get pods -o json` (a `List`/`PodList` with `items`), single `Pod` objects,
//!   `kubectl get pods -w -o json` (pretty objects back to back), `--output-watch-events`
//!   (`{"type": "ADDED|MODIFIED|DELETED|BOOKMARK|ERROR", "object": {..}}`), JSON lines, and a
//!   JSON array of any of these;
//! - `kubectl get events -o json` (core/v1 and events.k8s.io/v1), see the `event` module for
//!   the mapping;
//! - `{"at", "bot", "gateway_bot": <GET /gateway/bot body>}` lines -> [`Body::StartLimit`];
//! - the daemon's own recording: serialized [`Observation`]s, passed through unchanged.
//!
//! Pods go through a [`PodTracker`], so a pod that appears in many snapshots yields each
//! transition once. The input is untrusted: every object that cannot be used becomes one
//! [`Problem`] and is skipped, and the objects around it are kept (see the `framing` module
//! for how reading resumes after broken JSON). Nothing here panics on any input.

mod event;
mod fields;
mod framing;
mod pod;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use dge_core::observation::{Body, Observation, StartLimit};
use fields::{Fallible, get, opt_u32, opt_u64, req_str, req_time, shown};
use framing::{Frame, Lines, frames};

pub use pod::{KnownPod, PodTracker};

/// Everything read from one capture.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct JsonCapture {
    /// Sorted by `at` (stable: equal times keep their order in the file).
    pub observations: Vec<Observation>,
    /// One per object (or region of broken bytes) that was skipped, in file order.
    pub problems: Vec<Problem>,
    /// JSON objects read: pods, events, watch events, start-limit and recorded lines (the items
    /// of a list count, the list itself does not), including those that became problems.
    pub objects: usize,
    /// Well-formed objects with nothing to say (events with other reasons or about other kinds,
    /// BOOKMARKs, what a pod object already said): counted, not problems.
    pub ignored: usize,
}

/// Something in a capture that could not be used, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Byte offset where the bad object (or the list holding it) starts.
    pub offset: usize,
    /// 1-based line of `offset`.
    pub line: usize,
    /// Plain reason; never quotes the input's values (they may hold secrets).
    pub reason: String,
}

/// How a pod maps to a bot: the value of the `label` label names the bot, translated through
/// `bots` when listed there (label value -> bot name); otherwise `default`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PodAttribution {
    /// Label key whose value is the bot (e.g. `app.kubernetes.io/name`).
    pub label: Option<String>,
    /// Label value -> bot name, for label values that are not the bot name themselves.
    pub bots: BTreeMap<String, String>,
    /// The bot of pods the label does not name.
    pub default: Option<String>,
    /// The container that runs the bot, when pods have several (otherwise the one named like
    /// the app, else the first).
    pub container: Option<String>,
}

impl PodAttribution {
    /// The bot of a pod with these labels.
    pub fn bot_for(&self, labels: &BTreeMap<String, String>) -> Option<String> {
        self.label
            .as_ref()
            .and_then(|key| labels.get(key))
            .filter(|v| !v.is_empty())
            .map(|v| self.bots.get(v).unwrap_or(v).clone())
            .or_else(|| self.default.clone())
    }
}

/// Reads a capture (already recognised as JSON). `source` names it in every observation.
pub fn read_json_capture(bytes: &[u8], source: &str, attribution: &PodAttribution) -> JsonCapture {
    let mut reader = Reader {
        tracker: PodTracker::new(attribution.clone()),
        attribution,
        source,
        lines: Lines::new(bytes),
        events: Vec::new(),
        capture: JsonCapture::default(),
    };
    frames(bytes, |frame| match frame {
        Frame::Value { offset, value } => reader.top(offset, value),
        Frame::Bad {
            offset,
            len,
            reason,
        } => reader.problem(offset, format!("{reason}; skipped {len} bytes")),
    });
    reader.finish()
}

struct Reader<'a> {
    tracker: PodTracker,
    attribution: &'a PodAttribution,
    source: &'a str,
    lines: Lines<'a>,
    events: Vec<event::PodEvent>,
    capture: JsonCapture,
}

impl Reader<'_> {
    fn problem(&mut self, offset: usize, reason: String) {
        let line = self.lines.line_of(offset);
        self.capture.problems.push(Problem {
            offset,
            line,
            reason,
        });
    }

    fn top(&mut self, offset: usize, value: Value) {
        match &value {
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    self.object(offset, item, None, &format!("element {i} of an array: "));
                }
            }
            v => self.object(offset, v, None, ""),
        }
    }

    /// One object (or a list of them); `kind` is implied by a typed list (`PodList` items
    /// carry no kind); `ctx` prefixes problem reasons.
    fn object(&mut self, offset: usize, v: &Value, implied_kind: Option<&str>, ctx: &str) {
        let Value::Object(map) = v else {
            self.capture.objects += 1;
            let what = match v {
                Value::Null => "null",
                Value::Bool(_) => "a boolean",
                Value::Number(_) => "a number",
                Value::String(_) => "a string",
                Value::Array(_) => "an array",
                Value::Object(_) => "an object",
            };
            self.problem(offset, format!("{ctx}expected a JSON object, found {what}"));
            return;
        };
        let kind = match map.get("kind") {
            None | Some(Value::Null) => implied_kind,
            Some(Value::String(k)) => Some(k.as_str()),
            Some(_) => {
                self.capture.objects += 1;
                self.problem(offset, format!("{ctx}kind is not a string"));
                return;
            }
        };
        if let Some(k) = kind
            && k.ends_with("List")
        {
            return self.list(offset, map, k, ctx);
        }
        self.capture.objects += 1;
        let result = if map.contains_key("gateway_bot") {
            self.start_limit(v)
        } else if kind.is_none() && map.contains_key("body") && map.contains_key("at") {
            serde_json::from_value::<Observation>(v.clone())
                .map(|o| self.capture.observations.push(o))
                .map_err(|e| {
                    format!(
                        "recorded observation does not fit the vocabulary: {}",
                        strip_position(&e)
                    )
                })
        } else if kind.is_none() && map.contains_key("object") && map.contains_key("type") {
            self.watch_event(v)
        } else {
            match kind {
                Some("Pod") => self.pod(v, false),
                Some("Event") => self.event(v),
                Some(other) => Err(format!("unrecognised object kind {}", shown(other))),
                None => Err(
                    "unrecognised object: no kind, and not a watch event, start-limit line or \
                     recorded observation"
                        .to_owned(),
                ),
            }
        };
        if let Err(reason) = result {
            self.problem(offset, format!("{ctx}{reason}"));
        }
    }

    fn list(&mut self, offset: usize, map: &Map<String, Value>, kind: &str, ctx: &str) {
        let items = match map.get("items") {
            Some(Value::Array(items)) => items,
            None | Some(Value::Null) => return,
            Some(_) => {
                self.capture.objects += 1;
                return self.problem(
                    offset,
                    format!("{ctx}{} items is not an array", shown(kind)),
                );
            }
        };
        let implied = kind.strip_suffix("List").filter(|k| !k.is_empty());
        for (i, item) in items.iter().enumerate() {
            let ctx = format!("{ctx}items[{i}] of a {}: ", shown(kind));
            self.object(offset, item, implied, &ctx);
        }
    }

    fn pod(&mut self, v: &Value, deleted: bool) -> Fallible<()> {
        self.tracker
            .try_observe_pod(v, deleted, self.source, &mut self.capture.observations)
            .map(|n| {
                if n == 0 {
                    self.capture.ignored += 1;
                }
            })
    }

    fn event(&mut self, v: &Value) -> Fallible<()> {
        match event::parse_event(v)? {
            Some(ev) => self.events.push(ev),
            None => self.capture.ignored += 1,
        }
        Ok(())
    }

    fn watch_event(&mut self, v: &Value) -> Fallible<()> {
        let kind = req_str(v, "type", "type")?;
        let object = get(v, "object").ok_or("watch event has no object")?;
        match kind {
            "ADDED" | "MODIFIED" | "DELETED" => {
                let deleted = kind == "DELETED";
                match get(object, "kind").and_then(Value::as_str) {
                    Some("Pod") => self.pod(object, deleted),
                    // An Event's DELETED is only its expiry.
                    Some("Event") if deleted => {
                        self.capture.ignored += 1;
                        Ok(())
                    }
                    Some("Event") => self.event(object),
                    Some(other) => Err(format!(
                        "watch event about an unrecognised object kind {}",
                        shown(other)
                    )),
                    None => Err("watch event object has no kind".to_owned()),
                }
            }
            "BOOKMARK" => {
                self.capture.ignored += 1;
                Ok(())
            }
            "ERROR" => {
                let reason = get(object, "reason").and_then(Value::as_str).map(shown);
                let code = get(object, "code").and_then(Value::as_u64);
                Err(format!(
                    "watch ERROR event (reason {}, code {}): changes may be missing from here on",
                    reason.as_deref().unwrap_or("unknown"),
                    code.map_or_else(|| "unknown".to_owned(), |c| c.to_string())
                ))
            }
            other => Err(format!("unrecognised watch event type {}", shown(other))),
        }
    }

    /// `{"at", "bot", "gateway_bot": {"url", "shards", "session_start_limit": {..}}}`.
    fn start_limit(&mut self, v: &Value) -> Fallible<()> {
        let at = req_time(v, "at", "at")?;
        let bot = req_str(v, "bot", "bot")?.to_owned();
        let gb = get(v, "gateway_bot").ok_or("gateway_bot is null")?;
        if !gb.is_object() {
            return Err("gateway_bot is not an object".to_owned());
        }
        let Some(limit) = get(gb, "session_start_limit") else {
            return Err(
                if get(gb, "message").is_some() || get(gb, "code").is_some() {
                    "gateway_bot is a Discord error response, not a session start limit".to_owned()
                } else {
                    "gateway_bot.session_start_limit is missing".to_owned()
                },
            );
        };
        let need_u32 = |key: &str, path: &str| -> Fallible<u32> {
            opt_u32(limit, key, path)?.ok_or_else(|| format!("{path} is missing"))
        };
        let total = need_u32("total", "gateway_bot.session_start_limit.total")?;
        let remaining = need_u32("remaining", "gateway_bot.session_start_limit.remaining")?;
        let max_concurrency = need_u32(
            "max_concurrency",
            "gateway_bot.session_start_limit.max_concurrency",
        )?;
        let reset_after_ms = opt_u64(
            limit,
            "reset_after",
            "gateway_bot.session_start_limit.reset_after",
        )?
        .ok_or("gateway_bot.session_start_limit.reset_after is missing")?;
        let recommended_shards =
            opt_u32(gb, "shards", "gateway_bot.shards")?.ok_or("gateway_bot.shards is missing")?;
        self.capture.observations.push(Observation {
            at,
            source: self.source.into(),
            body: Body::StartLimit(StartLimit {
                bot,
                total,
                remaining,
                reset_after_ms,
                max_concurrency,
                recommended_shards,
            }),
        });
        Ok(())
    }

    fn finish(mut self) -> JsonCapture {
        self.capture.ignored += event::resolve(
            std::mem::take(&mut self.events),
            &self.tracker,
            self.attribution,
            self.source,
            &mut self.capture.observations,
        );
        self.capture.observations.sort_by_key(|o| o.at);
        self.capture
    }
}

fn strip_position(e: &serde_json::Error) -> String {
    let full = e.to_string();
    match full.rfind(" at line ") {
        Some(i) => full[..i].to_owned(),
        None => full,
    }
}
