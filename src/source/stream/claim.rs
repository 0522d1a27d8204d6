//! The claimer of a stream trigger: takes over entries idle past
//! `claim_idle` on any consumer (`XAUTOCLAIM`), sweeps stale consumers
//! first, and keeps the group's pending and lag gauges current
//! (`XINFO GROUPS`, which also tells where the group stands should it be
//! lost).
//!
//! Not owned here: running what it claims (`attempt.rs`), which consumers
//! are stale (`consumers.rs`).

use super::read::BATCH;
use super::reply::{autoclaim_reply, pairs, text};
use super::running::{Chans, Held, Inner};
use crate::source::connect::describe;
use crate::source::reading::slots;
use redis::Value;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// Takes over entries idle past `claim_idle` on any consumer, and keeps the
/// group's pending and lag gauges current.
pub(super) async fn claim_loop(inner: Arc<Inner>, chans: Chans, shutdown: CancellationToken) {
    let every =
        (inner.spec.claim_idle / 4).clamp(Duration::from_millis(100), Duration::from_secs(15));
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Not at once: the reader first takes up this consumer's own pending
    // entries, which are not "claimed from others".
    tick.reset();
    let mut last_sweep: Option<Instant> = None;
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        // Stale consumers: at the first tick, then every claim_idle. Before
        // claiming, so that a consumer whose entries are about to be taken
        // over is seen with them (and kept).
        if last_sweep.is_none_or(|at| at.elapsed() >= inner.spec.claim_idle) {
            last_sweep = Some(Instant::now());
            inner.remove_stale_consumers().await;
        }
        if let Err(e) = claim_round(&inner, &chans, &shutdown).await {
            // The reader reports a lost connection; this only says it here.
            tracing::debug!(stream = %inner.spec.stream, reason = %describe(&e), "cannot claim idle entries now");
        }
        if let Ok((pending, lag)) = group_info(&inner).await {
            let gauge = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
            inner.stream_metrics.pending.set(gauge(pending));
            if let Some(lag) = lag {
                inner.stream_metrics.lag.set(gauge(lag));
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
        // Like reading, claiming waits while failed entries wait: a later
        // round takes up what is left.
        if inner.room.is_full() {
            return Ok(());
        }
        let Some(permits) = slots(&inner.capacity, BATCH, shutdown).await else {
            return Ok(());
        };
        let mut cmd = spec.group_cmd("XAUTOCLAIM");
        cmd.arg(&spec.consumer)
            .arg(spec.claim_idle.as_millis() as u64)
            .arg(&cursor)
            .arg("COUNT")
            .arg(permits.len());
        let reply: Value = inner.commands.query(&cmd).await?;
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
pub(super) async fn group_info(inner: &Inner) -> redis::RedisResult<(u64, Option<u64>)> {
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
        if let Some(id) = get("last-delivered-id").and_then(text) {
            inner.saw(&id);
        }
        return Ok((int("pending").unwrap_or(0), int("lag")));
    }
    Ok((0, None))
}
