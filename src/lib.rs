//! spin-redis: run WebAssembly handlers for every message on a Redis channel.
//!
//! A tour in the order a message travels; dependencies point down this list
//! only (commands -> sources -> dispatch -> executors -> host APIs ->
//! manifest and settings -> the sandbox):
//!
//! 1. **Commands.** [`cli`] defines the flags; [`up`] runs an app, [`invoke`]
//!    runs one component once, [`check`] validates without connecting;
//!    [`templates`] (`new`, `templates list`), [`build`] and [`watch`] are
//!    the developer's loop. [`prepare`] is the start-up they share;
//!    [`reload`] wires the running app and changes it while it runs (SIGHUP,
//!    `watch`); [`failure`] maps errors to exit codes.
//! 2. **Configuration.** [`manifest`] reads `spin.toml` (Spin's v1 or v2) into
//!    a [`manifest::App`]; [`settings`] owns every run setting (default,
//!    range, flag over manifest over default); [`address`] parses and
//!    redacts Redis addresses.
//! 3. **Read.** [`source`] is where a message is read: `source::pubsub` (one
//!    subscription per address, every channel and pattern of it; a single
//!    server's frames read in `subscriber.rs`, parsed in `resp.rs`, a
//!    cluster's through redis-rs in `pubsub.rs`), `source::stream`
//!    (consumer groups: read in `stream/read.rs`, taken over in
//!    `stream/claim.rs`, each attempt in `stream/attempt.rs`, then
//!    `retry.rs`, `ack.rs`, `dead_letter.rs`),
//!    `source::list` (a list as a reliable queue: taken in
//!    `list/consume.rs`), `source::reconnect` (the backoff, ping watchdog and
//!    lazy command connection all three share) and `source::connect` (a
//!    single server or a Redis Cluster).
//! 4. **Dispatch.** [`dispatch`] routes each message to its triggers' queues
//!    (`dispatch::queues`, bounded by memory), runs handlers with bounded
//!    concurrency (`dispatch::capacity`, `dispatch::run`); the shutdown
//!    drain ends there.
//! 5. **Run.** [`executor`] is the closed set of executors (`wagi` modules
//!    and commands, `spin` components and seed-era modules), the one wasmtime
//!    engine, and the registry that prepares every handler once; the sandbox
//!    each message runs in (fresh store, stdin/stdout/stderr, limits,
//!    deadline), the one run wrapper every executor goes through and the
//!    one `PrepareError` come from the `spin-redis-sandbox` crate.
//!    Components get Spin's [`host`] APIs: `host::redis` and
//!    `host::key_value` (the pool or store, the operations once, a small
//!    adapter per interface version), variables and outbound HTTP, every
//!    destination checked by `manifest::allowed_hosts`.
//! 6. **Log and count.** [`logs`] appends each handler's output to its files
//!    and the terminal; [`stats`] counts what became of every delivery;
//!    [`ops`] serves metrics, health and traces.

pub mod address;
pub mod build;
pub mod check;
pub mod cli;
pub mod dispatch;
pub mod executor;
pub mod failure;
pub mod host;
pub mod invoke;
pub mod logs;
pub mod manifest;
pub mod ops;
pub mod prepare;
pub mod queue_budget;
pub mod reload;
pub mod settings;
pub mod source;
pub mod stats;
pub mod templates;
pub mod up;
pub mod watch;
