//! The stream source: a Redis Streams consumer group per stream trigger,
//! read at-least-once and shared by any number of spin-redis processes.
//!
//! - **Reading follows capacity**: a handler slot is held before an entry is
//!   read (`XREADGROUP ... COUNT n` with n the slots held), so nothing is
//!   ever dropped or queued in memory: the stream is the queue.
//! - **Acknowledged after success**: a handler that succeeded has its entry
//!   acknowledged (`XACK`, batched) once its output reached the log files.
//! - **Retries**: a failure (error, trap, timeout) is handed to a handler
//!   again after a backoff ([`backoff`]: 1 s doubling, capped at 60 s), up to
//!   `max_deliveries` attempts; the attempt number is Redis's own delivery
//!   counter, kept right by re-claiming the entry (`XCLAIM`) for each retry,
//!   so it survives restarts. A retry whose entry was taken over meanwhile
//!   (it idled past `claim_idle`) is left to its new owner.
//! - **Dead letters**: after the last attempt, or at once for an entry
//!   without the field or too large, the entry is appended to the
//!   dead-letter stream (its fields plus `dead_letter_*`) and acknowledged.
//! - **Crashes**: entries pending on any consumer for `claim_idle` are taken
//!   over (`XAUTOCLAIM`); a consumer first reads its own pending entries
//!   (`XREADGROUP ... 0`) when it starts.
//! - **Shutdown**: reading, claiming and retrying stop; what is in flight
//!   finishes (within the drain deadline) and is acknowledged; entries
//!   waiting for a retry, and anything cut short, stay pending.
//!
//! Three tasks per trigger on the I/O runtime (reader, claimer, retrier)
//! plus the acknowledger; each attempt is a task on the handler runtime,
//! tracked by the dispatcher's [`Shared::tracker`].
//!
//! Not owned here: running a handler ([`dispatch::run_delivery`]) and
//! making connections ([`super::connect`]).

use super::connect::{Conn, Endpoint, RESPONSE_TIMEOUT, describe};
use crate::dispatch::{self, Capacity, Permits, Ran, Shared};
use crate::executor::Handler;
use crate::manifest::source::{check_claim_idle, default_claim_idle};
use crate::manifest::{App, Trigger};
use crate::ops::health::RedisLink;
use crate::ops::metrics::{RouteMetrics, StreamMetrics};
use bytes::Bytes;
use redis::Value;
use spin_redis_sandbox::wasi::{Message, StreamEntry};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The wait before the second attempt; it doubles for each one after.
pub const BACKOFF_FIRST: Duration = Duration::from_secs(1);
/// The longest wait between two attempts.
pub const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// How long one read waits for new entries (`BLOCK`).
const BLOCK: Duration = Duration::from_secs(1);
/// Entries read or claimed at once, at most.
const BATCH: usize = 128;
/// Entries acknowledged in one `XACK`, at most.
const ACK_BATCH: usize = 1000;
/// Bytes of the last error kept in `dead_letter_error`.
const ERROR_CAP: usize = 1024;
/// How long acknowledging may keep being retried once shutting down.
const SHUTDOWN_ACK_PATIENCE: Duration = Duration::from_secs(5);
const RECONNECT_FIRST: Duration = Duration::from_millis(100);
const RECONNECT_MAX: Duration = Duration::from_secs(5);
/// How long a reading connection must stay up before the backoff starts
/// over.
const STABLE_AFTER: Duration = Duration::from_secs(30);

/// The wait after failed attempt `attempt` (1-based): 1 s, 2 s, 4 s ...
/// capped at [`BACKOFF_MAX`].
pub fn backoff(attempt: u32) -> Duration {
    let doublings = attempt.saturating_sub(1).min(16);
    (BACKOFF_FIRST * (1u32 << doublings)).min(BACKOFF_MAX)
}

/// The default consumer name: `<hostname>-<pid>`.
pub fn default_consumer() -> String {
    let host = ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| {
            std::fs::read_to_string(p)
                .ok()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
        })
        .unwrap_or_else(|| "localhost".into());
    format!("{host}-{}", std::process::id())
}

/// Checks every stream trigger's `claim_idle` against the timeout in force
/// (the manifest checked it against its own; `--timeout` may differ).
pub fn check_timeouts(app: &App, timeout: Duration) -> anyhow::Result<()> {
    for t in &app.triggers {
        let Some(s) = &t.stream else { continue };
        let claim_idle = s.claim_idle.unwrap_or_else(|| default_claim_idle(timeout));
        if let Err(m) = check_claim_idle(claim_idle, timeout) {
            anyhow::bail!(
                "the stream trigger of component {:?} (stream {:?}): {m}; raise claim_idle in the manifest or lower --timeout",
                t.component,
                t.channel
            );
        }
    }
    Ok(())
}

