//! `gateway.handover` spans: one per handover the engine follows, started with it, linked to
//! the old and the new session, told as events (each session's steps and the findings about
//! either), and ended with the outcome the engine decided. Nothing here decides anything.

use opentelemetry::trace::{Link, Span as _, Status, Tracer as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::trace::Span;

use super::spans::{TraceSink, systime};
use dge_core::engine::{Finding, Handover, HandoverOutcome, Subject};
use dge_core::observation::Timestamp;

/// An open handover span and what its events are matched by.
pub(super) struct HandoverSpan {
    span: Span,
    bot: String,
    shard: u32,
    old: u64,
    new: u64,
}

impl HandoverSpan {
    /// Ends the span with `outcome` at `at` (failures are marked as errors).
    pub(super) fn end(mut self, outcome: HandoverOutcome, at: Timestamp) {
        self.span
            .set_attribute(KeyValue::new("discord.handover.outcome", outcome.as_str()));
        if outcome.is_failure() {
            self.span.set_status(Status::error(outcome.as_str()));
        }
        self.span.end_with_timestamp(systime(at));
    }
}

impl TraceSink {
    /// The engine started following handover `h` (its new session's span is open).
    pub(super) fn handover_started(&mut self, h: &Handover) {
        let Some(old_ctx) = self.ctx_of(h.from) else {
            return;
        };
        let Some(new) = self.open.get(&h.to) else {
            return;
        };
        let (new_ctx, new_ready) = (new.ctx.clone(), new.ready_at);
        let mut span = self
            .tracer
            .span_builder("gateway.handover")
            .with_start_time(systime(h.started_at))
            .with_attributes(vec![
                KeyValue::new("discord.bot", h.bot.clone()),
                KeyValue::new("k8s.namespace.name", h.namespace.clone()),
                KeyValue::new("discord.shard", i64::from(h.shard)),
                KeyValue::new("discord.handover.old_pod", h.from_pod.clone()),
                KeyValue::new("discord.handover.new_pod", h.to_pod.clone()),
                KeyValue::new("discord.handover.kind", h.kind.as_str()),
            ])
            .with_links(vec![
                Link::new(
                    old_ctx,
                    vec![KeyValue::new("discord.link", "old_session")],
                    0,
                ),
                Link::new(
                    new_ctx,
                    vec![KeyValue::new("discord.link", "new_session")],
                    0,
                ),
            ])
            .start_with_context(&self.tracer, &Context::new());
        if let Some(e) = h.old_ended_at {
            span.add_event_with_timestamp(
                "old.session.ended",
                systime(e),
                vec![KeyValue::new("k8s.pod.name", h.from_pod.clone())],
            );
        }
        span.add_event_with_timestamp(
            "new.session.ready",
            systime(new_ready),
            vec![KeyValue::new("k8s.pod.name", h.to_pod.clone())],
        );
        if let Some(new) = self.open.get_mut(&h.to) {
            new.span.add_link(
                span.span_context().clone(),
                vec![KeyValue::new("discord.link", "handover")],
            );
        }
        self.handovers.insert(
            h.id,
            HandoverSpan {
                span,
                bot: h.bot.clone(),
                shard: h.shard,
                old: h.from,
                new: h.to,
            },
        );
    }

    /// The engine decided handover `h`: its span ends with the outcome.
    pub(super) fn handover_decided(&mut self, h: &Handover) {
        if let (Some(span), Some(outcome), Some(at)) =
            (self.handovers.remove(&h.id), h.outcome, h.ended_at)
        {
            span.end(outcome, at);
        }
    }

    /// Adds an event about session `id` to its open handovers, prefixed by its role.
    pub(super) fn handover_event(
        &mut self,
        id: u64,
        name: &'static str,
        at: Timestamp,
        attrs: Vec<KeyValue>,
    ) {
        for h in self.handovers.values_mut() {
            let role = if h.old == id {
                "old"
            } else if h.new == id {
                "new"
            } else {
                continue;
            };
            h.span
                .add_event_with_timestamp(format!("{role}.{name}"), systime(at), attrs.clone());
        }
    }

    /// A finding opened or closed: an event of the handovers of a concerned session (`ids`),
    /// or of the bot and shard for bot-wide findings.
    pub(super) fn handover_finding(
        &mut self,
        f: &Finding,
        ids: &[u64],
        name: &'static str,
        at: Timestamp,
        attrs: &[KeyValue],
    ) {
        let bot_wide = matches!(f.subject, Subject::Bot { .. });
        for h in self.handovers.values_mut() {
            let about = ids.contains(&h.old)
                || ids.contains(&h.new)
                || (bot_wide && h.bot == f.bot && f.subject.shard().is_none_or(|s| s == h.shard));
            if about {
                h.span
                    .add_event_with_timestamp(name, systime(at), attrs.to_vec());
            }
        }
    }
}
