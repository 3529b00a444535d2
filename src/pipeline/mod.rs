//! The pipeline: the one task that owns the [`State`]. It takes raw messages off the ingest
//! queue and processes them (decode, apply, or count a rejection and dead-letter it), and
//! at every tick has the derive stage build the view, the alert transitions and the
//! snapshot, and publishes them for the outputs. It imports nothing from `outputs`.
//!
//! Being the only writer keeps `apply` single-threaded and deterministic; readers never
//! lock the state, they read the latest `Arc<View>` from a `watch` channel. The task ends
//! when the ingest side drops the queue's sender, after applying everything queued.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tracing::{debug, info, warn};

use crate::decode::{DecodeError, DecodeLimits, Source};
use crate::derive::alerts::{Alert, AlertState, PeerSince, Rule};
use crate::derive::snapshot::Snapshot;
use crate::derive::{Deriver, POSSIBLE_GAP_SECS, Transition, View};
use prometheus::IntCounter;

use crate::decode::mapping::Mappings;
use crate::ingest::RawMessage;
use crate::ingest::deadletter::DeadLetters;
use crate::ingest::push::{self, Status, Transport};
use crate::state::query::Query;
use crate::state::{Input, Message, Processed, State};
use crate::telemetry::SelfMetrics;
use crate::time::Ts;

mod intake;
mod ops;

/// Messages taken off the queue per wake-up; bounds the time between ticks under load.
const BATCH: usize = 512;
/// The largest mapped payload taken unless configured (`[mappings] max_payload_bytes`).
const DEFAULT_MAPPED_MAX_BYTES: usize = 1 << 20;
/// Alert history entries kept in memory.
pub const HISTORY_MAX: usize = 100_000;
/// Ticks between two housekeeping passes (pruning windows, forgetting closed items).
const HOUSEKEEPING_EVERY_TICKS: u32 = 120;

/// The decode → apply → publish loop.
pub struct Pipeline {
    /// Raw messages from ingest. Closed (all senders dropped) means: drain and stop.
    rx: mpsc::Receiver<RawMessage>,
    state: State,
    limits: DecodeLimits,
    prefix: String,
    dead_letters: DeadLetters,
    outputs: Outputs,
    /// The event log, when a data directory is configured.
    journal: Option<crate::store::Journal>,
    /// Lost sessions seen so far, and when the latest was noticed.
    gap: (u64, Option<Ts>),
    tick: Duration,
    metrics: SelfMetrics,
    reject_log: RejectLog,
    alert_log: AlertLog,
    eviction_log: EvictionLog,
    /// The mappings (reloaded while running); `None`: no mapped inputs.
    mappings: Option<watch::Receiver<Arc<Mappings>>>,
    /// HTTP pushes and pollers' fetches; `None`: none configured.
    requests: Option<mpsc::Receiver<push::Request>>,
    /// `[mappings] max_payload_bytes`.
    mapped_max_bytes: usize,
    /// `iocd_ingest_items_total` by transport and outcome (accepted, duplicate, rejected).
    items: [[IntCounter; 3]; 3],
    /// The alerts' history (transitions), for `GET /api/v1/alerts/{id}/history`.
    history: crate::store::history::History,
    /// `[ha] replica`: this replica's name, when it runs beside others.
    replica: Option<String>,
    /// Alerts published again for a peer since the last tick (at most once each per tick).
    answered: std::collections::HashSet<String>,
    /// The outcomes of a run of contract messages, kept to reuse its allocation.
    outcomes: Vec<Processed>,
}