/// The settings of stream trigger `t`, with its defaults settled.
pub fn spec(t: &Trigger, endpoint: Endpoint, timeout: Duration) -> Option<StreamSpec> {
    let s = t.stream.as_ref()?;
    Some(StreamSpec {
        endpoint,
        stream: t.channel.clone(),
        group: s.group.clone(),
        consumer: s.consumer.clone().unwrap_or_else(default_consumer),
        field: s.field.clone(),
        start: s.start.clone(),
        max_deliveries: s.max_deliveries,
        dead_letter: s.dead_letter.clone(),
        claim_idle: s.claim_idle.unwrap_or_else(|| default_claim_idle(timeout)),
    })
}

/// One stream trigger's consumer-group settings, settled at start-up.
#[derive(Debug, Clone)]
pub struct StreamSpec {
    pub endpoint: Endpoint,
    pub stream: String,
    pub group: String,
    pub consumer: String,
    pub field: String,
    pub start: String,
    pub max_deliveries: u32,
    pub dead_letter: String,
    pub claim_idle: Duration,
}

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
}

/// A running stream trigger; see [`StreamSource::start`].
pub struct Running {
    inner: Arc<Inner>,
    readers: TaskTracker,
    acker: tokio::task::JoinHandle<()>,
}

/// One entry as Redis returned it; `fields` is `None` for an entry that was
/// deleted while pending.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    id: String,
    fields: Option<Vec<(Bytes, Bytes)>>,
}

/// Where an entry held by this process is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Held {
    /// Running, or handled and waiting for its acknowledgement.
    Running,
    /// Failed, waiting for its retry.
    Waiting,
}

/// A failed entry waiting for its next attempt.
struct Retry {
    entry: Entry,
    /// The attempt that failed.
    delivery: u32,
    wait: Duration,
}

/// What every task of a trigger shares.
struct Inner {
    spec: StreamSpec,
    handler: Arc<Handler>,
    capacity: Capacity,
    shared: Arc<Shared>,
    link: RedisLink,
    route_metrics: RouteMetrics,
    stream_metrics: StreamMetrics,
    counters: Counters,
    commands: Commands,
    /// The endpoint as handlers see it (no credentials).
    address: String,
    /// Entries this process is running or will retry, by id.
    held: Mutex<HashMap<String, Held>>,
}

/// The channels an attempt reports on. Their receivers end once every
/// sender is gone, which is how the acknowledger knows all attempts ended.
#[derive(Clone)]
struct Chans {
    acks: mpsc::UnboundedSender<String>,
    retries: mpsc::UnboundedSender<Retry>,
}

impl StreamSource {
    /// Starts reading, claiming and retrying until `shutdown`.
    pub fn start(self, shared: Arc<Shared>, shutdown: CancellationToken) -> Running {
        let inner = Arc::new(Inner {
            commands: Commands::new(self.spec.endpoint.clone()),
            address: self.spec.endpoint.shown(),
            spec: self.spec,
            handler: self.handler,
            capacity: self.capacity,
            shared,
            link: self.link,
            route_metrics: self.route_metrics,
            stream_metrics: self.stream_metrics,
            counters: Counters::default(),
            held: Mutex::new(HashMap::new()),
        });
        let (acks, ack_rx) = mpsc::unbounded_channel();
        let (retries, retry_rx) = mpsc::unbounded_channel();
        let chans = Chans { acks, retries };
        let acker = tokio::spawn(ack_loop(inner.clone(), ack_rx, shutdown.clone()));
        let readers = TaskTracker::new();
        readers.spawn(read_loop(inner.clone(), chans.clone(), shutdown.clone()));
        readers.spawn(claim_loop(inner.clone(), chans.clone(), shutdown.clone()));
        readers.spawn(retry_loop(inner.clone(), chans, retry_rx, shutdown));
        readers.close();
        Running {
            inner,
            readers,
            acker,
        }
    }
}

impl Running {
    /// Waits until reading, claiming and retrying have stopped (after the
    /// shutdown signal); no attempt starts after this.
    pub async fn stopped(&self) {
        self.readers.wait().await;
    }

