//! Hubs of tokio tasks that run without a bound hub: one per task, keyed by
//! [`tokio::task::Id`].
//!
//! A plain `tokio::spawn` task has no [`HubFuture`](crate::HubFuture) around it,
//! and the thread it runs on changes at every `.await`, so neither a task-local
//! nor a thread-local can hold its scopes. This registry does: the first scope
//! write of such a task forks the main hub into an entry for the task's id, and
//! every later lookup of that task, on any worker thread, finds the same entry.
//!
//! Bounds: at most [`CAPACITY`] entries (in [`SHARDS`] shards). tokio does not
//! tell a task's end to code running outside it (only through unstable runtime
//! hooks, see [`Hub::release_task`](crate::Hub::release_task)), so entries of
//! ended tasks stay until they are evicted. A full shard evicts with the CLOCK
//! policy: an entry used since the hand last passed gets a second chance, so the
//! entries of ended tasks, which are never used again, go first. Evicting the
//! entry of a task that is still running loses the scope data it wrote so far;
//! its next write starts again from the main hub. An evicted entry is never
//! handed to another task: entries are keyed by task id, and tokio allocates ids
//! from a 64-bit counter, never reusing one within a process.
//!
//! Each worker thread caches the entry of the task it last looked up, so the
//! repeated lookups of a running task skip the shared map.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use once_cell::sync::Lazy;
use parking_lot::Mutex;
use tokio::task::Id;

use crate::hub::Hub;

/// Most task hubs kept at once (the sum of the shards' capacities).
pub(crate) const CAPACITY: usize = 4096;
/// Shards of the registry; a power of two.
pub(crate) const SHARDS: usize = 16;

static REGISTRY: Lazy<TaskHubs> = Lazy::new(|| TaskHubs::new(CAPACITY / SHARDS));

thread_local! {
    /// The entry of the task this thread looked up last.
    static LAST: RefCell<Option<(Id, Arc<TaskSlot>)>> = const { RefCell::new(None) };
}

/// One task's hub.
pub(crate) struct TaskSlot {
    hub: Arc<Hub>,
    /// Position stamp in its shard's CLOCK ring (tells a live ring entry from a stale one).
    seq: u64,
    /// Used since the CLOCK hand last passed.
    referenced: AtomicBool,
    /// Removed from the registry: a thread's cached copy must not be used any more.
    evicted: AtomicBool,
}

impl TaskSlot {
    #[inline]
    fn touch(&self) {
        if !self.referenced.load(Ordering::Relaxed) {
            self.referenced.store(true, Ordering::Relaxed);
        }
    }
}

/// The registry: shards of `task id → slot`, each with its CLOCK ring.
pub(crate) struct TaskHubs {
    shards: Box<[Mutex<Shard>]>,
    per_shard: usize,
}

struct Shard {
    map: HashMap<Id, Arc<TaskSlot>, BuildHasherDefault<IdHasher>>,
    /// Insertion order for the CLOCK hand: `(id, seq)`; entries whose slot is gone
    /// or has another `seq` are stale (released tasks) and skipped.
    ring: VecDeque<(Id, u64)>,
    next_seq: u64,
}

impl TaskHubs {
    pub(crate) fn new(per_shard: usize) -> Self {
        let shards = (0..SHARDS)
            .map(|_| Mutex::new(Shard { map: HashMap::default(), ring: VecDeque::new(), next_seq: 0 }))
            .collect();
        Self { shards, per_shard: per_shard.max(1) }
    }

    fn shard(&self, id: Id) -> &Mutex<Shard> {
        let mut h = IdHasher::default();
        std::hash::Hash::hash(&id, &mut h);
        &self.shards[h.finish() as usize % SHARDS]
    }

    /// The slot of `id`, if it has one.
    pub(crate) fn get(&self, id: Id) -> Option<Arc<TaskSlot>> {
        let shard = self.shard(id).lock();
        let slot = shard.map.get(&id)?;
        slot.touch();
        Some(slot.clone())
    }

    /// The slot of `id`, created with `make`'s hub when it has none. `make` runs
    /// outside the registry's locks.
    pub(crate) fn get_or_insert(&self, id: Id, make: impl FnOnce() -> Arc<Hub>) -> Arc<TaskSlot> {
        if let Some(slot) = self.get(id) {
            return slot;
        }
        let hub = make();
        let mut shard = self.shard(id).lock();
        if let Some(slot) = shard.map.get(&id) {
            // Only the task itself inserts its id, so this is not reached; keep one slot anyway.
            return slot.clone();
        }
        let evicted = if shard.map.len() >= self.per_shard { shard.evict_one() } else { None };
        let seq = shard.next_seq;
        shard.next_seq += 1;
        let slot = Arc::new(TaskSlot { hub, seq, referenced: AtomicBool::new(false), evicted: AtomicBool::new(false) });
        shard.map.insert(id, slot.clone());
        shard.ring.push_back((id, seq));
        drop(shard);
        // The evicted hub's scopes are dropped here, outside the lock.
        drop(evicted);
        slot
    }

    /// Forgets `id`'s slot (its task ended).
    pub(crate) fn remove(&self, id: Id) {
        let mut shard = self.shard(id).lock();
        let removed = shard.map.remove(&id);
        if let Some(slot) = &removed {
            slot.evicted.store(true, Ordering::Release);
            // Its ring entry is now stale; keep the ring from filling with them.
            if shard.ring.len() > 2 * self.per_shard {
                let Shard { map, ring, .. } = &mut *shard;
                ring.retain(|(id, seq)| map.get(id).is_some_and(|s| s.seq == *seq));
            }
        }
        drop(shard);
        drop(removed);
    }

