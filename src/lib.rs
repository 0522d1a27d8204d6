//! spin-redis: run WebAssembly handlers for every message on a Redis channel.
//!
//! A tour in the order a message travels:
//! - [`manifest`] reads `spin.toml` (Spin's v1 or v2) into an [`manifest::App`];
//! - [`prepare`] builds the one [`engine`] and prepares every handler once
//!   ([`executor`]: the [`component`] executor or the compat one from
//!   `spin-redis-compat`; [`detect`] tells from the wasm which fits, and
//!   under the component executor a core module is made a component by
//!   [`componentize`] or, seed-era, run by [`seed`]);
//! - [`source`] is where deliveries come from: `source::pubsub` holds one
//!   Redis subscription per address and hands every message to the
//!   [`dispatch`]er, which queues it per trigger and runs handlers with
//!   bounded concurrency; `source::stream` reads a consumer group as fast as
//!   handler slots free up, and acknowledges, retries or dead-letters each
//!   entry (on a single server or a Redis Cluster, `source::connect`);
//! - [`logs`] appends each handler's output to its files and the terminal;
//!   [`stats`] counts what became of every message.
//!
//! The commands are [`up`], [`invoke`] and [`check`]; [`cli`] defines their flags,
//! [`config`] the settings and their defaults, [`failure`] the exit codes.

pub mod address;
pub mod check;
pub mod cli;
pub mod command;
pub mod component;
pub mod componentize;
pub mod config;
pub mod detect;
pub mod dispatch;
pub mod engine;
pub mod executor;
pub mod failure;
pub mod host;
pub mod host_stubs;
pub mod invoke;
pub mod logs;
pub mod manifest;
pub mod ops;
pub mod prepare;
pub mod queue_budget;
pub mod seed;
pub mod source;
pub mod stats;
pub mod up;