    /// After the drain: waits (at most `patience`) for the last
    /// acknowledgements, and reports.
    pub async fn finish(self, patience: Duration) -> Summary {
        let inner = self.inner;
        if tokio::time::timeout(patience, self.acker).await.is_err() {
            tracing::warn!(stream = %inner.spec.stream, "gave up waiting for the last acknowledgements; those entries will be handled again");
        }
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

/// The command connection of a trigger, made on first use and again after
/// it broke. (The reader has a connection of its own: a blocking read would
/// hold up every command queued behind it.)
struct Commands {
    endpoint: Endpoint,
    conn: tokio::sync::Mutex<Option<Conn>>,
}

impl Commands {
    fn new(endpoint: Endpoint) -> Self {
        Commands {
            endpoint,
            conn: tokio::sync::Mutex::new(None),
        }
    }

    async fn query<T: redis::FromRedisValue>(&self, cmd: &redis::Cmd) -> redis::RedisResult<T> {
        let mut conn = {
            let mut slot = self.conn.lock().await;
            match &*slot {
                Some(c) => c.clone(),
                None => {
                    let c = self.endpoint.connect(RESPONSE_TIMEOUT).await?;
                    *slot = Some(c.clone());
                    c
                }
            }
        };
        let r = cmd.query_async(&mut conn).await;
        if let Err(e) = &r
            && broken(e)
        {
            *self.conn.lock().await = None;
        }
        r
    }

    async fn pipeline(&self, pipe: &redis::Pipeline) -> redis::RedisResult<Vec<Value>> {
        let mut conn = {
            let mut slot = self.conn.lock().await;
            match &*slot {
                Some(c) => c.clone(),
                None => {
                    let c = self.endpoint.connect(RESPONSE_TIMEOUT).await?;
                    *slot = Some(c.clone());
                    c
                }
            }
        };
        let r = pipe.query_async(&mut conn).await;
        if let Err(e) = &r
            && broken(e)
        {
            *self.conn.lock().await = None;
        }
        r
    }
}

/// Whether an error means the connection is gone (rather than a command
/// refused).
fn broken(e: &redis::RedisError) -> bool {
    e.is_io_error() || e.is_connection_dropped() || e.is_timeout() || e.is_connection_refusal()
}

impl Inner {
    fn hold(&self, id: &str, state: Held) {
        self.held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.to_string(), state);
    }

    fn release(&self, id: &str) {
        self.held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }

    /// Forgets a retry, unless the entry was taken up meanwhile.
    fn release_waiting(&self, id: &str) {
        let mut held = self.held.lock().unwrap_or_else(|p| p.into_inner());
        if held.get(id) == Some(&Held::Waiting) {
            held.remove(id);
        }
    }

    fn held(&self, id: &str) -> Option<Held> {
        self.held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .copied()
    }

    /// Starts one attempt on the handler runtime.
    fn spawn_attempt(
        self: &Arc<Self>,
        entry: Entry,
        delivery: u32,
        permits: Permits,
        chans: &Chans,
    ) {
        self.hold(&entry.id, Held::Running);
        let inner = self.clone();
        let chans = chans.clone();
        self.shared.tracker.spawn_on(
            async move { inner.attempt(entry, delivery, permits, chans).await },
            &self.shared.handlers,
        );
    }

    /// Runs one attempt and settles the entry: acknowledge, retry, or dead
    /// letter.
    async fn attempt(self: Arc<Self>, entry: Entry, delivery: u32, permits: Permits, chans: Chans) {
        let spec = &self.spec;
        let fields = entry.fields.as_deref().unwrap_or_default();
        let payload = fields
            .iter()
            .find(|(k, _)| k.as_ref() == spec.field.as_bytes())
            .map(|(_, v)| v.clone());
        let refuse = match &payload {
            _ if delivery > spec.max_deliveries => Some(format!(
                "delivered {delivery} times without an outcome (the consumers handling it stopped)"
            )),
            None => Some(format!("the entry has no field {:?}", spec.field)),
            Some(p) if p.len() as u64 > self.shared.max_payload => Some(format!(
                "the payload of {} bytes is larger than max_payload ({} bytes)",
                p.len(),
                self.shared.max_payload
            )),
            Some(_) => None,
        };
        if let Some(reason) = refuse {
            drop(permits);
            self.dead_letter(&entry, delivery, &reason).await;
            self.release(&entry.id);
            return;
        }
        let payload = payload.expect("invariant: refused above when missing");
        let account = self.shared.stats.open();
        let ran = dispatch::run_delivery(
            &self.handler,
            Message {
                channel: &spec.stream,
                address: &self.address,
                payload,
                stream: Some(StreamEntry {
                    id: &entry.id,
                    delivery,
                }),
            },
            account,
            &self.route_metrics,
            &self.shared,
        )
        .await;
        drop(permits);
        match ran {
            Ran::Ok => {
                // Acknowledged (and released) by the acknowledger once the
                // output is in the log files; held until then, so that it is
                // not read again meanwhile.
                if let Err(unsent) = chans.acks.send(entry.id) {
                    self.release(&unsent.0);
                }
            }
            Ran::Failed(reason) if delivery >= spec.max_deliveries => {
                self.dead_letter(&entry, delivery, &reason).await;
                self.release(&entry.id);
            }
            Ran::Failed(_) => {
                let wait = backoff(delivery);
                self.hold(&entry.id, Held::Waiting);
                self.counters.retried.fetch_add(1, Ordering::Relaxed);
                tracing::info!(component = %self.handler.component, stream = %spec.stream, id = %entry.id, delivery, retry_in = ?wait, "will retry the entry");
                if chans
                    .retries
                    .send(Retry {
                        entry: entry.clone(),
                        delivery,
                        wait,
                    })
                    .is_err()
                {
                    // Shutting down: the entry stays pending.
                    self.release(&entry.id);
                }
            }
            Ran::CutShort => {
                // Stays pending: handled again by this consumer when it
                // restarts, or by another after claim_idle.
                self.release(&entry.id);
            }
        }
    }

    /// Appends the entry to the dead-letter stream, then acknowledges it.
    /// If either fails the entry stays pending, and is dead-lettered again
    /// once it is claimed (its delivery count already past the maximum).
    async fn dead_letter(&self, entry: &Entry, delivery: u32, reason: &str) {
        let spec = &self.spec;
        let mut add = redis::cmd("XADD");
        add.arg(&spec.dead_letter).arg("*");
        for (k, v) in entry.fields.as_deref().unwrap_or_default() {
            if !k.starts_with(b"dead_letter_") {
                add.arg(k.as_ref()).arg(v.as_ref());
            }
        }
        add.arg("dead_letter_id")
            .arg(&entry.id)
            .arg("dead_letter_stream")
            .arg(&spec.stream)
            .arg("dead_letter_component")
            .arg(&self.handler.component)
            .arg("dead_letter_deliveries")
            .arg(delivery)
            .arg("dead_letter_error")
            .arg(cap(reason, ERROR_CAP));
        let done = async {
            self.commands.query::<Value>(&add).await?;
            self.commands
                .query::<Value>(
                    redis::cmd("XACK")
                        .arg(&spec.stream)
                        .arg(&spec.group)
                        .arg(&entry.id),
                )
                .await
        };
        match done.await {
            Ok(_) => {
                self.counters.dead_lettered.fetch_add(1, Ordering::Relaxed);
                self.route_metrics.dead_lettered.inc();
                tracing::warn!(component = %self.handler.component, stream = %spec.stream, id = %entry.id, deliveries = delivery, dead_letter = %spec.dead_letter, reason = %reason, "entry moved to the dead-letter stream");
            }
            Err(e) => {
                tracing::warn!(component = %self.handler.component, stream = %spec.stream, id = %entry.id, reason = %describe(&e), "cannot dead-letter the entry now; it stays pending and is taken up again after claim_idle");
            }
        }
    }

    /// The delivery count of each of `ids` pending on this consumer;
    /// entries no longer pending on it are missing.
    async fn delivery_counts(&self, ids: &[&str]) -> redis::RedisResult<HashMap<String, u32>> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let spec = &self.spec;
        let mut pipe = redis::pipe();
        for id in ids {
            pipe.cmd("XPENDING")
                .arg(&spec.stream)
                .arg(&spec.group)
                .arg(*id)
                .arg(*id)
                .arg(1)
                .arg(&spec.consumer);
        }
        let replies = self.commands.pipeline(&pipe).await?;
        let mut counts = HashMap::new();
        for r in replies {
            // [[id, consumer, idle, count]] or [] when not pending.
            if let Value::Array(rows) = r
                && let Some(Value::Array(row)) = rows.first()
                && let (Some(id), Some(Value::Int(n))) = (row.first().and_then(text), row.get(3))
            {
                counts.insert(id, u32::try_from(*n).unwrap_or(u32::MAX));
            }
        }
        Ok(counts)
    }
}

