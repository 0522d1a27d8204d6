//! From a received message to running handlers: routing, bounded queues,
//! bounded concurrency, and the shutdown drain.
//!
//! Every trigger (channel → component) has its own queue and worker.
//! [`Dispatcher::deliver`] never blocks: it routes a message to each queue of
//! its channel; when the queues are full the delivery is dropped, logged and
//! counted (the subscriber must keep reading). The queues are bounded by
//! memory: every queued delivery is charged its payload plus
//! [`QUEUED_OVERHEAD`] against the budget (`--max-queued-bytes`), so a burst
//! of a million small messages is absorbed while a flood that outgrows
//! memory is refused. Every trigger has a share of the budget of its own
//! (see `queue_budget`), so a hung channel's backlog never makes another
//! channel drop. A count bound per trigger (`--queue-capacity`) is there for
//! whoever wants one. Every drop is counted per trigger, and each trigger's
//! first drop (then one in a thousand) is logged with its component and
//! channel.
//!
//! A worker takes messages in arrival order and starts each as a task once
//! it holds a permit of its own trigger (`max_concurrency`, `1` = strictly
//! one at a time in order) and a handler slot. The workers live on the
//! handler runtime: a message crosses threads once, into the queue (and the
//! worker is woken only when it was idle); starting its task is then a
//! local spawn on a handler thread, not a second cross-thread hand-off.
//!
//! Slots: every trigger has one slot reserved for itself, and the rest of the
//! global bound is a pool shared by all triggers. A trigger whose handlers
//! hang can take the whole pool, but never another trigger's reserved slot,
//! so every other channel keeps going (one at a time at worst) until the hung
//! handlers reach their deadline and give their slots back.
//!
//! Each queued delivery carries its [`Delivery`] account, so it is counted
//! exactly once whatever happens to it (see `stats`). At the drain deadline
//! [`Shared::cancel`] stops the handlers still running; they are counted cut
//! short.
//!
//! A pattern trigger's route is found by its pattern, and each of its
//! deliveries carries the channel the message was published to (charged
//! against the memory budget with the payload).
//!
//! Stream triggers have no queue (the stream is the queue): their source
//! holds a [`Capacity`] (the same own bound, reserved slot and shared pool),
//! reads only as many entries as it holds slots for, and runs each through
//! [`run_delivery`], like a queued delivery.
//!
//! Not owned here: Redis (see `source`) and running wasm (see `executor`).

use crate::executor::Handler;
use crate::logs::Logs;
use crate::ops::metrics::{Metrics, RouteMetrics};
use crate::ops::telemetry::Telemetry;
use crate::queue_budget::{QueueBudget, TriggerBudget};
use crate::stats::{Delivery, Settled, Stats};
use bytes::Bytes;
use spin_redis_sandbox::HandlerError;
use spin_redis_sandbox::wasi::{Message, Origin};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// One trigger's route: where its messages go.
pub struct RouteSpec {
    pub address_key: String,
    /// The channel, or the pattern of a pattern route.
    pub channel: String,
    /// `channel` is a pattern: deliveries come through
    /// [`Dispatcher::deliver_pattern`].
    pub pattern: bool,
    pub handler: Arc<Handler>,
    /// The address as handlers see it (no credentials).
    pub address_shown: String,
    pub max_concurrency: Option<usize>,
}

/// What the workers share.
pub struct Shared {
    pub logs: Arc<Logs>,
    pub stats: Arc<Stats>,
    /// The handler slots all triggers share (the global bound less one
    /// reserved slot per trigger).
    pub pool: Arc<Semaphore>,
    pub max_payload: u64,
    /// The memory the deliveries waiting in all queues may be charged (see
    /// [`queued_cost`] and `queue_budget`).
    pub max_queued_bytes: u64,
    /// Where handlers run: a runtime of its own, so wasm never delays the
    /// Redis connection.
    pub handlers: tokio::runtime::Handle,
    pub tracker: TaskTracker,
    /// Cancelled at the drain deadline: running handlers stop, queued
    /// deliveries are not started.
    pub cancel: CancellationToken,
    pub metrics: Arc<Metrics>,
    /// One span per delivery when traces are on.
    pub telemetry: Option<Arc<Telemetry>>,
}

