//! Copy-on-write containers for the large parts of the state, so that a checkpoint can be
//! written from a frozen copy on another thread while the pipeline goes on applying events.
//!
//! Both keep their items in chunks behind `Arc`s. Freezing clones the `Arc`s
//! (one per chunk: under a millisecond for a million items), never the items. A slab's
//! items lie inside the `Arc`'s own allocation (an [`ArrayVec`]), so reaching one reads the
//! chunk table and then the item, as a `Vec` would, plus the chunk's counter on a write.
//! - [`Slab`], a vector changed anywhere (the dossiers): writing to a chunk that a frozen
//!   copy still holds copies that chunk first (once per chunk and checkpoint), so the
//!   pipeline pays at most one chunk copy per event, and memory grows by at most the chunks
//!   written while a checkpoint is being written.
//! - [`Fifo`], a queue appended at the back and consumed at the front (the dedupe memory,
//!   the forgotten dossiers): full chunks are never written again, so freezing copies only
//!   the chunk being filled and nothing is ever copied afterwards.
//!
//! Frozen copies serialise exactly as a `Vec` of the same items would.

use std::collections::VecDeque;
use std::marker::PhantomData;
use std::ops::Deref;
use std::sync::Arc;

use arrayvec::ArrayVec;
use serde::ser::SerializeSeq as _;
use serde::{Serialize, Serializer};

/// Items per chunk of a [`Slab`]. A write after a freeze copies its whole chunk, and writes
/// spread over the store (transfers of dossiers filed any day) copy about
/// `items × (1 − e^(−writes × SLAB_CHUNK / items))` items while a checkpoint is written: with a
/// thousand per chunk every chunk of a million dossiers is copied within a tenth of a second
/// at 20,000 events/s (measured: the pipeline fell 170 ms behind), with 64 about a third.
/// Smaller chunks make freezing slower (an `Arc` each) and the chunk table larger.
pub const SLAB_CHUNK: usize = 64;

/// Items per chunk of a [`Fifo`]: full chunks are never copied, so only freezing (an `Arc`
/// each) and the open chunk's copy depend on it.
pub const FIFO_CHUNK: usize = 1024;

/// One chunk of a [`Slab`]: its items inline.
pub type Chunk<T> = ArrayVec<T, SLAB_CHUNK>;

/// A vector in copy-on-write chunks (see the module). `clone` copies the items (an
/// independent store, as a `Vec`'s clone); [`Slab::freeze`] shares them.
#[derive(Debug)]
pub struct Slab<T> {
    chunks: Vec<Arc<Chunk<T>>>,
    len: usize,
}

impl<T: Clone> Clone for Slab<T> {
    fn clone(&self) -> Self {
        Self {
            chunks: self
                .chunks
                .iter()
                .map(|c| Arc::new(Chunk::clone(c)))
                .collect(),
            len: self.len,
        }
    }
}

impl<T> Default for Slab<T> {
    fn default() -> Self {
        Self {
            chunks: Vec::new(),
            len: 0,
        }
    }
}

/// The chunk `c` made writable: copied first when a frozen copy shares it.
fn writable<T: Clone>(c: &mut Arc<Chunk<T>>) -> &mut Chunk<T> {
    Arc::make_mut(c)
}

impl<T: Clone> Slab<T> {
    /// Items held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether none is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The item at `i`.
    #[must_use]
    pub fn get(&self, i: usize) -> Option<&T> {
        self.chunks.get(i / SLAB_CHUNK)?.get(i % SLAB_CHUNK)
    }

    /// The item at `i`, writable (its chunk copied first if a frozen copy shares it).
    pub fn get_mut(&mut self, i: usize) -> Option<&mut T> {
        if i >= self.len {
            return None;
        }
        writable(self.chunks.get_mut(i / SLAB_CHUNK)?).get_mut(i % SLAB_CHUNK)
    }

    /// Appends `item` at index `len()`.
    pub fn push(&mut self, item: T) {
        if self.len.is_multiple_of(SLAB_CHUNK) {
            self.chunks.push(Arc::new(Chunk::new()));
        }
        if let Some(last) = self.chunks.last_mut() {
            writable(last).push(item);
            self.len += 1;
        }
    }