/// Why a reading session ended.
enum Ended {
    Shutdown,
    Lost {
        reason: String,
        /// How long it had been reading; `None`: it never got that far.
        up_for: Option<Duration>,
    },
}

/// Reads the group until `shutdown`: reconnects with capped backoff, logs a
/// loss once and the recovery.
async fn read_loop(inner: Arc<Inner>, chans: Chans, shutdown: CancellationToken) {
    let spec = &inner.spec;
    let shown = spec.endpoint.shown();
    // The own pending entries are read once, when the process starts.
    let mut own_pending = true;
    let mut backoff = RECONNECT_FIRST;
    let mut failures: u32 = 0;
    loop {
        let ended = read_session(&inner, &chans, &shutdown, &mut own_pending, failures).await;
        inner.link.lost();
        match ended {
            Ended::Shutdown => return,
            Ended::Lost { reason, up_for } => {
                if let Some(up_for) = up_for {
                    tracing::warn!(address = %shown, stream = %spec.stream, reason = %reason, "lost the connection to redis; reconnecting");
                    failures = 1;
                    if up_for >= STABLE_AFTER {
                        backoff = RECONNECT_FIRST;
                    }
                } else {
                    if failures == 0 || failures.is_multiple_of(20) {
                        tracing::warn!(address = %shown, stream = %spec.stream, reason = %reason, attempts = failures + 1, "cannot read the stream; retrying");
                    } else {
                        tracing::debug!(address = %shown, stream = %spec.stream, reason = %reason, "still cannot read the stream");
                    }
                    failures += 1;
                }
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(RECONNECT_MAX);
    }
}

/// Creates the group (and the stream) if missing.
async fn ensure_group(conn: &mut Conn, spec: &StreamSpec) -> redis::RedisResult<()> {
    let r: redis::RedisResult<Value> = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(&spec.stream)
        .arg(&spec.group)
        .arg(&spec.start)
        .arg("MKSTREAM")
        .query_async(conn)
        .await;
    match r {
        Ok(_) => {
            tracing::info!(stream = %spec.stream, group = %spec.group, start = %spec.start, "created the consumer group");
            Ok(())
        }
        Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
        Err(e) => Err(e),
    }
}

async fn read_session(
    inner: &Arc<Inner>,
    chans: &Chans,
    shutdown: &CancellationToken,
    own_pending: &mut bool,
    failures: u32,
) -> Ended {
    let spec = &inner.spec;
    let connect = async {
        let mut conn = spec.endpoint.connect(RESPONSE_TIMEOUT + BLOCK).await?;
        ensure_group(&mut conn, spec).await?;
        Ok::<_, redis::RedisError>(conn)
    };
    let mut conn = tokio::select! {
        _ = shutdown.cancelled() => return Ended::Shutdown,
        r = connect => match r {
            Ok(c) => c,
            Err(e) => return Ended::Lost { reason: describe(&e), up_for: None },
        },
    };
    inner.link.connected(failures > 0);
    let shown = spec.endpoint.shown();
    if failures > 0 {
        tracing::info!(address = %shown, stream = %spec.stream, group = %spec.group, consumer = %spec.consumer, "reconnected to redis; reading the stream again");
    } else {
        tracing::info!(address = %shown, stream = %spec.stream, group = %spec.group, consumer = %spec.consumer, "reading the stream");
    }
    let since = Instant::now();
    let lost = |reason: String| Ended::Lost {
        reason,
        up_for: Some(since.elapsed()),
    };
    // `Some(id)`: reading this consumer's own pending entries after `id`.
    let mut cursor: Option<String> = own_pending.then(|| "0".to_string());
    let mut recovered = 0usize;
    let mut want = 1;
    // Reads refused in a row.
    let mut refused = 0u32;
    loop {
        // Capacity first: one slot (waiting for it), more if free.
        let first = tokio::select! {
            _ = shutdown.cancelled() => return Ended::Shutdown,
            p = inner.capacity.acquire() => p,
        };
        let mut permits = vec![first];
        while permits.len() < want {
            match inner.capacity.try_acquire() {
                Some(p) => permits.push(p),
                None => break,
            }
        }
        let n = permits.len();
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP")
            .arg(&spec.group)
            .arg(&spec.consumer)
            .arg("COUNT")
            .arg(n);
        if cursor.is_none() {
            cmd.arg("BLOCK").arg(BLOCK.as_millis() as u64);
        }
        cmd.arg("STREAMS")
            .arg(&spec.stream)
            .arg(cursor.as_deref().unwrap_or(">"));
        // A read in flight is finished even when shutting down, so that what
        // it returns is handled rather than left pending.
        let mut stopping = false;
        let reply = {
            let read = cmd.query_async::<Value>(&mut conn);
            tokio::pin!(read);
            tokio::select! {
                r = &mut read => r,
                _ = shutdown.cancelled() => {
                    stopping = true;
                    match tokio::time::timeout(BLOCK + Duration::from_millis(500), read).await {
                        Ok(r) => r,
                        Err(_) => return Ended::Shutdown,
                    }
                }
            }
        };
        let entries = match reply {
            Ok(v) => stream_entries(v),
            Err(e) if e.code() == Some("NOGROUP") => {
                // The stream or group was deleted (or Redis restarted empty).
                tracing::warn!(stream = %spec.stream, group = %spec.group, "the consumer group is gone; creating it again");
                if let Err(e) = ensure_group(&mut conn, spec).await {
                    return lost(describe(&e));
                }
                if stopping {
                    return Ended::Shutdown;
                }
                continue;
            }
            // The key moved away (cluster slot migration) or was deleted
            // while the read waited: read again.
            Err(e) if e.code() == Some("UNBLOCKED") => {
                tracing::debug!(stream = %spec.stream, reason = %describe(&e), "the read was unblocked; reading again");
                if stopping {
                    return Ended::Shutdown;
                }
                continue;
            }
            // Refused (not a lost connection): said, and tried again later.
            Err(e) if !broken(&e) => {
                refused += 1;
                if refused == 1 || refused.is_multiple_of(20) {
                    tracing::warn!(stream = %spec.stream, group = %spec.group, reason = %describe(&e), attempts = refused, "redis refused to read the stream; retrying");
                }
                if stopping {
                    return Ended::Shutdown;
                }
                drop(permits);
                tokio::select! {
                    _ = shutdown.cancelled() => return Ended::Shutdown,
                    _ = tokio::time::sleep(RECONNECT_MAX) => {}
                }
                continue;
            }
            Err(e) => return lost(describe(&e)),
        };
        refused = 0;
        want = if entries.len() == n {
            (n * 2).min(BATCH)
        } else {
            1
        };
        let deliveries: HashMap<String, u32> = if let Some(c) = &mut cursor {
            let Some(last) = entries.last() else {
                if recovered > 0 {
                    tracing::info!(stream = %spec.stream, consumer = %spec.consumer, entries = recovered, "took up this consumer's own pending entries");
                }
                cursor = None;
                *own_pending = false;
                if stopping {
                    return Ended::Shutdown;
                }
                continue;
            };
            *c = last.id.clone();
            let ids: Vec<&str> = entries.iter().map(|e| e.id.as_str()).collect();
            match inner.delivery_counts(&ids).await {
                Ok(d) => d,
                Err(e) => return lost(describe(&e)),
            }
        } else {
            entries.iter().map(|e| (e.id.clone(), 1)).collect()
        };
        let mut permits = permits.into_iter();
        for entry in entries {
            if entry.fields.is_none() {
                // Deleted while pending: nothing to handle. (If this fails
                // it is asked again at the next start.)
                let _ = inner
                    .commands
                    .query::<Value>(
                        redis::cmd("XACK")
                            .arg(&spec.stream)
                            .arg(&spec.group)
                            .arg(&entry.id),
                    )
                    .await;
                continue;
            }
            if inner.held(&entry.id).is_some() {
                continue;
            }
            let Some(&delivery) = deliveries.get(&entry.id) else {
                continue;
            };
            recovered += usize::from(cursor.is_some());
            let permit = permits
                .next()
                .expect("invariant: at most one entry per permit");
            inner.spawn_attempt(entry, delivery, permit, chans);
        }
        if stopping {
            return Ended::Shutdown;
        }
    }
}

/// Takes over entries idle past `claim_idle` on any consumer, and keeps the
/// group's pending and lag gauges current.
async fn claim_loop(inner: Arc<Inner>, chans: Chans, shutdown: CancellationToken) {
    let every =
        (inner.spec.claim_idle / 4).clamp(Duration::from_millis(100), Duration::from_secs(15));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Not at once: the reader first takes up this consumer's own pending
    // entries, which are not "claimed from others".
    tick.reset();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        if let Err(e) = claim_round(&inner, &chans, &shutdown).await {
            // The reader reports a lost connection; this only says it here.
            tracing::debug!(stream = %inner.spec.stream, reason = %describe(&e), "cannot claim idle entries now");
        }
        if let Ok((pending, lag)) = group_info(&inner).await {
            inner
                .stream_metrics
                .pending
                .set(i64::try_from(pending).unwrap_or(i64::MAX));
            if let Some(lag) = lag {
                inner
                    .stream_metrics
                    .lag
                    .set(i64::try_from(lag).unwrap_or(i64::MAX));
            }
        }
    }
}

async fn claim_round(
    inner: &Arc<Inner>,
    chans: &Chans,
    shutdown: &CancellationToken,
) -> redis::RedisResult<()> {
    let spec = &inner.spec;
    let mut cursor = "0-0".to_string();
    loop {
        let first = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            p = inner.capacity.acquire() => p,
        };
        let mut permits = vec![first];
        while permits.len() < BATCH {
            match inner.capacity.try_acquire() {
                Some(p) => permits.push(p),
                None => break,
            }
        }
        let reply: Value = inner
            .commands
            .query(
                redis::cmd("XAUTOCLAIM")
                    .arg(&spec.stream)
                    .arg(&spec.group)
                    .arg(&spec.consumer)
                    .arg(spec.claim_idle.as_millis() as u64)
                    .arg(&cursor)
                    .arg("COUNT")
                    .arg(permits.len()),
            )
            .await?;
        let (next, entries) = autoclaim_reply(reply);
        let ids: Vec<&str> = entries.iter().map(|e| e.id.as_str()).collect();
        let deliveries = inner.delivery_counts(&ids).await?;
        let mut permits = permits.into_iter();
        for entry in entries {
            let Some(&delivery) = deliveries.get(&entry.id) else {
                continue;
            };
            match inner.held(&entry.id) {
                // Cannot happen (claim_idle exceeds the timeout); never
                // run an entry twice at once.
                Some(Held::Running) => continue,
                // A retry of ours that waited past claim_idle: run it now
                // (the retrier then finds it taken and lets it be).
                Some(Held::Waiting) => {}
                None => {
                    inner.counters.claimed.fetch_add(1, Ordering::Relaxed);
                    tracing::info!(stream = %spec.stream, id = %entry.id, delivery, "took over an entry idle past claim_idle");
                }
            }
            let permit = permits
                .next()
                .expect("invariant: at most one entry per permit");
            inner.spawn_attempt(entry, delivery, permit, chans);
        }
        if next == "0-0" || shutdown.is_cancelled() {
            return Ok(());
        }
        cursor = next;
    }
}

