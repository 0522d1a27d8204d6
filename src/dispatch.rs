//! From a received message to running handlers: routing, bounded queues,
//! bounded concurrency, and the shutdown drain.
//!
//! Every trigger (channel → component) has its own bounded queue and worker.
//! [`Dispatcher::deliver`] never blocks: it routes a message to each queue of
//! its channel, and a full queue drops that delivery, logs it and counts it
//! (the subscriber must keep reading). A worker takes messages in arrival
//! order and starts each as a task on the handler runtime once it holds a
//! permit of its own trigger (`max_concurrency`, `1` = strictly one at a time
//! in order) and one of the global bound. A hung handler therefore holds only
//! its own trigger's permits and one global permit; other channels go on.
//!
//! Not owned here: Redis (see `subscriber`) and running wasm (see `executor`).

use crate::executor::Handler;
use crate::logs::Logs;
use crate::stats::Stats;
use bytes::Bytes;
use spin_redis_compat::sandbox::Message;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::task::TaskTracker;

/// One trigger's route: where its messages go.
pub struct RouteSpec {
    pub address_key: String,
    pub channel: String,
    pub handler: Arc<Handler>,
    /// The address as handlers see it (no credentials).
    pub address_shown: String,
    pub max_concurrency: Option<usize>,
}

/// What the workers share.
pub struct Shared {
    pub logs: Arc<Logs>,
    pub stats: Arc<Stats>,
    /// Deliveries queued or running: what a shutdown would cut short.
    pub in_flight: AtomicU64,
    pub global: Arc<Semaphore>,
    pub max_payload: u64,
    /// Payload bytes waiting in all queues, and the most there may be: the
    /// queues are bounded in bytes as well as in messages, so a flood of
    /// large messages cannot exhaust memory either.
    pub queued_bytes: AtomicU64,
    pub max_queued_bytes: u64,
    /// Where handlers run: a runtime of its own, so wasm never delays the
    /// Redis connection.
    pub handlers: tokio::runtime::Handle,
    pub tracker: TaskTracker,
}

struct RouteTx {
    component: String,
    tx: mpsc::Sender<Bytes>,
}

/// Routes messages to trigger queues; see the module docs.
pub struct Dispatcher {
    routes: HashMap<(String, String), Vec<RouteTx>>,
    shared: Arc<Shared>,
}

impl Dispatcher {
    /// Creates the queues and spawns one worker per route on the current
    /// runtime. The workers end when the dispatcher is dropped and their
    /// queues are empty.
    pub fn start(
        specs: Vec<RouteSpec>,
        queue_capacity: usize,
        shared: Arc<Shared>,
    ) -> (Dispatcher, TaskTracker) {
        let workers = TaskTracker::new();
        let mut routes: HashMap<(String, String), Vec<RouteTx>> = HashMap::new();
        for spec in specs {
            let (tx, rx) = mpsc::channel(queue_capacity);
            routes
                .entry((spec.address_key.clone(), spec.channel.clone()))
                .or_default()
                .push(RouteTx {
                    component: spec.handler.component.clone(),
                    tx,
                });
            workers.spawn(worker(spec, rx, shared.clone()));
        }
        workers.close();
        (Dispatcher { routes, shared }, workers)
    }

