//! `spin-redis up` (and `watch`, which is `up` plus a file watcher): prepare
//! the app, wire it, dispatch until told to stop, then drain.
//!
//! Two tokio runtimes: a single-threaded one owns the Redis connections, the
//! queues and the signals; a multi-threaded one (a worker per core) runs the
//! handlers. Wasm can therefore never keep the subscriber from reading.
//!
//! [`serve`] runs until its `shutdown` future ends, applying each reload
//! request meanwhile (SIGHUP, or a rebuilt component under `watch`) through
//! `reload`, which also does the start-up wiring.
//!
//! Shutdown (SIGINT or SIGTERM): stop reading Redis, let queued and running
//! messages finish within the drain deadline, acknowledge the stream entries
//! and remove the list items handled (and hand the rest back to their
//! lists), report what was cut short, print the counters (and one line per
//! stream and list trigger, see `report`), exit 0.

mod report;

use crate::cli::{LogFormat, UpArgs};
use crate::dispatch::{self, Dispatcher, Shared};
use crate::executor::engine::Runtime;
use crate::failure::Failure;
use crate::logs::Logs;
use crate::ops::health::Health;
use crate::ops::metrics::Metrics;
use crate::ops::server::Server;
use crate::ops::telemetry::Telemetry;
use crate::prepare::{Prepared, prepare};
use crate::reload::{ACK_PATIENCE, Live, Next, Origin, Wiring};
use crate::stats::Stats;
use anyhow::Context as _;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Why the running app should be read again.
#[derive(Debug)]
pub enum Request {
    /// Read the manifest again (SIGHUP, or a component rebuilt by `watch`);
    /// the text says why.
    Reload(String),
    /// `watch` could not rebuild a component: nothing changes, and the
    /// reload counts as failed.
    BuildFailed { cause: String, error: String },
}

pub fn up(args: UpArgs, log_format: LogFormat) -> Result<(), Failure> {
    run::<()>(args, log_format, None)
}

/// Starts watching an app's files (see `watch`): given the app and where
/// to send reload requests, returns what keeps the watching going.
pub type StartWatcher<'a, W> =
    &'a dyn Fn(&crate::manifest::App, mpsc::UnboundedSender<Request>) -> anyhow::Result<W>;

/// Runs the app of `args` until SIGINT or SIGTERM, reloading on SIGHUP.
/// `watcher` starts watching its files (kept until the end).
pub fn run<W>(
    args: UpArgs,
    log_format: LogFormat,
    watcher: Option<StartWatcher<'_, W>>,
) -> Result<(), Failure> {
    let io_rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the I/O runtime")
        .map_err(Failure::runtime)?;
    // Listened for before building and compiling, which can take minutes:
    // SIGHUP's default action would end the process. One that comes meanwhile
    // is a reload once the app is up (it reads whatever changed). SIGINT and
    // SIGTERM keep their default until then, so Ctrl-C stops a long start.
    let hup = {
        let _in_runtime = io_rt.enter();
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            .context("cannot listen for SIGHUP")
            .map_err(Failure::runtime)?
    };
    if args.build {
        crate::build::build_manifest(&args.common.from, &[], crate::build::Echo::AsIs)?;
    }
    let overrides = args.overrides();
    let Prepared {
        app,
        config,
        stores,
        handlers,
        runtime,
    } = prepare(&args.common, overrides.clone(), None)?;
    let origin = Origin {
        common: args.common.clone(),
        overrides,
    };
    let log_dir = args
        .log_dir
        .clone()
        .unwrap_or_else(|| app.dir.join(".spin").join("logs"));
    let logs = Logs::open(
        &log_dir,
        args.quiet,
        app.components.iter().map(|c| c.id.as_str()),
    )
    .map_err(Failure::runtime)?;
    let (requests, requests_rx) = mpsc::unbounded_channel();
    let _watcher = match watcher {
        Some(start) => Some(start(&app, requests.clone()).map_err(Failure::runtime)?),
        None => None,
    };
    let next = Next::prepared(app, config, stores, handlers).map_err(Failure::usage)?;
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let handler_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .thread_name("handler")
        .enable_all()
        .build()
        .context("cannot start the handler runtime")
        .map_err(Failure::runtime)?;
    let result = io_rt.block_on(async {
        let shutdown = signals(hup, requests).map_err(Failure::runtime)?;
        let app = App {
            next,
            origin,
            runtime: Arc::new(runtime),
            logs: Arc::new(logs),
        };
        serve(
            app,
            handler_rt.handle().clone(),
            args.metrics,
            log_format,
            shutdown,
            requests_rx,
        )
        .await
    });
    // Anything still running after the drain deadline is abandoned here.
    handler_rt.shutdown_background();
    result
}

