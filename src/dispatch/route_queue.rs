//! One trigger's queue: first in, first out, bounded by a count, closed
//! from either end, and empty queues cost no heap.
//!
//! Why not `tokio::sync::mpsc`: its bounded channel allocates its first
//! block of 32 slots when it is made. An app of 10 000 pub/sub triggers,
//! most of them idle, paid about 18 MB for queues that stayed empty (heaptrack
//! of `up` on such an app). Why not one `VecDeque`: a burst of a million
//! small messages would grow it by doubling (the old and the new buffer live
//! at once while it copies) and keep the largest size after the burst.
//!
//! So the items sit in chunks: the first push allocates a small chunk, a
//! longer queue gets larger ones (up to [`CHUNK_MAX`] items), a chunk is
//! freed as soon as the worker has taken its last item, and an empty queue
//! keeps at most one small chunk for the next message. A push and a pop each
//! take an uncontended lock for a few instructions; the worker is woken
//! through a [`Notify`], which stores one wake-up when the worker is busy,
//! so a push between the worker's look and its wait is never missed.
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

/// The smallest chunk, in items: what a queue that rarely holds more than
/// one message keeps.
const CHUNK_MIN: usize = 4;
/// The largest chunk, in items (with a queued delivery's 64 bytes, 16 KiB).
const CHUNK_MAX: usize = 256;

struct State<T> {
    /// Oldest first; every chunk but the last is full up to its capacity
    /// when it is left behind.
    chunks: VecDeque<VecDeque<T>>,
    len: usize,
    closed: bool,
}

impl<T> State<T> {
    fn push(&mut self, item: T) {
        match self.chunks.back_mut() {
            Some(last) if last.len() < last.capacity() => last.push_back(item),
            _ => {
                // As large as the queue already is: a long queue gets few
                // large chunks, a short one small chunks.
                let size = self.len.clamp(CHUNK_MIN, CHUNK_MAX);
                let mut chunk = VecDeque::with_capacity(size);
                chunk.push_back(item);
                self.chunks.push_back(chunk);
            }
        }
        self.len += 1;
    }

    fn pop(&mut self) -> Option<T> {
        let more = self.chunks.len() > 1;
        let first = self.chunks.front_mut()?;
        let item = first.pop_front();
        if first.is_empty() && (more || first.capacity() > CHUNK_MIN) {
            // Taken whole: free it now rather than keep a burst's memory.
            self.chunks.pop_front();
        }
        if item.is_some() {
            self.len -= 1;
        }
        item
    }
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
            chunks: VecDeque::new(),
            len: 0,
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
        if state.len >= self.0.capacity {
            return Err(Refused::Full(item));
        }
        let was_empty = state.len == 0;
        state.push(item);
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
                if let Some(item) = state.pop() {
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
            std::mem::take(&mut state.chunks)
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
        assert_eq!(tx.0.lock().chunks.capacity(), 0);
        assert!(tx.try_send(1).is_ok());
        assert_eq!(tx.0.lock().chunks.len(), 1);
    }

    #[tokio::test]
    async fn a_burst_is_kept_in_bounded_chunks_freed_as_they_are_taken() {
        let (tx, mut rx) = queue(usize::MAX);
        let n = 100_000;
        for i in 0..n {
            assert!(tx.try_send(i).is_ok());
        }
        {
            let state = tx.0.lock();
            assert!(state.chunks.iter().all(|c| c.capacity() <= CHUNK_MAX * 2));
            assert!(state.chunks.len() >= n / (CHUNK_MAX * 2));
        }
        for i in 0..n {
            assert_eq!(rx.pop().await, Some(i));
        }
        let state = tx.0.lock();
        assert_eq!(state.len, 0);
        assert!(
            state.chunks.is_empty(),
            "the burst's chunks are freed once taken"
        );
    }
}
