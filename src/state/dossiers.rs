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
use crate::decode::{
    Channel, DossierEvent, DossierKind, DossierStatus, Due, Facts, PaymentMethod, Rating,
};
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
    /// The received facts of contract 1.2 and its electronic result (see [`Facts766`]).
    facts: Facts766,
    /// Its latest payment and rating (contract 1.2) and its supplement requests, boxed: most
    /// dossiers have none of them.
    extras: Option<Box<Extras766>>,
    /// When its tracker timer fires (not state: see [`Tracker`]).
    #[serde(skip)]
    armed: Armed,
}

/// A dossier as checkpoint formats 1 to 4 wrote it: without the facts of contract 1.2.
#[derive(Clone, Deserialize)]
#[serde(rename = "Dossier")]
pub(super) struct Dossier4 {
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
}

impl From<Dossier4> for Dossier {
    fn from(d: Dossier4) -> Self {
        Self {
            id: d.id,
            ids: d.ids,
            key_ts: d.key_ts,
            key_slot: d.key_slot,
            agency: d.agency,
            procedure: d.procedure,
            due_at: d.due_at,
            status: d.status,
            channel: d.channel,
            received_online: d.received_online,
            timing: d.timing,
            resolution_observed: d.resolution_observed,
            facts: Facts766::default(),
            extras: None,
            armed: Armed::default(),
        }
    }
}

/// The facts of contract 1.2 a dossier keeps, two bits each (unknown, false, true): those of
/// its earliest `received` (fees, paper result, digitised, reused data), and whether its
/// result was electronic: true when any `resolved` or `returned` said so, else false when
/// one said not, else unknown (an order-independent rule: the same whatever the order).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Facts766(u16);

impl Facts766 {
    const FEE: u32 = 0;
    const PAPER: u32 = 2;
    const DIGITISED: u32 = 4;
    const REUSED: u32 = 6;
    const ELECTRONIC: u32 = 8;

    fn get(self, at: u32) -> Option<bool> {
        match (self.0 >> at) & 0b11 {
            0b10 => Some(false),
            0b11 => Some(true),
            _ => None,
        }
    }

    fn set(&mut self, at: u32, v: Option<bool>) {
        let bits = match v {
            None => 0,
            Some(false) => 0b10,
            Some(true) => 0b11,
        };
        self.0 = (self.0 & !(0b11 << at)) | (bits << at);
    }

    /// Fees or charges are due (`fee_required` of the earliest `received`).
    #[must_use]
    pub fn fee_required(self) -> Option<bool> {
        self.get(Self::FEE)
    }
    /// The procedure returns a paper result.
    #[must_use]
    pub fn paper_result(self) -> Option<bool> {
        self.get(Self::PAPER)
    }
    /// Digitised at receipt.
    #[must_use]
    pub fn digitised(self) -> Option<bool> {
        self.get(Self::DIGITISED)
    }
    /// A component was reused from digitised data.
    #[must_use]
    pub fn reused_data(self) -> Option<bool> {
        self.get(Self::REUSED)
    }
    /// An electronic result was attached.
    #[must_use]
    pub fn result_electronic(self) -> Option<bool> {
        self.get(Self::ELECTRONIC)
    }

    /// Takes the received facts of `f` (the earliest `received`'s, unknown ones included).
    fn received(&mut self, f: Facts) {
        self.set(Self::FEE, f.fee_required);
        self.set(Self::PAPER, f.paper_result);
        self.set(Self::DIGITISED, f.digitised);
        self.set(Self::REUSED, f.reused_data);
    }

    /// Takes a result's `result_electronic`: true wins over false, false over unknown.
    fn result(&mut self, electronic: Option<bool>) {
        let now = self.result_electronic();
        if electronic == Some(true) || (electronic == Some(false) && now.is_none()) {
            self.set(Self::ELECTRONIC, electronic);
        }
    }
}

/// The latest `paid` and `rated` of a dossier, each with the instant and event id that
/// decide which is latest (the id breaks a tie of instants, as for the dossier's keys), and
/// its supplement requests.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Extras766 {
    paid: Option<(i64, Box<str>, PaymentMethod)>,
    rated: Option<(i64, Box<str>, Rating, Option<bool>)>,
    /// The two smallest hashes of the event ids of its `supplement_requested` (0: none):
    /// "more than one request" is then a function of the set of requests, so the same
    /// request delivered again after the dedupe memory forgot it is not a second one.
    supplements: [u64; 2],
}

