//! The reconnect policy every source shares, and what keeps a connection
//! honest:
//!
//! - **Backoff** ([`Reconnect`]): a lost connection is logged once, tried
//!   again after [`BACKOFF_FIRST`] doubling up to [`BACKOFF_MAX`], and its
//!   recovery is logged; a server that is down at start-up is retried the
//!   same way, said at the first try and every twentieth. The backoff goes
//!   back to its minimum only after a connection stayed up for
//!   [`STABLE_AFTER`]: a server that accepts and then drops every connection
//!   is retried at the capped pace, not hammered. Pub/sub subscriptions,
//!   stream readers and list readers all run this one loop.
//! - **A ping watchdog** ([`Watchdog`]): a connection that died without
//!   closing (a pulled cable, a frozen server) is noticed by a ping every
//!   [`PING_INTERVAL`] that runs beside the reading, which never waits for
//!   the pong.
//! - **A lazy command connection** ([`LazyConn`]): made on first use and
//!   again after it broke ([`broken`]), for the commands a source sends
//!   beside its reading connection.
//!
//! Not owned here: making a connection ([`super::connect`]), what a session
//! reads, and the schedule of a failed delivery's next attempt
//! (`super::retry`).

use super::connect::{Conn, Endpoint, RESPONSE_TIMEOUT, describe};
use crate::ops::health::RedisLink;
use redis::{Cmd, Pipeline, RedisError, RedisResult, Value};
use std::future::Future;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// The wait before the second connection attempt; it doubles after each.
pub const BACKOFF_FIRST: Duration = Duration::from_millis(100);
/// The longest wait between two connection attempts (and between two tries
/// of a refused read or a failed acknowledgement). Short, because while a
/// pub/sub subscriber is away every message published is lost, and a
/// restarted Redis should be read again within seconds; capped, so that a
/// server down for good sees one attempt per source every 5 s, not a storm.
/// (A failed *delivery* waits far longer between attempts: see
/// `super::retry::RETRY_MAX`.)
pub const BACKOFF_MAX: Duration = Duration::from_secs(5);
/// How long a connection must stay up before the backoff starts over.
pub const STABLE_AFTER: Duration = Duration::from_secs(30);
/// How often an idle subscriber connection is pinged.
pub const PING_INTERVAL: Duration = Duration::from_secs(15);
/// How long a pong may take before the connection counts as dead.
const PING_TIMEOUT: Duration = Duration::from_secs(5);

/// The wait after `failures` failed tries in a row of a command that is
/// retried on its own (acknowledging, removing handled items): 200 ms
/// doubling, capped at [`BACKOFF_MAX`].
pub fn after_failures(failures: u32) -> Duration {
    (BACKOFF_FIRST * 2u32.saturating_pow(failures.min(6))).min(BACKOFF_MAX)
}

/// Why one connection attempt or session ended.
pub enum Ended {
    Shutdown,
    /// The connection failed; `up_for` is how long it had been reading
    /// (`None`: it never got that far).
    Lost {
        reason: String,
        up_for: Option<Duration>,
    },
}

impl Ended {
    /// A session that never got to read.
    pub fn never_up(reason: String) -> Ended {
        Ended::Lost {
            reason,
            up_for: None,
        }
    }
}

/// What a reconnecting source reads, as its log lines name it.
#[derive(Clone, Copy)]
pub enum Reads<'a> {
    /// The channels and patterns of one subscription.
    Channels,
    Stream(&'a str),
    List(&'a str),
}

/// Logs with the field naming what is read, after the address.
macro_rules! say {
    ($level:ident, $reads:expr, $address:expr, $($rest:tt)+) => {
        match $reads {
            Reads::Channels => tracing::$level!(address = %$address, $($rest)+),
            Reads::Stream(key) => tracing::$level!(address = %$address, stream = %key, $($rest)+),
            Reads::List(key) => tracing::$level!(address = %$address, list = %key, $($rest)+),
        }
    };
}

impl Reads<'_> {
    /// What a source that cannot connect cannot do.
    fn cannot(self) -> &'static str {
        match self {
            Reads::Channels => "connect to redis",
            Reads::Stream(_) => "read the stream",
            Reads::List(_) => "read the list",
        }
    }
}

