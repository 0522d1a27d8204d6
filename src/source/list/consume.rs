//! Taking items and running them: the reader (a connection of its own,
//! reconnected with capped backoff; a slot held before every take), one
//! attempt per item, and the retrier that hands failed items to a handler
//! again once their backoff has passed.
//!
//! Not owned here: removing and dead-lettering (`settle`), heartbeats and
//! the own processing list (`recover`), running a handler
//! ([`dispatch::run_delivery`]).

use super::running::{Chans, Inner};
use super::{recover, scripts, settle};
use crate::dispatch::{self, Permits, Ran};
use crate::source::connect::{Conn, RESPONSE_TIMEOUT, broken, describe};
use crate::source::stream::backoff;
use bytes::Bytes;
use redis::Value;
use spin_redis_sandbox::wasi::{Message, Origin};
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// How long one blocking take waits for an item (`BLMOVE`).
const BLOCK: Duration = Duration::from_secs(1);
/// Items taken at once, at most.
const BATCH: usize = 128;
const RECONNECT_FIRST: Duration = Duration::from_millis(100);
pub const RECONNECT_MAX: Duration = Duration::from_secs(5);
/// How long a reading connection must stay up before the backoff starts
/// over.
const STABLE_AFTER: Duration = Duration::from_secs(30);

