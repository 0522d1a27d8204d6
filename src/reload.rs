//! The running app as a value that changes while it runs: `up`'s wiring at
//! start-up, and the one reload path that SIGHUP and `watch` share.
//!
//! Start-up is a reload from nothing: every trigger of the app is added.
//! A reload reads the manifest (and the runtime config) again, validates
//! it and prepares every handler whose component changed (by the content
//! of its wasm and its settings, see [`Fingerprint`]) before anything
//! changes: a manifest that no longer validates, or a component that no
//! longer prepares, changes nothing and is reported. Then it applies the
//! difference:
//! - a changed handler is stored into its slot (see
//!   `dispatch::HandlerSlot`): the next delivery runs the new version,
//!   running ones finish on the old one, and nothing is unsubscribed;
//! - a new trigger gets its route (or stream or list reader) first, then
//!   its subscription; a removed one is unsubscribed and its queue drains;
//!   a subscription that stays is never touched (see `source::pubsub`);
//! - a stream or list trigger whose handler changed is stopped, finishes
//!   and acknowledges what it was running, and is started again with the
//!   new handler (Redis keeps what it has not handled; nothing is lost);
//! - changed limits reach new deliveries through the re-prepared handlers.
//!
//! Settings that size the process (`max_concurrency`, the queue bounds, the
//! payload bound, the drain deadline) stay as they were until a restart; a
//! reload that changes them says so.
//!
//! Not owned here: reading Redis (`source`), the queues (`dispatch`),
//! preparing a handler (`executor::registry`), the signals and the final
//! report (`up`), watching files (`watch`).

use crate::cli::Common;
use crate::dispatch::{Capacity, Dispatcher, HandlerSlot, RouteId, RouteSpec, Shared};
use crate::executor::engine::Runtime;
use crate::executor::{Handler, HandlerKey, Handlers};
use crate::host::runtime_config::HostConfig;
use crate::manifest::{App, Component, Trigger};
use crate::ops::health::{Condition, Health, RedisLink};
use crate::ops::metrics::Metrics;
use crate::settings::{Overrides, RunConfig};
use crate::source::connect::Endpoint;
use crate::source::list::{self, ListSource};
use crate::source::pubsub::{self, Payload, Subscription};
use crate::source::stream::{self, StreamSource};
use crate::source::subscriptions::Wanted;
use anyhow::Context as _;
use sha2::Digest as _;
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long a removed stream or list trigger waits for its last
/// acknowledgements (and shutdown for every one).
pub const ACK_PATIENCE: Duration = Duration::from_secs(10);

/// What a handler was prepared from: a change in any part makes a reload
/// prepare it again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    /// SHA-256 of the wasm file.
    wasm: [u8; 32],
    component: Component,
    /// The limits and host settings it was prepared with (their `Debug`
    /// text: compared, never shown).
    settings: String,
}

impl Fingerprint {
    /// `wasm`: the SHA-256 of the wasm bytes (see [`wasm_sha256`]).
    fn of(c: &Component, wasm: [u8; 32], config: &RunConfig, stores: &HostConfig) -> Fingerprint {
        Fingerprint {
            wasm,
            component: c.clone(),
            settings: format!("{:?} {:?} {:?}", config.limits, config.host_limits, stores),
        }
    }
}

/// SHA-256 of component `c`'s wasm file as it is now.
fn wasm_sha256(c: &Component) -> anyhow::Result<[u8; 32]> {
    let bytes = std::fs::read(&c.source).with_context(|| {
        format!(
            "cannot read component {:?} (source {:?})",
            c.id,
            c.source.display().to_string()
        )
    })?;
    Ok(sha2::Sha256::digest(&bytes).into())
}

/// Where `up` reads its app from, again at each reload.
#[derive(Clone)]
pub struct Origin {
    pub common: Common,
    pub overrides: Overrides,
}

/// An app read and prepared, not yet applied.
pub struct Next {
    app: App,
    config: RunConfig,
    fingerprints: HashMap<HandlerKey, Fingerprint>,
    /// The handlers prepared anew (all of them at start-up, the changed
    /// ones at a reload).
    fresh: HashMap<HandlerKey, Arc<Handler>>,
}

