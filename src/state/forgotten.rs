//! Tombstones of forgotten dossiers: once a closed dossier leaves memory after its
//! retention, late events for it (a vendor's backlog replayed after an outage) must not
//! bring it back as a new, open dossier that would then stay overdue forever. Its id is
//! remembered (as a 64-bit hash, 16 bytes each) for [`HORIZON_DAYS`], and events naming it
//! are counted as accepted but change nothing.

use std::collections::HashMap;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::cow::{Fifo, Frozen};
use crate::decode::DossierKind;
use crate::time::Ts;

/// How long a forgotten dossier's id is remembered.
pub const HORIZON_DAYS: i64 = 30;

fn key(id: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(id.as_bytes())
}

/// Events that named a forgotten dossier since the process started, by type (in
/// [`DossierKind::ALL`] order): accepted, changing nothing. Mostly ratings and payments that
/// came after the retention of closed dossiers (`[state] closed_retention_hours`): the
/// figure that says to raise it. Not saved in checkpoints, like the evictions.
#[derive(Clone, Copy, Debug, Default)]
pub struct Hits {
    /// Events by [`DossierKind::ALL`] index.
    pub by_kind: [u64; DossierKind::ALL.len()],
}

impl PartialEq for Hits {
    /// Bookkeeping of the process, not state.
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Hits {
    /// Counts one event of `kind` for a forgotten dossier.
    pub fn count(&mut self, kind: DossierKind) {
        if let Some(i) = DossierKind::ALL.iter().position(|k| *k == kind) {
            self.by_kind[i] += 1;
        }
    }
}

/// Ids of dossiers that were forgotten, with when; at most as many as the dossier cap
/// (`[state] max_dossiers`), the oldest dropped first, so that a flood of short-lived
/// dossiers cannot grow them without bound. Kept in the order they were forgotten too, so
/// that pruning costs what expires. Saved as the map alone (the checkpoint format is that
/// of a `HashMap<u64, Ts>`).
#[derive(Clone, Debug, Default)]
pub struct Forgotten {
    ids: HashMap<u64, Ts>,
    /// `(when, key)` in the order forgotten; an entry whose key was forgotten again later
    /// is stale and skipped.
    order: Fifo<(Ts, u64)>,
}

impl PartialEq for Forgotten {
    fn eq(&self, other: &Self) -> bool {
        self.ids == other.ids
    }
}

impl Serialize for Forgotten {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Form<'a> {
            ids: &'a HashMap<u64, Ts>,
        }
        Form { ids: &self.ids }.serialize(s)
    }
}

/// The tombstones frozen at one instant (see [`crate::state::FrozenState`]): their order
/// alone, shared copy-on-write; serialises as [`Forgotten`] does, the map rebuilt from the
/// order where it is written (the latest entry of a key is its tombstone).
#[derive(Clone, Debug)]
pub struct FrozenForgotten(Frozen<(Ts, u64)>);

impl Forgotten {
    /// A frozen copy of the tombstones held now.
    #[must_use]
    pub fn freeze(&self) -> FrozenForgotten {
        FrozenForgotten(self.order.freeze())
    }
}

impl Serialize for FrozenForgotten {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let ids: HashMap<u64, Ts> = self.0.iter().map(|&(at, k)| (k, at)).collect();
        Forgotten {
            ids,
            order: Fifo::default(),
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Forgotten {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Form {
            ids: HashMap<u64, Ts>,
        }
        let Form { ids } = Form::deserialize(d)?;
        let mut order: Vec<(Ts, u64)> = ids.iter().map(|(k, at)| (*at, *k)).collect();
        order.sort_unstable();
        Ok(Self {
            ids,
            order: order.into_iter().collect(),
        })
    }
}

impl Forgotten {
    /// Remembers that dossier `id` was forgotten at `at`, keeping at most `max` ids.
    pub fn insert(&mut self, id: &str, at: Ts, max: usize) {
        let k = key(id);
        if self.ids.insert(k, at) == Some(at) {
            // Already there as it is: one entry per (key, time), so that the latest entry
            // of a key is its tombstone (what a frozen copy is rebuilt from).
            return;
        }
        self.order.push_back((at, k));
        while self.ids.len() > max.max(1) {
            self.pop_oldest();
        }
    }

    fn pop_oldest(&mut self) {
        if let Some((at, k)) = self.order.pop_front()
            && self.ids.get(&k) == Some(&at)
        {
            self.ids.remove(&k);
        }
    }

    /// Whether dossier `id` was forgotten (within the horizon).
    #[must_use]
    pub fn contains(&self, id: &str) -> bool {
        !self.ids.is_empty() && self.ids.contains_key(&key(id))
    }

    /// Drops tombstones older than the horizon at `now`.
    pub fn prune(&mut self, now: Ts) {
        let cutoff = now.minus_secs(HORIZON_DAYS * 86_400);
        while self.order.front().is_some_and(|(at, _)| *at < cutoff) {
            self.pop_oldest();
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_max_ids_are_remembered_the_oldest_dropped_first_and_pruning_follows_time() {
        let mut f = Forgotten::default();
        for i in 0..5 {
            f.insert(&format!("D{i}"), Ts::from_secs(i), 3);
        }
        assert_eq!(f.len(), 3);
        assert!(!f.contains("D0") && !f.contains("D1"));
        assert!(f.contains("D2") && f.contains("D4"));
        // Forgotten again later: the earlier entry is stale and does not drop it.
        f.insert("D2", Ts::from_secs(10), 3);
        f.prune(Ts::from_secs(3 + HORIZON_DAYS * 86_400 + 1));
        assert!(f.contains("D2"), "forgotten again at 10 s");
        assert!(!f.contains("D3"));
        assert_eq!(f.len(), 2);
        // Saved as the map alone, restored with its order.
        let back: Forgotten = serde_json::from_str(&serde_json::to_string(&f).unwrap()).unwrap();
        assert_eq!(back, f);
        assert_eq!(back.order.len(), 2);
    }
}