/// Where the pipeline publishes, and what it answers.
pub struct Outputs {
    /// Latest view (for `/metrics`); replaced every tick.
    pub views: watch::Sender<Arc<View>>,
    /// Latest snapshot (for `/ws` and the API); replaced only when its content changed.
    pub snapshots: watch::Sender<Arc<Snapshot>>,
    /// Read queries from the API; answered between batches.
    pub queries: mpsc::Receiver<Query>,
    /// The derive stage, run every tick.
    pub deriver: Deriver,
    /// Alert transitions for the outputs (WebSocket clients, MQTT); never blocks.
    pub alerts: tokio::sync::broadcast::Sender<Arc<Transition>>,
    /// The broker link: a lost session marks the sources as a possible gap.
    pub link: watch::Receiver<crate::ingest::LinkStatus>,
    /// The agency directory, replaced on reload; read at the next tick.
    pub directory: watch::Receiver<Arc<crate::directory::Directory>>,
}

impl Pipeline {
    /// A pipeline over `state`, reading `rx` and publishing on `outputs` every `tick`.
    #[must_use]
    #[allow(clippy::too_many_arguments)] // each is a distinct part; a builder would only rename them
    pub fn new(
        rx: mpsc::Receiver<RawMessage>,
        state: State,
        limits: DecodeLimits,
        prefix: String,
        dead_letters: DeadLetters,
        outputs: Outputs,
        tick: Duration,
        metrics: SelfMetrics,
    ) -> Self {
        let items = std::array::from_fn(|t| {
            std::array::from_fn(|o| {
                metrics.ingest_items.with_label_values(&[
                    crate::telemetry::metrics::TRANSPORTS[t],
                    crate::telemetry::metrics::ITEM_OUTCOMES[o],
                ])
            })
        });
        Self {
            mappings: None,
            requests: None,
            mapped_max_bytes: DEFAULT_MAPPED_MAX_BYTES,
            items,
            rx,
            state,
            limits,
            prefix,
            dead_letters,
            outputs,
            journal: None,
            gap: (0, None),
            tick,
            metrics,
            reject_log: RejectLog::default(),
            alert_log: AlertLog::default(),
            eviction_log: EvictionLog::default(),
            history: crate::store::history::History::in_memory(HISTORY_MAX, 90 * 86_400),
            replica: None,
            answered: std::collections::HashSet::new(),
            outcomes: Vec::with_capacity(BATCH),
        }
    }

    /// Keeps the alerts' history in `history` (in the data directory) instead of memory only.
    pub fn set_history(&mut self, history: crate::store::history::History) {
        self.history = history;
    }

