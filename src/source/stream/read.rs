//! The reader of a stream trigger: a connection of its own (a blocking
//! `XREADGROUP` would hold up every command queued behind it), reconnected
//! by the shared policy (`reconnect.rs`); the group made if missing, and
//! made again where this process last saw it if it was lost; this
//! consumer's own pending entries first, then new ones, as many at once as
//! handler slots are free, pausing while the most failed entries wait.
//!
//! Not owned here: running an entry (`attempt.rs`), taking over other
//! consumers' entries (`claim.rs`).

use super::claim::group_info;
use super::reply::stream_entries;
use super::running::{Chans, Inner};
use crate::source::connect::{Conn, RESPONSE_TIMEOUT, describe};
use crate::source::reading::{Refusals, finish_read, slots};
use crate::source::reconnect::{Ended, Reads, Reconnect, broken, open};
use redis::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

/// How long one read waits for new entries (`BLOCK`).
const BLOCK: Duration = Duration::from_secs(1);
/// Entries read or claimed at once, at most.
pub(super) const BATCH: usize = 128;

/// Reads the group until `shutdown`, reconnecting by the shared policy.
pub(super) async fn read_loop(inner: Arc<Inner>, chans: Chans, shutdown: CancellationToken) {
    let spec = &inner.spec;
    let mut reconnect = Reconnect::new(&spec.endpoint, Reads::Stream(&spec.stream), &inner.link);
    let mut reader = Reader {
        inner: inner.clone(),
        chans,
        shutdown: shutdown.clone(),
        own_pending: true,
    };
    loop {
        let ended = reader.session(reconnect.failures()).await;
        if !reconnect.after(ended, &shutdown).await {
            return;
        }
    }
}

/// The reader across its sessions.
struct Reader {
    inner: Arc<Inner>,
    chans: Chans,
    shutdown: CancellationToken,
    /// This consumer's own pending entries are yet to be read (once, when
    /// the process starts).
    own_pending: bool,
}

/// Creates the group (and the stream) if missing: at `start` the first
/// time, and where this process last saw the group once it had found it
/// (a group that vanished was lost, and `$` would skip what was added
/// since).
async fn ensure_group(conn: &mut Conn, inner: &Inner) -> redis::RedisResult<()> {
    let spec = &inner.spec;
    let lost = inner.group_known.load(Ordering::Acquire);
    let start = if lost {
        inner.recreate_at()
    } else {
        spec.start.clone()
    };
    let r: redis::RedisResult<Value> = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(&spec.stream)
        .arg(&spec.group)
        .arg(&start)
        .arg("MKSTREAM")
        .query_async(conn)
        .await;
    match r {
        Ok(_) if lost => {
            tracing::warn!(stream = %spec.stream, group = %spec.group, start = %start, "the consumer group was lost; made it again after the last entry this process saw delivered");
        }
        Ok(_) => {
            tracing::info!(stream = %spec.stream, group = %spec.group, start = %start, "created the consumer group");
        }
        Err(e) if e.code() == Some("BUSYGROUP") => {}
        Err(e) => return Err(e),
    }
    inner.group_known.store(true, Ordering::Release);
    Ok(())
}

impl Inner {
    /// Notes that the group delivered entry `id` (an `ms-seq` stream id).
    pub(super) fn saw(&self, id: &str) {
        let Some(id) = parse_id(id) else { return };
        let mut at = self.position.lock().unwrap_or_else(|p| p.into_inner());
        if at.is_none_or(|a| a < id) {
            *at = Some(id);
        }
    }

    /// Where a lost group is made again: after the newest entry this
    /// process knows was delivered, or the stream's start.
    fn recreate_at(&self) -> String {
        match *self.position.lock().unwrap_or_else(|p| p.into_inner()) {
            Some((ms, seq)) => format!("{ms}-{seq}"),
            None => "0".into(),
        }
    }
}

/// `ms-seq` (or `ms`) as numbers; `None` for anything else (`0-0` is kept).
fn parse_id(id: &str) -> Option<(u64, u64)> {
    let (ms, seq) = id.split_once('-').unwrap_or((id, "0"));
    Some((ms.parse().ok()?, seq.parse().ok()?))
}

/// Whether reading waits for failed entries to move on, and when that was
/// last said (at most once a minute: in an outage it pauses at every round
/// of retries).
#[derive(Default)]
struct Paused {
    now: bool,
    said: Option<Instant>,
}