/// Turns SIGHUP (`hup`) into reload requests on `requests` and returns the
/// future of SIGTERM or SIGINT (the signal's name).
fn signals(
    mut hup: tokio::signal::unix::Signal,
    requests: mpsc::UnboundedSender<Request>,
) -> anyhow::Result<impl Future<Output = &'static str>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            if requests.send(Request::Reload("SIGHUP".into())).is_err() {
                return;
            }
        }
    });
    Ok(async move {
        tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        }
    })
}

/// The app to serve: prepared, with what a reload needs.
pub struct App {
    pub next: Next,
    pub origin: Origin,
    pub runtime: Arc<Runtime>,
    pub logs: Arc<Logs>,
}

/// Serves `app` until `shutdown` ends, applying each of `requests`; then
/// drains and reports.
pub async fn serve(
    app: App,
    handlers: tokio::runtime::Handle,
    metrics_addr: Option<SocketAddr>,
    log_format: LogFormat,
    shutdown: impl Future<Output = &'static str>,
    mut requests: mpsc::UnboundedReceiver<Request>,
) -> Result<(), Failure> {
    let App {
        next,
        origin,
        runtime,
        logs,
    } = app;
    let config = next.config().clone();
    let stats = Arc::new(Stats::default());
    let metrics = Arc::new(Metrics::new());
    let health = Arc::new(Health::default());
    // The operations server outlives the drain: probes answer until the end.
    let server_stop = CancellationToken::new();
    // Bound before anything else, so a taken port fails start-up at once.
    let server = match metrics_addr {
        Some(addr) => {
            let server = Server::bind(addr, metrics.clone(), health.clone())
                .await
                .map_err(Failure::runtime)?;
            tracing::info!(address = ?server.local_addr(), "serving /metrics, /healthz and /readyz");
            Some(tokio::spawn(server.run(server_stop.clone())))
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
    let triggers = next.triggers();
    // Each trigger reserves one slot (see `dispatch::capacity`); the rest is
    // shared.
    let pool = Arc::new(Semaphore::new(
        config.max_concurrency.saturating_sub(triggers),
    ));
    let shared = Arc::new(Shared {
        logs,
        stats: stats.clone(),
        pool,
        max_payload: config.max_payload,
        max_queued_bytes: config.max_queued_bytes,
        handlers,
        tracker: TaskTracker::new(),
        cancel: CancellationToken::new(),
        metrics: metrics.clone(),
        telemetry: telemetry.clone(),
    });
    let dispatcher = Arc::new(Dispatcher::new(
        config.queue_capacity,
        triggers,
        shared.clone(),
    ));
    let stop = CancellationToken::new();
    let mut live = Live::new(Wiring {
        shared: shared.clone(),
        dispatcher: dispatcher.clone(),
        metrics: metrics.clone(),
        health,
        stop: stop.clone(),
        subscribers: TaskTracker::new(),
    });
    live.apply(next);

    tokio::pin!(shutdown);
    let signal = loop {
        tokio::select! {
            signal = &mut shutdown => break signal,
            Some(request) = requests.recv() => match request {
                Request::Reload(cause) => {
                    live.reload(&origin, &runtime, &cause).await;
                }
                Request::BuildFailed { cause, error } => {
                    live.refused(&origin, &cause, &error);
                }
            },
        }
    };
    tracing::info!(
        signal,
        "stopping: no new messages; draining queued and running handlers"
    );
    stop.cancel();
    let (streams, lists) = live.stopped().await;
    // The queues close; the workers end once they are empty.
    let workers = dispatcher.close();
    let cut = dispatch::drain(workers, &shared, config.drain_timeout).await;
    if cut > 0 {
        tracing::warn!(cut_short = cut, deadline = ?config.drain_timeout, "drain deadline passed; messages still queued or running were cut short");
    }
    // The last acknowledgements (handled entries), before the logs close.
    let mut stream_summaries = Vec::new();
    for s in streams {
        stream_summaries.push(s.finish(ACK_PATIENCE).await);
    }
    // The last removals, then what is left back to the queue.
    let mut list_summaries = Vec::new();
    for s in lists {
        list_summaries.push(s.finish(ACK_PATIENCE).await);
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
    if let Some(task) = server {
        server_stop.cancel();
        let _ = task.await;
    }
    report::report(&stats, &stream_summaries, &list_summaries, log_format);
    Ok(())
}
