//! `spin-redis-compat`: the `wagi` executor for WASI preview1 core modules.
//!
//! Runs a plain WASI preview1 core module once per Redis message, Wagi
//! style: the payload on stdin, `_start` (or the configured entrypoint),
//! stdout and stderr captured, the exit code as the result. The contract
//! users rely on is in this crate's `README.md`.
//!
//! [`module`] holds [`WagiModule`], prepared once per component (compile,
//! export check, `InstancePre`) and run once per message through the
//! sandbox's `Prepared::run`.
//!
//! Not owned here: the sandbox a run happens in (WASI context, capture,
//! limits, deadline, outcome, `PrepareError`: the `spin-redis-sandbox`
//! crate), the `Engine` (the caller builds one with epoch interruption on and
//! ticks it), Redis, manifests and logs.

pub mod module;

pub use module::WagiModule;
pub use spin_redis_sandbox::prepare::{PrepareError, Prepared};