    /// Runs until the queue is closed and drained; returns the final state.
    pub async fn run(mut self) -> State {
        // Ticks fall just after each instant of the grid of `tick` and derive at that instant,
        // so that replicas whose clocks agree evaluate their alerts at the same instants and
        // agree on when each started (docs/ha.md).
        // A first snapshot at once, for the clients that connect before the first tick.
        self.publish(Ts::now().floor_to(self.tick));
        let first = Ts::now().until_next(self.tick) + self.tick / 20;
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + first, self.tick);
        // After an overrun, the next instant of the grid (not a shifted schedule).
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut batch = Vec::with_capacity(BATCH);
        let mut ticks = 0u32;
        loop {
            tokio::select! {
                n = self.rx.recv_many(&mut batch, BATCH) => {
                    if n == 0 {
                        break;
                    }
                    self.metrics.pipeline_dequeued.inc_by(n as u64);
                    self.handle_batch(&batch).await;
                    batch.clear();
                    // One fsync for the whole batch, then the batch's acks, in order.
                    if let Some(journal) = &mut self.journal {
                        journal.commit();
                    }
                }
                Some(query) = self.outputs.queries.recv() => self.answer(query),
                Some(request) = next_request(&mut self.requests) => {
                    self.request(request).await;
                    if let Some(journal) = &mut self.journal {
                        journal.commit();
                    }
                }
                // A batch made durable by the log thread: its acks go out now.
                () = async {
                    match &mut self.journal {
                        Some(journal) => journal.next_report().await,
                        None => std::future::pending().await,
                    }
                } => {}
                _ = tick.tick() => {
                    ticks = ticks.wrapping_add(1);
                    let now = Ts::now().floor_to(self.tick);
                    self.answered.clear();
                    if ticks.is_multiple_of(HOUSEKEEPING_EVERY_TICKS) {
                        if let Some(journal) = &mut self.journal {
                            journal.tick(now);
                        }
                        self.state.apply(&Input::Tick, now);
                    }
                    self.publish(now);
                    if let Some(journal) = &mut self.journal {
                        journal.commit();
                        let engine = self.outputs.deriver.engine();
                        journal.maybe_checkpoint(&self.state, || engine.since_map());
                    }
                }
            }
        }
        self.publish(Ts::now().floor_to(self.tick));
        if let Some(journal) = &mut self.journal {
            // A checkpoint at shutdown makes the next start quick (nothing to replay).
            journal.checkpoint(&self.state, self.outputs.deriver.engine().since_map());
        }
        self.state
    }

    /// Takes mapped inputs: MQTT topics the mappings name, and `requests` (HTTP push,
    /// pollers); mapped payloads larger than `max_bytes` are refused as `too_large`.
    pub fn set_intake(
        &mut self,
        mappings: watch::Receiver<Arc<Mappings>>,
        requests: mpsc::Receiver<push::Request>,
        max_bytes: usize,
    ) {
        self.mappings = Some(mappings);
        self.requests = Some(requests);
        self.mapped_max_bytes = max_bytes;
    }

    /// Logs every message and tick to `journal` before acknowledging it (durable mode).
    pub fn set_journal(&mut self, journal: crate::store::Journal) {
        self.journal = Some(journal);
    }

    /// Derives everything at `now` and publishes it: each alert transition at once (log,
    /// journal, outputs), the view, and the snapshot when its content changed.
    fn publish(&mut self, now: Ts) {
        self.state.advance(now);
        let lost = self.outputs.link.borrow().sessions_lost;
        if lost > self.gap.0 {
            self.gap = (lost, Some(now));
            warn!(
                sessions_lost = lost,
                "The broker lost iocd's session: messages published meanwhile may be missing; the wall shows a possible gap for an hour."
            );
        }
        let possible_gap = self
            .gap
            .1
            .is_some_and(|at| now < at.plus_secs(POSSIBLE_GAP_SECS));
        self.refresh_directory();
        let previous = self.outputs.snapshots.borrow().clone();
        let derived = self
            .outputs
            .deriver
            .derive(&self.state, now, possible_gap, &previous);
        for alert in derived.transitions {
            self.transition(alert, now);
        }
        for (rule, severity, secs) in derived.acknowledged {
            self.metrics
                .alert_acknowledge_seconds
                .with_label_values(&[rule.as_str(), severity.as_str()])
                .observe(secs);
        }
        self.alert_log.flush(now);
        self.eviction_log.flush(&self.state.evictions, now);
        if let Some(snapshot) = derived.snapshot {
            self.outputs.snapshots.send_replace(Arc::new(snapshot));
        }
        self.outputs.views.send_replace(Arc::new(derived.view));
    }

    /// One alert transition: logged, journaled (so `since` survives a restart), and sent
    /// to the outputs. No receiver (no WebSocket client yet) is fine.
    fn transition(&mut self, alert: Alert, now: Ts) {
        if let Some(journal) = &mut self.journal {
            match alert.state {
                AlertState::Firing => journal.alert(&alert.id, Some(alert.since_ts)),
                AlertState::Resolved => journal.alert(&alert.id, None),
            }
        }
        self.history.transition(
            crate::store::history::Entry {
                at_ns: now.0,
                alert_id: alert.id.clone(),
                event: String::new(),
                severity: alert
                    .handling
                    .shown_severity(alert.severity)
                    .as_str()
                    .to_owned(),
                count: alert.count,
                summary: alert.summary.clone(),
            },
            (
                alert.state == AlertState::Firing,
                alert.handling.escalated.is_some(),
                alert.handling.reminders,
            ),
        );
        let at_info = self.alert_log.admit(alert.rule, now);
        match (alert.state, at_info) {
            (AlertState::Firing, true) => info!(
                alert = %alert.id, severity = alert.severity.as_str(), count = alert.count,
                summary = %alert.summary, "Alert firing."
            ),
            (AlertState::Resolved, true) => {
                info!(alert = %alert.id, summary = %alert.summary, "Alert resolved.");
            }
            (AlertState::Firing, false) => {
                debug!(alert = %alert.id, count = alert.count, "Alert firing.");
            }
            (AlertState::Resolved, false) => debug!(alert = %alert.id, "Alert resolved."),
        }
        let json = Arc::from(alert.to_json());
        let _ = self
            .outputs
            .alerts
            .send(Arc::new(Transition { alert, json }));
    }

    fn answer(&self, query: Query) {
        match query {
            Query::Dossiers {
                filter,
                agency,
                limit,
                offset,
                reply,
            } => {
                let answer = self.state.query_dossiers(
                    filter,
                    agency.as_deref(),
                    (limit, offset),
                    Ts::now(),
                );
                let _ = reply.send(answer);
            }
            Query::Agencies {
                level,
                parent,
                sort,
                limit,
                offset,
                reply,
            } => {
                let answer = crate::derive::agencies::list(
                    &self.state,
                    self.outputs.deriver.directory(),
                    (level.as_deref(), parent.as_deref()),
                    sort,
                    (limit, offset),
                    self.state.dossiers.tracker().at().unwrap_or_else(Ts::now),
                );
                let _ = reply.send(answer);
            }
            Query::Scorecard {
                period,
                level,
                agency,
                reply,
            } => {
                let span = crate::derive::scorecard::Span::parse(&period)
                    .unwrap_or(crate::derive::scorecard::Span::Month);
                let answer = crate::derive::scorecard::scorecard(
                    &self.state,
                    self.outputs.deriver.directory(),
                    span,
                    (level.as_deref(), agency.as_deref()),
                    self.state.dossiers.tracker().at().unwrap_or_else(Ts::now),
                );
                let _ = reply.send(answer);
            }
            Query::Agency { code, reply } => {
                let now = self.state.dossiers.tracker().at().unwrap_or_else(Ts::now);
                let answer = self.outputs.deriver.agency_detail(&self.state, &code, now);
                let _ = reply.send(answer);
            }
            Query::Alert { id, reply } => {
                let _ = reply.send(self.alert_lookup(&id));
            }
            Query::History { id, reply } => {
                let _ = reply.send(self.alert_history(&id));
            }
            Query::Audit {
                since,
                until,
                who,
                limit,
                offset,
                reply,
            } => {
                let _ = reply.send(self.audit((since, until), who.as_deref(), (limit, offset)));
            }
            Query::Silences { reply } => {
                let _ = reply.send(self.silences());
            }
        }
    }

    /// Takes a reloaded agency directory into use.
    fn refresh_directory(&mut self) {
        if self.outputs.directory.has_changed().unwrap_or(false) {
            let directory = Arc::clone(&self.outputs.directory.borrow_and_update());
            self.outputs.deriver.set_directory(directory);
        }
    }

    /// Handles a batch taken off the queue, in order: runs of contract messages (events and
    /// operator actions) a group at a time ([`State::process_all`]), a mapped message or
    /// another replica's alert on its own.
    async fn handle_batch(&mut self, batch: &[RawMessage]) {
        let mut rest = batch;
        while let Some(msg) = rest.first() {
            if let Some(mapping) = self.mapping_for(&msg.topic) {
                self.mapped_message(msg, &mapping).await;
                rest = &rest[1..];
            } else if self.is_peer_alert(&msg.topic) {
                // Another replica's alert changes no state: not logged, only acknowledged
                // in order.
                if let (Some(journal), Some(ack)) = (&mut self.journal, msg.ack) {
                    journal.ack_after(ack);
                }
                self.peer_alert(msg);
                rest = &rest[1..];
            } else {
                let run = rest
                    .iter()
                    .position(|m| {
                        self.is_peer_alert(&m.topic) || self.mapping_for(&m.topic).is_some()
                    })
                    .unwrap_or(rest.len());
                let (contract, after) = rest.split_at(run);
                self.contract_messages(contract).await;
                rest = after;
            }
        }
    }

    /// Logs, decodes and applies contract messages; a rejected one is logged and
    /// dead-lettered once all of them are applied.
    async fn contract_messages(&mut self, msgs: &[RawMessage]) {
        if let Some(journal) = &mut self.journal {
            for msg in msgs {
                journal.message(msg);
            }
        }
        let mut outcomes = std::mem::take(&mut self.outcomes);
        self.state.process_all(
            msgs.iter().map(Message::from),
            &self.prefix,
            &self.limits,
            &mut outcomes,
        );
        debug_assert_eq!(outcomes.len(), msgs.len(), "one outcome per message");
        for (msg, processed) in msgs.iter().zip(outcomes.drain(..)) {
            self.after(msg, processed).await;
        }
        self.outcomes = outcomes;
    }

    /// What follows the outcome of one message: counted; a rejected one is logged and
    /// dead-lettered.
    async fn after(&mut self, msg: &RawMessage, processed: Processed) {
        if crate::state::is_actions_topic(&msg.topic, &self.prefix) {
            return self.action_message(msg, processed).await;
        }
        match processed {
            Processed::ActionRejected(_) => {}
            Processed::Applied(crate::state::Outcome::Duplicate) => {
                self.count(Transport::Mqtt, Status::Duplicate);
            }
            Processed::Applied(_) => self.count(Transport::Mqtt, Status::Accepted),
            Processed::Ignored => {
                debug!(topic = %msg.topic, "Message outside the input topics ignored.");
            }
            Processed::Rejected { source, error } => {
                self.reject(source, msg, &error, Transport::Mqtt).await;
            }
        }
    }
}

