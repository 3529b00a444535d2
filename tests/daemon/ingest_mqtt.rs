//! `ingest::mqtt` against a real Mosquitto: delivery on the input topics, link status,
//! broker restarts with and without a kept session, oversized payloads, backpressure (the
//! event loop keeps polling, so keepalive never starves) and a broker that is down at start.
//! Each test has its own broker, client id and prefix.
//!
//! Logs are off unless `TEST_LOG` is set.

use std::collections::BTreeSet;
use std::future::Future;
use std::time::{Duration, Instant};

use iocd::config::MqttSettings;
use iocd::ingest::{
    Acks, IngestError, LinkStatus, MqttIngest, PublishError, Publisher, RawMessage,
};
use iocd::telemetry::SelfMetrics;
use rumqttc::{AsyncClient, Event, Incoming, MqttOptions, QoS};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::helpers::{TIMEOUT, broker::TestBroker, init_logs, poll_until, unique, wait_for};

const MAX_PAYLOAD: usize = 65_536;

/// Ingest running in a task, with its ends.
struct Ingest {
    rx: mpsc::Receiver<RawMessage>,
    status: watch::Receiver<LinkStatus>,
    metrics: SelfMetrics,
    publisher: Publisher,
    prefix: String,
    cancel: CancellationToken,
    task: JoinHandle<Result<(), IngestError>>,
}

fn settings(name: &str, url: &str, persistent: bool) -> MqttSettings {
    MqttSettings {
        url: url.parse().expect("a broker URL"),
        client_id: unique(&format!("iocd-{name}")),
        persistent_session: persistent,
        prefix: format!("test/{}", unique(name)),
        keepalive: Duration::from_secs(5),
        reconnect_min: Duration::from_millis(50),
        reconnect_max: Duration::from_millis(400),
        ..MqttSettings::default()
    }
}

fn spawn_ingest(settings: &MqttSettings, capacity: usize) -> Ingest {
    spawn_ingest_holding(settings, capacity, iocd::ingest::mqtt::HOLD_MAX_BYTES)
}

/// [`spawn_ingest`], holding at most `hold_bytes` of QoS 0 messages while the queue is full.
fn spawn_ingest_holding(settings: &MqttSettings, capacity: usize, hold_bytes: usize) -> Ingest {
    init_logs();
    let (tx, rx) = mpsc::channel(capacity);
    let metrics = SelfMetrics::new();
    let (mut ingest, publisher, status) = MqttIngest::new(
        settings,
        None,
        MAX_PAYLOAD,
        Acks::OnReceipt,
        tx,
        metrics.clone(),
    )
    .expect("valid settings");
    ingest.set_hold_max_bytes(hold_bytes);
    let cancel = CancellationToken::new();
    let task = tokio::spawn(ingest.run(cancel.clone()));
    Ingest {
        rx,
        status,
        metrics,
        publisher,
        prefix: settings.prefix.clone(),
        cancel,
        task,
    }
}

impl Ingest {
    async fn wait_status(&mut self, what: &str, cond: impl FnMut(&LinkStatus) -> bool) {
        let waited = tokio::time::timeout(TIMEOUT, self.status.wait_for(cond))
            .await
            .map(|r| r.is_ok());
        let last = self.status.borrow().clone();
        assert!(
            matches!(waited, Ok(true)),
            "timed out waiting for {what}: {last:?}"
        );
    }

    async fn wait_subscribed(&mut self) {
        self.wait_status("connected and subscribed", |s| s.connected && s.subscribed)
            .await;
    }

    async fn recv_n(&mut self, n: usize) -> Vec<RawMessage> {
        let mut got = Vec::with_capacity(n);
        let deadline = tokio::time::Instant::now() + TIMEOUT;
        while got.len() < n {
            let received = tokio::time::timeout_at(deadline, self.rx.recv()).await;
            let Ok(next) = received else {
                panic!("timed out after {} of {n} messages", got.len())
            };
            let Some(msg) = next else {
                panic!(
                    "the ingest queue closed after {} of {n} messages",
                    got.len()
                )
            };
            got.push(msg);
        }
        got
    }

