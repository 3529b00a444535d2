//! Tombstones of forgotten dossiers: once a closed dossier leaves memory after its
//! retention, late events for it (a vendor's backlog replayed after an outage) must not
//! bring it back as a new, open dossier that would then stay overdue forever. Its id is
//! remembered (as a 64-bit hash, 16 bytes each) for [`HORIZON_DAYS`], and events naming it
//! are counted as accepted but change nothing.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::time::Ts;

/// How long a forgotten dossier's id is remembered.
pub const HORIZON_DAYS: i64 = 30;

fn key(id: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(id.as_bytes())
}

/// Ids of dossiers that were forgotten, with when.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Forgotten {
    ids: HashMap<u64, Ts>,
}

impl Forgotten {
    /// Remembers that dossier `id` was forgotten at `at`.
    pub fn insert(&mut self, id: &str, at: Ts) {
        self.ids.insert(key(id), at);
    }

    /// Whether dossier `id` was forgotten (within the horizon).
    #[must_use]
    pub fn contains(&self, id: &str) -> bool {
        !self.ids.is_empty() && self.ids.contains_key(&key(id))
    }

    /// Drops tombstones older than the horizon at `now`.
    pub fn prune(&mut self, now: Ts) {
        let cutoff = now.minus_secs(HORIZON_DAYS * 86_400);
        self.ids.retain(|_, at| *at >= cutoff);
    }

    /// Tombstones held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether none is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}
