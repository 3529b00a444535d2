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
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tracing::{error, info, warn};

use crate::decode::{DecodeLimits, Reason, Source};
use crate::ingest::{Ack, AckError, Acker, RawMessage};
use crate::state::{FrozenState, Input, Message, Params, State};
use crate::store::writer::{GATHER_MAX_BYTES, Job, LogThread, Progress};
use crate::store::{self, EventLog, Record, StoreError, Trimmer, Versioned};
use crate::time::Ts;

/// Checkpoints kept; the log is trimmed before the oldest.
const CHECKPOINTS_KEPT: usize = 2;

/// What a checkpoint holds.
#[derive(Serialize, Deserialize)]
pub struct Checkpoint {
    /// The whole state, counters and dedupe memory included.
    pub state: State,
    /// When each firing alert started firing (`id`, Unix nanoseconds).
    pub alert_since: Vec<(String, i64)>,
}

/// Version 5: `State` with the facts, payments and ratings of contract 1.2 (format 4:
/// without them; format 3: without the operator actions either; format 2: without
/// the rejection reason `mapping_failed` either; format 1: iocd 0.1, without the period
/// tallies either; all read by [`crate::state::StateOlder`]). The golden tests below read
/// the committed `tests/fixtures/checkpoint-v{1,2,3,4,5}.bin`; when the newest fails, the encoding of `State`
/// changed: bump the number, keep the old files, and either decode the old format into the
/// new state (a migration, tested on its file) or document that the upgrade starts empty.
impl Versioned for Checkpoint {
    const FORMAT: u32 = 5;

    fn decode_older(format: u32, body: &[u8]) -> Option<Result<(Self, &[u8]), postcard::Error>> {
        #[derive(Deserialize)]
        struct Older<S> {
            state: S,
            alert_since: Vec<(String, i64)>,
        }
        fn read<const F: u32>(body: &[u8]) -> Result<(Checkpoint, &[u8]), postcard::Error>
        where
            for<'de> crate::state::StateOlder<F>: Deserialize<'de>,
        {
            postcard::take_from_bytes::<Older<crate::state::StateOlder<F>>>(body).map(
                |(f, rest)| {
                    let checkpoint = Checkpoint {
                        state: f.state.0,
                        alert_since: f.alert_since,
                    };
                    (checkpoint, rest)
                },
            )
        }
        match format {
            1 => Some(read::<1>(body)),
            2 => Some(read::<2>(body)),
            3 => Some(read::<3>(body)),
            4 => Some(read::<4>(body)),
            _ => None,
        }
    }
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

/// The event log as the pipeline uses it: records are gathered per batch and handed to the
/// log thread ([`crate::store::writer`]), which reports each batch once durable; the acks
/// of a batch go out then, in receive order.
pub struct Journal {
    dir: PathBuf,
    /// The log thread; `None` when the log could not be opened: nothing is acknowledged then.
    writer: Option<LogThread>,
    /// What the log thread made durable (the sender is kept to start it again).
    progress: watch::Receiver<Progress>,
    progress_tx: watch::Sender<Progress>,
    acker: Option<Acker>,
    /// The records of the batch being gathered, each as a `u32` LE length and its bytes.
    batch: Vec<u8>,
    /// The last batch handed over, and the last one reported durable.
    seq: u64,
    durable: u64,
    /// What waits for records appended (MQTT acks, HTTP answers), with their batch, in
    /// receive order.
    uncommitted: VecDeque<(u64, Release)>,
    /// Acks of durable records waiting for room in the MQTT request queue.
    unsent: VecDeque<Ack>,
    checkpoint_every: Duration,
    last_checkpoint: Instant,
    /// Set while a checkpoint is under way (cleared when it ends or is dropped unwritten).
    checkpointing: Arc<AtomicBool>,
    /// Whether events are being made durable; `/readyz` reads it.
    healthy: watch::Sender<bool>,
}

/// What is released once a batch is durable.
enum Release {
    /// An MQTT acknowledgement.
    Ack(Ack),
    /// Anything else (an HTTP answer), run then.
    Call(Box<dyn FnOnce() + Send>),
}

/// Clears the "checkpoint under way" flag when dropped.
struct Busy(Arc<AtomicBool>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
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
        let (progress_tx, progress) = watch::channel(Progress::default());
        let mut journal = Journal {
            dir: dir.to_path_buf(),
            writer: None,
            progress,
            progress_tx,
            acker: None,
            batch: Vec::new(),
            seq: 0,
            durable: 0,
            uncommitted: VecDeque::new(),
            unsent: VecDeque::new(),
            checkpoint_every,
            last_checkpoint: Instant::now(),
            checkpointing: Arc::new(AtomicBool::new(false)),
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
                let mut run = Replay::new(limits, prefix);
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
                        Ok(record) => run.record(&mut recovery.state, record),
                        Err(e) => warn!(error = %e, "Unreadable log record skipped."),
                    }
                    recovery.replayed += 1;
                }
                run.flush(&mut recovery.state);
                recovery.alert_since = since.into_iter().collect();
                recovery.resumed |= recovery.replayed > 0;
                journal.healthy.send_replace(true);
                journal.start_writer(log);
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