    /// Receives until every payload of `want` has arrived, and returns how many messages
    /// that took. QoS 1 is at least once: after a reconnection the broker may deliver again
    /// a message of `earlier` (already consumed) or of `want`; anything else fails.
    async fn recv_all(
        &mut self,
        want: &[(String, Vec<u8>)],
        earlier: &[(String, Vec<u8>)],
    ) -> usize {
        let want = payloads_of(want);
        let earlier = payloads_of(earlier);
        let mut got = BTreeSet::new();
        let mut received = 0;
        while got != want {
            for m in self.recv_n(1).await {
                let payload = m.payload.to_vec();
                assert!(
                    want.contains(&payload) || earlier.contains(&payload),
                    "unexpected message {:?}",
                    String::from_utf8_lossy(&payload)
                );
                received += 1;
                if want.contains(&payload) {
                    got.insert(payload);
                }
            }
        }
        received
    }

    fn topic(&self, rest: &str) -> String {
        format!("{}/{rest}", self.prefix)
    }

    /// With a queue of one: waits until ingest has read `n` messages and handed over one
    /// (the queue is full, the others are held).
    async fn wait_holding(&self, n: u64) {
        let metrics = &self.metrics;
        let (received, enqueued) = poll_until(
            TIMEOUT,
            || async {
                (
                    metrics.mqtt_messages_received.get(),
                    metrics.pipeline_enqueued.get(),
                )
            },
            |&(received, enqueued)| received == n && enqueued == 1,
        )
        .await;
        assert_eq!(
            (received, enqueued),
            (n, 1),
            "(read, handed over): ingest should hold what the full queue cannot take"
        );
    }

    /// [`Ingest::stop`], which must take under a second.
    async fn stop_promptly(self) {
        let started = Instant::now();
        self.stop().await;
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{:?}",
            started.elapsed()
        );
    }

    /// Cancels and checks that `run` returns `Ok` promptly.
    async fn stop(self) {
        self.cancel.cancel();
        let ended = tokio::time::timeout(Duration::from_secs(5), self.task).await;
        assert!(
            matches!(ended, Ok(Ok(Ok(())))),
            "run did not end with Ok: {ended:?}"
        );
    }
}

/// Publishes every message at QoS 1 from a fresh client and returns once the broker has
/// acknowledged them all.
async fn publish_all(broker: &TestBroker, msgs: &[(String, Vec<u8>)]) {
    let mut options = MqttOptions::new(unique("pub"), "127.0.0.1", broker.port);
    options
        .set_max_packet_size(1 << 20, 1 << 20)
        .set_keep_alive(Duration::from_secs(5));
    let (client, mut eventloop) = AsyncClient::new(options, msgs.len() + 1);
    for (topic, payload) in msgs {
        client
            .try_publish(topic.clone(), QoS::AtLeastOnce, false, payload.clone())
            .expect("the request queue has room for every message");
    }
    let acked = tokio::time::timeout(TIMEOUT, async {
        let mut acked = 0;
        while acked < msgs.len() {
            match eventloop.poll().await {
                Ok(Event::Incoming(Incoming::PubAck(_))) => acked += 1,
                Ok(_) => {}
                Err(e) => panic!("test publisher: {e}"),
            }
        }
    })
    .await;
    assert!(
        acked.is_ok(),
        "the broker did not acknowledge all {} messages",
        msgs.len()
    );
    let _ = client.try_disconnect();
    let _ = tokio::time::timeout(Duration::from_millis(200), eventloop.poll()).await;
}

fn numbered(topic: &str, range: std::ops::Range<u32>) -> Vec<(String, Vec<u8>)> {
    range
        .map(|i| (topic.to_owned(), format!("{{\"n\":{i}}}").into_bytes()))
        .collect()
}

fn payloads(msgs: &[RawMessage]) -> BTreeSet<Vec<u8>> {
    msgs.iter().map(|m| m.payload.to_vec()).collect()
}

