//! One-stop dossiers: the compact store and the status machine of docs/contract.md §2.4.
//!
//! A dossier remembers, for each thing decided by "the latest event that carries it" or
//! "the earliest event of a type", the ordering key `(occurred_at, event_id)` of that
//! event, so any later-arriving event can be placed exactly, whatever the arrival order.
//! To stay within ~300 bytes per open dossier the distinct event ids behind those keys are
//! packed into one small table inside the dossier (`IdTable`), codes are interned, and the dossiers live
//! in a dense `Vec` indexed by a `HashTable<u32>` (4 bytes per slot).

use hashbrown::HashTable;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use smallvec::SmallVec;

use super::counters::{Counters, Timing};
use super::intern::{Interner, UNKNOWN};
use super::periods::{self, Contribution, Periods};
use super::windows::Windows;
use crate::decode::{Channel, DossierEvent, DossierKind, DossierStatus, Due};
use crate::time::{Calendar, Ts};

/// Key slots of a dossier.
const LATEST: usize = 0;
const AGENCY: usize = 1;
const INTAKE: usize = 2;
const DUE: usize = 3;
const RECEIVED: usize = 4;
const RESOLVED: usize = 5;
const KEYS: usize = 6;
/// Marks a key never set.
const UNSET: i64 = i64::MIN;
/// Marks "no deadline" in `due_at` and "none" in `procedure`.
const NONE_TS: i64 = i64::MIN;
const NONE_ID: u32 = u32::MAX;

/// Up to six event ids, each stored once, length-prefixed (`u16` little-endian), inside the
/// dossier while they fit in [`IDS_INLINE`] bytes (two UUIDs: a dossier's keys settle at two
/// or three distinct ids), on the heap beyond. Inside, reading them costs no second trip to
/// memory: every event of a dossier reads them (to repack them when a key moves).
#[derive(Clone, Debug, Default)]
struct IdTable(SmallVec<[u8; IDS_INLINE]>);

/// Bytes of ids kept inside the dossier: two 36-character UUIDs with their lengths.
const IDS_INLINE: usize = 80;
/// Content up to this length is packed on the stack (six ids of up to 40 bytes).
const PACK_ON_STACK: usize = 256;

impl IdTable {
    /// The length of the entry at byte `at`, if one starts there.
    fn entry_len(&self, at: usize) -> Option<usize> {
        let b = self.0.get(at..at + 2)?;
        let len = usize::from(u16::from_le_bytes([b[0], b[1]]));
        (at + 2 + len <= self.0.len()).then_some(len)
    }

    /// The `i`-th id, as bytes (empty if out of range). Compared as bytes, which orders
    /// exactly as `str` does.
    fn get(&self, i: u8) -> &[u8] {
        let mut at = 0;
        for _ in 0..i {
            match self.entry_len(at) {
                Some(len) => at += 2 + len,
                None => return &[],
            }
        }
        self.entry_len(at)
            .map_or(&[], |len| &self.0[at + 2..at + 2 + len])
    }

    /// The entries.
    fn content(&self) -> &[u8] {
        &self.0
    }

    /// Packs `ids` (one per key, `None` for unset keys): writes the entries of the distinct
    /// ids into `stack` when they fit, else into `heap`. Returns the entries' length, the
    /// number of distinct ids and the slot of each key.
    fn pack(
        ids: [Option<&[u8]>; KEYS],
        stack: &mut [u8],
        heap: &mut Vec<u8>,
    ) -> (usize, usize, [u8; KEYS]) {
        let mut distinct: [&[u8]; KEYS] = [&[]; KEYS];
        let mut n = 0usize;
        let mut slots = [u8::MAX; KEYS];
        for (k, id) in ids.iter().enumerate() {
            let Some(id) = *id else { continue };
            let pos = distinct[..n]
                .iter()
                .position(|d| *d == id)
                .unwrap_or_else(|| {
                    distinct[n] = id;
                    n += 1;
                    n - 1
                });
            slots[k] = u8::try_from(pos).unwrap_or(u8::MAX);
        }
        // Ids are at most 128 characters (512 bytes), validated by decode.
        let lens = distinct.map(|d| u16::try_from(d.len()).unwrap_or(u16::MAX));
        let total = lens[..n].iter().map(|&l| 2 + usize::from(l)).sum();
        let out = if total <= stack.len() {
            &mut stack[..total]
        } else {
            heap.resize(total, 0);
            &mut heap[..]
        };
        let mut at = 0;
        for (d, len) in distinct[..n].iter().zip(lens) {
            let l = usize::from(len);
            out[at..at + 2].copy_from_slice(&len.to_le_bytes());
            out[at + 2..at + 2 + l].copy_from_slice(&d[..l]);
            at += 2 + l;
        }
        (total, n, slots)
    }

