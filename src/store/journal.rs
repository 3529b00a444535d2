//! The pipeline's durability (docs/contract.md §4.5): every message read off MQTT is appended
//! to the event log before it is acknowledged; appends are committed in groups (one fsync
//! per group); acknowledgements go out in receive order once their group is durable; a
//! periodic checkpoint of the whole state lets the log be trimmed; at start the latest
//! checkpoint is loaded and the log after it replayed.
//!
//! What is logged is the *input*, not its effect: the raw message with its arrival time
//! (replay decodes it again with that arrival time as "now", which gives the same result),
//! and the housekeeping ticks. So replay runs the very same `apply` path as live ingestion.
//! A rejected payload is logged too, so its counter survives a crash; a duplicate too, so
//! the duplicate counter does.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::decode::DecodeLimits;
use crate::ingest::{Ack, AckError, Acker, RawMessage};
use crate::state::{FrozenState, Input, Message, Params, State};
use crate::store::{self, EventLog, Record, StoreError, Trimmer, Versioned, io_error};
use crate::time::Ts;

/// Checkpoints kept; the log is trimmed before the oldest.
const CHECKPOINTS_KEPT: usize = 2;
/// The first retry of a failed commit waits this long; each failed retry doubles it.
const RETRY_FIRST: Duration = Duration::from_secs(1);
/// The longest wait between two retries: how late iocd notices that space came back.
const RETRY_MAX: Duration = Duration::from_secs(8);

/// Commits are failing: when to try again, and since when.
struct Retry {
    at: Instant,
    delay: Duration,
    since: Instant,
    failures: u64,
}

/// What a checkpoint holds.
#[derive(Serialize, Deserialize)]
pub struct Checkpoint {
    /// The whole state, counters and dedupe memory included.
    pub state: State,
    /// When each firing alert started firing (`id`, Unix nanoseconds).
    pub alert_since: Vec<(String, i64)>,
}

/// Version 1: `State` as of iocd 0.1. The golden test below reads the committed
/// `tests/fixtures/checkpoint-v1.bin`; when it fails, the encoding of `State` changed:
/// bump the number, keep the old file, and either decode the old format into the new
/// state (a migration, tested on that file) or document that the upgrade starts empty.
impl Versioned for Checkpoint {
    const FORMAT: u32 = 1;
}

/// The state recovered at start.
pub struct Recovery {
    /// The state after the checkpoint and the replay.
    pub state: State,
    /// Firing alerts' `since`, from the checkpoint.
    pub alert_since: Vec<(String, i64)>,
    /// Records replayed after the checkpoint.
    pub replayed: u64,
    /// Whether the directory held state from an earlier run (a checkpoint or log records):
    /// a broker that then answers without a session has lost it, a possible gap.
    pub resumed: bool,
}

/// The event log as the pipeline uses it.
pub struct Journal {
    dir: PathBuf,
    /// `None` when the log could not be opened: nothing is acknowledged then.
    log: Option<EventLog>,
    /// Set while commits fail (a full disk): nothing is acknowledged until one succeeds.
    retry: Option<Retry>,
    acker: Option<Acker>,
    /// Acks of records appended but not yet committed, in receive order.
    uncommitted: VecDeque<Ack>,
    /// Acks of committed records waiting for room in the MQTT request queue.
    unsent: VecDeque<Ack>,
    buf: Vec<u8>,
    checkpoint_every: Duration,
    last_checkpoint: Instant,
    /// The checkpoint being written on its own thread, if any.
    writing: Option<Writing>,
    /// Whether events are being made durable; `/readyz` reads it.
    healthy: watch::Sender<bool>,
}

