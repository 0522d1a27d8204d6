//! What the readers of streams and lists share: a handler slot held before
//! anything is read ([`slots`]), a blocking read in flight finished even
//! when shutting down ([`finish_read`]), and refused reads said at the
//! first and every twentieth ([`Refusals`]).
//!
//! Not owned here: the reconnect loop around a reader (`reconnect.rs`),
//! what is read (`stream/read.rs`, `list/consume.rs`).

use super::reconnect::BACKOFF_MAX;
use crate::dispatch::{Capacity, Permits};
use std::future::Future;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Holds one handler slot (waiting for it), then more up to `want` in all
/// if they are free; `None` at shutdown.
pub async fn slots(
    capacity: &Capacity,
    want: usize,
    shutdown: &CancellationToken,
) -> Option<Vec<Permits>> {
    let first = tokio::select! {
        _ = shutdown.cancelled() => return None,
        p = capacity.acquire() => p,
    };
    let mut permits = vec![first];
    while permits.len() < want {
        match capacity.try_acquire() {
            Some(p) => permits.push(p),
            None => break,
        }
    }
    Some(permits)
}

/// How a blocking read in flight ended.
pub struct Read<T> {
    pub reply: T,
    /// Shutdown came while it waited.
    pub stopping: bool,
}

/// Waits for a blocking read (`BLOCK`ed up to `block`); at shutdown it is
/// still given that long (and a little more), so that what it takes is
/// handled rather than left behind. `None`: shutting down, and it did not
/// finish in time.
pub async fn finish_read<T>(
    read: impl Future<Output = T>,
    block: Duration,
    shutdown: &CancellationToken,
) -> Option<Read<T>> {
    tokio::pin!(read);
    tokio::select! {
        reply = &mut read => Some(Read { reply, stopping: false }),
        _ = shutdown.cancelled() => {
            let reply = tokio::time::timeout(block + Duration::from_millis(500), read).await.ok()?;
            Some(Read { reply, stopping: true })
        }
    }
}

/// Reads Redis refused in a row (not a lost connection: a key of another
/// type, an ACL): said at the first and every twentieth, tried again after
/// [`BACKOFF_MAX`].
#[derive(Default)]
pub struct Refusals(u32);

impl Refusals {
    /// Counts one more; `Some(count)` when it is to be said.
    pub fn note(&mut self) -> Option<u32> {
        self.0 += 1;
        (self.0 == 1 || self.0.is_multiple_of(20)).then_some(self.0)
    }

    /// A read succeeded.
    pub fn reset(&mut self) {
        self.0 = 0;
    }

    /// Waits before the next try; `false` at shutdown.
    pub async fn pause(shutdown: &CancellationToken) -> bool {
        tokio::select! {
            _ = shutdown.cancelled() => false,
            _ = tokio::time::sleep(BACKOFF_MAX) => true,
        }
    }
}
