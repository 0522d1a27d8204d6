//! Liveness and readiness. The process is live while it runs; it is ready
//! once every condition registered here holds: every Redis subscription is
//! live, and every stream group and list read. A condition that goes down (a lost
//! connection) makes the process not ready until it comes back.
//!
//! Not owned here: serving `/healthz` and `/readyz` (see `ops::server`).

use crate::ops::metrics::AddressMetrics;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

/// The readiness conditions of the process.
#[derive(Debug, Default)]
pub struct Health {
    conditions: Mutex<Vec<(String, Arc<AtomicBool>)>>,
}

/// One readiness condition, down until set.
#[derive(Debug, Clone)]
pub struct Condition(Arc<AtomicBool>);

impl Condition {
    pub fn set(&self, up: bool) {
        self.0.store(up, Ordering::Relaxed);
    }
}

impl Health {
    /// Registers a condition named `name` (shown when it is down).
    pub fn condition(&self, name: impl Into<String>) -> Condition {
        let flag = Arc::new(AtomicBool::new(false));
        self.conditions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((name.into(), flag.clone()));
        Condition(flag)
    }

    /// Stops counting `condition` (its trigger was removed by a reload).
    pub fn forget(&self, condition: &Condition) {
        self.conditions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .retain(|(_, flag)| !Arc::ptr_eq(flag, &condition.0));
    }

    /// `Ok` when every condition holds; else the names of those down.
    pub fn ready(&self) -> Result<(), Vec<String>> {
        let down: Vec<String> = self
            .conditions
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter(|(_, up)| !up.load(Ordering::Relaxed))
            .map(|(name, _)| name.clone())
            .collect();
        if down.is_empty() { Ok(()) } else { Err(down) }
    }
}

/// What a Redis connection reports: its `redis_up` gauge, its reconnect
/// counter and its readiness condition, moved together.
#[derive(Debug, Clone)]
pub struct RedisLink {
    pub metrics: AddressMetrics,
    pub ready: Condition,
}

impl RedisLink {
    /// The connection is up (again, when `reconnected`).
    pub fn connected(&self, reconnected: bool) {
        self.metrics.up.set(1);
        if reconnected {
            self.metrics.reconnects.inc();
        }
        self.ready.set(true);
    }

    /// The connection is down.
    pub fn lost(&self) {
        self.metrics.up.set(0);
        self.ready.set(false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_while_every_condition_holds() {
        let h = Health::default();
        assert!(h.ready().is_ok(), "nothing to wait for");
        let a = h.condition("subscription redis://a");
        let b = h.condition("subscription redis://b");
        assert_eq!(h.ready().unwrap_err().len(), 2);
        a.set(true);
        b.set(true);
        assert!(h.ready().is_ok());
        b.set(false);
        assert_eq!(h.ready().unwrap_err(), vec!["subscription redis://b"]);
        h.forget(&b);
        assert!(h.ready().is_ok(), "a forgotten condition no longer counts");
    }
}