impl Pipeline {
    /// An operator action off the broker (another replica's, or this one's own coming
    /// back, then a duplicate): counted; one that cannot be read is logged and
    /// dead-lettered under `{prefix}/deadletter/ops`.
    async fn action_message(&mut self, msg: &RawMessage, processed: Processed) {
        match processed {
            Processed::Applied(crate::state::Outcome::Duplicate) => {
                self.count_action(Status::Duplicate);
            }
            Processed::ActionRejected(error) => {
                self.count_action(Status::Rejected);
                warn!(
                    topic = %msg.topic,
                    reason = error.reason.as_str(),
                    detail = %error.detail,
                    "Operator action refused and dead-lettered."
                );
                self.dead_letters
                    .publish_under("ops", msg, &error, self.limits.max_payload_bytes)
                    .await;
            }
            _ => self.count_action(Status::Accepted),
        }
    }
}

impl Pipeline {
    /// Takes part in a group of replicas named `replica` (`[ha] replica`): the alerts
    /// published on `{prefix}/alerts/#` by the others set the earliest `since`.
    pub fn set_replica(&mut self, replica: String) {
        self.replica = Some(replica);
    }

    /// An alert published by a replica (this one's own coming back is skipped): the engine
    /// takes its `since` when earlier. One that cannot be read is counted and logged at
    /// DEBUG: it is another replica's output, not a feed's, and dead-lettering it would
    /// answer a publication with another.
    fn peer_alert(&mut self, msg: &RawMessage) {
        let now = Ts::now().floor_to(self.tick);
        let outcome = match PeerAlert::read(&msg.payload, self.limits.max_payload_bytes) {
            Some(a) if self.replica.as_deref() == Some(a.replica.as_str()) => "own",
            Some(a) => {
                let since = a.firing.then_some(a.since);
                match self.outputs.deriver.take_peer(
                    (&a.id, &a.replica),
                    since,
                    &self.state.ops,
                    now,
                ) {
                    PeerSince::Same => "unchanged",
                    PeerSince::Taken(alert) => {
                        // Journaled (a restart keeps it) and published as a change, so that
                        // the wall, MQTT consumers and Alertmanager see the earlier `since`;
                        // the peer gets it back as the same.
                        if let Some(journal) = &mut self.journal {
                            journal.alert(&alert.id, Some(alert.since_ts));
                        }
                        self.send_again(*alert);
                        "earlier"
                    }
                    PeerSince::Earlier(alert) => {
                        // Published again (not a transition: no history, no log line), so
                        // that the peer takes this replica's earlier `since`; once per alert
                        // and tick, whatever a peer (or a forger) sends.
                        if self.answered.insert(alert.id.clone()) {
                            self.send_again(*alert);
                        }
                        "later"
                    }
                }
            }
            None => {
                debug!(topic = %msg.topic, "Unreadable alert publication of a replica ignored.");
                "invalid"
            }
        };
        self.metrics
            .ha_peer_alerts
            .with_label_values(&[outcome])
            .inc();
    }
}