    /// Makes `content` the table's content (in the room it has when it fits).
    fn store(&mut self, content: &[u8]) {
        self.0.clear();
        self.0.extend_from_slice(content);
    }
}

impl<'de> Deserialize<'de> for IdTable {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(rename = "IdTable")]
        struct Form(Vec<u8>);
        let Form(content) = Form::deserialize(d)?;
        Ok(Self(SmallVec::from_vec(content)))
    }
}

impl PartialEq for IdTable {
    fn eq(&self, other: &Self) -> bool {
        self.content() == other.content()
    }
}

impl Eq for IdTable {}

impl Serialize for IdTable {
    /// The content only, in the same form as the whole blob would be.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_newtype_struct("IdTable", self.content())
    }
}

/// Dossier ids up to this length are kept inside the dossier.
const INLINE_ID: usize = 30;

/// A dossier id, kept inside the dossier when short (`000.00.19.H42-261124-0001` is 25
/// bytes), so that finding a dossier reads one place in memory instead of two, and the
/// dossier needs no allocation of its own for it. Serialised as the string it is.
#[derive(Clone)]
enum DossierId {
    Inline { len: u8, bytes: [u8; INLINE_ID] },
    Heap(Box<str>),
}

impl DossierId {
    fn new(id: &str) -> Self {
        let mut bytes = [0u8; INLINE_ID];
        match (bytes.get_mut(..id.len()), u8::try_from(id.len())) {
            (Some(dst), Ok(len)) => {
                dst.copy_from_slice(id.as_bytes());
                Self::Inline { len, bytes }
            }
            _ => Self::Heap(id.into()),
        }
    }

    fn as_bytes(&self) -> &[u8] {
        match self {
            Self::Inline { len, bytes } => &bytes[..usize::from(*len)],
            Self::Heap(id) => id.as_bytes(),
        }
    }

    fn as_str(&self) -> &str {
        match self {
            // Copied whole from a `str`: always UTF-8.
            Self::Inline { .. } => std::str::from_utf8(self.as_bytes()).unwrap_or_default(),
            Self::Heap(id) => id,
        }
    }
}

impl PartialEq for DossierId {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl std::fmt::Debug for DossierId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl Serialize for DossierId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for DossierId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Ok(Self::new(&String::deserialize(d)?))
    }
}

/// One dossier's state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Dossier {
    id: DossierId,
    ids: IdTable,
    key_ts: [i64; KEYS],
    key_slot: [u8; KEYS],
    agency: u32,
    procedure: u32,
    due_at: i64,
    status: DossierStatus,
    channel: Option<Channel>,
    received_online: bool,
    timing: Option<Timing>,
    resolution_observed: bool,
    /// When its tracker timer fires (not state: see [`Tracker`]).
    #[serde(skip)]
    armed: Armed,
}

/// The instant a dossier's tracker timer is armed for; a cache, equal whatever its value.
#[derive(Clone, Copy, Debug)]
struct Armed(i64);

impl Default for Armed {
    fn default() -> Self {
        Self(track::UNARMED)
    }
}