    /// Removes the item at `i` and puts the last one in its place (as `Vec::swap_remove`).
    pub fn swap_remove(&mut self, i: usize) -> Option<T> {
        if i >= self.len {
            return None;
        }
        let last = self.chunks.last_mut().map(writable)?.pop()?;
        self.len -= 1;
        if self.len.is_multiple_of(SLAB_CHUNK) {
            self.chunks.pop();
        }
        if i == self.len {
            return Some(last);
        }
        let slot = self.get_mut(i)?;
        Some(std::mem::replace(slot, last))
    }

    /// Every item, in index order.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.chunks.iter().flat_map(|c| c.iter())
    }

    /// Every item, writable, in index order (copying the shared chunks).
    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.chunks.iter_mut().flat_map(|c| writable(c).iter_mut())
    }

    /// A frozen copy: what the slab holds now, whatever is written to it later.
    #[must_use]
    pub fn freeze(&self) -> Frozen<T, Chunk<T>> {
        Frozen {
            chunks: self.chunks.clone(),
            skip: 0,
            len: self.len,
            items: PhantomData,
        }
    }
}

impl<T: Clone> FromIterator<T> for Slab<T> {
    fn from_iter<I: IntoIterator<Item = T>>(items: I) -> Self {
        let mut slab = Self::default();
        for item in items {
            slab.push(item);
        }
        slab
    }
}

impl<T> std::ops::Index<usize> for Slab<T> {
    type Output = T;

    fn index(&self, i: usize) -> &T {
        &self.chunks[i / SLAB_CHUNK][i % SLAB_CHUNK]
    }
}

impl<T: Clone> std::ops::IndexMut<usize> for Slab<T> {
    fn index_mut(&mut self, i: usize) -> &mut T {
        &mut writable(&mut self.chunks[i / SLAB_CHUNK])[i % SLAB_CHUNK]
    }
}

impl<T: Serialize + Clone> Serialize for Slab<T> {
    /// As a `Vec<T>`.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serialize_seq(s, self.len, self.iter())
    }
}

impl<'de, T: serde::Deserialize<'de> + Clone> serde::Deserialize<'de> for Slab<T> {
    /// From a `Vec<T>`'s form, straight into chunks (no whole-store copy on loading).
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Items<T>(std::marker::PhantomData<T>);
        impl<'de, T: serde::Deserialize<'de> + Clone> serde::de::Visitor<'de> for Items<T> {
            type Value = Slab<T>;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a sequence")
            }

            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Slab<T>, A::Error> {
                let mut slab = Slab::default();
                slab.chunks
                    .reserve(seq.size_hint().unwrap_or(0).div_ceil(SLAB_CHUNK));
                while let Some(item) = seq.next_element()? {
                    slab.push(item);
                }
                Ok(slab)
            }
        }
        d.deserialize_seq(Items(std::marker::PhantomData))
    }
}

/// `len` items as a sequence of known length: the form of a `Vec`, which postcard needs
/// (it writes the length first, so `collect_seq` of an iterator of inexact size fails).
///
/// # Errors
///
/// The serializer's, as it reports them.
pub fn serialize_seq<S: Serializer>(
    s: S,
    len: usize,
    items: impl Iterator<Item = impl Serialize>,
) -> Result<S::Ok, S::Error> {
    let mut seq = s.serialize_seq(Some(len))?;
    for item in items {
        seq.serialize_element(&item)?;
    }
    seq.end()
}

/// A frozen copy of a [`Slab`] (chunks `C` = [`Chunk`]) or a [`Fifo`] (`Vec`s): shared
/// chunks, read only. `Send` when the items are, so it can be written out on another thread.
#[derive(Debug)]
pub struct Frozen<T, C = Vec<T>> {
    /// The chunks, shared with the container (a fifo's open chunk: a copy).
    chunks: Vec<Arc<C>>,
    /// Items before the first one held.
    skip: usize,
    len: usize,
    items: PhantomData<T>,
}

