//! One attempt at a stream entry: refused at once (too many deliveries, no
//! field, too large: dead-lettered), run on the handler runtime, and settled
//! by its outcome: acknowledged (through the acknowledger), retried, dead
//! lettered, or left pending when cut short. Also the delivery counts
//! (`XPENDING`) the reader and claimer start attempts with.
//!
//! Not owned here: running a handler (`dispatch::run_delivery`), waiting
//! retries (`retry.rs`), dead-lettering (`dead_letter.rs`).

use super::reply::{Entry, text};
use super::retry::OnAbandon;
use super::running::{Chans, Held, Inner};
use crate::dispatch::{Permits, Ran};
use redis::Value;
use spin_redis_sandbox::wasi::{Message, StreamEntry};
use std::collections::HashMap;
use std::sync::Arc;

impl Inner {
    /// Starts one attempt on the handler runtime.
    pub(super) fn spawn_attempt(
        self: &Arc<Self>,
        entry: Entry,
        delivery: u32,
        permits: Permits,
        chans: &Chans,
    ) {
        self.hold(&entry.id, Held::Running);
        let inner = self.clone();
        let chans = chans.clone();
        self.shared.tracker.spawn_on(
            async move { inner.attempt(entry, delivery, permits, chans).await },
            &self.shared.handlers,
        );
    }

    /// Why entry `payload` (`None`: no such field) is dead-lettered without
    /// running, if it is.
    fn refusal(&self, payload: Option<&bytes::Bytes>, delivery: u32) -> Option<String> {
        let spec = &self.spec;
        match payload {
            _ if delivery > spec.max_deliveries => Some(format!(
                "delivered {delivery} times without an outcome (the consumers handling it stopped)"
            )),
            None => Some(format!("the entry has no field {:?}", spec.field)),
            Some(p) if p.len() as u64 > self.shared.max_payload => Some(format!(
                "the payload of {} bytes is larger than max_payload ({} bytes)",
                p.len(),
                self.shared.max_payload
            )),
            Some(_) => None,
        }
    }

    /// Runs one attempt and settles the entry: acknowledge, retry, or dead
    /// letter. Should the task end without settling it (a panic), the guard
    /// hands the entry to the retrier: it is never held for good.
    async fn attempt(self: Arc<Self>, entry: Entry, delivery: u32, permits: Permits, chans: Chans) {
        let guard = {
            let inner = self.clone();
            let chans = chans.clone();
            let id = entry.id.clone();
            OnAbandon::new(move || inner.abandoned(id, delivery, &chans))
        };
        let spec = &self.spec;
        let fields = entry.fields.as_deref().unwrap_or_default();
        let payload = fields
            .iter()
            .find(|(k, _)| k.as_ref() == spec.field.as_bytes())
            .map(|(_, v)| v.clone());
        if let Some(reason) = self.refusal(payload.as_ref(), delivery) {
            // Counted as waiting before its slot is given back (see below).
            let _settling = self.room.take();
            drop(permits);
            self.dead_letter(&entry, delivery, &reason).await;
            self.release(&entry.id);
            guard.settled();
            return;
        }
        let payload = payload.expect("invariant: refused above when missing");
        let message = Message {
            channel: &spec.stream,
            address: &self.address,
            payload,
            stream: Some(StreamEntry {
                id: &entry.id,
                delivery,
            }),
            origin: None,
        };
        let ran = self.run_attempt(message).await;
        // A failed entry is counted as waiting before its slot is given
        // back, so that reading never finds it in neither count.
        match ran {
            Ran::Ok => {
                drop(permits);
                // Acknowledged (and released) by the acknowledger once the
                // output is in the log files; held until then, so that it is
                // not read again meanwhile.
                if let Err(unsent) = chans.handled.send(entry.id) {
                    self.release(&unsent.0);
                }
            }
            Ran::Failed(reason) if delivery >= spec.max_deliveries => {
                let _settling = self.room.take();
                drop(permits);
                self.dead_letter(&entry, delivery, &reason).await;
                self.release(&entry.id);
            }
            Ran::Failed(_) => {
                // Only the id waits: the fields are dropped here, and the
                // claim of the next attempt returns them again.
                self.schedule_retry(entry.id, delivery, &chans);
                drop(permits);
            }
            Ran::CutShort => {
                drop(permits);
                // Stays pending: handled again by this consumer when it
                // restarts, or by another after claim_idle.
                self.release(&entry.id);
            }
        }
        guard.settled();
    }

    /// The delivery count of each of `ids` pending on this consumer;
    /// entries no longer pending on it are missing.
    pub(super) async fn delivery_counts(
        &self,
        ids: &[&str],
    ) -> redis::RedisResult<HashMap<String, u32>> {
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let mut pipe = redis::pipe();
        for id in ids {
            pipe.add_command(self.spec.xpending_own(id));
        }
        let replies = self.commands.pipeline(&pipe).await?;
        let mut counts = HashMap::new();
        for r in replies {
            // [[id, consumer, idle, count]] or [] when not pending.
            if let Value::Array(rows) = r
                && let Some(Value::Array(row)) = rows.first()
                && let (Some(id), Some(Value::Int(n))) = (row.first().and_then(text), row.get(3))
            {
                counts.insert(id, u32::try_from(*n).unwrap_or(u32::MAX));
            }
        }
        Ok(counts)
    }
}