    /// Appends a message; its ack waits until its batch is durable.
    pub fn message(&mut self, msg: &RawMessage) {
        self.event(msg.into());
        if let Some(ack) = msg.ack {
            self.uncommitted
                .push_back((self.seq + 1, Release::Ack(ack)));
        }
    }

    /// Appends a message that has no acknowledgement of its own (an event a mapping built,
    /// an item pushed over HTTP), from its borrowed parts.
    pub fn event(&mut self, msg: Message<'_>) {
        self.append(&Record::Message {
            received_at_ns: msg.received_at.0,
            topic: msg.topic.into(),
            payload: msg.payload.into(),
        });
    }

    /// Appends a payload refused before it became contract events (mapping failed).
    pub fn refused(&mut self, source: Source, reason: Reason, at: Ts) {
        self.append(&Record::Refused {
            received_at_ns: at.0,
            source: source.index() as u8,
            reason: reason.index() as u8,
        });
    }

    /// Sends `ack` once everything appended so far is durable (a mapped payload's, after
    /// the events it became).
    pub fn ack_after(&mut self, ack: Ack) {
        self.release_after(Release::Ack(ack));
    }

    /// Runs `then` once everything appended so far is durable (an HTTP answer); never,
    /// when the log cannot be written.
    pub fn after_durable(&mut self, then: Box<dyn FnOnce() + Send>) {
        self.release_after(Release::Call(then));
    }

    /// Queues `release` behind the batch being gathered, or behind the last one handed
    /// over when nothing is being gathered; released by [`Journal::commit`] once durable.
    fn release_after(&mut self, release: Release) {
        let batch = if self.batch.is_empty() {
            self.seq
        } else {
            self.seq + 1
        };
        self.uncommitted.push_back((batch, release));
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
        if self.writer.is_none() {
            return;
        }
        // Straight into the batch, behind a length written once the record is.
        let at = self.batch.len();
        self.batch.extend_from_slice(&[0; 4]);
        record.encode(&mut self.batch);
        // Records are far below 4 GiB (the log refuses any over MAX_RECORD_BYTES).
        let len = u32::try_from(self.batch.len() - at - 4).unwrap_or(u32::MAX);
        self.batch[at..at + 4].copy_from_slice(&len.to_le_bytes());
    }

    /// Hands the batch gathered to the log thread (it is made durable there, without
    /// waiting here), and sends the acks of batches reported durable.
    ///
    /// While commits fail (a full disk) the journal is unhealthy (not ready) and nothing is
    /// acknowledged; the log thread retries with a backoff, and its first commit that
    /// succeeds makes everything durable, turns healthy again and acknowledges in receive
    /// order. What waits meanwhile is bounded by what the broker sends unacknowledged (its
    /// in-flight window per connection).
    pub fn commit(&mut self) {
        if self.batch.len() > GATHER_MAX_BYTES {
            self.hand_over();
        } else if let Some(writer) = &self.writer
            && !self.batch.is_empty()
        {
            let job = Job::Append {
                seq: self.seq + 1,
                records: std::mem::take(&mut self.batch),
            };
            match writer.try_send(job) {
                Ok(()) => self.seq += 1,
                // The queue is full: kept for the next commit, with what comes meanwhile.
                Err(Job::Append { records, .. }) => self.batch = records,
                Err(_) => {}
            }
        }
        self.poll();
    }

