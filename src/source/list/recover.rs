//! Nothing is lost when a consumer dies: every consumer keeps a heartbeat
//! key alive (it expires after `claim_idle`) and its name in the list's
//! registry set; every live consumer looks over the registry each beat and
//! hands the processing list of a consumer whose heartbeat expired back to
//! the queue (one script, which checks the heartbeat again and forgets the
//! consumer). A consumer (re)connecting takes up its own processing list
//! first; at shutdown it hands back what is left.
//!
//! A consumer stalled past `claim_idle` (Redis unreachable) is taken for
//! dead: its items are handed back and may run twice; it says so when its
//! next heartbeat finds the old one gone.
//!
//! Not owned here: the keys and scripts (`keys`, `scripts`), running items
//! (`consume`).

use super::running::{Chans, Inner};
use super::scripts;
use crate::source::connect::describe;
use bytes::Bytes;
use redis::Value;
use redis::aio::ConnectionLike;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How often a consumer beats and looks for dead ones: a quarter of
/// `claim_idle`, within bounds.
pub fn beat_every(claim_idle: Duration) -> Duration {
    (claim_idle / 4).clamp(Duration::from_millis(25), Duration::from_secs(15))
}

/// Writes this consumer's heartbeat (expiring after `claim_idle`) and
/// registers it. Says so when the previous heartbeat had expired.
pub async fn beat(conn: &mut impl ConnectionLike, inner: &Inner) -> redis::RedisResult<()> {
    let spec = &inner.spec;
    let mut pipe = redis::pipe();
    pipe.cmd("SET")
        .arg(&spec.keys.heartbeat)
        .arg(format!("pid {}", std::process::id()))
        .arg("PX")
        .arg(spec.claim_idle.as_millis() as u64)
        .arg("GET")
        .cmd("SADD")
        .arg(&spec.keys.consumers)
        .arg(&spec.consumer)
        .ignore();
    let (previous,): (Value,) = pipe.query_async(conn).await?;
    if inner.beaten.swap(true, Ordering::Relaxed) && previous == Value::Nil {
        tracing::warn!(list = %spec.list, consumer = %spec.consumer, claim_idle = ?spec.claim_idle, "this consumer's heartbeat had expired (redis was out of reach for longer than claim_idle): other consumers may have handed its items back to the queue, and those may run twice");
    }
    Ok(())
}

/// Beats every [`beat_every`] until `stop` (after the drain), and hands the
/// processing lists of dead consumers back until `shutdown`.
pub async fn heartbeat_loop(
    inner: Arc<Inner>,
    shutdown: CancellationToken,
    stop: CancellationToken,
) {
    let mut tick = tokio::time::interval(beat_every(inner.spec.claim_idle));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Not at once: the reader beats when it connects.
    tick.reset();
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let beaten = async {
            let mut conn = inner.commands.get().await?;
            let r = beat(&mut conn, &inner).await;
            inner.commands.check(&r).await;
            r
        };
        if let Err(e) = beaten.await {
            // The reader reports a lost connection; this only says it here.
            tracing::debug!(list = %inner.spec.list, reason = %describe(&e), "cannot write the heartbeat now");
        }
        if !shutdown.is_cancelled()
            && let Err(e) = take_over(&inner).await
        {
            tracing::debug!(list = %inner.spec.list, reason = %describe(&e), "cannot look for dead consumers now");
        }
    }
}

