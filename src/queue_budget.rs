//! The queued-memory budget (`--max-queued-bytes`) split between triggers:
//! every trigger queue has a guaranteed share of its own, and the rest is a
//! pool shared by all.
//!
//! Without a share of its own, one hung channel's backlog filled the whole
//! budget, and then every message of every other channel was dropped. Now
//! each of `n` trigger queues reserves `budget / (2 n)`, at most
//! [`MAX_RESERVED`]; the remainder is shared. A delivery is charged to its
//! trigger's reserve first and only the part above it to the shared pool,
//! so a hung channel can take the shared pool but never another trigger's
//! reserve: an idle channel always has room for its own backlog of at least
//! its reserve.
//!
//! Lock-free: each trigger counts what it holds, and the shared pool counts
//! the parts above the reserves. Every charge and release computes its
//! share of the pool from the exact value its own atomic update replaced,
//! so the pool's count is the sum of the excesses whatever the interleaving.
//!
//! Not owned here: what a queued delivery costs (`dispatch::queued_cost`)
//! and what happens to one that does not fit (`dispatch`).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The most a trigger reserves for itself, however large the budget: the
/// rest stays in the shared pool, where a busy channel can use it.
pub const MAX_RESERVED: u64 = 16 << 20;

/// The budget, shared by every trigger queue.
#[derive(Debug)]
pub struct QueueBudget {
    /// Bytes of the shared pool in use (the parts above the reserves).
    shared_used: AtomicU64,
    /// The shared pool's size: the budget less every reserve.
    shared_size: u64,
    /// Each trigger's reserve.
    reserved: u64,
}

/// One trigger's account against the budget.
#[derive(Debug)]
pub struct TriggerBudget {
    budget: Arc<QueueBudget>,
    /// Bytes this trigger's queue holds now.
    used: AtomicU64,
}

impl QueueBudget {
    /// A budget of `total` bytes for `triggers` queues.
    pub fn new(total: u64, triggers: usize) -> Arc<QueueBudget> {
        let n = triggers.max(1) as u64;
        let reserved = (total / (2 * n)).min(MAX_RESERVED);
        Arc::new(QueueBudget {
            shared_used: AtomicU64::new(0),
            shared_size: total - reserved * n,
            reserved,
        })
    }

    /// What each trigger reserves.
    pub fn reserved(&self) -> u64 {
        self.reserved
    }

    /// The account of one more trigger.
    pub fn trigger(self: &Arc<Self>) -> TriggerBudget {
        TriggerBudget {
            budget: self.clone(),
            used: AtomicU64::new(0),
        }
    }

    /// How much of `before..after` (a trigger's holding) lies above the
    /// reserve: the part the shared pool carries.
    fn above(&self, before: u64, after: u64) -> u64 {
        after
            .saturating_sub(self.reserved)
            .abs_diff(before.saturating_sub(self.reserved))
    }
}

impl TriggerBudget {
    /// Charges `cost` bytes: `true` if they fit in this trigger's reserve
    /// and the shared pool, else nothing is charged.
    pub fn charge(&self, cost: u64) -> bool {
        let b = &self.budget;
        let before = self.used.fetch_add(cost, Ordering::Relaxed);
        let extra = b.above(before, before + cost);
        if extra == 0 {
            return true;
        }
        let pool_before = b.shared_used.fetch_add(extra, Ordering::Relaxed);
        if pool_before + extra <= b.shared_size {
            return true;
        }
        // Undo the charge as a release does: the pool gives back the share
        // the release computes (the same `extra` unless a release of this
        // trigger came in between; the sum is right either way).
        self.release(cost);
        false
    }

    /// Gives back `cost` bytes charged by [`TriggerBudget::charge`].
    pub fn release(&self, cost: u64) {
        let b = &self.budget;
        let before = self.used.fetch_sub(cost, Ordering::Relaxed);
        let extra = b.above(before, before.saturating_sub(cost));
        if extra > 0 {
            b.shared_used.fetch_sub(extra, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_trigger_never_takes_another_ones_reserve() {
        // 1000 bytes for two triggers: 250 reserved each, 500 shared.
        let budget = QueueBudget::new(1000, 2);
        assert_eq!(budget.reserved(), 250);
        let (hung, idle) = (budget.trigger(), budget.trigger());
        let mut taken = 0;
        while hung.charge(10) {
            taken += 10;
        }
        assert_eq!(taken, 750, "its reserve and the whole shared pool");
        for _ in 0..25 {
            assert!(idle.charge(10), "the idle trigger's reserve is its own");
        }
        assert!(!idle.charge(10), "the shared pool is full");
        // The hung trigger drains: the pool comes back.
        for _ in 0..75 {
            hung.release(10);
        }
        assert_eq!(budget.shared_used.load(Ordering::Relaxed), 0);
        assert!(idle.charge(500));
        assert!(!idle.charge(1));
    }

    #[test]
    fn the_reserve_is_capped() {
        let budget = QueueBudget::new(1 << 40, 2);
        assert_eq!(budget.reserved(), MAX_RESERVED);
        assert_eq!(budget.shared_size, (1 << 40) - 2 * MAX_RESERVED);
    }
}
