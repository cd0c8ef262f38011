//! All allocations, indexed by 5-tuple and by relay address, with one
//! timer heap; quota counts live in the shared [`AllocationLedger`].
//!
//! Each allocation has at most one live heap entry, at `scheduled_at`. A
//! change that brings its next deadline earlier pushes a new entry; one
//! that moves it later pushes nothing (the old entry fires, sweeps and
//! reschedules). Entries that no longer match are skipped when popped, and
//! the heap is rebuilt if stale entries ever outnumber live ones by much.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

// A fast, per-process randomly seeded hash: these maps are looked up for
// every relayed packet.
use foldhash::HashMap;

use super::allocation::Allocation;
use super::ledger::AllocationLedger;
use super::types::FiveTuple;

pub(crate) type AllocationId = u64;

#[derive(Debug, Default)]
pub(crate) struct AllocationTable {
    next_id: AllocationId,
    allocations: HashMap<AllocationId, Allocation>,
    by_tuple: HashMap<FiveTuple, AllocationId>,
    by_relay: HashMap<SocketAddr, AllocationId>,
    ledger: AllocationLedger,
    timers: BinaryHeap<Reverse<(Instant, AllocationId)>>,
}

impl Drop for AllocationTable {
    /// A core that stops with allocations left (its thread failed) gives
    /// their quota back to the other shards.
    fn drop(&mut self) {
        for allocation in self.allocations.values() {
            self.ledger.release(&allocation.quota_user);
        }
    }
}

impl AllocationTable {
    pub fn len(&self) -> usize {
        self.allocations.len()
    }

    pub fn with_ledger(ledger: AllocationLedger) -> Self {
        let mut table = Self::default();
        table.ledger = ledger;
        table
    }

    pub fn ledger(&self) -> &AllocationLedger {
        &self.ledger
    }

    pub fn timer_entries(&self) -> usize {
        self.timers.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Allocation> {
        self.allocations.values()
    }

    /// Inserts an allocation whose quota the caller reserved in the ledger.
    pub fn insert(&mut self, allocation: Allocation, cooldown: Duration) -> AllocationId {
        let id = self.next_id;
        self.next_id += 1;
        self.by_tuple.insert(allocation.five_tuple, id);
        self.by_relay.insert(allocation.relay, id);
        let deadline = allocation.next_deadline(cooldown);
        let mut allocation = allocation;
        allocation.scheduled_at = deadline;
        self.allocations.insert(id, allocation);
        self.timers.push(Reverse((deadline, id)));
        id
    }

    pub fn id_by_tuple(&self, tuple: &FiveTuple) -> Option<AllocationId> {
        self.by_tuple.get(tuple).copied()
    }

    pub fn id_by_relay(&self, relay: &SocketAddr) -> Option<AllocationId> {
        self.by_relay.get(relay).copied()
    }

    pub fn get(&self, id: AllocationId) -> Option<&Allocation> {
        self.allocations.get(&id)
    }

    pub fn get_mut(&mut self, id: AllocationId) -> Option<&mut Allocation> {
        self.allocations.get_mut(&id)
    }

    pub fn remove(&mut self, id: AllocationId) -> Option<Allocation> {
        let allocation = self.allocations.remove(&id)?;
        self.by_tuple.remove(&allocation.five_tuple);
        self.by_relay.remove(&allocation.relay);
        self.ledger.release(&allocation.quota_user);
        Some(allocation)
    }

    /// Call after changing an allocation's lifetime, permissions or channels.
    pub fn reschedule(&mut self, id: AllocationId, cooldown: Duration) {
        let Some(allocation) = self.allocations.get_mut(&id) else {
            return;
        };
        let deadline = allocation.next_deadline(cooldown);
        if deadline < allocation.scheduled_at {
            allocation.scheduled_at = deadline;
            self.timers.push(Reverse((deadline, id)));
            self.compact_if_bloated();
        }
    }

    /// The earliest instant [`Self::expire`] has work (possibly a stale
    /// entry, which only costs a wake-up).
    pub fn next_timeout(&self) -> Option<Instant> {
        self.timers.peek().map(|Reverse((at, _))| *at)
    }

    /// Sweeps every allocation due at `now`; returns the ones that expired.
    pub fn expire(&mut self, now: Instant, cooldown: Duration) -> Vec<(AllocationId, Allocation)> {
        let mut expired = Vec::new();
        while let Some(Reverse((at, id))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            let Some(allocation) = self.allocations.get_mut(&id) else {
                continue;
            };
            if allocation.scheduled_at != at {
                continue;
            }
            if !allocation.is_alive(now) {
                if let Some(gone) = self.remove(id) {
                    expired.push((id, gone));
                }
                continue;
            }
            let next = allocation.sweep(now, cooldown);
            allocation.scheduled_at = next;
            self.timers.push(Reverse((next, id)));
        }
        expired
    }

    fn compact_if_bloated(&mut self) {
        if self.timers.len() > 4 * self.allocations.len() + 64 {
            self.timers = self
                .allocations
                .iter()
                .map(|(id, a)| Reverse((a.scheduled_at, *id)))
                .collect();
        }
    }
}
