//! `spin-redis-compat`: the Wagi-style compat executor.
//!
//! Runs a plain WASI preview1 core module once per Redis message: the payload
//! on stdin, `_start` (or the configured entrypoint), stdout and stderr
//! captured, the exit code as the result. The contract users rely on is in
//! this crate's `README.md`.
//!
//! Tour:
//! - [`module`]: [`CompatModule`], prepared once per component (compile,
//!   export check, `InstancePre`), run once per message.
//! - [`sandbox`]: the per-message WASI capabilities (stdin, env, argv, files)
//!   shared with the component executor in the `spin-redis` crate.
//! - [`output`]: capped stdout/stderr capture.
//! - [`preview1`]: WASI preview1 in a linker, with sleeps that never hold
//!   a thread.
//! - [`limits`]: time and memory limits per message.
//! - [`outcome`]: what a run produced, and [`HandlerError`].
//!
//! What this crate does not own: the `Engine` (the caller builds one with
//! epoch interruption on and ticks it), Redis, manifests and logs.

pub mod binary;
pub mod limits;
pub mod module;
pub mod outcome;
pub mod output;
pub mod preview1;
pub mod sandbox;

pub use binary::WasmKind;
pub use limits::Limits;
pub use module::{CompatModule, PrepareError};
pub use outcome::{HandlerError, Outcome};
pub use output::CappedOutput;
pub use sandbox::{Capture, Message, Mount, Origin, Sandbox, StreamEntry};
