//! The dedupe memory: which `(source, event_id)` pairs arrived recently.
//!
//! Each pair is remembered as a 128-bit XXH3 hash (a collision among a million ids has a
//! probability around 10⁻²⁶) with its arrival time, for `horizon` (default 72 h) or until
//! `max_ids` newer ids push it out, whichever comes first. Arrival times come from the
//! caller, so replay gives the same answers as live processing.
//!
//! The pairs live in arrival order in a ring (24 bytes each), indexed by a hash table of
//! 4-byte sequence numbers (5 bytes a slot with its control byte; once the memory is full,
//! slots for three times the ids, so that sweeps rehash in place): about 45 bytes per id,
//! 45 MB for the default 1,000,000 ids. A lookup touches the ring
//! only when a slot's 7-bit tag matches, so the hot data is the small index. Forgetting the
//! oldest id does not touch the index either (its slot, written long ago, is out of every
//! cache by then): slots of forgotten ids are stale, lookups skip them, and one sequential
//! sweep drops them all when the table would otherwise grow.

use hashbrown::HashTable;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::cow::{Fifo, Frozen};
use crate::decode::Source;
use crate::time::Ts;

/// Recently seen event ids.
#[derive(Clone, Debug)]
pub struct Dedupe {
    horizon_secs: i64,
    max_ids: usize,
    /// Keys with their arrival, oldest first.
    order: Fifo<Seen>,
    /// Sequence number of the front of `order`; the `i`-th entry has `front + i` (wrapping).
    front: u32,
    /// Sequence numbers of the entries of `order`, by key, and stale ones of forgotten ids
    /// (before `front`), until the next sweep.
    index: HashTable<u32>,
    /// Ids forgotten because `max_ids` was reached before the horizon passed.
    pub evicted_early: u64,
    /// Whether the index was sized for the steady state of a full memory (see
    /// [`Dedupe::check_and_insert`]); not saved: sized again after a restart.
    steady: bool,
}

/// One remembered pair: its key (as two halves, so the entry is 24 bytes, not 32) and arrival.
#[derive(Clone, Copy, Debug)]
struct Seen {
    key: [u64; 2],
    at: Ts,
}

impl Seen {
    fn new(at: Ts, key: u128) -> Self {
        Self {
            key: [(key >> 64) as u64, key as u64],
            at,
        }
    }

    fn key(self) -> u128 {
        (u128::from(self.key[0]) << 64) | u128::from(self.key[1])
    }
}

/// At most this many ids (some 40 GB) are remembered: with the stale slots between two
/// sweeps, the sequence numbers in the index then span less than 2³², so a stale one never
/// reads as live.
const MAX_IDS: usize = 1 << 30;

/// The index's hash of a key: its low half (the key is a hash already).
fn slot_hash(key: u128) -> u64 {
    key as u64
}

/// Ids shorter than this are hashed in one shot from a copy on the stack.
const ONE_SHOT: usize = 64;

fn key(source: Source, event_id: &str) -> u128 {
    // The source byte first, so the same id in another source is another key. XXH3 gives
    // the same digest in one shot as streamed; one shot skips the streaming state's setup.
    let id = event_id.as_bytes();
    if id.len() < ONE_SHOT {
        let mut buf = [0u8; ONE_SHOT];
        buf[0] = source as u8;
        buf[1..=id.len()].copy_from_slice(id);
        return xxhash_rust::xxh3::xxh3_128(&buf[..=id.len()]);
    }
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    h.update(&[source as u8]);
    h.update(id);
    h.digest128()
}

impl Dedupe {
    /// An empty memory.
    #[must_use]
    pub fn new(horizon_secs: i64, max_ids: usize) -> Self {
        Self {
            horizon_secs,
            max_ids: max_ids.clamp(1, MAX_IDS),
            order: Fifo::default(),
            front: 0,
            index: HashTable::new(),
            evicted_early: 0,
            steady: false,
        }
    }

