//! Redis subscriptions: one connection per distinct address, `SUBSCRIBE` to
//! every channel and `PSUBSCRIBE` to every pattern bound at that address,
//! reconnect and resubscribe forever. On a Redis Cluster (`cluster = true`),
//! a RESP3 cluster client subscribes with `SUBSCRIBE` and `PSUBSCRIBE`
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
//! for its output buffer. A lost connection is logged once, retried with
//! capped exponential backoff, and its recovery is logged; a server that is
//! down at start-up is retried the same way. A ping every
//! [`PING_INTERVAL`] notices a connection that died without closing; it runs
//! beside the reading, which never waits for the pong.
//!
//! Connecting and subscribing (all channels of an address in one `SUBSCRIBE`,
//! all its patterns in one `PSUBSCRIBE`) are bounded by [`CONNECT_TIMEOUT`]. The backoff goes back to its minimum
//! only after a connection stayed up for [`STABLE_AFTER`]: a server that
//! accepts and then drops every connection is retried at the capped pace,
//! not hammered.
//!
//! A cluster connection follows `MOVED` and failovers itself; a node
//! connection that drops, or a sharded subscription that a slot migration
//! ends (`SUNSUBSCRIBE` from the server), ends the session here, and the
//! whole subscription is made again with the same backoff and logs.
//!
//! The channels and patterns wanted may change while running (a reload):
//! the session subscribes to what was added and unsubscribes from what was
//! removed on the connection it has, so a channel that stays subscribed is
//! never dropped and resubscribed (pub/sub loses what is published while
//! nobody is subscribed).
//!
//! Knows nothing of wasm. Only the redacted address is ever logged.

use super::connect::{Endpoint, describe};
use crate::ops::health::RedisLink;
use bytes::Bytes;
use futures_util::{FutureExt as _, StreamExt as _};
use redis::{PushKind, Value};
use std::collections::BTreeSet;
use std::time::Duration;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub const PING_INTERVAL: Duration = Duration::from_secs(15);
/// How long a pong may take before the connection counts as dead.
const PING_TIMEOUT: Duration = Duration::from_secs(5);
/// Messages already received that are delivered in one go before the
/// subscriber looks at shutdown and pings again.
const READY_BATCH: usize = 256;
/// How long connecting, authenticating and subscribing may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a connection must stay up before the backoff starts over.
pub const STABLE_AFTER: Duration = Duration::from_secs(30);
const BACKOFF_START: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Receives every message: `(pattern, channel, payload)`, where `pattern`
/// is `Some` for a message to a pattern subscription and `channel` is the
/// channel it was published to. Must not block.
pub type Deliver = dyn Fn(Option<&str>, &str, Bytes) + Send + Sync;

/// The channels and patterns one subscription wants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Wanted {
    pub channels: BTreeSet<String>,
    /// Subscribed with `PSUBSCRIBE` (never sharded).
    pub patterns: BTreeSet<String>,
}

impl Wanted {
    /// What `self` wants that `have` lacks: (channels, patterns).
    fn beyond(&self, have: &Wanted) -> (Vec<String>, Vec<String>) {
        (
            self.channels.difference(&have.channels).cloned().collect(),
            self.patterns.difference(&have.patterns).cloned().collect(),
        )
    }
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
}

/// Why one connection attempt or session ended.
enum Ended {
    Shutdown,
    /// The connection failed; `up_for` is how long it had been subscribed
    /// (`None`: it never got that far).
    Lost {
        reason: String,
        up_for: Option<Duration>,
    },
}