    /// Hands the batch gathered to the log thread, waiting for room if need be: what a
    /// checkpoint or a stop must follow.
    fn hand_over(&mut self) {
        if let Some(writer) = &self.writer
            && !self.batch.is_empty()
        {
            self.seq += 1;
            writer.send(Job::Append {
                seq: self.seq,
                records: std::mem::take(&mut self.batch),
            });
        }
    }

    /// Takes what the log thread made durable, and sends the acks it releases.
    fn poll(&mut self) {
        let durable = self.progress.borrow_and_update().durable;
        self.durable = self.durable.max(durable);
        while let Some(&(batch, _)) = self.uncommitted.front()
            && batch <= self.durable
        {
            match self.uncommitted.pop_front() {
                Some((_, Release::Ack(ack))) => self.unsent.push_back(ack),
                Some((_, Release::Call(then))) => then(),
                None => {}
            }
        }
        self.send_acks();
    }

    /// Waits until the log thread makes more durable and sends the acks it releases (for
    /// the pipeline's `select!`).
    pub async fn next_report(&mut self) {
        if self.progress.changed().await.is_ok() {
            self.poll();
        }
    }

    /// Hands the batch over and waits until it is durable or a commit fails; returns
    /// whether it is durable. Blocks the thread: for tests and benches, not the pipeline.
    pub fn sync(&mut self) -> bool {
        let failures = self.progress.borrow().failures;
        self.hand_over();
        self.poll();
        while self.durable < self.seq {
            if self.writer.is_none() || self.progress.borrow().failures > failures {
                return false;
            }
            std::thread::park_timeout(Duration::from_micros(200));
            self.poll();
        }
        true
    }

    /// Sends the durable acks, in order, until the request queue is full.
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
    /// copy of `state` (see [`State::freeze`]), so that the pipeline does not wait for it.
    pub fn maybe_checkpoint(
        &mut self,
        state: &State,
        alert_since: impl FnOnce() -> Vec<(String, i64)>,
    ) {
        if self.poll_checkpoint() && self.last_checkpoint.elapsed() >= self.checkpoint_every {
            self.start_checkpoint(state, alert_since());
        }
    }

    /// Whether no checkpoint is under way.
    pub fn poll_checkpoint(&mut self) -> bool {
        self.poll();
        !self.checkpointing.load(Ordering::Acquire)
    }

    /// Starts a checkpoint of `state` now (see [`Self::maybe_checkpoint`]): frozen here,
    /// positioned in the log after the records appended so far, written on its own thread
    /// once they are durable (not while commits fail), then the older checkpoint and the log
    /// before it are removed. Returns whether one was started (not while one is under way).
    pub fn start_checkpoint(&mut self, state: &State, alert_since: Vec<(String, i64)>) -> bool {
        if self.writer.is_none() || self.checkpointing.load(Ordering::Acquire) {
            return false;
        }
        self.last_checkpoint = Instant::now();
        // The checkpoint's position follows every record whose effect it holds.
        self.hand_over();
        let froze = Instant::now();
        let ck = FrozenCheckpoint {
            state: state.freeze(),
            alert_since,
        };
        let froze_us = froze.elapsed().as_micros();
        let dir = self.dir.clone();
        self.checkpointing.store(true, Ordering::Release);
        let busy = Busy(Arc::clone(&self.checkpointing));
        let write = move |at: store::LogPosition, trimmer: Trimmer| {
            let _busy = busy;
            let written = store::write_checkpoint(&dir, at, &ck);
            // Removing old files takes long too: here, not on the pipeline.
            let tidied = written.is_ok().then(|| tidy(&dir, &trimmer));
            report(&written, tidied, at, froze, froze_us);
        };
        if let Some(writer) = &self.writer {
            writer.send(Job::Checkpoint(Box::new(write)));
        }
        true
    }

    /// Writes a checkpoint now and waits for it (at shutdown): the log thread finishes its
    /// work first (the checkpoint under way included), and is started again after.
    pub fn checkpoint(&mut self, state: &State, alert_since: Vec<(String, i64)>) {
        let Some(log) = self.stop_writer() else {
            return;
        };
        self.last_checkpoint = Instant::now();
        // While commits fail the state holds records that are not durable yet.
        if log.pending_bytes() == 0 {
            let at = log.end();
            let started = Instant::now();
            let written =
                store::write_checkpoint(&self.dir, at, &CheckpointRef { state, alert_since });
            let tidied = written.is_ok().then(|| tidy(&self.dir, &log.trimmer()));
            report(&written, tidied, at, started, 0);
        }
        self.start_writer(log);
    }

