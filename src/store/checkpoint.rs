//! Checkpoints: the whole state at a log position, in
//! `<data-dir>/checkpoint-<segment>-<offset>.bin`.
//!
//! ```text
//! header (40 bytes) = magic "IOCDCKP1" | format version of the body: u32 LE | CRC-32 of the body: u32 LE
//!                   | body length: u64 LE | segment: u64 LE | offset: u64 LE
//! body              = the value in postcard (serde, compact, not self-describing)
//! ```
//!
//! The body's format version is the stored type's [`Versioned::FORMAT`]: postcard is not
//! self-describing, so any change to the stored type's fields changes the format, and the
//! type's owner bumps the number (a golden test of the committed checkpoint file fails
//! until it does).
//!
//! The position is both in the name and in the header, and must agree. A file that is too
//! short, has another magic, a wrong length, position or CRC is *corrupt*: it is skipped for
//! an older one. A file that is intact but does not decode (the state's layout changed, or
//! a newer format version) is *incompatible*: an error, since an older checkpoint would fail
//! the same way and starting empty would silently lose the state.

use std::fs::{self, File};
use std::io::{self, BufWriter, Seek as _, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{LogPosition, StoreError, io_error, sync_dir};

const MAGIC: &[u8; 8] = b"IOCDCKP1";
const HEADER_BYTES: usize = 40;
const PREFIX: &str = "checkpoint-";
const SUFFIX: &str = ".bin";
const TMP_SUFFIX: &str = ".tmp";

/// A value kept in checkpoints, with the version of its encoding.
pub trait Versioned: Sized {
    /// Written in the header and checked on reading. Bump it whenever the encoding of the
    /// type changes (a field added, removed, reordered or retyped anywhere inside it).
    const FORMAT: u32;

    /// Decodes a body written in an older `format` (a migration), or `None` when that
    /// format cannot be read. None can, unless the type says otherwise.
    ///
    /// # Errors
    ///
    /// postcard's, when the body does not decode in that format.
    #[must_use]
    fn decode_older(format: u32, body: &[u8]) -> Option<Result<(Self, &[u8]), postcard::Error>> {
        let _ = (format, body);
        None
    }
}

/// Writes `value` as the checkpoint at `at` in `dir`, atomically: to a temporary file,
/// fsynced, renamed into place, and the directory fsynced. When it returns `Ok` the
/// checkpoint is durable; after a crash either it is there whole or it is not there.
///
/// # Errors
///
/// [`StoreError::Io`] when a file system step fails (the temporary file is then removed),
/// [`StoreError::Encode`] when `value`'s `Serialize` fails.
pub fn write_checkpoint<T: Serialize + Versioned>(
    dir: &Path,
    at: LogPosition,
    value: &T,
) -> Result<(), StoreError> {
    fs::create_dir_all(dir).map_err(io_error("create directory", dir))?;
    let path = checkpoint_path(dir, at);
    let tmp = tmp_path(&path);
    let written = write_file(&tmp, &path, at, value)
        .and_then(|()| fs::rename(&tmp, &path).map_err(io_error("rename", &tmp)))
        .and_then(|()| sync_dir(dir));
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
}

/// The newest readable checkpoint in `dir`, with warnings about the newer ones that were
/// corrupt and skipped; `None` when `dir` holds no checkpoint.
///
/// # Errors
///
/// [`StoreError::IncompatibleCheckpoint`] when the newest intact checkpoint does not decode
/// as `T`; [`StoreError::NoReadableCheckpoint`] when checkpoints exist but all are corrupt;
/// [`StoreError::Io`] when `dir` cannot be listed or a checkpoint read.
pub fn read_latest_checkpoint<T: DeserializeOwned + Versioned>(
    dir: &Path,
) -> Result<Option<(LogPosition, T, Vec<String>)>, StoreError> {
    let found = list_checkpoints(dir)?;
    let mut warnings = Vec::new();
    for (at, path) in found.iter().rev() {
        match read_checkpoint(path, *at) {
            Ok(value) => return Ok(Some((*at, value, warnings))),
            Err(e @ StoreError::CorruptCheckpoint { .. }) => {
                warnings.push(format!("{e}; skipped for an older checkpoint"));
            }
            Err(e) => return Err(e),
        }
    }
    if found.is_empty() {
        return Ok(None);
    }
    Err(StoreError::NoReadableCheckpoint {
        dir: dir.to_path_buf(),
        count: found.len(),
        reasons: warnings.join("; "),
    })
}

/// Keeps only the newest `keep` checkpoints in `dir`, and removes temporary files left by
/// interrupted writes. Do not run it while a [`write_checkpoint`] to `dir` is under way.
///
/// # Errors
///
/// [`StoreError::Io`] when `dir` cannot be listed or a file not removed.
pub fn prune_checkpoints(dir: &Path, keep: usize) -> Result<(), StoreError> {
    let found = list_checkpoints(dir)?;
    let old = found.len().saturating_sub(keep);
    for (_, path) in &found[..old] {
        remove(path)?;
    }
    for path in list_names(dir)? {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with(PREFIX) && name.ends_with(TMP_SUFFIX) {
            remove(&path)?;
        }
    }
    Ok(())
}

// ---------------------------------------------------------------- header

struct Header {
    version: u32,
    crc: u32,
    body_len: u64,
    at: LogPosition,
}

impl Header {
    fn encode(&self) -> [u8; HEADER_BYTES] {
        let mut out = [0; HEADER_BYTES];
        out[..8].copy_from_slice(MAGIC);
        out[8..12].copy_from_slice(&self.version.to_le_bytes());
        out[12..16].copy_from_slice(&self.crc.to_le_bytes());
        out[16..24].copy_from_slice(&self.body_len.to_le_bytes());
        out[24..32].copy_from_slice(&self.at.segment.to_le_bytes());
        out[32..40].copy_from_slice(&self.at.offset.to_le_bytes());
        out
    }

    /// The header at the start of `bytes`, or why there is none.
    fn decode(bytes: &[u8]) -> Result<Self, &'static str> {
        let (header, _) = bytes
            .split_first_chunk::<HEADER_BYTES>()
            .ok_or("shorter than its header")?;
        if &header[..8] != MAGIC {
            return Err("not a checkpoint (wrong magic)");
        }
        let u32_at = |i: usize| header[i..i + 4].try_into().map_or(0, u32::from_le_bytes);
        let u64_at = |i: usize| header[i..i + 8].try_into().map_or(0, u64::from_le_bytes);
        Ok(Self {
            version: u32_at(8),
            crc: u32_at(12),
            body_len: u64_at(16),
            at: LogPosition {
                segment: u64_at(24),
                offset: u64_at(32),
            },
        })
    }
}