impl Journal {
    /// Opens the data directory: loads the latest checkpoint and replays the log after it.
    /// An unreadable or unwritable directory is logged and leaves the journal unhealthy
    /// (not ready, nothing acknowledged), never a crash.
    ///
    /// # Errors
    /// A checkpoint that exists but cannot be decoded (a newer format): starting empty would
    /// silently lose the state, so the operator must decide.
    pub fn open(
        dir: &Path,
        params: Params,
        limits: &DecodeLimits,
        prefix: &str,
        checkpoint_every: Duration,
    ) -> Result<(Journal, Recovery, watch::Receiver<bool>), StoreError> {
        let (healthy, healthy_rx) = watch::channel(false);
        let started = Instant::now();
        let (state, at, alert_since) = match store::read_latest_checkpoint::<Checkpoint>(dir) {
            Ok(Some((at, ck, warnings))) => {
                for w in &warnings {
                    warn!(warning = %w, "Checkpoint.");
                }
                let mut state = ck.state;
                state.set_params(params);
                (state, Some(at), ck.alert_since)
            }
            Ok(None) => (State::new(params, Ts::now()), None, Vec::new()),
            Err(
                e @ (StoreError::IncompatibleCheckpoint { .. }
                | StoreError::NoReadableCheckpoint { .. }),
            ) => return Err(e),
            Err(e) => {
                error!(error = %e, dir = %dir.display(), "The data directory cannot be read; running without durability and acknowledging nothing.");
                (State::new(params, Ts::now()), None, Vec::new())
            }
        };
        let mut journal = Journal {
            dir: dir.to_path_buf(),
            log: None,
            retry: None,
            acker: None,
            uncommitted: VecDeque::new(),
            unsent: VecDeque::new(),
            buf: Vec::with_capacity(1024),
            checkpoint_every,
            last_checkpoint: Instant::now(),
            writing: None,
            healthy,
        };
        let mut recovery = Recovery {
            state,
            alert_since,
            replayed: 0,
            resumed: at.is_some(),
        };
        match EventLog::open(dir, at).and_then(|log| store::probe_writable(dir).map(|()| log)) {
            Ok((log, recovered)) => {
                recovered
                    .warnings
                    .iter()
                    .for_each(|w| warn!(warning = %w, "Event log recovered with a cut."));
                let mut since: std::collections::BTreeMap<String, i64> =
                    recovery.alert_since.drain(..).collect();
                for (_, bytes) in &recovered.records {
                    match Record::decode(bytes) {
                        Ok(Record::Alert {
                            id,
                            since_ns: Some(ns),
                        }) => {
                            since.insert(id.into_owned(), ns);
                        }
                        Ok(Record::Alert { id, since_ns: None }) => {
                            since.remove(id.as_ref());
                        }
                        Ok(record) => replay(&mut recovery.state, &record, limits, prefix),
                        Err(e) => warn!(error = %e, "Unreadable log record skipped."),
                    }
                    recovery.replayed += 1;
                }
                recovery.alert_since = since.into_iter().collect();
                recovery.resumed |= recovery.replayed > 0;
                journal.log = Some(log);
                journal.healthy.send_replace(true);
            }
            Err(e) => {
                error!(error = %e, dir = %dir.display(), "The event log cannot be opened for writing; not ready, nothing is acknowledged until this is fixed and iocd restarted.");
            }
        }
        info!(
            replayed = recovery.replayed,
            dossiers = recovery.state.dossiers.len(),
            took_ms = started.elapsed().as_millis(),
            "State recovered from the data directory."
        );
        Ok((journal, recovery, healthy_rx))
    }

    /// Sends acknowledgements through `acker` from now on.
    pub fn set_acker(&mut self, acker: Acker) {
        self.acker = Some(acker);
    }

    /// Appends a message; its ack waits for the next commit.
    pub fn message(&mut self, msg: &RawMessage) {
        let record = Record::Message {
            received_at_ns: msg.received_at.0,
            topic: msg.topic.as_str().into(),
            payload: msg.payload.as_ref().into(),
        };
        self.append(&record);
        if let Some(ack) = msg.ack {
            self.uncommitted.push_back(ack);
        }
    }

    /// Appends an alert transition: started firing at `since`, or resolved (`None`).
    pub fn alert(&mut self, id: &str, since: Option<Ts>) {
        self.append(&Record::Alert {
            id: id.into(),
            since_ns: since.map(|t| t.0),
        });
    }

    /// Appends a housekeeping tick at `at`.
    pub fn tick(&mut self, at: Ts) {
        self.append(&Record::Tick { at_ns: at.0 });
    }

    fn append(&mut self, record: &Record<'_>) {
        let Some(log) = &mut self.log else { return };
        self.buf.clear();
        record.encode(&mut self.buf);
        log.append(&self.buf);
    }