/// What one queued delivery costs besides its payload, charged against
/// `max_queued_bytes`: the payload's heap block and its shared header
/// (`Bytes`), the queue slot, the ledger account, rounded up. Measured: a
/// queue of 500 000 16-byte messages took about 70 bytes each besides
/// their payload.
pub const QUEUED_OVERHEAD: u64 = 128;

/// The memory a queued delivery of `len` payload bytes is charged.
pub fn queued_cost(len: usize) -> u64 {
    len as u64 + QUEUED_OVERHEAD
}

/// One queued delivery.
struct Queued {
    payload: Bytes,
    account: Delivery,
    /// The channel published to, for a pattern route (shared by its routes).
    published: Option<Arc<str>>,
}

impl Queued {
    /// What it is charged against `max_queued_bytes`.
    fn cost(&self) -> u64 {
        queued_cost(self.payload.len() + self.published.as_ref().map_or(0, |c| c.len()))
    }
}

struct RouteTx {
    component: String,
    tx: mpsc::Sender<Queued>,
    metrics: Arc<RouteMetrics>,
    /// This trigger's account against the queued-memory budget.
    budget: Arc<TriggerBudget>,
    /// Deliveries this trigger dropped (for its log lines).
    dropped: AtomicU64,
}

/// Routes messages to trigger queues; see the module docs.
pub struct Dispatcher {
    /// address key → channel → routes: looked up by `&str` for every
    /// message, without allocating.
    routes: HashMap<String, HashMap<String, Vec<RouteTx>>>,
    /// address key → pattern → routes, for messages to pattern
    /// subscriptions.
    patterns: HashMap<String, HashMap<String, Vec<RouteTx>>>,
    shared: Arc<Shared>,
}

impl Dispatcher {
    /// Creates the queues (`queue_capacity` messages each, or bounded by
    /// memory only) and spawns one worker per route on the handler runtime.
    /// The workers end when the dispatcher is dropped and their queues are
    /// empty, or at [`Shared::cancel`].
    pub fn start(
        specs: Vec<RouteSpec>,
        queue_capacity: Option<usize>,
        shared: Arc<Shared>,
    ) -> (Dispatcher, TaskTracker) {
        let workers = TaskTracker::new();
        let mut routes: HashMap<String, HashMap<String, Vec<RouteTx>>> = HashMap::new();
        let mut patterns: HashMap<String, HashMap<String, Vec<RouteTx>>> = HashMap::new();
        // Without a count bound the channel's own bound is the largest tokio
        // allows; memory (`max_queued_bytes`) is reached long before it.
        let capacity = queue_capacity.unwrap_or(Semaphore::MAX_PERMITS);
        let budget = QueueBudget::new(shared.max_queued_bytes, specs.len());
        tracing::debug!(
            triggers = specs.len(),
            max_queued_bytes = shared.max_queued_bytes,
            reserved_per_trigger = budget.reserved(),
            "queued-memory budget"
        );
        for spec in specs {
            let trigger_budget = Arc::new(budget.trigger());
            let (tx, rx) = mpsc::channel(capacity);
            let metrics = Arc::new(shared.metrics.route(&spec.handler.component, &spec.channel));
            let by_name = if spec.pattern {
                &mut patterns
            } else {
                &mut routes
            };
            by_name
                .entry(spec.address_key.clone())
                .or_default()
                .entry(spec.channel.clone())
                .or_default()
                .push(RouteTx {
                    component: spec.handler.component.clone(),
                    tx,
                    metrics: metrics.clone(),
                    budget: trigger_budget.clone(),
                    dropped: AtomicU64::new(0),
                });
            // One slot of its own, see the module docs.
            let reserved = Arc::new(Semaphore::new(1));
            workers.spawn_on(
                worker(spec, rx, reserved, metrics, trigger_budget, shared.clone()),
                &shared.handlers,
            );
        }
        workers.close();
        let d = Dispatcher {
            routes,
            patterns,
            shared,
        };
        (d, workers)
    }