// ---------------------------------------------------------------- writing

/// Writes the checkpoint to `tmp`: a blank header, the body streamed through a CRC, then
/// the real header, and fsyncs it.
fn write_file<T: Serialize + Versioned>(
    tmp: &Path,
    path: &Path,
    at: LogPosition,
    value: &T,
) -> Result<(), StoreError> {
    let mut file = File::create(tmp).map_err(io_error("create", tmp))?;
    file.write_all(&[0; HEADER_BYTES])
        .map_err(io_error("write", tmp))?;
    let (crc, body_len) = write_body(&mut file, tmp, path, value)?;
    let header = Header {
        version: T::FORMAT,
        crc,
        body_len,
        at,
    };
    file.seek(SeekFrom::Start(0))
        .and_then(|_| file.write_all(&header.encode()))
        .map_err(io_error("write", tmp))?;
    file.sync_all().map_err(io_error("fsync", tmp))
}

/// Serialises `value` into `file`; returns the body's CRC and length.
fn write_body<T: Serialize>(
    file: &mut File,
    tmp: &Path,
    path: &Path,
    value: &T,
) -> Result<(u32, u64), StoreError> {
    let mut out = BufWriter::with_capacity(1 << 20, Crc::new(file));
    let encoded = postcard::to_io(value, &mut out).map(|_| ());
    let flushed = out.flush();
    let crc = out.get_mut();
    if let Some(source) = crc.error.take() {
        return Err(io_error("write", tmp)(source));
    }
    encoded.map_err(|source| StoreError::Encode {
        path: path.to_path_buf(),
        source,
    })?;
    flushed.map_err(io_error("write", tmp))?;
    Ok((crc.hasher.clone().finalize(), crc.len))
}

/// The checkpoint is made durable as it is written, a step of this many bytes at a time:
/// a file system that orders its journal (ext4) makes every `fdatasync` of the event log
/// wait for the data written before it, so one `fsync` of a whole checkpoint at the end
/// held the pipeline's next commit for 230 ms (1 M dossiers, `cargo bench --bench
/// durability`); in steps, each commit waits for one step at most.
const SYNC_EVERY: u64 = 4 << 20;

