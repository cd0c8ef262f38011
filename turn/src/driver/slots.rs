//! Values kept in numbered slots, reused once freed, and found by slot
//! (the poller's token) or by key. Relay sockets, client connections and
//! joined data connections are each held this way.

use std::hash::Hash;

use foldhash::{HashMap, HashMapExt};

pub(super) struct Slots<K, V> {
    entries: Vec<Option<(K, V)>>,
    free: Vec<usize>,
    by_key: HashMap<K, usize>,
}

impl<K: Copy + Eq + Hash, V> Slots<K, V> {
    pub(super) fn new() -> Self {
        Slots {
            entries: Vec::new(),
            free: Vec::new(),
            by_key: HashMap::new(),
        }
    }

    /// The slot the next [`Self::insert`] takes.
    pub(super) fn next_slot(&self) -> usize {
        self.free.last().copied().unwrap_or(self.entries.len())
    }

    /// Keeps `value` under `key` in [`Self::next_slot`]; the key finds this
    /// slot from now on, whatever it found before.
    pub(super) fn insert(&mut self, key: K, value: V) -> usize {
        let slot = self.free.pop().unwrap_or(self.entries.len());
        if slot == self.entries.len() {
            self.entries.push(None);
        }
        if let Some(entry) = self.entries.get_mut(slot) {
            *entry = Some((key, value));
        }
        self.by_key.insert(key, slot);
        slot
    }

    pub(super) fn get(&self, slot: usize) -> Option<(K, &V)> {
        let (key, value) = self.entries.get(slot)?.as_ref()?;
        Some((*key, value))
    }

    pub(super) fn get_mut(&mut self, slot: usize) -> Option<&mut V> {
        Some(&mut self.entries.get_mut(slot)?.as_mut()?.1)
    }

    pub(super) fn slot_of(&self, key: &K) -> Option<usize> {
        self.by_key.get(key).copied()
    }

    /// Takes the value out and frees its slot. Its key leaves the index
    /// unless a newer slot holds it (a client back from the same address).
    pub(super) fn remove(&mut self, slot: usize) -> Option<(K, V)> {
        let (key, value) = self.entries.get_mut(slot)?.take()?;
        if self.by_key.get(&key) == Some(&slot) {
            self.by_key.remove(&key);
        }
        self.free.push(slot);
        Some((key, value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_reused_and_a_key_follows_its_newest_slot() {
        let mut slots = Slots::new();
        assert_eq!(slots.next_slot(), 0);
        assert_eq!(slots.insert('a', 1), 0);
        assert_eq!(slots.insert('b', 2), 1);
        assert_eq!(slots.remove(0), Some(('a', 1)));
        assert_eq!(slots.next_slot(), 0, "freed slots come back");
        assert_eq!(slots.insert('b', 3), 0, "the same key again");
        assert_eq!(slots.slot_of(&'b'), Some(0));
        assert_eq!(slots.remove(1), Some(('b', 2)));
        assert_eq!(slots.slot_of(&'b'), Some(0), "the newer slot keeps it");
        assert_eq!(slots.get(0), Some(('b', &3)));
        assert_eq!(slots.remove(1), None);
        assert!(slots.get_mut(1).is_none());
    }
}