/// `(pending, lag)` of the group, from `XINFO GROUPS` (lag is unknown to
/// Redis at times, such as after entries were deleted).
async fn group_info(inner: &Inner) -> redis::RedisResult<(u64, Option<u64>)> {
    let v: Value = inner
        .commands
        .query(redis::cmd("XINFO").arg("GROUPS").arg(&inner.spec.stream))
        .await?;
    let Value::Array(groups) = v else {
        return Ok((0, None));
    };
    for g in groups {
        let pairs = pairs(&g);
        let get = |k: &str| pairs.iter().find(|(n, _)| n == k).map(|(_, v)| *v);
        if get("name").and_then(text).as_deref() != Some(inner.spec.group.as_str()) {
            continue;
        }
        let int = |k: &str| match get(k) {
            Some(Value::Int(n)) => u64::try_from(*n).ok(),
            _ => None,
        };
        return Ok((int("pending").unwrap_or(0), int("lag")));
    }
    Ok((0, None))
}

/// Hands failed entries to a handler again once their backoff has passed.
async fn retry_loop(
    inner: Arc<Inner>,
    chans: Chans,
    mut rx: mpsc::UnboundedReceiver<Retry>,
    shutdown: CancellationToken,
) {
    let spec = &inner.spec;
    let mut due: BinaryHeap<Reverse<(Instant, u64)>> = BinaryHeap::new();
    let mut waiting: HashMap<u64, Retry> = HashMap::new();
    let mut seq = 0u64;
    loop {
        let next = due.peek().map(|Reverse((at, _))| *at);
        tokio::select! {
            _ = shutdown.cancelled() => break,
            r = rx.recv() => match r {
                Some(r) => {
                    seq += 1;
                    due.push(Reverse((Instant::now() + r.wait, seq)));
                    waiting.insert(seq, r);
                }
                None => break,
            },
            _ = tokio::time::sleep_until(next.unwrap_or_else(Instant::now).into()), if next.is_some() => {
                let Some(Reverse((_, key))) = due.pop() else { continue };
                let r = waiting.remove(&key).expect("invariant: every key in the heap is waiting");
                if inner.held(&r.entry.id) != Some(Held::Waiting) {
                    // Taken over (by this process or another) meanwhile.
                    continue;
                }
                let permit = tokio::select! {
                    _ = shutdown.cancelled() => {
                        waiting.insert(key, r);
                        break;
                    }
                    p = inner.capacity.acquire() => p,
                };
                if inner.held(&r.entry.id) != Some(Held::Waiting) {
                    continue;
                }
                // Claiming it again counts the delivery in Redis and resets
                // its idle time; an entry touched since it failed (idle less
                // than the backoff) was taken over, and is left alone.
                let min_idle = r.wait.saturating_sub(Duration::from_millis(50));
                let claimed: redis::RedisResult<Value> = inner
                    .commands
                    .query(
                        redis::cmd("XCLAIM")
                            .arg(&spec.stream)
                            .arg(&spec.group)
                            .arg(&spec.consumer)
                            .arg(min_idle.as_millis() as u64)
                            .arg(&r.entry.id),
                    )
                    .await;
                match claimed.map(entries_of) {
                    Ok(mut entries) if !entries.is_empty() => {
                        let entry = entries.swap_remove(0);
                        inner.spawn_attempt(entry, r.delivery + 1, permit, &chans);
                    }
                    Ok(_) => {
                        tracing::debug!(stream = %spec.stream, id = %r.entry.id, "the entry to retry was taken over or deleted meanwhile");
                        inner.release_waiting(&r.entry.id);
                    }
                    Err(e) => {
                        tracing::warn!(stream = %spec.stream, id = %r.entry.id, reason = %describe(&e), "cannot retry the entry now; it stays pending and is taken up again after claim_idle");
                        inner.release_waiting(&r.entry.id);
                    }
                }
            }
        }
    }
    for r in waiting.values() {
        inner.release_waiting(&r.entry.id);
    }
    if !waiting.is_empty() {
        tracing::info!(stream = %spec.stream, entries = waiting.len(), "entries waiting for a retry were left pending");
    }
}