impl Pipeline {
    /// Whether `topic` carries a replica's alert that this one reads (`[ha] replica` set).
    fn is_peer_alert(&self, topic: &str) -> bool {
        self.replica.is_some() && is_alerts_topic(topic, &self.prefix)
    }

    /// Sends `alert` to the outputs again as it is (the wall, MQTT, Alertmanager).
    fn send_again(&self, alert: Alert) {
        let json = Arc::from(alert.to_json());
        let _ = self
            .outputs
            .alerts
            .send(Arc::new(Transition { alert, json }));
    }
}

/// The fields of another replica's alert publication that matter here.
struct PeerAlert {
    id: String,
    firing: bool,
    since: Ts,
    replica: String,
}

/// The longest alert id taken from a replica (a rule, `:` and a subject id, which the
/// contract bounds far below this).
const PEER_ID_MAX: usize = 512;

impl PeerAlert {
    /// Reads an alert object; `None` when it is not one, has no `replica`, or is larger
    /// than `max_bytes`.
    fn read(payload: &[u8], max_bytes: usize) -> Option<PeerAlert> {
        #[derive(serde::Deserialize)]
        struct Wire<'a> {
            #[serde(borrow)]
            id: std::borrow::Cow<'a, str>,
            #[serde(borrow)]
            state: std::borrow::Cow<'a, str>,
            #[serde(borrow)]
            since: std::borrow::Cow<'a, str>,
            #[serde(borrow)]
            replica: std::borrow::Cow<'a, str>,
        }
        if payload.len() > max_bytes {
            return None;
        }
        let w: Wire<'_> = serde_json::from_slice(payload).ok()?;
        let since = crate::time::parse_rfc3339(&w.since).ok()?;
        let firing = match w.state.as_ref() {
            "firing" => true,
            "resolved" => false,
            _ => return None,
        };
        let known_rule = Rule::ALL.iter().any(|r| {
            w.id.strip_prefix(r.as_str())
                .is_some_and(|s| s.starts_with(':'))
        });
        if !known_rule || w.id.len() > PEER_ID_MAX || !crate::config::valid_replica_name(&w.replica)
        {
            return None;
        }
        Some(PeerAlert {
            id: w.id.into_owned(),
            firing,
            since,
            replica: w.replica.into_owned(),
        })
    }
}

