//! `[directory]`: the province's agency directory file, and how often it is checked for
//! changes.
//!
//! In: the `[directory]` table as written. Out: [`DirectorySettings`] with the file read and
//! checked (once, here, so that `iocd check-config` reports a bad directory too), or the
//! problem keyed `directory.file`. Reloads while running go through
//! [`crate::directory::Directory::read`] again.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::check::{Problems, Unit};
use crate::directory::Directory;

/// `[directory]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DirectoryFile {
    file: String,
    check_secs: u64,
}

/// `[directory]`: the agency directory.
#[derive(Clone, Debug, PartialEq)]
pub struct DirectorySettings {
    /// The directory file; `None`: no directory, codes are shown as they come.
    pub file: Option<PathBuf>,
    /// How often the file is checked for a change; `None`: only on SIGHUP.
    pub check_every: Option<Duration>,
    /// The directory as read at load (empty without a file).
    pub directory: Arc<Directory>,
}

impl DirectoryFile {
    pub(super) fn check(self, p: &mut Problems) -> Option<DirectorySettings> {
        let check_every = p.duration(
            "directory.check_secs",
            self.check_secs,
            (0, 86_400),
            Unit::Secs,
        );
        let file = (!self.file.is_empty()).then(|| PathBuf::from(&self.file));
        let directory = match &file {
            Some(path) => p.ok("directory.file", Directory::read(path))?,
            None => Directory::empty(),
        };
        Some(DirectorySettings {
            file,
            check_every: check_every.filter(|d| !d.is_zero()),
            directory: Arc::new(directory),
        })
    }
}
