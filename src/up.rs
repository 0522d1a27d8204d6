//! `spin-redis up`: prepare the app, subscribe, dispatch until a signal, then
//! drain.
//!
//! Two tokio runtimes: a single-threaded one owns the Redis connections, the
//! queues and the signals; a multi-threaded one (a worker per core) runs the
//! handlers. Wasm can therefore never keep the subscriber from reading.
//!
//! Shutdown (SIGINT or SIGTERM): stop reading Redis, let queued and running
//! messages finish within the drain deadline, acknowledge the stream entries
//! and remove the list items handled (and hand the rest back to their
//! lists), report what was cut short, print the counters (and one line per
//! stream and list trigger), exit 0.

use crate::cli::{LogFormat, UpArgs};
use crate::config::Overrides;
use crate::dispatch::{self, Capacity, Dispatcher, RouteSpec, Shared};
use crate::failure::Failure;
use crate::logs::Logs;
use crate::ops::health::{Health, RedisLink};
use crate::ops::metrics::Metrics;
use crate::ops::server::Server;
use crate::ops::telemetry::Telemetry;
use crate::prepare::{Prepared, prepare};
use crate::source::connect::Endpoint;
use crate::source::list::{self, ListSource};
use crate::source::pubsub::{self, Subscription};
use crate::source::stream::{self, StreamSource};
use crate::stats::Stats;
use anyhow::Context as _;
use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How long shutdown waits for a stream trigger's last acknowledgements.
const STREAM_ACK_PATIENCE: std::time::Duration = std::time::Duration::from_secs(10);

pub fn up(args: UpArgs, log_format: LogFormat) -> Result<(), Failure> {
    if args.build {
        crate::build::build_manifest(&args.common.from, &[], crate::build::Echo::AsIs)?;
    }
    let overrides = Overrides {
        max_payload: args.max_payload,
        max_concurrency: args
            .max_concurrency
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
        queue_capacity: args
            .queue_capacity
            .map(|n| usize::try_from(n).unwrap_or(usize::MAX)),
        max_queued_bytes: args.max_queued_bytes,
        drain_timeout: args.drain_timeout,
        tls_ca_file: args.tls_ca_file.clone(),
        ..Default::default()
    };
    let prepared = prepare(&args.common, overrides, None)?;
    let log_dir = args
        .log_dir
        .clone()
        .unwrap_or_else(|| prepared.app.dir.join(".spin").join("logs"));
    let logs = Logs::open(
        &log_dir,
        args.quiet,
        prepared.app.components.iter().map(|c| c.id.as_str()),
    )
    .map_err(Failure::runtime)?;
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let handler_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name("handler")
        .enable_all()
        .build()
        .context("cannot start the handler runtime")
        .map_err(Failure::runtime)?;
    let io_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the I/O runtime")
        .map_err(Failure::runtime)?;
    let result = io_rt.block_on(serve(
        &prepared,
        Arc::new(logs),
        handler_rt.handle().clone(),
        args.metrics,
        log_format,
    ));
    // Anything still running after the drain deadline is abandoned here.
    handler_rt.shutdown_background();
    result
}

