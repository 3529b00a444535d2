//! The event log: numbered segment files of CRC-framed records (format and crash-safety
//! argument in [the module above](super)).
//!
//! Records are buffered by [`EventLog::append`] and written by [`EventLog::commit`], one
//! `write` and one `fdatasync` per commit (a commit that reaches the end of the zeros written
//! ahead, [`PREZERO_BYTES`], first writes the next ones; a commit that crosses into a new
//! segment also cuts and syncs the finished segment and syncs the directory). After an I/O
//! error during a commit (a full disk) the records stay buffered, and the next commit
//! retries: it first cuts the segment back to what the last successful commit made durable
//! (a partial write, or pages a failed `fsync` may have dropped, are not trusted) and writes
//! the buffered records again.

use std::fmt::{self, Write as _};
use std::fs::{self, File, OpenOptions};
use std::io;
use std::ops::Range;
use std::os::unix::fs::FileExt as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::{StoreError, io_error, sync_dir};

/// The size past which a new segment is started, unless set otherwise.
pub const DEFAULT_SEGMENT_BYTES: u64 = 64 << 20;

/// How far ahead of the records the segment being written is filled with zeros. Writing
/// over bytes the file already has leaves its size unchanged, so the `fdatasync` of most
/// commits flushes only data, not the inode (on ext4, no journal commit): 80 µs instead of
/// 140 µs on this project's test machine (`docs/durability.md`). One commit in about 4,000
/// events writes the next mebibyte of zeros, which takes about a millisecond more.
pub const PREZERO_BYTES: u64 = 1 << 20;

/// The largest record the log accepts (MQTT's largest packet is 256 MiB).
pub const MAX_RECORD_BYTES: usize = 256 << 20;

/// Length and CRC, before each record's body.
const FRAME_HEADER: usize = 8;
const LOG_DIR: &str = "log";
const SEGMENT_PREFIX: &str = "segment-";
const SEGMENT_SUFFIX: &str = ".log";

/// Where a record is: its segment's number and the byte offset of its frame in the
/// segment. Positions order records.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct LogPosition {
    /// The segment's number (`log/segment-<number>.log`).
    pub segment: u64,
    /// The byte offset in the segment.
    pub offset: u64,
}

impl fmt::Display for LogPosition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.segment, self.offset)
    }
}

/// What [`EventLog::open`] found to replay.
#[derive(Debug, Default)]
pub struct Recovered {
    /// Every record at or after the requested position, in log order.
    pub records: Vec<(LogPosition, Vec<u8>)>,
    /// Bytes cut off the log (a torn tail, damage, and any segment after damage).
    pub truncated_bytes: u64,
    /// What was cut or found missing, for the operator.
    pub warnings: Vec<String>,
}

/// An append-only log of opaque records in `dir/log/`, split into segment files.
pub struct EventLog {
    /// `<data-dir>/log`.
    dir: PathBuf,
    segment_bytes: u64,
    /// The segment being written, and its number.
    file: File,
    file_segment: u64,
    /// The position the next appended record gets, unless the segment is full.
    next: LogPosition,
    /// Buffered frames of segments before `next.segment`, oldest first.
    sealed: Vec<(u64, Vec<u8>)>,
    /// Buffered frames of segment `next.segment`.
    pending: Vec<u8>,
    /// The durable length of the segment being written (`file_segment`).
    file_len: u64,
    /// The length of that file: zeros from `file_len` to here ([`PREZERO_BYTES`]).
    zeroed_end: u64,
    /// How far ahead to write zeros ([`PREZERO_BYTES`] unless set otherwise).
    prezero_bytes: u64,
    /// A write failed: the next commit first cuts the segment back to `file_len`.
    repair: bool,
    /// Why the log refuses to commit for good (an oversized record).
    failed: Option<String>,
    /// Test hook: the next writes store half their bytes, then fail as a full disk does.
    #[cfg(test)]
    pub(crate) fail_writes: bool,
}

impl fmt::Debug for EventLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventLog")
            .field("dir", &self.dir)
            .field("end", &self.end())
            .field("pending_bytes", &self.pending_bytes())
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

impl EventLog {
    /// Opens (creating) the log in `dir/log/` and reads every record at or after `from`
    /// (`None`: from the start) for replay.
    ///
    /// A torn or corrupt frame (length cut short, length over [`MAX_RECORD_BYTES`], body
    /// cut short, CRC mismatch) ends the log: the segment is truncated there and any later
    /// segment removed, with a warning in [`Recovered::warnings`]. Only zeros from there to
    /// the end of the file are no frame at all (the zeros written ahead, [`PREZERO_BYTES`]):
    /// the segment's normal end, kept, without a warning. Segments before
    /// `from`'s are not read. When the log ends before `from`, new records go to a fresh
    /// segment after `from`, so that they always sort after it.
    ///
    /// # Errors
    ///
    /// [`StoreError::Io`] when the directory cannot be created or listed, a segment cannot
    /// be read, truncated or created (a read-only or missing data directory, a full disk).
    pub fn open(dir: &Path, from: Option<LogPosition>) -> Result<(Self, Recovered), StoreError> {
        let log_dir = dir.join(LOG_DIR);
        create_log_dir(dir, &log_dir)?;
        let segments = list_segments(&log_dir)?;
        let mut recovered = Recovered::default();
        let start = from.unwrap_or_default();
        let tail = replay(&log_dir, &segments, start, &mut recovered)?;
        let (file, next, zeroed_end) =
            open_tail(&log_dir, &segments, tail, from, &mut recovered.warnings)?;
        let log = Self {
            dir: log_dir,
            segment_bytes: DEFAULT_SEGMENT_BYTES,
            file,
            file_segment: next.segment,
            next,
            sealed: Vec::new(),
            pending: Vec::new(),
            file_len: next.offset,
            zeroed_end,
            prezero_bytes: PREZERO_BYTES,
            repair: false,
            failed: None,
            #[cfg(test)]
            fail_writes: false,
        };
        Ok((log, recovered))
    }

    /// Sets the size past which the next record starts a new segment (default
    /// [`DEFAULT_SEGMENT_BYTES`]). A segment holds at least one record, so it may end up
    /// larger by one commit's worth.
    pub fn set_segment_bytes(&mut self, bytes: u64) {
        self.segment_bytes = bytes;
    }

