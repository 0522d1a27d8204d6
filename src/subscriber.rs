//! Redis subscriptions: one connection per distinct address, `SUBSCRIBE` to
//! every channel bound at that address, reconnect and resubscribe forever.
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
//! Connecting and subscribing (all channels of an address in one `SUBSCRIBE`)
//! are bounded by [`CONNECT_TIMEOUT`]. The backoff goes back to its minimum
//! only after a connection stayed up for [`STABLE_AFTER`]: a server that
//! accepts and then drops every connection is retried at the capped pace,
//! not hammered.
//!
//! Knows nothing of wasm. Only the redacted address is ever logged.

use crate::address::RedisAddress;
use bytes::Bytes;
use futures_util::StreamExt as _;
use std::path::PathBuf;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

pub const PING_INTERVAL: Duration = Duration::from_secs(15);
/// How long a pong may take before the connection counts as dead.
const PING_TIMEOUT: Duration = Duration::from_secs(5);
/// How long connecting, authenticating and subscribing may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a connection must stay up before the backoff starts over.
pub const STABLE_AFTER: Duration = Duration::from_secs(30);
const BACKOFF_START: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Receives every message: `(channel, payload)`. Must not block.
pub type Deliver = dyn Fn(&str, Bytes) + Send + Sync;

/// Everything one subscriber needs.
pub struct Subscription {
    pub address: RedisAddress,
    pub channels: Vec<String>,
    pub tls_ca_file: Option<PathBuf>,
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
    loop {
        match session(&sub, deliver, &shutdown, failures).await {
            Ended::Shutdown => return,
            Ended::Lost { reason, up_for } => {
                if let Some(up_for) = up_for {
                    tracing::warn!(address = %sub.address, reason = %reason, "lost the connection to redis; reconnecting");
                    failures = 1;
                    if up_for >= STABLE_AFTER {
                        backoff = BACKOFF_START;
                    }
                } else {
                    if failures == 0 || failures.is_multiple_of(20) {
                        tracing::warn!(address = %sub.address, reason = %reason, attempts = failures + 1, "cannot connect to redis; retrying");
                    } else {
                        tracing::debug!(address = %sub.address, reason = %reason, "still cannot connect to redis");
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

fn client(sub: &Subscription) -> redis::RedisResult<redis::Client> {
    match (&sub.tls_ca_file, sub.address.is_tls()) {
        (Some(ca), true) => {
            let root_cert = std::fs::read(ca).map_err(|e| {
                redis::RedisError::from((
                    redis::ErrorKind::Io,
                    "cannot read the TLS CA file",
                    format!("{:?}: {e}", ca.display().to_string()),
                ))
            })?;
            redis::Client::build_with_tls(
                sub.address.connection_url(),
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(root_cert),
                },
            )
        }
        _ => redis::Client::open(sub.address.connection_url()),
    }
}

/// Describes a redis error without ever including the URL (which may hold a
/// password).
fn describe(e: &redis::RedisError) -> String {
    if e.kind() == redis::ErrorKind::AuthenticationFailed || e.to_string().contains("WRONGPASS") {
        return "authentication failed: check the user and password in the address".into();
    }
    let text = e.to_string();
    match text.find("://") {
        Some(_) => format!("{:?} error", e.kind()),
        None => text,
    }
}

async fn session(
    sub: &Subscription,
    deliver: &Deliver,
    shutdown: &CancellationToken,
    failures: u32,
) -> Ended {
    let connect = async {
        let client = client(sub)?;
        let mut pubsub = client.get_async_pubsub().await?;
        // One command for every channel of this address.
        pubsub.subscribe(&sub.channels).await?;
        Ok::<_, redis::RedisError>(pubsub)
    };
    let pubsub = tokio::select! {
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
    if failures > 0 {
        tracing::info!(address = %sub.address, channels = ?sub.channels, "reconnected to redis and resubscribed");
    } else {
        tracing::info!(address = %sub.address, channels = ?sub.channels, "subscribed");
    }
    let since = std::time::Instant::now();
    let lost = |reason: String| Ended::Lost {
        reason,
        up_for: Some(since.elapsed()),
    };
    let (sink, mut stream) = pubsub.split();
    let mut ping = tokio::time::interval(PING_INTERVAL);
    ping.tick().await; // the first tick is immediate
    // The ping in flight, if any: a task of its own, so that reading goes on
    // while it waits for the pong.
    let mut pong: Option<tokio::task::JoinHandle<Result<(), String>>> = None;
    let ended = loop {
        tokio::select! {
            _ = shutdown.cancelled() => break Ended::Shutdown,
            msg = stream.next() => match msg {
                Some(msg) => {
                    deliver(msg.get_channel_name(), Bytes::copy_from_slice(msg.get_payload_bytes()));
                }
                None => break lost("the server closed the connection".into()),
            },
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