    /// The entry with sequence number `seq`, if it is still remembered.
    fn entry(order: &Fifo<Seen>, front: u32, seq: u32) -> Option<&Seen> {
        order.get(seq.wrapping_sub(front) as usize)
    }

    /// Whether `key` is remembered.
    fn contains(&self, key: u128) -> bool {
        let (order, front) = (&self.order, self.front);
        self.index
            .find(slot_hash(key), |&seq| {
                Self::entry(order, front, seq).is_some_and(|e| e.key() == key)
            })
            .is_some()
    }

    /// Remembers `key`, arrived at `at`, as the newest entry.
    fn push(&mut self, at: Ts, key: u128) {
        if self.index.len() == self.index.capacity() {
            // The insert would rehash every slot: drop the stale ones first, so that only
            // live ones (whose keys are known) are rehashed, and the table grows only for them.
            self.drop_stale();
            // hashbrown marks the dropped slots deleted, not free, and gets them back only by
            // rehashing in place, which it does only while the entries would fill at most
            // half the table; past that it doubles the table instead. Reserving for half as
            // many again as are live rehashes in place in a table of three times the live
            // ids or more, and grows a smaller one once, to that size. Without it, the
            // sweeps came ever closer together (the last ones at every insert) until the
            // table doubled anyway, at a moment that depended on the traffic: a 10 MiB step
            // in resident memory 20 minutes into the soak (docs/performance.md).
            self.reserve(self.index.len() / 2 + 1);
        }
        let seq = self.front.wrapping_add(self.order.len() as u32);
        self.order.push_back(Seen::new(at, key));
        let (order, front) = (&self.order, self.front);
        self.index.insert_unique(slot_hash(key), seq, |&s| {
            Self::entry(order, front, s).map_or(0, |e| slot_hash(e.key()))
        });
    }

    /// Drops the index's stale slots (ids no longer remembered).
    fn drop_stale(&mut self) {
        let (len, front) = (self.order.len(), self.front);
        self.index
            .retain(|seq| (seq.wrapping_sub(front) as usize) < len);
    }

    /// Makes room in the index for `additional` more entries (a stale one rehashes to
    /// slot 0: callers drop them first).
    fn reserve(&mut self, additional: usize) {
        let (order, front) = (&self.order, self.front);
        self.index.reserve(additional, |&s| {
            Self::entry(order, front, s).map_or(0, |e| slot_hash(e.key()))
        });
    }

    /// Forgets the oldest entry (its index slot goes stale).
    fn pop_oldest(&mut self) {
        if self.order.pop_front().is_some() {
            self.front = self.front.wrapping_add(1);
        }
    }

    /// The key of `(source, event_id)`, for [`Dedupe::holds`].
    #[must_use]
    pub(crate) fn key_of(source: Source, event_id: &str) -> u128 {
        key(source, event_id)
    }

    /// Whether the pair of key `k` is in the memory (an id past the horizon counts until
    /// the next insert expires it). Changes nothing: the lookahead of
    /// [`crate::state::State::prefetch`] calls it to bring the index's line into cache
    /// before the event is applied.
    #[must_use]
    pub(crate) fn holds(&self, k: u128) -> bool {
        self.contains(k)
    }

    /// Records `(source, event_id)` arriving at `arrival`; true when it was already seen
    /// within the horizon (a duplicate, to be ignored).
    pub fn check_and_insert(&mut self, source: Source, event_id: &str, arrival: Ts) -> bool {
        self.expire(arrival);
        let k = key(source, event_id);
        if self.contains(k) {
            return true;
        }
        if self.order.len() >= self.max_ids {
            if !self.steady {
                // Full: from now on each new id leaves a stale slot behind, and the index
                // settles at three times the ids (see `push`). It gets there now, once, while
                // the memory fills, not at some later sweep.
                self.steady = true;
                // Stale slots (ids past the horizon) go first: they would all rehash to one
                // place, each probing further than the last.
                self.drop_stale();
                let target = self.max_ids.saturating_mul(3);
                self.reserve(target.saturating_sub(self.index.len()));
            }
            self.pop_oldest();
            self.evicted_early += 1;
        }
        self.push(arrival, k);
        false
    }

