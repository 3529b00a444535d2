//! String interning for agency and procedure codes: each distinct code is stored once and
//! dossiers hold a `u32`. Ids are handed out in arrival order and never reused, which is
//! what the agency label limit (docs/contract.md §5.3) needs: the first N ids keep their own label.

use hashbrown::HashTable;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Interned strings; id 0 is reserved for `unknown`.
#[derive(Clone, Debug)]
pub struct Interner {
    names: Vec<Box<str>>,
    index: HashTable<u32>,
}

/// The id of `unknown`, the agency of a dossier no event has named one for.
pub const UNKNOWN: u32 = 0;

fn hash(s: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(s.as_bytes())
}

impl Default for Interner {
    fn default() -> Self {
        Self::from_names(vec!["unknown".into()])
    }
}

impl Interner {
    fn from_names(names: Vec<Box<str>>) -> Self {
        let mut index = HashTable::with_capacity(names.len());
        for (i, name) in names.iter().enumerate() {
            let id = u32::try_from(i).unwrap_or(u32::MAX);
            index.insert_unique(hash(name), id, |&j| hash(&names[j as usize]));
        }
        Self { names, index }
    }

    /// The id of `s`, adding it when new.
    pub fn intern(&mut self, s: &str) -> u32 {
        let h = hash(s);
        let names = &self.names;
        if let Some(&id) = self.index.find(h, |&j| &*names[j as usize] == s) {
            return id;
        }
        let id = u32::try_from(self.names.len()).unwrap_or(u32::MAX);
        self.names.push(s.into());
        let names = &self.names;
        self.index
            .insert_unique(h, id, |&j| hash(&names[j as usize]));
        id
    }

    /// The id of `s` if it was ever interned.
    #[must_use]
    pub fn get(&self, s: &str) -> Option<u32> {
        self.index
            .find(hash(s), |&j| &*self.names[j as usize] == s)
            .copied()
    }

    /// The string of `id` (`unknown` for an id never handed out).
    #[must_use]
    pub fn name(&self, id: u32) -> &str {
        self.names.get(id as usize).map_or("unknown", |s| s)
    }

    /// How many strings are interned, `unknown` included.
    #[must_use]
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Always false: `unknown` is always there.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

impl Serialize for Interner {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.names.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Interner {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let names = Vec::<Box<str>>::deserialize(d)?;
        if names.first().is_none_or(|n| &**n != "unknown") {
            return Err(serde::de::Error::custom(
                "interner must start with `unknown`",
            ));
        }
        Ok(Self::from_names(names))
    }
}

impl PartialEq for Interner {
    fn eq(&self, other: &Self) -> bool {
        self.names == other.names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_in_arrival_order() {
        let mut i = Interner::default();
        assert_eq!(i.intern("A"), 1);
        assert_eq!(i.intern("B"), 2);
        assert_eq!(i.intern("A"), 1);
        assert_eq!(i.name(2), "B");
        assert_eq!(i.get("unknown"), Some(UNKNOWN));
        let back: Interner = serde_json::from_str(&serde_json::to_string(&i).unwrap()).unwrap();
        assert_eq!(back, i);
        assert_eq!(back.get("B"), Some(2));
    }
}