/// Runs `f` with a deadline so a hang fails the test instead of blocking the suite.
async fn within<F: Future<Output = ()>>(f: F) {
    tokio::time::timeout(Duration::from_secs(60), f)
        .await
        .expect("the test finished within 60 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_on_the_three_input_topics_arrive_and_others_do_not() {
    within(async {
        let broker = TestBroker::start();
        let mut ingest = spawn_ingest(&settings("inputs", &broker.url(), true), 16);
        ingest.wait_subscribed().await;
        let msgs = vec![
            (ingest.topic("deadletter/onestop"), b"not an input".to_vec()),
            (
                format!("elsewhere/{}", unique("x")),
                b"not an input".to_vec(),
            ),
            (
                ingest.topic("onestop/agency-1"),
                b"{\"s\":\"onestop\"}".to_vec(),
            ),
            (ingest.topic("vc"), b"{\"s\":\"vc\"}".to_vec()),
            (ingest.topic("soc/a/b"), b"{\"s\":\"soc\"}".to_vec()),
        ];
        publish_all(&broker, &msgs).await;
        let got = ingest.recv_n(3).await;
        let got: BTreeSet<(String, Vec<u8>)> = got
            .iter()
            .map(|m| (m.topic.clone(), m.payload.to_vec()))
            .collect();
        let want: BTreeSet<(String, Vec<u8>)> = msgs[2..].iter().cloned().collect();
        assert_eq!(got, want);
        assert!(
            ingest.rx.try_recv().is_err(),
            "a message outside the input topics arrived"
        );
        // The counters move just after the hand-over, so they may trail the receiver.
        let metrics = &ingest.metrics;
        let counted = poll_until(
            TIMEOUT,
            || async {
                (
                    metrics.mqtt_messages_received.get(),
                    metrics.pipeline_enqueued.get(),
                )
            },
            |&counted| counted == (3, 3),
        )
        .await;
        assert_eq!(counted, (3, 3), "(read, handed over)");
        ingest.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_link_status_becomes_connected_and_subscribed_and_the_gauges_follow() {
    within(async {
        let broker = TestBroker::start();
        let mut ingest = spawn_ingest(&settings("status", &broker.url(), true), 16);
        ingest.wait_subscribed().await;
        assert_eq!(ingest.metrics.mqtt_connected.get(), 1);
        assert_eq!(ingest.metrics.mqtt_subscribed.get(), 1);
        assert_eq!(ingest.metrics.mqtt_connects.get(), 1);
        assert_eq!(ingest.metrics.mqtt_sessions_lost.get(), 0);
        assert_eq!(ingest.publisher.prefix(), ingest.prefix);
        let metrics = ingest.metrics.clone();
        let mut status = ingest.status.clone();
        ingest.stop().await;
        assert_eq!(*status.borrow_and_update(), LinkStatus::default());
        assert_eq!(metrics.mqtt_connected.get(), 0);
        assert_eq!(metrics.mqtt_subscribed.get(), 0);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_broker_restart_that_keeps_the_session_messages_flow_again() {
    within(async {
        let mut broker = TestBroker::start();
        let mut ingest = spawn_ingest(&settings("restart", &broker.url(), true), 64);
        ingest.wait_subscribed().await;
        let topic = ingest.topic("vc/hall");
        publish_all(&broker, &numbered(&topic, 0..5)).await;
        assert_eq!(
            payloads(&ingest.recv_n(5).await),
            payloads_of(&numbered(&topic, 0..5))
        );

        broker.restart();
        // A watch keeps only the latest value and the outage can be shorter than a poll,
        // so the reconnection is observed through the CONNACK counter.
        let metrics = ingest.metrics.clone();
        wait_for("a second CONNACK", || async {
            metrics.mqtt_connects.get() == 2
        })
        .await;
        ingest.wait_subscribed().await;
        publish_all(&broker, &numbered(&topic, 5..10)).await;
        let received = ingest
            .recv_all(&numbered(&topic, 5..10), &numbered(&topic, 0..5))
            .await;
        eprintln!("restart, session kept: 5 of 5 new messages, {received} received in all");
        assert_eq!(
            ingest.status.borrow().sessions_lost,
            0,
            "the broker kept the session"
        );
        assert_eq!(ingest.metrics.mqtt_connects.get(), 2);
        assert!(ingest.metrics.mqtt_connection_errors.get() >= 1);
        ingest.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_broker_loses_the_session_ingest_counts_it_and_subscribes_again() {
    within(async {
        let mut broker = TestBroker::start_with("persistence false");
        let mut ingest = spawn_ingest(&settings("lost", &broker.url(), true), 64);
        ingest.wait_subscribed().await;
        let topic = ingest.topic("soc/siem");
        publish_all(&broker, &numbered(&topic, 0..3)).await;
        ingest.recv_n(3).await;

        broker.restart();
        ingest
            .wait_status("the session loss", |s| s.sessions_lost == 1)
            .await;
        ingest.wait_subscribed().await;
        publish_all(&broker, &numbered(&topic, 3..6)).await;
        assert_eq!(
            payloads(&ingest.recv_n(3).await),
            payloads_of(&numbered(&topic, 3..6))
        );
        assert_eq!(ingest.metrics.mqtt_sessions_lost.get(), 1);
        ingest.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_payload_is_handed_over_and_the_connection_stays_up() {
    within(async {
        let broker = TestBroker::start_with("max_packet_size 262144");
        let mut ingest = spawn_ingest(&settings("large", &broker.url(), true), 16);
        ingest.wait_subscribed().await;
        let topic = ingest.topic("onestop/big");
        let big = vec![b'x'; 200_000];
        let msgs = vec![
            (topic.clone(), big.clone()),
            (topic.clone(), b"{\"after\":true}".to_vec()),
        ];
        publish_all(&broker, &msgs).await;
        let got = ingest.recv_n(2).await;
        assert_eq!(payloads(&got), payloads_of(&msgs));
        assert!(got.iter().any(|m| m.payload.len() == 200_000));
        assert!(ingest.status.borrow().connected);
        assert_eq!(ingest.metrics.mqtt_connection_errors.get(), 0);
        assert_eq!(ingest.metrics.mqtt_connects.get(), 1);
        ingest.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_pipeline_queue_full_ingest_holds_and_loses_nothing() {
    within(async {
        let broker = TestBroker::start();
        let mut ingest = spawn_ingest(&settings("full", &broker.url(), true), 1);
        ingest.wait_subscribed().await;
        let topic = ingest.topic("onestop/burst");
        let msgs = numbered(&topic, 0..200);
        publish_all(&broker, &msgs).await;
        let metrics = ingest.metrics.clone();
        // One message in the queue, the 199 others read and held unacknowledged (the test
        // broker's in-flight window is 1,000): the loop went on reading.
        ingest.wait_holding(200).await;
        let got = ingest.recv_n(200).await;
        assert_eq!(
            payloads(&got),
            payloads_of(&msgs),
            "every message arrived exactly once"
        );
        assert_eq!(got.len(), 200);
        // The counters move just after the hand-over, so they may trail the receiver.
        wait_for("200 messages counted as enqueued", || async {
            metrics.pipeline_enqueued.get() == 200
        })
        .await;
        assert_eq!(metrics.mqtt_messages_received.get(), 200);
        let waited = metrics.ingest_queue_wait_seconds.get();
        assert!(waited > 0.0);
        assert_eq!(metrics.ingest_dropped.get(), 0);
        eprintln!("queue full: 200 of 200 delivered, held for {waited:.3} s in total");
        ingest.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_broker_down_at_start_ingest_retries_with_backoff_until_it_appears() {
    within(async {
        let mut broker = TestBroker::start();
        broker.stop();
        let mut ingest = spawn_ingest(&settings("down", &broker.url(), true), 16);
        let metrics = ingest.metrics.clone();
        let started = Instant::now();
        wait_for("five failed attempts", || async {
            metrics.mqtt_connection_errors.get() >= 5
        })
        .await;
        let failing_for = started.elapsed();
        assert!(!ingest.status.borrow().connected);

        broker.restart();
        ingest.wait_subscribed().await;
        let errors = metrics.mqtt_connection_errors.get();
        // Without backoff a refused connection is retried at once: thousands a second.
        assert!(
            errors < 100,
            "{errors} attempts in {failing_for:?}: no backoff"
        );
        let topic = ingest.topic("vc/late");
        publish_all(&broker, &numbered(&topic, 0..3)).await;
        ingest.recv_n(3).await;
        eprintln!("broker down: {errors} failed attempts, first 5 in {failing_for:?}");
        ingest.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publisher_messages_reach_the_broker() {
    within(async {
        let broker = TestBroker::start();
        let mut ingest = spawn_ingest(&settings("publish", &broker.url(), true), 16);
        ingest.wait_subscribed().await;
        // Listen on the dead-letter topic with a second client.
        let topic = ingest.topic("deadletter/vc");
        let mut options = MqttOptions::new(unique("sub"), "127.0.0.1", broker.port);
        options.set_keep_alive(Duration::from_secs(5));
        let (client, mut eventloop) = AsyncClient::new(options, 10);
        client
            .try_subscribe(topic.clone(), QoS::AtLeastOnce)
            .expect("queue has room");
        let received = tokio::time::timeout(TIMEOUT, async {
            let mut published = false;
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Incoming::SubAck(_))) if !published => {
                        ingest
                            .publisher
                            .try_publish(
                                "deadletter",
                                topic.clone(),
                                b"{\"reason\":\"x\"}".to_vec(),
                            )
                            .expect("the request queue has room");
                        published = true;
                    }
                    Ok(Event::Incoming(Incoming::Publish(p))) => return p,
                    Ok(_) => {}
                    Err(e) => panic!("test subscriber: {e}"),
                }
            }
        })
        .await
        .expect("the dead letter arrived");
        assert_eq!(received.topic, topic);
        assert_eq!(received.qos, QoS::AtLeastOnce);
        assert!(!received.retain);
        assert_eq!(&received.payload[..], b"{\"reason\":\"x\"}");
        ingest.stop().await;
    })
    .await;
}

/// How many PINGREQs the broker logged from `client_id` (it logs them with `log_type debug`).
fn pings(broker: &TestBroker, client_id: &str) -> usize {
    broker
        .log()
        .matches(&format!("Received PINGREQ from {client_id}"))
        .count()
}

/// Waits until the broker has seen three more PINGREQs from `client_id`: the event loop
/// went on polling for three keepalive intervals.
async fn wait_three_more_pings(broker: &TestBroker, client_id: &str) {
    let before = pings(broker, client_id);
    wait_for("three more keepalive pings", || async {
        pings(broker, client_id) >= before + 3
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_qos1_a_stall_longer_than_the_keepalive_keeps_the_link_and_the_broker_holds_the_rest() {
    within(async {
        let broker = TestBroker::start_with("max_inflight_messages 10\nlog_type debug");
        let mut s = settings("stall", &broker.url(), true);
        s.keepalive = Duration::from_secs(1);
        let mut ingest = spawn_ingest(&s, 1);
        ingest.wait_subscribed().await;
        let topic = ingest.topic("soc/stall");
        let msgs = numbered(&topic, 0..50);
        publish_all(&broker, &msgs).await;
        // One in the queue (acknowledged), the broker's in-flight window held unacknowledged:
        // then the broker sends no more and keeps the rest for the session. (Mosquitto 2.0
        // lets a window of 10 reach about 20 once the first ack comes back.)
        let metrics = ingest.metrics.clone();
        wait_for("ingest to read a window's worth", || async {
            metrics.mqtt_messages_received.get() >= 11
        })
        .await;
        // The pipeline stalls for three keepalive intervals: the loop keeps pinging.
        wait_three_more_pings(&broker, &s.client_id).await;
        let during = metrics.mqtt_messages_received.get();
        assert!(
            during < 30,
            "{during} read: the window did not hold the flow"
        );
        assert_eq!(metrics.pipeline_enqueued.get(), 1);
        assert_eq!(metrics.mqtt_connection_errors.get(), 0);
        assert_eq!(metrics.mqtt_connects.get(), 1);
        assert!(!broker.log().contains("has exceeded timeout"));
        // The pipeline resumes: everything arrives, exactly once, nothing dropped.
        let got = ingest.recv_n(50).await;
        assert_eq!(payloads(&got), payloads_of(&msgs));
        assert_eq!(metrics.mqtt_messages_received.get(), 50);
        assert_eq!(metrics.ingest_dropped.get(), 0);
        assert_eq!(metrics.mqtt_connection_errors.get(), 0);
        eprintln!("QoS 1 stall: 50 of 50 delivered, {during} read during the stall, no disconnect");
        ingest.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_qos0_a_stall_keeps_the_link_and_every_message_is_handed_over_or_counted() {
    within(async {
        let broker = TestBroker::start_with("log_type debug");
        let mut s = settings("stall0", &broker.url(), true);
        s.keepalive = Duration::from_secs(1);
        let topic = format!("{}/vc/flood", s.prefix);
        // Room to hold four of the one-digit payloads below.
        let hold = 4 * (1 + topic.len() + iocd::ingest::mqtt::HELD_OVERHEAD_BYTES);
        let mut ingest = spawn_ingest_holding(&s, 4, hold);
        ingest.wait_subscribed().await;
        let lines: Vec<u8> = (0..50)
            .flat_map(|n| format!("{n}\n").into_bytes())
            .collect();
        broker.publish_lines(&topic, 0, lines).await;
        let metrics = ingest.metrics.clone();
        // All 50 read although nothing takes from the queue: 4 queued, 4 held (the bound),
        // 42 dropped and counted.
        // A message is counted as read before it is queued, held or dropped: wait for both.
        wait_for("ingest to read all 50 and place the last", || async {
            metrics.mqtt_messages_received.get() == 50
                && metrics.pipeline_enqueued.get() + metrics.ingest_dropped.get() == 46
        })
        .await;
        assert_eq!(metrics.pipeline_enqueued.get(), 4);
        assert_eq!(metrics.ingest_dropped.get(), 42);
        wait_three_more_pings(&broker, &s.client_id).await;
        assert_eq!(metrics.mqtt_connection_errors.get(), 0);
        assert_eq!(metrics.mqtt_connects.get(), 1);
        // The pipeline resumes: the queued and the held ones, in the order read.
        let got = ingest.recv_n(8).await;
        let got: Vec<String> = got
            .iter()
            .map(|m| String::from_utf8_lossy(&m.payload).into_owned())
            .collect();
        assert_eq!(got, ["0", "1", "2", "3", "4", "5", "6", "7"]);
        wait_for("the held messages counted as enqueued", || async {
            metrics.pipeline_enqueued.get() == 8
        })
        .await;
        assert_eq!(
            metrics.pipeline_enqueued.get() + metrics.ingest_dropped.get(),
            metrics.mqtt_messages_received.get()
        );
        ingest.stop().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_ends_run_promptly_while_the_broker_is_down() {
    within(async {
        let mut broker = TestBroker::start();
        broker.stop();
        let mut s = settings("cancel-down", &broker.url(), true);
        s.reconnect_min = Duration::from_secs(60);
        s.reconnect_max = Duration::from_secs(60);
        let ingest = spawn_ingest(&s, 1);
        let metrics = ingest.metrics.clone();
        wait_for("a failed attempt", || async {
            metrics.mqtt_connection_errors.get() >= 1
        })
        .await;
        ingest.stop_promptly().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_ends_run_promptly_while_waiting_for_queue_room() {
    within(async {
        let broker = TestBroker::start();
        let mut ingest = spawn_ingest(&settings("cancel-full", &broker.url(), true), 1);
        ingest.wait_subscribed().await;
        let topic = ingest.topic("vc/x");
        publish_all(&broker, &numbered(&topic, 0..5)).await;
        ingest.wait_holding(5).await;
        ingest.stop_promptly().await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_stops_by_itself_when_the_pipeline_queue_closes_and_says_goodbye() {
    within(async {
        let broker = TestBroker::start();
        let s = settings("closed", &broker.url(), true);
        let mut ingest = spawn_ingest(&s, 4);
        ingest.wait_subscribed().await;
        let Ingest {
            rx,
            task,
            publisher,
            ..
        } = ingest;
        drop(rx);
        publish_all(&broker, &numbered(&format!("{}/onestop/x", s.prefix), 0..1)).await;
        let ended = tokio::time::timeout(TIMEOUT, task).await;
        assert!(
            matches!(ended, Ok(Ok(Ok(())))),
            "run did not end with Ok: {ended:?}"
        );
        let after = publisher.try_publish("alert", format!("{}/alerts/x", s.prefix), vec![1]);
        assert_eq!(after, Err(PublishError::Closed));
        // Mosquitto logs "Client ID disconnected." only for a DISCONNECT packet.
        let goodbye = format!("Client {} disconnected.", s.client_id);
        wait_for("the broker logs the DISCONNECT", || async {
            broker.log().contains(&goodbye)
        })
        .await;
    })
    .await;
}

fn payloads_of(msgs: &[(String, Vec<u8>)]) -> BTreeSet<Vec<u8>> {
    msgs.iter().map(|(_, p)| p.clone()).collect()
}