/// Acknowledges handled entries in batches, after flushing the log files:
/// an entry whose output was lost in a crash is never acknowledged.
async fn ack_loop(
    inner: Arc<Inner>,
    mut rx: mpsc::UnboundedReceiver<String>,
    shutdown: CancellationToken,
) {
    let spec = &inner.spec;
    let mut batch: Vec<String> = Vec::new();
    let mut failures = 0u32;
    let mut stopping_since: Option<Instant> = None;
    loop {
        if batch.is_empty() {
            match rx.recv().await {
                Some(id) => batch.push(id),
                None => return,
            }
        }
        while batch.len() < ACK_BATCH {
            match rx.try_recv() {
                Ok(id) => batch.push(id),
                Err(_) => break,
            }
        }
        inner.shared.logs.flush();
        let mut cmd = redis::cmd("XACK");
        cmd.arg(&spec.stream).arg(&spec.group).arg(&batch);
        match inner.commands.query::<Value>(&cmd).await {
            Ok(_) => {
                inner
                    .counters
                    .handled
                    .fetch_add(batch.len() as u64, Ordering::Relaxed);
                for id in batch.drain(..) {
                    inner.release(&id);
                }
                failures = 0;
            }
            Err(e) => {
                failures += 1;
                if failures == 1 {
                    tracing::warn!(stream = %spec.stream, entries = batch.len(), reason = %describe(&e), "cannot acknowledge handled entries; retrying");
                }
                if shutdown.is_cancelled() {
                    let since = *stopping_since.get_or_insert_with(Instant::now);
                    if since.elapsed() > SHUTDOWN_ACK_PATIENCE {
                        tracing::warn!(stream = %spec.stream, entries = batch.len(), "handled entries left unacknowledged at shutdown; they will be handled again");
                        for id in batch.drain(..) {
                            inner.release(&id);
                        }
                        continue;
                    }
                }
                let wait = RECONNECT_FIRST * 2u32.saturating_pow(failures.min(6));
                tokio::time::sleep(wait.min(RECONNECT_MAX)).await;
            }
        }
    }
}

