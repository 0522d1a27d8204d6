//! A running stream trigger: what its tasks share ([`Inner`]), which entries
//! this process holds, starting the tasks, and the shutdown report.
//!
//! Three tasks per trigger on the I/O runtime (the reader `read.rs`, the
//! claimer `claim.rs`, the retrier `retry.rs`) plus the acknowledger
//! (`ack.rs`), which flushes the component's log files on a blocking
//! thread, never on the I/O runtime; each attempt (`attempt.rs`) is a task
//! on the handler runtime, tracked by the dispatcher's [`Shared::tracker`].
//!
//! Not owned here: what the tasks do.

use super::ack::ack_loop;
use super::claim::{claim_loop, group_info};
use super::read::read_loop;
use super::retry::{self, Retry, Room};
use super::spec::StreamSpec;
use crate::dispatch::{Capacity, Shared};
use crate::executor::Handler;
use crate::ops::health::RedisLink;
use crate::ops::metrics::{RouteMetrics, StreamMetrics};
use crate::source::batch::{self, Settles, Tasks};
use crate::source::reading::{Core, core_of};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// What became of one stream trigger's entries in this process.
#[derive(Debug, Default)]
pub struct Counters {
    /// Handled successfully and acknowledged.
    pub handled: AtomicU64,
    /// Failed attempts handed to a handler again.
    pub retried: AtomicU64,
    /// Moved to the dead-letter stream.
    pub dead_lettered: AtomicU64,
    /// Taken over from other consumers after `claim_idle`.
    pub claimed: AtomicU64,
}

/// The shutdown report of one stream trigger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub stream: String,
    pub group: String,
    pub component: String,
    pub handled: u64,
    pub retried: u64,
    pub dead_lettered: u64,
    pub claimed: u64,
    /// Pending in the group and not yet read by it (`XINFO GROUPS`), when
    /// Redis answered.
    pub pending_and_lag: Option<(u64, Option<u64>)>,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "stream {:?} (component {}, group {:?}): handled {}, retried {}, dead-lettered {}, claimed from others {}",
            self.stream,
            self.component,
            self.group,
            self.handled,
            self.retried,
            self.dead_lettered,
            self.claimed
        )?;
        match self.pending_and_lag {
            Some((pending, Some(lag))) => write!(f, "; group pending {pending}, lag {lag}"),
            Some((pending, None)) => write!(f, "; group pending {pending}"),
            None => Ok(()),
        }
    }
}

/// Everything one stream trigger needs.
pub struct StreamSource {
    pub spec: StreamSpec,
    pub handler: Arc<Handler>,
    pub capacity: Capacity,
    /// The reading connection's state (metrics, readiness).
    pub link: RedisLink,
    pub route_metrics: RouteMetrics,
    pub stream_metrics: StreamMetrics,
    /// How many entries may wait for a retry (or a dead-lettering) before
    /// reading pauses: see [`super::max_waiting`].
    pub max_waiting: usize,
}

/// A running stream trigger; see [`StreamSource::start`].
pub struct Running {
    inner: Arc<Inner>,
    tasks: Tasks,
}

/// Where an entry held by this process is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Held {
    /// Running, or handled and waiting for its acknowledgement.
    Running,
    /// Failed, waiting for its retry.
    Waiting,
}

/// What every task of a trigger shares.
pub(super) struct Inner {
    /// What every stream or list trigger has (handler, capacity,
    /// connections); its fields read as this one's.
    pub core: Core,
    pub spec: StreamSpec,
    pub stream_metrics: StreamMetrics,
    pub counters: Counters,
    /// Entries this process is running or will retry, by id.
    held: Mutex<HashMap<String, Held>>,
    /// Entries held without running (waiting retries, dead-lettering).
    pub room: Arc<Room>,
    /// Set once Redis refused `EVAL` (see `dead_letter.rs`).
    pub scripts_refused: AtomicBool,
    /// The newest entry id this process knows the group delivered: where a
    /// lost group is made again (see `read.rs`).
    pub position: Mutex<Option<(u64, u64)>>,
    /// Whether the group was found or made once: after that, a missing
    /// group was lost, and is made again at [`Inner::position`].
    pub group_known: AtomicBool,
}

