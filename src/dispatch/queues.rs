//! Queues: routing a received pub/sub message to its triggers' bounded
//! queues, a worker per queue, and the shutdown drain.
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
//! it holds a permit of its own trigger and a handler slot (see
//! `capacity`). The workers live on the handler runtime: a message crosses
//! threads once, into the queue (and the worker is woken only when it was
//! idle); starting its task is then a local spawn on a handler thread, not a
//! second cross-thread hand-off.
//!
//! Reloads: the routing table is one value swapped whole
//! ([`Dispatcher::change`]), so a message is routed by the old table or the
//! new one, never half of each. A removed route's queue is closed when the
//! last table holding it goes, and its worker runs what is queued before it
//! ends (it drains). A route's handler sits in a [`HandlerSlot`]: each
//! delivery takes the handler in the slot when it starts, so a swap reaches
//! the next delivery while running ones finish on the handler they hold.
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
//! Not owned here: Redis (see `source`) and running wasm (see `executor`).

use super::capacity::acquire;
use super::route_queue::{self, Receiver, Refused, Sender};
use super::run::run_delivery;
use crate::executor::Handler;
use crate::logs::Logs;
use crate::ops::metrics::{Metrics, RouteMetrics};
use crate::ops::telemetry::Telemetry;
use crate::queue_budget::{QueueBudget, TriggerBudget};
use crate::stats::{Delivery, Settled, Stats};
use arc_swap::ArcSwap;
use bytes::Bytes;
use spin_redis_sandbox::wasi::{Message, Origin};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Where a route's handler is: swapped by a reload, read by each delivery.
pub type HandlerSlot = ArcSwap<Handler>;

/// One trigger's route: where its messages go.
pub struct RouteSpec {
    pub address_key: String,
    /// The channel, or the pattern of a pattern route.
    pub channel: String,
    /// `channel` is a pattern: deliveries come through
    /// [`Dispatcher::deliver`] with the pattern.
    pub pattern: bool,
    pub handler: Arc<HandlerSlot>,
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
/// (`Bytes`), the queue slot, the ledger account, rounded up. Measured with
/// the subscriber's own reader (nothing buffered ahead of the queue): a
/// queue of 1 000 000 16-byte messages took 90 bytes each in all, 74
/// besides their payload; 96 leaves a quarter more for allocator slack.
pub const QUEUED_OVERHEAD: u64 = 96;

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
    id: RouteId,
    component: String,
    /// Dropped with the last table holding the route, which closes the
    /// queue: the worker runs what is left, then ends.
    tx: Sender<Queued>,
    metrics: Arc<RouteMetrics>,
    /// This trigger's account against the queued-memory budget.
    budget: Arc<TriggerBudget>,
    /// Deliveries this trigger dropped (for its log lines).
    dropped: AtomicU64,
}

/// Names one route, to remove it later.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RouteId(u64);

/// address key → name (channel or pattern) → routes.
type ByName = HashMap<String, HashMap<String, Vec<Arc<RouteTx>>>>;

/// The routing table: looked up by `&str` for every message, without
/// allocating.
#[derive(Clone, Default)]
struct Table {
    channels: ByName,
    /// Routes of pattern subscriptions, by pattern.
    patterns: ByName,
}

/// Routes messages to trigger queues; see the module docs.
pub struct Dispatcher {
    table: ArcSwap<Table>,
    shared: Arc<Shared>,
    budget: Arc<QueueBudget>,
    /// Each queue's count bound.
    capacity: usize,
    workers: TaskTracker,
    next_id: AtomicU64,
}

impl Dispatcher {
    /// A dispatcher without routes (see [`Dispatcher::change`]): queues of
    /// `queue_capacity` messages each (or bounded by memory only), the
    /// memory budget shared as among `triggers` triggers.
    pub fn new(queue_capacity: Option<usize>, triggers: usize, shared: Arc<Shared>) -> Dispatcher {
        // Without a count bound, memory (`max_queued_bytes`) is the bound.
        let capacity = queue_capacity.unwrap_or(usize::MAX);
        let budget = QueueBudget::new(shared.max_queued_bytes, triggers);
        tracing::debug!(
            triggers,
            max_queued_bytes = shared.max_queued_bytes,
            reserved_per_trigger = budget.reserved(),
            "queued-memory budget"
        );
        Dispatcher {
            table: ArcSwap::default(),
            shared,
            budget,
            capacity,
            workers: TaskTracker::new(),
            next_id: AtomicU64::new(0),
        }
    }

