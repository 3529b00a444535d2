//! The event log's disk work on a thread of its own, `iocd-log`: the pipeline hands it the
//! records of each batch and goes on applying the next one while they are written and
//! fsynced. Applying an event never waits for the disk; acknowledging it still does (the
//! thread reports each batch once durable, and only then are its acks sent).
//!
//! The thread appends every batch waiting when it wakes, waits briefly for more while they
//! keep coming ([`COMMIT_GATHER_IDLE`], at most [`COMMIT_GATHER_MAX`]; not after a gathering
//! that brought nothing, for [`COMMIT_GATHER_SKIP`] commits or more), then commits them with
//! one fsync (group commit across batches). When a commit fails (a full disk) the records stay
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

/// Before a commit the thread waits this long for another batch, again after each one that
/// comes, up to [`COMMIT_GATHER_MAX`]: a stream that keeps coming is committed in fewer, larger
/// fsyncs, with fewer wake-ups for acknowledgements (at QoS 1 flat out on two cores, 72,000
/// to 74,000 events/s instead of 66,000 to 68,000, at 57 % of a core instead of 68 %:
/// `docs/performance.md`).
pub const COMMIT_GATHER_IDLE: Duration = Duration::from_micros(200);

/// The longest wait for more batches before a commit: the most an acknowledgement is delayed
/// for the sake of gathering.
pub const COMMIT_GATHER_MAX: Duration = Duration::from_millis(2);

/// After a gathering that brought nothing past its first idle wait, the commits that follow
/// without gathering: this many after the first such one, twice as many after each next one
/// in a row, up to [`COMMIT_GATHER_SKIP_MAX`]; a gathering that brings more resets it. A slow
/// stream, or a broker whose window of unacknowledged messages is full, sends nothing while
/// the thread waits, and every message in flight waits with it: with a window of 20, a
/// gathering every 9 commits cost a fifth of the catch-up rate.
pub const COMMIT_GATHER_SKIP: u32 = 8;

