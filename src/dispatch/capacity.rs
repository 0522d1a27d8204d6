//! How many handlers run at once. Every trigger has one slot reserved for
//! itself, and the rest of the global bound (`max_concurrency`) is a pool
//! shared by all triggers. A trigger whose handlers hang can take the whole
//! pool, but never another trigger's reserved slot, so every other channel
//! keeps going (one at a time at worst) until the hung handlers reach their
//! deadline and give their slots back. A trigger may also have a bound of its
//! own (`max_concurrency` on the trigger; `1` = strictly one at a time, in
//! order).
//!
//! Not owned here: what waits for a slot (the queue workers in `queues`, the
//! stream and list sources).

use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The permits one running delivery holds: its trigger's own bound (if it
/// has one) and a handler slot.
pub type Permits = (Option<OwnedSemaphorePermit>, OwnedSemaphorePermit);

/// The handler capacity of a trigger that reads only what it can run at once
/// (a stream): the same own bound, reserved slot and shared pool as a
/// worker's.
pub struct Capacity {
    own: Option<Arc<Semaphore>>,
    reserved: Arc<Semaphore>,
    pool: Arc<Semaphore>,
}

impl Capacity {
    pub fn new(max_concurrency: Option<usize>, pool: Arc<Semaphore>) -> Capacity {
        Capacity {
            own: max_concurrency.map(|n| Arc::new(Semaphore::new(n.max(1)))),
            reserved: Arc::new(Semaphore::new(1)),
            pool,
        }
    }

    /// Waits for a slot; see the private `acquire`.
    pub async fn acquire(&self) -> Permits {
        acquire(self.own.as_ref(), &self.reserved, &self.pool).await
    }

    /// A slot if one is free now.
    pub fn try_acquire(&self) -> Option<Permits> {
        let own = match &self.own {
            Some(s) => Some(s.clone().try_acquire_owned().ok()?),
            None => None,
        };
        let slot = self
            .reserved
            .clone()
            .try_acquire_owned()
            .or_else(|_| self.pool.clone().try_acquire_owned())
            .ok()?;
        Some((own, slot))
    }
}

/// Waits for a permit of the trigger's own bound (if it has one), then for a
/// handler slot: its reserved one or one from the shared pool, whichever is
/// free first.
pub(super) async fn acquire(
    own: Option<&Arc<Semaphore>>,
    reserved: &Arc<Semaphore>,
    pool: &Arc<Semaphore>,
) -> Permits {
    // The semaphores live as long as the workers and are never closed, so
    // acquiring cannot fail.
    let own_permit = match own {
        Some(s) => Some(
            s.clone()
                .acquire_owned()
                .await
                .expect("invariant: semaphore never closed"),
        ),
        None => None,
    };
    let slot = tokio::select! {
        biased;
        p = reserved.clone().acquire_owned() => p,
        p = pool.clone().acquire_owned() => p,
    }
    .expect("invariant: semaphore never closed");
    (own_permit, slot)
}
