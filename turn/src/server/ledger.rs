//! Allocation quotas shared by every core thread of one server: a shard
//! reserves here before it allocates and releases when the allocation goes,
//! so the per-user and total limits hold however the kernel spreads
//! clients over threads. One lock per Allocate and per deletion, never per
//! relayed packet.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// Counts of live allocations, per quota user and in total.
#[derive(Debug, Clone, Default)]
pub struct AllocationLedger {
    counts: Arc<Mutex<Counts>>,
}

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_user: HashMap<String, usize>,
}

impl AllocationLedger {
    /// A ledger for one server; clone it for each of its shards.
    pub fn new() -> Self {
        Self::default()
    }

    fn counts(&self) -> MutexGuard<'_, Counts> {
        // The counts stay consistent if a holder panicked: each update is
        // one step.
        self.counts.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Reserves one allocation for `user` if it stays within both limits.
    pub(crate) fn try_reserve(&self, user: &str, max_per_user: usize, max_total: usize) -> bool {
        let mut counts = self.counts();
        let held = counts.per_user.get(user).copied().unwrap_or(0);
        if held >= max_per_user || counts.total >= max_total {
            return false;
        }
        counts.total += 1;
        *counts.per_user.entry(user.to_owned()).or_insert(0) += 1;
        true
    }

    /// Gives back one of `user`'s reservations.
    pub(crate) fn release(&self, user: &str) {
        let mut counts = self.counts();
        counts.total = counts.total.saturating_sub(1);
        if let Some(held) = counts.per_user.get_mut(user) {
            *held = held.saturating_sub(1);
            if *held == 0 {
                counts.per_user.remove(user);
            }
        }
    }

    /// Users holding at least one allocation.
    pub fn users(&self) -> usize {
        self.counts().per_user.len()
    }

    /// Allocations held in total.
    pub fn total(&self) -> usize {
        self.counts().total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_hold_across_clones_and_releases_free_them() {
        let shard_a = AllocationLedger::new();
        let shard_b = shard_a.clone();
        assert!(shard_a.try_reserve("alice", 2, 3));
        assert!(shard_b.try_reserve("alice", 2, 3));
        assert!(!shard_a.try_reserve("alice", 2, 3), "alice's two are taken");
        assert!(shard_b.try_reserve("bob", 2, 3));
        assert!(!shard_a.try_reserve("carol", 2, 3), "three in total");
        assert_eq!((shard_a.total(), shard_a.users()), (3, 2));
        shard_b.release("alice");
        assert!(shard_a.try_reserve("carol", 2, 3));
        shard_a.release("bob");
        assert_eq!((shard_b.total(), shard_b.users()), (2, 2));
    }
}