    /// Makes everything appended durable (one fsync), then acknowledges it in order.
    ///
    /// On a write failure (a full disk): unhealthy (not ready), and nothing is acknowledged;
    /// the records stay buffered in the log, and later calls retry with a backoff of
    /// `RETRY_FIRST` doubling up to `RETRY_MAX` (calls before the next retry return at
    /// once). The buffer is bounded by what the broker sends unacknowledged (its in-flight
    /// window per connection). The first commit that succeeds makes everything durable,
    /// turns healthy again and acknowledges in receive order.
    pub fn commit(&mut self) {
        let Some(log) = &mut self.log else { return };
        if let Some(retry) = &self.retry
            && Instant::now() < retry.at
        {
            return;
        }
        if (log.pending_bytes() > 0 || self.retry.is_some())
            && let Err(e) = log.commit()
        {
            self.commit_failed(&e);
            return;
        }
        if let Some(retry) = self.retry.take() {
            info!(
                dir = %self.dir.display(),
                failed_for_ms = retry.since.elapsed().as_millis(),
                retries = retry.failures,
                acknowledging = self.uncommitted.len(),
                "Events are durable again; ready, acknowledging what waited."
            );
            self.healthy.send_replace(true);
        }
        self.unsent.append(&mut self.uncommitted);
        self.send_acks();
    }

    fn commit_failed(&mut self, e: &StoreError) {
        let now = Instant::now();
        match &mut self.retry {
            None => {
                error!(error = %e, dir = %self.dir.display(), retry_in_ms = RETRY_FIRST.as_millis(), "Events cannot be made durable; not ready, nothing is acknowledged until a retry succeeds (free space on the data directory's disk).");
                self.retry = Some(Retry {
                    at: now + RETRY_FIRST,
                    delay: RETRY_FIRST,
                    since: now,
                    failures: 0,
                });
                self.healthy.send_replace(false);
            }
            Some(retry) => {
                retry.failures += 1;
                retry.delay = (retry.delay * 2).min(RETRY_MAX);
                retry.at = now + retry.delay;
                warn!(error = %e, failures = retry.failures, retry_in_ms = retry.delay.as_millis(), "Events still cannot be made durable; not ready, acknowledging nothing.");
            }
        }
    }

    /// Sends the committed acks, in order, until the request queue is full.
    pub fn send_acks(&mut self) {
        let Some(acker) = &self.acker else { return };
        while let Some(&ack) = self.unsent.front() {
            match acker.try_ack(ack) {
                Ok(()) => {
                    self.unsent.pop_front();
                }
                Err(AckError::Full) => break,
            }
        }
    }

    /// Starts writing a checkpoint when one is due, on a thread of its own from a frozen
    /// copy of `state` (see [`State::freeze`]), so that the pipeline does not wait for it;
    /// and finishes the one under way when it is written (old checkpoints and the log before
    /// them are then removed).
    pub fn maybe_checkpoint(
        &mut self,
        state: &State,
        alert_since: impl FnOnce() -> Vec<(String, i64)>,
    ) {
        if self.poll_checkpoint() && self.last_checkpoint.elapsed() >= self.checkpoint_every {
            self.start_checkpoint(state, alert_since());
        }
    }

    /// Finishes the checkpoint under way if it is written; returns whether none is under
    /// way now.
    pub fn poll_checkpoint(&mut self) -> bool {
        if self.writing.as_ref().is_some_and(Writing::is_finished) {
            self.finish_checkpoint();
        }
        self.writing.is_none()
    }

