//! Settling items: removing the handled ones from the processing list (in
//! batches, after the log files are flushed: an item whose output was lost
//! in a crash is never removed), and moving the ones out of attempts to the
//! dead-letter list.
//!
//! Dead-lettering is two steps, `LPUSH` to the dead-letter list and then the
//! removal (the dead-letter list may live on another cluster node): a crash
//! between them leaves the item in both, and it is dead-lettered again (its
//! count already past the maximum), never lost.
//!
//! Not owned here: deciding what an attempt's result means (`consume`), the
//! batching and its retries (`source/batch.rs`).

use super::running::Inner;
use super::scripts;
use crate::source::batch::{self, Settle, Settles};
use crate::source::connect::describe;
use bytes::Bytes;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Bytes of an item shown in a log line, at most.
const SHOWN_ITEM: usize = 64;

/// Removes `items` from the processing list; how many were still there.
async fn settle(inner: &Inner, items: &[Bytes]) -> redis::RedisResult<usize> {
    let mut conn = inner.commands.get().await?;
    let r = scripts::settle(&mut conn, &inner.spec.keys, items).await;
    inner.commands.check(&r).await;
    r
}

/// Removes handled items in batches until every attempt has ended.
pub async fn settle_loop(
    inner: Arc<Inner>,
    rx: mpsc::UnboundedReceiver<Bytes>,
    shutdown: CancellationToken,
) {
    let removals = Settles::Removals {
        list: &inner.spec.list,
    };
    batch::settle_loop(&*inner, removals, rx, &shutdown).await;
}

impl Settle<Bytes> for Inner {
    async fn settle(&self, items: &[Bytes]) -> Result<(), String> {
        self.shared.logs.flush();
        let removed = settle(self, items).await.map_err(|e| describe(&e))?;
        let handled = &self.counters.handled;
        handled.fetch_add(items.len() as u64, Ordering::Relaxed);
        if removed < items.len() {
            tracing::warn!(list = %self.spec.list, items = items.len() - removed, "handled items had been handed back to the queue meanwhile (this consumer's heartbeat had expired); they will be handled again");
        }
        Ok(())
    }

    fn forget(&self, item: &Bytes) {
        self.release(item);
    }
}

/// Pushes `item` to the dead-letter list, then removes it from the
/// processing list; logs the error with the delivery count. If either step
/// fails the item stays in the processing list, and is dead-lettered when
/// it is taken up again (its count already past the maximum).
pub async fn dead_letter(inner: &Inner, item: &Bytes, delivery: u32, reason: &str) {
    let spec = &inner.spec;
    let done = async {
        inner
            .commands
            .query::<i64>(
                redis::cmd("LPUSH")
                    .arg(&spec.dead_letter)
                    .arg(item.as_ref()),
            )
            .await?;
        settle(inner, std::slice::from_ref(item)).await
    };
    let shown = shown(item);
    match done.await {
        Ok(_) => {
            inner.counters.dead_lettered.fetch_add(1, Ordering::Relaxed);
            inner.route_metrics.dead_lettered.inc();
            tracing::warn!(component = %inner.handler.component, list = %spec.list, item = %shown, deliveries = delivery, dead_letter = %spec.dead_letter, reason = %reason, "item moved to the dead-letter list");
        }
        Err(e) => {
            tracing::warn!(component = %inner.handler.component, list = %spec.list, item = %shown, reason = %describe(&e), "cannot dead-letter the item now; it stays in the processing list and is taken up again");
        }
    }
    inner.release(item);
}

/// The start of an item, for a log line: text as it is (escaped), cut at
/// [`SHOWN_ITEM`] bytes.
fn shown(item: &[u8]) -> String {
    let cut = &item[..item.len().min(SHOWN_ITEM)];
    let mut s = String::from_utf8_lossy(cut).escape_debug().to_string();
    if item.len() > SHOWN_ITEM {
        s.push_str(&format!("... ({} bytes)", item.len()));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_item_is_shown_escaped_and_cut() {
        assert_eq!(shown(b"job 1"), "job 1");
        assert_eq!(shown(b"a\nb"), "a\\nb");
        let long = vec![b'x'; 100];
        assert_eq!(shown(&long), format!("{}... (100 bytes)", "x".repeat(64)));
    }
}
