//! `spin-redis up`: prepare the app, subscribe, dispatch until a signal, then
//! drain.
//!
//! Two tokio runtimes: a single-threaded one owns the Redis connections, the
//! queues and the signals; a multi-threaded one (a worker per core) runs the
//! handlers. Wasm can therefore never keep the subscriber from reading.
//!
//! Shutdown (SIGINT or SIGTERM): stop reading Redis, let queued and running
//! messages finish within the drain deadline, report what was cut short, print
//! the counters, exit 0.

use crate::cli::UpArgs;
use crate::config::Overrides;
use crate::dispatch::{self, Dispatcher, RouteSpec, Shared};
use crate::failure::Failure;
use crate::logs::Logs;
use crate::prepare::{Prepared, prepare};
use crate::stats::Stats;
use crate::subscriber::{self, Subscription};
use anyhow::Context as _;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub fn up(args: UpArgs) -> Result<(), Failure> {
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
    ));
    // Anything still running after the drain deadline is abandoned here.
    handler_rt.shutdown_background();
    result
}

async fn serve(
    p: &Prepared,
    logs: Arc<Logs>,
    handlers: tokio::runtime::Handle,
) -> Result<(), Failure> {
    let stats = Arc::new(Stats::default());
    // Each trigger reserves one slot (see `dispatch`); the rest is shared.
    let pool = p
        .config
        .max_concurrency
        .saturating_sub(p.app.triggers.len());
    let shared = Arc::new(Shared {
        logs,
        stats: stats.clone(),
        pool: Arc::new(Semaphore::new(pool)),
        max_payload: p.config.max_payload,
        queued_bytes: AtomicU64::new(0),
        max_queued_bytes: p.config.max_queued_bytes,
        handlers,
        tracker: TaskTracker::new(),
        cancel: CancellationToken::new(),
    });
    let mut specs = Vec::new();
    let mut by_address: BTreeMap<String, Subscription> = BTreeMap::new();
    for t in &p.app.triggers {
        let handler = p
            .handlers
            .get(&t.component, &t.executor)
            .expect("invariant: every trigger's handler was prepared");
        let key = t.address.connection_url().to_string();
        specs.push(RouteSpec {
            address_key: key.clone(),
            channel: t.channel.clone(),
            handler,
            address_shown: t.address.redacted().to_string(),
            max_concurrency: t.max_concurrency,
        });
        let sub = by_address.entry(key).or_insert_with(|| Subscription {
            address: t.address.clone(),
            channels: Vec::new(),
            tls_ca_file: p.config.tls_ca_file.clone(),
        });
        if !sub.channels.contains(&t.channel) {
            sub.channels.push(t.channel.clone());
        }
    }
    let (dispatcher, workers) = Dispatcher::start(specs, p.config.queue_capacity, shared.clone());
    let dispatcher = Arc::new(dispatcher);

    let stop = CancellationToken::new();
    let subscribers = TaskTracker::new();
    for (key, sub) in by_address {
        let d = dispatcher.clone();
        let stop = stop.clone();
        subscribers.spawn(async move {
            let deliver = move |channel: &str, payload| d.deliver(&key, channel, payload);
            subscriber::run(sub, &deliver, stop).await;
        });
    }
    subscribers.close();

    let signal = wait_for_signal().await.map_err(Failure::runtime)?;
    tracing::info!(
        signal,
        "stopping: no new messages; draining queued and running handlers"
    );
    stop.cancel();
    subscribers.wait().await;
    // The subscribers held the other references; dropping the last one closes
    // the queues, so the workers end once they are empty.
    drop(dispatcher);
    let cut = dispatch::drain(workers, &shared, p.config.drain_timeout).await;
    if cut > 0 {
        tracing::warn!(cut_short = cut, deadline = ?p.config.drain_timeout, "drain deadline passed; messages still queued or running were cut short");
    }
    let echo_dropped = shared.logs.shutdown();
    if echo_dropped > 0 {
        tracing::warn!(
            echo_dropped_bytes = echo_dropped,
            "the terminal did not keep up: this much handler output was not echoed (the log files have all of it)"
        );
    }
    let s = stats.snapshot();
    tracing::info!(%s, "stopped");
    eprintln!("spin-redis: {s}");
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
