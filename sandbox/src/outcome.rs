//! What one run of a handler produced: its captured output and its result.
//!
//! [`HandlerError`] is the closed set of ways a handler can fail; callers
//! branch on it (logs, counters, `invoke`'s exit code). Classification of a raw
//! wasmtime error into it lives here too, so that both executors report the
//! same failures the same way.

use crate::limits::{MemoryLimitExceeded, TimedOut};
use bytes::Bytes;
use wasmtime_wasi::I32Exit;

/// Why a handler did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandlerError {
    /// A compat module called `proc_exit` with a non-zero code.
    #[error("exited with code {0}")]
    Exit(i32),
    /// A component returned its `err` result.
    #[error("returned an error: {0}")]
    Returned(String),
    /// The guest trapped (including calls to host APIs that are not provided).
    #[error("trapped: {0}")]
    Trap(String),
    /// A host function the guest called failed (for example a Spin host API
    /// that is not provided).
    #[error("failed: {0}")]
    Host(String),
    /// The guest ran past its deadline and was stopped.
    #[error("timed out after {0:?}")]
    TimedOut(std::time::Duration),
    /// The guest tried to grow its memory past the cap.
    #[error("{0}")]
    MemoryLimit(String),
    /// The host could not set up the run (for example a mount vanished).
    #[error("could not start: {0}")]
    Setup(String),
}

/// What a run produced.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub stdout: Bytes,
    pub stderr: Bytes,
    /// Bytes of stdout cut because of the cap.
    pub stdout_cut: u64,
    /// Bytes of stderr cut because of the cap.
    pub stderr_cut: u64,
    pub result: Result<(), HandlerError>,
}

impl HandlerError {
    /// The result of a guest call: `Ok`, or how it failed (`proc_exit(0)`
    /// counts as `Ok`).
    pub fn from_call(ended: wasmtime::Result<()>) -> Result<(), HandlerError> {
        match ended {
            Ok(()) => Ok(()),
            Err(e) => HandlerError::classify(&e).map_or(Ok(()), Err),
        }
    }

    /// The result of a guest call that returns its own verdict (a handler's
    /// `result`): that verdict, or how the call failed as
    /// [`HandlerError::from_call`] tells it (so `proc_exit(0)` or `exit(0)`
    /// ends the handler successfully, whatever the executor).
    pub fn from_handled(
        ended: wasmtime::Result<Result<(), HandlerError>>,
    ) -> Result<(), HandlerError> {
        match ended {
            Ok(handled) => handled,
            Err(e) => HandlerError::from_call(Err(e)),
        }
    }

    /// Turns the error a guest call ended with into a [`HandlerError`], or
    /// `None` for `proc_exit(0)`, which is success.
    ///
    /// Checked without formatting or converting the error first: an exit code
    /// is the common path and must stay cheap.
    pub fn classify(err: &wasmtime::Error) -> Option<HandlerError> {
        if let Some(exit) = err.downcast_ref::<I32Exit>() {
            return (exit.0 != 0).then_some(HandlerError::Exit(exit.0));
        }
        if let Some(t) = err.downcast_ref::<TimedOut>() {
            return Some(HandlerError::TimedOut(t.0));
        }
        if let Some(m) = err.downcast_ref::<MemoryLimitExceeded>() {
            return Some(HandlerError::MemoryLimit(m.to_string()));
        }
        if let Some(trap) = err.downcast_ref::<wasmtime::Trap>() {
            // One line for the log: the trap and where it happened, innermost
            // guest functions first.
            let mut msg = trap.to_string();
            if let Some(bt) = err.downcast_ref::<wasmtime::WasmBacktrace>() {
                let frames: Vec<String> = bt
                    .frames()
                    .iter()
                    .take(4)
                    .map(|f| {
                        f.func_name()
                            .map_or_else(|| format!("func {}", f.func_index()), str::to_string)
                    })
                    .collect();
                if !frames.is_empty() {
                    msg.push_str(&format!(" (in {})", frames.join(" <- ")));
                }
            }
            return Some(HandlerError::Trap(msg));
        }
        // Any other error ends the guest like a trap: a host function that
        // failed, for example. Its root cause is the readable part; the
        // outer layers are the wasm backtrace.
        Some(HandlerError::Host(err.root_cause().to_string()))
    }
}