/// A writer that passes bytes on to a file, computing their CRC and count, syncs it every
/// [`SYNC_EVERY`] bytes, and keeps the first I/O error (postcard replaces it with its own
/// error).
struct Crc<'a> {
    file: &'a mut File,
    hasher: crc32fast::Hasher,
    len: u64,
    error: Option<io::Error>,
}

impl<'a> Crc<'a> {
    fn new(file: &'a mut File) -> Self {
        Self {
            file,
            hasher: crc32fast::Hasher::new(),
            len: 0,
            error: None,
        }
    }
}

impl Write for Crc<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self.file.write(buf) {
            Ok(n) => {
                self.hasher.update(&buf[..n]);
                let before = self.len;
                self.len += n as u64;
                if before / SYNC_EVERY != self.len / SYNC_EVERY {
                    self.sync()?;
                }
                Ok(n)
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => Err(e),
            Err(e) => {
                let kind = e.kind();
                self.error.get_or_insert(e);
                Err(kind.into())
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.file.flush()
    }
}

impl Crc<'_> {
    fn sync(&mut self) -> io::Result<()> {
        self.file.sync_data().map_err(|e| {
            let kind = e.kind();
            self.error.get_or_insert(e);
            kind.into()
        })
    }
}

// ---------------------------------------------------------------- reading

fn read_checkpoint<T: DeserializeOwned + Versioned>(
    path: &Path,
    at: LogPosition,
) -> Result<T, StoreError> {
    let bytes = fs::read(path).map_err(io_error("read", path))?;
    let corrupt = |reason: String| StoreError::CorruptCheckpoint {
        path: path.to_path_buf(),
        reason,
    };
    let header = Header::decode(&bytes).map_err(|r| corrupt(r.to_owned()))?;
    let body = &bytes[HEADER_BYTES..];
    if header.body_len != body.len() as u64 {
        return Err(corrupt(format!(
            "its header announces {} bytes of state, the file holds {}",
            header.body_len,
            body.len()
        )));
    }
    if header.at != at {
        return Err(corrupt(format!("its header says position {}", header.at)));
    }
    if crc32fast::hash(body) != header.crc {
        return Err(corrupt("its CRC does not match".to_owned()));
    }
    decode_body(path, header.version, body)
}

fn decode_body<T: DeserializeOwned + Versioned>(
    path: &Path,
    version: u32,
    body: &[u8],
) -> Result<T, StoreError> {
    let incompatible = |reason: String| StoreError::IncompatibleCheckpoint {
        path: path.to_path_buf(),
        reason,
    };
    if version != T::FORMAT
        && let Some(decoded) = T::decode_older(version, body)
    {
        return match decoded {
            Ok((value, [])) => Ok(value),
            Ok((_, rest)) => Err(incompatible(format!("{} bytes left over", rest.len()))),
            Err(e) => Err(incompatible(format!("format {version}: {e}"))),
        };
    }
    if version != T::FORMAT {
        return Err(incompatible(format!(
            "it was written in checkpoint format {version} and this iocd reads format {}; \
             start the iocd release that wrote it, or move the data directory away to start \
             empty (docs/durability.md, \"Upgrades\")",
            T::FORMAT
        )));
    }
    match postcard::take_from_bytes::<T>(body) {
        Ok((value, [])) => Ok(value),
        Ok((_, rest)) => Err(incompatible(format!("{} bytes left over", rest.len()))),
        Err(e) => Err(incompatible(e.to_string())),
    }
}

// ---------------------------------------------------------------- files

fn checkpoint_path(dir: &Path, at: LogPosition) -> PathBuf {
    dir.join(format!("{PREFIX}{}-{}{SUFFIX}", at.segment, at.offset))
}

fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(TMP_SUFFIX);
    PathBuf::from(name)
}

fn parse_name(name: &str) -> Option<LogPosition> {
    let (segment, offset) = name
        .strip_prefix(PREFIX)?
        .strip_suffix(SUFFIX)?
        .split_once('-')?;
    let number = |s: &str| {
        s.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| s.parse().ok())
            .flatten()
    };
    Some(LogPosition {
        segment: number(segment)?,
        offset: number(offset)?,
    })
}