    /// Queues one message for every component bound to its channel. Never
    /// blocks.
    pub fn deliver(&self, address_key: &str, channel: &str, payload: Bytes) {
        let Some(routes) = self
            .routes
            .get(&(address_key.to_string(), channel.to_string()))
        else {
            tracing::warn!(channel = %channel, "message on a channel nothing is bound to; ignored");
            return;
        };
        let stats = &self.shared.stats;
        Stats::add(&stats.received, routes.len() as u64);
        tracing::trace!(channel = %channel, bytes = payload.len(), "received");
        if payload.len() as u64 > self.shared.max_payload {
            let n = Stats::add(&stats.skipped, routes.len() as u64);
            tracing::warn!(
                channel,
                bytes = payload.len(),
                max_payload = self.shared.max_payload,
                skipped_total = n,
                "message larger than max_payload skipped"
            );
            return;
        }
        let len = payload.len() as u64;
        for r in routes {
            let shared = &self.shared;
            let queued = shared.queued_bytes.fetch_add(len, Ordering::Relaxed) + len;
            let refused = if queued > shared.max_queued_bytes {
                Some("queued bytes at their limit")
            } else {
                shared.in_flight.fetch_add(1, Ordering::Relaxed);
                match r.tx.try_send(payload.clone()) {
                    Ok(()) => None,
                    Err(e) => {
                        shared.in_flight.fetch_sub(1, Ordering::Relaxed);
                        Some(match e {
                            mpsc::error::TrySendError::Full(_) => "queue full",
                            mpsc::error::TrySendError::Closed(_) => "shutting down",
                        })
                    }
                }
            };
            if let Some(why) = refused {
                shared.queued_bytes.fetch_sub(len, Ordering::Relaxed);
                let n = Stats::add(&stats.dropped, 1);
                // Log the first drop and then one in a thousand: a flood
                // must not turn into a flood of log lines. All are counted.
                if n == 1 || n.is_multiple_of(1000) {
                    tracing::warn!(component = %r.component, channel = %channel, reason = %why, dropped_total = n, "message dropped");
                }
            }
        }
    }
}

async fn worker(spec: RouteSpec, mut rx: mpsc::Receiver<Bytes>, shared: Arc<Shared>) {
    let own = spec
        .max_concurrency
        .map(|n| Arc::new(Semaphore::new(n.max(1))));
    let channel: Arc<str> = spec.channel.as_str().into();
    let address: Arc<str> = spec.address_shown.as_str().into();
    while let Some(payload) = rx.recv().await {
        shared
            .queued_bytes
            .fetch_sub(payload.len() as u64, Ordering::Relaxed);
        // Both semaphores live as long as the dispatcher and are never
        // closed, so acquiring cannot fail.
        let own_permit = match &own {
            Some(s) => Some(
                s.clone()
                    .acquire_owned()
                    .await
                    .expect("invariant: semaphore never closed"),
            ),
            None => None,
        };
        let permit = shared
            .global
            .clone()
            .acquire_owned()
            .await
            .expect("invariant: semaphore never closed");
        let handler = spec.handler.clone();
        let shared2 = shared.clone();
        let channel = channel.clone();
        let address = address.clone();
        shared.tracker.spawn_on(
            async move {
                run_one(&handler, &channel, &address, payload, &shared2).await;
                shared2.in_flight.fetch_sub(1, Ordering::Relaxed);
                drop(permit);
                drop(own_permit);
            },
            &shared.handlers,
        );
    }
}

/// Runs one handler on one message and records what happened.
pub async fn run_one(
    handler: &Handler,
    channel: &str,
    address: &str,
    payload: Bytes,
    shared: &Shared,
) {
    let started = std::time::Instant::now();
    let outcome = handler
        .executor
        .run(Message {
            channel,
            address,
            payload,
        })
        .await;
    shared.logs.record(&handler.component, &outcome);
    match &outcome.result {
        Ok(()) => {
            Stats::add(&shared.stats.ok, 1);
            tracing::debug!(component = %handler.component, channel = %channel, elapsed = ?started.elapsed(), "handled");
        }
        Err(e) => {
            Stats::add(&shared.stats.failed, 1);
            tracing::warn!(component = %handler.component, channel = %channel, reason = %e, "handler failed");
        }
    }
}

/// Waits for queued and running deliveries to finish, up to `deadline`;
/// returns how many were cut short.
pub async fn drain(workers: TaskTracker, shared: &Shared, deadline: Duration) -> u64 {
    let all = async {
        workers.wait().await;
        shared.tracker.close();
        shared.tracker.wait().await;
    };
    match tokio::time::timeout(deadline, all).await {
        Ok(()) => 0,
        Err(_) => shared.in_flight.load(Ordering::Relaxed),
    }
}
