//! The default of every run setting (the table in `settings` says which
//! flag and manifest key each one has). Plain constants: the fuzz build of
//! the manifest parser compiles this file on its own.
//!
//! Not owned here: ranges (`ranges`), settling the value in force
//! (`run_config`).

use std::time::Duration;

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
pub const DEFAULT_MAX_MEMORY: u64 = 256 << 20;
pub const DEFAULT_MAX_OUTPUT: u64 = 4 << 20;
pub const DEFAULT_MAX_PAYLOAD: u64 = 16 << 20;
pub const DEFAULT_MAX_CONCURRENCY: usize = 64;
/// The queues are bounded by memory, not by a message count: 128 MiB holds
/// a backlog of 1 200 000 small messages (see `dispatch::QUEUED_OVERHEAD`).
pub const DEFAULT_MAX_QUEUED_BYTES: u64 = 128 << 20;
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
pub const DEFAULT_MAX_HOST_REPLY: u64 = 16 << 20;
pub const DEFAULT_MAX_HOST_LISTING: u64 = 10_000;
pub const DEFAULT_MAX_HOST_RECEIVED: u64 = 64 << 20;
/// Distinct addresses one component may keep a pooled connection to.
pub const DEFAULT_MAX_REDIS_ADDRESSES: usize = 16;
/// Dedicated connections (stateful or blocking commands) one component may
/// hold at once.
pub const DEFAULT_MAX_REDIS_DEDICATED: usize = 16;
