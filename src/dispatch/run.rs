//! Running one delivery: the handler on one message, then the ledger, the
//! route's metrics, the log line and the span. Queued deliveries (see
//! `queues`), stream entries and list items all run through
//! [`run_delivery`].
//!
//! Not owned here: which handler a message goes to (`queues`) or what a
//! stream or list source does with the result (acknowledge, retry,
//! dead-letter).

use super::Shared;
use crate::executor::Handler;
use crate::ops::metrics::RouteMetrics;
use crate::stats::{Delivery, Settled};
use spin_redis_sandbox::HandlerError;
use spin_redis_sandbox::wasi::Message;

/// How a delivery run by [`run_delivery`] ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ran {
    Ok,
    /// An error, a trap or a timeout, with its reason.
    Failed(String),
    /// Stopped at the drain deadline.
    CutShort,
}

/// Runs one handler on one delivery and records what happened: the ledger,
/// the route's metrics, the log line, the span. Cancelled by
/// [`Shared::cancel`] (the drain deadline): then the delivery is cut short.
/// Queued deliveries and stream entries both run through here; a stream
/// source then acknowledges, retries or dead-letters by the result.
pub async fn run_delivery(
    handler: &Handler,
    msg: Message<'_>,
    account: Delivery,
    metrics: &RouteMetrics,
    shared: &Shared,
) -> Ran {
    let channel = msg.channel;
    let started = std::time::Instant::now();
    let span = shared
        .telemetry
        .as_ref()
        .map(|t| t.delivery(channel, &handler.component));
    let run = handler.executor.run(msg);
    let outcome = tokio::select! {
        biased;
        _ = shared.cancel.cancelled() => {
            account.settle(Settled::CutShort);
            metrics.cut_short.inc();
            if let Some(span) = span {
                span.end("cut_short", None);
            }
            tracing::warn!(component = %handler.component, channel = %channel, outcome = "cut_short", "handler stopped at the drain deadline; cut short");
            return Ran::CutShort;
        }
        outcome = run => outcome,
    };
    let elapsed = started.elapsed();
    metrics.duration.observe(elapsed.as_secs_f64());
    shared.logs.record(&handler.component, &outcome);
    let duration_ms = elapsed.as_secs_f64() * 1000.0;
    match &outcome.result {
        Ok(()) => {
            account.settle(Settled::Ok);
            metrics.ok.inc();
            if let Some(span) = span {
                span.end("ok", None);
            }
            tracing::debug!(component = %handler.component, channel = %channel, outcome = "ok", duration_ms, "handled");
            Ran::Ok
        }
        Err(e) => {
            account.settle(Settled::Failed);
            let label = if matches!(e, HandlerError::TimedOut(_)) {
                metrics.timed_out.inc();
                "timed_out"
            } else {
                metrics.failed.inc();
                "failed"
            };
            if let Some(span) = span {
                span.end(label, Some(e.to_string()));
            }
            tracing::warn!(component = %handler.component, channel = %channel, outcome = label, duration_ms, reason = %e, "handler failed");
            Ran::Failed(e.to_string())
        }
    }
}