impl Next {
    /// An app prepared at start-up.
    pub fn prepared(
        app: App,
        config: RunConfig,
        stores: HostConfig,
        handlers: Handlers,
    ) -> anyhow::Result<Next> {
        let fresh = handlers.into_map();
        // What was compiled, not the file as it is now: it may have been
        // written again during a long compile, and a reload must see that.
        let fingerprints = fingerprints(&app, &config, &stores, |key, _| {
            Ok(fresh
                .get(key)
                .expect("invariant: start-up prepared a handler for every trigger")
                .wasm_sha256)
        })?;
        Ok(Next {
            app,
            config,
            fingerprints,
            fresh,
        })
    }

    /// The settings it was prepared with.
    pub fn config(&self) -> &RunConfig {
        &self.config
    }

    /// How many triggers it has.
    pub fn triggers(&self) -> usize {
        self.app.triggers.len()
    }

    /// Reads the app of `origin` again and prepares what differs from
    /// `known`. Blocking (reads files, compiles): run it off the I/O
    /// runtime.
    pub fn load(
        origin: &Origin,
        runtime: &Runtime,
        known: &HashMap<HandlerKey, Fingerprint>,
    ) -> anyhow::Result<Next> {
        let (app, config, stores) =
            crate::prepare::settle(&origin.common, origin.overrides.clone(), None)
                .map_err(|f| f.error)?;
        let mut fingerprints = fingerprints(&app, &config, &stores, |_, c| wasm_sha256(c))?;
        let changed = |key: &HandlerKey| known.get(key) != fingerprints.get(key);
        let fresh =
            Handlers::prepare_where(runtime, &app, &config, &stores, &origin.common.env, changed)?
                .into_map();
        // A file written again between the look above and its compile: the
        // handler names the bytes it was made of.
        for (key, handler) in &fresh {
            if let Some(f) = fingerprints.get_mut(key) {
                f.wasm = handler.wasm_sha256;
            }
        }
        Ok(Next {
            app,
            config,
            fingerprints,
            fresh,
        })
    }
}

/// The fingerprint of every handler the app's triggers use.
/// `wasm` gives the SHA-256 of a handler's wasm.
fn fingerprints(
    app: &App,
    config: &RunConfig,
    stores: &HostConfig,
    wasm: impl Fn(&HandlerKey, &Component) -> anyhow::Result<[u8; 32]>,
) -> anyhow::Result<HashMap<HandlerKey, Fingerprint>> {
    let mut out = HashMap::new();
    // By id: linear in triggers and components together.
    let components: HashMap<&str, &Component> =
        app.components.iter().map(|c| (c.id.as_str(), c)).collect();
    for t in &app.triggers {
        let key = (t.component.clone(), t.executor.clone());
        if out.contains_key(&key) {
            continue;
        }
        let c = components
            .get(t.component.as_str())
            .expect("invariant: the manifest checked that every trigger names a component");
        let sha = wasm(&key, c)?;
        out.insert(key, Fingerprint::of(c, sha, config, stores));
    }
    Ok(out)
}

/// What `up` made that the running app is wired into.
pub struct Wiring {
    pub shared: Arc<Shared>,
    pub dispatcher: Arc<Dispatcher>,
    pub metrics: Arc<Metrics>,
    pub health: Arc<Health>,
    /// Cancelled at shutdown: every reader stops.
    pub stop: CancellationToken,
    /// The pub/sub subscriber tasks.
    pub subscribers: TaskTracker,
}

/// One running trigger.
struct Running {
    trigger: Trigger,
    key: HandlerKey,
    source: Source,
}

enum Source {
    /// A pub/sub route, subscribed through the subscription `address_key`.
    Queue { route: RouteId, address_key: String },
    Stream {
        running: stream::Running,
        stop: CancellationToken,
        ready: Condition,
    },
    List {
        running: list::Running,
        stop: CancellationToken,
        ready: Condition,
    },
}

/// One address's subscriber.
struct Subscriber {
    wanted: watch::Sender<Wanted>,
    stop: CancellationToken,
    ready: Condition,
}

/// What one apply changed, for the reload's log line.
#[derive(Debug, Default)]
pub struct Changes {
    pub added: Vec<String>,
    pub removed: Vec<String>,
    pub swapped: Vec<String>,
}

