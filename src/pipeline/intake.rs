//! What the pipeline takes in besides contract messages off the broker: payloads for a
//! mapping (on a mapped MQTT topic, pushed over HTTP or fetched by a poller) and contract
//! events pushed over HTTP.
//!
//! A mapped payload is logged as the contract events it became, not as it came: replay
//! then needs neither the mapping nor the agency directory, whose files may have changed
//! since. A payload or record the mapping cannot map is logged as a refusal
//! ([`crate::store::Record::Refused`]), counted and dead-lettered with reason
//! `mapping_failed` and a detail naming the mapping, the record and the field.

use std::sync::Arc;

use bytes::Bytes;
use serde_json::value::RawValue;
use tracing::debug;

use super::Pipeline;
use crate::decode::mapping::{Context, Mapped, Mapping, MappingError, PayloadError};
use crate::decode::raw::Span;
use crate::decode::{DecodeError, Reason, Source};
use crate::ingest::RawMessage;
use crate::ingest::push::{ItemOutcome, Items, Request, Status, Transport};
use crate::state::{Input, Message, Outcome, Processed};
use crate::time::Ts;

/// Where one item came from and where its dead letter says it did.
#[derive(Clone, Copy)]
pub(super) struct Origin<'a> {
    pub transport: Transport,
    /// The MQTT topic or the HTTP route / poller URL.
    pub topic: &'a str,
    pub received_at: Ts,
}

impl Pipeline {
    /// A message on a topic one of the mappings names: mapped, each event applied, and its
    /// acknowledgement sent once all of them are durable.
    pub(super) async fn mapped_message(&mut self, msg: &RawMessage, mapping: &Mapping) {
        let origin = Origin {
            transport: Transport::Mqtt,
            topic: &msg.topic,
            received_at: msg.received_at,
        };
        self.take_mapped(mapping, &msg.payload, origin, 0, None)
            .await;
        if let (Some(ack), Some(journal)) = (msg.ack, &mut self.journal) {
            journal.ack_after(ack);
        }
    }

    /// A request (HTTP push or a poller): every item taken in, and the answer sent once
    /// all of them are durable.
    pub(super) async fn request(&mut self, req: Request) {
        let Request {
            items,
            payloads,
            transport,
            origin,
            reply,
        } = req;
        let received_at = Ts::now();
        let origin = Origin {
            transport,
            topic: &origin,
            received_at,
        };
        let mut outcomes = Vec::with_capacity(payloads.len());
        let topic = match &items {
            Items::Contract(source) => {
                format!("{}/{}/{}", self.prefix, source.as_str(), transport.as_str())
            }
            Items::Mapped(_) => String::new(),
            Items::Actions => format!("{}/{}", self.prefix, crate::state::ACTIONS_LEVEL),
        };
        for (i, payload) in payloads.into_iter().enumerate() {
            match &items {
                Items::Actions => {
                    let outcome = self.take_action(&topic, &payload, received_at);
                    outcomes.push(ItemOutcome { item: i, ..outcome });
                }
                Items::Contract(_) => {
                    let outcome = self.take_contract(&topic, &payload, None, origin).await;
                    outcomes.push(ItemOutcome {
                        item: i,
                        record: None,
                        ..outcome
                    });
                }
                Items::Mapped(mapping) => {
                    self.take_mapped(mapping, &payload, origin, i, Some(&mut outcomes))
                        .await;
                }
            }
        }
        let answer = move || {
            let _ = reply.send(outcomes);
        };
        match &mut self.journal {
            Some(journal) => journal.after_durable(Box::new(answer)),
            None => answer(),
        }
    }

    /// One operator action from the HTTP API: logged under `{prefix}/ops/actions` like a
    /// feed event, decoded and applied. The API answers with the outcome; nothing is
    /// dead-lettered (the caller has the error).
    fn take_action(&mut self, topic: &str, payload: &[u8], received_at: Ts) -> ItemOutcome {
        let msg = Message {
            topic,
            payload,
            received_at,
        };
        if let Some(journal) = &mut self.journal {
            journal.event(msg);
        }
        let status = match self.state.process(msg, &self.prefix, &self.limits) {
            Processed::Applied(Outcome::Duplicate) => Status::Duplicate,
            Processed::Applied(_) => Status::Accepted,
            Processed::ActionRejected(error) => {
                self.count_action(Status::Rejected);
                return rejected_outcome(&error);
            }
            Processed::Ignored | Processed::Rejected { .. } => Status::Rejected,
        };
        self.count_action(status);
        ItemOutcome::of(status)
    }