/// The most commits skipped after gatherings that brought nothing ([`COMMIT_GATHER_SKIP`]).
pub const COMMIT_GATHER_SKIP_MAX: u32 = 512;

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
    /// Commits left that do not gather ([`COMMIT_GATHER_SKIP`]).
    skip_gathers: u32,
    /// How many commits the next gathering that brings nothing makes skip.
    skip_next: u32,
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
        let writer = Writer::new(log, dir, (appended, durable), healthy, progress);
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
    /// The thread's state for `log`, whose batches up to `appended` were appended and up to
    /// `durable` are durable (a commit is retried at once if some are not).
    fn new(
        log: EventLog,
        dir: PathBuf,
        (appended, durable): (u64, u64),
        healthy: watch::Sender<bool>,
        progress: watch::Sender<Progress>,
    ) -> Self {
        Writer {
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
            skip_gathers: 0,
            skip_next: COMMIT_GATHER_SKIP,
            checkpointer: None,
        }
    }

    fn run(mut self, jobs: &Receiver<Job>) -> EventLog {
        loop {
            let next = match &self.retry {
                None => jobs.recv().map_err(|_| RecvTimeoutError::Disconnected),
                Some(r) => jobs.recv_timeout(r.at.saturating_duration_since(Instant::now())),
            };
            match next {
                Ok(job) => {
                    self.take_with_waiting(job, jobs);
                    self.gather(jobs);
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

    /// Before a commit, waits a little for more batches, so that one fsync (and one round
    /// of acknowledgements) covers more of a fast stream ([`COMMIT_GATHER_IDLE`],
    /// [`COMMIT_GATHER_MAX`]).
    ///
    /// A gathering that brought nothing past its first idle wait was pure delay: the stream
    /// is slow, or the broker's window of unacknowledged messages is full (it sends nothing
    /// more until this commit's acks). Then the next commits do not gather
    /// ([`COMMIT_GATHER_SKIP`], doubling while it goes on).
    fn gather(&mut self, jobs: &Receiver<Job>) {
        if self.retry.is_some() {
            return;
        }
        if self.skip_gathers > 0 {
            self.skip_gathers -= 1;
            return;
        }
        let start = Instant::now();
        let deadline = start + COMMIT_GATHER_MAX;
        let mut last = start;
        loop {
            let wait = deadline
                .saturating_duration_since(Instant::now())
                .min(COMMIT_GATHER_IDLE);
            if wait.is_zero() {
                break;
            }
            match jobs.recv_timeout(wait) {
                Ok(job) => {
                    self.take_with_waiting(job, jobs);
                    last = Instant::now();
                }
                // Idle, or the pipeline is gone (`run` sees it next).
                Err(_) => break,
            }
        }
        if last.duration_since(start) < COMMIT_GATHER_IDLE {
            self.skip_gathers = self.skip_next;
            self.skip_next = (self.skip_next * 2).min(COMMIT_GATHER_SKIP_MAX);
        } else {
            self.skip_next = COMMIT_GATHER_SKIP;
        }
    }

    /// Takes `job` and every job already waiting behind it.
    fn take_with_waiting(&mut self, job: Job, jobs: &Receiver<Job>) {
        self.take(job);
        while let Ok(job) = jobs.try_recv() {
            self.take(job);
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn writer(dir: &std::path::Path) -> Writer {
        let (log, _) = EventLog::open(dir, None).unwrap();
        Writer::new(
            log,
            dir.to_path_buf(),
            (0, 0),
            watch::channel(true).0,
            watch::channel(Progress::default()).0,
        )
    }

    fn batch(seq: u64) -> Job {
        let mut records = Vec::new();
        records.extend_from_slice(&5u32.to_le_bytes());
        records.extend_from_slice(b"event");
        Job::Append { seq, records }
    }

    #[test]
    #[allow(
        clippy::disallowed_methods,
        reason = "the sender is a plain thread of the test, not the runtime's"
    )]
    fn a_gathering_ends_with_the_batches_it_took_for_one_commit() {
        let tmp = tempfile::tempdir().unwrap();
        let mut w = writer(tmp.path());
        let (jobs, rx) = std::sync::mpsc::sync_channel(QUEUED_BATCHES);
        // A batch every quarter of the idle wait, for five idle waits; the sender then stays
        // alive, so that the channel is not closed under the writer.
        let sender = std::thread::spawn(move || {
            for seq in 1..=20 {
                jobs.send(batch(seq)).unwrap();
                std::thread::sleep(COMMIT_GATHER_IDLE / 4);
            }
            jobs
        });
        let first = rx.recv().unwrap();
        w.take(first);
        w.gather(&rx);
        let jobs = sender.join().unwrap();
        // However the threads were scheduled (no timing is asserted), the gathering ends
        // with the batches it took in hand, in order, for one commit.
        assert!(w.appended >= 1);
        w.commit(false);
        assert_eq!(w.durable, w.appended);
        drop(jobs);
    }

    #[test]
    fn gatherings_that_bring_nothing_are_skipped_ever_longer() {
        let tmp = tempfile::tempdir().unwrap();
        let mut w = writer(tmp.path());
        let (jobs, rx) = std::sync::mpsc::sync_channel::<Job>(QUEUED_BATCHES);
        let mut skipped = Vec::new();
        for _ in 0..8 {
            w.gather(&rx);
            skipped.push(w.skip_gathers);
            // The skipped commits: no wait, nothing taken.
            jobs.send(batch(w.appended + 1)).unwrap();
            while w.skip_gathers > 0 {
                w.gather(&rx);
            }
            assert_eq!(w.appended, 0);
            let Ok(Job::Append { .. }) = rx.try_recv() else {
                panic!("the batch stays queued while gatherings are skipped");
            };
        }
        assert_eq!(skipped, [8, 16, 32, 64, 128, 256, 512, 512]);
        // A batch that is there at once is taken, and the gathering still brought nothing
        // past its first wait.
        jobs.send(batch(1)).unwrap();
        w.gather(&rx);
        assert_eq!(w.appended, 1);
        assert_eq!(w.skip_gathers, COMMIT_GATHER_SKIP_MAX);
        // No gathering while commits fail: the retry's timing rules.
        w.skip_gathers = 0;
        w.retry = Some(Retry {
            at: Instant::now(),
            delay: RETRY_FIRST,
            since: Instant::now(),
            failures: 0,
        });
        jobs.send(batch(2)).unwrap();
        w.gather(&rx);
        assert_eq!(w.appended, 1);
    }
}