/// The running app; see the module docs.
pub struct Live {
    wiring: Wiring,
    /// `None` until the start-up apply.
    config: Option<RunConfig>,
    handlers: HashMap<HandlerKey, (Fingerprint, Arc<HandlerSlot>)>,
    triggers: Vec<Running>,
    subscribers: BTreeMap<String, Subscriber>,
    /// Removed stream and list triggers finishing their last
    /// acknowledgements.
    retiring: TaskTracker,
}

impl Live {
    /// Nothing running yet: [`Live::apply`] the app prepared at start-up.
    pub fn new(wiring: Wiring) -> Live {
        Live {
            wiring,
            config: None,
            handlers: HashMap::new(),
            triggers: Vec::new(),
            subscribers: BTreeMap::new(),
            retiring: TaskTracker::new(),
        }
    }

    /// What each running handler was prepared from.
    pub fn fingerprints(&self) -> HashMap<HandlerKey, Fingerprint> {
        self.handlers
            .iter()
            .map(|(k, (f, _))| (k.clone(), f.clone()))
            .collect()
    }

    /// Reads the app again (see [`Next::load`], on a blocking thread) and
    /// applies it, or changes nothing and says why. Counted in
    /// `spin_redis_reloads_total`; `cause` says what asked for it.
    pub async fn reload(&mut self, origin: &Origin, runtime: &Arc<Runtime>, cause: &str) -> bool {
        let known = self.fingerprints();
        let (o, r) = (origin.clone(), runtime.clone());
        let loaded = tokio::task::spawn_blocking(move || Next::load(&o, &r, &known))
            .await
            .unwrap_or_else(|e| Err(anyhow::anyhow!("the reload task failed: {e}")));
        // A new component's log files are opened before anything changes.
        let loaded = loaded.and_then(|next| {
            let ids = next.app.components.iter().map(|c| c.id.as_str());
            self.wiring.shared.logs.open_more(ids)?;
            Ok(next)
        });
        match loaded {
            Ok(next) => {
                let restarted = self.stop_restarting(&next).await;
                let mut c = self.apply(next);
                c.added.retain(|t| !restarted.contains(t));
                self.wiring.metrics.reloaded(true);
                tracing::info!(cause, added = ?c.added, removed = ?c.removed, swapped = ?c.swapped, restarted = ?restarted, "reloaded");
                true
            }
            Err(e) => self.refused(origin, cause, &format!("{e:#}")),
        }
    }

    /// Counts and reports a reload that changed nothing (also a failed
    /// build under `watch`).
    pub fn refused(&self, origin: &Origin, cause: &str, error: &str) -> bool {
        self.wiring.metrics.reloaded(false);
        tracing::error!(cause, manifest = %origin.common.from.display(), error, "reload failed; the running app is unchanged");
        false
    }