    /// Sets how far ahead of the records the segment is filled with zeros (default
    /// [`PREZERO_BYTES`]; 0: the file ends at its last record, as tests that read the
    /// bytes want).
    #[cfg(test)]
    pub(crate) fn set_prezero_bytes(&mut self, bytes: u64) {
        self.prezero_bytes = bytes;
    }

    /// Buffers one record (framed as length, CRC, body) and returns its position. Nothing
    /// is written before [`commit`](Self::commit).
    ///
    /// A record over [`MAX_RECORD_BYTES`] is not buffered: it makes the log fail, and the
    /// next `commit` returns [`StoreError::Failed`].
    pub fn append(&mut self, record: &[u8]) -> LogPosition {
        if self.segment_full() {
            self.roll();
        }
        let position = self.next;
        if record.len() > MAX_RECORD_BYTES {
            self.failed = Some(format!(
                "a record of {} bytes is over the limit of {MAX_RECORD_BYTES} bytes",
                record.len()
            ));
        }
        if self.failed.is_none() {
            push_frame(&mut self.pending, record);
        }
        self.next.offset += (FRAME_HEADER + record.len()) as u64;
        position
    }

    /// Writes the buffered records and fsyncs them: when it returns `Ok`, everything
    /// appended so far is durable.
    ///
    /// After an [`StoreError::Io`] the records stay buffered (later appends join them) and
    /// the next call retries: it cuts the segment back to its last durable length, so that
    /// nothing of the failed attempt remains, then writes them all again.
    ///
    /// # Errors
    ///
    /// [`StoreError::Io`] when a write, an fsync or the creation of a new segment fails (a
    /// full disk, a failing device): retry later. [`StoreError::Failed`], for good, after an
    /// oversized [`append`](Self::append).
    pub fn commit(&mut self) -> Result<(), StoreError> {
        if let Some(why) = &self.failed {
            return Err(StoreError::Failed(why.clone()));
        }
        let result =
            if self.repair { self.cut_back() } else { Ok(()) }.and_then(|()| self.write_pending());
        self.repair = result.is_err();
        result
    }

    /// Drops whatever a failed attempt left after the durable end of the segment being
    /// written, and syncs the directory (a segment created just before a failure).
    fn cut_back(&mut self) -> Result<(), StoreError> {
        self.cut_to_records()?;
        sync_dir(&self.dir)
    }

    /// Cuts the segment being written to its durable records (dropping the zeros ahead of
    /// them, and whatever a failed attempt left), and syncs its length.
    fn cut_to_records(&mut self) -> Result<(), StoreError> {
        let path = segment_path(&self.dir, self.file_segment);
        self.file
            .set_len(self.file_len)
            .and_then(|()| self.file.sync_data())
            .map_err(io_error("truncate", &path))?;
        self.zeroed_end = self.file_len;
        Ok(())
    }

    /// Bytes buffered and not yet committed (frames included).
    #[must_use]
    pub fn pending_bytes(&self) -> usize {
        let sealed: usize = self.sealed.iter().map(|(_, bytes)| bytes.len()).sum();
        sealed + self.pending.len()
    }

    /// Deletes every segment entirely before `pos`, that is numbered below `pos.segment`
    /// (call it once a checkpoint at `pos` is durable). The segment being written is kept.
    ///
    /// # Errors
    ///
    /// [`StoreError::Io`] when the directory cannot be listed or a segment not removed.
    pub fn trim_before(&mut self, pos: LogPosition) -> Result<(), StoreError> {
        self.trimmer().trim_before(pos)
    }

    /// What removes the segments written so far once they are no longer needed, from
    /// another thread (removing files of hundreds of MiB takes milliseconds).
    #[must_use]
    pub fn trimmer(&self) -> Trimmer {
        Trimmer {
            dir: self.dir.clone(),
            file_segment: self.file_segment,
        }
    }

    /// The position the next record will get.
    #[must_use]
    pub fn end(&self) -> LogPosition {
        if self.segment_full() {
            next_segment(self.next.segment)
        } else {
            self.next
        }
    }

    fn segment_full(&self) -> bool {
        self.next.offset > 0 && self.next.offset >= self.segment_bytes
    }

    fn roll(&mut self) {
        if !self.pending.is_empty() {
            let frames = std::mem::take(&mut self.pending);
            self.sealed.push((self.next.segment, frames));
        }
        self.next = next_segment(self.next.segment);
    }

    /// Writes the buffered frames, oldest first; what is not durable stays buffered.
    fn write_pending(&mut self) -> Result<(), StoreError> {
        let mut sealed = std::mem::take(&mut self.sealed).into_iter();
        while let Some((segment, frames)) = sealed.next() {
            if let Err(e) = self.write_to(segment, &frames) {
                self.sealed = std::iter::once((segment, frames)).chain(sealed).collect();
                return Err(e);
            }
        }
        if !self.pending.is_empty() {
            let mut frames = std::mem::take(&mut self.pending);
            let written = self.write_to(self.next.segment, &frames);
            if written.is_ok() {
                frames.clear();
            }
            self.pending = frames;
            written?;
        }
        Ok(())
    }

    /// Writes `frames` at the end of `segment` (created when it is not the current one),
    /// zeros ahead of them when the file ends before them, and syncs it; `file_len` then
    /// covers them. A segment left for a new one is first cut to its records.
    fn write_to(&mut self, segment: u64, frames: &[u8]) -> Result<(), StoreError> {
        let path = segment_path(&self.dir, segment);
        if segment != self.file_segment {
            if self.zeroed_end > self.file_len {
                self.cut_to_records()?;
            }
            // The file is ours from here on, even if syncing the directory fails: a retry
            // writes into it after `cut_back`, which syncs the directory again.
            self.file = OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
                .map_err(io_error("create", &path))?;
            self.file_segment = segment;
            self.file_len = 0;
            self.zeroed_end = 0;
            sync_dir(&self.dir)?;
        }
        let end = self.file_len + frames.len() as u64;
        #[cfg(test)]
        if self.fail_writes {
            let _ = self
                .file
                .write_all_at(&frames[..frames.len() / 2], self.file_len);
            return Err(io_error("write", &path)(io::Error::from_raw_os_error(
                28, // ENOSPC
            )));
        }
        let zeroed_end = if end > self.zeroed_end {
            // Zeros up to a mebibyte past the records (not past the segment's size, beyond
            // which the next commit starts a new file). When there is no room for them (a
            // nearly full disk), the records go alone, as they would without the zeros:
            // a disk with room for the records does not stop commits for want of the zeros.
            let target = end.max((end + self.prezero_bytes).min(self.segment_bytes));
            if write_zeros(&self.file, end..target).is_ok() {
                target
            } else {
                self.file
                    .set_len(self.zeroed_end.max(self.file_len))
                    .map_err(io_error("truncate", &path))?;
                self.zeroed_end
            }
        } else {
            self.zeroed_end
        };
        self.file
            .write_all_at(frames, self.file_len)
            .map_err(io_error("write", &path))?;
        self.file.sync_data().map_err(io_error("fsync", &path))?;
        self.file_len = end;
        self.zeroed_end = zeroed_end;
        Ok(())
    }
}

