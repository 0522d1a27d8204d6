//! What the readers of streams and lists share: a handler slot held before
//! anything is read ([`slots`]), a blocking read in flight finished even
//! when shutting down ([`finish_read`]), refused reads said at the first
//! and every twentieth ([`Refusals`]), what the tasks of a trigger share
//! whatever its source ([`Core`]), and one attempt run on the trigger's
//! handler ([`Core::run_attempt`]).
//!
//! Not owned here: the reconnect loop around a reader (`reconnect.rs`),
//! what is read (`stream/read.rs`, `list/consume.rs`).

use super::connect::Endpoint;
use super::reconnect::{BACKOFF_MAX, LazyConn};
use crate::dispatch::{self, Capacity, Permits, Ran, Shared};
use crate::executor::Handler;
use crate::ops::health::RedisLink;
use crate::ops::metrics::RouteMetrics;
use spin_redis_sandbox::wasi::Message;
use std::future::Future;
use std::sync::Arc;
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

    /// Gives the slots of the refused read back and waits before the next
    /// try; `false` at shutdown.
    pub async fn pause(permits: Vec<Permits>, shutdown: &CancellationToken) -> bool {
        drop(permits);
        tokio::select! {
            _ = shutdown.cancelled() => false,
            _ = tokio::time::sleep(BACKOFF_MAX) => true,
        }
    }
}

/// The [`Core`] of a `ListSource` or `StreamSource` (`$source`, which both
/// carry a `spec` with its `endpoint`, and the handler's parts by the same
/// names) once the run's `$shared` state is known.
macro_rules! core_of {
    ($source:ident, $shared:expr) => {
        $crate::source::reading::Core::new(
            &$source.spec.endpoint,
            $source.handler,
            $source.capacity,
            $shared,
            $source.link,
            $source.route_metrics,
        )
    };
}
pub(crate) use core_of;

/// What the tasks of a stream or list trigger share, whatever the source.
pub struct Core {
    pub handler: Arc<Handler>,
    pub capacity: Capacity,
    pub shared: Arc<Shared>,
    /// The reading connection's state (metrics, readiness).
    pub link: RedisLink,
    pub route_metrics: RouteMetrics,
    /// Commands other than the blocking read.
    pub commands: LazyConn,
    /// The endpoint as handlers see it (no credentials).
    pub address: String,
}

impl Core {
    pub fn new(
        endpoint: &Endpoint,
        handler: Arc<Handler>,
        capacity: Capacity,
        shared: Arc<Shared>,
        link: RedisLink,
        route_metrics: RouteMetrics,
    ) -> Core {
        Core {
            handler,
            capacity,
            shared,
            link,
            route_metrics,
            commands: LazyConn::new(endpoint.clone()),
            address: endpoint.shown(),
        }
    }

    /// Runs one attempt at a delivery on the trigger's handler, counted in
    /// the run's stats.
    pub async fn run_attempt(&self, message: Message<'_>) -> Ran {
        let account = self.shared.stats.open();
        let (handler, metrics) = (&self.handler, &self.route_metrics);
        dispatch::run_delivery(handler, message, account, metrics, &self.shared).await
    }
}