    /// Applies `next`: see the module docs. Never fails: everything that can
    /// fail happened while preparing it.
    pub fn apply(&mut self, next: Next) -> Changes {
        let Next {
            app,
            config,
            fingerprints,
            mut fresh,
        } = next;
        let mut changes = Changes::default();
        let before = self.triggers.len();
        if let Some(old) = &self.config {
            warn_fixed(old, &config);
        }
        // 1. Handlers: changed ones into their slots, new ones in new slots.
        for (key, fingerprint) in &fingerprints {
            let Some(handler) = fresh.remove(key) else {
                continue;
            };
            match self.handlers.get_mut(key) {
                Some((known, slot)) => {
                    slot.store(handler);
                    *known = fingerprint.clone();
                    changes.swapped.push(key.0.clone());
                }
                None => {
                    let slot = Arc::new(HandlerSlot::from(handler));
                    self.handlers
                        .insert(key.clone(), (fingerprint.clone(), slot));
                }
            }
        }
        changes.swapped.sort();
        changes.swapped.dedup();
        // 2. Triggers: keep what is equal (a stream or list trigger only if
        // its handler stayed), remove the rest, add what is new.
        // Found through an index, not a scan per trigger, so a reload of
        // 10 000 triggers stays linear. A trigger written twice is two
        // routes: each new copy takes the first old copy not yet taken.
        let running = std::mem::take(&mut self.triggers);
        let same: Vec<Option<usize>> = {
            let mut index: HashMap<&Trigger, VecDeque<usize>> = HashMap::new();
            for (i, r) in running.iter().enumerate() {
                index.entry(&r.trigger).or_default().push_back(i);
            }
            app.triggers
                .iter()
                .map(|t| index.get_mut(t).and_then(VecDeque::pop_front))
                .collect()
        };
        let mut old: Vec<Option<Running>> = running.into_iter().map(Some).collect();
        let mut kept = Vec::new();
        let mut added = Vec::new();
        // The triggers move out of the app (it is not kept), not copied.
        for (t, same) in app.triggers.into_iter().zip(same) {
            match same.and_then(|i| old[i].take()) {
                Some(r) => kept.push(r),
                None => added.push(t),
            }
        }
        let removed: Vec<Running> = old.into_iter().flatten().collect();
        // 3. Routes: one swap of the table adds the new and removes the old.
        let shown = |t: &Trigger| describe(t);
        let mut route_specs = Vec::with_capacity(added.len());
        let mut route_triggers = Vec::with_capacity(added.len());
        self.triggers.reserve(kept.len() + added.len());
        for t in added {
            changes.added.push(shown(&t));
            let key = (t.component.clone(), t.executor.clone());
            let slot = self.handlers[&key].1.clone();
            let endpoint = Endpoint::of(&t, config.tls_ca_file.clone());
            if stream::spec(&t, endpoint.clone(), config.limits.timeout).is_some()
                || list::spec(&t, endpoint.clone()).is_some()
            {
                let source = self.start_reader(&t, endpoint, slot.load_full(), &config);
                self.triggers.push(Running {
                    trigger: t,
                    key,
                    source,
                });
                continue;
            }
            let address_key = address_key(&t, &endpoint);
            route_specs.push(RouteSpec {
                address_key: address_key.clone(),
                channel: t.channel.clone(),
                pattern: t.pattern,
                handler: slot,
                address_shown: endpoint.shown(),
                max_concurrency: t.max_concurrency,
            });
            route_triggers.push((t, key, address_key, endpoint));
        }
        let gone: Vec<RouteId> = removed
            .iter()
            .filter_map(|r| match &r.source {
                Source::Queue { route, .. } => Some(*route),
                _ => None,
            })
            .collect();
        let ids = self.wiring.dispatcher.change(route_specs, &gone);
        let mut endpoints = HashMap::new();
        for ((trigger, key, address_key, endpoint), route) in route_triggers.into_iter().zip(ids) {
            endpoints.insert(address_key.clone(), (endpoint, trigger.sharded));
            self.triggers.push(Running {
                trigger,
                key,
                source: Source::Queue { route, address_key },
            });
        }
        self.triggers.extend(kept);
        // 4. Subscriptions follow the routes: new ones after their route,
        // gone ones before their queue is forgotten.
        self.resubscribe(endpoints);
        for r in removed {
            changes.removed.push(shown(&r.trigger));
            self.retire(r);
        }
        // 5. One reserved slot per trigger (see `dispatch::capacity`).
        let pool = &self.wiring.shared.pool;
        // At start-up the pool was made with them already set aside.
        if self.config.is_some() {
            let now = self.triggers.len();
            match now.cmp(&before) {
                std::cmp::Ordering::Greater => {
                    pool.forget_permits(now - before);
                }
                std::cmp::Ordering::Less => pool.add_permits(before - now),
                std::cmp::Ordering::Equal => {}
            }
        }
        // Handlers no trigger uses any more go with their last delivery.
        let used: HashSet<&HandlerKey> = self.triggers.iter().map(|r| &r.key).collect();
        self.handlers.retain(|k, _| used.contains(k));
        self.config = Some(config);
        changes
    }

