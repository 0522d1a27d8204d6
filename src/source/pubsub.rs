//! Redis subscriptions: one connection per distinct address, `SUBSCRIBE` to
//! every channel and `PSUBSCRIBE` to every pattern bound at that address,
//! reconnect and resubscribe forever. On a single server the connection is
//! our own ([`super::subscriber`], parsing with [`super::resp`]): messages
//! go from its read buffer to `deliver` with nothing buffered between, and
//! a payload larger than `max_payload` is streamed past ([`Payload::TooLarge`]).
//! On a Redis Cluster (`cluster = true`), redis-rs's
//! RESP3 cluster client subscribes with `SUBSCRIBE` and `PSUBSCRIBE`
//! (messages of the whole cluster: a cluster forwards every `PUBLISH` to all
//! its nodes) or, for `sharded` channels, `SSUBSCRIBE` on the node of each
//! channel's slot (Redis has no sharded patterns).
//!
//! A message that matches a pattern and a subscribed channel (or two
//! patterns) is delivered by Redis once for each, and handed on once for
//! each: every trigger runs once.
//!
//! The connection is read continuously: each message is handed to a
//! non-blocking `deliver` callback (the dispatcher queues it or drops and
//! counts it), so a slow handler can never make Redis cut this subscriber off
//! for its output buffer. Losing the connection, retrying it and pinging it
//! follow the shared policy ([`super::reconnect`]: capped backoff, a ping
//! watchdog beside the reading).
//!
//! Connecting and subscribing (all channels of an address in one `SUBSCRIBE`,
//! all its patterns in one `PSUBSCRIBE`) are bounded by [`CONNECT_TIMEOUT`].
//!
//! A cluster connection follows `MOVED` and failovers itself; a node
//! connection that drops, or a sharded subscription that a slot migration
//! ends (`SUNSUBSCRIBE` from the server), ends the session here, and the
//! whole subscription is made again with the same backoff and logs.
//!
//! The channels and patterns wanted may change while running (a reload):
//! the session brings its connection to what is wanted
//! ([`super::subscriptions`]), so a channel that stays subscribed is never
//! dropped and resubscribed (pub/sub loses what is published while nobody is
//! subscribed).
//!
//! Knows nothing of wasm. Only the redacted address is ever logged.

use super::connect::{Endpoint, describe};
use super::reconnect::{Ended, Reads, Reconnect, Up, Watchdog, open};
use super::subscriber;
use super::subscriptions::{Wanted, change, follow};
use crate::ops::health::RedisLink;
use bytes::Bytes;
use redis::{PushKind, Value};
use std::future::Future;
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// How long connecting, authenticating and subscribing may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Receives every message: `(pattern, channel, payload)`, where `pattern`
/// is `Some` for a message to a pattern subscription and `channel` is the
/// channel it was published to. Must not block.
pub type Deliver = dyn Fn(Option<&str>, &str, Payload) + Send + Sync;

/// A message's payload as the subscriber received it.
pub enum Payload {
    Whole(Bytes),
    /// Larger than `max_payload`: its length; the reader streamed past it
    /// (single server; a cluster subscription's payloads arrive whole).
    TooLarge(u64),
}

/// Everything one subscriber needs.
pub struct Subscription {
    pub endpoint: Endpoint,
    /// What to subscribe to; a reload sends a new value.
    pub wanted: watch::Receiver<Wanted>,
    /// `SSUBSCRIBE` rather than `SUBSCRIBE` (cluster only).
    pub sharded: bool,
    /// Where the connection's state is reported (metrics, readiness).
    pub link: RedisLink,
    /// Larger payloads are not read whole (see [`Payload::TooLarge`]).
    pub max_payload: u64,
}

/// Runs until `shutdown`: connect, subscribe, read; on any loss, back off and
/// do it again.
pub async fn run(sub: Subscription, deliver: &Deliver, shutdown: CancellationToken) {
    let mut reconnect = Reconnect::new(&sub.endpoint, Reads::Channels, &sub.link);
    loop {
        let session = Session {
            sub: &sub,
            deliver,
            shutdown: &shutdown,
            failures: reconnect.failures(),
            reconnecting: reconnect.ever_connected(),
        };
        let ended = if sub.endpoint.cluster {
            session.cluster().await
        } else {
            session.single().await
        };
        if !reconnect.after(ended, &shutdown).await {
            return;
        }
    }
}

/// One connection attempt and what it reads until it is lost.
#[derive(Clone, Copy)]
struct Session<'a> {
    sub: &'a Subscription,
    deliver: &'a Deliver,
    shutdown: &'a CancellationToken,
    /// Failed attempts since the last session that got to read.
    failures: u32,
    /// Whether a session ever got to read.
    reconnecting: bool,
}

impl Session<'_> {
    /// Connects and subscribes within [`CONNECT_TIMEOUT`], unless shutdown
    /// comes first; reports the link up.
    async fn subscribe<T>(
        &self,
        connect: impl Future<Output = Result<T, String>>,
    ) -> Result<(T, Up), Ended> {
        let within = async {
            match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
                Ok(r) => r,
                Err(_) => Err(format!(
                    "connecting and subscribing took longer than {CONNECT_TIMEOUT:?}"
                )),
            }
        };
        open(self.shutdown, &self.sub.link, self.reconnecting, within).await
    }
}

