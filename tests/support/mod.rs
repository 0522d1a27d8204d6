//! Test harness shared by the integration tests, one file per concept:
//! a real `redis-server` on a free loopback port (`redis_server`), a Redis
//! Cluster (`cluster`), certificates (`tls`), the real `spin-redis` binary
//! (`spin_redis`) and what it printed (`output`), manifests (`app`),
//! handlers (`wasm`), what handlers printed (`blocks`), bounded polling (`wait`)
//! and loopback servers standing in for remote peers (`loopback`).
//!
//! Everything is re-exported here, so tests say `support::Redis`,
//! `support::wait_until` whatever file it lives in.

#![allow(dead_code)]
// each test module uses a different part of the harness
// benches/ includes this module by path and uses only a few of its parts.
#![allow(unused_imports)]

mod app;
mod blocks;
mod cluster;
mod http;
mod loopback;
mod output;
mod redis_server;
mod spin_redis;
mod tls;
mod wait;
mod wasm;

pub use app::*;
pub use blocks::*;
pub use cluster::*;
pub use http::*;
pub use loopback::*;
pub use output::*;
pub use redis_server::*;
pub use spin_redis::*;
pub use tls::*;
pub use wait::*;
pub use wasm::*;