/// The entries of an `XREADGROUP` reply: `nil` (none), `[[key, entries]]`
/// (RESP2) or `{key: entries}` (RESP3).
fn stream_entries(v: Value) -> Vec<Entry> {
    match v {
        Value::Array(streams) => streams
            .into_iter()
            .flat_map(|s| match s {
                Value::Array(mut kv) if kv.len() == 2 => entries_of(kv.swap_remove(1)),
                _ => Vec::new(),
            })
            .collect(),
        Value::Map(streams) => streams
            .into_iter()
            .flat_map(|(_, e)| entries_of(e))
            .collect(),
        _ => Vec::new(),
    }
}

/// An array of `[id, [field, value, ...] | nil]`.
fn entries_of(v: Value) -> Vec<Entry> {
    let Value::Array(items) = v else {
        return Vec::new();
    };
    items
        .into_iter()
        .filter_map(|item| {
            let Value::Array(mut parts) = item else {
                return None;
            };
            if parts.len() != 2 {
                return None;
            }
            let fields = parts.pop().expect("invariant: two parts");
            let id = text(&parts[0])?;
            let fields = match fields {
                Value::Array(flat) => {
                    let mut out = Vec::with_capacity(flat.len() / 2);
                    let mut it = flat.into_iter();
                    while let (Some(k), Some(v)) = (it.next(), it.next()) {
                        out.push((bytes(k), bytes(v)));
                    }
                    Some(out)
                }
                Value::Map(pairs) => Some(
                    pairs
                        .into_iter()
                        .map(|(k, v)| (bytes(k), bytes(v)))
                        .collect(),
                ),
                _ => None,
            };
            Some(Entry { id, fields })
        })
        .collect()
}