impl Extras766 {
    /// Takes the `supplement_requested` whose event id is `id`.
    fn supplement(&mut self, id: &str) {
        // Never 0, which marks an empty slot.
        let h = xxhash_rust::xxh3::xxh3_64(id.as_bytes()).max(1);
        let [a, b] = self.supplements;
        if h == a || h == b {
            return;
        }
        let mut kept = [a, b, h];
        kept.sort_unstable_by_key(|&x| if x == 0 { u64::MAX } else { x });
        self.supplements = [kept[0], kept[1]];
    }

    /// Distinct supplement requests seen, 0, 1 or 2 (2: two or more).
    fn supplements(&self) -> u8 {
        self.supplements.iter().map(|&h| u8::from(h != 0)).sum()
    }
}

/// Whether `(ts, id)` is later than `kept`'s (or nothing is kept).
fn later_than(kept: Option<(i64, &str)>, ts: Ts, id: &str) -> bool {
    kept.is_none_or(|(at, kept_id)| (ts.0, id) > (at, kept_id))
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
            facts: Facts766::default(),
            extras: None,
            armed: Armed::default(),
        }
    }

    /// Whether a status event (anything but `paid` and `rated`) has been seen: a dossier
    /// known only from a payment or a rating has no status yet and is neither open nor
    /// closed, until its status events come.
    #[must_use]
    pub fn has_status(&self) -> bool {
        self.is_set(LATEST)
    }
    /// Open: a status seen, and an open one.
    #[must_use]
    pub fn is_open(&self) -> bool {
        self.has_status() && self.status.is_open()
    }
    /// Closed: a status seen, and a closed one.
    #[must_use]
    pub fn is_closed(&self) -> bool {
        self.has_status() && !self.status.is_open()
    }
    /// The status's index among the open ones, when open.
    #[must_use]
    pub fn open_index(&self) -> Option<usize> {
        if self.has_status() {
            self.status.open_index()
        } else {
            None
        }
    }
    /// Late by the rules of the 766 progress indicator (open or closed, whatever the time):
    /// more than one supplement request; or, waiting for the citizen or paused, the clock
    /// stopped after its deadline (its latest event, the request or the pause, after
    /// `due_at`). An in-progress dossier past its deadline is late too, but that depends on
    /// the time: see the tracker's `late_766`.
    #[must_use]
    pub fn late_766_by_events(&self) -> bool {
        self.supplements() > 1
            || (matches!(
                self.status,
                DossierStatus::WaitingCitizen | DossierStatus::Paused
            ) && self.due_at().is_some_and(|due| self.last_event_at() > due))
    }
    /// The facts of contract 1.2 it keeps.
    #[must_use]
    pub fn facts(&self) -> Facts766 {
        self.facts
    }
    /// Its distinct supplement requests: 0, 1, or 2 for two or more.
    #[must_use]
    pub fn supplements(&self) -> u8 {
        self.extras.as_ref().map_or(0, |p| p.supplements())
    }
    /// How its latest payment was made, if one came.
    #[must_use]
    pub fn payment(&self) -> Option<PaymentMethod> {
        self.extras.as_ref()?.paid.as_ref().map(|p| p.2)
    }
    /// Its latest rating, with whether a complaint came with it, if one came.
    #[must_use]
    pub fn rating(&self) -> Option<(Rating, Option<bool>)> {
        self.extras.as_ref()?.rated.as_ref().map(|r| (r.2, r.3))
    }

    /// Takes a `paid` or `rated` event when it is the latest of its kind.
    fn paid_or_rated(&mut self, e: &DossierEvent<'_>, ts: Ts, id: &str) {
        let pr = self.extras.get_or_insert_with(Box::default);
        match (e.kind, e.method, e.rating) {
            (DossierKind::Paid, Some(method), _)
                if later_than(pr.paid.as_ref().map(|p| (p.0, &*p.1)), ts, id) =>
            {
                pr.paid = Some((ts.0, id.into(), method));
            }
            (DossierKind::Rated, _, Some(rating))
                if later_than(pr.rated.as_ref().map(|r| (r.0, &*r.1)), ts, id) =>
            {
                pr.rated = Some((ts.0, id.into(), rating, e.facts.complaint));
            }
            _ => {}
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
        let closed =
            self.is_closed()
                .then(|| match (self.status, self.timing, self.resolved_at()) {
                    (DossierStatus::Resolved | DossierStatus::Returned, Some(t), Some(at)) => {
                        let how = match t {
                            Timing::Early => periods::EARLY,
                            Timing::OnTime => periods::ON_TIME,
                            Timing::Late => periods::LATE,
                        };
                        (at.0, how)
                    }
                    _ => (self.key_ts[LATEST], periods::WITHOUT_RESULT),
                });
        Contribution {
            agency: self.agency,
            procedure: self.procedure,
            received: self
                .received_at()
                .map(|at| (at.0, u8::try_from(channel).unwrap_or(u8::MAX))),
            open: self.is_open(),
            closed,
            scored: self.scored(),
        }
    }

    /// What it counts towards the 766 scores (see [`periods::Score`]).
    fn scored(&self) -> periods::Scored {
        let f = self.facts;
        let electronic = f.result_electronic();
        let rating = self.rating();
        periods::Scored {
            fee_required: f.fee_required() == Some(true),
            paid_online: self.payment().is_some_and(PaymentMethod::is_online),
            reused: f.reused_data(),
            in_time: matches!(self.timing, Some(Timing::Early | Timing::OnTime))
                && self.supplements() <= 1,
            paper_electronic: if f.paper_result() == Some(true) {
                electronic
            } else {
                None
            },
            digitised_electronic: f.digitised().zip(electronic).map(|(d, e)| d && e),
            unsatisfied: rating
                .is_some_and(|(r, complaint)| r == Rating::Unsatisfied || complaint == Some(true)),
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

    /// For the checkpoint upgrade tests: every dossier as a format before contract 1.2
    /// holds it (no fact, payment or rating; no supplement count).
    #[cfg(test)]
    pub(crate) fn without_1_2(&mut self) {
        for d in self.slab.iter_mut() {
            d.facts = Facts766::default();
            d.extras = None;
        }
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
        self.get_hashed(hash(id), id)
    }

    /// The hash of dossier id `id` in the index, for [`Dossiers::get_hashed`].
    #[must_use]
    pub(crate) fn hash_of(id: &str) -> u64 {
        hash(id)
    }

    /// [`Dossiers::get`] with the id's hash already computed.
    #[must_use]
    pub(crate) fn get_hashed(&self, h: u64, id: &str) -> Option<&Dossier> {
        let slab = &self.slab;
        self.index
            .find(h, |&i| slab[i as usize].id.as_bytes() == id.as_bytes())
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
        match e.kind.status_after() {
            Some(status) if d.later(LATEST, ts, event_id) => {
                d.status = status;
                mask |= 1 << LATEST;
            }
            Some(_) => {}
            // A payment or a rating changes no status and no key: the latest of each is kept
            // with its own instant and id.
            None => d.paid_or_rated(e, ts, event_id),
        }
        if matches!(e.kind, DossierKind::Resolved | DossierKind::Returned) {
            d.facts.result(e.facts.result_electronic);
        }
        if e.kind == DossierKind::SupplementRequested {
            d.extras
                .get_or_insert_with(Box::default)
                .supplement(event_id);
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
            d.facts.received(e.facts);
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
        Ok(Self::from_slab(super::cow::Slab::<Dossier>::deserialize(
            d,
        )?))
    }
}

/// [`Dossiers`] as checkpoint formats 1 to 4 wrote them ([`Dossier4`]).
pub(super) struct Dossiers4(pub(super) Dossiers);

impl<'de> Deserialize<'de> for Dossiers4 {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let old = super::cow::Slab::<Dossier4>::deserialize(d)?;
        let slab = old.iter().cloned().map(Dossier::from).collect();
        Ok(Self(Dossiers::from_slab(slab)))
    }
}

impl Dossiers {
    fn from_slab(slab: super::cow::Slab<Dossier>) -> Self {
        let mut index = HashTable::with_capacity(slab.len());
        for (i, dossier) in slab.iter().enumerate() {
            index.insert_unique(
                hash(dossier.id()),
                u32::try_from(i).unwrap_or(u32::MAX),
                |&j| hash(slab[j as usize].id()),
            );
        }
        Self {
            slab,
            index,
            track: track::Tracker::default(),
            oldest: Default::default(),
        }
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
