//! Durable storage in `--data-dir`: an append-only event log of every ingested MQTT
//! message, periodic checkpoints of the whole state, and the record codec.
//!
//! # Layout
//!
//! ```text
//! <data-dir>/
//!   log/segment-00000000000000000000.log   records, appended in groups
//!   log/segment-00000000000000000001.log   the next segment, once the previous one is full
//!   checkpoint-<segment>-<offset>.bin      the state after every record before that position
//!   iocd.lock                              flock'ed by the running daemon, holds its pid
//! ```
//!
//! # Log format
//!
//! A segment is a bare sequence of frames; a record's [`LogPosition`] is its segment
//! number and the byte offset of its frame in that segment, so positions order records.
//!
//! ```text
//! frame = length: u32 LE | crc: u32 LE | body: `length` bytes
//! crc   = mask(CRC-32/ISO-HDLC(body)),  mask(c) = rotate_right(c, 15) + 0xa282ead8 (mod 2³²)
//! ```
//!
//! The mask (LevelDB's) makes an all-zero frame invalid: plain CRC-32 of an empty body is
//! 0, so without it a run of zeros would read as empty records. The segment being written
//! is filled with zeros ahead of its records ([`PREZERO_BYTES`], a mebibyte at a time, as
//! databases pre-fill their write-ahead logs), so that the `fdatasync` of most commits
//! flushes data only, not the file's new size; zeros to the end of a file are therefore its
//! normal end, and a segment is cut to its records when the next one starts. A frame whose
//! length exceeds [`MAX_RECORD_BYTES`] or the bytes left in the file, or whose CRC does not
//! match, ends the readable log, unless it and everything after it are zeros. That holds for
//! every segment, not only the last: a crash between a roll and the cut of the finished
//! segment, or a log that continues after a checkpoint in a new segment, leaves zeros at the
//! end of one that is no longer the last; damage that zeroes the end of a segment reads the
//! same way (its records are lost without a warning, where other damage gets one).
//!
//! # Crash safety
//!
//! - **What is durable when [`EventLog::commit`] returns `Ok`**: every record appended
//!   before the call. Its bytes were written and `fdatasync`ed (which also makes the file's
//!   size durable when the commit extended it); a segment created by that call had its
//!   directory entry synced too.
//!   Only then may the MQTT messages behind those records be acknowledged to the broker.
//! - **Why truncating a torn tail is safe**: a crash during `commit` can leave a prefix of
//!   the group on disk, cut anywhere (a half-written frame over the zeros). Every record in that
//!   group belongs to a commit that never returned, so its message was never acknowledged
//!   and the broker (QoS 1, persistent session) redelivers it after the restart. Cutting
//!   the log at the last valid frame therefore loses nothing that was acknowledged. The
//!   records of that group that did reach the disk whole are replayed *and* redelivered:
//!   applying events must be idempotent (the state's dedupe memory sees to that).
//! - **Corruption before the tail** cannot come from a crash (those bytes were synced): it
//!   is media damage. Replay stops at it and the log is cut there, later segments
//!   included, because replaying what follows would apply events out of order with a hole
//!   in the middle. This is reported in [`Recovered::warnings`].
//! - **Checkpoints** are written to a temporary file, synced, renamed into place and the
//!   directory synced: a file under a checkpoint name is always complete, and its CRC
//!   catches later damage. A checkpoint at position `p` holds the state after applying
//!   exactly the records before `p`; at start the daemon loads the newest readable one and
//!   replays the log from `p`.
//!
//! # Using it
//!
//! 1. [`read_latest_checkpoint`], then [`EventLog::open`] from its position; apply the
//!    recovered records in order.
//! 2. Per group: [`EventLog::append`] each message, apply it, [`EventLog::commit`], then
//!    acknowledge the group's messages in receive order. `commit` blocks on `fdatasync`:
//!    call it from a blocking thread, not from an async task.
//! 3. Every so often: commit, take `p = log.end()` with the state holding exactly the
//!    records before `p`, [`write_checkpoint`] at `p`, [`prune_checkpoints`], then
//!    [`EventLog::trim_before`] the position of the **oldest** checkpoint kept, so that
//!    falling back to it (when the newest one is damaged) still finds its log.

mod checkpoint;
pub mod history;
pub mod journal;
mod lock;
mod log;
mod record;
pub mod writer;

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