    /// Stops the log thread after its last job and takes the log back; the acks it made
    /// durable are sent.
    fn stop_writer(&mut self) -> Option<EventLog> {
        self.hand_over();
        let log = self.writer.take()?.stop();
        if log.is_none() {
            error!("The event log's thread failed; nothing more is acknowledged.");
            self.healthy.send_replace(false);
        }
        self.poll();
        log
    }

    fn start_writer(&mut self, log: EventLog) {
        let started = LogThread::start(
            log,
            self.dir.clone(),
            (self.seq, self.durable),
            self.healthy.clone(),
            self.progress_tx.clone(),
        );
        match started {
            Ok(writer) => self.writer = Some(writer),
            Err(e) => {
                error!(error = %e, "No thread for the event log; not ready, nothing is acknowledged.");
                self.healthy.send_replace(false);
            }
        }
    }

    /// Test hook: the log's writes fail as on a full disk, or stop failing.
    #[cfg(test)]
    fn fail_writes(&self, fail: bool) {
        if let Some(writer) = &self.writer {
            writer.send(Job::FailWrites(fail));
        }
    }
}

impl Drop for Journal {
    /// Lets the log thread finish (a last commit attempt, the checkpoint under way).
    fn drop(&mut self) {
        let _ = self.stop_writer();
    }
}

