//! One iocd per data directory: an OS advisory lock (`flock`) on `<data-dir>/iocd.lock`,
//! held by an open file for the life of the process. The kernel releases it when the
//! process ends in any way (`kill -9` included), so a stale lock never blocks a restart;
//! the pid written into the file only names the holder in the refusal.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};

/// The lock file's name inside the data directory.
pub const LOCK_FILE: &str = "iocd.lock";

/// The exclusive hold on a data directory; released when dropped or when the process ends.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

/// Why a data directory could not be locked.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another process holds the lock: two daemons would split the stream and cut each
    /// other's log.
    #[error(
        "--data-dir {}: another iocd{} is using this data directory; stop it, or give this \
         one a directory of its own",
        dir.display(),
        pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
    )]
    Held {
        /// The data directory.
        dir: PathBuf,
        /// The holder's pid, as it wrote it into the lock file.
        pid: Option<u32>,
    },
    /// The lock file cannot be opened or locked (a read-only directory, a file system
    /// without `flock`).
    #[error("--data-dir {}: cannot lock {}: {source}", dir.display(), path.display())]
    Io {
        /// The data directory.
        dir: PathBuf,
        /// The lock file.
        path: PathBuf,
        /// The operating system's error.
        source: io::Error,
    },
}

impl DataDirLock {
    /// Takes the lock on `dir` without waiting and writes this process's pid into it.
    ///
    /// # Errors
    /// [`LockError::Held`] when another process holds it; [`LockError::Io`] when the lock
    /// file cannot be opened or locked.
    pub fn acquire(dir: &Path) -> Result<Self, LockError> {
        let path = dir.join(LOCK_FILE);
        let io = |source| LockError::Io {
            dir: dir.to_path_buf(),
            path: path.clone(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let pid = std::fs::read_to_string(&path)
                    .ok()
                    .and_then(|text| text.trim().parse().ok());
                return Err(LockError::Held {
                    dir: dir.to_path_buf(),
                    pid,
                });
            }
            Err(TryLockError::Error(source)) => return Err(io(source)),
        }
        // The pid only makes the refusal clearer: failing to write it is no reason to stop.
        let _ = file
            .set_len(0)
            .and_then(|()| writeln!(file, "{}", std::process::id()));
        Ok(Self { _file: file })
    }
}

#[cfg(test)]
// A failed unwrap is a failed test.
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_with_the_holders_pid_until_the_first_is_dropped() {
        let tmp = tempfile::tempdir().unwrap();
        let first = DataDirLock::acquire(tmp.path()).unwrap();
        // flock locks belong to the open file, so a second open in this process conflicts
        // just as another process would.
        let err = DataDirLock::acquire(tmp.path()).unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(err, LockError::Held { pid: Some(p), .. } if p == std::process::id()),
            "{text}"
        );
        assert!(text.contains(&tmp.path().display().to_string()), "{text}");
        assert!(text.contains("another iocd"), "{text}");
        drop(first);
        assert!(DataDirLock::acquire(tmp.path()).is_ok());
    }
}