    /// Queues one message for every component bound to its channel. Never
    /// blocks.
    pub fn deliver(&self, address_key: &str, channel: &str, payload: Bytes) {
        let Some(routes) = self
            .routes
            .get(address_key)
            .and_then(|by_channel| by_channel.get(channel))
        else {
            tracing::warn!(channel = %channel, "message on a channel nothing is bound to; ignored");
            return;
        };
        tracing::trace!(channel = %channel, bytes = payload.len(), "received");
        self.queue(routes, channel, None, payload);
    }

    /// Queues one message to a pattern subscription for every component
    /// bound to `pattern`; `channel` is the channel it was published to.
    /// Never blocks.
    pub fn deliver_pattern(&self, address_key: &str, pattern: &str, channel: &str, payload: Bytes) {
        let Some(routes) = self
            .patterns
            .get(address_key)
            .and_then(|by_pattern| by_pattern.get(pattern))
        else {
            tracing::warn!(pattern = %pattern, channel = %channel, "message for a pattern nothing is bound to; ignored");
            return;
        };
        tracing::trace!(channel = %channel, pattern = %pattern, bytes = payload.len(), "received");
        self.queue(routes, channel, Some(channel.into()), payload);
    }

    fn queue(
        &self,
        routes: &[RouteTx],
        channel: &str,
        published: Option<Arc<str>>,
        payload: Bytes,
    ) {
        let stats = &self.shared.stats;
        if payload.len() as u64 > self.shared.max_payload {
            let n = stats.skip(routes.len() as u64);
            for r in routes {
                r.metrics.skipped.inc();
            }
            tracing::warn!(
                channel,
                bytes = payload.len(),
                max_payload = self.shared.max_payload,
                skipped_total = n,
                "message larger than max_payload skipped"
            );
            return;
        }
        let cost = queued_cost(payload.len() + published.as_ref().map_or(0, |c| c.len()));
        let mut payload = Some(payload);
        for (i, r) in routes.iter().enumerate() {
            let account = stats.open();
            let charged = r.budget.charge(cost);
            let refused = if !charged {
                Some((
                    "queued memory at its limit: this trigger's share and the shared part of --max-queued-bytes are full",
                    account,
                ))
            } else {
                // The last route takes the payload itself: cloning a
                // `Bytes` made from a `Vec` allocates a shared header, which
                // a channel with one component does not need.
                let payload = if i + 1 == routes.len() {
                    payload
                        .take()
                        .expect("invariant: taken only by the last route")
                } else {
                    payload
                        .clone()
                        .expect("invariant: taken only by the last route")
                };
                let item = Queued {
                    payload,
                    account,
                    published: published.clone(),
                };
                match r.tx.try_send(item) {
                    Ok(()) => {
                        r.metrics.queue_depth.inc();
                        None
                    }
                    Err(mpsc::error::TrySendError::Full(item)) => {
                        Some(("queue full (--queue-capacity)", item.account))
                    }
                    Err(mpsc::error::TrySendError::Closed(item)) => {
                        Some(("shutting down", item.account))
                    }
                }
            };
            if let Some((why, account)) = refused {
                if charged {
                    r.budget.release(cost);
                }
                let total = account.settle(Settled::Dropped);
                r.metrics.dropped.inc();
                // Each trigger logs its first drop and then one in a
                // thousand: a flood must not turn into a flood of log
                // lines, and a drop on one channel must not hide the drops
                // on another. All are counted.
                let n = r.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                if n == 1 || n.is_multiple_of(1000) {
                    tracing::warn!(component = %r.component, channel = %channel, reason = %why, dropped = n, dropped_total = total, "message dropped");
                }
            }
        }
    }
}