    /// Starts writing a checkpoint of `state` now, on its own thread (see
    /// [`Self::maybe_checkpoint`]); returns whether one was started (not while one is under
    /// way or commits fail).
    pub fn start_checkpoint(&mut self, state: &State, alert_since: Vec<(String, i64)>) -> bool {
        if self.writing.is_some() {
            return false;
        }
        self.last_checkpoint = Instant::now();
        let Some(at) = self.checkpoint_position() else {
            return false;
        };
        let froze = Instant::now();
        let ck = FrozenCheckpoint {
            state: state.freeze(),
            alert_since,
        };
        let froze_us = froze.elapsed().as_micros();
        let dir = self.dir.clone();
        let trimmer = self.log.as_ref().map(EventLog::trimmer);
        let spawned = std::thread::Builder::new()
            .name("iocd-checkpoint".into())
            .spawn(move || {
                let written = store::write_checkpoint(&dir, at, &ck);
                // Removing old files takes long too: here, not on the pipeline.
                let tidied = written.is_ok().then(|| tidy(&dir, trimmer.as_ref()));
                (written, tidied)
            });
        match spawned {
            Ok(thread) => {
                self.writing = Some(Writing {
                    thread,
                    at,
                    started: froze,
                    froze_us,
                });
                true
            }
            Err(e) => {
                error!(error = %e, "No thread for the checkpoint; trying again later.");
                false
            }
        }
    }

    /// Writes a checkpoint now and waits for it (at shutdown): the one under way is
    /// finished first.
    pub fn checkpoint(&mut self, state: &State, alert_since: Vec<(String, i64)>) {
        if self.writing.is_some() {
            self.finish_checkpoint();
        }
        self.last_checkpoint = Instant::now();
        let Some(at) = self.checkpoint_position() else {
            return;
        };
        let started = Instant::now();
        let written = store::write_checkpoint(&self.dir, at, &CheckpointRef { state, alert_since });
        let tidied = written
            .is_ok()
            .then(|| tidy(&self.dir, self.log.as_ref().map(EventLog::trimmer).as_ref()));
        report(&written, tidied, at, started, 0);
    }

    /// Where a checkpoint taken now stands in the log, after committing what is appended;
    /// `None` while commits fail (the state holds records that are not durable yet) or
    /// without a log.
    fn checkpoint_position(&mut self) -> Option<store::LogPosition> {
        self.commit();
        if self.retry.is_some() {
            return None;
        }
        self.log.as_ref().map(EventLog::end)
    }

    /// Waits for the checkpoint under way and reports it.
    fn finish_checkpoint(&mut self) {
        let Some(w) = self.writing.take() else { return };
        let (written, tidied) = w.thread.join().unwrap_or_else(|_| {
            let panicked = std::io::Error::other("the checkpoint thread panicked");
            (Err(io_error("write checkpoint", &self.dir)(panicked)), None)
        });
        report(&written, tidied, w.at, w.started, w.froze_us);
    }
}

/// Removes the checkpoints older than the kept ones, and the log before the oldest kept.
fn tidy(dir: &Path, trimmer: Option<&Trimmer>) -> Result<(), StoreError> {
    store::prune_checkpoints(dir, CHECKPOINTS_KEPT)?;
    match (store::oldest_checkpoint(dir)?, trimmer) {
        (Some(pos), Some(t)) => t.trim_before(pos),
        _ => Ok(()),
    }
}

/// Logs how writing the checkpoint at `at` went.
fn report(
    written: &Result<(), StoreError>,
    tidied: Option<Result<(), StoreError>>,
    at: store::LogPosition,
    started: Instant,
    froze_us: u128,
) {
    if let Err(e) = written {
        error!(error = %e, "Checkpoint failed; the log keeps growing until one succeeds.");
        return;
    }
    if let Some(Err(e)) = tidied {
        warn!(error = %e, "Old checkpoints or log segments could not be removed.");
    }
    info!(
        at = %at,
        took_ms = started.elapsed().as_millis(),
        pipeline_paused_us = froze_us,
        "Checkpoint written."
    );
}

/// Whether a checkpoint was written, and whether old files were then removed.
type Outcome = (Result<(), StoreError>, Option<Result<(), StoreError>>);

/// A checkpoint being written on its own thread.
struct Writing {
    /// Whether it was written, and whether old files were then removed.
    thread: std::thread::JoinHandle<Outcome>,
    at: store::LogPosition,
    started: Instant,
    /// How long freezing the state held up the pipeline.
    froze_us: u128,
}

impl Writing {
    fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }
}

/// The serialised form of [`Checkpoint`], by reference.
#[derive(Serialize)]
struct CheckpointRef<'a> {
    state: &'a State,
    alert_since: Vec<(String, i64)>,
}

impl Versioned for CheckpointRef<'_> {
    const FORMAT: u32 = Checkpoint::FORMAT;
}