/// A failed item waiting for its next attempt.
pub struct Retry {
    pub item: Bytes,
    /// The attempt that failed.
    pub delivery: u32,
    pub wait: Duration,
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

/// Reads the list until `shutdown`: reconnects with capped backoff, logs a
/// loss once and the recovery.
pub async fn read_loop(inner: Arc<Inner>, chans: Chans, shutdown: CancellationToken) {
    let spec = &inner.spec;
    let shown = spec.endpoint.shown();
    let mut backoff = RECONNECT_FIRST;
    let mut failures: u32 = 0;
    let mut started = false;
    loop {
        let ended = read_session(&inner, &chans, &shutdown, &mut started, failures).await;
        inner.link.lost();
        match ended {
            Ended::Shutdown => return,
            Ended::Lost { reason, up_for } => {
                if let Some(up_for) = up_for {
                    tracing::warn!(address = %shown, list = %spec.list, reason = %reason, "lost the connection to redis; reconnecting");
                    failures = 1;
                    if up_for >= STABLE_AFTER {
                        backoff = RECONNECT_FIRST;
                    }
                } else {
                    if failures == 0 || failures.is_multiple_of(20) {
                        tracing::warn!(address = %shown, list = %spec.list, reason = %reason, attempts = failures + 1, "cannot read the list; retrying");
                    } else {
                        tracing::debug!(address = %shown, list = %spec.list, reason = %reason, "still cannot read the list");
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

async fn read_session(
    inner: &Arc<Inner>,
    chans: &Chans,
    shutdown: &CancellationToken,
    started: &mut bool,
    failures: u32,
) -> Ended {
    let spec = &inner.spec;
    // The heartbeat is written before anything is taken, so that no other
    // consumer takes this one's items for abandoned.
    let connect = async {
        let mut conn = spec.endpoint.connect(RESPONSE_TIMEOUT + BLOCK).await?;
        recover::beat(&mut conn, inner).await?;
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
        tracing::info!(address = %shown, list = %spec.list, consumer = %spec.consumer, "reconnected to redis; reading the list again");
    } else {
        tracing::info!(address = %shown, list = %spec.list, consumer = %spec.consumer, processing = %spec.keys.processing, "reading the list");
    }
    let since = Instant::now();
    let lost = |reason: String| Ended::Lost {
        reason,
        up_for: Some(since.elapsed()),
    };
    // This consumer's own processing list: left by a previous process of
    // the same name, or by an attempt that could not be settled.
    match recover::resume_own(inner, &mut conn, chans, shutdown, !*started).await {
        Ok(()) => *started = true,
        Err(e) => return lost(describe(&e)),
    }
    let mut want = 1;
    // Takes refused in a row.
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
        let taken = match scripts::take(&mut conn, &spec.keys, n).await {
            Ok(t) => t,
            Err(e) if !broken(&e) => {
                // Refused (such as a key of another type): said, and tried
                // again later.
                refused += 1;
                if refused == 1 || refused.is_multiple_of(20) {
                    tracing::warn!(list = %spec.list, reason = %describe(&e), attempts = refused, "redis refused to take from the list; retrying");
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
        if taken.is_empty() {
            // Nothing there: wait for one item, holding one slot.
            permits.truncate(1);
            want = 1;
            let permit = permits.pop().expect("invariant: one permit kept");
            match block_take(inner, &mut conn, shutdown).await {
                Ok(Some(item)) => {
                    let delivery = match scripts::count(&mut conn, &spec.keys, &item).await {
                        Ok(d) => d,
                        // The item stays in the processing list, unheld:
                        // the next session takes it up.
                        Err(e) => return lost(describe(&e)),
                    };
                    inner.hold(&item);
                    inner.spawn_attempt(item, delivery, permit, chans);
                }
                Ok(None) => {}
                Err(BlockEnded::Shutdown) => return Ended::Shutdown,
                Err(BlockEnded::Failed(e)) if broken(&e) => return lost(describe(&e)),
                Err(BlockEnded::Failed(e)) => {
                    tracing::debug!(list = %spec.list, reason = %describe(&e), "the blocking take failed; taking again");
                }
            }
            if shutdown.is_cancelled() {
                return Ended::Shutdown;
            }
            continue;
        }
        want = if taken.len() == n {
            (n * 2).min(BATCH)
        } else {
            1
        };
        for ((item, delivery), permit) in taken.into_iter().zip(permits) {
            inner.hold(&item);
            inner.spawn_attempt(item, delivery, permit, chans);
        }
    }
}

/// Why a blocking take gave no item.
enum BlockEnded {
    Shutdown,
    Failed(redis::RedisError),
}

/// `BLMOVE` one item, waiting up to [`BLOCK`]. A take in flight when
/// shutting down is finished, so that an item it moves is run rather than
/// moved after the shutdown handed the processing list back.
async fn block_take(
    inner: &Inner,
    conn: &mut Conn,
    shutdown: &CancellationToken,
) -> Result<Option<Bytes>, BlockEnded> {
    let keys = &inner.spec.keys;
    let mut cmd = redis::cmd("BLMOVE");
    cmd.arg(&keys.list)
        .arg(&keys.processing)
        .arg("RIGHT")
        .arg("LEFT")
        .arg(BLOCK.as_secs_f64());
    let read = cmd.query_async::<Value>(conn);
    tokio::pin!(read);
    let reply = tokio::select! {
        r = &mut read => r,
        _ = shutdown.cancelled() => {
            match tokio::time::timeout(BLOCK + Duration::from_millis(500), read).await {
                Ok(r) => r,
                Err(_) => return Err(BlockEnded::Shutdown),
            }
        }
    };
    match reply {
        Ok(Value::BulkString(item)) => Ok(Some(Bytes::from(item))),
        Ok(_) => Ok(None),
        // The key moved away (cluster slot migration) or was deleted
        // while the take waited: take again.
        Err(e) if e.code() == Some("UNBLOCKED") => Ok(None),
        Err(e) => Err(BlockEnded::Failed(e)),
    }
}

impl Inner {
    /// Starts one attempt on the handler runtime; the item is held.
    pub fn spawn_attempt(
        self: &Arc<Self>,
        item: Bytes,
        delivery: u32,
        permits: Permits,
        chans: &Chans,
    ) {
        let inner = self.clone();
        let chans = chans.clone();
        self.shared.tracker.spawn_on(
            async move { inner.attempt(item, delivery, permits, chans).await },
            &self.shared.handlers,
        );
    }

    /// Runs one attempt and settles the item: remove, retry, or dead
    /// letter.
    async fn attempt(self: Arc<Self>, item: Bytes, delivery: u32, permits: Permits, chans: Chans) {
        let spec = &self.spec;
        let refuse = if delivery > spec.max_deliveries {
            Some(format!(
                "delivered {delivery} times without an outcome (the consumers handling it stopped)"
            ))
        } else if item.len() as u64 > self.shared.max_payload {
            Some(format!(
                "the item of {} bytes is larger than max_payload ({} bytes)",
                item.len(),
                self.shared.max_payload
            ))
        } else {
            None
        };
        if let Some(reason) = refuse {
            drop(permits);
            settle::dead_letter(&self, &item, delivery, &reason).await;
            return;
        }
        let account = self.shared.stats.open();
        let ran = dispatch::run_delivery(
            &self.handler,
            Message {
                channel: &spec.list,
                address: &self.address,
                payload: item.clone(),
                stream: None,
                origin: Some(Origin::List { delivery }),
            },
            account,
            &self.route_metrics,
            &self.shared,
        )
        .await;
        drop(permits);
        match ran {
            Ran::Ok => {
                // Removed (and released) by the settler once the output is
                // in the log files.
                if let Err(unsent) = chans.settled.send(item) {
                    self.release(&unsent.0);
                }
            }
            Ran::Failed(reason) if delivery >= spec.max_deliveries => {
                settle::dead_letter(&self, &item, delivery, &reason).await;
            }
            Ran::Failed(_) => {
                let wait = backoff(delivery);
                self.counters.retried.fetch_add(1, Ordering::Relaxed);
                tracing::info!(component = %self.handler.component, list = %spec.list, delivery, retry_in = ?wait, "will retry the item");
                if let Err(unsent) = chans.retries.send(Retry {
                    item,
                    delivery,
                    wait,
                }) {
                    // Shutting down: handed back with the processing list.
                    self.release(&unsent.0.item);
                }
            }
            Ran::CutShort => {
                // Stays in the processing list, handed back at shutdown.
                self.release(&item);
            }
        }
    }
}

/// Hands failed items to a handler again once their backoff has passed,
/// as long as they are still in this consumer's processing list.
pub async fn retry_loop(
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
                let permit = tokio::select! {
                    _ = shutdown.cancelled() => {
                        waiting.insert(key, r);
                        break;
                    }
                    p = inner.capacity.acquire() => p,
                };
                let counted = async {
                    let mut conn = inner.commands.get().await?;
                    let r = scripts::count_held(&mut conn, &spec.keys, &r.item).await;
                    inner.commands.check(&r).await;
                    r
                };
                match counted.await {
                    Ok(Some(delivery)) => inner.spawn_attempt(r.item, delivery, permit, &chans),
                    Ok(None) => {
                        tracing::info!(list = %spec.list, "the item to retry was handed back to the queue meanwhile (this consumer's heartbeat had expired)");
                        inner.release(&r.item);
                    }
                    Err(e) => {
                        tracing::warn!(list = %spec.list, reason = %describe(&e), "cannot retry the item now; trying again shortly");
                        seq += 1;
                        due.push(Reverse((Instant::now() + RECONNECT_MAX, seq)));
                        waiting.insert(seq, r);
                    }
                }
            }
        }
    }
    if !waiting.is_empty() {
        tracing::info!(list = %spec.list, items = waiting.len(), "items waiting for a retry are handed back to the queue at shutdown");
    }
}