    /// Counts an operator action in `iocd_ops_actions_total`.
    pub(super) fn count_action(&self, status: Status) {
        let outcome = match status {
            Status::Accepted | Status::Skipped => "applied",
            Status::Duplicate => "duplicate",
            Status::Rejected => "rejected",
        };
        self.metrics.ops_actions.with_label_values(&[outcome]).inc();
    }

    /// One contract event: logged under `topic` (`{prefix}/{source}/{transport}`, or the
    /// mapping's), decoded and applied; a rejection is dead-lettered with `origin` as its
    /// topic. Nothing is allocated for an accepted event.
    async fn take_contract(
        &mut self,
        topic: &str,
        payload: &[u8],
        spans: Option<&[Span]>,
        origin: Origin<'_>,
    ) -> ItemOutcome {
        let msg = Message {
            topic,
            payload,
            received_at: origin.received_at,
        };
        if let Some(journal) = &mut self.journal {
            journal.event(msg);
        }
        // A mapped event was just written by iocd: its members are not parsed again.
        let processed = match spans {
            Some(spans) => self
                .state
                .process_written(msg, spans, &self.prefix, &self.limits),
            None => self.state.process(msg, &self.prefix, &self.limits),
        };
        let status = match processed {
            Processed::Applied(Outcome::Duplicate) => Status::Duplicate,
            Processed::Applied(_) | Processed::Ignored | Processed::ActionRejected(_) => {
                Status::Accepted
            }
            Processed::Rejected { source, error } => {
                let letter = RawMessage {
                    topic: origin.topic.to_owned(),
                    payload: Bytes::copy_from_slice(payload),
                    received_at: origin.received_at,
                    ack: None,
                };
                self.reject(source, &letter, &error, origin.transport).await;
                return rejected_outcome(&error);
            }
        };
        self.count(origin.transport, status);
        ItemOutcome::of(status)
    }

    /// Record `record` of `payload`, which `mapping` could not map: refused with the reason
    /// `mapping_failed`, the record alone dead-lettered (the whole payload if it cannot be
    /// found again).
    async fn refuse_record(
        &mut self,
        mapping: &Mapping,
        payload: &Bytes,
        record: usize,
        e: &MappingError,
        origin: Origin<'_>,
    ) -> ItemOutcome {
        let error = DecodeError {
            reason: Reason::MappingFailed,
            detail: e.to_string(),
        };
        // The record alone, read again: only on this path.
        let record_bytes = serde_json::from_slice::<&RawValue>(payload)
            .ok()
            .and_then(|body| mapping.record_at(body, record))
            .map_or_else(
                || payload.clone(),
                |r| Bytes::copy_from_slice(r.get().as_bytes()),
            );
        self.refuse(mapping.source, record_bytes, &error, origin, &mapping.name)
            .await
    }