    fn expire(&mut self, now: Ts) {
        let cutoff = now.minus_secs(self.horizon_secs);
        while self.order.front().is_some_and(|oldest| oldest.at < cutoff) {
            self.pop_oldest();
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

/// The serialised form.
#[derive(Deserialize)]
struct Saved {
    horizon_secs: i64,
    max_ids: usize,
    order: Vec<(Ts, u128)>,
    evicted_early: u64,
}

impl Serialize for Dedupe {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.freeze().serialize(s)
    }
}

/// The dedupe memory frozen at one instant (see [`crate::state::FrozenState`]); serialises
/// as [`Dedupe`] does.
#[derive(Clone, Debug)]
pub struct FrozenDedupe {
    horizon_secs: i64,
    max_ids: usize,
    order: Frozen<Seen>,
    evicted_early: u64,
}

impl Dedupe {
    /// A frozen copy of what is remembered now (copies at most one chunk of entries).
    #[must_use]
    pub fn freeze(&self) -> FrozenDedupe {
        FrozenDedupe {
            horizon_secs: self.horizon_secs,
            max_ids: self.max_ids,
            order: self.order.freeze(),
            evicted_early: self.evicted_early,
        }
    }
}

impl Serialize for FrozenDedupe {
    /// As the dedupe memory's saved form: the entries as `(arrival, key)` pairs, oldest first.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        struct Pairs<'a>(&'a Frozen<Seen>);
        impl Serialize for Pairs<'_> {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                super::cow::serialize_seq(s, self.0.len(), self.0.iter().map(|e| (e.at, e.key())))
            }
        }
        #[derive(Serialize)]
        struct Form<'a> {
            horizon_secs: i64,
            max_ids: usize,
            order: Pairs<'a>,
            evicted_early: u64,
        }
        Form {
            horizon_secs: self.horizon_secs,
            max_ids: self.max_ids,
            order: Pairs(&self.order),
            evicted_early: self.evicted_early,
        }
        .serialize(s)
    }
}

impl<'de> Deserialize<'de> for Dedupe {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let saved = Saved::deserialize(d)?;
        let mut me = Dedupe::new(saved.horizon_secs, saved.max_ids);
        for (at, k) in saved.order {
            me.push(at, k);
        }
        me.evicted_early = saved.evicted_early;
        Ok(me)
    }
}

impl PartialEq for Dedupe {
    /// The same ids remembered (arrival order and times aside).
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.order.iter().all(|s| other.contains(s.key()))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use super::*;

    /// Once full, the index reaches its steady size at once and keeps it: no sweep at
    /// every insert, no doubling later (the soak's 10 MiB step of 2026-12-06).
    #[test]
    fn a_full_memory_keeps_its_index_size_and_sweeps_seldom() {
        let max = 10_000;
        let mut d = Dedupe::new(i64::MAX / 4_000_000_000, max);
        let t = Ts::from_secs(1_000_000);
        let mut steady = None;
        let mut shrinks = 0;
        let mut last = 0;
        for i in 0..20 * max {
            assert!(!d.check_and_insert(Source::Onestop, &format!("id-{i}"), t));
            let cap = d.index.capacity();
            if i >= max {
                // The full capacity (items + room) after the first eviction.
                let full = *steady.get_or_insert(cap);
                assert!(cap <= full, "grew from {full} to {cap} after {i} ids");
                shrinks += usize::from(cap < last);
            }
            last = cap;
        }
        assert!(steady.is_some_and(|f| f >= 3 * max), "{steady:?}");
        // A sweep (a drop of the capacity) about every 2 × max inserts, not at every one.
        assert!(shrinks <= 19 * max / (2 * max) + 1, "{shrinks} sweeps");
        assert_eq!(d.len(), max);
    }