/// Writes zeros over `range` of `file`, a block at a time.
fn write_zeros(file: &File, range: Range<u64>) -> io::Result<()> {
    static ZEROS: [u8; 64 << 10] = [0; 64 << 10];
    let mut at = range.start;
    while at < range.end {
        let n = usize::try_from(range.end - at).map_or(ZEROS.len(), |n| n.min(ZEROS.len()));
        file.write_all_at(&ZEROS[..n], at)?;
        at += n as u64;
    }
    Ok(())
}

fn next_segment(segment: u64) -> LogPosition {
    LogPosition {
        segment: segment.saturating_add(1),
        offset: 0,
    }
}

// ---------------------------------------------------------------- frames

/// LevelDB's CRC mask: an all-zero frame (length 0, CRC 0) does not pass.
fn frame_crc(body: &[u8]) -> u32 {
    crc32fast::hash(body)
        .rotate_right(15)
        .wrapping_add(0xa282_ead8)
}

fn push_frame(out: &mut Vec<u8>, body: &[u8]) {
    // `append` checked the length against MAX_RECORD_BYTES, well below u32::MAX.
    let len = u32::try_from(body.len()).unwrap_or(u32::MAX);
    out.reserve(FRAME_HEADER + body.len());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&frame_crc(body).to_le_bytes());
    out.extend_from_slice(body);
}

/// The valid frames of a segment, where they end, and what stopped the reading early.
struct Scan {
    frames: Vec<(u64, Range<usize>)>,
    valid_end: usize,
    problem: Option<String>,
}

fn scan(bytes: &[u8]) -> Scan {
    let mut frames = Vec::new();
    let mut at = 0;
    let problem = loop {
        if at == bytes.len() {
            break None;
        }
        match parse_frame(&bytes[at..]) {
            Ok(len) => {
                let body = at + FRAME_HEADER..at + FRAME_HEADER + len;
                frames.push((at as u64, body.clone()));
                at = body.end;
            }
            // Zeros to the end are the part of the file written ahead of the records
            // (`PREZERO_BYTES`), or a crash's: an end, not damage.
            Err(_) if bytes[at..].iter().all(|&b| b == 0) => break None,
            Err(why) => break Some(why),
        }
    };
    Scan {
        frames,
        valid_end: at,
        problem,
    }
}

/// The body length of the frame at the start of `rest`, if the frame is whole and intact.
fn parse_frame(rest: &[u8]) -> Result<usize, String> {
    let Some((header, body)) = rest.split_first_chunk::<FRAME_HEADER>() else {
        return Err(format!("a frame header cut short ({} bytes)", rest.len()));
    };
    let [l0, l1, l2, l3, c0, c1, c2, c3] = *header;
    let len = u32::from_le_bytes([l0, l1, l2, l3]) as usize;
    if len > MAX_RECORD_BYTES {
        return Err(format!("a record length of {len} bytes, over the limit"));
    }
    let Some(body) = body.get(..len) else {
        return Err(format!(
            "a {len}-byte record cut short ({} bytes)",
            body.len()
        ));
    };
    if frame_crc(body) == u32::from_le_bytes([c0, c1, c2, c3]) {
        Ok(len)
    } else {
        Err(format!("a {len}-byte record whose CRC does not match"))
    }
}

// ---------------------------------------------------------------- segment files

fn segment_path(dir: &Path, segment: u64) -> PathBuf {
    dir.join(format!("{SEGMENT_PREFIX}{segment:020}{SEGMENT_SUFFIX}"))
}

fn parse_segment_name(name: &str) -> Option<u64> {
    let digits = name
        .strip_prefix(SEGMENT_PREFIX)?
        .strip_suffix(SEGMENT_SUFFIX)?;
    if digits.bytes().all(|b| b.is_ascii_digit()) {
        digits.parse().ok()
    } else {
        None
    }
}

/// The numbers of the segments in `dir`, in order.
/// Removes whole segments of a log before a position, never the segment being written when
/// it was made (see [`EventLog::trimmer`]).
#[derive(Clone, Debug)]
pub struct Trimmer {
    dir: PathBuf,
    file_segment: u64,
}

impl Trimmer {
    /// Removes the segments wholly before `pos`.
    ///
    /// # Errors
    ///
    /// [`StoreError::Io`] when the log directory cannot be listed or a segment not removed.
    pub fn trim_before(&self, pos: LogPosition) -> Result<(), StoreError> {
        let keep_from = pos.segment.min(self.file_segment);
        for n in list_segments(&self.dir)? {
            if n < keep_from {
                remove_segment(&self.dir, n)?;
            }
        }
        Ok(())
    }
}

fn list_segments(dir: &Path) -> Result<Vec<u64>, StoreError> {
    let mut numbers = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_error("list", dir))? {
        let entry = entry.map_err(io_error("list", dir))?;
        if let Some(n) = entry.file_name().to_str().and_then(parse_segment_name) {
            numbers.push(n);
        }
    }
    numbers.sort_unstable();
    Ok(numbers)
}

fn create_log_dir(data_dir: &Path, log_dir: &Path) -> Result<(), StoreError> {
    if log_dir.is_dir() {
        return Ok(());
    }
    fs::create_dir_all(log_dir).map_err(io_error("create directory", log_dir))?;
    sync_dir(data_dir)
}

/// Creates segment `n` (which must not exist) for writing, and syncs the directory.
fn create_segment(dir: &Path, n: u64) -> Result<File, StoreError> {
    let path = segment_path(dir, n);
    let file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&path)
        .map_err(io_error("create", &path))?;
    sync_dir(dir)?;
    Ok(file)
}