/// The state of one source's reconnecting: run each session, then hand
/// its end to [`Reconnect::after`] until that says to stop.
pub struct Reconnect<'a> {
    reads: Reads<'a>,
    /// The address as logs show it.
    shown: String,
    link: &'a RedisLink,
    backoff: Duration,
    failures: u32,
    ever_connected: bool,
}

impl<'a> Reconnect<'a> {
    pub fn new(endpoint: &Endpoint, reads: Reads<'a>, link: &'a RedisLink) -> Self {
        Reconnect {
            reads,
            shown: endpoint.shown(),
            link,
            backoff: BACKOFF_FIRST,
            failures: 0,
            ever_connected: false,
        }
    }

    /// Failed attempts since the last session that got to read (1 right
    /// after a lost one); 0 before the first session.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Whether a session ever got to read.
    pub fn ever_connected(&self) -> bool {
        self.ever_connected
    }

    /// Logs how a session ended and waits the backoff; `false` at shutdown.
    pub async fn after(&mut self, ended: Ended, shutdown: &CancellationToken) -> bool {
        self.link.lost();
        let (reads, shown) = (self.reads, &self.shown);
        match ended {
            Ended::Shutdown => return false,
            Ended::Lost {
                reason,
                up_for: Some(up_for),
            } => {
                self.ever_connected = true;
                say!(warn, reads, shown, reason = %reason, "lost the connection to redis; reconnecting");
                self.failures = 1;
                if up_for >= STABLE_AFTER {
                    self.backoff = BACKOFF_FIRST;
                }
            }
            Ended::Lost {
                reason,
                up_for: None,
            } => {
                if self.failures == 0 || self.failures.is_multiple_of(20) {
                    say!(warn, reads, shown, reason = %reason, attempts = self.failures + 1, "cannot {}; retrying", reads.cannot());
                } else {
                    say!(debug, reads, shown, reason = %reason, "still cannot {}", reads.cannot());
                }
                self.failures += 1;
            }
        }
        tokio::select! {
            _ = shutdown.cancelled() => return false,
            _ = tokio::time::sleep(self.backoff) => {}
        }
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
        true
    }
}

/// What a failed connection attempt says in the logs.
pub trait Reason {
    fn reason(self) -> String;
}

impl Reason for RedisError {
    fn reason(self) -> String {
        describe(&self)
    }
}

impl Reason for String {
    fn reason(self) -> String {
        self
    }
}

/// Opens a session: connects unless shutdown comes first, and reports the
/// link up (`again`: after a loss). Returns the connection and when it
/// started reading.
pub async fn open<T, E: Reason>(
    shutdown: &CancellationToken,
    link: &RedisLink,
    again: bool,
    connect: impl Future<Output = Result<T, E>>,
) -> Result<(T, Up), Ended> {
    let conn = tokio::select! {
        _ = shutdown.cancelled() => return Err(Ended::Shutdown),
        r = connect => r.map_err(|e| Ended::never_up(e.reason()))?,
    };
    link.connected(again);
    Ok((conn, Up::now()))
}

/// When a session started reading, to tell [`STABLE_AFTER`] apart.
pub struct Up(Instant);

impl Up {
    pub fn now() -> Up {
        Up(Instant::now())
    }

    /// The session that started at this point lost its connection.
    pub fn lost(&self, reason: String) -> Ended {
        Ended::Lost {
            reason,
            up_for: Some(self.0.elapsed()),
        }
    }
}

/// Pings a reading connection every [`PING_INTERVAL`], in a task of its own
/// so that reading goes on while it waits for the pong. A ping in flight is
/// stopped when the watchdog is dropped.
pub struct Watchdog {
    every: tokio::time::Interval,
    pong: Option<JoinHandle<Result<(), String>>>,
}