    /// One payload for `mapping`: each record mapped and taken in as a contract event, or
    /// refused; with `outcomes`, what became of each record is pushed there (as `item`).
    async fn take_mapped(
        &mut self,
        mapping: &Mapping,
        payload: &Bytes,
        origin: Origin<'_>,
        item: usize,
        mut outcomes: Option<&mut Vec<ItemOutcome>>,
    ) {
        let source = mapping.source;
        self.refresh_directory();
        let tz = self.state.params().cal.tz().clone();
        let records = if payload.len() > self.mapped_max_bytes {
            Err(DecodeError {
                reason: Reason::TooLarge,
                detail: format!(
                    "payload of {} bytes exceeds the mapped payload limit of {} ([mappings] max_payload_bytes)",
                    payload.len(),
                    self.mapped_max_bytes
                ),
            })
        } else {
            let cx = Context {
                tz: &tz,
                directory: self.outputs.deriver.directory(),
            };
            mapping.map_each(payload, cx).map_err(|e| match e {
                PayloadError::NotJson(e) => DecodeError {
                    reason: Reason::InvalidJson,
                    detail: format!("mapping {}: not JSON: {e}", mapping.name),
                },
                PayloadError::Mapping(e) => DecodeError {
                    reason: Reason::MappingFailed,
                    detail: e.to_string(),
                },
            })
        };
        let records = match records {
            Ok(r) => r,
            Err(error) => {
                let outcome = self
                    .refuse(source, payload.clone(), &error, origin, &mapping.name)
                    .await;
                if let Some(out) = outcomes {
                    out.push(ItemOutcome { item, ..outcome });
                }
                return;
            }
        };
        // Once per payload, not per record: the topic its events are logged under, and the
        // mapping's three counters.
        let topic = format!(
            "{}/{}/mapped/{}",
            self.prefix,
            source.as_str(),
            mapping.name
        );
        let [events, skipped, failed] = crate::telemetry::metrics::MAPPING_OUTCOMES.map(|o| {
            self.metrics
                .mapping_records
                .with_label_values(&[&mapping.name, o])
        });
        for (record, result) in records.into_iter().enumerate() {
            // A record refused whole, or its own event (or its skip) then its `[[also]]`
            // events: each an item of the answer under the record's index.
            let made = match result {
                Ok(made) => made,
                Err(e) => {
                    failed.inc();
                    let outcome = self
                        .refuse_record(mapping, payload, record, &e, origin)
                        .await;
                    note(&mut outcomes, item, record, outcome);
                    continue;
                }
            };
            for m in made {
                let outcome = match m {
                    Mapped::Event {
                        kind,
                        json,
                        event_id,
                        spans,
                    } => {
                        events.inc();
                        let outcome = self
                            .take_contract(&topic, &json, Some(&spans), origin)
                            .await;
                        ItemOutcome {
                            event_id: Some(event_id),
                            event_type: Some(kind),
                            ..outcome
                        }
                    }
                    Mapped::Skipped { why, .. } => {
                        skipped.inc();
                        debug!(mapping = %mapping.name, record, why = %why, "Mapped record skipped.");
                        ItemOutcome::skipped(why)
                    }
                };
                note(&mut outcomes, item, record, outcome);
            }
        }
    }

    /// A payload or record refused before it became a contract event: logged as a
    /// refusal, counted, dead-lettered.
    async fn refuse(
        &mut self,
        source: Source,
        payload: Bytes,
        error: &DecodeError,
        origin: Origin<'_>,
        mapping: &str,
    ) -> ItemOutcome {
        if let Some(journal) = &mut self.journal {
            journal.refused(source, error.reason, origin.received_at);
        }
        self.state.apply(
            &Input::Rejected {
                source,
                reason: error.reason,
            },
            origin.received_at,
        );
        if error.reason == Reason::MappingFailed || error.reason == Reason::InvalidJson {
            debug!(mapping, error = %error, "Mapped payload refused.");
        }
        let letter = RawMessage {
            topic: origin.topic.to_owned(),
            payload,
            received_at: origin.received_at,
            ack: None,
        };
        self.reject(source, &letter, error, origin.transport).await;
        rejected_outcome(error)
    }

    /// A rejection: logged at a bounded rate, counted by transport, dead-lettered.
    pub(super) async fn reject(
        &mut self,
        source: Source,
        msg: &RawMessage,
        error: &DecodeError,
        transport: Transport,
    ) {
        self.count(transport, Status::Rejected);
        self.reject_log
            .record(source, &msg.topic, error, msg.received_at);
        self.dead_letters
            .publish(source, msg, error, self.limits.max_payload_bytes)
            .await;
    }

    /// Counts an item in `iocd_ingest_items_total`.
    pub(super) fn count(&self, transport: Transport, status: Status) {
        let outcome = match status {
            Status::Accepted => 0,
            Status::Duplicate => 1,
            Status::Rejected => 2,
            Status::Skipped => return,
        };
        self.items[transport.index()][outcome].inc();
    }

    /// The mapping whose MQTT filters match `topic`, when `topic` is not a contract topic.
    pub(super) fn mapping_for(&mut self, topic: &str) -> Option<Arc<Mapping>> {
        if crate::decode::source_of(topic, &self.prefix).is_some() {
            return None;
        }
        let mappings = self.mappings.as_ref()?.borrow();
        mappings.for_topic(topic).cloned()
    }
}

fn rejected_outcome(error: &DecodeError) -> ItemOutcome {
    ItemOutcome {
        reason: Some(error.reason.as_str()),
        detail: Some(error.detail.clone()),
        ..ItemOutcome::of(Status::Rejected)
    }
}

/// Notes `outcome`, of record `record` of item `item`, in the answer being built, if any.
fn note(
    outcomes: &mut Option<&mut Vec<ItemOutcome>>,
    item: usize,
    record: usize,
    outcome: ItemOutcome,
) {
    if let Some(out) = outcomes.as_deref_mut() {
        out.push(ItemOutcome {
            item,
            record: Some(record),
            ..outcome
        });
    }
}