impl<T, C> Clone for Frozen<T, C> {
    fn clone(&self) -> Self {
        Self {
            chunks: self.chunks.clone(),
            skip: self.skip,
            len: self.len,
            items: PhantomData,
        }
    }
}

impl<T, C: Deref<Target = [T]>> Frozen<T, C> {
    /// Items held when frozen.
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether none was held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The items, in order.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.chunks
            .iter()
            .flat_map(|c| c.iter())
            .skip(self.skip)
            .take(self.len)
    }
}

impl<T: Serialize, C: Deref<Target = [T]>> Serialize for Frozen<T, C> {
    /// As a `Vec<T>` of the items held when frozen.
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        serialize_seq(s, self.len, self.iter())
    }
}

/// A first-in first-out queue in chunks that are never written again once full (see the
/// module): appended at the back, consumed at the front.
#[derive(Clone, Debug)]
pub struct Fifo<T> {
    /// Full chunks, oldest first.
    full: VecDeque<Arc<Vec<T>>>,
    /// The chunk being filled.
    open: Vec<T>,
    /// Items already consumed at the start of the first chunk (of `full`, else of `open`).
    skip: usize,
    len: usize,
}

impl<T> Default for Fifo<T> {
    fn default() -> Self {
        Self {
            full: VecDeque::new(),
            open: Vec::new(),
            skip: 0,
            len: 0,
        }
    }
}

impl<T: Copy> Fifo<T> {
    /// Items held.
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether none is held.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The `i`-th item from the front.
    #[must_use]
    pub fn get(&self, i: usize) -> Option<&T> {
        if i >= self.len {
            return None;
        }
        let at = self.skip + i;
        match self.full.get(at / FIFO_CHUNK) {
            Some(chunk) => chunk.get(at % FIFO_CHUNK),
            None => self.open.get(at - self.full.len() * FIFO_CHUNK),
        }
    }

    /// The oldest item.
    #[must_use]
    pub fn front(&self) -> Option<&T> {
        self.get(0)
    }

    /// Appends `item` at the back.
    pub fn push_back(&mut self, item: T) {
        if self.open.capacity() == 0 {
            self.open.reserve_exact(FIFO_CHUNK);
        }
        self.open.push(item);
        self.len += 1;
        if self.open.len() == FIFO_CHUNK {
            let full = std::mem::replace(&mut self.open, Vec::with_capacity(FIFO_CHUNK));
            self.full.push_back(Arc::new(full));
        }
    }

    /// Removes and returns the oldest item.
    pub fn pop_front(&mut self) -> Option<T> {
        let item = *self.front()?;
        self.len -= 1;
        self.skip += 1;
        if self.full.is_empty() {
            if self.skip == self.open.len() {
                self.open.clear();
                self.skip = 0;
            }
        } else if self.skip == FIFO_CHUNK {
            self.full.pop_front();
            self.skip = 0;
        }
        Some(item)
    }

    /// The items, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.full
            .iter()
            .flat_map(|c| c.iter())
            .chain(self.open.iter())
            .skip(self.skip)
    }

    /// A frozen copy: what the queue holds now (the open chunk copied, the full ones shared).
    #[must_use]
    pub fn freeze(&self) -> Frozen<T> {
        let mut chunks: Vec<Arc<Vec<T>>> = self.full.iter().cloned().collect();
        chunks.push(Arc::new(self.open.clone()));
        Frozen {
            chunks,
            skip: self.skip,
            len: self.len,
            items: PhantomData,
        }
    }
}

