//! The dedupe memory: which `(source, event_id)` pairs arrived recently.
//!
//! Each pair is remembered as a 128-bit XXH3 hash (a collision among a million ids has a
//! probability around 10⁻²⁶) with its arrival time, for `horizon` (default 72 h) or until
//! `max_ids` newer ids push it out, whichever comes first. About 48 bytes per id: the
//! default 1,000,000 ids cost ~48 MB at most. Arrival times come from the caller, so replay
//! gives the same answers as live processing.

use std::collections::VecDeque;

use hashbrown::HashSet;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::decode::Source;
use crate::time::Ts;

/// Recently seen event ids.
#[derive(Clone, Debug)]
pub struct Dedupe {
    horizon_secs: i64,
    max_ids: usize,
    seen: HashSet<u128>,
    order: VecDeque<(Ts, u128)>,
    /// Ids forgotten because `max_ids` was reached before the horizon passed.
    pub evicted_early: u64,
}

fn key(source: Source, event_id: &str) -> u128 {
    // The source byte first, so the same id in another source is another key.
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    h.update(&[source as u8]);
    h.update(event_id.as_bytes());
    h.digest128()
}

impl Dedupe {
    /// An empty memory.
    #[must_use]
    pub fn new(horizon_secs: i64, max_ids: usize) -> Self {
        Self {
            horizon_secs,
            max_ids: max_ids.max(1),
            seen: HashSet::new(),
            order: VecDeque::new(),
            evicted_early: 0,
        }
    }

    /// Records `(source, event_id)` arriving at `arrival`; true when it was already seen
    /// within the horizon (a duplicate, to be ignored).
    pub fn check_and_insert(&mut self, source: Source, event_id: &str, arrival: Ts) -> bool {
        self.expire(arrival);
        let k = key(source, event_id);
        if !self.seen.insert(k) {
            return true;
        }
        if self.order.len() >= self.max_ids {
            if let Some((_, old)) = self.order.pop_front() {
                self.seen.remove(&old);
                self.evicted_early += 1;
            }
        }
        self.order.push_back((arrival, k));
        false
    }

    fn expire(&mut self, now: Ts) {
        let cutoff = now.minus_secs(self.horizon_secs);
        while let Some(&(at, k)) = self.order.front() {
            if at >= cutoff {
                break;
            }
            self.order.pop_front();
            self.seen.remove(&k);
        }
    }

    /// Ids remembered now.
    #[must_use]
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether nothing is remembered.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }
}

#[derive(Serialize, Deserialize)]
struct Saved {
    horizon_secs: i64,
    max_ids: usize,
    order: Vec<(Ts, u128)>,
    evicted_early: u64,
}

impl Serialize for Dedupe {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        Saved {
            horizon_secs: self.horizon_secs,
            max_ids: self.max_ids,
            order: self.order.iter().copied().collect(),
            evicted_early: self.evicted_early,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Dedupe {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let saved = Saved::deserialize(d)?;
        let mut me = Dedupe::new(saved.horizon_secs, saved.max_ids);
        me.seen = saved.order.iter().map(|&(_, k)| k).collect();
        me.order = saved.order.into();
        me.evicted_early = saved.evicted_early;
        Ok(me)
    }
}

impl PartialEq for Dedupe {
    fn eq(&self, other: &Self) -> bool {
        self.seen == other.seen
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_id_is_a_duplicate_only_in_the_same_source() {
        let mut d = Dedupe::new(3600, 10);
        let t = Ts::from_secs(1_000_000);
        assert!(!d.check_and_insert(Source::Onestop, "e1", t));
        assert!(d.check_and_insert(Source::Onestop, "e1", t));
        assert!(!d.check_and_insert(Source::Vc, "e1", t));
    }

    #[test]
    fn ids_are_forgotten_after_the_horizon() {
        let mut d = Dedupe::new(3600, 10);
        let t = Ts::from_secs(1_000_000);
        d.check_and_insert(Source::Soc, "e1", t);
        assert!(d.check_and_insert(Source::Soc, "e1", t.plus_secs(3600)));
        assert!(!d.check_and_insert(Source::Soc, "e1", t.plus_secs(3601)));
    }

    #[test]
    fn the_oldest_ids_go_first_when_full() {
        let mut d = Dedupe::new(3600, 2);
        let t = Ts::from_secs(1_000_000);
        for id in ["a", "b", "c"] {
            d.check_and_insert(Source::Soc, id, t);
        }
        assert_eq!(d.len(), 2);
        assert_eq!(d.evicted_early, 1);
        assert!(!d.check_and_insert(Source::Soc, "a", t));
    }
}
