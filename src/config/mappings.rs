//! `[mappings]`: the directory of declarative mappings (vendor payloads → contract events,
//! docs/integrations.md), how often it is checked for changes, and the largest mapped
//! payload.
//!
//! In: the `[mappings]` table as written and the MQTT prefix (no mapping filter may overlap
//! the contract's topics). Out: [`MappingSettings`] with every file read and checked (once,
//! here, so that `iocd check-config` reports a bad mapping too), or the problems keyed
//! `mappings.*`. Reloads while running read the directory again.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::check::{Problems, Unit};
use crate::decode::mapping::Mappings;

/// `[mappings]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct MappingsFile {
    dir: String,
    check_secs: u64,
    max_payload_bytes: usize,
}

/// `[mappings]`: the mapped inputs.
#[derive(Clone, Debug)]
pub struct MappingSettings {
    /// The directory of `*.toml` mappings; `None`: no mapped inputs.
    pub dir: Option<PathBuf>,
    /// How often the directory is checked for a change; `None`: only on SIGHUP.
    pub check_every: Option<Duration>,
    /// Largest mapped payload (a batch body), in bytes; larger ones are `too_large`.
    pub max_payload_bytes: usize,
    /// The mappings as read at load (none without a directory).
    pub mappings: Arc<Mappings>,
}

impl PartialEq for MappingSettings {
    fn eq(&self, other: &Self) -> bool {
        self.dir == other.dir
            && self.check_every == other.check_every
            && self.max_payload_bytes == other.max_payload_bytes
    }
}

impl MappingsFile {
    pub(super) fn check(self, prefix: Option<&str>, p: &mut Problems) -> Option<MappingSettings> {
        let check_every = p.duration(
            "mappings.check_secs",
            self.check_secs,
            (0, 86_400),
            Unit::Secs,
        );
        let max_payload_bytes = p.within(
            "mappings.max_payload_bytes",
            self.max_payload_bytes,
            1024,
            64 << 20,
        );
        let dir = (!self.dir.is_empty()).then(|| PathBuf::from(&self.dir));
        let mappings = match (&dir, prefix) {
            (Some(dir), Some(prefix)) => p.ok("mappings.dir", Mappings::read_dir(dir, prefix))?,
            // A bad prefix is reported under its own key.
            (Some(_), None) => return None,
            (None, _) => Mappings::empty(),
        };
        Some(MappingSettings {
            dir,
            check_every: Some(check_every?).filter(|d| !d.is_zero()),
            max_payload_bytes: max_payload_bytes?,
            mappings: Arc::new(mappings),
        })
    }
}
