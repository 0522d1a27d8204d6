//! One trigger's queue: first in, first out, bounded by a count, closed
//! from either end, and empty queues cost no heap.
//!
//! Why not `tokio::sync::mpsc`: its bounded channel allocates its first
//! block of 32 slots when it is made. An app of 10 000 pub/sub triggers,
//! most of them idle, paid about 18 MB for queues that stayed empty (heaptrack
//! of `up` on such an app). Here the items sit in a `VecDeque`, which
//! allocates on the first push and keeps its capacity for the next burst. A
//! push and a pop each take an uncontended lock for a few instructions; the
//! worker is woken through a [`Notify`], which stores one wake-up when the
//! worker is busy, so a push between the worker's look and its wait is
//! never missed.
//!
//! Closing: the sending side closes the queue when its route leaves the
//! routing table (the worker then takes what is left and ends); the
//! receiving side closes it when the worker ends, and drops what is still
//! queued (each item settles its own account when dropped).
//!
//! Not owned here: what is queued, the memory budget, the worker (see
//! `queues`).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::Notify;

/// Why a push was refused; the item comes back.
pub enum Refused<T> {
    /// The count bound is reached.
    Full(T),
    /// The worker has ended.
    Closed(T),
}

/// The queue both sides share.
struct Queue<T> {
    state: Mutex<State<T>>,
    /// Wakes the worker waiting in [`Receiver::pop`].
    ready: Notify,
    capacity: usize,
}

struct State<T> {
    items: VecDeque<T>,
    closed: bool,
}

impl<T> Queue<T> {
    /// The state; a panic while holding the lock (there is no code that can
    /// panic under it but an allocation failure, which aborts) would leave
    /// the items as they were, so a poisoned lock is used as it is.
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_one();
    }
}

/// The routing side; closes the queue when dropped.
pub struct Sender<T>(Arc<Queue<T>>);

/// The worker's side; closes the queue and drops what is left when dropped.
pub struct Receiver<T>(Arc<Queue<T>>);

/// A queue of at most `capacity` items.
pub fn queue<T>(capacity: usize) -> (Sender<T>, Receiver<T>) {
    let q = Arc::new(Queue {
        state: Mutex::new(State {
            items: VecDeque::new(),
            closed: false,
        }),
        ready: Notify::new(),
        capacity,
    });
    (Sender(q.clone()), Receiver(q))
}

impl<T> Sender<T> {
    /// Queues `item` unless the queue is full or closed. Never blocks
    /// beyond the lock.
    pub fn try_send(&self, item: T) -> Result<(), Refused<T>> {
        let mut state = self.0.lock();
        if state.closed {
            return Err(Refused::Closed(item));
        }
        if state.items.len() >= self.0.capacity {
            return Err(Refused::Full(item));
        }
        let was_empty = state.items.is_empty();
        state.items.push_back(item);
        drop(state);
        // A worker with items left does not wait, so only the push into an
        // empty queue has someone to wake.
        if was_empty {
            self.0.ready.notify_one();
        }
        Ok(())
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        self.0.close();
    }
}

impl<T> Receiver<T> {
    /// The next item, waiting for one; `None` once the queue is closed and
    /// empty.
    pub async fn pop(&mut self) -> Option<T> {
        loop {
            {
                let mut state = self.0.lock();
                if let Some(item) = state.items.pop_front() {
                    return Some(item);
                }
                if state.closed {
                    return None;
                }
            }
            // A push or close after the look above has stored its wake-up.
            self.0.ready.notified().await;
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        // Taken out under the lock, dropped outside it: dropping an item
        // settles its account, which must not run under our lock.
        let left = {
            let mut state = self.0.lock();
            state.closed = true;
            std::mem::take(&mut state.items)
        };
        drop(left);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn items_come_out_in_order_then_none_once_the_sender_is_gone() {
        let (tx, mut rx) = queue(8);
        for i in 0..5 {
            assert!(tx.try_send(i).is_ok());
        }
        drop(tx);
        let mut got = Vec::new();
        while let Some(i) = rx.pop().await {
            got.push(i);
        }
        assert_eq!(got, [0, 1, 2, 3, 4]);
    }

    #[tokio::test]
    async fn a_full_queue_refuses_and_returns_the_item() {
        let (tx, mut rx) = queue(2);
        assert!(tx.try_send(1).is_ok());
        assert!(tx.try_send(2).is_ok());
        assert!(matches!(tx.try_send(3), Err(Refused::Full(3))));
        assert_eq!(rx.pop().await, Some(1));
        assert!(tx.try_send(3).is_ok());
    }

    #[tokio::test]
    async fn a_gone_worker_closes_the_queue_and_drops_what_is_left() {
        let (tx, rx) = queue(8);
        let item = Arc::new(());
        assert!(tx.try_send(item.clone()).is_ok());
        drop(rx);
        assert_eq!(Arc::strong_count(&item), 1, "the queued item was dropped");
        assert!(matches!(tx.try_send(item), Err(Refused::Closed(_))));
    }

    #[tokio::test]
    async fn a_waiting_worker_is_woken_by_a_push_from_another_thread() {
        let (tx, mut rx) = queue(8);
        let waiting = tokio::spawn(async move { rx.pop().await });
        tokio::task::yield_now().await;
        std::thread::spawn(move || assert!(tx.try_send(7).is_ok()))
            .join()
            .expect("the pushing thread ends");
        assert_eq!(waiting.await.expect("the worker ends"), Some(7));
    }

    #[tokio::test]
    async fn an_empty_queue_has_no_heap_until_the_first_push() {
        let (tx, _rx) = queue::<u64>(8);
        assert_eq!(tx.0.lock().items.capacity(), 0);
        assert!(tx.try_send(1).is_ok());
        assert!(tx.0.lock().items.capacity() > 0);
    }
}