impl PartialEq for Armed {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Dossier {
    fn new(id: &str) -> Self {
        Self {
            id: DossierId::new(id),
            ids: IdTable::default(),
            key_ts: [UNSET; KEYS],
            key_slot: [u8::MAX; KEYS],
            agency: UNKNOWN,
            procedure: NONE_ID,
            due_at: NONE_TS,
            status: DossierStatus::Submitted,
            channel: None,
            received_online: false,
            timing: None,
            resolution_observed: false,
            armed: Armed::default(),
        }
    }

    fn is_set(&self, k: usize) -> bool {
        self.key_ts[k] != UNSET
    }

    fn cmp_key(&self, k: usize, ts: Ts, id: &str) -> std::cmp::Ordering {
        // The id only breaks a tie of instants: reading it walks the id table, which is
        // elsewhere in memory.
        ts.0.cmp(&self.key_ts[k])
            .then_with(|| id.as_bytes().cmp(self.ids.get(self.key_slot[k])))
    }

    /// Whether `(ts, id)` is later than key `k` (or `k` is unset).
    fn later(&self, k: usize, ts: Ts, id: &str) -> bool {
        !self.is_set(k) || self.cmp_key(k, ts, id).is_gt()
    }

    /// Whether `(ts, id)` is earlier than key `k` (or `k` is unset).
    fn earlier(&self, k: usize, ts: Ts, id: &str) -> bool {
        !self.is_set(k) || self.cmp_key(k, ts, id).is_lt()
    }

    /// Sets the keys in `mask` to `(ts, id)`.
    fn set_keys(&mut self, mask: u8, ts: Ts, id: &str) {
        if mask == 0 {
            return;
        }
        let mut ids: [Option<&[u8]>; KEYS] = [None; KEYS];
        for (k, slot) in ids.iter_mut().enumerate() {
            if mask & (1 << k) != 0 {
                *slot = Some(id.as_bytes());
            } else if self.is_set(k) {
                *slot = Some(self.ids.get(self.key_slot[k]));
            }
        }
        let mut stack = [0u8; PACK_ON_STACK];
        let mut heap = Vec::new();
        let (len, _, slots) = IdTable::pack(ids, &mut stack, &mut heap);
        let content = if len <= PACK_ON_STACK {
            &stack[..len]
        } else {
            &heap[..]
        };
        self.ids.store(content);
        self.key_slot = slots;
        for k in 0..KEYS {
            if mask & (1 << k) != 0 {
                self.key_ts[k] = ts.0;
            }
        }
    }

    /// The dossier id.
    #[must_use]
    pub fn id(&self) -> &str {
        self.id.as_str()
    }
    /// Current status.
    #[must_use]
    pub fn status(&self) -> DossierStatus {
        self.status
    }
    /// Interned agency id.
    #[must_use]
    pub fn agency(&self) -> u32 {
        self.agency
    }
    /// Interned procedure id, if known.
    #[must_use]
    pub fn procedure(&self) -> Option<u32> {
        (self.procedure != NONE_ID).then_some(self.procedure)
    }
    /// Filing channel, if known.
    #[must_use]
    pub fn channel(&self) -> Option<Channel> {
        self.channel
    }
    /// Current deadline, if any.
    #[must_use]
    pub fn due_at(&self) -> Option<Ts> {
        (self.due_at != NONE_TS).then_some(Ts(self.due_at))
    }
    /// `occurred_at` of the latest event.
    #[must_use]
    pub fn last_event_at(&self) -> Ts {
        Ts(self.key_ts[LATEST])
    }
    /// `occurred_at` of the earliest `received`, if any.
    #[must_use]
    pub fn received_at(&self) -> Option<Ts> {
        self.is_set(RECEIVED).then_some(Ts(self.key_ts[RECEIVED]))
    }
    /// `occurred_at` of the earliest `resolved`, if any.
    #[must_use]
    pub fn resolved_at(&self) -> Option<Ts> {
        self.is_set(RESOLVED).then_some(Ts(self.key_ts[RESOLVED]))
    }
    /// Timing of the earliest `resolved`, if any.
    #[must_use]
    pub fn timing(&self) -> Option<Timing> {
        self.timing
    }

