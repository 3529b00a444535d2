//! The event log's disk work on a thread of its own, `iocd-log`: the pipeline hands it the
//! records of each batch and goes on applying the next one while they are written and
//! fsynced. Applying an event never waits for the disk; acknowledging it still does (the
//! thread reports each batch once durable, and only then are its acks sent).
//!
//! The thread appends every batch waiting when it wakes, then commits them with one fsync
//! (group commit across batches). When a commit fails (a full disk) the records stay
//! buffered in the log, the journal turns unhealthy, and the thread retries with a backoff
//! (`RETRY_FIRST` doubling up to `RETRY_MAX`) while it keeps taking batches; the first
//! commit that succeeds makes everything durable and healthy again.
//!
//! A checkpoint is started here too, so that its position is exact: the log's end right
//! after the batches handed over before it, written once those are durable.

use std::path::PathBuf;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tracing::{error, info, warn};

use super::{EventLog, LogPosition, StoreError, Trimmer};

/// The first retry of a failed commit waits this long; each failed retry doubles it.
pub const RETRY_FIRST: Duration = Duration::from_secs(1);
/// The longest wait between two retries: how late iocd notices that space came back.
pub const RETRY_MAX: Duration = Duration::from_secs(8);

/// Writes a checkpoint taken at a log position (with what removes the log before it); run
/// on a thread of its own.
pub type CheckpointFn = Box<dyn FnOnce(LogPosition, Trimmer) + Send>;

/// A checkpoint for the checkpoint thread: where, what trims the log, and what writes it.
type CheckpointJob = (LogPosition, Trimmer, CheckpointFn);

/// Work for the log thread.
pub enum Job {
    /// Batch `seq`: records, each as a `u32` little-endian length and its bytes.
    Append {
        /// Batch number, from 1, increasing.
        seq: u64,
        /// The framed records.
        records: Vec<u8>,
    },
    /// Write a checkpoint at the end of the batches handed over so far, once they are
    /// durable (not at all if they never become durable before the thread stops).
    Checkpoint(CheckpointFn),
    /// Test hook: the log's writes fail as on a full disk, or stop failing.
    #[cfg(test)]
    FailWrites(bool),
}

/// Batches handed over and not yet taken by the log thread. When they are all waiting (an
/// fsync is slow) the pipeline gathers the next ones into one, and waits for the thread
/// only beyond [`GATHER_MAX_BYTES`].
pub const QUEUED_BATCHES: usize = 64;

/// Records gathered on the pipeline while the log thread's queue is full, beyond which it
/// waits for the thread (backpressure: then as slow as the disk, as before the thread).
pub const GATHER_MAX_BYTES: usize = 16 << 20;

/// What the log thread tells the pipeline (the latest value is all that matters).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// Every batch up to this one is durable.
    pub durable: u64,
    /// Commits that failed so far.
    pub failures: u64,
}

/// Commits are failing: when to try again, and since when.
struct Retry {
    /// When to try again.
    at: Instant,
    /// The wait after this retry if it fails too.
    delay: Duration,
    since: Instant,
    /// Failed retries so far.
    failures: u64,
}

/// The log thread's state.
struct Writer {
    log: EventLog,
    dir: PathBuf,
    healthy: watch::Sender<bool>,
    progress: watch::Sender<Progress>,
    retry: Option<Retry>,
    /// The last batch appended, and the last one durable.
    appended: u64,
    durable: u64,
    /// Checkpoints waiting for their batches to be durable: `(batch, position, write)`.
    waiting: Vec<(u64, LogPosition, CheckpointFn)>,
    /// The checkpoint thread, started at the first checkpoint and kept: one thread for all,
    /// so one malloc arena for its buffers, not one per checkpoint.
    checkpointer: Option<(SyncSender<CheckpointJob>, JoinHandle<()>)>,
}

/// The log thread, seen from the pipeline.
pub struct LogThread {
    jobs: SyncSender<Job>,
    thread: JoinHandle<EventLog>,
}

impl LogThread {
    /// Starts the thread with `log`, whose batches up to `appended.0` were appended and up
    /// to `appended.1` are durable (a commit is retried at once if some are not); it reports
    /// to `reports` and keeps `healthy` true while commits succeed.
    ///
    /// # Errors
    ///
    /// When the operating system gives no thread (the log is then closed).
    pub fn start(
        log: EventLog,
        dir: PathBuf,
        (appended, durable): (u64, u64),
        healthy: watch::Sender<bool>,
        progress: watch::Sender<Progress>,
    ) -> std::io::Result<Self> {
        let (jobs, rx) = std::sync::mpsc::sync_channel(QUEUED_BATCHES);
        let writer = Writer {
            log,
            dir,
            healthy,
            progress,
            retry: (appended > durable).then(|| {
                let now = Instant::now();
                Retry {
                    at: now,
                    delay: RETRY_FIRST,
                    since: now,
                    failures: 0,
                }
            }),
            appended,
            durable,
            waiting: Vec::new(),
            checkpointer: None,
        };
        let thread = std::thread::Builder::new()
            .name("iocd-log".into())
            .spawn(move || writer.run(&rx))?;
        Ok(Self { jobs, thread })
    }

