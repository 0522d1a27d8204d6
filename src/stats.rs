//! Counters of what happened to every message, printed at shutdown, so that
//! nothing is ever dropped silently.
//!
//! Every message that reached the subscriber ends in exactly one of: handled
//! (ok), failed, dropped (queue full), skipped (too large) or cut short
//! (still queued or running when the shutdown deadline passed). Counted per
//! delivery: a message on a channel with two components counts twice.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct Stats {
    pub received: AtomicU64,
    pub ok: AtomicU64,
    pub failed: AtomicU64,
    pub dropped: AtomicU64,
    pub skipped: AtomicU64,
    pub cut_short: AtomicU64,
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

impl Stats {
    pub fn add(counter: &AtomicU64, n: u64) -> u64 {
        counter.fetch_add(n, Ordering::Relaxed) + n
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot {
            received: self.received.load(Ordering::Relaxed),
            ok: self.ok.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            skipped: self.skipped.load(Ordering::Relaxed),
            cut_short: self.cut_short.load(Ordering::Relaxed),
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