impl Paused {
    /// Waits while the most failed entries wait for their retry; `false`
    /// at shutdown.
    async fn wait_for_room(&mut self, inner: &Inner, shutdown: &CancellationToken) -> bool {
        if !inner.room.is_full() {
            return true;
        }
        let spec = &inner.spec;
        if !self.now {
            self.now = true;
            if self
                .said
                .is_none_or(|at| at.elapsed() >= Duration::from_secs(60))
            {
                self.said = Some(Instant::now());
                tracing::info!(stream = %spec.stream, group = %spec.group, waiting = inner.room.waiting(), "reading paused while failed entries wait for their retry; the rest stays in the stream");
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => false,
            _ = inner.room.until_free() => true,
        }
    }

    /// Reading goes on.
    fn resumed(&mut self, inner: &Inner) {
        if self.now {
            self.now = false;
            tracing::debug!(stream = %inner.spec.stream, group = %inner.spec.group, "reading the stream again");
        }
    }
}

/// The `XREADGROUP` of `n` entries: this consumer's own pending ones after
/// `cursor`, or new ones (waiting up to [`BLOCK`]).
fn read_cmd(inner: &Inner, n: usize, cursor: Option<&str>) -> redis::Cmd {
    let spec = &inner.spec;
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
        .arg(cursor.unwrap_or(">"));
    cmd
}

impl Reader {
    /// One session: connect, make the group if missing, read until the
    /// connection is lost or shutdown.
    async fn session(&mut self, failures: u32) -> Ended {
        let Reader {
            inner,
            chans,
            shutdown,
            own_pending,
        } = self;
        let spec = &inner.spec;
        let connect = async {
            let mut conn = spec.endpoint.connect(RESPONSE_TIMEOUT + BLOCK).await?;
            ensure_group(&mut conn, &*inner).await?;
            // Where the group stands, should it be lost before this process
            // reads anything. (Only a hint: not worth failing the session.)
            let _ = group_info(&*inner).await;
            Ok::<_, redis::RedisError>(conn)
        };
        let (mut conn, up) = match open(shutdown, &inner.link, failures > 0, connect).await {
            Ok(opened) => opened,
            Err(ended) => return ended,
        };
        let reading = match failures {
            0 => "reading the stream",
            _ => "reconnected to redis; reading the stream again",
        };
        tracing::info!(address = %spec.endpoint.shown(), stream = %spec.stream, group = %spec.group, consumer = %spec.consumer, "{reading}");
        // `Some(id)`: reading this consumer's own pending entries after `id`.
        let mut cursor: Option<String> = own_pending.then(|| "0".to_string());
        let mut recovered = 0usize;
        let mut want = 1;
        let mut refused = Refusals::default();
        let mut paused = Paused::default();
        loop {
            // Room first: no new entry while the most failed ones wait for
            // their retry; the backlog stays in the stream.
            if !paused.wait_for_room(inner, shutdown).await {
                return Ended::Shutdown;
            }
            // Then capacity: one slot (waiting for it), more if free.
            let Some(permits) = slots(&inner.capacity, want, shutdown).await else {
                return Ended::Shutdown;
            };
            // Attempts that failed while the slots were awaited count too.
            if inner.room.is_full() {
                continue;
            }
            paused.resumed(inner);
            let n = permits.len();
            let cmd = read_cmd(inner, n, cursor.as_deref());
            // A read in flight is finished even when shutting down, so that what
            // it returns is handled rather than left pending.
            let Some(read) =
                finish_read(cmd.query_async::<Value>(&mut conn), BLOCK, shutdown).await
            else {
                return Ended::Shutdown;
            };
            let stopping = read.stopping;
            let entries = match read.reply {
                Ok(v) => stream_entries(v),
                Err(e) if e.code() == Some("NOGROUP") => {
                    // The stream or group was deleted (or Redis restarted empty).
                    tracing::warn!(stream = %spec.stream, group = %spec.group, "the consumer group is gone; creating it again");
                    if let Err(e) = ensure_group(&mut conn, &*inner).await {
                        return up.lost(describe(&e));
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
                    if let Some(attempts) = refused.note() {
                        tracing::warn!(stream = %spec.stream, group = %spec.group, reason = %describe(&e), attempts, "redis refused to read the stream; retrying");
                    }
                    if stopping {
                        return Ended::Shutdown;
                    }
                    if !Refusals::pause(permits, shutdown).await {
                        return Ended::Shutdown;
                    }
                    continue;
                }
                Err(e) => return up.lost(describe(&e)),
            };
            refused.reset();
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
                    Err(e) => return up.lost(describe(&e)),
                }
            } else {
                if let Some(last) = entries.last() {
                    inner.saw(&last.id);
                }
                entries.iter().map(|e| (e.id.clone(), 1)).collect()
            };
            let mut permits = permits.into_iter();
            for entry in entries {
                if entry.fields.is_none() {
                    // Deleted while pending: nothing to handle. (If this fails
                    // it is asked again at the next start.)
                    let _ = inner.commands.query::<Value>(&spec.xack(&entry.id)).await;
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_ids_are_read_as_numbers() {
        assert_eq!(parse_id("1700-3"), Some((1700, 3)));
        assert_eq!(parse_id("1700"), Some((1700, 0)));
        assert_eq!(parse_id("0-0"), Some((0, 0)));
        assert_eq!(parse_id("$"), None);
    }
}
