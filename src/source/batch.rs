//! Settling handled deliveries in batches ([`settle_loop`]): the stream's
//! acknowledger (`XACK`) and the list's settler (`LREM`) both gather what
//! is ready into one command, retry a failed one with [`after_failures`],
//! and once shutting down give up after [`SHUTDOWN_PATIENCE`] (what is left
//! is handled again later, never lost). The loop ends once every attempt
//! has ended (every sender of its channel is gone).
//!
//! A trigger's [`Tasks`] pair its readers (which start attempts) with its
//! settler, so that shutdown can wait for one and then the other.
//!
//! Not owned here: the command that settles a batch, or what is flushed
//! before it (each source's [`Settle`]).

use super::reconnect::after_failures;
use std::future::Future;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Deliveries settled in one command, at most.
pub const BATCH: usize = 1000;
/// How long settling may keep being retried once shutting down.
pub const SHUTDOWN_PATIENCE: Duration = Duration::from_secs(5);

/// The channels an attempt of a stream or list trigger reports on: what it
/// handled goes to the settler, what failed to the retrier. Their receivers
/// end once every sender is gone, which is how the settler knows all
/// attempts ended.
pub struct Chans<T, R> {
    pub handled: mpsc::UnboundedSender<T>,
    pub retries: mpsc::UnboundedSender<R>,
}

impl<T, R> Clone for Chans<T, R> {
    fn clone(&self) -> Self {
        Chans {
            handled: self.handled.clone(),
            retries: self.retries.clone(),
        }
    }
}

impl<T, R> Chans<T, R> {
    /// The channels and their receivers: handled, retries.
    pub fn new() -> (Self, mpsc::UnboundedReceiver<T>, mpsc::UnboundedReceiver<R>) {
        let (handled, handled_rx) = mpsc::unbounded_channel();
        let (retries, retry_rx) = mpsc::unbounded_channel();
        (Chans { handled, retries }, handled_rx, retry_rx)
    }
}

/// The tasks of a stream or list trigger that shutdown waits for: the
/// readers (which start attempts) and the settler.
pub struct Tasks {
    readers: TaskTracker,
    settler: JoinHandle<()>,
}

impl Tasks {
    /// `readers` hold every task that starts attempts; no more are added.
    pub fn new(readers: TaskTracker, settler: JoinHandle<()>) -> Tasks {
        readers.close();
        Tasks { readers, settler }
    }

    /// Waits until the readers have stopped (after the shutdown signal);
    /// no attempt starts after this.
    pub async fn stopped(&self) {
        self.readers.wait().await;
    }

    /// After the drain: waits at most `patience` for the settler to settle
    /// what the last attempts handled, and says so if it had to give up.
    pub async fn settled(self, patience: Duration, settles: Settles<'_>) {
        if tokio::time::timeout(patience, self.settler).await.is_err() {
            settles.say_gave_up();
        }
    }
}

/// What a settler settles, as its log lines name it.
pub enum Settles<'a> {
    /// Entries of a stream, acknowledged.
    Acks { stream: &'a str },
    /// Items of a list, removed from the processing list.
    Removals { list: &'a str },
}

impl Settles<'_> {
    fn say_failing(&self, n: usize, reason: &str) {
        match self {
            Settles::Acks { stream } => {
                tracing::warn!(stream = %stream, entries = n, reason = %reason, "cannot acknowledge handled entries; retrying");
            }
            Settles::Removals { list } => {
                tracing::warn!(list = %list, items = n, reason = %reason, "cannot remove handled items from the processing list; retrying");
            }
        }
    }

    fn say_gave_up(&self) {
        match self {
            Settles::Acks { stream } => {
                tracing::warn!(stream = %stream, "gave up waiting for the last acknowledgements; those entries will be handled again");
            }
            Settles::Removals { list } => {
                tracing::warn!(list = %list, "gave up waiting for the last removals; those items will be handled again");
            }
        }
    }

    fn say_left(&self, n: usize) {
        match self {
            Settles::Acks { stream } => {
                tracing::warn!(stream = %stream, entries = n, "handled entries left unacknowledged at shutdown; they will be handled again");
            }
            Settles::Removals { list } => {
                tracing::warn!(list = %list, items = n, "handled items left in the processing list at shutdown; they will be handled again");
            }
        }
    }
}

/// One source's way of settling a batch of handled deliveries.
pub trait Settle<T> {
    /// Settles (and counts) `batch`; the reason when it could not.
    fn settle(&self, batch: &[T]) -> impl Future<Output = Result<(), String>> + Send;
    /// `item` is no longer held by this process.
    fn forget(&self, item: &T);
}

/// Settles what `rx` brings in batches until every sender is gone.
pub async fn settle_loop<T, S: Settle<T>>(
    settler: &S,
    settles: Settles<'_>,
    rx: mpsc::UnboundedReceiver<T>,
    shutdown: &CancellationToken,
) {
    let mut batches = Batches::new(rx);
    let mut batch: Vec<T> = Vec::new();
    while batches.fill(&mut batch).await {
        match settler.settle(&batch).await {
            Ok(()) => {
                batches.settled();
                batch.drain(..).for_each(|d| settler.forget(&d));
            }
            Err(reason) => {
                if batches.failed() {
                    settles.say_failing(batch.len(), &reason);
                }
                if batches.give_up_or_wait(shutdown).await {
                    settles.say_left(batch.len());
                    batch.drain(..).for_each(|d| settler.forget(&d));
                }
            }
        }
    }
}

/// The receiving end of a settler, with its failures in a row.
struct Batches<T> {
    rx: mpsc::UnboundedReceiver<T>,
    failures: u32,
    stopping_since: Option<Instant>,
}

impl<T> Batches<T> {
    fn new(rx: mpsc::UnboundedReceiver<T>) -> Self {
        Batches {
            rx,
            failures: 0,
            stopping_since: None,
        }
    }

    /// Fills `batch` (kept from a failed try, or waited for) with what is
    /// ready, up to [`BATCH`]; `false` once it is empty and every sender is
    /// gone (every attempt ended).
    async fn fill(&mut self, batch: &mut Vec<T>) -> bool {
        if batch.is_empty() {
            match self.rx.recv().await {
                Some(d) => batch.push(d),
                None => return false,
            }
        }
        while batch.len() < BATCH {
            match self.rx.try_recv() {
                Ok(d) => batch.push(d),
                Err(_) => break,
            }
        }
        true
    }

    /// The batch was settled.
    fn settled(&mut self) {
        self.failures = 0;
    }

    /// Counts a failed try; `true` for the first in a row (to be said).
    fn failed(&mut self) -> bool {
        self.failures += 1;
        self.failures == 1
    }

    /// After a failed try: `true` to give the batch up (shutting down for
    /// longer than [`SHUTDOWN_PATIENCE`]), else waits before the next try.
    async fn give_up_or_wait(&mut self, shutdown: &CancellationToken) -> bool {
        if shutdown.is_cancelled() {
            let since = *self.stopping_since.get_or_insert_with(Instant::now);
            if since.elapsed() > SHUTDOWN_PATIENCE {
                return true;
            }
        }
        tokio::time::sleep(after_failures(self.failures)).await;
        false
    }
}