pub use checkpoint::{
    Versioned, oldest_checkpoint, prune_checkpoints, read_latest_checkpoint, write_checkpoint,
};
pub use journal::{Checkpoint, Journal, Recovery};
pub use lock::{DataDirLock, LOCK_FILE, LockError};
pub use log::{
    DEFAULT_SEGMENT_BYTES, EventLog, LogPosition, MAX_RECORD_BYTES, PREZERO_BYTES, Recovered,
    Trimmer,
};
pub use record::Record;

/// Why a storage operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A file system operation failed.
    #[error("{op} {}: {source}", path.display())]
    Io {
        /// What was being done ("create", "fsync", …).
        op: &'static str,
        /// The file or directory concerned.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
    /// A checkpoint file is damaged (bad header, length or CRC).
    #[error("checkpoint {}: {reason}", path.display())]
    CorruptCheckpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A checkpoint is intact (its CRC matches) but does not decode as the requested type:
    /// the state's layout or the checkpoint format changed. Not skipped, since older
    /// checkpoints would fail the same way and starting empty would silently lose the state.
    #[error(
        "checkpoint {} is intact but cannot be read by this version of iocd: {reason}",
        path.display()
    )]
    IncompatibleCheckpoint {
        /// The checkpoint file.
        path: PathBuf,
        /// Why it cannot be decoded.
        reason: String,
    },
    /// Checkpoint files exist but none of them is readable.
    #[error(
        "none of the {count} checkpoints in {} is readable ({reasons}); move them aside to \
         start from the log alone",
        dir.display()
    )]
    NoReadableCheckpoint {
        /// The data directory.
        dir: PathBuf,
        /// How many checkpoint files were tried.
        count: usize,
        /// Why each was rejected, joined with "; ".
        reasons: String,
    },
    /// The state could not be serialised into a checkpoint.
    #[error("checkpoint {}: cannot serialise the state: {source}", path.display())]
    Encode {
        /// The checkpoint being written.
        path: PathBuf,
        /// The serialiser's error.
        source: postcard::Error,
    },
    /// A log record's bytes do not decode as a [`Record`].
    #[error("corrupt record: {0}")]
    CorruptRecord(&'static str),
    /// The log refuses further writes for good (an oversized record was appended); an I/O
    /// error during a commit is [`StoreError::Io`] instead, and the next commit retries.
    #[error("the event log failed earlier and must be reopened: {0}")]
    Failed(String),
}

/// Maps an I/O error to [`StoreError::Io`] for `path`.
fn io_error(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> StoreError {
    let path = path.to_path_buf();
    move |source| StoreError::Io { op, path, source }
}

/// Makes the entries of directory `dir` (files created, renamed or removed in it) durable.
fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error("fsync directory", dir))
}

/// Writes `bytes` as the file `path`, atomically and durably: to a temporary file beside
/// it, fsynced, renamed into place, and the directory fsynced (created if missing). After a
/// crash the file is the old one or the new one, whole. For small state files (a poller's
/// watermark); checkpoints stream their body the same way ([`write_checkpoint`]).
///
/// # Errors
///
/// [`StoreError::Io`] for the first step that failed.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    fs::create_dir_all(dir).map_err(io_error("create directory", dir))?;
    let tmp = path.with_extension("tmp");
    let mut file = File::create(&tmp).map_err(io_error("create", &tmp))?;
    file.write_all(bytes).map_err(io_error("write", &tmp))?;
    file.sync_all().map_err(io_error("fsync", &tmp))?;
    fs::rename(&tmp, path).map_err(io_error("rename", &tmp))?;
    sync_dir(dir)
}

/// Checks that `dir` is writable now: creates a probe file in it, writes and fsyncs it, and
/// removes it. Meant for `/readyz`; safe to call concurrently.
///
/// # Errors
///
/// [`StoreError::Io`] for the first step that failed (a missing or read-only directory, a
/// full disk, a failing device).
pub fn probe_writable(dir: &Path) -> Result<(), StoreError> {
    static PROBES: AtomicU64 = AtomicU64::new(0);
    let n = PROBES.fetch_add(1, Ordering::Relaxed);
    let path = dir.join(format!(".iocd-probe-{}-{n}", std::process::id()));
    let written = write_probe(&path);
    let removed = fs::remove_file(&path).map_err(io_error("remove", &path));
    written.and(removed)
}

fn write_probe(path: &Path) -> Result<(), StoreError> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
        .map_err(io_error("create", path))?;
    file.write_all(b"iocd").map_err(io_error("write", path))?;
    file.sync_all().map_err(io_error("fsync", path))
}
