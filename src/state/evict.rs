//! Memory caps: at most so many items of each kind are held; at the cap, the item whose
//! latest event is oldest makes room for the new one (issue 11.5). An eviction is counted
//! and marks its source as a possible gap: what iocd shows about that source may now miss
//! something.
//!
//! Finding the oldest costs what is evicted, not what is held: each kind keeps its items in
//! a lazy queue ordered by their latest event *when queued*. An item whose latest event has
//! moved on since is re-queued when its old place comes up; the queue is rebuilt (one pass)
//! when stale entries outnumber the items, and at the first eviction after a load.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

use crate::decode::Source;
use crate::time::Ts;

/// The kinds of items held, each with its cap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// One-stop dossiers (open, and closed ones within the retention).
    Dossier,
    /// Video-conferencing meetings.
    Meeting,
    /// Video-conferencing endpoints.
    Endpoint,
    /// Monitored SOC systems.
    System,
    /// SOC incidents.
    Incident,
}

impl Kind {
    /// Every kind, in the order of [`Evictions::count`].
    pub const ALL: [Kind; 5] = [
        Kind::Dossier,
        Kind::Meeting,
        Kind::Endpoint,
        Kind::System,
        Kind::Incident,
    ];

    /// The `kind` label value.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::Dossier => "dossier",
            Kind::Meeting => "meeting",
            Kind::Endpoint => "endpoint",
            Kind::System => "system",
            Kind::Incident => "incident",
        }
    }

    /// The source whose items these are.
    #[must_use]
    pub const fn source(self) -> Source {
        match self {
            Kind::Dossier => Source::Onestop,
            Kind::Meeting | Kind::Endpoint => Source::Vc,
            Kind::System | Kind::Incident => Source::Soc,
        }
    }
}

/// The most items of each kind held (`[state] max_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Caps {
    /// Dossiers.
    pub dossiers: usize,
    /// Meetings.
    pub meetings: usize,
    /// Endpoints.
    pub endpoints: usize,
    /// Monitored systems.
    pub systems: usize,
    /// Incidents.
    pub incidents: usize,
}

/// Evictions since the process started. Not saved in checkpoints: a counter that starts
/// again at a restart, as Prometheus expects of counters.
#[derive(Clone, Copy, Debug, Default)]
pub struct Evictions {
    /// Items evicted, by [`Kind::ALL`] index.
    pub count: [u64; 5],
    /// The daemon's time of the latest eviction, by source.
    pub last_at: [Option<Ts>; 3],
}

impl PartialEq for Evictions {
    /// Bookkeeping of the process, not state.
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Evictions {
    /// Counts one eviction of `kind` at `at`.
    pub fn record(&mut self, kind: Kind, at: Ts) {
        self.count[kind as usize] += 1;
        self.last_at[kind.source().index()] = Some(at);
    }
}

/// Stale entries tolerated beyond twice the items before the queue is dropped for a rebuild.
const STALE_MARGIN: usize = 4096;

/// Items of one kind, by id, in the order of their latest event (lazily; see the module).
#[derive(Clone, Debug, Default)]
pub struct Oldest {
    heap: BinaryHeap<Reverse<(Ts, Box<str>)>>,
    /// Whether every item held has an entry (false after a load or a compaction: the next
    /// eviction rebuilds the queue first).
    covered: bool,
}

impl PartialEq for Oldest {
    /// A cache for eviction, not state.
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Oldest {
    /// A new item `id` whose latest event is `last`; `held` items are held with it.
    pub fn added(&mut self, id: &str, last: Ts, held: usize) {
        if !self.covered {
            return;
        }
        if self.heap.len() > 2 * held + STALE_MARGIN {
            // Mostly stale: rebuilt at the next eviction.
            self.heap = BinaryHeap::new();
            self.covered = false;
            return;
        }
        self.heap.push(Reverse((last, id.into())));
    }

    /// The id of the item whose latest event is oldest (ties by id), given every item held
    /// (`all`, used only to rebuild the queue) and the latest event of an id (`None`: gone).
    pub fn take<'a>(
        &mut self,
        all: impl FnOnce() -> Vec<(Ts, &'a str)>,
        last_of: impl Fn(&str) -> Option<Ts>,
    ) -> Option<Box<str>> {
        if !self.covered {
            self.heap = all()
                .into_iter()
                .map(|(t, id)| Reverse((t, id.into())))
                .collect();
            self.covered = true;
        }
        while let Some(Reverse((t, id))) = self.heap.pop() {
            match last_of(&id) {
                None => {}
                Some(last) if last == t => return Some(id),
                Some(last) => self.heap.push(Reverse((last, id))),
            }
        }
        None
    }
}

/// At the cap, makes room in `items` for a new item `id`: removes the item whose latest
/// event (`last`) is oldest and returns it with its id. Nothing when `id` is held already or
/// there is room.
pub fn make_room<V, S: std::hash::BuildHasher>(
    items: &mut HashMap<String, V, S>,
    oldest: &mut Oldest,
    cap: usize,
    id: &str,
    last: impl Fn(&V) -> Ts,
) -> Option<(Box<str>, V)> {
    if items.len() < cap || items.contains_key(id) {
        return None;
    }
    let held = &*items;
    let all = || held.iter().map(|(k, v)| (last(v), k.as_str())).collect();
    let victim = oldest.take(all, |k| held.get(k).map(&last))?;
    let item = items.remove(&*victim)?;
    Some((victim, item))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn last_of<'a>(items: &'a [(&'a str, i64)]) -> impl Fn(&str) -> Option<Ts> + 'a {
        |id| items.iter().find(|(i, _)| *i == id).map(|(_, t)| Ts(*t))
    }

    #[test]
    fn the_item_whose_latest_event_is_oldest_goes_first_even_after_it_moved_on() {
        let mut items = vec![("a", 10), ("b", 20), ("c", 30)];
        let mut q = Oldest::default();
        let all = |items: &[(&'static str, i64)]| -> Vec<(Ts, &'static str)> {
            items.iter().map(|(id, t)| (Ts(*t), *id)).collect()
        };
        let snapshot = items.clone();
        assert_eq!(
            q.take(|| all(&snapshot), last_of(&items)).as_deref(),
            Some("a")
        );
        items.retain(|(id, _)| *id != "a");
        // b moves on past c: c is now the oldest.
        items[0].1 = 40;
        q.added("d", Ts(35), items.len());
        items.push(("d", 35));
        assert_eq!(q.take(Vec::new, last_of(&items)).as_deref(), Some("c"));
        items.retain(|(id, _)| *id != "c");
        assert_eq!(q.take(Vec::new, last_of(&items)).as_deref(), Some("d"));
    }

    #[test]
    fn a_queue_of_mostly_stale_entries_is_rebuilt_from_the_items() {
        let mut q = Oldest::default();
        let none: [(&str, i64); 0] = [];
        assert!(q.take(Vec::new, last_of(&none)).is_none());
        for i in 0..(STALE_MARGIN + 10) {
            q.added(&format!("x{i}"), Ts(i as i64), 1);
        }
        assert!(q.heap.len() <= STALE_MARGIN + 3, "{}", q.heap.len());
        let items = [("z", 5)];
        assert_eq!(
            q.take(|| vec![(Ts(5), "z")], last_of(&items)).as_deref(),
            Some("z")
        );
    }
}