async fn worker(
    spec: RouteSpec,
    mut rx: mpsc::Receiver<Queued>,
    reserved: Arc<Semaphore>,
    metrics: Arc<RouteMetrics>,
    budget: Arc<TriggerBudget>,
    shared: Arc<Shared>,
) {
    let own = spec
        .max_concurrency
        .map(|n| Arc::new(Semaphore::new(n.max(1))));
    let channel: Arc<str> = spec.channel.as_str().into();
    let pattern = spec.pattern;
    let address: Arc<str> = spec.address_shown.as_str().into();
    loop {
        let item = tokio::select! {
            biased;
            _ = shared.cancel.cancelled() => break,
            item = rx.recv() => match item {
                Some(item) => item,
                None => break,
            },
        };
        budget.release(item.cost());
        metrics.queue_depth.dec();
        let permits = tokio::select! {
            biased;
            // Dropping `item` counts it cut short.
            _ = shared.cancel.cancelled() => break,
            p = acquire(own.as_ref(), &reserved, &shared.pool) => p,
        };
        let handler = spec.handler.clone();
        let shared2 = shared.clone();
        let channel = channel.clone();
        let address = address.clone();
        let metrics = metrics.clone();
        shared.tracker.spawn_on(
            async move {
                run_one(
                    &handler, &channel, pattern, &address, item, &metrics, &shared2,
                )
                .await;
                drop(permits);
            },
            &shared.handlers,
        );
    }
    // What is left in the queue is dropped with `rx`: each counts itself cut
    // short (see `stats`).
}

/// The permits one running delivery holds: its trigger's own bound (if it
/// has one) and a handler slot.
pub type Permits = (Option<OwnedSemaphorePermit>, OwnedSemaphorePermit);

/// The handler capacity of a trigger that reads only what it can run at once
/// (a stream): the same own bound, reserved slot and shared pool as a
/// worker's.
pub struct Capacity {
    own: Option<Arc<Semaphore>>,
    reserved: Arc<Semaphore>,
    pool: Arc<Semaphore>,
}

impl Capacity {
    pub fn new(max_concurrency: Option<usize>, pool: Arc<Semaphore>) -> Capacity {
        Capacity {
            own: max_concurrency.map(|n| Arc::new(Semaphore::new(n.max(1)))),
            reserved: Arc::new(Semaphore::new(1)),
            pool,
        }
    }

    /// Waits for a slot; see the private `acquire`.
    pub async fn acquire(&self) -> Permits {
        acquire(self.own.as_ref(), &self.reserved, &self.pool).await
    }

    /// A slot if one is free now.
    pub fn try_acquire(&self) -> Option<Permits> {
        let own = match &self.own {
            Some(s) => Some(s.clone().try_acquire_owned().ok()?),
            None => None,
        };
        let slot = self
            .reserved
            .clone()
            .try_acquire_owned()
            .or_else(|_| self.pool.clone().try_acquire_owned())
            .ok()?;
        Some((own, slot))
    }
}

/// Waits for a permit of the trigger's own bound (if it has one), then for a
/// handler slot: its reserved one or one from the shared pool, whichever is
/// free first.
async fn acquire(
    own: Option<&Arc<Semaphore>>,
    reserved: &Arc<Semaphore>,
    pool: &Arc<Semaphore>,
) -> Permits {
    // The semaphores live as long as the workers and are never closed, so
    // acquiring cannot fail.
    let own_permit = match own {
        Some(s) => Some(
            s.clone()
                .acquire_owned()
                .await
                .expect("invariant: semaphore never closed"),
        ),
        None => None,
    };
    let slot = tokio::select! {
        biased;
        p = reserved.clone().acquire_owned() => p,
        p = pool.clone().acquire_owned() => p,
    }
    .expect("invariant: semaphore never closed");
    (own_permit, slot)
}