/// Removes segment `n`; returns its size (0 when it was already gone).
fn remove_segment(dir: &Path, n: u64) -> Result<u64, StoreError> {
    let path = segment_path(dir, n);
    let size = fs::metadata(&path).map_or(0, |m| m.len());
    match fs::remove_file(&path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_error("remove", &path)(e)),
        _ => Ok(size),
    }
}

// ---------------------------------------------------------------- opening

/// The last segment a replay read.
#[derive(Clone, Copy, Debug)]
struct Tail {
    segment: u64,
    /// Where its records end: the next record's offset.
    records_end: u64,
    /// The length of its file: more than `records_end` when zeros follow the records.
    file_len: u64,
}

/// Reads the segments from `start.segment` on, pushing the records at or after `start`,
/// and cuts the log at the first bad frame. Returns the last segment left from
/// `start.segment` on.
fn replay(
    dir: &Path,
    segments: &[u64],
    start: LogPosition,
    recovered: &mut Recovered,
) -> Result<Option<Tail>, StoreError> {
    let from_start: Vec<u64> = segments
        .iter()
        .copied()
        .filter(|&n| n >= start.segment)
        .collect();
    let mut expected = start.segment;
    let mut tail = None;
    for (i, &n) in from_start.iter().enumerate() {
        if n != expected {
            recovered.warnings.push(format!(
                "log segments {expected} to {} are missing: the records in them were not \
                 replayed",
                n - 1
            ));
        }
        expected = n.saturating_add(1);
        let path = segment_path(dir, n);
        let bytes = fs::read(&path).map_err(io_error("read", &path))?;
        let scan = scan(&bytes);
        collect(n, &bytes, &scan, start, recovered);
        // A cut leaves the file at the end of its records.
        let file_len = if scan.problem.is_some() {
            scan.valid_end
        } else {
            bytes.len()
        };
        tail = Some(Tail {
            segment: n,
            records_end: scan.valid_end as u64,
            file_len: file_len as u64,
        });
        if let Some(problem) = &scan.problem {
            let cut = Cut {
                segment: n,
                valid_end: scan.valid_end as u64,
                len: bytes.len() as u64,
                later: &from_start[i + 1..],
            };
            cut.apply(dir, problem, recovered)?;
            break;
        }
    }
    Ok(tail)
}

/// Pushes the records of segment `n` at or after `start`.
fn collect(n: u64, bytes: &[u8], scan: &Scan, start: LogPosition, recovered: &mut Recovered) {
    for (offset, body) in &scan.frames {
        let position = LogPosition {
            segment: n,
            offset: *offset,
        };
        if position >= start {
            recovered
                .records
                .push((position, bytes[body.clone()].to_vec()));
        }
    }
    let on_boundary = n != start.segment
        || start.offset == 0
        || start.offset >= scan.valid_end as u64
        || scan
            .frames
            .iter()
            .any(|(offset, _)| *offset == start.offset);
    if !on_boundary {
        recovered.warnings.push(format!(
            "replay was asked to start at {start}, which is not where a record starts"
        ));
    }
}

/// Cutting the log at a bad frame.
struct Cut<'a> {
    segment: u64,
    valid_end: u64,
    len: u64,
    /// The segments after it, removed since they cannot be replayed in order.
    later: &'a [u64],
}

impl Cut<'_> {
    /// Removes the later segments (newest first, so that a crash midway leaves a log that
    /// is cut at the same place next time), then truncates the segment.
    fn apply(
        &self,
        dir: &Path,
        problem: &str,
        recovered: &mut Recovered,
    ) -> Result<(), StoreError> {
        let mut removed = 0;
        for &n in self.later.iter().rev() {
            removed += remove_segment(dir, n)?;
        }
        if !self.later.is_empty() {
            sync_dir(dir)?;
        }
        let path = segment_path(dir, self.segment);
        let file = OpenOptions::new()
            .write(true)
            .open(&path)
            .map_err(io_error("open", &path))?;
        file.set_len(self.valid_end)
            .and_then(|()| file.sync_all())
            .map_err(io_error("truncate", &path))?;
        let cut = self.len - self.valid_end;
        recovered.truncated_bytes += cut + removed;
        recovered.warnings.push(self.warning(problem, cut, removed));
        Ok(())
    }

    fn warning(&self, problem: &str, cut: u64, removed: u64) -> String {
        let at = LogPosition {
            segment: self.segment,
            offset: self.valid_end,
        };
        let mut text = format!(
            "event log: {problem} at {at}; cut the {cut} bytes from there (a write \
             interrupted by a crash, never acknowledged, or damage)"
        );
        if let (Some(first), Some(last)) = (self.later.first(), self.later.last()) {
            let _ = write!(
                text,
                ", and removed segments {first} to {last} ({removed} bytes), which cannot be \
                 replayed in order after the gap"
            );
        }
        text
    }
}