    /// What this dossier contributes to the period tallies now (see [`super::periods`]).
    #[must_use]
    pub fn contribution(&self) -> Contribution {
        let channel = self
            .channel
            .and_then(|c| Channel::ALL.iter().position(|&a| a == c))
            .map_or(periods::CHANNELS - 1, |i| i);
        let closed = (!self.status.is_open()).then(|| {
            match (self.status, self.timing, self.resolved_at()) {
                (DossierStatus::Resolved | DossierStatus::Returned, Some(t), Some(at)) => {
                    let how = match t {
                        Timing::Early => periods::EARLY,
                        Timing::OnTime => periods::ON_TIME,
                        Timing::Late => periods::LATE,
                    };
                    (at.0, how)
                }
                _ => (self.key_ts[LATEST], periods::WITHOUT_RESULT),
            }
        });
        Contribution {
            agency: self.agency,
            procedure: self.procedure,
            received: self
                .received_at()
                .map(|at| (at.0, u8::try_from(channel).unwrap_or(u8::MAX))),
            open: self.status.is_open(),
            closed,
        }
    }
}

/// Separates a procedure code from its sector in the procedures' interner, which keeps
/// them together (`1.001234` U+001F `Hộ tịch`): a procedure belongs to one sector, and the
/// dossier then keeps both in one id, set by the same event.
pub const SECTOR_SEPARATOR: char = '\u{1f}';

/// The procedure code and its sector, if carried, of an interned procedure key.
#[must_use]
pub fn split_procedure(key: &str) -> (&str, Option<&str>) {
    match key.split_once(SECTOR_SEPARATOR) {
        Some((procedure, sector)) => (procedure, Some(sector)),
        None => (key, None),
    }
}

/// Interns `procedure` with its `sector` (see [`SECTOR_SEPARATOR`]).
fn intern_procedure(procedures: &mut Interner, procedure: &str, sector: Option<&str>) -> u32 {
    let Some(sector) = sector else {
        return procedures.intern(procedure);
    };
    let mut key = arrayvec::ArrayString::<256>::new();
    if key.try_push_str(procedure).is_ok()
        && key.try_push(SECTOR_SEPARATOR).is_ok()
        && key.try_push_str(sector).is_ok()
    {
        procedures.intern(&key)
    } else {
        procedures.intern(&format!("{procedure}{SECTOR_SEPARATOR}{sector}"))
    }
}

/// Classifies a resolution at `ts` against the deadline that event carried.
#[must_use]
pub fn classify(cal: &Calendar, ts: Ts, due: Due) -> Timing {
    match due {
        Due::At(due) if ts > due => Timing::Late,
        Due::At(due) if cal.day(ts) < cal.day(due) => Timing::Early,
        _ => Timing::OnTime,
    }
}

/// What applying one dossier event needs besides the dossier store.
pub struct Ctx<'c> {
    /// Thresholds, for the tracker.
    pub params: &'c crate::state::Params,
    /// Local calendar for days and minutes.
    pub cal: &'c Calendar,
    /// Agency codes.
    pub agencies: &'c mut Interner,
    /// Procedure codes.
    pub procedures: &'c mut Interner,
    /// Rolling windows.
    pub windows: &'c mut Windows,
    /// Counters.
    pub counters: &'c mut Counters,
    /// Period tallies.
    pub periods: &'c mut Periods,
}

/// All dossiers, dense, with a hash index by dossier id, and the figures that depend on
/// "now" kept up to date (the [`Tracker`]).
#[derive(Clone, Debug, Default)]
pub struct Dossiers {
    slab: super::cow::Slab<Dossier>,
    index: HashTable<u32>,
    track: track::Tracker,
    /// `(latest event, slot)` of every dossier, lazily, for eviction at the cap; and
    /// whether it covers every dossier (see [`crate::state::evict`]).
    oldest: (
        std::collections::BinaryHeap<std::cmp::Reverse<(i64, u32)>>,
        bool,
    ),
}

fn hash(id: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(id.as_bytes())
}