    #[test]
    fn keys_are_the_streamed_xxh3_of_the_source_byte_and_the_id() {
        for len in [1, 36, ONE_SHOT - 2, ONE_SHOT - 1, ONE_SHOT, 128, 512] {
            let id = "é".repeat(len / 2) + &"x".repeat(len % 2);
            let mut h = xxhash_rust::xxh3::Xxh3::new();
            h.update(&[Source::Vc as u8]);
            h.update(id.as_bytes());
            assert_eq!(key(Source::Vc, &id), h.digest128(), "{len}");
        }
    }

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

    /// The straightforward design, as a reference: a set of keys and a queue of arrivals.
    struct Reference {
        horizon_secs: i64,
        max_ids: usize,
        seen: std::collections::HashSet<u128>,
        order: VecDeque<(Ts, u128)>,
        evicted_early: u64,
    }

    impl Reference {
        fn check_and_insert(&mut self, source: Source, event_id: &str, arrival: Ts) -> bool {
            let cutoff = arrival.minus_secs(self.horizon_secs);
            while let Some(&(at, k)) = self.order.front() {
                if at >= cutoff {
                    break;
                }
                self.order.pop_front();
                self.seen.remove(&k);
            }
            let k = key(source, event_id);
            if !self.seen.insert(k) {
                return true;
            }
            if self.order.len() >= self.max_ids
                && let Some((_, old)) = self.order.pop_front()
            {
                self.seen.remove(&old);
                self.evicted_early += 1;
            }
            self.order.push_back((arrival, k));
            false
        }
    }

    #[test]
    fn answers_like_a_set_and_a_queue_also_when_sequence_numbers_wrap() {
        for front in [0, u32::MAX - 50] {
            let mut d = Dedupe::new(200, 40);
            d.front = front;
            let mut r = Reference {
                horizon_secs: 200,
                max_ids: 40,
                seen: std::collections::HashSet::new(),
                order: VecDeque::new(),
                evicted_early: 0,
            };
            let mut rng = 0x2545_f491_4f6c_dd1d_u64;
            let mut t = Ts::from_secs(1_000_000);
            let mut duplicates = 0;
            for i in 0..5_000 {
                rng = rng
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                let id = format!("e{}", (rng >> 33) % 120);
                let source = Source::ALL[(rng >> 20) as usize % 3];
                t = match (rng >> 40) % 60 {
                    0 => t.plus_secs(500), // a gap: everything expires
                    1 => t.minus_secs(30), // a clock step back
                    step => t.plus_secs((step % 7) as i64),
                };
                let expected = r.check_and_insert(source, &id, t);
                duplicates += usize::from(expected);
                assert_eq!(d.check_and_insert(source, &id, t), expected, "step {i}");
                assert_eq!(d.len(), r.order.len(), "step {i}");
                assert_eq!(d.evicted_early, r.evicted_early, "step {i}");
            }
            assert!(
                r.evicted_early > 0 && duplicates > 100,
                "the test reaches the capacity and repeats ids"
            );
            let back: Dedupe = serde_json::from_str(&serde_json::to_string(&d).unwrap()).unwrap();
            assert_eq!(back, d);
            assert!(
                back.order
                    .iter()
                    .zip(&r.order)
                    .all(|(a, b)| (a.at, a.key()) == *b)
            );
        }
    }

    #[test]
    fn the_index_stays_the_size_of_the_ids_remembered() {
        let mut d = Dedupe::new(3600, 100);
        let t = Ts::from_secs(1_000_000);
        for i in 0..100_000 {
            assert!(!d.check_and_insert(Source::Onestop, &format!("e{i}"), t));
        }
        assert_eq!(d.len(), 100);
        assert!(d.index.capacity() < 256, "{}", d.index.capacity());
        assert!(d.check_and_insert(Source::Onestop, "e99999", t));
        assert!(
            !d.check_and_insert(Source::Onestop, "e99899", t),
            "forgotten"
        );
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