    /// Adds the routes `add` (a queue each, and a worker on the handler
    /// runtime) and removes the routes `remove`, in one swap of the table.
    /// A removed route's worker runs what is queued, then ends. Returns the
    /// ids of the added routes, in order.
    pub fn change(&self, add: Vec<RouteSpec>, remove: &[RouteId]) -> Vec<RouteId> {
        let mut table = Table::clone(&self.table.load());
        for by_address in [&mut table.channels, &mut table.patterns] {
            for by_name in by_address.values_mut() {
                for routes in by_name.values_mut() {
                    routes.retain(|r| !remove.contains(&r.id));
                }
                by_name.retain(|_, routes| !routes.is_empty());
            }
            by_address.retain(|_, by_name| !by_name.is_empty());
        }
        let mut ids = Vec::with_capacity(add.len());
        for spec in add {
            let id = RouteId(self.next_id.fetch_add(1, Ordering::Relaxed));
            ids.push(id);
            let trigger_budget = Arc::new(self.budget.trigger());
            let (tx, rx) = route_queue::queue(self.capacity);
            let component = spec.handler.load().component.clone();
            let metrics = Arc::new(self.shared.metrics.route(&component, &spec.channel));
            let by_name = if spec.pattern {
                &mut table.patterns
            } else {
                &mut table.channels
            };
            by_name
                .entry(spec.address_key.clone())
                .or_default()
                .entry(spec.channel.clone())
                .or_default()
                .push(Arc::new(RouteTx {
                    id,
                    component,
                    tx,
                    metrics: metrics.clone(),
                    budget: trigger_budget.clone(),
                    dropped: AtomicU64::new(0),
                }));
            // One slot of its own, see `capacity`.
            let reserved = Arc::new(Semaphore::new(1));
            self.workers.spawn_on(
                worker(
                    spec,
                    rx,
                    reserved,
                    metrics,
                    trigger_budget,
                    self.shared.clone(),
                ),
                &self.shared.handlers,
            );
        }
        self.table.store(Arc::new(table));
        ids
    }

    /// Stops routing: every queue closes once the deliveries in progress
    /// are done, and the workers end when their queues are empty (or at
    /// [`Shared::cancel`]). Returns the workers, for [`drain`].
    pub fn close(&self) -> TaskTracker {
        self.table.store(Arc::default());
        self.workers.close();
        self.workers.clone()
    }

    /// Queues one message for every component bound to its channel, or to
    /// `pattern` for a message to a pattern subscription (`channel` is then
    /// the channel it was published to). Never blocks.
    pub fn deliver(&self, address_key: &str, pattern: Option<&str>, channel: &str, payload: Bytes) {
        let table = self.table.load();
        let Some(routes) = self.routes(&table, address_key, pattern, channel) else {
            return;
        };
        tracing::trace!(channel = %channel, pattern, bytes = payload.len(), "received");
        let published = pattern.map(|_| Arc::<str>::from(channel));
        self.queue(routes, channel, published, payload);
    }

    /// Counts a message larger than `max_payload` that the subscriber
    /// streamed past without reading it (`len` bytes) skipped for every
    /// component it was for, as [`Self::deliver`] counts one that arrived
    /// whole.
    pub fn deliver_too_large(
        &self,
        address_key: &str,
        pattern: Option<&str>,
        channel: &str,
        len: u64,
    ) {
        let table = self.table.load();
        if let Some(routes) = self.routes(&table, address_key, pattern, channel) {
            self.skip_too_large(routes, channel, len);
        }
    }

    /// The routes of a message to `channel` (or to `pattern`). None only
    /// between a reload's removing a route and its `UNSUBSCRIBE` reaching
    /// Redis: the message is then counted skipped, so none goes uncounted.
    fn routes<'t>(
        &self,
        table: &'t Table,
        address_key: &str,
        pattern: Option<&str>,
        channel: &str,
    ) -> Option<&'t [Arc<RouteTx>]> {
        let (by_name, name) = match pattern {
            Some(pattern) => (&table.patterns, pattern),
            None => (&table.channels, channel),
        };
        let routes = by_name.get(address_key).and_then(|by| by.get(name));
        if routes.is_none() {
            let skipped = self.shared.stats.skip(1);
            tracing::warn!(channel = %channel, pattern, skipped, "message nothing is bound to (a trigger removed by a reload); skipped");
        }
        routes.map(Vec::as_slice)
    }

    fn skip_too_large(&self, routes: &[Arc<RouteTx>], channel: &str, len: u64) {
        let n = self.shared.stats.skip(routes.len() as u64);
        for r in routes {
            r.metrics.skipped.inc();
        }
        tracing::warn!(
            channel,
            bytes = len,
            max_payload = self.shared.max_payload,
            skipped_total = n,
            "message larger than max_payload skipped"
        );
    }

    fn queue(
        &self,
        routes: &[Arc<RouteTx>],
        channel: &str,
        published: Option<Arc<str>>,
        payload: Bytes,
    ) {
        let stats = &self.shared.stats;
        if payload.len() as u64 > self.shared.max_payload {
            self.skip_too_large(routes, channel, payload.len() as u64);
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
                    Err(Refused::Full(item)) => {
                        Some(("queue full (--queue-capacity)", item.account))
                    }
                    Err(Refused::Closed(item)) => Some(("shutting down", item.account)),
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
    mut rx: Receiver<Queued>,
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
            item = rx.pop() => match item {
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
        // The handler in the slot now: a swap after this reaches the next
        // delivery, not this one.
        let handler = spec.handler.load_full();
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
