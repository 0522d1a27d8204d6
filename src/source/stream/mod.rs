//! The stream source: a Redis Streams consumer group per stream trigger,
//! read at-least-once and shared by any number of spin-redis processes.
//!
//! - **Reading follows capacity**: a handler slot is held before an entry is
//!   read (`XREADGROUP ... COUNT n` with n the slots held), so nothing is
//!   ever dropped or queued in memory: the stream is the queue.
//! - **Acknowledged after success**: a handler that succeeded has its entry
//!   acknowledged (`XACK`, batched) once its output reached the log files.
//! - **Retries** (`retry.rs`): a failure (error, trap, timeout, a panic) is
//!   handed to a handler again after a backoff (`source::retry`: 1 s
//!   doubling, capped at 60 s), up to `max_deliveries` attempts; the attempt number is
//!   Redis's own delivery counter, kept right by re-claiming the entry
//!   (`XCLAIM`) for each retry, so it survives restarts. A waiting retry
//!   keeps only the entry's id, and reading pauses while as many retries
//!   wait as the trigger may run at once: a failing dependency leaves the
//!   backlog in Redis. A retry whose entry was taken over meanwhile (it
//!   idled past `claim_idle`) is left to its new owner.
//! - **Dead letters** (`dead_letter.rs`): after the last attempt, or at once
//!   for an entry without the field or too large, the entry is appended to
//!   the dead-letter stream (its fields plus `dead_letter_*`) and
//!   acknowledged, atomically where Redis allows, in a bounded number of
//!   tries.
//! - **Crashes**: entries pending on any consumer for `claim_idle` are taken
//!   over (`XAUTOCLAIM`); a consumer first reads its own pending entries
//!   (`XREADGROUP ... 0`) when it starts. Consumers idle that long with
//!   nothing pending are deleted (`consumers.rs`).
//! - **A lost group** (a Redis restart without persistence, `XGROUP
//!   DESTROY`) is made again where this process last saw it (the last entry
//!   it read, or the group's last delivered id), or at `0`: never at `$`,
//!   which would skip what was added meanwhile.
//! - **Shutdown**: reading, claiming and retrying stop; what is in flight
//!   finishes (within the drain deadline) and is acknowledged; entries
//!   waiting for a retry, and anything cut short, stay pending.
//!
//! The files, by role: the settings (`spec.rs`); the running trigger and
//! what its tasks share (`running.rs`); the reader (`read.rs`), the claimer
//! (`claim.rs`), the retrier (`retry.rs`) and the acknowledger (`ack.rs`);
//! one attempt (`attempt.rs`); dead letters (`dead_letter.rs`); stale
//! consumers (`consumers.rs`); Redis's replies (`reply.rs`).
//!
//! Not owned here: running a handler (`dispatch::run_delivery`),
//! making connections ([`super::connect`]) and reconnecting
//! ([`super::reconnect`]).

mod ack;
mod attempt;
mod claim;
mod consumers;
mod dead_letter;
mod read;
mod reply;
mod retry;
mod running;
mod spec;

pub use running::{Counters, Running, StreamSource, Summary};
pub use spec::{MIN_WAITING, StreamSpec, default_consumer, max_waiting, spec};