/// `XAUTOCLAIM`'s `[next cursor, entries, deleted ids]`.
fn autoclaim_reply(v: Value) -> (String, Vec<Entry>) {
    let Value::Array(mut parts) = v else {
        return ("0-0".into(), Vec::new());
    };
    if parts.len() < 2 {
        return ("0-0".into(), Vec::new());
    }
    let entries = entries_of(parts.swap_remove(1));
    let next = text(&parts[0]).unwrap_or_else(|| "0-0".into());
    // Deleted entries are removed from the pending list by Redis itself.
    (
        next,
        entries.into_iter().filter(|e| e.fields.is_some()).collect(),
    )
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        Value::VerbatimString { text, .. } => Some(text.clone()),
        _ => None,
    }
}

fn bytes(v: Value) -> Bytes {
    match v {
        Value::BulkString(b) => Bytes::from(b),
        Value::SimpleString(s) => Bytes::from(s),
        Value::Int(n) => Bytes::from(n.to_string()),
        _ => Bytes::new(),
    }
}

/// The name/value pairs of a RESP2 flat array or a RESP3 map.
fn pairs(v: &Value) -> Vec<(String, &Value)> {
    match v {
        Value::Array(flat) => flat
            .chunks_exact(2)
            .filter_map(|kv| Some((text(&kv[0])?, &kv[1])))
            .collect(),
        Value::Map(m) => m.iter().filter_map(|(k, v)| Some((text(k)?, v))).collect(),
        _ => Vec::new(),
    }
}

/// `s` cut to at most `max` bytes on a character boundary.
fn cap(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn backoff_doubles_from_one_second_to_a_minute() {
        let waits: Vec<u64> = (1..=9).map(|a| backoff(a).as_secs()).collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
        assert_eq!(backoff(u32::MAX), BACKOFF_MAX);
    }

    #[test]
    fn read_replies_of_both_protocols_and_deleted_entries_are_understood() {
        let entry = |id: &str, fields: Option<&[&str]>| {
            Value::Array(vec![
                bulk(id),
                match fields {
                    Some(f) => Value::Array(f.iter().map(|s| bulk(s)).collect()),
                    None => Value::Nil,
                },
            ])
        };
        let entries = Value::Array(vec![
            entry("1-0", Some(&["payload", "a", "other", "b"])),
            entry("2-0", None),
        ]);
        let resp2 = Value::Array(vec![Value::Array(vec![bulk("s"), entries.clone()])]);
        let resp3 = Value::Map(vec![(bulk("s"), entries)]);
        for v in [resp2, resp3] {
            let e = stream_entries(v);
            assert_eq!(e.len(), 2);
            assert_eq!(e[0].id, "1-0");
            assert_eq!(
                e[0].fields.as_deref().unwrap(),
                [
                    (Bytes::from("payload"), Bytes::from("a")),
                    (Bytes::from("other"), Bytes::from("b"))
                ]
            );
            assert_eq!(e[1].fields, None);
        }
        assert!(stream_entries(Value::Nil).is_empty());
        let (next, claimed) = autoclaim_reply(Value::Array(vec![
            bulk("7-0"),
            Value::Array(vec![entry("3-0", Some(&["payload", "x"]))]),
            Value::Array(vec![bulk("4-0")]),
        ]));
        assert_eq!(next, "7-0");
        assert_eq!(claimed.len(), 1);
    }

    #[test]
    fn errors_are_capped_on_a_character_boundary() {
        assert_eq!(cap("héllo", 2), "h");
        assert_eq!(cap("hello", 10), "hello");
    }

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
