//! The ledger of deliveries: what became of every one, counted exactly once,
//! so that nothing is ever dropped silently.
//!
//! A *delivery* is one message for one component (a message on a channel with
//! two components is two deliveries). Every received delivery ends in exactly
//! one of: ok, failed, dropped (queue full), skipped (too large) or cut short
//! (still queued or running when the shutdown drain deadline passed).
//!
//! Exactly once holds by construction: a delivery that is queued is a
//! [`Delivery`] guard, and the guard is the only way to count it. Settling
//! consumes the guard; a guard dropped unsettled (its task was cancelled, or
//! panicked) counts itself. [`Stats::close`] ends the accounting at shutdown:
//! everything still open is counted cut short, and a guard settled after that
//! (a handler that finished just past the deadline) is ignored, so no delivery
//! is ever counted both ok and cut short. The counters sit behind one mutex,
//! which is what makes "open" and "settled" one atomic step; it is taken once
//! per delivery and never held across anything slow.
//!
//! Not owned here: logging (callers log with the component and channel).

use std::sync::{Arc, Mutex, MutexGuard};

/// The ledger.
#[derive(Debug, Default)]
pub struct Stats {
    inner: Mutex<Ledger>,
}

#[derive(Debug, Default)]
struct Ledger {
    counts: Snapshot,
    /// Deliveries queued or running: what a shutdown would cut short.
    open: u64,
    closed: bool,
}

/// A copy of the counters at one moment.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Snapshot {
    pub received: u64,
    pub ok: u64,
    pub failed: u64,
    pub dropped: u64,
    pub skipped: u64,
    pub cut_short: u64,
}

/// How one delivery ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settled {
    Ok,
    Failed,
    Dropped,
    CutShort,
}

impl Stats {
    fn lock(&self) -> MutexGuard<'_, Ledger> {
        // Nothing panics while holding the lock (plain arithmetic), but a
        // poisoned ledger is still a correct ledger.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Counts `n` received deliveries that are skipped at once (too large);
    /// returns the skipped total.
    pub fn skip(&self, n: u64) -> u64 {
        let mut l = self.lock();
        l.counts.received += n;
        l.counts.skipped += n;
        l.counts.skipped
    }

    /// Opens the account of one received delivery. After [`Stats::close`]
    /// the delivery is counted dropped at once (nothing runs after the drain).
    pub fn open(self: &Arc<Self>) -> Delivery {
        let mut l = self.lock();
        l.counts.received += 1;
        if l.closed {
            l.counts.dropped += 1;
            return Delivery { stats: None };
        }
        l.open += 1;
        Delivery {
            stats: Some(self.clone()),
        }
    }

    fn settle(&self, how: Settled) -> u64 {
        let mut l = self.lock();
        if l.closed {
            // Already counted cut short by `close`.
            return 0;
        }
        l.open -= 1;
        let c = &mut l.counts;
        let counter = match how {
            Settled::Ok => &mut c.ok,
            Settled::Failed => &mut c.failed,
            Settled::Dropped => &mut c.dropped,
            Settled::CutShort => &mut c.cut_short,
        };
        *counter += 1;
        *counter
    }

    /// Ends the accounting: every delivery still open is cut short. Returns
    /// how many were.
    pub fn close(&self) -> u64 {
        let mut l = self.lock();
        if l.closed {
            return 0;
        }
        l.closed = true;
        let cut = std::mem::take(&mut l.open);
        l.counts.cut_short += cut;
        cut
    }

    /// Deliveries queued or running now.
    pub fn open_now(&self) -> u64 {
        self.lock().open
    }

    pub fn snapshot(&self) -> Snapshot {
        self.lock().counts
    }
}

/// The account of one delivery; see the module docs.
#[derive(Debug)]
#[must_use = "a delivery must be settled, or it counts as cut short"]
pub struct Delivery {
    /// `None` once settled.
    stats: Option<Arc<Stats>>,
}

impl Delivery {
    /// Counts the delivery as `how`; returns that counter's new total (0 if
    /// the ledger was already closed).
    pub fn settle(mut self, how: Settled) -> u64 {
        // `None` only for a delivery opened after the close, already counted.
        self.stats.take().map_or(0, |stats| stats.settle(how))
    }
}

impl Drop for Delivery {
    fn drop(&mut self) {
        let Some(stats) = self.stats.take() else {
            return;
        };
        if std::thread::panicking() {
            tracing::error!(
                "a handler task panicked; its delivery is counted as failed (this is a bug in spin-redis)"
            );
            stats.settle(Settled::Failed);
        } else {
            // Dropped unsettled: its task or queue was cancelled by the drain.
            stats.settle(Settled::CutShort);
        }
    }
}

impl std::fmt::Display for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "received {}, ok {}, failed {}, dropped {}, skipped {}, cut short {}",
            self.received, self.ok, self.failed, self.dropped, self.skipped, self.cut_short
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn balanced(s: &Snapshot) -> bool {
        s.received == s.ok + s.failed + s.dropped + s.skipped + s.cut_short
    }

    #[test]
    fn every_delivery_is_counted_exactly_once() {
        let stats = Arc::new(Stats::default());
        stats.open().settle(Settled::Ok);
        stats.open().settle(Settled::Failed);
        stats.open().settle(Settled::Dropped);
        stats.skip(2);
        drop(stats.open()); // cancelled: cut short
        let late = stats.open();
        let queued = stats.open();
        assert_eq!(stats.open_now(), 2);
        assert_eq!(stats.close(), 2);
        // Finishing after the drain deadline does not count it again.
        assert_eq!(late.settle(Settled::Ok), 0);
        drop(queued);
        let s = stats.snapshot();
        assert_eq!(
            s,
            Snapshot {
                received: 8,
                ok: 1,
                failed: 1,
                dropped: 1,
                skipped: 2,
                cut_short: 3
            }
        );
        assert!(balanced(&s), "{s}");
    }

    #[test]
    fn a_panicking_task_counts_its_delivery_as_failed() {
        let stats = Arc::new(Stats::default());
        let d = stats.open();
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            let _d = d;
            panic!("boom");
        }));
        assert!(r.is_err());
        let s = stats.snapshot();
        assert_eq!((s.received, s.failed, s.cut_short), (1, 1, 0));
    }
}