/// The channels an attempt reports on (see [`batch::Chans`]).
pub(super) type Chans = batch::Chans<String, Retry>;

impl StreamSource {
    /// Starts reading, claiming and retrying until `shutdown`.
    pub fn start(self, shared: Arc<Shared>, shutdown: CancellationToken) -> Running {
        let inner = Arc::new(Inner {
            core: core_of!(self, shared),
            spec: self.spec,
            stream_metrics: self.stream_metrics,
            counters: Counters::default(),
            held: Mutex::new(HashMap::new()),
            room: Room::new(self.max_waiting),
            scripts_refused: AtomicBool::new(false),
            position: Mutex::new(None),
            group_known: AtomicBool::new(false),
        });
        let (chans, ack_rx, retry_rx) = Chans::new();
        let acker = tokio::spawn(ack_loop(inner.clone(), ack_rx, shutdown.clone()));
        let readers = TaskTracker::new();
        readers.spawn(read_loop(inner.clone(), chans.clone(), shutdown.clone()));
        readers.spawn(claim_loop(inner.clone(), chans.clone(), shutdown.clone()));
        readers.spawn(retry::retry_loop(inner.clone(), chans, retry_rx, shutdown));
        Running {
            inner,
            tasks: Tasks::new(readers, acker),
        }
    }
}

impl Running {
    /// Waits until reading, claiming and retrying have stopped (after the
    /// shutdown signal); no attempt starts after this.
    pub async fn stopped(&self) {
        self.tasks.stopped().await;
    }

    /// After the drain: waits (at most `patience`) for the last
    /// acknowledgements, and reports.
    pub async fn finish(self, patience: Duration) -> Summary {
        let inner = self.inner;
        let settles = Settles::Acks {
            stream: &inner.spec.stream,
        };
        self.tasks.settled(patience, settles).await;
        let info = tokio::time::timeout(Duration::from_secs(2), group_info(&inner))
            .await
            .ok()
            .and_then(Result::ok);
        let c = &inner.counters;
        Summary {
            stream: inner.spec.stream.clone(),
            group: inner.spec.group.clone(),
            component: inner.handler.component.clone(),
            handled: c.handled.load(Ordering::Relaxed),
            retried: c.retried.load(Ordering::Relaxed),
            dead_lettered: c.dead_lettered.load(Ordering::Relaxed),
            claimed: c.claimed.load(Ordering::Relaxed),
            pending_and_lag: info,
        }
    }
}

impl std::ops::Deref for Inner {
    type Target = Core;

    fn deref(&self) -> &Core {
        &self.core
    }
}

impl Inner {
    fn held_map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Held>> {
        self.held.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn hold(&self, id: &str, state: Held) {
        self.held_map().insert(id.to_string(), state);
    }

    pub fn release(&self, id: &str) {
        self.held_map().remove(id);
    }

    /// Forgets a retry, unless the entry was taken up meanwhile.
    pub fn release_waiting(&self, id: &str) {
        let mut held = self.held_map();
        if held.get(id) == Some(&Held::Waiting) {
            held.remove(id);
        }
    }

    pub fn held(&self, id: &str) -> Option<Held> {
        self.held_map().get(id).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_names_every_count() {
        let s = Summary {
            stream: "orders".into(),
            group: "g".into(),
            component: "billing".into(),
            handled: 5,
            retried: 2,
            dead_lettered: 1,
            claimed: 3,
            pending_and_lag: Some((0, Some(0))),
        };
        assert_eq!(
            s.to_string(),
            "stream \"orders\" (component billing, group \"g\"): handled 5, retried 2, dead-lettered 1, claimed from others 3; group pending 0, lag 0"
        );
    }
}