/// The serialised form of [`Checkpoint`], frozen, for the checkpoint thread.
#[derive(Serialize)]
struct FrozenCheckpoint {
    state: FrozenState,
    alert_since: Vec<(String, i64)>,
}

impl Versioned for FrozenCheckpoint {
    const FORMAT: u32 = Checkpoint::FORMAT;
}

/// Applies one logged record exactly as live processing did.
pub fn replay(state: &mut State, record: &Record<'_>, limits: &DecodeLimits, prefix: &str) {
    match record {
        Record::Message {
            received_at_ns,
            topic,
            payload,
        } => {
            let msg = Message {
                topic,
                payload,
                received_at: Ts(*received_at_ns),
            };
            // Rejections were dead-lettered live; replay only counts them again.
            let _ = state.process(msg, prefix, limits);
        }
        Record::Tick { at_ns } => {
            state.apply(&Input::Tick, Ts(*at_ns));
        }
        // Alert transitions restore the engine's `since`, not the state.
        Record::Alert { .. } => {}
    }
}

#[cfg(test)]
// A failed unwrap is a failed test.
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::time::parse_rfc3339;

    /// The committed checkpoint of format 1.
    const GOLDEN: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/checkpoint-v1.bin"
    );
    const AT: store::LogPosition = store::LogPosition {
        segment: 3,
        offset: 4096,
    };

    fn ts(s: &str) -> Ts {
        parse_rfc3339(s).unwrap()
    }

    /// Every valid fixture applied at a fixed instant, with the default settings: a state
    /// that holds something of every kind (dossiers, meetings, endpoints, incidents,
    /// systems, counters, histograms, windows, the dedupe memory).
    fn golden_checkpoint() -> Checkpoint {
        let arrival = ts("2026-12-01T09:00:00+07:00");
        let params = Params::default();
        let limits = DecodeLimits {
            max_payload_bytes: 65_536,
            max_future_skew_secs: 300,
        };
        let mut state = State::new(params, ts("2026-11-24T07:00:00+07:00"));
        let fixtures = include_str!("../../tests/fixtures/valid.jsonl");
        for line in fixtures.lines().filter(|l| !l.trim().is_empty()) {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let payload = serde_json::to_vec(&v["payload"]).unwrap();
            let msg = Message {
                topic: v["topic"].as_str().unwrap(),
                payload: &payload,
                received_at: arrival,
            };
            let outcome = state.process(msg, "ioc/v1", &limits);
            assert!(
                matches!(outcome, crate::state::Processed::Applied(_)),
                "{outcome:?}"
            );
        }
        state.apply(&Input::Tick, arrival);
        Checkpoint {
            state,
            alert_since: vec![("feed_silent:vc".to_owned(), arrival.0)],
        }
    }

    fn written(dir: &Path, ck: &Checkpoint) -> Vec<u8> {
        store::write_checkpoint(dir, AT, ck).unwrap();
        std::fs::read(dir.join(format!("checkpoint-{}-{}.bin", AT.segment, AT.offset))).unwrap()
    }

    /// A full disk, then space again: not ready and nothing acknowledged meanwhile, then
    /// ready, every ack in receive order, and the log holds every record exactly once.
    #[test]
    fn a_failing_disk_is_retried_and_nothing_is_acknowledged_until_it_recovers() {
        let tmp = tempfile::tempdir().unwrap();
        let limits = DecodeLimits {
            max_payload_bytes: 65_536,
            max_future_skew_secs: 300,
        };
        let open = || {
            Journal::open(
                tmp.path(),
                Params::default(),
                &limits,
                "ioc/v1",
                Duration::from_secs(3600),
            )
            .unwrap()
        };
        let (mut journal, recovery, healthy) = open();
        assert!(*healthy.borrow() && !recovery.resumed);
        let mut state = recovery.state;
        let mut pkid = 0u16;
        let mut send = |journal: &mut Journal, state: &mut State, n: u16| {
            for _ in 0..n {
                pkid += 1;
                let msg = RawMessage {
                    topic: "ioc/v1/onestop/x".to_owned(),
                    payload: iocd_testkit::received(&format!("D{pkid}"))
                        .id(format!("r{pkid}"))
                        .bytes()
                        .into(),
                    received_at: Ts::now(),
                    ack: Some(Ack {
                        epoch: 1,
                        pkid,
                        qos: rumqttc::QoS::AtLeastOnce,
                    }),
                };
                journal.message(&msg);
                let _ = state.process((&msg).into(), "ioc/v1", &limits);
            }
            journal.commit();
        };
        send(&mut journal, &mut state, 10);
        assert_eq!(journal.unsent.len(), 10, "acknowledged once durable");
        journal.unsent.clear();

        journal.log.as_mut().unwrap().fail_writes = true;
        send(&mut journal, &mut state, 5);
        assert!(!*healthy.borrow(), "not ready");
        send(&mut journal, &mut state, 5);
        let tick = Ts::now();
        journal.tick(tick);
        state.apply(&Input::Tick, tick);
        // A retry that fails again backs off.
        journal.retry.as_mut().unwrap().at = Instant::now();
        journal.commit();
        let retry = journal.retry.as_ref().unwrap();
        assert_eq!((retry.failures, retry.delay), (1, 2 * RETRY_FIRST));
        journal.checkpoint(&state, Vec::new());
        assert!(store::oldest_checkpoint(tmp.path()).unwrap().is_none());
        assert!(journal.unsent.is_empty(), "nothing acknowledged meanwhile");
        assert_eq!(journal.uncommitted.len(), 10);

        // Space again: the next retry (not before its time) makes it all durable.
        journal.log.as_mut().unwrap().fail_writes = false;
        send(&mut journal, &mut state, 3);
        assert!(
            journal.unsent.is_empty() && !*healthy.borrow(),
            "waits for the retry"
        );
        journal.retry.as_mut().unwrap().at = Instant::now();
        journal.commit();
        assert!(*healthy.borrow(), "ready again");
        let acked: Vec<u16> = journal.unsent.iter().map(|a| a.pkid).collect();
        assert_eq!(acked, (11..=23).collect::<Vec<_>>(), "in receive order");
        drop(journal);

        let (_, recovery, _) = open();
        assert!(recovery.resumed);
        assert_eq!(
            recovery.replayed,
            23 + 1,
            "23 messages and the tick, once each"
        );
        let at = Ts::now();
        assert_eq!(
            format!("{:?}", recovery.state.view(at)),
            format!("{:?}", state.view(at))
        );
    }

    /// Fails when the encoding of `State` changed: see [`Checkpoint`]'s `Versioned` impl.
    /// `IOCD_BLESS=1` rewrites the file, for a new format only.
    #[test]
    fn the_committed_format_1_checkpoint_reads_back_as_the_same_state() {
        let tmp = tempfile::tempdir().unwrap();
        let fresh = golden_checkpoint();
        let bytes = written(tmp.path(), &fresh);
        if std::env::var_os("IOCD_BLESS").is_some() {
            std::fs::write(GOLDEN, &bytes).unwrap();
        }
        let golden = std::fs::read(GOLDEN).unwrap();
        let changed = "the checkpoint encoding of State changed: bump Checkpoint's FORMAT and \
                       add a migration or an upgrade note (docs/durability.md, \"Upgrades\")";
        // Maps serialise in hash order, so the bytes differ between runs; their number
        // does not, unless a field was added, removed or retyped.
        assert_eq!(bytes.len(), golden.len(), "{changed}");
        let other = tempfile::tempdir().unwrap();
        std::fs::write(
            other
                .path()
                .join(format!("checkpoint-{}-{}.bin", AT.segment, AT.offset)),
            &golden,
        )
        .unwrap();
        let (at, decoded, warnings) = store::read_latest_checkpoint::<Checkpoint>(other.path())
            .unwrap_or_else(|e| panic!("{changed}: {e}"))
            .unwrap();
        assert_eq!((at, warnings.len()), (AT, 0));
        // The same state: every figure it shows, at two instants.
        for now in ["2026-12-01T09:00:00+07:00", "2026-12-03T15:00:00+07:00"] {
            assert_eq!(
                format!("{:?}", decoded.state.view(ts(now))),
                format!("{:?}", fresh.state.view(ts(now))),
                "{changed}"
            );
        }
        assert_eq!(decoded.alert_since, fresh.alert_since, "{changed}");
    }
}