/// Runs until `shutdown`: connect, subscribe, read; on any loss, back off and
/// do it again.
pub async fn run(sub: Subscription, deliver: &Deliver, shutdown: CancellationToken) {
    let mut backoff = BACKOFF_START;
    let mut failures: u32 = 0;
    let mut ever_connected = false;
    loop {
        let ended = session(&sub, deliver, &shutdown, failures, ever_connected).await;
        sub.link.lost();
        match ended {
            Ended::Shutdown => return,
            Ended::Lost { reason, up_for } => {
                if let Some(up_for) = up_for {
                    ever_connected = true;
                    tracing::warn!(address = %sub.endpoint.shown(), reason = %reason, "lost the connection to redis; reconnecting");
                    failures = 1;
                    if up_for >= STABLE_AFTER {
                        backoff = BACKOFF_START;
                    }
                } else {
                    if failures == 0 || failures.is_multiple_of(20) {
                        tracing::warn!(address = %sub.endpoint.shown(), reason = %reason, attempts = failures + 1, "cannot connect to redis; retrying");
                    } else {
                        tracing::debug!(address = %sub.endpoint.shown(), reason = %reason, "still cannot connect to redis");
                    }
                    failures += 1;
                }
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

async fn session(
    sub: &Subscription,
    deliver: &Deliver,
    shutdown: &CancellationToken,
    failures: u32,
    reconnecting: bool,
) -> Ended {
    if sub.endpoint.cluster {
        return cluster_session(sub, deliver, shutdown, failures, reconnecting).await;
    }
    let mut wanted = sub.wanted.clone();
    let mut have = Wanted::default();
    let want = wanted.borrow_and_update().clone();
    let connect = async {
        let client = sub.endpoint.client()?;
        let (mut sink, stream) = client.get_async_pubsub().await?.split();
        follow(&mut sink, false, &mut have, &want).await?;
        Ok::<_, redis::RedisError>((sink, stream))
    };
    let (mut sink, mut stream) = tokio::select! {
        _ = shutdown.cancelled() => return Ended::Shutdown,
        r = tokio::time::timeout(CONNECT_TIMEOUT, connect) => match r {
            Ok(Ok(p)) => p,
            Ok(Err(e)) => return Ended::Lost { reason: describe(&e), up_for: None },
            Err(_) => {
                return Ended::Lost {
                    reason: format!("connecting and subscribing took longer than {CONNECT_TIMEOUT:?}"),
                    up_for: None,
                };
            }
        },
    };
    sub.link.connected(reconnecting);
    if failures > 0 {
        tracing::info!(address = %sub.endpoint.shown(), channels = ?have.channels, patterns = ?have.patterns, "reconnected to redis and resubscribed");
    } else {
        tracing::info!(address = %sub.endpoint.shown(), channels = ?have.channels, patterns = ?have.patterns, "subscribed");
    }
    let since = std::time::Instant::now();
    let lost = |reason: String| Ended::Lost {
        reason,
        up_for: Some(since.elapsed()),
    };
    let mut ping = tokio::time::interval(PING_INTERVAL);
    ping.tick().await; // the first tick is immediate
    // The ping in flight, if any: a task of its own, so that reading goes on
    // while it waits for the pong.
    let mut pong: Option<tokio::task::JoinHandle<Result<(), String>>> = None;
    let ended = loop {
        tokio::select! {
            _ = shutdown.cancelled() => break Ended::Shutdown,
            msg = stream.next() => match msg {
                Some(first) => {
                    // Take what else has already arrived without going
                    // round the select (a flood comes in thousands per
                    // read); bounded, so shutdown and pings are still seen.
                    let ready = std::iter::from_fn(|| stream.next().now_or_never().flatten());
                    for msg in std::iter::once(first).chain(ready.take(READY_BATCH)) {
                        let payload = Bytes::copy_from_slice(msg.get_payload_bytes());
                        if msg.from_pattern() {
                            // A pattern is one of ours, so it is text.
                            let pattern: String = msg.get_pattern().unwrap_or_default();
                            deliver(Some(&pattern), msg.get_channel_name(), payload);
                        } else {
                            deliver(None, msg.get_channel_name(), payload);
                        }
                    }
                }
                None => break lost("the server closed the connection".into()),
            },
            changed = wanted.changed() => {
                if changed.is_err() {
                    break Ended::Shutdown;
                }
                let want = wanted.borrow_and_update().clone();
                if let Err(reason) = change(&mut sink, false, &mut have, &want, &sub.endpoint).await {
                    break lost(reason);
                }
            }
            _ = ping.tick(), if pong.is_none() => {
                let mut sink = sink.clone();
                pong = Some(tokio::spawn(async move {
                    match tokio::time::timeout(PING_TIMEOUT, sink.ping::<redis::Value>()).await {
                        Ok(Ok(_)) => Ok(()),
                        Ok(Err(e)) => Err(format!("ping failed: {}", describe(&e))),
                        Err(_) => Err("ping timed out".into()),
                    }
                }));
            }
            r = async { pong.as_mut().expect("invariant: guarded by the condition").await }, if pong.is_some() => {
                pong = None;
                match r {
                    Ok(Ok(())) => {}
                    Ok(Err(reason)) => break lost(reason),
                    Err(e) => break lost(format!("ping task failed: {e}")),
                }
            }
        }
    };
    if let Some(p) = pong {
        p.abort();
    }
    ended
}

/// One session on a Redis Cluster: a RESP3 cluster client whose pushes carry
/// the messages.
async fn cluster_session(
    sub: &Subscription,
    deliver: &Deliver,
    shutdown: &CancellationToken,
    failures: u32,
    reconnecting: bool,
) -> Ended {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut wanted = sub.wanted.clone();
    let mut have = Wanted::default();
    let want = wanted.borrow_and_update().clone();
    let connect = async {
        let client = sub.endpoint.cluster_client(CONNECT_TIMEOUT, Some(tx))?;
        let mut conn = client.get_async_connection().await?;
        follow(&mut conn, sub.sharded, &mut have, &want).await?;
        Ok::<_, redis::RedisError>(conn)
    };
    let mut conn = tokio::select! {
        _ = shutdown.cancelled() => return Ended::Shutdown,
        r = tokio::time::timeout(CONNECT_TIMEOUT, connect) => match r {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => return Ended::Lost { reason: describe(&e), up_for: None },
            Err(_) => {
                return Ended::Lost {
                    reason: format!("connecting and subscribing took longer than {CONNECT_TIMEOUT:?}"),
                    up_for: None,
                };
            }
        },
    };
    sub.link.connected(reconnecting);
    let how = if sub.sharded {
        "SSUBSCRIBE"
    } else {
        "SUBSCRIBE"
    };
    if failures > 0 {
        tracing::info!(address = %sub.endpoint.shown(), channels = ?have.channels, patterns = ?have.patterns, how, "reconnected to the redis cluster and resubscribed");
    } else {
        tracing::info!(address = %sub.endpoint.shown(), channels = ?have.channels, patterns = ?have.patterns, how, "subscribed");
    }
    let since = std::time::Instant::now();
    let lost = |reason: String| Ended::Lost {
        reason,
        up_for: Some(since.elapsed()),
    };
    let mut ping = tokio::time::interval(PING_INTERVAL);
    ping.tick().await; // the first tick is immediate
    let mut pong: Option<tokio::task::JoinHandle<Result<(), String>>> = None;
    let ended = loop {
        tokio::select! {
            _ = shutdown.cancelled() => break Ended::Shutdown,
            push = rx.recv() => match push {
                None => break lost("the cluster client stopped".into()),
                Some(p) => match p.kind {
                    PushKind::Message | PushKind::SMessage => {
                        if let [Value::BulkString(channel), Value::BulkString(payload)] = &p.data[..]
                            && let Ok(channel) = std::str::from_utf8(channel)
                        {
                            deliver(None, channel, Bytes::copy_from_slice(payload));
                        }
                    }
                    PushKind::PMessage => {
                        if let [Value::BulkString(pattern), Value::BulkString(channel), Value::BulkString(payload)] = &p.data[..]
                            && let (Ok(pattern), Ok(channel)) = (std::str::from_utf8(pattern), std::str::from_utf8(channel))
                        {
                            deliver(Some(pattern), channel, Bytes::copy_from_slice(payload));
                        }
                    }
                    PushKind::Disconnection => break lost("a cluster node closed the connection".into()),
                    // A slot migration ends the sharded subscriptions of the
                    // slot: subscribe again where the slot now is.
                    PushKind::SUnsubscribe => break lost("a sharded subscription ended (slot migrated)".into()),
                    _ => {}
                },
            },
            changed = wanted.changed() => {
                if changed.is_err() {
                    break Ended::Shutdown;
                }
                let want = wanted.borrow_and_update().clone();
                if let Err(reason) = change(&mut conn, sub.sharded, &mut have, &want, &sub.endpoint).await {
                    break lost(reason);
                }
            }
            _ = ping.tick(), if pong.is_none() => {
                let mut conn = conn.clone();
                pong = Some(tokio::spawn(async move {
                    let ping = redis::cmd("PING");
                    match tokio::time::timeout(PING_TIMEOUT, ping.query_async::<Value>(&mut conn)).await {
                        Ok(Ok(_)) => Ok(()),
                        Ok(Err(e)) => Err(format!("ping failed: {}", describe(&e))),
                        Err(_) => Err("ping timed out".into()),
                    }
                }));
            }
            r = async { pong.as_mut().expect("invariant: guarded by the condition").await }, if pong.is_some() => {
                pong = None;
                match r {
                    Ok(Ok(())) => {}
                    Ok(Err(reason)) => break lost(reason),
                    Err(e) => break lost(format!("ping task failed: {e}")),
                }
            }
        }
    };
    if let Some(p) = pong {
        p.abort();
    }
    ended
}

/// The subscribe commands of a connection: a plain subscriber's sink or a
/// cluster connection. `sharded`: `SSUBSCRIBE` and `SUNSUBSCRIBE` for
/// channels (cluster only).
trait SubscribeCommands {
    async fn channels(
        &mut self,
        on: bool,
        sharded: bool,
        names: &[String],
    ) -> redis::RedisResult<()>;
    async fn patterns(&mut self, on: bool, names: &[String]) -> redis::RedisResult<()>;
}

impl SubscribeCommands for redis::aio::PubSubSink {
    async fn channels(
        &mut self,
        on: bool,
        _sharded: bool,
        names: &[String],
    ) -> redis::RedisResult<()> {
        match on {
            true => self.subscribe(names).await,
            false => self.unsubscribe(names).await,
        }
    }

    async fn patterns(&mut self, on: bool, names: &[String]) -> redis::RedisResult<()> {
        match on {
            true => self.psubscribe(names).await,
            false => self.punsubscribe(names).await,
        }
    }
}

impl SubscribeCommands for redis::cluster_async::ClusterConnection {
    async fn channels(
        &mut self,
        on: bool,
        sharded: bool,
        names: &[String],
    ) -> redis::RedisResult<()> {
        match (on, sharded) {
            (true, true) => self.ssubscribe(names).await,
            (false, true) => self.sunsubscribe(names).await,
            (true, false) => self.subscribe(names).await,
            (false, false) => self.unsubscribe(names).await,
        }
    }

    async fn patterns(&mut self, on: bool, names: &[String]) -> redis::RedisResult<()> {
        match on {
            true => self.psubscribe(names).await,
            false => self.punsubscribe(names).await,
        }
    }
}

/// Brings the connection's subscriptions from `have` to `want`: one command
/// for the channels added, one for the patterns added, then one for each
/// removed (a command with no argument would be refused). What stays is not
/// touched. `have` follows each command that succeeded.
async fn follow(
    conn: &mut impl SubscribeCommands,
    sharded: bool,
    have: &mut Wanted,
    want: &Wanted,
) -> redis::RedisResult<()> {
    let (channels, patterns) = want.beyond(have);
    let (gone_channels, gone_patterns) = have.beyond(want);
    if !channels.is_empty() {
        conn.channels(true, sharded, &channels).await?;
        have.channels.extend(channels);
    }
    if !patterns.is_empty() {
        conn.patterns(true, &patterns).await?;
        have.patterns.extend(patterns);
    }
    if !gone_channels.is_empty() {
        conn.channels(false, sharded, &gone_channels).await?;
        have.channels.retain(|c| !gone_channels.contains(c));
    }
    if !gone_patterns.is_empty() {
        conn.patterns(false, &gone_patterns).await?;
        have.patterns.retain(|p| !gone_patterns.contains(p));
    }
    Ok(())
}

/// [`follow`] on a live session (a reload), bounded by [`CONNECT_TIMEOUT`]
/// and logged; the error ends the session, whose reconnect subscribes to
/// what is wanted then.
async fn change(
    conn: &mut impl SubscribeCommands,
    sharded: bool,
    have: &mut Wanted,
    want: &Wanted,
    endpoint: &Endpoint,
) -> Result<(), String> {
    let (channels, patterns) = want.beyond(have);
    let (gone_channels, gone_patterns) = have.beyond(want);
    match tokio::time::timeout(CONNECT_TIMEOUT, follow(conn, sharded, have, want)).await {
        Ok(Ok(())) => {
            tracing::info!(address = %endpoint.shown(), subscribed = ?channels, psubscribed = ?patterns, unsubscribed = ?gone_channels, punsubscribed = ?gone_patterns, "subscriptions changed");
            Ok(())
        }
        Ok(Err(e)) => Err(format!(
            "changing the subscriptions failed: {}",
            describe(&e)
        )),
        Err(_) => Err(format!(
            "changing the subscriptions took longer than {CONNECT_TIMEOUT:?}"
        )),
    }
}
