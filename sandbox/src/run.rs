//! The one run wrapper every executor shares: capture the output, run the
//! handler under its deadline, and turn how it ended into an [`Outcome`].
//!
//! Each executor only says how to instantiate and call its guest (the
//! `body`); what surrounds the call is the same for all of them, so a limit
//! added here holds for every executor.
//!
//! Not owned here: the epoch deadline inside wasm (`limits::arm_deadline`,
//! set when the store is made) and classifying wasmtime's errors
//! (`outcome`).

use crate::limits::Limits;
use crate::outcome::{HandlerError, Outcome};
use crate::wasi::Capture;
use std::future::Future;
use std::time::Duration;

/// Runs one message's handler call: `body` gets the output capture, is
/// raced against `limits.timeout`, and the capture becomes the outcome.
pub async fn run(
    limits: &Limits,
    body: impl AsyncFnOnce(&Capture) -> Result<(), HandlerError>,
) -> Outcome {
    let capture = Capture::new(limits);
    let result = with_deadline(limits.timeout, body(&capture)).await;
    capture.finish(result)
}

/// Runs one handler call under its deadline: whatever the guest is doing when
/// `timeout` passes (running wasm or waiting in a host call), the run is
/// dropped and reported as [`HandlerError::TimedOut`].
pub async fn with_deadline(
    timeout: Duration,
    run: impl Future<Output = Result<(), HandlerError>>,
) -> Result<(), HandlerError> {
    // The epoch check usually fires first for busy guests (its message is the
    // same); the timer is for guests that wait.
    tokio::time::timeout(timeout, run)
        .await
        .unwrap_or(Err(HandlerError::TimedOut(timeout)))
}
