//! A running list trigger: what its tasks share, starting them, and the
//! shutdown (last removals, the heartbeat stopped, what is left handed back
//! to the queue, the report).
//!
//! Tasks on the I/O runtime: the reader and the retrier (`consume`), the
//! heartbeat with its take-overs (`recover`) and the settler (`settle`);
//! each attempt is a task on the handler runtime, tracked by the
//! dispatcher's [`Shared::tracker`].
//!
//! Not owned here: what the tasks do.

use super::ListSpec;
use super::consume::{Retry, read_loop, retry_loop};
use super::recover::{hand_back_own, heartbeat_loop};
use super::settle::settle_loop;
use crate::dispatch::{Capacity, Shared};
use crate::executor::Handler;
use crate::ops::health::RedisLink;
use crate::ops::metrics::RouteMetrics;
use crate::source::batch::{self, Settles, Tasks};
use crate::source::reading::{Core, core_of};
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Everything one list trigger needs.
pub struct ListSource {
    pub spec: ListSpec,
    pub handler: Arc<Handler>,
    pub capacity: Capacity,
    /// The reading connection's state (metrics, readiness).
    pub link: RedisLink,
    pub route_metrics: RouteMetrics,
}

/// What became of one list trigger's items in this process.
#[derive(Debug, Default)]
pub struct Counters {
    /// Handled successfully and removed.
    pub handled: AtomicU64,
    /// Failed attempts handed to a handler again.
    pub retried: AtomicU64,
    /// Moved to the dead-letter list.
    pub dead_lettered: AtomicU64,
    /// Items of dead consumers handed back to the queue by this one.
    pub recovered: AtomicU64,
    /// Items of this consumer's own processing list taken up at start.
    pub resumed: AtomicU64,
}

/// What every task of a trigger shares.
pub struct Inner {
    /// What every stream or list trigger has (handler, capacity,
    /// connections); its fields read as this one's.
    pub core: Core,
    pub spec: ListSpec,
    pub counters: Counters,
    /// The items of the processing list this process holds (running,
    /// waiting to be removed, waiting for a retry), counted by content since
    /// items may repeat: a reconnected reader takes up only the others.
    pub held: Mutex<HashMap<Bytes, usize>>,
    /// Whether a heartbeat was ever written: a later one that finds none
    /// means it had expired.
    pub beaten: AtomicBool,
}

impl std::ops::Deref for Inner {
    type Target = Core;

    fn deref(&self) -> &Core {
        &self.core
    }
}

impl Inner {
    /// One more occurrence of `item` is held by this process.
    pub fn hold(&self, item: &Bytes) {
        *self
            .held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(item.clone())
            .or_default() += 1;
    }

    /// One occurrence of `item` is no longer held.
    pub fn release(&self, item: &Bytes) {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = held.get_mut(item) {
            *n -= 1;
            if *n == 0 {
                held.remove(item);
            }
        }
    }

    /// How many occurrences of each item are held now.
    pub fn held_now(&self) -> HashMap<Bytes, usize> {
        self.held.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// The channels an attempt reports on (see [`batch::Chans`]).
pub type Chans = batch::Chans<Bytes, Retry>;

/// The shutdown report of one list trigger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub list: String,
    pub consumer: String,
    pub component: String,
    pub handled: u64,
    pub retried: u64,
    pub dead_lettered: u64,
    pub recovered: u64,
    pub resumed: u64,
    /// Left in the processing list and handed back at shutdown; `None` when
    /// Redis did not answer (a live consumer hands them back later).
    pub handed_back: Option<u64>,
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "list {:?} (component {}, consumer {:?}): handled {}, retried {}, dead-lettered {}, recovered from dead consumers {}, resumed {}",
            self.list,
            self.component,
            self.consumer,
            self.handled,
            self.retried,
            self.dead_lettered,
            self.recovered,
            self.resumed
        )?;
        match self.handed_back {
            Some(n) => write!(f, "; handed back {n}"),
            None => write!(f, "; handing back failed"),
        }
    }
}

/// A running list trigger; see [`ListSource::start`].
pub struct Running {
    inner: Arc<Inner>,
    tasks: Tasks,
    heartbeat: tokio::task::JoinHandle<()>,
    /// Stops the heartbeat, which outlives the readers: in-flight items must
    /// not look abandoned while the drain runs.
    stop_heartbeat: CancellationToken,
}

impl ListSource {
    /// Starts taking, retrying and beating until `shutdown`.
    pub fn start(self, shared: Arc<Shared>, shutdown: CancellationToken) -> Running {
        let inner = Arc::new(Inner {
            core: core_of!(self, shared),
            spec: self.spec,
            counters: Counters::default(),
            held: Mutex::new(HashMap::new()),
            beaten: AtomicBool::new(false),
        });
        let (chans, settled_rx, retry_rx) = Chans::new();
        let settler = tokio::spawn(settle_loop(inner.clone(), settled_rx, shutdown.clone()));
        let stop_heartbeat = CancellationToken::new();
        let heartbeat = tokio::spawn(heartbeat_loop(
            inner.clone(),
            shutdown.clone(),
            stop_heartbeat.clone(),
        ));
        let readers = TaskTracker::new();
        readers.spawn(read_loop(inner.clone(), chans.clone(), shutdown.clone()));
        readers.spawn(retry_loop(inner.clone(), chans, retry_rx, shutdown));
        Running {
            inner,
            tasks: Tasks::new(readers, settler),
            heartbeat,
            stop_heartbeat,
        }
    }
}

impl Running {
    /// After the drain: waits (at most `patience`) for the last removals,
    /// stops the heartbeat, hands what is left back to the queue, and
    /// reports.
    pub async fn finish(self, patience: Duration) -> Summary {
        let inner = self.inner;
        let settles = Settles::Removals {
            list: &inner.spec.list,
        };
        self.tasks.settled(patience, settles).await;
        self.stop_heartbeat.cancel();
        let _ = self.heartbeat.await;
        let handed_back = hand_back_own(&inner).await;
        let c = &inner.counters;
        Summary {
            list: inner.spec.list.clone(),
            consumer: inner.spec.consumer.clone(),
            component: inner.handler.component.clone(),
            handled: c.handled.load(Ordering::Relaxed),
            retried: c.retried.load(Ordering::Relaxed),
            dead_lettered: c.dead_lettered.load(Ordering::Relaxed),
            recovered: c.recovered.load(Ordering::Relaxed),
            resumed: c.resumed.load(Ordering::Relaxed),
            handed_back,
        }
    }

    /// Waits until taking and retrying have stopped (after the shutdown
    /// signal); no attempt starts after this.
    pub async fn stopped(&self) {
        self.tasks.stopped().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_names_every_count() {
        let s = Summary {
            list: "jobs".into(),
            consumer: "w1".into(),
            component: "worker".into(),
            handled: 5,
            retried: 2,
            dead_lettered: 1,
            recovered: 3,
            resumed: 4,
            handed_back: Some(0),
        };
        assert_eq!(
            s.to_string(),
            "list \"jobs\" (component worker, consumer \"w1\"): handled 5, retried 2, dead-lettered 1, recovered from dead consumers 3, resumed 4; handed back 0"
        );
    }
}