impl Dossiers {
    /// Number of dossiers held (open and retained closed ones).
    #[must_use]
    pub fn len(&self) -> usize {
        self.slab.len()
    }

    /// Whether no dossier is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.slab.is_empty()
    }

    /// Every dossier, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = &Dossier> {
        self.slab.iter()
    }

    /// A frozen copy of every dossier held now, for a checkpoint written elsewhere (shared
    /// copy-on-write: see [`crate::state::cow`]); serialises as `Dossiers` does.
    #[must_use]
    pub fn freeze(&self) -> super::cow::Frozen<Dossier, super::cow::Chunk<Dossier>> {
        self.slab.freeze()
    }

    /// The dossier with this id.
    #[must_use]
    pub fn get(&self, id: &str) -> Option<&Dossier> {
        let slab = &self.slab;
        self.index
            .find(hash(id), |&i| {
                slab[i as usize].id.as_bytes() == id.as_bytes()
            })
            .map(|&i| &slab[i as usize])
    }

    /// The slot of the dossier `id`, inserted if new; and whether it is new.
    fn get_or_insert(&mut self, id: &str) -> (usize, bool) {
        let h = hash(id);
        let slab = &self.slab;
        if let Some(&i) = self
            .index
            .find(h, |&i| slab[i as usize].id.as_bytes() == id.as_bytes())
        {
            return (i as usize, false);
        }
        let i = self.slab.len();
        self.slab.push(Dossier::new(id));
        let slab = &self.slab;
        self.index
            .insert_unique(h, u32::try_from(i).unwrap_or(u32::MAX), |&j| {
                hash(slab[j as usize].id())
            });
        (i, true)
    }

    /// Removes every dossier for which `drop` is true, telling `removed` about each;
    /// returns how many were removed.
    pub fn remove_where(
        &mut self,
        p: &crate::state::Params,
        mut drop: impl FnMut(&Dossier) -> bool,
        mut removed: impl FnMut(&Dossier),
    ) -> usize {
        let before = self.slab.len();
        let mut i = 0;
        while i < self.slab.len() {
            if drop(&self.slab[i]) {
                removed(&self.slab[i]);
                self.remove(p, i);
            } else {
                i += 1;
            }
        }
        before - self.slab.len()
    }

    fn remove_at(&mut self, i: usize) {
        let h = hash(self.slab[i].id());
        let pos = u32::try_from(i).unwrap_or(u32::MAX);
        if let Ok(entry) = self.index.find_entry(h, |&j| j == pos) {
            entry.remove();
        }
        let last = self.slab.len() - 1;
        self.slab.swap_remove(i);
        if i != last {
            // The former last dossier now lives at `i`: repoint its index entry.
            let moved = hash(self.slab[i].id());
            let from = u32::try_from(last).unwrap_or(u32::MAX);
            if let Some(slot) = self.index.find_mut(moved, |&j| j == from) {
                *slot = pos;
            }
        }
    }

    /// Applies one dossier event (docs/contract.md §2.4).
    pub fn apply(&mut self, e: &DossierEvent<'_>, ts: Ts, event_id: &str, ctx: &mut Ctx<'_>) {
        let (i, new) = self.get_or_insert(&e.dossier_id);
        let (before, old_share) = if new {
            (None, None)
        } else {
            (
                self.class_at(ctx.params, i),
                Some(self.slab[i].contribution()),
            )
        };
        let d = &mut self.slab[i];
        let mut mask = 0u8;
        if d.later(LATEST, ts, event_id) {
            d.status = e.kind.status_after();
            mask |= 1 << LATEST;
        }
        let event_agency = e.agency.as_deref().map(|a| ctx.agencies.intern(a));
        if let Some(agency) = event_agency
            && d.later(AGENCY, ts, event_id)
        {
            d.agency = agency;
            mask |= 1 << AGENCY;
        }
        if let (Some(channel), Some(procedure)) = (e.channel, e.procedure.as_deref())
            && d.later(INTAKE, ts, event_id)
        {
            d.channel = Some(channel);
            d.procedure = intern_procedure(ctx.procedures, procedure, e.sector.as_deref());
            mask |= 1 << INTAKE;
        }
        if e.due_at != Due::Absent && d.later(DUE, ts, event_id) {
            d.due_at = match e.due_at {
                Due::At(t) => t.0,
                _ => NONE_TS,
            };
            mask |= 1 << DUE;
        }
        if e.kind == DossierKind::Received && d.earlier(RECEIVED, ts, event_id) {
            let online = e.channel == Some(Channel::Online);
            if d.is_set(RECEIVED) {
                ctx.windows
                    .received(ctx.cal, Ts(d.key_ts[RECEIVED]), d.received_online, -1);
            } else if let Some(channel) = e.channel {
                ctx.counters
                    .received(event_agency.unwrap_or(UNKNOWN), channel);
            }
            ctx.windows.received(ctx.cal, ts, online, 1);
            d.received_online = online;
            mask |= 1 << RECEIVED;
        }
        if e.kind == DossierKind::Resolved && d.earlier(RESOLVED, ts, event_id) {
            let timing = classify(ctx.cal, ts, e.due_at);
            match d.timing {
                Some(old) if d.is_set(RESOLVED) => {
                    ctx.windows
                        .resolved(ctx.cal, Ts(d.key_ts[RESOLVED]), old.in_time(), -1);
                }
                _ => ctx
                    .counters
                    .resolved(event_agency.unwrap_or(d.agency), timing),
            }
            ctx.windows.resolved(ctx.cal, ts, timing.in_time(), 1);
            d.timing = Some(timing);
            mask |= 1 << RESOLVED;
        }
        d.set_keys(mask, ts, event_id);
        if !d.resolution_observed && d.is_set(RECEIVED) && d.is_set(RESOLVED) {
            let secs = Ts(d.key_ts[RESOLVED]).secs_since(Ts(d.key_ts[RECEIVED]));
            ctx.counters.resolution.observe(secs.max(0.0));
            d.resolution_observed = true;
        }
        let new_share = self.slab[i].contribution();
        ctx.periods
            .moved(ctx.cal, old_share.as_ref(), Some(&new_share));
        self.changed(ctx.params, i, before, new);
        if new {
            self.queue_new(i);
        }
    }
}

