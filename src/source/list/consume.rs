//! Taking items and running them: the reader (a connection of its own,
//! reconnected by the shared policy, `source/reconnect.rs`; a slot held
//! before every take), one
//! attempt per item, and the retrier that hands failed items to a handler
//! again once their backoff has passed.
//!
//! Not owned here: removing and dead-lettering (`settle`), heartbeats and
//! the own processing list (`recover`), running a handler
//! (`dispatch::run_delivery`).

use super::running::{Chans, Inner};
use super::{recover, scripts, settle};
use crate::dispatch::{Permits, Ran};
use crate::source::connect::{Conn, RESPONSE_TIMEOUT, describe};
use crate::source::reading::{Refusals, finish_read, slots};
use crate::source::reconnect::{Ended, Reads, Reconnect, broken, open};
use crate::source::retry::{Waits, retrier, retry_wait};
use bytes::Bytes;
use redis::Value;
use spin_redis_sandbox::wasi::{Message, Origin};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// How long one blocking take waits for an item (`BLMOVE`).
const BLOCK: Duration = Duration::from_secs(1);
/// Items taken at once, at most.
const BATCH: usize = 128;

/// A failed item waiting for its next attempt.
pub struct Retry {
    pub item: Bytes,
    /// The attempt that failed.
    pub delivery: u32,
    pub wait: Duration,
}

impl Waits for Retry {
    fn wait(&self) -> Duration {
        self.wait
    }
}

/// Reads the list until `shutdown`, reconnecting by the shared policy.
pub async fn read_loop(inner: Arc<Inner>, chans: Chans, shutdown: CancellationToken) {
    let spec = &inner.spec;
    let mut started = false;
    let mut reconnect = Reconnect::new(&spec.endpoint, Reads::List(&spec.list), &inner.link);
    loop {
        let failures = reconnect.failures();
        let ended = read_session(&inner, &chans, &shutdown, &mut started, failures).await;
        if !reconnect.after(ended, &shutdown).await {
            return;
        }
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
    let (mut conn, up) = match open(shutdown, &inner.link, failures > 0, connect).await {
        Ok(opened) => opened,
        Err(ended) => return ended,
    };
    let shown = spec.endpoint.shown();
    if failures > 0 {
        tracing::info!(address = %shown, list = %spec.list, consumer = %spec.consumer, "reconnected to redis; reading the list again");
    } else {
        tracing::info!(address = %shown, list = %spec.list, consumer = %spec.consumer, processing = %spec.keys.processing, "reading the list");
    }
    // This consumer's own processing list: left by a previous process of
    // the same name, or by an attempt that could not be settled.
    match recover::resume_own(inner, &mut conn, chans, shutdown, !*started).await {
        Ok(()) => *started = true,
        Err(e) => return up.lost(describe(&e)),
    }
    let mut want = 1;
    let mut refused = Refusals::default();
    loop {
        // Capacity first: one slot (waiting for it), more if free.
        let Some(mut permits) = slots(&inner.capacity, want, shutdown).await else {
            return Ended::Shutdown;
        };
        let n = permits.len();
        let taken = match scripts::take(&mut conn, &spec.keys, n).await {
            Ok(t) => t,
            Err(e) if !broken(&e) => {
                // Refused (such as a key of another type): said, and tried
                // again later.
                if let Some(attempts) = refused.note() {
                    tracing::warn!(list = %spec.list, reason = %describe(&e), attempts, "redis refused to take from the list; retrying");
                }
                if !Refusals::pause(permits, shutdown).await {
                    return Ended::Shutdown;
                }
                continue;
            }
            Err(e) => return up.lost(describe(&e)),
        };
        refused.reset();
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
                        Err(e) => return up.lost(describe(&e)),
                    };
                    inner.hold(&item);
                    inner.spawn_attempt(item, delivery, permit, chans);
                }
                Ok(None) => {}
                Err(BlockEnded::Shutdown) => return Ended::Shutdown,
                Err(BlockEnded::Failed(e)) if broken(&e) => return up.lost(describe(&e)),
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
    let Some(read) = finish_read(cmd.query_async::<Value>(conn), BLOCK, shutdown).await else {
        return Err(BlockEnded::Shutdown);
    };
    match read.reply {
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
        let message = Message {
            channel: &spec.list,
            address: &self.address,
            payload: item.clone(),
            stream: None,
            origin: Some(Origin::List { delivery }),
        };
        let ran = self.run_attempt(message).await;
        drop(permits);
        match ran {
            Ran::Ok => {
                // Removed (and released) by the settler once the output is
                // in the log files.
                if let Err(unsent) = chans.handled.send(item) {
                    self.release(&unsent.0);
                }
            }
            Ran::Failed(reason) if delivery >= spec.max_deliveries => {
                settle::dead_letter(&self, &item, delivery, &reason).await;
            }
            Ran::Failed(_) => {
                let wait = retry_wait(delivery);
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
    rx: mpsc::UnboundedReceiver<Retry>,
    shutdown: CancellationToken,
) {
    let take_up = |r: Retry, permit| {
        let (inner, chans) = (inner.clone(), chans.clone());
        async move { inner.take_up(r, permit, &chans).await }
    };
    let left = retrier(rx, &inner.capacity, &shutdown, |_| true, take_up).await;
    if left.len() > 0 {
        tracing::info!(list = %inner.spec.list, items = left.len(), "items waiting for a retry are handed back to the queue at shutdown");
    }
}

impl Inner {
    /// Starts the next attempt of a waiting retry, if the item is still in
    /// this consumer's processing list; hands it back when Redis cannot say.
    async fn take_up(self: &Arc<Self>, r: Retry, permit: Permits, chans: &Chans) -> Option<Retry> {
        let spec = &self.spec;
        let counted = async {
            let mut conn = self.commands.get().await?;
            let r = scripts::count_held(&mut conn, &spec.keys, &r.item).await;
            self.commands.check(&r).await;
            r
        };
        match counted.await {
            Ok(Some(delivery)) => self.spawn_attempt(r.item, delivery, permit, chans),
            Ok(None) => {
                tracing::info!(list = %spec.list, "the item to retry was handed back to the queue meanwhile (this consumer's heartbeat had expired)");
                self.release(&r.item);
            }
            Err(e) => {
                tracing::warn!(list = %spec.list, reason = %describe(&e), "cannot retry the item now; trying again shortly");
                return Some(r);
            }
        }
        None
    }
}