    /// Starts a stream or list trigger's reader under a stop of its own.
    fn start_reader(
        &self,
        t: &Trigger,
        endpoint: Endpoint,
        handler: Arc<Handler>,
        config: &RunConfig,
    ) -> Source {
        let w = &self.wiring;
        let shown = endpoint.shown();
        let stop = w.stop.child_token();
        let capacity = Capacity::new(t.max_concurrency, w.shared.pool.clone());
        let route_metrics = w.metrics.route(&t.component, &t.channel);
        // Either reader reports to its address's metrics and owns one
        // readiness condition, named after what it reads.
        let link = |what: String| {
            let ready = w.health.condition(format!("{what} read from {shown}"));
            let link = RedisLink {
                metrics: w.metrics.address(&shown),
                ready: ready.clone(),
            };
            (link, ready)
        };
        if let Some(spec) = stream::spec(t, endpoint.clone(), config.limits.timeout) {
            let (link, ready) = link(format!("stream {:?}", spec.stream));
            let source = StreamSource {
                link,
                route_metrics,
                stream_metrics: w.metrics.stream(&spec.stream, &spec.group),
                spec,
                handler,
                capacity,
                max_waiting: stream::max_waiting(t.max_concurrency, config.max_concurrency),
            };
            let running = source.start(w.shared.clone(), stop.clone());
            return Source::Stream {
                running,
                stop,
                ready,
            };
        }
        let spec = list::spec(t, endpoint).expect("invariant: called for a stream or list trigger");
        let (link, ready) = link(format!("list {:?}", spec.list));
        let source = ListSource {
            link,
            route_metrics,
            spec,
            handler,
            capacity,
        };
        let running = source.start(w.shared.clone(), stop.clone());
        Source::List {
            running,
            stop,
            ready,
        }
    }

    /// Tells every subscriber what its routes want now; starts the
    /// subscribers of new addresses (`endpoints`) and stops those with
    /// nothing left.
    fn resubscribe(&mut self, endpoints: HashMap<String, (Endpoint, bool)>) {
        let mut wanted: BTreeMap<String, Wanted> = BTreeMap::new();
        for r in &self.triggers {
            if let Source::Queue { address_key, .. } = &r.source {
                let w = wanted.entry(address_key.clone()).or_default();
                let names = match r.trigger.pattern {
                    true => &mut w.patterns,
                    false => &mut w.channels,
                };
                names.insert(r.trigger.channel.clone());
            }
        }
        let gone: Vec<String> = self
            .subscribers
            .keys()
            .filter(|k| !wanted.contains_key(*k))
            .cloned()
            .collect();
        for key in gone {
            let s = self
                .subscribers
                .remove(&key)
                .expect("invariant: listed just above");
            s.stop.cancel();
            self.wiring.health.forget(&s.ready);
        }
        for (key, want) in wanted {
            if let Some(s) = self.subscribers.get(&key) {
                s.wanted.send_if_modified(|w| {
                    let changed = *w != want;
                    *w = want;
                    changed
                });
                continue;
            }
            let (endpoint, sharded) = endpoints
                .get(&key)
                .cloned()
                .expect("invariant: a new address comes with a new route");
            let w = &self.wiring;
            let shown = endpoint.shown();
            let ready = w.health.condition(format!("subscription to {shown}"));
            let (tx, rx) = watch::channel(want);
            let sub = Subscription {
                endpoint,
                wanted: rx,
                sharded,
                link: RedisLink {
                    metrics: w.metrics.address(&shown),
                    ready: ready.clone(),
                },
                max_payload: w.shared.max_payload,
            };
            let stop = w.stop.child_token();
            let d = w.dispatcher.clone();
            let k = key.clone();
            let s = stop.clone();
            w.subscribers.spawn(async move {
                let deliver = move |pattern: Option<&str>, channel: &str, payload| match payload {
                    Payload::Whole(p) => d.deliver(&k, pattern, channel, p),
                    Payload::TooLarge(len) => d.deliver_too_large(&k, pattern, channel, len),
                };
                pubsub::run(sub, &deliver, s).await;
            });
            self.subscribers.insert(
                key,
                Subscriber {
                    wanted: tx,
                    stop,
                    ready,
                },
            );
        }
    }

    /// Stops a removed trigger: a route's queue drains by itself (see
    /// `dispatch::queues`); a stream or list reader stops and finishes its
    /// last acknowledgements in the background.
    fn retire(&mut self, r: Running) {
        if let Some(finish) = self.stop_reader(r) {
            self.retiring.spawn(finish);
        }
    }

