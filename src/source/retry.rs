//! When a failed delivery of a stream entry or a list item is attempted
//! again: the wait between attempts ([`retry_wait`]: 1 s doubling, capped at
//! [`RETRY_MAX`]), the [`Schedule`] waiting deliveries are kept in until
//! each is due, and the retrier loop ([`retrier`]) both sources run.
//!
//! Not owned here: what a retry holds and how it is taken up again
//! (`stream/retry.rs`, `list/consume.rs`), reconnecting (`reconnect.rs`).

use super::reconnect::BACKOFF_MAX;
use crate::dispatch::{Capacity, Permits};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::future::Future;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// The wait before the second attempt; it doubles for each one after.
pub const RETRY_FIRST: Duration = Duration::from_secs(1);
/// The longest wait between two attempts of one delivery: a minute, long
/// enough for a dependency to come back (a restart, a failover) without
/// burning the attempts of `max_deliveries` in seconds, short enough that a
/// recovered dependency is used again soon. (Reconnecting waits at most
/// `reconnect::BACKOFF_MAX`.)
pub const RETRY_MAX: Duration = Duration::from_secs(60);

/// The wait after failed attempt `attempt` (1-based): 1 s, 2 s, 4 s ...
/// capped at [`RETRY_MAX`].
pub fn retry_wait(attempt: u32) -> Duration {
    let doublings = attempt.saturating_sub(1).min(16);
    (RETRY_FIRST * (1u32 << doublings)).min(RETRY_MAX)
}

/// A failed delivery waiting for its next attempt.
pub trait Waits {
    /// How long after it failed it is due.
    fn wait(&self) -> Duration;
}

/// Deliveries waiting for their next attempt, earliest due first.
pub struct Schedule<T> {
    due: BinaryHeap<Reverse<(Instant, u64)>>,
    waiting: HashMap<u64, T>,
    /// Tells apart deliveries due at the same instant.
    seq: u64,
}

impl<T> Default for Schedule<T> {
    fn default() -> Self {
        Schedule {
            due: BinaryHeap::new(),
            waiting: HashMap::new(),
            seq: 0,
        }
    }
}

impl<T> Schedule<T> {
    /// `retry` becomes due after `wait`.
    pub fn add(&mut self, wait: Duration, retry: T) {
        self.seq += 1;
        self.due.push(Reverse((Instant::now() + wait, self.seq)));
        self.waiting.insert(self.seq, retry);
    }

    /// Waits until the earliest delivery is due and takes it out; never
    /// returns while none waits. Safe to cancel (as a `select!` branch):
    /// nothing is taken out before it returns.
    pub async fn next_due(&mut self) -> T {
        let Some(Reverse((at, _))) = self.due.peek() else {
            return std::future::pending().await;
        };
        tokio::time::sleep_until((*at).into()).await;
        let Reverse((_, key)) = self.due.pop().expect("invariant: peeked above");
        self.waiting
            .remove(&key)
            .expect("invariant: every key in the heap is waiting")
    }

    /// The next retry due, taking new ones from `rx` meanwhile; `None` at
    /// shutdown or once every sender is gone (every attempt ended).
    pub async fn next(
        &mut self,
        rx: &mut mpsc::UnboundedReceiver<T>,
        shutdown: &CancellationToken,
    ) -> Option<T>
    where
        T: Waits,
    {
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return None,
                r = rx.recv() => {
                    let r = r?;
                    self.add(r.wait(), r);
                }
                r = self.next_due() => return Some(r),
            }
        }
    }

    /// Holds a handler slot for `retry`; at shutdown it goes back to wait
    /// (`None`).
    pub async fn slot(
        &mut self,
        retry: T,
        capacity: &Capacity,
        shutdown: &CancellationToken,
    ) -> Option<(T, Permits)> {
        tokio::select! {
            _ = shutdown.cancelled() => {
                self.add(Duration::ZERO, retry);
                None
            }
            p = capacity.acquire() => Some((retry, p)),
        }
    }

    /// What still waits (at shutdown).
    pub fn into_waiting(self) -> impl ExactSizeIterator<Item = T> {
        self.waiting.into_values()
    }
}

/// Runs a retrier until shutdown or until every attempt ended: each retry,
/// once due and while it is `wanted` (checked again once it holds a
/// handler slot), is handed to `take_up` with the slot; one that `take_up`
/// hands back could not be taken up now and waits [`BACKOFF_MAX`] more.
/// Returns what still waits.
pub async fn retrier<T: Waits, Fut>(
    mut rx: mpsc::UnboundedReceiver<T>,
    capacity: &Capacity,
    shutdown: &CancellationToken,
    wanted: impl Fn(&T) -> bool,
    mut take_up: impl FnMut(T, Permits) -> Fut,
) -> impl ExactSizeIterator<Item = T>
where
    Fut: Future<Output = Option<T>>,
{
    let mut schedule = Schedule::default();
    while let Some(r) = schedule.next(&mut rx, shutdown).await {
        if !wanted(&r) {
            continue;
        }
        let Some((r, permit)) = schedule.slot(r, capacity, shutdown).await else {
            break;
        };
        if !wanted(&r) {
            continue;
        }
        if let Some(again) = take_up(r, permit).await {
            schedule.add(BACKOFF_MAX, again);
        }
    }
    schedule.into_waiting()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_wait_from_one_second_doubling_to_a_minute() {
        let waits: Vec<u64> = (1..=9).map(|a| retry_wait(a).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(retry_wait(u32::MAX), RETRY_MAX);
    }

    #[tokio::test]
    async fn the_earliest_due_comes_first() {
        let mut s = Schedule::default();
        s.add(Duration::from_millis(20), "later");
        s.add(Duration::from_millis(10), "sooner");
        s.add(Duration::from_millis(20), "last");
        assert_eq!(s.next_due().await, "sooner");
        assert_eq!(s.next_due().await, "later");
        assert_eq!(s.into_waiting().collect::<Vec<_>>(), ["last"]);
    }
}
