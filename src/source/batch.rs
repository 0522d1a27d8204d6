//! Settling handled deliveries in batches: the stream's acknowledger
//! (`XACK`) and the list's settler (`LREM`) both gather what is ready into
//! one command, retry a failed one with [`after_failures`], and once
//! shutting down give up after [`SHUTDOWN_PATIENCE`] (what is left is
//! handled again later, never lost).
//!
//! Not owned here: the command that settles a batch, or what is flushed
//! before it (each source's settler).

use super::reconnect::after_failures;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Deliveries settled in one command, at most.
pub const BATCH: usize = 1000;
/// How long settling may keep being retried once shutting down.
pub const SHUTDOWN_PATIENCE: Duration = Duration::from_secs(5);

/// The receiving end of a settler, with its failures in a row.
pub struct Batches<T> {
    rx: mpsc::UnboundedReceiver<T>,
    failures: u32,
    stopping_since: Option<Instant>,
}

impl<T> Batches<T> {
    pub fn new(rx: mpsc::UnboundedReceiver<T>) -> Self {
        Batches {
            rx,
            failures: 0,
            stopping_since: None,
        }
    }

    /// Fills `batch` (kept from a failed try, or waited for) with what is
    /// ready, up to [`BATCH`]; `false` once it is empty and every sender is
    /// gone (every attempt ended).
    pub async fn fill(&mut self, batch: &mut Vec<T>) -> bool {
        if batch.is_empty() {
            match self.rx.recv().await {
                Some(d) => batch.push(d),
                None => return false,
            }
        }
        while batch.len() < BATCH {
            match self.rx.try_recv() {
                Ok(d) => batch.push(d),
                Err(_) => break,
            }
        }
        true
    }

    /// The batch was settled.
    pub fn settled(&mut self) {
        self.failures = 0;
    }

    /// Counts a failed try; `true` for the first in a row (to be said).
    pub fn failed(&mut self) -> bool {
        self.failures += 1;
        self.failures == 1
    }

    /// After a failed try: `true` to give the batch up (shutting down for
    /// longer than [`SHUTDOWN_PATIENCE`]), else waits before the next try.
    pub async fn give_up_or_wait(&mut self, shutdown: &CancellationToken) -> bool {
        if shutdown.is_cancelled() {
            let since = *self.stopping_since.get_or_insert_with(Instant::now);
            if since.elapsed() > SHUTDOWN_PATIENCE {
                return true;
            }
        }
        tokio::time::sleep(after_failures(self.failures)).await;
        false
    }
}
