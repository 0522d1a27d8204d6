//! Per-message limits: wall-clock deadline, linear-memory cap, output caps.
//!
//! The deadline is enforced twice, because a guest spends its time in two
//! places. While wasm runs, epoch interruption: the engine's owner ticks the
//! epoch (see `spin-redis`'s `engine` module); each tick the running guest
//! yields to the async executor, so a busy handler never holds a worker thread
//! for more than one tick, and once the deadline has passed the guest is
//! stopped with [`TimedOut`]. While the guest waits in a host call (a sleep,
//! `wasi:io/poll`, a read), no epoch check runs, so `run::with_deadline` also
//! (in `run`) races the whole run against a timer and drops it when the timer wins: every
//! host call is async and cancellable (no WASI call blocks its thread, see
//! `preview1`), so dropping the run frees its thread and its slot at once.
//! The memory cap is a [`ResourceLimiter`] that turns a growth past the cap
//! into a [`MemoryLimitExceeded`] trap.
//!
//! Not owned here: the defaults shown to users (`spin-redis`'s manifest and
//! CLI document them) and the epoch ticker itself.

use std::time::{Duration, Instant};
use wasmtime::{ResourceLimiter, Store, UpdateDeadline};

/// Limits applied to every run of a handler.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock time one message may take.
    pub timeout: Duration,
    /// Largest linear memory (and table elements count stays wasmtime's).
    pub max_memory_bytes: usize,
    /// Bytes of stdout kept per message; the rest is counted and cut.
    pub max_stdout_bytes: usize,
    /// Bytes of stderr kept per message; the rest is counted and cut.
    pub max_stderr_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            timeout: Duration::from_secs(30),
            max_memory_bytes: 256 * 1024 * 1024,
            max_stdout_bytes: 4 * 1024 * 1024,
            max_stderr_bytes: 4 * 1024 * 1024,
        }
    }
}

/// The error a guest is stopped with when its deadline passes.
#[derive(Debug, thiserror::Error)]
#[error("timed out after {0:?}")]
pub struct TimedOut(pub Duration);

/// The error a guest is stopped with when it grows memory past the cap.
#[derive(Debug, thiserror::Error)]
#[error("memory limit of {limit} bytes exceeded (tried to grow to {desired} bytes)")]
pub struct MemoryLimitExceeded {
    pub limit: usize,
    pub desired: usize,
}

/// A [`ResourceLimiter`] that caps linear memory.
#[derive(Debug)]
pub struct MemoryCap(pub usize);

impl ResourceLimiter for MemoryCap {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.0 {
            return Err(wasmtime::Error::new(MemoryLimitExceeded {
                limit: self.0,
                desired,
            }));
        }
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        _desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(true)
    }
}

/// A fresh store for one run: `data` holds a [`MemoryCap`] that `cap`
/// returns; the memory limiter and the deadline are armed.
pub fn limited_store<T: Send + 'static>(
    engine: &wasmtime::Engine,
    data: T,
    timeout: Duration,
    cap: fn(&mut T) -> &mut MemoryCap,
) -> Store<T> {
    let mut store = Store::new(engine, data);
    store.limiter(move |data| cap(data) as &mut dyn ResourceLimiter);
    arm_deadline(&mut store, timeout);
    store
}

/// Arms the deadline on a fresh store: yield to the executor on every epoch
/// tick, and stop the guest with [`TimedOut`] once `timeout` has passed.
pub fn arm_deadline<T: 'static>(store: &mut Store<T>, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(move |_| {
        if Instant::now() >= deadline {
            Err(wasmtime::Error::new(TimedOut(timeout)))
        } else {
            Ok(UpdateDeadline::Yield(1))
        }
    });
}