    /// Number of slots held.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.shards.iter().map(|s| s.lock().map.len()).sum()
    }
}

impl Shard {
    /// Removes one slot by the CLOCK policy; `None` only if the shard is empty.
    fn evict_one(&mut self) -> Option<Arc<TaskSlot>> {
        // Each live ring entry is passed at most twice (second chance, then evicted).
        while let Some((id, seq)) = self.ring.pop_front() {
            let Some(slot) = self.map.get(&id) else { continue };
            if slot.seq != seq {
                continue;
            }
            if slot.referenced.swap(false, Ordering::Relaxed) {
                self.ring.push_back((id, seq));
                continue;
            }
            let slot = self.map.remove(&id)?;
            slot.evicted.store(true, Ordering::Release);
            return Some(slot);
        }
        None
    }
}

/// Runs `f` with the hub of task `id`. With `create`, a task without one gets a
/// hub made by `make`; without, such a task reads `fallback`.
#[inline]
pub(crate) fn with_task_hub<R>(
    id: Id,
    create: bool,
    make: impl FnOnce() -> Arc<Hub>,
    fallback: &Arc<Hub>,
    f: impl FnOnce(&Arc<Hub>) -> R,
) -> R {
    LAST.with(|cell| {
        if let Ok(last) = cell.try_borrow() {
            if let Some((last_id, slot)) = last.as_ref() {
                if *last_id == id && !slot.evicted.load(Ordering::Acquire) {
                    slot.touch();
                    // Under a shared borrow: a nested lookup of the same task hits too.
                    return f(&slot.hub);
                }
            }
        }
        let slot = if create {
            REGISTRY.get_or_insert(id, make)
        } else {
            match REGISTRY.get(id) {
                Some(slot) => slot,
                None => return f(fallback),
            }
        };
        let hub = slot.hub.clone();
        if let Ok(mut last) = cell.try_borrow_mut() {
            let previous = last.replace((id, slot));
            drop(last);
            // May drop an evicted hub: outside the borrow, since its drop may run SDK code.
            drop(previous);
        }
        f(&hub)
    })
}

/// Forgets the hub of task `id`.
pub(crate) fn release(id: Id) {
    REGISTRY.remove(id);
}

/// A multiplicative hash of the task id's `u64` (ids come from a counter: no
/// attacker controls them, so no keyed hash is needed).
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        // Fold the well-mixed high half into the low bits the map and the shard index use.
        self.0 ^ (self.0 >> 32)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `n` distinct task ids, from tasks spawned on a throwaway runtime.
    fn ids(n: usize) -> Vec<Id> {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(async { (0..n).map(|_| tokio::spawn(async {}).id()).collect() })
    }

    fn hub() -> Arc<Hub> {
        Arc::new(Hub::new_from_top(&Hub::main()))
    }

    #[test]
    fn a_task_finds_its_own_slot_again() {
        let reg = TaskHubs::new(8);
        let ids = ids(3);
        let a = reg.get_or_insert(ids[0], hub);
        let b = reg.get_or_insert(ids[1], hub);
        assert!(Arc::ptr_eq(&a.hub, &reg.get_or_insert(ids[0], || unreachable!()).hub));
        assert!(!Arc::ptr_eq(&a.hub, &b.hub));
        assert!(reg.get(ids[2]).is_none());
    }

    #[test]
    fn a_full_registry_stays_bounded_and_evicts_unused_slots_first() {
        let per_shard = 4;
        let reg = TaskHubs::new(per_shard);
        let ids = ids(SHARDS * per_shard * 8);
        let keep = ids[0];
        let kept = reg.get_or_insert(keep, hub);
        let mut evicted = Vec::new();
        for &id in &ids[1..] {
            // The kept task keeps running: it is used between every other insert.
            assert!(reg.get(keep).is_some(), "a slot in use was evicted");
            evicted.push(reg.get_or_insert(id, hub));
            assert!(reg.len() <= SHARDS * per_shard);
        }
        assert!(!kept.evicted.load(Ordering::Relaxed));
        let gone = evicted.iter().filter(|s| s.evicted.load(Ordering::Relaxed)).count();
        assert!(gone >= ids.len() - 1 - SHARDS * per_shard, "only {gone} evicted");
        // An evicted task starts over with a new hub, never another task's.
        let first = ids.iter().skip(1).zip(&evicted).find(|(_, s)| s.evicted.load(Ordering::Relaxed)).unwrap();
        let again = reg.get_or_insert(*first.0, hub);
        assert!(!Arc::ptr_eq(&again.hub, &first.1.hub));
        assert!(evicted.iter().all(|s| !Arc::ptr_eq(&again.hub, &s.hub)));
    }

    #[test]
    fn released_slots_leave_no_stale_ring_entries_behind() {
        let per_shard = 2;
        let reg = TaskHubs::new(per_shard);
        for id in ids(SHARDS * per_shard * 20) {
            let slot = reg.get_or_insert(id, hub);
            reg.remove(id);
            assert!(slot.evicted.load(Ordering::Relaxed));
        }
        assert_eq!(reg.len(), 0);
        let rings: usize = reg.shards.iter().map(|s| s.lock().ring.len()).sum();
        assert!(rings <= SHARDS * (2 * per_shard + 1), "ring entries kept: {rings}");
    }
}