impl Watchdog {
    /// Starts counting; the first ping goes out after [`PING_INTERVAL`].
    pub async fn start() -> Watchdog {
        let mut every = tokio::time::interval(PING_INTERVAL);
        every.tick().await; // the first tick is immediate
        Watchdog { every, pong: None }
    }

    /// Returns once the connection is found dead, with the reason; pings
    /// with `ping` when one is due. Safe to cancel (as a `select!` branch):
    /// a ping in flight is kept for the next call.
    pub async fn dead<F, P>(&mut self, mut ping: F) -> String
    where
        F: FnMut() -> P,
        P: Future<Output = RedisResult<Value>> + Send + 'static,
    {
        loop {
            match &mut self.pong {
                None => {
                    self.every.tick().await;
                    let ping = ping();
                    self.pong = Some(tokio::spawn(async move {
                        match tokio::time::timeout(PING_TIMEOUT, ping).await {
                            Ok(Ok(_)) => Ok(()),
                            Ok(Err(e)) => Err(format!("ping failed: {}", describe(&e))),
                            Err(_) => Err("ping timed out".into()),
                        }
                    }));
                }
                Some(pong) => {
                    let r = pong.await;
                    self.pong = None;
                    match r {
                        Ok(Ok(())) => {}
                        Ok(Err(reason)) => return reason,
                        Err(e) => return format!("ping task failed: {e}"),
                    }
                }
            }
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        if let Some(p) = self.pong.take() {
            p.abort();
        }
    }
}

/// A command connection made on first use and made again after it broke,
/// shared by the tasks of one source (cheap to clone once made). The reader
/// of a source has a connection of its own: a blocking read would hold up
/// every command queued behind it.
pub struct LazyConn {
    endpoint: Endpoint,
    conn: tokio::sync::Mutex<Option<Conn>>,
}

impl LazyConn {
    pub fn new(endpoint: Endpoint) -> Self {
        LazyConn {
            endpoint,
            conn: tokio::sync::Mutex::new(None),
        }
    }

    /// Runs `cmd`; a broken connection is dropped, to be made again by the
    /// next call.
    pub async fn query<T: redis::FromRedisValue>(&self, cmd: &Cmd) -> RedisResult<T> {
        let mut conn = self.get().await?;
        let r = cmd.query_async(&mut conn).await;
        self.check(&r).await;
        r
    }

    /// Runs `pipe`, as [`LazyConn::query`] runs one command.
    pub async fn pipeline(&self, pipe: &Pipeline) -> RedisResult<Vec<Value>> {
        let mut conn = self.get().await?;
        let r = pipe.query_async(&mut conn).await;
        self.check(&r).await;
        r
    }

    /// The connection, made if there is none; report its errors with
    /// [`LazyConn::check`].
    pub async fn get(&self) -> RedisResult<Conn> {
        let mut slot = self.conn.lock().await;
        match &*slot {
            Some(c) => Ok(c.clone()),
            None => {
                let c = self.endpoint.connect(RESPONSE_TIMEOUT).await?;
                *slot = Some(c.clone());
                Ok(c)
            }
        }
    }

    /// Drops the connection if `r` says it broke.
    pub async fn check<T>(&self, r: &RedisResult<T>) {
        if let Err(e) = r
            && broken(e)
        {
            *self.conn.lock().await = None;
        }
    }
}

/// Whether an error means the connection is gone (rather than a command
/// refused).
pub fn broken(e: &RedisError) -> bool {
    e.is_io_error() || e.is_connection_dropped() || e.is_timeout() || e.is_connection_refusal()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_tries_wait_from_200_ms_to_the_cap() {
        let waits: Vec<u128> = (1..=7).map(|f| after_failures(f).as_millis()).collect();
        assert_eq!(waits, [200, 400, 800, 1600, 3200, 5000, 5000]);
        assert_eq!(after_failures(u32::MAX), BACKOFF_MAX);
    }
}