/// Whether `topic` is under `{prefix}/alerts/`, where the replicas publish their alerts.
fn is_alerts_topic(topic: &str, prefix: &str) -> bool {
    topic
        .strip_prefix(prefix)
        .and_then(|rest| rest.strip_prefix("/alerts/"))
        .is_some()
}

/// The next request, when requests are taken at all.
async fn next_request(rx: &mut Option<mpsc::Receiver<push::Request>>) -> Option<push::Request> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// Rejection logging at a bounded rate: per source, the first rejection of each
/// 10-second period at WARN (with how many were only logged at DEBUG since), the rest at
/// DEBUG. Rejected payloads are counted and dead-lettered in full anyway.
#[derive(Default)]
struct RejectLog {
    /// Per source: start of the current period and rejections not logged at WARN in it.
    periods: [(Ts, u64); 3],
}

const REJECT_LOG_PERIOD_SECS: i64 = 10;

/// Alert transitions logged at INFO per rule and period; the rest go to DEBUG and are
/// counted, so a burst (thousands of subjects crossing a deadline at once) cannot flood the
/// log.
const ALERT_LOG_BURST: u64 = 20;
const ALERT_LOG_PERIOD_SECS: i64 = 10;

/// Rate limit of the alert transition log lines, per rule.
#[derive(Default)]
struct AlertLog {
    /// Per rule: start of the current period, lines logged at INFO in it, lines suppressed.
    periods: std::collections::BTreeMap<Rule, (Ts, u64, u64)>,
}

