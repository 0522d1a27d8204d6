//! Bounded waiting for an effect: poll a condition until it holds or the
//! patience runs out. Owns the patience constants; does not own what is
//! waited for (see `redis_server`, `spin_redis`). A wait is for readiness or an
//! effect, never an assertion on how long something took.

use std::time::{Duration, Instant};

/// How long to wait for an expected effect before failing the test.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// How long start-up may take before the first subscription: a cold
/// compile of a large component (the 18 MB Python one) takes tens of seconds
/// on a loaded 2-core machine. A wait for readiness, not a timing assertion.
pub const START_UP_PATIENCE: Duration = Duration::from_secs(300);

/// Like [`wait_until`] with a patience of its own.
pub fn wait_until_within(what: &str, patience: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        if start.elapsed() > patience {
            panic!("gave up waiting for: {what}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Polls `cond` until it holds, panicking with `what` after [`PATIENCE`].
pub fn wait_until(what: &str, cond: impl FnMut() -> bool) {
    wait_until_within(what, PATIENCE, cond)
}