/// Hands the processing list of every registered consumer whose heartbeat
/// expired back to the queue.
async fn take_over(inner: &Inner) -> redis::RedisResult<()> {
    let spec = &inner.spec;
    let mut conn = inner.commands.get().await?;
    let r = async {
        let members: Vec<String> = redis::cmd("SMEMBERS")
            .arg(&spec.keys.consumers)
            .query_async(&mut conn)
            .await?;
        let others: Vec<&String> = members.iter().filter(|c| **c != spec.consumer).collect();
        if others.is_empty() {
            return Ok(());
        }
        let mut pipe = redis::pipe();
        for c in &others {
            pipe.cmd("EXISTS").arg(spec.keys.heartbeat_of(c));
        }
        let alive: Vec<bool> = pipe.query_async(&mut conn).await?;
        for (c, alive) in others.into_iter().zip(alive) {
            if alive {
                continue;
            }
            // The script checks the heartbeat again: a consumer that came
            // back meanwhile keeps its list.
            if let Some(n) = scripts::hand_back(&mut conn, &spec.keys, c, false).await?
                && n > 0
            {
                inner.counters.recovered.fetch_add(n, Ordering::Relaxed);
                tracing::info!(list = %spec.list, consumer = %c, items = n, "handed the processing list of a dead consumer (its heartbeat expired) back to the queue");
            }
        }
        Ok(())
    }
    .await;
    inner.commands.check(&r).await;
    r
}

/// Takes up the items of this consumer's processing list that this process
/// does not hold (`first`: left by a previous process of the same name),
/// the item taken first first, each as its slot frees up.
pub async fn resume_own(
    inner: &Arc<Inner>,
    conn: &mut impl ConnectionLike,
    chans: &Chans,
    shutdown: &CancellationToken,
    first: bool,
) -> redis::RedisResult<()> {
    let spec = &inner.spec;
    let items: Vec<Vec<u8>> = redis::cmd("LRANGE")
        .arg(&spec.keys.processing)
        .arg(0)
        .arg(-1)
        .query_async(conn)
        .await?;
    let mut held: HashMap<Bytes, usize> = inner.held_now();
    let mut resumed = 0u64;
    // The left end holds the item taken last.
    for item in items.into_iter().rev() {
        let item = Bytes::from(item);
        if let Some(n) = held.get_mut(&item)
            && *n > 0
        {
            *n -= 1;
            continue;
        }
        let permit = tokio::select! {
            _ = shutdown.cancelled() => break,
            p = inner.capacity.acquire() => p,
        };
        let Some(delivery) = scripts::count_held(conn, &spec.keys, &item).await? else {
            continue;
        };
        inner.hold(&item);
        inner.spawn_attempt(item, delivery, permit, chans);
        resumed += 1;
    }
    if resumed > 0 {
        if first {
            inner.counters.resumed.fetch_add(resumed, Ordering::Relaxed);
        }
        tracing::info!(list = %spec.list, consumer = %spec.consumer, items = resumed, "took up this consumer's own processing list");
    }
    Ok(())
}

/// At shutdown: deletes this consumer's heartbeat and moves what is left in
/// its processing list back to the queue. `None` when Redis did not answer
/// (a live consumer hands them back once the heartbeat has expired).
pub async fn hand_back_own(inner: &Inner) -> Option<u64> {
    let spec = &inner.spec;
    let handed = async {
        let mut conn = inner.commands.get().await?;
        let r = scripts::hand_back(&mut conn, &spec.keys, &spec.consumer, true).await;
        inner.commands.check(&r).await;
        r
    };
    match tokio::time::timeout(Duration::from_secs(5), handed).await {
        Ok(Ok(n)) => {
            let n = n.unwrap_or(0);
            if n > 0 {
                tracing::info!(list = %spec.list, consumer = %spec.consumer, items = n, "handed the items left in this consumer's processing list back to the queue");
            }
            Some(n)
        }
        Ok(Err(e)) => {
            tracing::warn!(list = %spec.list, consumer = %spec.consumer, reason = %describe(&e), "cannot hand the processing list back at shutdown; another consumer will once this one's heartbeat expires");
            None
        }
        Err(_) => {
            tracing::warn!(list = %spec.list, consumer = %spec.consumer, "handing the processing list back took too long; another consumer will once this one's heartbeat expires");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beats_are_a_quarter_of_claim_idle_within_bounds() {
        let ms = Duration::from_millis;
        // (claim_idle, beat) in milliseconds.
        for (claim_idle, beat) in [
            (2000, 500),
            (60_000, 15_000),
            (3_600_000, 15_000),
            (100, 25),
        ] {
            assert_eq!(
                beat_every(ms(claim_idle)),
                ms(beat),
                "claim_idle {claim_idle} ms"
            );
        }
    }
}
