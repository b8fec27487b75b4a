//! The sink: engine changes become `gateway.session` spans (and their segments) with the
//! observations' own times. Handover spans are in `handovers.rs`.

use std::collections::{HashMap, VecDeque};
use std::time::SystemTime;

use chrono::TimeDelta;
use opentelemetry::trace::{
    Link, Span as _, SpanContext, SpanKind, Status, TraceContextExt, Tracer as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::{SdkTracer, Span};

use super::handovers::HandoverSpan;
use dge_core::engine::{
    Change, EndReason, Finding, HandoverOutcome, Session, SessionState, Severity, Subject,
};
use dge_core::observation::Timestamp;

/// Ended sessions remembered (for handovers that start after their predecessor ended).
const MAX_ENDED: usize = 4096;
/// Events kept per segment (the session span itself is bounded by the SDK's span limits).
const MAX_SEGMENT_EVENTS: usize = 64;

pub(super) fn systime(t: Timestamp) -> SystemTime {
    SystemTime::from(t)
}

/// An event recorded on a session (and its current segment).
#[derive(Clone)]
struct Event {
    name: &'static str,
    at: Timestamp,
    attrs: Vec<KeyValue>,
}

/// A session whose span is open.
pub(super) struct OpenSession {
    pub(super) span: Span,
    pub(super) ctx: SpanContext,
    identity: Vec<KeyValue>,
    bot: String,
    namespace: String,
    pod: String,
    shard: u32,
    pub(super) ready_at: Timestamp,
    seg_start: Timestamp,
    seg_index: u32,
    seg_events: Vec<Event>,
    /// Set by `SessionEnded`; the span ends at the end of the batch, so findings raised by the
    /// same observation (lingering_session) still land on it.
    ended: Option<Box<Session>>,
    critical: Option<&'static str>,
    first_event: Option<Timestamp>,
}

/// What is kept of an ended session: its context, for the links of later sessions and
/// handovers.
struct EndedSession {
    ctx: SpanContext,
}

/// Turns engine [`Change`]s into spans. Owned by the engine's task; never blocks (the SDK's
/// batch processor queues the ended spans).
pub struct TraceSink {
    pub(super) tracer: SdkTracer,
    segment: Option<TimeDelta>,
    pub(super) open: HashMap<u64, OpenSession>,
    ended: HashMap<u64, EndedSession>,
    ended_order: VecDeque<u64>,
    /// Open `gateway.handover` spans by the engine's handover id.
    pub(super) handovers: HashMap<u64, HandoverSpan>,
}

impl TraceSink {
    pub fn new(tracer: SdkTracer, segment: Option<TimeDelta>) -> Self {
        Self {
            tracer,
            segment,
            open: HashMap::new(),
            ended: HashMap::new(),
            ended_order: VecDeque::new(),
            handovers: HashMap::new(),
        }
    }

    /// Sessions whose span is still open.
    pub fn open_sessions(&self) -> usize {
        self.open.len()
    }

    /// The span context of the session a finding concerns, for log lines.
    pub fn context_of(&self, f: &Finding) -> Option<SpanContext> {
        self.concerned(f)
            .first()
            .map(|id| self.open[id].ctx.clone())
    }

    /// Applies one change; `now` is the engine's time (when a finding was concluded).
    pub fn apply(&mut self, c: &Change, now: Timestamp) {
        match c {
            Change::SessionStarted {
                session,
                predecessor,
                ..
            } => self.started(session, *predecessor),
            Change::SessionUpdate { id, at, state } => self.update(*id, *at, state),
            Change::SessionEnded { session } => {
                if let Some(o) = self.open.get_mut(&session.id) {
                    o.ended = Some(session.clone());
                }
                self.handover_event(
                    session.id,
                    "session.ended",
                    session.ended_at.unwrap_or(now),
                    end_attrs(session),
                );
            }
            Change::Opened(f) => self.finding(f, "finding.opened", now),
            Change::Closed(f) => self.finding(f, "finding.closed", f.until.unwrap_or(now)),
            Change::HandoverStarted { handover } => self.handover_started(handover),
            Change::Handover { handover } => self.handover_decided(handover),
        }
    }

    /// After a batch of changes: ends the spans of ended sessions, exports due segments.
    pub fn advance(&mut self, now: Timestamp) {
        let ended: Vec<u64> = self
            .open
            .iter()
            .filter(|(_, o)| o.ended.is_some())
            .map(|(id, _)| *id)
            .collect();
        for id in ended {
            let o = self.open.remove(&id).expect("present");
            let s = o.ended.clone().expect("ended");
            let end = s.ended_at.unwrap_or(now);
            self.remember(id, &o);
            self.close_session(o, end, Some(&s));
        }
        if let Some(len) = self.segment {
            for o in self.open.values_mut() {
                if now - o.seg_start >= len {
                    // One segment up to the last boundary, however far behind (a read-back
                    // history, a stalled engine): bounded work per call.
                    let n = ((now - o.seg_start).num_seconds() / len.num_seconds().max(1)).max(1);
                    let seg_end = o.seg_start + len * n as i32;
                    emit_segment(&self.tracer, o, seg_end);
                }
            }
        }
    }

    /// End of input (replay) or of the daemon: every open span ends at `now`, marked open (a
    /// handover the engine did not decide: `unresolved`).
    pub fn finish(&mut self, now: Timestamp) {
        self.advance(now);
        let ids: Vec<u64> = self.open.keys().copied().collect();
        for id in ids {
            let o = self.open.remove(&id).expect("present");
            self.close_session(o, now, None);
        }
        for (_, h) in self.handovers.drain() {
            h.end(HandoverOutcome::Unresolved, now);
        }
    }

    fn started(&mut self, s: &Session, predecessor: Option<u64>) {
        let mut identity = vec![
            KeyValue::new("discord.bot", s.bot.clone()),
            KeyValue::new("k8s.namespace.name", s.namespace.clone()),
            KeyValue::new("k8s.pod.name", s.pod.clone()),
            KeyValue::new("discord.shard", i64::from(s.shard)),
        ];
        if let Some(id) = &s.session_id {
            identity.push(KeyValue::new("discord.session.id", id.clone()));
        }
        let mut attrs = identity.clone();
        attrs.push(KeyValue::new("discord.session.inferred", s.inferred));
        if let Some(uid) = &s.instance.uid {
            attrs.push(KeyValue::new("k8s.pod.uid", uid.clone()));
        }
        let pred_ctx = predecessor.and_then(|p| self.ctx_of(p));
        let mut links = Vec::new();
        if let Some(ctx) = &pred_ctx {
            links.push(Link::new(
                ctx.clone(),
                vec![KeyValue::new("discord.link", "predecessor")],
                0,
            ));
        }
        let span = self
            .tracer
            .span_builder("gateway.session")
            .with_kind(SpanKind::Internal)
            .with_start_time(systime(s.ready_at))
            .with_attributes(attrs)
            .with_links(links)
            .start_with_context(&self.tracer, &Context::new());
        let ctx = span.span_context().clone();
        let o = OpenSession {
            span,
            ctx: ctx.clone(),
            identity,
            bot: s.bot.clone(),
            namespace: s.namespace.clone(),
            pod: s.pod.clone(),
            shard: s.shard,
            ready_at: s.ready_at,
            seg_start: s.ready_at,
            seg_index: 0,
            seg_events: Vec::new(),
            ended: None,
            critical: None,
            first_event: None,
        };
        self.open.insert(s.id, o);
    }

    fn update(&mut self, id: u64, at: Timestamp, state: &SessionState) {
        let (name, attrs): (&'static str, Vec<KeyValue>) = match state {
            SessionState::SessionId { session_id } => {
                if let Some(o) = self.open.get_mut(&id) {
                    let kv = KeyValue::new("discord.session.id", session_id.clone());
                    o.span.set_attribute(kv.clone());
                    o.identity.push(kv);
                }
                return;
            }
            SessionState::FirstEvent => {
                if let Some(o) = self.open.get_mut(&id) {
                    o.first_event = Some(at);
                }
                ("session.first_event", vec![])
            }
            SessionState::PredecessorActive { other_pod } => (
                "session.predecessor_active",
                vec![KeyValue::new("discord.other_pod", other_pod.clone())],
            ),
            SessionState::Reconnecting { code } => (
                "session.reconnecting",
                code.map(|c| vec![KeyValue::new("discord.close_code", i64::from(c))])
                    .unwrap_or_default(),
            ),
            SessionState::Resumed => ("session.resumed", vec![]),
            SessionState::PodTerminating { grace } => (
                "session.pod_terminating",
                grace
                    .map(|g| vec![KeyValue::new("k8s.pod.grace_seconds", g as i64)])
                    .unwrap_or_default(),
            ),
            SessionState::ShuttingDown => ("session.shutting_down", vec![]),
        };
        if let Some(o) = self.open.get_mut(&id) {
            record(o, name, at, attrs.clone());
        }
        self.handover_event(id, name, at, attrs);
    }

    /// Open sessions a finding concerns: the session the engine named, else its pod's (and
    /// shard's) newest session, or for a bot-wide finding every open session of the bot.
    fn concerned(&self, f: &Finding) -> Vec<u64> {
        if let Some(id) = f.session.filter(|id| self.open.contains_key(id)) {
            return vec![id];
        }
        let mut ids: Vec<u64> = self
            .open
            .iter()
            .filter(|(_, o)| {
                o.bot == f.bot
                    && f.subject.shard().is_none_or(|s| s == o.shard)
                    && match &f.subject {
                        Subject::Bot { .. } => true,
                        Subject::Pod { .. } => f.subject.is_pod(&o.namespace, &o.pod),
                    }
            })
            .map(|(id, _)| *id)
            .collect();
        // The newest first: the session a pod-level finding is about is its current one.
        ids.sort_unstable_by(|a, b| b.cmp(a));
        if f.subject.pod_name().is_some() && f.subject.shard().is_some() {
            ids.truncate(1);
        }
        ids
    }

    fn finding(&mut self, f: &Finding, name: &'static str, at: Timestamp) {
        let attrs = finding_attrs(f);
        let ids = self.concerned(f);
        for id in &ids {
            let o = self.open.get_mut(id).expect("present");
            record(o, name, at, attrs.clone());
            if name == "finding.opened" && f.severity == Severity::Critical {
                o.critical = Some(f.kind.as_str());
            }
        }
        self.handover_finding(f, &ids, name, at, &attrs);
    }

    pub(super) fn ctx_of(&self, id: u64) -> Option<SpanContext> {
        self.open
            .get(&id)
            .map(|o| o.ctx.clone())
            .or_else(|| self.ended.get(&id).map(|e| e.ctx.clone()))
    }

    fn remember(&mut self, id: u64, o: &OpenSession) {
        self.ended.insert(id, EndedSession { ctx: o.ctx.clone() });
        self.ended_order.push_back(id);
        while self.ended_order.len() > MAX_ENDED {
            if let Some(old) = self.ended_order.pop_front() {
                self.ended.remove(&old);
            }
        }
    }

    /// Ends a session's span: `s` is the ended session, `None` when it is still open (end of
    /// input, the daemon stopping).
    fn close_session(&mut self, mut o: OpenSession, end: Timestamp, s: Option<&Session>) {
        let end = end.max(o.ready_at);
        if o.seg_index > 0 {
            let seg_end = end.max(o.seg_start);
            emit_segment(&self.tracer, &mut o, seg_end);
        }
        let outcome = match s {
            None => "open",
            Some(s) => s.end.as_ref().map_or("ended", |e| e.outcome()),
        };
        let mut attrs = vec![
            KeyValue::new("discord.session.outcome", outcome),
            KeyValue::new("discord.session.segments", i64::from(o.seg_index)),
        ];
        if let Some(s) = s {
            attrs.push(KeyValue::new("discord.session.events", s.events as i64));
            attrs.push(KeyValue::new(
                "discord.session.overlap_events",
                s.overlap_events as i64,
            ));
            if let Some(u) = s.live_until
                && Some(u) != s.ended_at
            {
                attrs.push(KeyValue::new(
                    "discord.session.lingering_until",
                    u.to_rfc3339(),
                ));
            }
            if let Some(EndReason::Closed { code: Some(c) }) = &s.end {
                attrs.push(KeyValue::new("discord.close_code", i64::from(*c)));
            }
            if let Some(EndReason::PodEnded { code: Some(c), .. }) = &s.end {
                attrs.push(KeyValue::new("k8s.container.exit_code", i64::from(*c)));
            }
        }
        if let Some(t) = o.first_event {
            attrs.push(KeyValue::new(
                "discord.session.first_event_seconds",
                (t - o.ready_at).as_seconds_f64(),
            ));
        }
        o.span.set_attributes(attrs);
        if let Some(kind) = o.critical {
            o.span.set_status(Status::error(kind));
        } else if matches!(outcome, "fatal") {
            o.span.set_status(Status::error("fatal close"));
        }
        o.span.end_with_timestamp(systime(end));
    }
}

fn record(o: &mut OpenSession, name: &'static str, at: Timestamp, attrs: Vec<KeyValue>) {
    o.span
        .add_event_with_timestamp(name, systime(at), attrs.clone());
    if o.seg_events.len() < MAX_SEGMENT_EVENTS {
        o.seg_events.push(Event { name, at, attrs });
    }
}

fn emit_segment(tracer: &SdkTracer, o: &mut OpenSession, end: Timestamp) {
    let parent = Context::new().with_remote_span_context(o.ctx.clone());
    let mut attrs = o.identity.clone();
    attrs.push(KeyValue::new(
        "discord.segment.index",
        i64::from(o.seg_index),
    ));
    let mut seg = tracer
        .span_builder("gateway.session.segment")
        .with_start_time(systime(o.seg_start))
        .with_attributes(attrs)
        .start_with_context(tracer, &parent);
    for e in o.seg_events.drain(..) {
        seg.add_event_with_timestamp(e.name, systime(e.at), e.attrs);
    }
    seg.end_with_timestamp(systime(end));
    o.seg_start = end;
    o.seg_index += 1;
}

pub(super) fn end_attrs(s: &Session) -> Vec<KeyValue> {
    let mut v = vec![
        KeyValue::new("k8s.pod.name", s.pod.clone()),
        KeyValue::new(
            "discord.session.outcome",
            s.end.as_ref().map_or("ended", |e| e.outcome()),
        ),
    ];
    if let Some(u) = s.live_until
        && Some(u) != s.ended_at
    {
        v.push(KeyValue::new(
            "discord.session.lingering_until",
            u.to_rfc3339(),
        ));
    }
    v
}

fn finding_attrs(f: &Finding) -> Vec<KeyValue> {
    let mut v = vec![
        KeyValue::new("finding.kind", f.kind.as_str()),
        KeyValue::new("finding.severity", f.severity.as_str()),
        KeyValue::new("finding.explanation", f.explanation.clone()),
        KeyValue::new("finding.runbook", f.runbook),
        KeyValue::new("finding.since", f.since.to_rfc3339()),
        KeyValue::new("finding.id", f.id as i64),
    ];
    if let Some(u) = f.until {
        v.push(KeyValue::new("finding.until", u.to_rfc3339()));
    }
    v
}
