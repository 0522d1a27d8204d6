//! spin-redis: run WebAssembly handlers for every message on a Redis channel.
//!
//! A tour in the order a message travels:
//! - [`manifest`] reads `spin.toml` (Spin's v1 or v2) into an [`manifest::App`];
//! - [`prepare`] builds the one [`engine`] and prepares every handler once
//!   ([`executor`]: the [`component`] executor or the compat one from
//!   `spin-redis-compat`);
//! - [`subscriber`] holds one Redis connection per address and hands every
//!   message to the [`dispatch`]er, which queues it per trigger and runs
//!   handlers with bounded concurrency;
//! - [`logs`] appends each handler's output to its files and the terminal;
//!   [`stats`] counts what became of every message.
//!
//! The commands are [`up`] and [`invoke`]; [`cli`] defines their flags,
//! [`config`] the settings and their defaults, [`failure`] the exit codes.

pub mod address;
pub mod cli;
pub mod component;
pub mod config;
pub mod dispatch;
pub mod engine;
pub mod executor;
pub mod failure;
pub mod host_stubs;
pub mod invoke;
pub mod logs;
pub mod manifest;
pub mod prepare;
pub mod stats;
pub mod subscriber;
pub mod up;
