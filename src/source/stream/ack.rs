//! The acknowledger of a stream trigger: acknowledges handled entries
//! (`XACK`) in batches, after flushing the component's log files on a
//! blocking thread, so that an entry whose output was lost in a crash is
//! never acknowledged.
//!
//! Not owned here: the batching and its retries (`source/batch.rs`),
//! deciding that an entry succeeded (`attempt.rs`).

use super::running::Inner;
use crate::source::batch::{Settle, Settles, settle_loop};
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
    let acks = Settles::Acks {
        stream: &inner.spec.stream,
    };
    settle_loop(&*inner, acks, rx, &shutdown).await;
}

impl Settle<String> for Inner {
    async fn settle(&self, ids: &[String]) -> Result<(), String> {
        let spec = &self.spec;
        // The component's output reaches its files first; on a blocking
        // thread, since a slow disk (or a stuck pipe) must not stop this
        // runtime, which does every trigger's Redis I/O.
        let logs = self.shared.logs.clone();
        let component = self.handler.component.clone();
        if let Err(e) = tokio::task::spawn_blocking(move || logs.flush_component(&component)).await
        {
            tracing::error!(stream = %spec.stream, reason = %e, "flushing the log files before acknowledging failed");
        }
        match self.commands.query::<Value>(&spec.xack(ids)).await {
            Ok(_) => {
                let handled = &self.counters.handled;
                handled.fetch_add(ids.len() as u64, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => Err(describe(&e)),
        }
    }

    fn forget(&self, id: &String) {
        self.release(id);
    }
}
