//! The session's memory of ids it has seen (call ids run, outputs delivered, calls the server
//! knows), kept small: each id is a 64-bit keyed hash, and a bounded set remembers only the
//! most recent ones.
//!
//! A bounded set may forget: that is only safe where something else answers for older ids.
//! The runner bounds the sets that say whether a call ran only when the history store can
//! answer for calls that left the window (see `HistorySink::call_started`); without a store
//! they keep every id, at 16 bytes or so each.

use std::{
    collections::{HashSet, VecDeque},
    hash::{BuildHasher, Hash, RandomState},
};

/// A set of ids that keeps the `capacity` most recently inserted (all of them when `None`).
#[derive(Debug)]
pub(crate) struct RecentIds {
    /// Keyed per set, so ids chosen by a peer cannot be made to collide.
    hasher: RandomState,
    members: HashSet<u64, IdentityHash>,
    /// Insertion order, for forgetting the oldest; empty when unbounded.
    order: VecDeque<u64>,
    capacity: Option<usize>,
}

impl RecentIds {
    /// A set that remembers the last `capacity` ids.
    pub(crate) fn bounded(capacity: usize) -> Self {
        Self::new(Some(capacity.max(1)))
    }

    /// A set that remembers every id.
    pub(crate) fn unbounded() -> Self {
        Self::new(None)
    }

    fn new(capacity: Option<usize>) -> Self {
        RecentIds {
            hasher: RandomState::new(),
            members: HashSet::default(),
            order: VecDeque::new(),
            capacity,
        }
    }

    fn digest(&self, id: impl Hash) -> u64 {
        self.hasher.hash_one(id)
    }

    /// Adds `id`; returns whether it was new. The oldest id is forgotten past the capacity.
    pub(crate) fn insert(&mut self, id: impl Hash) -> bool {
        let digest = self.digest(id);
        if !self.members.insert(digest) {
            return false;
        }
        if let Some(capacity) = self.capacity {
            self.order.push_back(digest);
            while self.order.len() > capacity {
                if let Some(oldest) = self.order.pop_front() {
                    self.members.remove(&oldest);
                }
            }
        }
        true
    }

    /// Whether `id` is remembered.
    pub(crate) fn contains(&self, id: impl Hash) -> bool {
        self.members.contains(&self.digest(id))
    }

    /// Forgets every id.
    pub(crate) fn clear(&mut self) {
        self.members.clear();
        self.order.clear();
    }

    /// How many ids are remembered.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.members.len()
    }
}

/// The members are already keyed hashes: hashing them again would only cost time.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct IdentityHash;

impl BuildHasher for IdentityHash {
    type Hasher = IdentityHasher;

    fn build_hasher(&self) -> IdentityHasher {
        IdentityHasher(0)
    }
}

/// See [`IdentityHash`].
#[derive(Debug, Default)]
pub(crate) struct IdentityHasher(u64);

impl std::hash::Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used; any other input still hashes deterministically.
        for byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*byte);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bounded_set_forgets_the_oldest_first() {
        let mut ids = RecentIds::bounded(2);
        assert!(ids.insert("a"));
        assert!(!ids.insert("a"));
        assert!(ids.insert("b"));
        assert!(ids.insert("c"));
        assert_eq!(ids.len(), 2);
        assert!(!ids.contains("a"));
        assert!(ids.contains("b") && ids.contains("c"));
        // A pair is one id.
        assert!(ids.insert(("call_1", "resp_1")));
        assert!(!ids.insert(("call_1", "resp_1")));
        assert!(ids.insert(("call_1", "resp_2")));
    }

    #[test]
    fn an_unbounded_set_keeps_everything() {
        let mut ids = RecentIds::unbounded();
        for n in 0..5000 {
            assert!(ids.insert(n));
        }
        assert!(ids.contains(0) && ids.contains(4999));
        assert_eq!(ids.len(), 5000);
        ids.clear();
        assert!(!ids.contains(0));
    }
}