    /// Hands a job to the thread, waiting while [`QUEUED_BATCHES`] wait already (lost only
    /// if the thread is gone, which `stop` reports).
    pub fn send(&self, job: Job) {
        let _ = self.jobs.send(job);
    }

    /// Hands a job to the thread unless [`QUEUED_BATCHES`] wait already: then it is given
    /// back (a job for a thread that is gone is dropped).
    ///
    /// # Errors
    ///
    /// The job, when the queue is full.
    pub fn try_send(&self, job: Job) -> Result<(), Job> {
        match self.jobs.try_send(job) {
            Ok(()) | Err(std::sync::mpsc::TrySendError::Disconnected(_)) => Ok(()),
            Err(std::sync::mpsc::TrySendError::Full(job)) => Err(job),
        }
    }

    /// Lets the thread finish every job (a last commit attempt included) and takes the log
    /// back; `None` if the thread panicked.
    #[must_use]
    pub fn stop(self) -> Option<EventLog> {
        drop(self.jobs);
        self.thread.join().ok()
    }
}

impl Writer {
    fn run(mut self, jobs: &Receiver<Job>) -> EventLog {
        loop {
            let next = match &self.retry {
                None => jobs.recv().map_err(|_| RecvTimeoutError::Disconnected),
                Some(r) => jobs.recv_timeout(r.at.saturating_duration_since(Instant::now())),
            };
            match next {
                Ok(job) => {
                    self.take(job);
                    while let Ok(job) = jobs.try_recv() {
                        self.take(job);
                    }
                    self.commit(false);
                }
                Err(RecvTimeoutError::Timeout) => self.commit(false),
                Err(RecvTimeoutError::Disconnected) => {
                    self.commit(true);
                    break;
                }
            }
            self.start_checkpoints();
        }
        if let Some((jobs, thread)) = self.checkpointer.take() {
            drop(jobs);
            let _ = thread.join();
        }
        self.log
    }

    fn take(&mut self, job: Job) {
        match job {
            Job::Append { seq, records } => {
                let mut rest = records.as_slice();
                while let Some((len, tail)) = rest.split_first_chunk::<4>() {
                    let len = u32::from_le_bytes(*len) as usize;
                    let Some((record, tail)) = tail.split_at_checked(len) else {
                        break;
                    };
                    self.log.append(record);
                    rest = tail;
                }
                self.appended = seq;
            }
            Job::Checkpoint(write) => self.waiting.push((self.appended, self.log.end(), write)),
            #[cfg(test)]
            Job::FailWrites(fail) => self.log.fail_writes = fail,
        }
    }

    /// Commits what is appended (unless a retry is not due, or `now`), and reports.
    fn commit(&mut self, now: bool) {
        if let Some(retry) = &self.retry
            && !now
            && Instant::now() < retry.at
        {
            return;
        }
        if self.log.pending_bytes() == 0 && self.retry.is_none() {
            self.durable = self.appended;
            return;
        }
        if let Err(e) = self.log.commit() {
            self.failed(&e);
            self.progress.send_modify(|p| p.failures += 1);
            return;
        }
        if let Some(retry) = self.retry.take() {
            info!(
                dir = %self.dir.display(),
                failed_for_ms = retry.since.elapsed().as_millis(),
                retries = retry.failures,
                "Events are durable again; ready, acknowledging what waited."
            );
            self.healthy.send_replace(true);
        }
        self.durable = self.appended;
        let durable = self.durable;
        self.progress.send_modify(|p| p.durable = durable);
    }

    fn failed(&mut self, e: &StoreError) {
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

    /// Starts the waiting checkpoints whose batches are durable, one after the other.
    fn start_checkpoints(&mut self) {
        let durable = self.durable;
        let Some(k) = self.waiting.iter().rposition(|(seq, ..)| *seq <= durable) else {
            return;
        };
        // Only the newest of the ready ones is worth writing.
        let mut ready: Vec<_> = self.waiting.drain(..=k).collect();
        let Some((_, at, write)) = ready.pop() else {
            return;
        };
        if self.checkpointer.is_none() {
            let (jobs, rx) = std::sync::mpsc::sync_channel::<CheckpointJob>(1);
            match std::thread::Builder::new()
                .name("iocd-checkpoint".into())
                .spawn(move || {
                    for (at, trimmer, write) in rx {
                        write(at, trimmer);
                    }
                }) {
                Ok(thread) => self.checkpointer = Some((jobs, thread)),
                Err(e) => {
                    error!(error = %e, "No thread for the checkpoint; trying again later.");
                    return;
                }
            }
        }
        if let Some((jobs, _)) = &self.checkpointer {
            // The journal starts a checkpoint only once the one before has ended, so this
            // does not wait.
            let _ = jobs.send((at, self.log.trimmer(), write));
        }
    }
}