/// A RESP3 cluster connection whose pushes go to `push`, subscribed.
async fn connect_cluster(
    sub: &Subscription,
    push: tokio::sync::mpsc::UnboundedSender<redis::PushInfo>,
    have: &mut Wanted,
    want: &Wanted,
) -> redis::RedisResult<redis::cluster_async::ClusterConnection> {
    let client = sub.endpoint.cluster_client(CONNECT_TIMEOUT, Some(push))?;
    let mut conn = client.get_async_connection().await?;
    follow(&mut conn, sub.sharded, have, want).await?;
    Ok(conn)
}

impl Session<'_> {
    /// One session on a single server, on a connection of our own
    /// ([`super::subscriber`]): it reads from the moment it is
    /// authenticated, so messages that arrive while it subscribes (or while
    /// a reload changes the subscriptions) are delivered at once.
    async fn single(self) -> Ended {
        let (sub, deliver, shutdown) = (self.sub, self.deliver, self.shutdown);
        let mut wanted = sub.wanted.clone();
        let mut have = Wanted::default();
        let want = wanted.borrow_and_update().clone();
        let connect = async {
            let conn = subscriber::connect(&sub.endpoint, sub.max_payload).await?;
            // Boxed: it outlives this future, and is polled by every
            // `select!` of the session.
            let mut reading = Box::pin(conn.reader.run(deliver));
            let mut commands = conn.commands;
            tokio::select! {
                reason = &mut reading => return Err(reason),
                r = follow(&mut commands, false, &mut have, &want) => r.map_err(|e| describe(&e))?,
            }
            Ok((reading, commands, conn.pinger))
        };
        let ((mut reading, mut commands, pinger), up) = match self.subscribe(connect).await {
            Ok(opened) => opened,
            Err(ended) => return ended,
        };
        if self.failures > 0 {
            tracing::info!(address = %sub.endpoint.shown(), channels = ?have.channels, patterns = ?have.patterns, "reconnected to redis and resubscribed");
        } else {
            tracing::info!(address = %sub.endpoint.shown(), channels = ?have.channels, patterns = ?have.patterns, "subscribed");
        }
        let mut watchdog = Watchdog::start().await;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return Ended::Shutdown,
                reason = &mut reading => return up.lost(reason),
                reason = commands.unsolicited() => return up.lost(reason),
                changed = wanted.changed() => {
                    if changed.is_err() {
                        return Ended::Shutdown;
                    }
                    let want = wanted.borrow_and_update().clone();
                    let change = change(&mut commands, false, &mut have, &want, &sub.endpoint);
                    let changed = tokio::select! {
                        reason = &mut reading => Err(reason),
                        r = change => r,
                    };
                    if let Err(reason) = changed {
                        return up.lost(reason);
                    }
                }
                reason = watchdog.dead(|| pinger.ping()) => return up.lost(reason),
            }
        }
    }

    /// One session on a Redis Cluster: a RESP3 cluster client whose pushes
    /// carry the messages.
    async fn cluster(self) -> Ended {
        let (sub, deliver, shutdown) = (self.sub, self.deliver, self.shutdown);
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let mut wanted = sub.wanted.clone();
        let mut have = Wanted::default();
        let want = wanted.borrow_and_update().clone();
        let connect = async {
            connect_cluster(sub, tx, &mut have, &want)
                .await
                .map_err(|e| describe(&e))
        };
        let (mut conn, up) = match self.subscribe(connect).await {
            Ok(opened) => opened,
            Err(ended) => return ended,
        };
        let how = if sub.sharded {
            "SSUBSCRIBE"
        } else {
            "SUBSCRIBE"
        };
        let subscribed = match self.failures {
            0 => "subscribed",
            _ => "reconnected to the redis cluster and resubscribed",
        };
        tracing::info!(address = %sub.endpoint.shown(), channels = ?have.channels, patterns = ?have.patterns, how, "{subscribed}");
        let mut watchdog = Watchdog::start().await;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => return Ended::Shutdown,
                push = rx.recv() => match push {
                    None => return up.lost("the cluster client stopped".into()),
                    Some(p) => match p.kind {
                        PushKind::Message | PushKind::SMessage => {
                            if let [Value::BulkString(channel), Value::BulkString(payload)] = &p.data[..]
                                && let Ok(channel) = std::str::from_utf8(channel)
                            {
                                deliver(None, channel, Payload::Whole(Bytes::copy_from_slice(payload)));
                            }
                        }
                        PushKind::PMessage => {
                            if let [Value::BulkString(pattern), Value::BulkString(channel), Value::BulkString(payload)] = &p.data[..]
                                && let (Ok(pattern), Ok(channel)) = (std::str::from_utf8(pattern), std::str::from_utf8(channel))
                            {
                                deliver(Some(pattern), channel, Payload::Whole(Bytes::copy_from_slice(payload)));
                            }
                        }
                        PushKind::Disconnection => return up.lost("a cluster node closed the connection".into()),
                        // A slot migration ends the sharded subscriptions of the
                        // slot: subscribe again where the slot now is.
                        PushKind::SUnsubscribe => return up.lost("a sharded subscription ended (slot migrated)".into()),
                        _ => {}
                    },
                },
                changed = wanted.changed() => {
                    if changed.is_err() {
                        return Ended::Shutdown;
                    }
                    let want = wanted.borrow_and_update().clone();
                    if let Err(reason) = change(&mut conn, sub.sharded, &mut have, &want, &sub.endpoint).await {
                        return up.lost(reason);
                    }
                }
                reason = watchdog.dead(|| {
                    let mut conn = conn.clone();
                    async move { redis::cmd("PING").query_async::<Value>(&mut conn).await }
                }) => return up.lost(reason),
            }
        }
    }
}
