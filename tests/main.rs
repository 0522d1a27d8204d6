//! The integration tests, built as one binary: each module is a topic, and
//! `support` (a real `redis-server` on a free loopback port, the real
//! `spin-redis` binary, polling helpers) is compiled once for all of them.
//!
//! Run one topic with `cargo test --test suite <module>::`, one test by name.

mod support;

mod adversarial;
mod cache;
mod cluster;
mod component;
mod destinations;
mod devloop;
mod eras;
mod faults;
mod files;
mod golden;
mod host_apis;
mod invoke;
mod manifest;
mod ops;
mod quotas;
mod reload;
mod sources;
mod streams;
mod subscriber;
mod up;
