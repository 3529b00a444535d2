//! iocd's own metrics (connection, queue, dead letters), in a registry of our own so that
//! parallel tests can each build an app. Domain metrics of docs/contract.md §5.3 are not here:
//! `outputs::prometheus` builds them from the state at scrape time.

use prometheus::{Counter, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

/// The `kind` values of `iocd_mqtt_publish_dropped_total`: what iocd publishes.
pub const PUBLISH_KINDS: [&str; 3] = ["deadletter", "alert", "action"];
/// The `cause` values of `iocd_mqtt_disconnects_total` (see `ingest::mqtt::disconnect_cause`).
pub const DISCONNECT_CAUSES: [&str; 7] = [
    "keepalive",
    "peer_closed",
    "timeout",
    "refused",
    "tls",
    "io",
    "protocol",
];
/// The `result` values of `iocd_directory_reloads_total`.
pub const RELOAD_RESULTS: [&str; 2] = ["ok", "refused"];
/// The `transport` values of `iocd_ingest_items_total`.
pub const TRANSPORTS: [&str; 3] = ["mqtt", "http", "poll"];
/// The `outcome` values of `iocd_ingest_items_total`.
pub const ITEM_OUTCOMES: [&str; 3] = ["accepted", "duplicate", "rejected"];
/// The `outcome` values of `iocd_mapping_records_total`: a contract event built, a record
/// with no contract type (counted, nothing applied), a record the mapping could not map.
pub const MAPPING_OUTCOMES: [&str; 3] = ["event", "skipped", "failed"];
/// The `outcome` values of `iocd_ops_actions_total`: an operator action applied, one
/// already applied (its id seen: a copy from the broker, a retry), one refused.
pub const ACTION_OUTCOMES: [&str; 3] = ["applied", "duplicate", "rejected"];
/// The `outcome` values of `iocd_ha_peer_alerts_total`: another replica's alert that gave
/// an earlier `since`, one with a later `since` (this replica's published again for it),
/// one that changed nothing, this replica's own back, one unreadable.
pub const PEER_ALERT_OUTCOMES: [&str; 5] = ["earlier", "later", "unchanged", "own", "invalid"];
/// Buckets of `iocd_alert_acknowledge_seconds`: a minute to a day.
pub const ACKNOWLEDGE_BUCKETS: [f64; 10] = [
    60.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0, 14_400.0, 28_800.0, 86_400.0,
];
/// The `reason` values of `iocd_ws_rejected_total`.
pub const WS_REJECT_REASONS: [&str; 3] = ["max_clients", "unauthorized", "origin"];

/// Cheap-to-clone handles on iocd's self-metrics, all registered in [`SelfMetrics::registry`].
#[derive(Clone)]
pub struct SelfMetrics {
    /// The registry `/metrics` gathers from (self-metrics plus the domain collector).
    pub registry: Registry,
    /// 1 while the MQTT connection is up.
    pub mqtt_connected: IntGauge,
    /// 1 while the subscriptions are in place.
    pub mqtt_subscribed: IntGauge,
    /// Connection attempts that failed or connections that broke.
    pub mqtt_connection_errors: IntCounter,
    /// Alert transitions replaced by a newer one of the same alert before they were published.
    pub mqtt_alerts_coalesced: IntCounter,
    /// Connections lost or refused, by cause (`keepalive` means iocd missed its own ping).
    pub mqtt_disconnects: IntCounterVec,
    /// CONNACKs received.
    pub mqtt_connects: IntCounter,
    /// CONNACKs with `session_present = false` while a persistent session was asked for.
    pub mqtt_sessions_lost: IntCounter,
    /// PUBLISH packets received on the input topics.
    pub mqtt_messages_received: IntCounter,
    /// Seconds during which the pipeline queue was full and ingest held messages for it
    /// (backpressure; the MQTT loop itself never waits).
    pub ingest_queue_wait_seconds: Counter,
    /// QoS 0 input messages dropped by ingest: the pipeline queue was full and ingest already
    /// held 64 MiB of messages for it, or they were still held at shutdown.
    pub ingest_dropped: IntCounter,
    /// Messages put on the pipeline queue.
    pub pipeline_enqueued: IntCounter,
    /// Messages taken off the pipeline queue.
    pub pipeline_dequeued: IntCounter,
    /// Outgoing MQTT publishes (dead letters, alerts) dropped, by `kind`, because the
    /// client's request queue was full.
    pub publish_dropped: IntCounterVec,
    /// WebSocket clients connected now.
    pub ws_clients: IntGauge,
    /// WebSocket upgrades refused, by `reason` (`max_clients`, `unauthorized`, `origin`).
    pub ws_rejected: IntCounterVec,
    /// Times a client fell behind the alert stream and got a fresh snapshot instead.
    pub ws_lagged: IntCounter,
    /// Clients disconnected because their socket took nothing for `max_behind_secs`.
    pub ws_slow_disconnects: IntCounter,
    /// Frames sent to WebSocket clients.
    pub ws_frames_sent: IntCounter,
    /// The broker's own count of QoS 1 messages it dropped (Mosquitto `$SYS`), when allowed.
    pub broker_messages_dropped: IntGauge,
    /// Reloads of the agency directory, by `result` (`ok`, `refused`: a bad file, the
    /// previous directory kept).
    pub directory_reloads: IntCounterVec,
    /// Reloads of the mappings directory, by `result` (as the agency directory's).
    pub mapping_reloads: IntCounterVec,
    /// Records of mapped payloads, by `mapping` and `outcome` ([`MAPPING_OUTCOMES`]).
    pub mapping_records: IntCounterVec,
    /// Items taken in (contract events, mapped events, refused payloads), by `transport`
    /// ([`TRANSPORTS`]) and `outcome` ([`ITEM_OUTCOMES`]).
    pub ingest_items: IntCounterVec,
    /// Per poller (`mapping`): Unix time of the last successful poll.
    pub poll_last_success: prometheus::IntGaugeVec,
    /// Per poller (`mapping`): seconds between now and the watermark's time, when it is one.
    pub poll_lag_seconds: prometheus::IntGaugeVec,
    /// Per poller (`mapping`): polls that failed.
    pub poll_errors: IntCounterVec,
    /// Operator actions taken in (HTTP and `{prefix}/ops/actions`), by `outcome`
    /// ([`ACTION_OUTCOMES`]).
    pub ops_actions: IntCounterVec,
    /// Seconds from an alert's firing to its acknowledgement, by `rule` and `severity`:
    /// the IOC's mean time to acknowledge (MTTA).
    pub alert_acknowledge_seconds: prometheus::HistogramVec,
    /// Alert publications of the replicas read on `{prefix}/alerts/#` (`[ha] replica`), by
    /// `outcome` ([`PEER_ALERT_OUTCOMES`]).
    pub ha_peer_alerts: IntCounterVec,
    /// Posts to Alertmanager, by `result` (`ok`, `error`).
    pub alertmanager_posts: IntCounterVec,
}

impl SelfMetrics {
    /// Creates the handles in a fresh registry.
    ///
    /// # Panics
    /// Never in practice: names and labels are constants known to be valid and unique.
    #[must_use]
    #[allow(clippy::missing_panics_doc)]
    #[allow(clippy::too_many_lines)] // one registration per metric, each with its help text
    pub fn new() -> Self {
        let registry = Registry::new();
        let gauge = |name: &str, help: &str| {
            let g = IntGauge::new(name, help).expect("constant metric name is valid");
            registry
                .register(Box::new(g.clone()))
                .expect("metric registered once");
            g
        };
        let counter = |name: &str, help: &str| {
            let c = IntCounter::new(name, help).expect("constant metric name is valid");
            registry
                .register(Box::new(c.clone()))
                .expect("metric registered once");
            c
        };
        let ingest_queue_wait_seconds = Counter::new(
            "iocd_ingest_queue_wait_seconds_total",
            "Seconds during which the pipeline queue was full and ingest held messages for it (backpressure).",
        )
        .expect("constant metric name is valid");
        registry
            .register(Box::new(ingest_queue_wait_seconds.clone()))
            .expect("metric registered once");
        // Every label value exists from the start at 0, so that `rate()` and `increase()`
        // see the first drop or refusal, and the series are there to be found.
        let labelled = |name: &str, help: &str, label: &str, values: &[&str]| {
            let v = IntCounterVec::new(Opts::new(name, help), &[label])
                .expect("constant metric name is valid");
            registry
                .register(Box::new(v.clone()))
                .expect("metric registered once");
            for value in values {
                v.with_label_values(&[value]);
            }
            v
        };
        let publish_dropped = labelled(
            "iocd_mqtt_publish_dropped_total",
            "Outgoing publishes dropped because the MQTT client's request queue was full.",
            "kind",
            &PUBLISH_KINDS,
        );
        let ws_rejected = labelled(
            "iocd_ws_rejected_total",
            "WebSocket upgrades refused, by reason.",
            "reason",
            &WS_REJECT_REASONS,
        );
        let mqtt_disconnects = labelled(
            "iocd_mqtt_disconnects_total",
            "MQTT connections lost or refused, by cause.",
            "cause",
            &DISCONNECT_CAUSES,
        );
        let directory_reloads = labelled(
            "iocd_directory_reloads_total",
            "Reloads of the agency directory file, by result (refused: a bad file, the previous directory kept).",
            "result",
            &RELOAD_RESULTS,
        );
        let mapping_reloads = labelled(
            "iocd_mapping_reloads_total",
            "Reloads of the mappings directory, by result (refused: a bad file, the previous mappings kept).",
            "result",
            &RELOAD_RESULTS,
        );
        let mapping_records = IntCounterVec::new(
            Opts::new(
                "iocd_mapping_records_total",
                "Records of mapped payloads, by mapping and outcome (event, skipped: no contract type, failed: dead-lettered as mapping_failed).",
            ),
            &["mapping", "outcome"],
        )
        .expect("constant metric name is valid");
        registry
            .register(Box::new(mapping_records.clone()))
            .expect("metric registered once");
        let ingest_items = IntCounterVec::new(
            Opts::new(
                "iocd_ingest_items_total",
                "Items taken in, by transport (mqtt, http, poll) and outcome (accepted, duplicate, rejected).",
            ),
            &["transport", "outcome"],
        )
        .expect("constant metric name is valid");
        registry
            .register(Box::new(ingest_items.clone()))
            .expect("metric registered once");
        for t in TRANSPORTS {
            for o in ITEM_OUTCOMES {
                ingest_items.with_label_values(&[t, o]);
            }
        }
        let per_poller = |name: &str, help: &str| {
            let g = prometheus::IntGaugeVec::new(Opts::new(name, help), &["mapping"])
                .expect("constant metric name is valid");
            registry
                .register(Box::new(g.clone()))
                .expect("metric registered once");
            g
        };
        let poll_last_success = per_poller(
            "iocd_poll_last_success_timestamp_seconds",
            "Unix time of each poller's last successful poll.",
        );
        let poll_lag_seconds = per_poller(
            "iocd_poll_lag_seconds",
            "How far each poller's watermark is behind now, in seconds, when the watermark is a time.",
        );
        let poll_errors = IntCounterVec::new(
            Opts::new("iocd_poll_errors_total", "Polls that failed, per poller."),
            &["mapping"],
        )
        .expect("constant metric name is valid");
        registry
            .register(Box::new(poll_errors.clone()))
            .expect("metric registered once");
        let ops_actions = labelled(
            "iocd_ops_actions_total",
            "Operator actions taken in (HTTP API and the ops/actions topic), by outcome (applied, duplicate: already applied, rejected).",
            "outcome",
            &ACTION_OUTCOMES,
        );
        let alert_acknowledge_seconds = prometheus::HistogramVec::new(
            prometheus::HistogramOpts::new(
                "iocd_alert_acknowledge_seconds",
                "Seconds from an alert's firing to its acknowledgement (time to acknowledge; MTTA is sum over count), by rule and severity.",
            )
            .buckets(ACKNOWLEDGE_BUCKETS.to_vec()),
            &["rule", "severity"],
        )
        .expect("constant metric name is valid");
        registry
            .register(Box::new(alert_acknowledge_seconds.clone()))
            .expect("metric registered once");
        let alertmanager_posts = labelled(
            "iocd_alertmanager_posts_total",
            "Posts of alerts to Alertmanager ([alertmanager] url), by result (ok, error: retried at the next resend).",
            "result",
            &["ok", "error"],
        );
        let ha_peer_alerts = labelled(
            "iocd_ha_peer_alerts_total",
            "Alert publications of the replicas read back ([ha] replica), by outcome (earlier: its since was taken; later: this replica's earlier since published again for it; unchanged, own, invalid).",
            "outcome",
            &PEER_ALERT_OUTCOMES,
        );
        Self {
            ha_peer_alerts,
            alertmanager_posts,
            ops_actions,
            alert_acknowledge_seconds,
            mapping_reloads,
            mapping_records,
            ingest_items,
            poll_last_success,
            poll_lag_seconds,
            poll_errors,
            directory_reloads,
            ws_clients: gauge("iocd_ws_clients", "WebSocket clients connected now."),
            ws_rejected,
            ws_lagged: counter(
                "iocd_ws_lagged_total",
                "Times a WebSocket client fell behind the alert stream and got a fresh snapshot.",
            ),
            ws_slow_disconnects: counter(
                "iocd_ws_slow_disconnects_total",
                "WebSocket clients disconnected for taking no data for max_behind_secs.",
            ),
            ws_frames_sent: counter(
                "iocd_ws_frames_sent_total",
                "Frames sent to WebSocket clients.",
            ),
            broker_messages_dropped: gauge(
                "iocd_broker_messages_dropped",
                "Messages the broker dropped for full client queues ($SYS/broker/publish/messages/dropped), when it publishes them.",
            ),
            mqtt_connected: gauge("iocd_mqtt_connected", "1 while the MQTT connection is up."),
            mqtt_subscribed: gauge(
                "iocd_mqtt_subscribed",
                "1 while the input subscriptions are in place.",
            ),
            mqtt_connection_errors: counter(
                "iocd_mqtt_connection_errors_total",
                "MQTT connection attempts that failed or connections that broke.",
            ),
            mqtt_connects: counter("iocd_mqtt_connects_total", "MQTT CONNACKs received."),
            mqtt_alerts_coalesced: counter(
                "iocd_mqtt_alerts_coalesced_total",
                "Alert transitions replaced by a newer one of the same alert before publication.",
            ),
            mqtt_disconnects,
            mqtt_sessions_lost: counter(
                "iocd_mqtt_sessions_lost_total",
                "CONNACKs without a session although a persistent session was asked for.",
            ),
            mqtt_messages_received: counter(
                "iocd_mqtt_messages_received_total",
                "PUBLISH packets received on the input topics.",
            ),
            ingest_queue_wait_seconds,
            ingest_dropped: counter(
                "iocd_ingest_dropped_total",
                "QoS 0 input messages dropped: the pipeline queue was full and ingest already held 64 MiB for it (or at shutdown).",
            ),
            pipeline_enqueued: counter(
                "iocd_pipeline_enqueued_total",
                "Messages put on the pipeline queue.",
            ),
            pipeline_dequeued: counter(
                "iocd_pipeline_dequeued_total",
                "Messages taken off the pipeline queue.",
            ),
            publish_dropped,
            registry,
        }
    }
}

impl Default for SelfMetrics {
    fn default() -> Self {
        Self::new()
    }
}