impl<T: Copy> FromIterator<T> for Fifo<T> {
    fn from_iter<I: IntoIterator<Item = T>>(items: I) -> Self {
        let mut fifo = Self::default();
        for item in items {
            fifo.push_back(item);
        }
        fifo
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use proptest::prelude::*;

    use super::*;

    /// An operation on both a container and its model.
    #[derive(Clone, Debug)]
    enum Op {
        Push(u32),
        Remove(usize),
        Set(usize, u32),
        Freeze,
    }

    fn ops() -> impl Strategy<Value = Vec<Op>> {
        let op = prop_oneof![
            4 => any::<u32>().prop_map(Op::Push),
            2 => any::<usize>().prop_map(Op::Remove),
            2 => (any::<usize>(), any::<u32>()).prop_map(|(i, v)| Op::Set(i, v)),
            1 => Just(Op::Freeze),
        ];
        prop::collection::vec(op, 0..6000)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// A slab behaves as a `Vec`, and every frozen copy keeps what it held when frozen
        /// whatever is written afterwards.
        #[test]
        fn a_slab_is_a_vec_and_frozen_copies_do_not_change(ops in ops()) {
            let mut slab = Slab::default();
            let mut model = Vec::new();
            let mut frozen = Vec::new();
            for op in ops {
                match op {
                    Op::Push(v) => { slab.push(v); model.push(v); }
                    Op::Remove(i) if !model.is_empty() => {
                        let i = i % model.len();
                        prop_assert_eq!(slab.swap_remove(i), Some(model.swap_remove(i)));
                    }
                    Op::Set(i, v) if !model.is_empty() => {
                        let i = i % model.len();
                        slab[i] = v;
                        model[i] = v;
                    }
                    Op::Freeze => frozen.push((slab.freeze(), model.clone())),
                    _ => {}
                }
                prop_assert_eq!(slab.len(), model.len());
            }
            prop_assert!(slab.iter().eq(model.iter()));
            prop_assert_eq!(slab.get(model.len()), None);
            for (f, then) in &frozen {
                prop_assert!(f.iter().eq(then.iter()));
                prop_assert_eq!(postcard::to_allocvec(f).ok(), postcard::to_allocvec(then).ok());
            }
            prop_assert_eq!(postcard::to_allocvec(&slab).ok(), postcard::to_allocvec(&model).ok());
        }

        /// A fifo behaves as a `VecDeque` used as a queue, and frozen copies do not change.
        #[test]
        fn a_fifo_is_a_queue_and_frozen_copies_do_not_change(ops in ops()) {
            let mut fifo = Fifo::default();
            let mut model = VecDeque::new();
            let mut frozen = Vec::new();
            for op in ops {
                match op {
                    Op::Push(v) => { fifo.push_back(v); model.push_back(v); }
                    Op::Remove(_) | Op::Set(..) => {
                        prop_assert_eq!(fifo.pop_front(), model.pop_front());
                    }
                    Op::Freeze => frozen.push((fifo.freeze(), model.clone())),
                }
                prop_assert_eq!(fifo.len(), model.len());
                prop_assert_eq!(fifo.front(), model.front());
            }
            for i in [0, 1, FIFO_CHUNK - 1, FIFO_CHUNK, model.len() / 2, model.len()] {
                prop_assert_eq!(fifo.get(i), model.get(i));
            }
            prop_assert!(fifo.iter().eq(model.iter()));
            for (f, then) in &frozen {
                prop_assert_eq!(f.len(), then.len());
                prop_assert!(f.iter().eq(then.iter()));
            }
        }
    }

    #[test]
    fn a_clone_shares_no_chunk() {
        let slab: Slab<u64> = (0..3 * SLAB_CHUNK as u64).collect();
        let copy = slab.clone();
        assert!(copy.iter().eq(slab.iter()));
        assert!(
            (0..3).all(|c| !Arc::ptr_eq(&slab.chunks[c], &copy.chunks[c])),
            "a clone is a store of its own"
        );
    }

    #[test]
    fn writing_after_a_freeze_copies_only_the_chunk_written() {
        let mut slab: Slab<u64> = (0..10 * SLAB_CHUNK as u64).collect();
        let frozen = slab.freeze();
        slab[3 * SLAB_CHUNK + 5] = u64::MAX;
        let shared = (0..10)
            .filter(|&c| Arc::ptr_eq(&slab.chunks[c], &frozen.chunks[c]))
            .count();
        assert_eq!(shared, 9);
        assert_eq!(
            frozen.iter().nth(3 * SLAB_CHUNK + 5),
            Some(&(3 * SLAB_CHUNK as u64 + 5))
        );
        assert_eq!(slab.chunks[3].capacity(), SLAB_CHUNK);
    }
}