async fn serve(
    p: &Prepared,
    logs: Arc<Logs>,
    handlers: tokio::runtime::Handle,
    metrics_addr: Option<SocketAddr>,
    log_format: LogFormat,
) -> Result<(), Failure> {
    let stats = Arc::new(Stats::default());
    let metrics = Arc::new(Metrics::new());
    let health = Arc::new(Health::default());
    let stop = CancellationToken::new();
    // The operations server outlives the drain: probes answer until the end.
    let server_stop = CancellationToken::new();
    // Bound before anything else, so a taken port fails start-up at once.
    let server = match metrics_addr {
        Some(addr) => {
            let server = Server::bind(addr, metrics.clone(), health.clone())
                .await
                .map_err(Failure::runtime)?;
            tracing::info!(address = ?server.local_addr(), "serving /metrics, /healthz and /readyz");
            Some((
                tokio::spawn(server.run(server_stop.clone())),
                server_stop.clone(),
            ))
        }
        None => None,
    };
    let telemetry = match Telemetry::from_env() {
        Ok(t) => t.map(Arc::new),
        Err(e) => {
            tracing::warn!(error = %format!("{e:#}"), "traces are off");
            None
        }
    };
    // Each trigger reserves one slot (see `dispatch`); the rest is shared.
    let pool = Arc::new(Semaphore::new(
        p.config
            .max_concurrency
            .saturating_sub(p.app.triggers.len()),
    ));
    let shared = Arc::new(Shared {
        logs,
        stats: stats.clone(),
        pool: pool.clone(),
        max_payload: p.config.max_payload,
        max_queued_bytes: p.config.max_queued_bytes,
        handlers,
        tracker: TaskTracker::new(),
        cancel: CancellationToken::new(),
        metrics: metrics.clone(),
        telemetry: telemetry.clone(),
    });
    let mut specs = Vec::new();
    let mut by_address: BTreeMap<String, Subscription> = BTreeMap::new();
    let mut named: HashSet<(String, bool, String)> = HashSet::new();
    let mut streams = Vec::new();
    let mut lists = Vec::new();
    for t in &p.app.triggers {
        let handler = p
            .handlers
            .get(&t.component, &t.executor)
            .expect("invariant: every trigger's handler was prepared");
        let endpoint = Endpoint::of(t, p.config.tls_ca_file.clone());
        let shown = endpoint.shown();
        if let Some(spec) = stream::spec(t, endpoint.clone(), p.config.limits.timeout) {
            streams.push(StreamSource {
                link: RedisLink {
                    metrics: metrics.address(&shown),
                    ready: health.condition(format!("stream {:?} read from {shown}", spec.stream)),
                },
                route_metrics: metrics.route(&t.component, &t.channel),
                stream_metrics: metrics.stream(&spec.stream, &spec.group),
                spec,
                handler,
                capacity: Capacity::new(t.max_concurrency, pool.clone()),
                max_waiting: stream::max_waiting(t.max_concurrency, p.config.max_concurrency),
            });
            continue;
        }
        if let Some(spec) = list::spec(t, endpoint.clone()) {
            lists.push(ListSource {
                link: RedisLink {
                    metrics: metrics.address(&shown),
                    ready: health.condition(format!("list {:?} read from {shown}", spec.list)),
                },
                route_metrics: metrics.route(&t.component, &t.channel),
                spec,
                handler,
                capacity: Capacity::new(t.max_concurrency, pool.clone()),
            });
            continue;
        }
        // Sharded and plain channels of a cluster are two subscriptions.
        let key = match t.sharded {
            true => format!("{}#sharded", endpoint.key()),
            false => endpoint.key(),
        };
        specs.push(RouteSpec {
            address_key: key.clone(),
            channel: t.channel.clone(),
            pattern: t.pattern,
            handler,
            address_shown: shown.clone(),
            max_concurrency: t.max_concurrency,
        });
        // A set beside the lists: a scan of the list per trigger was
        // quadratic in the number of channels.
        let fresh = named.insert((key.clone(), t.pattern, t.channel.clone()));
        let sub = by_address.entry(key).or_insert_with(|| Subscription {
            endpoint,
            channels: Vec::new(),
            patterns: Vec::new(),
            sharded: t.sharded,
            link: RedisLink {
                metrics: metrics.address(&shown),
                ready: health.condition(format!("subscription to {shown}")),
            },
        });
        // Patterns go in the same subscription as the channels.
        let names = match t.pattern {
            true => &mut sub.patterns,
            false => &mut sub.channels,
        };
        if fresh {
            names.push(t.channel.clone());
        }
    }
    let (dispatcher, workers) = Dispatcher::start(specs, p.config.queue_capacity, shared.clone());
    let dispatcher = Arc::new(dispatcher);

    let subscribers = TaskTracker::new();
    for (key, sub) in by_address {
        let d = dispatcher.clone();
        let stop = stop.clone();
        subscribers.spawn(async move {
            let deliver = move |pattern: Option<&str>, channel: &str, payload| match pattern {
                Some(pattern) => d.deliver_pattern(&key, pattern, channel, payload),
                None => d.deliver(&key, channel, payload),
            };
            pubsub::run(sub, &deliver, stop).await;
        });
    }
    subscribers.close();
    let streams: Vec<stream::Running> = streams
        .into_iter()
        .map(|s| s.start(shared.clone(), stop.clone()))
        .collect();
    let lists: Vec<list::Running> = lists
        .into_iter()
        .map(|s| s.start(shared.clone(), stop.clone()))
        .collect();

    let signal = wait_for_signal().await.map_err(Failure::runtime)?;
    tracing::info!(
        signal,
        "stopping: no new messages; draining queued and running handlers"
    );
    stop.cancel();
    subscribers.wait().await;
    for s in &streams {
        s.stopped().await;
    }
    for s in &lists {
        s.stopped().await;
    }
    // The subscribers held the other references; dropping the last one closes
    // the queues, so the workers end once they are empty.
    drop(dispatcher);
    let cut = dispatch::drain(workers, &shared, p.config.drain_timeout).await;
    if cut > 0 {
        tracing::warn!(cut_short = cut, deadline = ?p.config.drain_timeout, "drain deadline passed; messages still queued or running were cut short");
    }
    // The last acknowledgements (handled entries), before the logs close.
    let mut stream_summaries = Vec::new();
    for s in streams {
        stream_summaries.push(s.finish(STREAM_ACK_PATIENCE).await);
    }
    // The last removals, then what is left back to the queue.
    let mut list_summaries = Vec::new();
    for s in lists {
        list_summaries.push(s.finish(STREAM_ACK_PATIENCE).await);
    }
    let echo_dropped = shared.logs.shutdown();
    if echo_dropped > 0 {
        tracing::warn!(
            echo_dropped_bytes = echo_dropped,
            "the terminal did not keep up: this much handler output was not echoed (the log files have all of it)"
        );
    }
    if let Some(t) = telemetry {
        // The exporter's shutdown blocks (bounded); keep it off this runtime.
        let _ = tokio::task::spawn_blocking(move || t.shutdown()).await;
    }
    if let Some((task, server_stop)) = server {
        server_stop.cancel();
        let _ = task.await;
    }
    let s = stats.snapshot();
    tracing::info!(
        received = s.received,
        ok = s.ok,
        failed = s.failed,
        dropped = s.dropped,
        skipped = s.skipped,
        cut_short = s.cut_short,
        "stopped"
    );
    for s in &stream_summaries {
        tracing::info!(
            stream = %s.stream,
            component = %s.component,
            group = %s.group,
            handled = s.handled,
            retried = s.retried,
            dead_lettered = s.dead_lettered,
            claimed = s.claimed,
            "stream stopped"
        );
    }
    for s in &list_summaries {
        tracing::info!(
            list = %s.list,
            component = %s.component,
            consumer = %s.consumer,
            handled = s.handled,
            retried = s.retried,
            dead_lettered = s.dead_lettered,
            recovered = s.recovered,
            resumed = s.resumed,
            handed_back = ?s.handed_back,
            "list stopped"
        );
    }
    if log_format == LogFormat::Text {
        eprintln!("spin-redis: {s}");
        for s in &stream_summaries {
            eprintln!("spin-redis: {s}");
        }
        for s in &list_summaries {
            eprintln!("spin-redis: {s}");
        }
    }
    Ok(())
}

async fn wait_for_signal() -> anyhow::Result<&'static str> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    Ok(tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
    })
}