/// The position of the oldest checkpoint in `dir`: the log before it can be trimmed, since
/// every kept checkpoint can still be replayed from its position.
///
/// # Errors
/// When `dir` cannot be listed.
pub fn oldest_checkpoint(dir: &Path) -> Result<Option<LogPosition>, StoreError> {
    Ok(list_checkpoints(dir)?.first().map(|(at, _)| *at))
}

/// The checkpoints in `dir`, oldest first; none when `dir` does not exist.
fn list_checkpoints(dir: &Path) -> Result<Vec<(LogPosition, PathBuf)>, StoreError> {
    let mut found: Vec<(LogPosition, PathBuf)> = list_names(dir)?
        .into_iter()
        .filter_map(|path| {
            let at = path.file_name()?.to_str().and_then(parse_name)?;
            Some((at, path))
        })
        .collect();
    found.sort_unstable();
    Ok(found)
}

fn list_names(dir: &Path) -> Result<Vec<PathBuf>, StoreError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_error("list", dir)(e)),
    };
    entries
        .map(|entry| entry.map(|e| e.path()).map_err(io_error("list", dir)))
        .collect()
}

fn remove(path: &Path) -> Result<(), StoreError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_error("remove", path)(e)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use serde::Deserialize;

    use super::*;

    /// Exercises what the state holds: u128, i64, Box<str>, Vec, `HashMap`, enums, Option.
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct State {
        ids: Vec<u128>,
        at: i64,
        name: Box<str>,
        by_key: HashMap<Box<str>, (u64, Kind)>,
        last: Option<Kind>,
    }

    impl Versioned for State {
        const FORMAT: u32 = 1;
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    enum Kind {
        Open,
        Closed { at: i64, reason: String },
    }

    /// Another type that claims the same format.
    #[derive(Serialize, Deserialize)]
    struct Other(String);

    impl Versioned for Other {
        const FORMAT: u32 = 1;
    }

    /// The same type as [`State`] in a later format.
    #[derive(Serialize, Deserialize)]
    struct Later(State);

    impl Versioned for Later {
        const FORMAT: u32 = 2;
    }

    fn state(n: u64) -> State {
        State {
            ids: vec![u128::MAX, 0, u128::from(n)],
            at: -17,
            name: format!("state {n}").into(),
            by_key: HashMap::from([
                ("a".into(), (n, Kind::Open)),
                (
                    "b".into(),
                    (
                        1,
                        Kind::Closed {
                            at: i64::MIN,
                            reason: "done".into(),
                        },
                    ),
                ),
            ]),
            last: Some(Kind::Open),
        }
    }

    fn pos(segment: u64, offset: u64) -> LogPosition {
        LogPosition { segment, offset }
    }

    fn checkpoint_names(dir: &Path) -> Vec<LogPosition> {
        list_checkpoints(dir)
            .unwrap()
            .into_iter()
            .map(|(at, _)| at)
            .collect()
    }

    #[test]
    fn the_latest_checkpoint_is_read_back() {
        let tmp = tempfile::tempdir().unwrap();
        assert!(
            read_latest_checkpoint::<State>(tmp.path())
                .unwrap()
                .is_none()
        );
        write_checkpoint(tmp.path(), pos(0, 900), &state(1)).unwrap();
        write_checkpoint(tmp.path(), pos(2, 10), &state(3)).unwrap();
        write_checkpoint(tmp.path(), pos(1, 5000), &state(2)).unwrap();
        let (at, value, warnings) = read_latest_checkpoint::<State>(tmp.path())
            .unwrap()
            .unwrap();
        assert_eq!((at, value), (pos(2, 10), state(3)));
        assert!(warnings.is_empty());
        assert!(tmp.path().join("checkpoint-2-10.bin").is_file());
    }

    #[test]
    fn a_missing_directory_has_no_checkpoint() {
        let tmp = tempfile::tempdir().unwrap();
        let none = read_latest_checkpoint::<State>(&tmp.path().join("absent")).unwrap();
        assert!(none.is_none());
    }

    #[test]
    fn a_corrupt_latest_checkpoint_falls_back_to_the_previous_one() {
        let damages: [fn(&mut Vec<u8>); 4] = [
            |b| *b.last_mut().unwrap() ^= 1,
            |b| b.truncate(b.len() - 1),
            |b| b.truncate(20),
            |b| b[0] = b'X',
        ];
        for damage in damages {
            let tmp = tempfile::tempdir().unwrap();
            write_checkpoint(tmp.path(), pos(0, 100), &state(1)).unwrap();
            write_checkpoint(tmp.path(), pos(0, 200), &state(2)).unwrap();
            let newest = checkpoint_path(tmp.path(), pos(0, 200));
            let mut bytes = fs::read(&newest).unwrap();
            damage(&mut bytes);
            fs::write(&newest, bytes).unwrap();

            let (at, value, warnings) = read_latest_checkpoint::<State>(tmp.path())
                .unwrap()
                .unwrap();
            assert_eq!((at, value), (pos(0, 100), state(1)));
            assert_eq!(warnings.len(), 1, "{warnings:?}");
        }
    }

    #[test]
    fn a_renamed_checkpoint_is_corrupt() {
        let tmp = tempfile::tempdir().unwrap();
        write_checkpoint(tmp.path(), pos(0, 100), &state(1)).unwrap();
        fs::rename(
            checkpoint_path(tmp.path(), pos(0, 100)),
            checkpoint_path(tmp.path(), pos(9, 9)),
        )
        .unwrap();
        let err = read_latest_checkpoint::<State>(tmp.path()).unwrap_err();
        assert!(
            matches!(err, StoreError::NoReadableCheckpoint { count: 1, .. }),
            "{err}"
        );
    }

    #[test]
    fn an_intact_checkpoint_of_another_type_is_an_error_not_skipped() {
        let tmp = tempfile::tempdir().unwrap();
        write_checkpoint(tmp.path(), pos(0, 100), &state(1)).unwrap();
        write_checkpoint(tmp.path(), pos(0, 200), &Other("a string".into())).unwrap();
        let err = read_latest_checkpoint::<State>(tmp.path()).unwrap_err();
        assert!(
            matches!(err, StoreError::IncompatibleCheckpoint { .. }),
            "{err}"
        );
    }

    #[test]
    fn a_checkpoint_in_another_format_is_an_error_naming_both_formats() {
        let tmp = tempfile::tempdir().unwrap();
        write_checkpoint(tmp.path(), pos(0, 100), &Later(state(1))).unwrap();
        let err = read_latest_checkpoint::<State>(tmp.path()).unwrap_err();
        assert!(
            matches!(err, StoreError::IncompatibleCheckpoint { .. }),
            "{err}"
        );
        let text = err.to_string();
        assert!(
            text.contains("format 2") && text.contains("format 1"),
            "{text}"
        );
    }

    #[test]
    fn prune_keeps_the_newest_checkpoints_and_removes_leftover_temporary_files() {
        let tmp = tempfile::tempdir().unwrap();
        for offset in [5, 1, 4, 2, 3] {
            write_checkpoint(tmp.path(), pos(0, offset), &state(offset)).unwrap();
        }
        let leftover = tmp_path(&checkpoint_path(tmp.path(), pos(0, 6)));
        fs::write(&leftover, b"half").unwrap();
        assert_eq!(checkpoint_names(tmp.path()).len(), 5);
        prune_checkpoints(tmp.path(), 2).unwrap();
        assert_eq!(checkpoint_names(tmp.path()), vec![pos(0, 4), pos(0, 5)]);
        assert!(!leftover.exists());
        prune_checkpoints(tmp.path(), 10).unwrap();
        assert_eq!(checkpoint_names(tmp.path()).len(), 2);
        prune_checkpoints(tmp.path(), 0).unwrap();
        assert!(checkpoint_names(tmp.path()).is_empty());
    }

    #[test]
    fn names_that_are_not_checkpoints_are_ignored() {
        for name in [
            "checkpoint-1-2.bin.tmp",
            "checkpoint-1.bin",
            "checkpoint--2.bin",
            "checkpoint-+1-2.bin",
            "other-1-2.bin",
        ] {
            assert_eq!(parse_name(name), None, "{name}");
        }
        assert_eq!(parse_name("checkpoint-3-40.bin"), Some(pos(3, 40)));
    }

    #[test]
    fn writing_a_checkpoint_into_an_unwritable_place_is_an_error() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(tmp.path().join("file.txt"), b"").unwrap();
        let dir = tmp.path().join("file.txt").join("sub");
        let err = write_checkpoint(&dir, pos(0, 0), &state(0)).unwrap_err();
        assert!(matches!(err, StoreError::Io { .. }), "{err}");
        assert!(read_latest_checkpoint::<State>(&dir).is_err());
    }
}
