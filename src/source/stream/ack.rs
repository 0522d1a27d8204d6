//! The acknowledger of a stream trigger: acknowledges handled entries
//! (`XACK`) in batches, after flushing the component's log files, so that an
//! entry whose output was lost in a crash is never acknowledged. It ends
//! once every attempt has ended (every sender of its channel is gone).
//!
//! Not owned here: the batching and its retries (`source/batch.rs`),
//! deciding that an entry succeeded (`attempt.rs`).

use super::running::Inner;
use crate::source::batch::Batches;
use crate::source::connect::describe;
use redis::Value;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Acknowledges handled entries in batches until every attempt has ended.
pub(super) async fn ack_loop(
    inner: Arc<Inner>,
    rx: mpsc::UnboundedReceiver<String>,
    shutdown: CancellationToken,
) {
    let spec = &inner.spec;
    let mut batches = Batches::new(rx);
    let mut batch: Vec<String> = Vec::new();
    while batches.fill(&mut batch).await {
        // The component's output reaches its files first; on a blocking
        // thread, since a slow disk (or a stuck pipe) must not stop this
        // runtime, which does every trigger's Redis I/O.
        let logs = inner.shared.logs.clone();
        let component = inner.handler.component.clone();
        if let Err(e) = tokio::task::spawn_blocking(move || logs.flush_component(&component)).await
        {
            tracing::error!(stream = %spec.stream, reason = %e, "flushing the log files before acknowledging failed");
        }
        match inner.commands.query::<Value>(&spec.xack(&batch)).await {
            Ok(_) => {
                batches.settled();
                let handled = &inner.counters.handled;
                handled.fetch_add(batch.len() as u64, Ordering::Relaxed);
                batch.drain(..).for_each(|id| inner.release(&id));
            }
            Err(e) => {
                if batches.failed() {
                    tracing::warn!(stream = %spec.stream, entries = batch.len(), reason = %describe(&e), "cannot acknowledge handled entries; retrying");
                }
                if batches.give_up_or_wait(&shutdown).await {
                    tracing::warn!(stream = %spec.stream, entries = batch.len(), "handled entries left unacknowledged at shutdown; they will be handled again");
                    batch.drain(..).for_each(|id| inner.release(&id));
                }
            }
        }
    }
}