/// Runs one queued delivery; see [`run_delivery`]. `channel` is the
/// route's channel, or its pattern when `pattern`.
async fn run_one(
    handler: &Handler,
    channel: &str,
    pattern: bool,
    address: &str,
    item: Queued,
    metrics: &RouteMetrics,
    shared: &Shared,
) {
    let Queued {
        payload,
        account,
        published,
    } = item;
    let msg = Message {
        channel: published.as_deref().unwrap_or(channel),
        address,
        payload,
        stream: None,
        origin: pattern.then_some(Origin::Pattern(channel)),
    };
    run_delivery(handler, msg, account, metrics, shared).await;
}

/// How a delivery run by [`run_delivery`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ran {
    Ok,
    /// An error, a trap or a timeout, with its reason.
    Failed(String),
    /// Stopped at the drain deadline.
    CutShort,
}

/// Runs one handler on one delivery and records what happened: the ledger,
/// the route's metrics, the log line, the span. Cancelled by
/// [`Shared::cancel`] (the drain deadline): then the delivery is cut short.
/// Queued deliveries and stream entries both run through here; a stream
/// source then acknowledges, retries or dead-letters by the result.
pub async fn run_delivery(
    handler: &Handler,
    msg: Message<'_>,
    account: Delivery,
    metrics: &RouteMetrics,
    shared: &Shared,
) -> Ran {
    let channel = msg.channel;
    let started = std::time::Instant::now();
    let span = shared
        .telemetry
        .as_ref()
        .map(|t| t.delivery(channel, &handler.component));
    let run = handler.executor.run(msg);
    let outcome = tokio::select! {
        biased;
        _ = shared.cancel.cancelled() => {
            account.settle(Settled::CutShort);
            metrics.cut_short.inc();
            if let Some(span) = span {
                span.end("cut_short", None);
            }
            tracing::warn!(component = %handler.component, channel = %channel, outcome = "cut_short", "handler stopped at the drain deadline; cut short");
            return Ran::CutShort;
        }
        outcome = run => outcome,
    };
    let elapsed = started.elapsed();
    metrics.duration.observe(elapsed.as_secs_f64());
    shared.logs.record(&handler.component, &outcome);
    let duration_ms = elapsed.as_secs_f64() * 1000.0;
    match &outcome.result {
        Ok(()) => {
            account.settle(Settled::Ok);
            metrics.ok.inc();
            if let Some(span) = span {
                span.end("ok", None);
            }
            tracing::debug!(component = %handler.component, channel = %channel, outcome = "ok", duration_ms, "handled");
            Ran::Ok
        }
        Err(e) => {
            account.settle(Settled::Failed);
            let label = if matches!(e, HandlerError::TimedOut(_)) {
                metrics.timed_out.inc();
                "timed_out"
            } else {
                metrics.failed.inc();
                "failed"
            };
            if let Some(span) = span {
                span.end(label, Some(e.to_string()));
            }
            tracing::warn!(component = %handler.component, channel = %channel, outcome = label, duration_ms, reason = %e, "handler failed");
            Ran::Failed(e.to_string())
        }
    }
}

/// Waits for queued and running deliveries to finish, up to `deadline`; then
/// stops what is left and closes the ledger. Returns how many deliveries were
/// cut short by the deadline.
pub async fn drain(workers: TaskTracker, shared: &Shared, deadline: Duration) -> u64 {
    let all = async {
        workers.wait().await;
        shared.tracker.close();
        shared.tracker.wait().await;
    };
    let cut_before = shared.stats.snapshot().cut_short;
    if tokio::time::timeout(deadline, all).await.is_err() {
        shared.cancel.cancel();
        // Cancelled handlers stop at their next await (at most one epoch
        // tick of wasm); give them a moment to settle their accounts, then
        // close the ledger whatever is left.
        let settled = async {
            workers.wait().await;
            shared.tracker.close();
            shared.tracker.wait().await;
        };
        let _ = tokio::time::timeout(Duration::from_secs(1), settled).await;
    }
    shared.stats.close();
    shared.stats.snapshot().cut_short - cut_before
}
