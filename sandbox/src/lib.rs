//! `spin-redis-sandbox`: what every executor of spin-redis runs a handler in.
//!
//! A handler is untrusted code; each message gets a fresh store built from
//! these parts, whichever executor runs it (`wagi` modules and commands,
//! `spin` components and seed-era modules):
//! - [`wasi`]: the per-message WASI capabilities (stdin, env, argv, read-only
//!   mounts), described once per component and prepared at start-up;
//! - [`output`]: capped stdout/stderr capture;
//! - [`limits`]: the wall-clock deadline inside wasm and the memory cap;
//! - [`run`]: the run wrapper every executor shares (capture, deadline,
//!   outcome);
//! - [`prepare`]: [`Prepared`], the handler every executor prepares once and
//!   runs per message through [`run`], and [`PrepareError`], why one was
//!   refused at start-up;
//! - [`outcome`]: what a run produced, and [`HandlerError`];
//! - [`preview1`]: WASI preview1 in a linker, with sleeps that never hold a
//!   thread (every preview1 linker comes from here);
//! - [`binary`]: telling a core module from a component.
//!
//! Not owned here: the `Engine` (the caller builds one with epoch
//! interruption on and ticks it), the executors themselves, Redis,
//! manifests and logs.

pub mod binary;
pub mod limits;
pub mod outcome;
pub mod output;
pub mod prepare;
pub mod preview1;
pub mod run;
pub mod wasi;

pub use binary::WasmKind;
pub use limits::Limits;
pub use outcome::{HandlerError, Outcome};
pub use output::CappedOutput;
pub use prepare::{PrepareError, Prepared};
pub use wasi::{Capture, Message, Mount, Origin, Sandbox, StreamEntry};