    /// Stops a stream or list trigger's reader; the future returned waits
    /// for its last acknowledgements and logs its summary. `None` for a
    /// pub/sub route (its queue drains by itself).
    fn stop_reader(&self, r: Running) -> Option<impl Future<Output = ()> + use<>> {
        let what = describe(&r.trigger);
        let (stop, ready) = match &r.source {
            Source::Queue { .. } => return None,
            Source::Stream { stop, ready, .. } | Source::List { stop, ready, .. } => (stop, ready),
        };
        stop.cancel();
        self.wiring.health.forget(ready);
        Some(async move {
            let summary = match r.source {
                Source::Stream { running, .. } => {
                    running.stopped().await;
                    running.finish(ACK_PATIENCE).await.to_string()
                }
                Source::List { running, .. } => {
                    running.stopped().await;
                    running.finish(ACK_PATIENCE).await.to_string()
                }
                Source::Queue { .. } => unreachable!("invariant: returned above"),
            };
            tracing::info!(trigger = %what, "{summary}");
        })
    }

    /// Stops, and waits for, the stream and list triggers that stay but whose
    /// handler `next` changes: their readers start again with the new
    /// handler in [`Live::apply`], after the old ones acknowledged what they
    /// handled (else the new reader would take those entries up again from
    /// the consumer's pending list). Returns them as the log line names them.
    async fn stop_restarting(&mut self, next: &Next) -> Vec<String> {
        let swapped = |k: &HandlerKey| self.handlers.contains_key(k) && next.fresh.contains_key(k);
        let (restart, keep): (Vec<Running>, Vec<Running>) = std::mem::take(&mut self.triggers)
            .into_iter()
            .partition(|r| {
                !matches!(r.source, Source::Queue { .. })
                    && swapped(&r.key)
                    && next.app.triggers.contains(&r.trigger)
            });
        self.triggers = keep;
        // Their reserved slots come back; `apply` takes them again.
        self.wiring.shared.pool.add_permits(restart.len());
        let mut names = Vec::new();
        for r in restart {
            names.push(describe(&r.trigger));
            if let Some(finish) = self.stop_reader(r) {
                finish.await;
            }
        }
        names
    }

    /// At shutdown (after [`Wiring::stop`]): waits for every reader to
    /// stop and hands back the stream and list triggers to finish after the
    /// drain.
    pub async fn stopped(self) -> (Vec<stream::Running>, Vec<list::Running>) {
        self.wiring.subscribers.close();
        self.wiring.subscribers.wait().await;
        self.retiring.close();
        self.retiring.wait().await;
        let mut streams = Vec::new();
        let mut lists = Vec::new();
        for r in self.triggers {
            match r.source {
                Source::Queue { .. } => {}
                Source::Stream { running, .. } => {
                    running.stopped().await;
                    streams.push(running);
                }
                Source::List { running, .. } => {
                    running.stopped().await;
                    lists.push(running);
                }
            }
        }
        (streams, lists)
    }
}

/// The subscription a pub/sub trigger belongs to: its address (sharded and
/// plain channels of a cluster are two subscriptions).
fn address_key(t: &Trigger, endpoint: &Endpoint) -> String {
    match t.sharded {
        true => format!("{}#sharded", endpoint.key()),
        false => endpoint.key(),
    }
}

/// A trigger as the reload's log line names it.
fn describe(t: &Trigger) -> String {
    format!("{} {:?} -> {}", t.kind(), t.channel, t.component)
}

/// Warns about settings a reload cannot change.
fn warn_fixed(old: &RunConfig, new: &RunConfig) {
    let fixed = [
        (
            "max_concurrency",
            old.max_concurrency != new.max_concurrency,
        ),
        ("queue_capacity", old.queue_capacity != new.queue_capacity),
        (
            "max_queued_bytes",
            old.max_queued_bytes != new.max_queued_bytes,
        ),
        ("max_payload", old.max_payload != new.max_payload),
        ("drain_timeout", old.drain_timeout != new.drain_timeout),
        ("tls_ca_file", old.tls_ca_file != new.tls_ca_file),
    ];
    for (name, changed) in fixed {
        if changed {
            tracing::warn!(
                setting = name,
                "this setting changed; it takes effect at the next restart"
            );
        }
    }
}
