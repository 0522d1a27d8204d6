//! Failed stream entries waiting for their next attempt, and the bound on
//! how many may wait.
//!
//! - **A retry keeps only its id and attempt** ([`Retry`]): the entry's
//!   fields are dropped when its attempt ends, and the claim that starts the
//!   next attempt (`XCLAIM`) returns them again. A waiting retry costs about
//!   a hundred bytes, whatever the payload.
//! - **Reading pauses while retries wait** ([`Room`]): every entry this
//!   process holds without running it (a retry waiting for its backoff, an
//!   entry being dead-lettered) holds a [`Waiting`] token, and the reader
//!   and the claimer take no new entry while as many tokens are out as the
//!   trigger may run at once (at least `MIN_WAITING`). So when a dependency
//!   is down and every attempt fails, the backlog stays in Redis instead of
//!   in this process, and the entries it holds are at most that bound plus
//!   the trigger's concurrency.
//! - **An attempt that never settles is retried** ([`OnAbandon`]): a panic
//!   in a handler task (or its future dropped) would leave its entry held
//!   for good; the guard hands it to the retrier instead.
//!
//! Not owned here: running an attempt, and what a failure leads to
//! (`attempt.rs`); dead-lettering (`dead_letter.rs`); the wait between
//! attempts and the schedule of waiting retries (`source/retry.rs`).

use super::reply::entries_of;
use super::running::{Chans, Held, Inner};
use crate::dispatch::Permits;
use crate::source::connect::describe;
use crate::source::retry::{Waits, retrier, retry_wait};
use redis::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

/// A failed entry waiting for its next attempt: no fields, only what the
/// claim needs.
pub(super) struct Retry {
    pub id: String,
    /// The attempt that failed.
    pub delivery: u32,
    pub wait: Duration,
    /// Counts against the trigger's [`Room`] until the retry is taken up or
    /// given up.
    pub _waiting: Waiting,
}

impl Waits for Retry {
    fn wait(&self) -> Duration {
        self.wait
    }
}

/// How many entries a trigger holds without running them, and how many it
/// may before it stops taking new ones.
pub(super) struct Room {
    waiting: AtomicUsize,
    max: usize,
    freed: Notify,
}

/// One entry counted in a [`Room`]; freed when dropped.
pub(super) struct Waiting(Arc<Room>);

impl Room {
    pub fn new(max: usize) -> Arc<Room> {
        Arc::new(Room {
            waiting: AtomicUsize::new(0),
            max: max.max(1),
            freed: Notify::new(),
        })
    }

    /// Counts one more entry held without running.
    pub fn take(self: &Arc<Self>) -> Waiting {
        self.waiting.fetch_add(1, Ordering::AcqRel);
        Waiting(self.clone())
    }

    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }

    /// Whether new entries must wait.
    pub fn is_full(&self) -> bool {
        self.waiting() >= self.max
    }

    /// Returns once fewer than the maximum are waiting.
    pub async fn until_free(&self) {
        loop {
            // Registered before the check, so a release in between is not
            // missed.
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            if !self.is_full() {
                return;
            }
            freed.await;
        }
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.0.waiting.fetch_sub(1, Ordering::AcqRel);
        self.0.freed.notify_waiters();
    }
}

/// Runs `on_abandon` when dropped before [`OnAbandon::settled`]: the attempt
/// it guards panicked, or its future was dropped, before it said what
/// became of its entry.
pub(super) struct OnAbandon<F: FnOnce()>(Option<F>);

impl<F: FnOnce()> OnAbandon<F> {
    pub fn new(on_abandon: F) -> Self {
        OnAbandon(Some(on_abandon))
    }

    /// The attempt settled its entry: nothing to do on drop.
    pub fn settled(mut self) {
        self.0 = None;
    }
}

impl<F: FnOnce()> Drop for OnAbandon<F> {
    fn drop(&mut self) {
        if let Some(f) = self.0.take() {
            f();
        }
    }
}

impl Inner {
    /// Queues a retry of `id` after failed attempt `delivery`; `false` when
    /// shutting down (the entry is released and stays pending).
    pub(super) fn schedule_retry(&self, id: String, delivery: u32, chans: &Chans) -> bool {
        let wait = retry_wait(delivery);
        self.hold(&id, Held::Waiting);
        self.counters.retried.fetch_add(1, Ordering::Relaxed);
        tracing::info!(component = %self.handler.component, stream = %self.spec.stream, id = %id, delivery, retry_in = ?wait, "will retry the entry");
        let retry = Retry {
            id,
            delivery,
            wait,
            _waiting: self.room.take(),
        };
        if let Err(unsent) = chans.retries.send(retry) {
            // Shutting down: the entry stays pending.
            self.release(&unsent.0.id);
            return false;
        }
        true
    }