/// Removes the checkpoints older than the kept ones, and the log before the oldest kept.
fn tidy(dir: &Path, trimmer: &Trimmer) -> Result<(), StoreError> {
    store::prune_checkpoints(dir, CHECKPOINTS_KEPT)?;
    match store::oldest_checkpoint(dir)? {
        Some(pos) => trimmer.trim_before(pos),
        None => Ok(()),
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

/// Replays logged records exactly as live processing applied them: messages a run at a time
/// ([`State::process_all`], as the pipeline takes them live), a run ending at another kind of
/// record or at [`REPLAY_RUN`] messages.
struct Replay<'r> {
    run: Vec<Record<'r>>,
    outcomes: Vec<crate::state::Processed>,
    limits: &'r DecodeLimits,
    prefix: &'r str,
}

/// Messages replayed together at most.
const REPLAY_RUN: usize = 512;

impl<'r> Replay<'r> {
    fn new(limits: &'r DecodeLimits, prefix: &'r str) -> Self {
        Self {
            run: Vec::with_capacity(REPLAY_RUN),
            outcomes: Vec::with_capacity(REPLAY_RUN),
            limits,
            prefix,
        }
    }

    /// Replays `record`: a message joins the run; any other record ends the run first.
    fn record(&mut self, state: &mut State, record: Record<'r>) {
        match record {
            Record::Message { .. } => {
                self.run.push(record);
                if self.run.len() >= REPLAY_RUN {
                    self.flush(state);
                }
            }
            Record::Tick { at_ns } => {
                self.flush(state);
                state.apply(&Input::Tick, Ts(at_ns));
            }
            Record::Refused {
                received_at_ns,
                source,
                reason,
            } => {
                self.flush(state);
                let source = Source::ALL
                    .into_iter()
                    .find(|s| s.index() == usize::from(source));
                let reason = Reason::from_index(usize::from(reason));
                if let (Some(source), Some(reason)) = (source, reason) {
                    state.apply(&Input::Rejected { source, reason }, Ts(received_at_ns));
                }
            }
            // Alert transitions restore the engine's `since`, not the state.
            Record::Alert { .. } => {}
        }
    }

    /// Replays the run, in order. Rejections were dead-lettered live; replay only counts
    /// them again.
    fn flush(&mut self, state: &mut State) {
        let messages = self.run.iter().filter_map(|record| match record {
            Record::Message {
                received_at_ns,
                topic,
                payload,
            } => Some(Message {
                topic,
                payload,
                received_at: Ts(*received_at_ns),
            }),
            _ => None,
        });
        state.process_all(messages, self.prefix, self.limits, &mut self.outcomes);
        self.outcomes.clear();
        self.run.clear();
    }
}

#[cfg(test)]
// A failed unwrap is a failed test.
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::time::parse_rfc3339;

    /// The committed checkpoint of the current format.
    const GOLDEN: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/checkpoint-v5.bin"
    );
    /// The committed checkpoint of format 4.
    const GOLDEN_V4: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/checkpoint-v4.bin"
    );
    /// The committed checkpoint of format 3.
    const GOLDEN_V3: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/checkpoint-v3.bin"
    );
    /// The committed checkpoint of format 2.
    const GOLDEN_V2: &str = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/checkpoint-v2.bin"
    );
    /// The committed checkpoint of format 1.
    const GOLDEN_V1: &str = concat!(
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
    /// systems, counters, histograms, windows, the dedupe memory, and the payments,
    /// ratings and facts of contract 1.2).
    fn golden_checkpoint() -> Checkpoint {
        golden(true)
    }

    /// The golden state as formats 1 to 4 hold it: without the events of contract 1.2.
    fn golden_before_1_2() -> Checkpoint {
        golden(false)
    }

    fn golden(with_1_2: bool) -> Checkpoint {
        let arrival = ts("2026-12-01T09:00:00+07:00");
        let params = Params::default();
        let limits = DecodeLimits {
            max_payload_bytes: 65_536,
            max_future_skew_secs: 300,
        };
        let mut state = State::new(params, ts("2026-11-24T07:00:00+07:00"));
        let mut fixtures = include_str!("../../tests/fixtures/valid.jsonl").to_owned();
        if with_1_2 {
            fixtures.push_str(include_str!("../../tests/fixtures/valid-1.2.jsonl"));
        }
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
        let action = r#"{"action_id":"9f1c","action":"acknowledge","at":"2026-12-01T08:55:00+07:00",
            "by":{"name":"Trực ban ca 1","role":"operator"},"alert_id":"feed_silent:vc","comment":"Đã báo nhà cung cấp"}"#;
        let msg = Message {
            topic: "ioc/v1/ops/actions",
            payload: action.as_bytes(),
            received_at: arrival,
        };
        let outcome = state.process(msg, "ioc/v1", &limits);
        assert!(
            matches!(
                outcome,
                crate::state::Processed::Applied(crate::state::Outcome::Applied)
            ),
            "{outcome:?}"
        );
        Checkpoint {
            state,
            alert_since: vec![("feed_silent:vc".to_owned(), arrival.0)],
        }
    }

    /// The golden state as a format without operator actions holds it.
    fn without_actions(mut ck: Checkpoint) -> Checkpoint {
        ck.state.ops = crate::state::ops::Ops::default();
        ck
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
        assert!(journal.sync());
        assert_eq!(journal.unsent.len(), 10, "acknowledged once durable");
        journal.unsent.clear();

        journal.fail_writes(true);
        send(&mut journal, &mut state, 5);
        assert!(!journal.sync(), "the commit failed");
        assert!(!*healthy.borrow(), "not ready");
        send(&mut journal, &mut state, 5);
        let tick = Ts::now();
        journal.tick(tick);
        state.apply(&Input::Tick, tick);
        // A checkpoint now would hold records that are not durable: none is written.
        journal.checkpoint(&state, Vec::new());
        assert!(store::oldest_checkpoint(tmp.path()).unwrap().is_none());
        assert!(journal.unsent.is_empty(), "nothing acknowledged meanwhile");
        assert_eq!(journal.uncommitted.len(), 10);

        // Space again: the log thread's retry makes it all durable (restarted by the
        // checkpoint above, it retries at once, then after RETRY_FIRST).
        journal.fail_writes(false);
        send(&mut journal, &mut state, 3);
        let until = Instant::now() + 4 * super::super::writer::RETRY_FIRST;
        while !(journal.unsent.len() == 13 && *healthy.borrow()) && Instant::now() < until {
            journal.commit();
            std::thread::yield_now();
        }
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

    /// A mapped input's log: its events as contract messages and a refusal as a `Refused`
    /// record. Replayed without any mapping, the state counts the same (the refusal included),
    /// and an answer waiting on the batch is released once it is durable, not before.
    #[test]
    fn refusals_replay_and_answers_wait_for_durability() {
        use crate::decode::{Reason, Source};
        use std::sync::atomic::AtomicBool;
        let tmp = tempfile::tempdir().unwrap();
        let limits = DecodeLimits::default();
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
        let (mut journal, recovery, _) = open();
        let mut state = recovery.state;
        let at = Ts::now();
        let msg = RawMessage {
            topic: "ioc/v1/onestop/mapped/national-sync".to_owned(),
            payload: iocd_testkit::received("M1").bytes().into(),
            received_at: at,
            ack: None,
        };
        journal.message(&msg);
        let _ = state.process((&msg).into(), "ioc/v1", &limits);
        journal.refused(Source::Onestop, Reason::MappingFailed, at);
        state.apply(
            &Input::Rejected {
                source: Source::Onestop,
                reason: Reason::MappingFailed,
            },
            at,
        );
        let answered = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&answered);
        journal.after_durable(Box::new(move || flag.store(true, Ordering::SeqCst)));
        assert!(
            !answered.load(Ordering::SeqCst),
            "not before the batch is durable"
        );
        assert!(journal.sync());
        assert!(answered.load(Ordering::SeqCst), "released once durable");
        // Nothing gathered: an answer waits only for what was handed over before it.
        let again = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&again);
        journal.after_durable(Box::new(move || flag.store(true, Ordering::SeqCst)));
        journal.commit();
        assert!(again.load(Ordering::SeqCst));
        drop(journal);

        let (_, recovery, _) = open();
        assert_eq!(recovery.replayed, 2);
        let c = &recovery.state.counters;
        assert_eq!(
            c.rejected[Source::Onestop.index()][Reason::MappingFailed.index()],
            1
        );
        assert_eq!(c.events_of(Source::Onestop, "received"), 1);
        assert_eq!(recovery.state.counters, state.counters);
    }

    /// A golden state without what formats before 5 cannot hold: the facts, payments and
    /// ratings of contract 1.2, the supplement counts, and the 766 scores (rebuilt on
    /// reading from the dossiers still held, which is checked apart).
    fn upgraded(mut ck: Checkpoint) -> Checkpoint {
        ck.state.dossiers.without_1_2();
        ck.state.periods.without_scores();
        ck
    }

    /// Reads the committed checkpoint `file` back (written by `IOCD_BLESS=1` for the
    /// current format).
    fn read_golden(file: &str) -> Checkpoint {
        let golden = std::fs::read(file).unwrap();
        let other = tempfile::tempdir().unwrap();
        std::fs::write(
            other
                .path()
                .join(format!("checkpoint-{}-{}.bin", AT.segment, AT.offset)),
            &golden,
        )
        .unwrap();
        let (at, decoded, warnings) = store::read_latest_checkpoint::<Checkpoint>(other.path())
            .unwrap_or_else(|e| panic!("{CHANGED}: {e}"))
            .unwrap();
        assert_eq!((at, warnings.len()), (AT, 0));
        decoded
    }

    const CHANGED: &str = "the checkpoint encoding of State changed: bump Checkpoint's FORMAT \
                           and add a migration or an upgrade note (docs/durability.md, \
                           \"Upgrades\")";

    /// Fails when the encoding of `State` changed: see [`Checkpoint`]'s `Versioned` impl.
    /// `IOCD_BLESS=1` rewrites the file, for a new format only.
    #[test]
    fn the_committed_format_5_checkpoint_reads_back_as_the_same_state() {
        let tmp = tempfile::tempdir().unwrap();
        let fresh = golden_checkpoint();
        let bytes = written(tmp.path(), &fresh);
        if std::env::var_os("IOCD_BLESS").is_some() {
            std::fs::write(GOLDEN, &bytes).unwrap();
        }
        // Maps serialise in hash order, so the bytes differ between runs; their number
        // does not, unless a field was added, removed or retyped.
        assert_eq!(
            bytes.len(),
            std::fs::read(GOLDEN).unwrap().len(),
            "{CHANGED}"
        );
        let decoded = read_golden(GOLDEN);
        assert_eq!(decoded.state, fresh.state, "{CHANGED}");
        // The same state: every figure it shows, at two instants.
        for now in ["2026-12-01T09:00:00+07:00", "2026-12-03T15:00:00+07:00"] {
            assert_eq!(
                format!("{:?}", decoded.state.view(ts(now))),
                format!("{:?}", fresh.state.view(ts(now))),
                "{CHANGED}"
            );
        }
        assert_eq!(decoded.alert_since, fresh.alert_since, "{CHANGED}");
        assert_eq!(decoded.state.ops.len(), 1, "{CHANGED}");
        let rated = decoded
            .state
            .dossiers
            .get("000.00.19.H42-261124-0102")
            .unwrap();
        assert_eq!(
            rated.rating(),
            Some((crate::decode::Rating::Unsatisfied, Some(true))),
            "{CHANGED}"
        );
    }

    /// A checkpoint of format 4 (before contract 1.2) is upgraded to the same state: no
    /// payment, rating or fact of 1.2 on any dossier, its one-stop heartbeats counted in
    /// their new place.
    #[test]
    fn a_format_4_checkpoint_is_upgraded_to_the_same_state() {
        let fresh = upgraded(golden_before_1_2());
        let decoded = upgraded(read_golden(GOLDEN_V4));
        assert_eq!(decoded.state, fresh.state);
        assert_eq!(decoded.state.ops.len(), 1);
        assert_eq!(
            decoded
                .state
                .counters
                .events_of(crate::decode::Source::Onestop, "heartbeat"),
            1
        );
        assert_eq!(decoded.alert_since, fresh.alert_since);
        // The 766 scores are rebuilt from the dossiers held: the one still held counts.
        let decoded = read_golden(GOLDEN_V4);
        let month = crate::state::periods::Period::Month(2026 * 12 + 10);
        let held = decoded.state.dossiers.iter().next().unwrap().agency();
        assert_eq!(decoded.state.periods.score_of(held, month).received, 1);
    }

    /// A checkpoint of format 3 (before the operator actions) is upgraded to the same state
    /// with no action.
    #[test]
    fn a_format_3_checkpoint_is_upgraded_to_the_same_state() {
        let fresh = upgraded(without_actions(golden_before_1_2()));
        let decoded = upgraded(read_golden(GOLDEN_V3));
        assert_eq!(decoded.state, fresh.state);
        assert!(decoded.state.ops.is_empty());
        assert_eq!(decoded.alert_since, fresh.alert_since);
    }

    /// A checkpoint of format 2 (before `mapping_failed`) is upgraded to the same state,
    /// with no mapping failure counted.
    #[test]
    fn a_format_2_checkpoint_is_upgraded_to_the_same_state() {
        let fresh = upgraded(without_actions(golden_before_1_2()));
        let decoded = upgraded(read_golden(GOLDEN_V2));
        assert_eq!(decoded.state, fresh.state);
        assert_eq!(decoded.alert_since, fresh.alert_since);
    }

    /// A checkpoint of format 1 (iocd 0.1, before the period tallies) is upgraded: the
    /// same state, its tallies rebuilt from the dossiers it holds (those forgotten before
    /// the upgrade are not in them). The sectors are unknown: format 1 kept the procedure
    /// without its sector.
    #[test]
    fn a_format_1_checkpoint_is_upgraded_with_its_tallies_rebuilt() {
        let fresh = golden_before_1_2();
        let decoded = read_golden(GOLDEN_V1);
        let mut rebuilt = crate::state::periods::Periods::default();
        for d in fresh.state.dossiers.iter() {
            rebuilt.moved(&fresh.state.params().cal, None, Some(&d.contribution()));
        }
        assert!(!rebuilt.is_empty());
        assert_eq!(decoded.state.periods, rebuilt);
        assert_eq!(decoded.state.counters, fresh.state.counters);
        assert_eq!(decoded.state.dossiers.len(), fresh.state.dossiers.len());
        let without_sectors = |state: &State, now: &str| {
            let mut view = state.view(ts(now));
            view.sectors = Vec::new();
            view.agency_periods = Vec::new();
            view.agency_scores = Vec::new();
            format!("{view:?}")
        };
        for now in ["2026-12-01T09:00:00+07:00", "2026-12-03T15:00:00+07:00"] {
            assert_eq!(
                without_sectors(&decoded.state, now),
                without_sectors(&fresh.state, now)
            );
        }
        assert_eq!(decoded.alert_since, fresh.alert_since);
    }
}