/// Opens the segment to append to: the last one read when the log reaches `from`, else a
/// new one numbered so that its records sort at or after `from`. Returns it with the
/// position of the next record and the file's length.
fn open_tail(
    dir: &Path,
    segments: &[u64],
    tail: Option<Tail>,
    from: Option<LogPosition>,
    warnings: &mut Vec<String>,
) -> Result<(File, LogPosition, u64), StoreError> {
    let start = from.unwrap_or_default();
    if let Some(tail) = tail {
        let end = LogPosition {
            segment: tail.segment,
            offset: tail.records_end,
        };
        if end >= start {
            let path = segment_path(dir, tail.segment);
            let file = OpenOptions::new()
                .write(true)
                .open(&path)
                .map_err(io_error("open", &path))?;
            return Ok((file, end, tail.file_len));
        }
    }
    let segment = if start.offset == 0 {
        start.segment
    } else {
        start.segment.saturating_add(1)
    };
    // A checkpoint taken just as a segment filled points at the start of the next one.
    let rolled =
        start.offset == 0 && segments.last().map(|&n| n.saturating_add(1)) == Some(start.segment);
    if from.is_some() && !rolled {
        warnings.push(format!(
            "the event log ends before the checkpoint at {start}: records the checkpoint \
             already holds are missing from the log; new records go to segment {segment}"
        ));
    }
    let file = create_segment(dir, segment)?;
    Ok((file, LogPosition { segment, offset: 0 }, 0))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt as _;
    use std::time::Instant;

    use super::*;

    fn record(i: usize) -> Vec<u8> {
        format!("record {i} {}", "x".repeat(i % 50)).into_bytes()
    }

    fn segment_files(dir: &Path) -> Vec<u64> {
        list_segments(&dir.join(LOG_DIR)).unwrap()
    }

    fn last_segment_path(dir: &Path) -> PathBuf {
        let last = *segment_files(dir).last().unwrap();
        segment_path(&dir.join(LOG_DIR), last)
    }

    /// Writes `n` records in groups of 7 with small segments; returns their positions.
    /// Nothing is written ahead of the records, so that a segment's file is its frames
    /// (the tests below damage them byte by byte).
    fn write_records(dir: &Path, n: usize, segment_bytes: u64) -> Vec<LogPosition> {
        let (mut log, recovered) = EventLog::open(dir, None).unwrap();
        assert!(recovered.records.is_empty());
        log.set_segment_bytes(segment_bytes);
        log.set_prezero_bytes(0);
        let mut positions = Vec::new();
        for i in 0..n {
            positions.push(log.append(&record(i)));
            if i % 7 == 6 {
                log.commit().unwrap();
            }
        }
        log.commit().unwrap();
        assert_eq!(log.pending_bytes(), 0);
        positions
    }

    /// Opens a log in `dir` as the daemon does (zeros written ahead) and commits records 0
    /// to `n - 1` in one group.
    fn committed_log(dir: &Path, n: usize) -> EventLog {
        let (mut log, _) = EventLog::open(dir, None).unwrap();
        for i in 0..n {
            log.append(&record(i));
        }
        log.commit().unwrap();
        log
    }

    fn bodies(recovered: &Recovered) -> Vec<Vec<u8>> {
        recovered.records.iter().map(|(_, b)| b.clone()).collect()
    }

    #[test]
    fn records_survive_a_reopen_across_segments() {
        let tmp = tempfile::tempdir().unwrap();
        let positions = write_records(tmp.path(), 100, 300);
        assert!(segment_files(tmp.path()).len() > 5);
        assert!(positions.windows(2).all(|w| w[0] < w[1]));

        let (log, recovered) = EventLog::open(tmp.path(), None).unwrap();
        assert!(recovered.warnings.is_empty(), "{:?}", recovered.warnings);
        assert_eq!(recovered.truncated_bytes, 0);
        let got: Vec<LogPosition> = recovered.records.iter().map(|(p, _)| *p).collect();
        assert_eq!(got, positions);
        assert_eq!(bodies(&recovered), (0..100).map(record).collect::<Vec<_>>());
        assert!(log.end() > *positions.last().unwrap());
    }

    #[test]
    fn appends_after_a_reopen_continue_the_log() {
        let tmp = tempfile::tempdir().unwrap();
        write_records(tmp.path(), 10, 1 << 20);
        let (mut log, _) = EventLog::open(tmp.path(), None).unwrap();
        let end = log.end();
        assert_eq!(log.append(b"eleventh"), end);
        assert_eq!(log.pending_bytes(), FRAME_HEADER + 8);
        log.commit().unwrap();
        let (_, recovered) = EventLog::open(tmp.path(), None).unwrap();
        assert_eq!(recovered.records.len(), 11);
        assert_eq!(recovered.records[10], (end, b"eleventh".to_vec()));
    }

    #[test]
    fn uncommitted_records_are_not_on_disk() {
        let tmp = tempfile::tempdir().unwrap();
        let (mut log, _) = EventLog::open(tmp.path(), None).unwrap();
        log.append(b"one");
        log.commit().unwrap();
        log.append(b"two");
        drop(log);
        let (_, recovered) = EventLog::open(tmp.path(), None).unwrap();
        assert_eq!(bodies(&recovered), vec![b"one".to_vec()]);
    }

    #[test]
    fn replay_starts_at_the_given_position() {
        let tmp = tempfile::tempdir().unwrap();
        let positions = write_records(tmp.path(), 60, 250);
        for k in [0, 1, 17, 59] {
            let (_, recovered) = EventLog::open(tmp.path(), Some(positions[k])).unwrap();
            assert!(recovered.warnings.is_empty(), "{:?}", recovered.warnings);
            assert_eq!(recovered.records.len(), 60 - k);
            assert_eq!(recovered.records[0], (positions[k], record(k)));
        }
    }

    #[test]
    fn replay_from_the_end_returns_nothing_and_appends_follow_it() {
        let tmp = tempfile::tempdir().unwrap();
        write_records(tmp.path(), 20, 200);
        let (log, _) = EventLog::open(tmp.path(), None).unwrap();
        let end = log.end();
        drop(log);
        let (mut log, recovered) = EventLog::open(tmp.path(), Some(end)).unwrap();
        assert!(recovered.records.is_empty());
        assert!(recovered.warnings.is_empty(), "{:?}", recovered.warnings);
        assert!(log.append(b"next") >= end);
    }

    #[test]
    fn a_log_that_ends_before_the_checkpoint_continues_after_it() {
        let tmp = tempfile::tempdir().unwrap();
        write_records(tmp.path(), 3, 1 << 20);
        let beyond = LogPosition {
            segment: 5,
            offset: 10,
        };
        let (mut log, recovered) = EventLog::open(tmp.path(), Some(beyond)).unwrap();
        assert!(recovered.records.is_empty());
        assert_eq!(recovered.warnings.len(), 1, "{:?}", recovered.warnings);
        assert!(log.append(b"after") > beyond);
        log.commit().unwrap();
        let (_, recovered) = EventLog::open(tmp.path(), Some(beyond)).unwrap();
        assert_eq!(bodies(&recovered), vec![b"after".to_vec()]);
    }

    #[test]
    fn a_torn_tail_is_cut_with_a_warning_and_appends_work_after_it() {
        let last_body = record(9).len();
        // Cut inside the last frame's length, its CRC, and its body.
        for keep in [2, 6, FRAME_HEADER + last_body / 2] {
            let tmp = tempfile::tempdir().unwrap();
            let positions = write_records(tmp.path(), 10, 1 << 20);
            let path = last_segment_path(tmp.path());
            let full = fs::metadata(&path).unwrap().len();
            let cut_at = positions[9].offset + keep as u64;
            OpenOptions::new()
                .write(true)
                .open(&path)
                .unwrap()
                .set_len(cut_at)
                .unwrap();

            let (mut log, recovered) = EventLog::open(tmp.path(), None).unwrap();
            assert_eq!(recovered.records.len(), 9, "keep {keep}");
            assert_eq!(recovered.warnings.len(), 1, "{:?}", recovered.warnings);
            assert_eq!(recovered.truncated_bytes, keep as u64);
            assert!(full > cut_at);
            assert_eq!(fs::metadata(&path).unwrap().len(), positions[9].offset);
            assert_eq!(log.append(b"again"), positions[9]);
            log.commit().unwrap();

            let (_, recovered) = EventLog::open(tmp.path(), None).unwrap();
            assert!(recovered.warnings.is_empty(), "{:?}", recovered.warnings);
            assert_eq!(recovered.records[9], (positions[9], b"again".to_vec()));
        }
    }

    #[test]
    fn a_flipped_byte_in_the_last_record_cuts_it_with_a_warning() {
        let tmp = tempfile::tempdir().unwrap();
        let positions = write_records(tmp.path(), 10, 1 << 20);
        let path = last_segment_path(tmp.path());
        let mut bytes = fs::read(&path).unwrap();
        let last = bytes.len() - 3;
        bytes[last] ^= 0x40;
        fs::write(&path, &bytes).unwrap();

        let (_, recovered) = EventLog::open(tmp.path(), None).unwrap();
        assert_eq!(bodies(&recovered), (0..9).map(record).collect::<Vec<_>>());
        assert_eq!(recovered.warnings.len(), 1);
        assert!(
            recovered.warnings[0].contains("CRC"),
            "{:?}",
            recovered.warnings
        );
        assert_eq!(fs::metadata(&path).unwrap().len(), positions[9].offset);
    }

    #[test]
    fn a_log_cut_at_any_byte_recovers_the_records_before_the_cut() {
        let tmp = tempfile::tempdir().unwrap();
        let positions = write_records(tmp.path(), 6, 1 << 20);
        let path = last_segment_path(tmp.path());
        let whole = fs::read(&path).unwrap();
        let ends: Vec<u64> = positions[1..]
            .iter()
            .map(|p| p.offset)
            .chain([whole.len() as u64])
            .collect();
        for cut in 0..whole.len() as u64 {
            fs::write(&path, &whole[..cut as usize]).unwrap();
            let (_, recovered) = EventLog::open(tmp.path(), None).unwrap();
            let whole_records = ends.iter().filter(|&&end| end <= cut).count();
            let expected: Vec<Vec<u8>> = (0..whole_records).map(record).collect();
            assert_eq!(bodies(&recovered), expected, "cut at {cut}");
            let on_a_boundary = cut == 0 || ends.contains(&cut);
            assert_eq!(recovered.warnings.is_empty(), on_a_boundary, "cut at {cut}");
        }
    }

    #[test]
    fn a_flipped_byte_anywhere_recovers_the_records_before_it() {
        let tmp = tempfile::tempdir().unwrap();
        let positions = write_records(tmp.path(), 6, 1 << 20);
        let path = last_segment_path(tmp.path());
        let whole = fs::read(&path).unwrap();
        for at in 0..whole.len() {
            let mut bytes = whole.clone();
            bytes[at] ^= 0x10;
            fs::write(&path, &bytes).unwrap();
            let (_, recovered) = EventLog::open(tmp.path(), None).unwrap();
            // The flip damages the record it falls in; those before it are intact.
            let intact = positions.partition_point(|p| p.offset as usize <= at) - 1;
            let expected: Vec<Vec<u8>> = (0..intact).map(record).collect();
            assert_eq!(bodies(&recovered), expected, "flip at {at}");
            assert_eq!(recovered.warnings.len(), 1, "flip at {at}");
        }
    }

    #[test]
    fn zeros_after_the_last_record_end_the_log_without_a_warning() {
        let tmp = tempfile::tempdir().unwrap();
        write_records(tmp.path(), 4, 1 << 20);
        let path = last_segment_path(tmp.path());
        let mut bytes = fs::read(&path).unwrap();
        let records_end = bytes.len() as u64;
        bytes.extend_from_slice(&[0; 4096]);
        fs::write(&path, &bytes).unwrap();
        let (mut log, recovered) = EventLog::open(tmp.path(), None).unwrap();
        assert_eq!(recovered.records.len(), 4);
        assert!(recovered.warnings.is_empty(), "{:?}", recovered.warnings);
        assert_eq!(recovered.truncated_bytes, 0);
        // The next record goes over the zeros, right after the last one.
        assert_eq!(log.append(b"fifth").offset, records_end);
        log.commit().unwrap();
        let (_, recovered) = EventLog::open(tmp.path(), None).unwrap();
        assert_eq!(recovered.records.len(), 5);
    }

    #[test]
    fn the_segment_is_zeroed_ahead_of_its_records_and_reopens_as_it_was() {
        let tmp = tempfile::tempdir().unwrap();
        let mut log = committed_log(tmp.path(), 10);
        let path = last_segment_path(tmp.path());
        // One commit wrote the records and the zeros ahead of them; the next ones write
        // within those zeros and leave the file's size alone.
        assert_eq!(
            fs::metadata(&path).unwrap().len(),
            log.end().offset + PREZERO_BYTES
        );
        let size = fs::metadata(&path).unwrap().len();
        log.append(&record(10));
        log.commit().unwrap();
        assert_eq!(fs::metadata(&path).unwrap().len(), size);
        drop(log);

        let (mut log, recovered) = EventLog::open(tmp.path(), None).unwrap();
        assert!(recovered.warnings.is_empty(), "{:?}", recovered.warnings);
        assert_eq!(bodies(&recovered), (0..11).map(record).collect::<Vec<_>>());
        log.append(&record(11));
        log.commit().unwrap();
        assert_eq!(fs::metadata(&path).unwrap().len(), size);
        let (_, recovered) = EventLog::open(tmp.path(), None).unwrap();
        assert_eq!(bodies(&recovered), (0..12).map(record).collect::<Vec<_>>());
    }

    #[test]
    fn a_finished_segment_is_cut_to_its_records_and_zeros_never_pass_its_size() {
        let tmp = tempfile::tempdir().unwrap();
        let (mut log, _) = EventLog::open(tmp.path(), None).unwrap();
        log.set_segment_bytes(4096);
        let mut positions = Vec::new();
        for i in 0..400 {
            positions.push(log.append(&record(i)));
            if i % 7 == 6 {
                log.commit().unwrap();
            }
        }
        log.commit().unwrap();
        let segments = segment_files(tmp.path());
        assert!(segments.len() > 3);
        let log_dir = tmp.path().join(LOG_DIR);
        for &n in &segments[..segments.len() - 1] {
            let bytes = fs::read(segment_path(&log_dir, n)).unwrap();
            let scan = scan(&bytes);
            assert_eq!(
                scan.valid_end,
                bytes.len(),
                "segment {n} ends at its last record"
            );
            assert!(
                bytes.len() < 4096 + 7 * 100,
                "segment {n}: {} bytes",
                bytes.len()
            );
        }
        let last = fs::metadata(last_segment_path(tmp.path())).unwrap().len();
        assert_eq!(last, 4096.max(log.end().offset));
        let (_, recovered) = EventLog::open(tmp.path(), None).unwrap();
        assert!(recovered.warnings.is_empty(), "{:?}", recovered.warnings);
        let got: Vec<LogPosition> = recovered.records.iter().map(|(p, _)| *p).collect();
        assert_eq!(got, positions);
    }

    #[test]
    fn a_torn_write_over_the_zeros_is_cut_with_a_warning() {
        let tmp = tempfile::tempdir().unwrap();
        let log = committed_log(tmp.path(), 4);
        let end = log.end();
        drop(log);
        // A crash in the middle of the next commit: the start of a frame over the zeros.
        let path = last_segment_path(tmp.path());
        let mut frame = Vec::new();
        push_frame(&mut frame, &record(4));
        let file = OpenOptions::new().write(true).open(&path).unwrap();
        file.write_all_at(&frame[..frame.len() / 2], end.offset)
            .unwrap();
        drop(file);

        let (mut log, recovered) = EventLog::open(tmp.path(), None).unwrap();
        assert_eq!(bodies(&recovered), (0..4).map(record).collect::<Vec<_>>());
        assert_eq!(recovered.warnings.len(), 1, "{:?}", recovered.warnings);
        assert_eq!(fs::metadata(&path).unwrap().len(), end.offset);
        assert_eq!(log.append(&record(4)), end);
        log.commit().unwrap();
        let (_, recovered) = EventLog::open(tmp.path(), None).unwrap();
        assert!(recovered.warnings.is_empty(), "{:?}", recovered.warnings);
        assert_eq!(bodies(&recovered), (0..5).map(record).collect::<Vec<_>>());
    }

    #[test]
    fn damage_in_an_older_segment_cuts_the_log_there_and_drops_later_segments() {
        let tmp = tempfile::tempdir().unwrap();
        let positions = write_records(tmp.path(), 100, 300);
        let segments = segment_files(tmp.path());
        let damaged = segments[1];
        let first_in_damaged = positions.iter().position(|p| p.segment == damaged).unwrap();
        let victim = positions[first_in_damaged + 1];
        let path = segment_path(&tmp.path().join(LOG_DIR), damaged);
        let mut bytes = fs::read(&path).unwrap();
        bytes[victim.offset as usize + FRAME_HEADER] ^= 1;
        fs::write(&path, &bytes).unwrap();

        let (mut log, recovered) = EventLog::open(tmp.path(), None).unwrap();
        assert_eq!(recovered.records.len(), first_in_damaged + 1);
        assert_eq!(recovered.warnings.len(), 1, "{:?}", recovered.warnings);
        assert!(recovered.warnings[0].contains("removed segments"));
        assert_eq!(segment_files(tmp.path()), segments[..2].to_vec());
        assert_eq!(log.end(), victim);
        log.append(b"continues");
        log.commit().unwrap();
        let (_, recovered) = EventLog::open(tmp.path(), None).unwrap();
        assert!(recovered.warnings.is_empty(), "{:?}", recovered.warnings);
        assert_eq!(
            recovered.records.last().unwrap(),
            &(victim, b"continues".to_vec())
        );
    }

    #[test]
    fn trim_before_deletes_only_the_segments_entirely_before_the_position() {
        let tmp = tempfile::tempdir().unwrap();
        let positions = write_records(tmp.path(), 100, 300);
        let segments = segment_files(tmp.path());
        let (mut log, _) = EventLog::open(tmp.path(), None).unwrap();
        let pos = positions[50];
        log.trim_before(pos).unwrap();
        let kept = segment_files(tmp.path());
        assert_eq!(kept.first(), Some(&pos.segment));
        assert_eq!(
            kept,
            segments
                .iter()
                .copied()
                .filter(|&n| n >= pos.segment)
                .collect::<Vec<_>>()
        );

        let (_, recovered) = EventLog::open(tmp.path(), Some(pos)).unwrap();
        assert!(recovered.warnings.is_empty(), "{:?}", recovered.warnings);
        assert_eq!(recovered.records.len(), 50);
        // Trimming past the end keeps the segment being written.
        log.trim_before(LogPosition {
            segment: u64::MAX,
            offset: 0,
        })
        .unwrap();
        assert_eq!(segment_files(tmp.path()), vec![*segments.last().unwrap()]);
    }

    #[test]
    fn a_replay_from_a_trimmed_position_warns_of_the_gap() {
        let tmp = tempfile::tempdir().unwrap();
        let positions = write_records(tmp.path(), 100, 300);
        let (mut log, _) = EventLog::open(tmp.path(), None).unwrap();
        log.trim_before(positions[60]).unwrap();
        let (_, recovered) = EventLog::open(tmp.path(), Some(positions[10])).unwrap();
        assert!(
            recovered.warnings[0].contains("missing"),
            "{:?}",
            recovered.warnings
        );
        let (_, recovered) = EventLog::open(tmp.path(), None).unwrap();
        assert!(
            recovered.warnings[0].contains("missing"),
            "{:?}",
            recovered.warnings
        );
    }

    #[test]
    fn end_points_past_a_full_segment() {
        let tmp = tempfile::tempdir().unwrap();
        let (mut log, _) = EventLog::open(tmp.path(), None).unwrap();
        log.set_segment_bytes(10);
        log.append(b"0123456789");
        let end = log.end();
        assert_eq!(
            end,
            LogPosition {
                segment: 1,
                offset: 0
            }
        );
        assert_eq!(log.append(b"x"), end);
        log.commit().unwrap();
        assert_eq!(segment_files(tmp.path()), vec![0, 1]);
    }

    /// A data directory nothing can be created in, even by root (for whom chmod is no
    /// obstacle): a path under a regular file.
    fn unwritable_dir(tmp: &Path) -> PathBuf {
        let ro = tmp.join("ro");
        fs::create_dir(&ro).unwrap();
        fs::set_permissions(&ro, fs::Permissions::from_mode(0o555)).unwrap();
        if fs::write(ro.join("try"), b"").is_err() {
            return ro;
        }
        fs::set_permissions(&ro, fs::Permissions::from_mode(0o755)).unwrap();
        fs::write(tmp.join("file.txt"), b"").unwrap();
        tmp.join("file.txt").join("sub")
    }

    #[test]
    fn an_unwritable_data_directory_gives_errors_not_panics() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = unwritable_dir(tmp.path());
        let err = EventLog::open(&dir, None).unwrap_err();
        assert!(matches!(err, StoreError::Io { .. }), "{err}");
        assert!(super::super::probe_writable(&dir).is_err());
        assert!(super::super::probe_writable(tmp.path()).is_ok());
        let _ = fs::set_permissions(tmp.path().join("ro"), fs::Permissions::from_mode(0o755));
    }

    #[test]
    fn a_failed_commit_is_an_error_and_is_retried_once_the_cause_is_gone() {
        let tmp = tempfile::tempdir().unwrap();
        let (mut log, _) = EventLog::open(tmp.path(), None).unwrap();
        log.set_segment_bytes(8);
        log.append(b"first");
        log.commit().unwrap();
        // The next record starts a segment, which cannot be created: `log` is now a file.
        let log_dir = tmp.path().join(LOG_DIR);
        fs::remove_dir_all(&log_dir).unwrap();
        fs::write(&log_dir, b"").unwrap();
        log.append(b"second");
        assert!(matches!(log.commit(), Err(StoreError::Io { .. })));
        assert!(matches!(log.commit(), Err(StoreError::Io { .. })));
        assert!(EventLog::open(tmp.path(), None).is_err());
        // The cause removed (segment 0 went with the directory), the buffered record lands.
        fs::remove_file(&log_dir).unwrap();
        fs::create_dir(&log_dir).unwrap();
        log.commit().unwrap();
        let (_, recovered) = EventLog::open(tmp.path(), None).unwrap();
        let bodies: Vec<&[u8]> = recovered.records.iter().map(|(_, b)| &b[..]).collect();
        assert_eq!(bodies, [b"second"]);
    }

    #[test]
    fn partial_writes_of_failed_commits_are_cut_and_every_record_lands_once() {
        let tmp = tempfile::tempdir().unwrap();
        let (mut log, _) = EventLog::open(tmp.path(), None).unwrap();
        log.set_segment_bytes(200);
        let record = |i: usize| format!("record {i:03} {}", "x".repeat(i % 17)).into_bytes();
        let mut n = 0;
        for round in 0..6 {
            // Failing rounds write half their bytes, as a filling disk does; the records
            // appended meanwhile wait with the failed ones.
            log.fail_writes = round % 2 == 1;
            for _ in 0..7 {
                log.append(&record(n));
                n += 1;
                let committed = log.commit();
                assert_eq!(committed.is_err(), log.fail_writes, "{committed:?}");
            }
        }
        log.fail_writes = false;
        log.commit().unwrap();
        let (_, recovered) = EventLog::open(tmp.path(), None).unwrap();
        assert!(recovered.warnings.is_empty(), "{:?}", recovered.warnings);
        let bodies: Vec<Vec<u8>> = recovered.records.into_iter().map(|(_, b)| b).collect();
        assert_eq!(bodies, (0..n).map(record).collect::<Vec<_>>());
        assert!(
            segment_files(tmp.path()).len() > 2,
            "segments rolled meanwhile"
        );
    }

    #[test]
    fn an_oversized_record_fails_the_log() {
        let tmp = tempfile::tempdir().unwrap();
        let (mut log, _) = EventLog::open(tmp.path(), None).unwrap();
        log.append(&vec![0; MAX_RECORD_BYTES + 1]);
        assert_eq!(log.pending_bytes(), 0);
        assert!(matches!(log.commit(), Err(StoreError::Failed(_))));
    }

    /// Appends `records` ~400-byte message records, committing every `group`; prints and
    /// returns records/s.
    fn measure(records: usize, group: usize) -> f64 {
        use std::borrow::Cow;

        use super::super::Record;

        let tmp = tempfile::tempdir().unwrap();
        let payload = format!(
            concat!(
                r#"{{"schema":"ioc.v1","event_id":"{}","source":"onestop","#,
                r#""type":"dossier.received","occurred_at":"2025-03-01T08:00:00+07:00","#,
                r#""data":{{"dossier_id":"D-2025-000123","procedure":"1.004227","#,
                r#""agency":"so-tu-phap","level":"province","channel":"online","#,
                r#""due_at":"2025-03-08T17:00:00+07:00"}}}}"#,
            ),
            "e".repeat(83)
        );
        let mut buf = Vec::new();
        let (mut log, _) = EventLog::open(tmp.path(), None).unwrap();
        let started = Instant::now();
        for i in 0..records {
            buf.clear();
            Record::Message {
                received_at_ns: i as i64,
                topic: Cow::Borrowed("ioc/v1/onestop/dossier"),
                payload: Cow::Borrowed(payload.as_bytes()),
            }
            .encode(&mut buf);
            log.append(&buf);
            if i % group == group - 1 {
                log.commit().unwrap();
            }
        }
        log.commit().unwrap();
        let secs = started.elapsed().as_secs_f64();
        let log_dir = tmp.path().join(LOG_DIR);
        let on_disk: u64 = list_segments(&log_dir)
            .unwrap()
            .iter()
            .map(|&n| fs::metadata(segment_path(&log_dir, n)).unwrap().len())
            .sum();
        let commits = records.div_ceil(group);
        println!(
            "store_throughput: {records} records of {} bytes, groups of {group}: {secs:.2} s, \
             {:.0} records/s, {:.1} MB/s, {:.1} bytes on disk per record, {commits} commits \
             ({:.3} ms each)",
            buf.len(),
            records as f64 / secs,
            on_disk as f64 / secs / 1e6,
            on_disk as f64 / records as f64,
            secs * 1e3 / commits as f64,
        );
        records as f64 / secs
    }

    /// `cargo test --release --lib -- --ignored store_throughput --nocapture`
    #[test]
    #[ignore = "a measurement: writes ~400 MB"]
    fn store_throughput() {
        assert!(measure(1_000_000, 512) > 0.0);
        // For comparison: one fsync per record.
        assert!(measure(5_000, 1) > 0.0);
    }
}