    /// What an attempt that ended without an outcome leaves: its entry is
    /// retried like a failure (or released at shutdown), never held for
    /// good. Runs in a destructor, maybe while unwinding: nothing here may
    /// panic or wait.
    pub(super) fn abandoned(&self, id: String, delivery: u32, chans: &Chans) {
        tracing::error!(component = %self.handler.component, stream = %self.spec.stream, id = %id, delivery, "the attempt ended without an outcome (its task panicked or was stopped); the entry will be retried");
        self.schedule_retry(id, delivery, chans);
    }
}

/// Hands failed entries to a handler again once their backoff has passed,
/// unless they were taken over meanwhile.
pub(super) async fn retry_loop(
    inner: Arc<Inner>,
    chans: Chans,
    rx: mpsc::UnboundedReceiver<Retry>,
    shutdown: CancellationToken,
) {
    let waiting = |r: &Retry| inner.held(&r.id) == Some(Held::Waiting);
    let take_up = |r: Retry, permit| {
        let (inner, chans) = (inner.clone(), chans.clone());
        async move {
            inner.take_up(r, permit, &chans).await;
            None
        }
    };
    let left = retrier(rx, &inner.capacity, &shutdown, waiting, take_up).await;
    let count = left.len();
    left.for_each(|r| inner.release_waiting(&r.id));
    if count > 0 {
        tracing::info!(stream = %inner.spec.stream, entries = count, "entries waiting for a retry were left pending");
    }
}

impl Inner {
    /// Starts the next attempt of a waiting retry. Claiming it again counts
    /// the delivery in Redis, resets its idle time and returns its fields;
    /// an entry touched since it failed (idle less than the backoff) was
    /// taken over, and is left alone.
    async fn take_up(self: &Arc<Self>, r: Retry, permit: Permits, chans: &Chans) {
        let spec = &self.spec;
        let min_idle = r.wait.saturating_sub(Duration::from_millis(50));
        let mut cmd = spec.group_cmd("XCLAIM");
        cmd.arg(&spec.consumer)
            .arg(min_idle.as_millis() as u64)
            .arg(&r.id);
        let claimed: redis::RedisResult<Value> = self.commands.query(&cmd).await;
        match claimed.map(entries_of) {
            Ok(mut entries) if !entries.is_empty() => {
                let entry = entries.swap_remove(0);
                self.spawn_attempt(entry, r.delivery + 1, permit, chans);
            }
            Ok(_) => {
                tracing::debug!(stream = %spec.stream, id = %r.id, "the entry to retry was taken over or deleted meanwhile");
                self.release_waiting(&r.id);
            }
            Err(e) => {
                tracing::warn!(stream = %spec.stream, id = %r.id, reason = %describe(&e), "cannot retry the entry now; it stays pending and is taken up again after claim_idle");
                self.release_waiting(&r.id);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_room_fills_and_frees() {
        let room = Room::new(2);
        let a = room.take();
        assert!(!room.is_full());
        let b = room.take();
        assert!(room.is_full());
        let waiter = {
            let room = room.clone();
            tokio::spawn(async move { room.until_free().await })
        };
        tokio::task::yield_now().await;
        assert!(!waiter.is_finished(), "waits while full");
        drop(a);
        waiter.await.expect("freed once one is dropped");
        assert_eq!(room.waiting(), 1);
        drop(b);
        assert_eq!(room.waiting(), 0);
        room.until_free().await;
    }

    #[tokio::test]
    async fn an_attempt_that_panics_is_handed_on_and_one_that_settles_is_not() {
        let (tx, mut rx) = mpsc::unbounded_channel::<&'static str>();
        // A task that panics mid-attempt: the guard runs while unwinding.
        let guard_tx = tx.clone();
        let task = tokio::spawn(async move {
            let _guard = OnAbandon::new(move || {
                let _ = guard_tx.send("abandoned");
            });
            tokio::task::yield_now().await;
            panic!("a handler bug");
        });
        let err = task.await.expect_err("the task panicked");
        assert!(err.is_panic());
        assert_eq!(rx.try_recv(), Ok("abandoned"));
        // A future dropped before it finished (a runtime shutting down).
        let guard_tx = tx.clone();
        let pending = async move {
            let _guard = OnAbandon::new(move || {
                let _ = guard_tx.send("dropped");
            });
            std::future::pending::<()>().await;
        };
        let _ = tokio::time::timeout(Duration::from_millis(1), pending).await;
        assert_eq!(rx.try_recv(), Ok("dropped"));
        // Settled: nothing.
        let guard_tx = tx.clone();
        OnAbandon::new(move || {
            let _ = guard_tx.send("wrong");
        })
        .settled();
        assert!(rx.try_recv().is_err());
    }
}