impl AlertLog {
    /// Whether a transition of `rule` at `now` is logged at INFO.
    fn admit(&mut self, rule: Rule, now: Ts) -> bool {
        let (start, logged, suppressed) = self.periods.entry(rule).or_insert((now, 0, 0));
        if now >= start.plus_secs(ALERT_LOG_PERIOD_SECS) && *suppressed == 0 {
            (*start, *logged) = (now, 0);
        }
        if *logged < ALERT_LOG_BURST {
            *logged += 1;
            true
        } else {
            *suppressed += 1;
            false
        }
    }

    /// At the end of a period with suppressed lines, one line says how many, per rule.
    fn flush(&mut self, now: Ts) {
        for (rule, (start, logged, suppressed)) in &mut self.periods {
            if *suppressed > 0 && now >= start.plus_secs(ALERT_LOG_PERIOD_SECS) {
                info!(
                    rule = rule.as_str(),
                    suppressed = *suppressed,
                    "More alert transitions of this rule than the log takes; these were logged at DEBUG only (the API and MQTT have them all)."
                );
                (*start, *logged, *suppressed) = (now, 0, 0);
            }
        }
    }
}

impl RejectLog {
    fn record(&mut self, source: Source, topic: &str, err: &DecodeError, now: Ts) {
        let (start, quiet) = &mut self.periods[source.index()];
        if now >= start.plus_secs(REJECT_LOG_PERIOD_SECS) {
            warn!(
                source = source.as_str(),
                topic,
                reason = err.reason.as_str(),
                detail = %err.detail,
                suppressed = *quiet,
                "Payload rejected and dead-lettered; further rejections of this source are logged at DEBUG for 10 s."
            );
            *start = now;
            *quiet = 0;
        } else {
            *quiet += 1;
            debug!(source = source.as_str(), topic, reason = err.reason.as_str(), detail = %err.detail, "Payload rejected.");
        }
    }
}

/// Evictions at the memory caps are logged at most once a minute: how many of each kind
/// since the last line (the counter has them all).
#[derive(Default)]
struct EvictionLog {
    /// Evictions already logged, by kind, and when the last line was written.
    logged: ([u64; 5], Option<Ts>),
}

const EVICTION_LOG_PERIOD_SECS: i64 = 60;

impl EvictionLog {
    fn flush(&mut self, evictions: &crate::state::evict::Evictions, now: Ts) {
        let (logged, at) = &mut self.logged;
        if evictions.count == *logged
            || at.is_some_and(|at| now < at.plus_secs(EVICTION_LOG_PERIOD_SECS))
        {
            return;
        }
        let kinds: Vec<String> = crate::state::evict::Kind::ALL
            .iter()
            .zip(evictions.count.iter().zip(logged.iter()))
            .filter(|(_, (n, l))| n > l)
            .map(|(k, (n, l))| format!("{} {}", n - l, k.as_str()))
            .collect();
        warn!(
            evicted = %kinds.join(", "),
            "Memory caps reached ([state] max_*): the items whose latest event was oldest were evicted; their sources show a possible gap for an hour. Raise the caps if this province needs more."
        );
        *logged = evictions.count;
        *at = Some(now);
    }
}