impl Serialize for Dossiers {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.slab.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Dossiers {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let slab = super::cow::Slab::<Dossier>::deserialize(d)?;
        let mut index = HashTable::with_capacity(slab.len());
        for (i, dossier) in slab.iter().enumerate() {
            index.insert_unique(
                hash(dossier.id()),
                u32::try_from(i).unwrap_or(u32::MAX),
                |&j| hash(slab[j as usize].id()),
            );
        }
        Ok(Self {
            slab,
            index,
            track: track::Tracker::default(),
            oldest: Default::default(),
        })
    }
}

impl PartialEq for Dossiers {
    /// Same dossiers, whatever their order in the store.
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().all(|d| other.get(d.id()) == Some(d))
    }
}

mod track;
pub use track::{AgencyGauges, Members, Tracker};

#[cfg(test)]
mod tests;

#[cfg(test)]
mod id_tests {
    use super::*;

    #[test]
    fn a_dossier_id_is_kept_whole_and_serialised_as_its_string() {
        let ids = [
            "D1",
            "000.00.19.H42-261124-0001",
            "123456789012345678901234567890",
            "1234567890123456789012345678901",
            &"é".repeat(15),
            &"é".repeat(16),
        ];
        for id in ids {
            let d = DossierId::new(id);
            assert_eq!(d.as_str(), id);
            assert_eq!(matches!(d, DossierId::Inline { .. }), id.len() <= INLINE_ID);
            let text = serde_json::to_string(&d).unwrap();
            assert_eq!(text, serde_json::to_string(id).unwrap());
            assert_eq!(serde_json::from_str::<DossierId>(&text).unwrap(), d);
        }
        assert_eq!(std::mem::size_of::<DossierId>(), 32);
    }
}
