//! The closed set of executors: what runs a handler for one message.
//!
//! The manifest's `executor.type` chooses between two, and the wasm itself
//! decides the variant within each (see [`detect`]):
//! - `wagi`: a WASI preview1 core module ([`Executor::Wagi`], the
//!   `spin-redis-compat` crate) or a WASI 0.2 command component
//!   ([`Executor::WagiCommand`], [`wagi_command`]): payload on stdin, exit
//!   code as the result;
//! - `spin`: a component exporting a Redis handler interface
//!   ([`Executor::Spin`], [`spin`]; a core module with component-type
//!   metadata is made a component first by [`componentize`]), or a seed-era
//!   core module called through the pre-component canonical ABI
//!   ([`Executor::SpinSeedEra`], [`seed_era`]).
//!
//! Each executor type is named for the setting it serves (`Wagi...`,
//! `Spin...`) and implements the sandbox crate's `Prepared`: it says only how
//! to call its guest, and the one run wrapper (capture, deadline, outcome)
//! and the one `PrepareError` come from `spin-redis-sandbox`.
//!
//! Around them: the one wasmtime [`engine`], the [`registry`] that prepares
//! every handler of an app once at start-up, and [`files`], which stages a
//! component's `files` into mounts.
//!
//! Not owned here: the sandbox every executor builds its store from (the
//! `spin-redis-sandbox` crate: WASI context, limits, output, run wrapper) and
//! the host APIs linked into components (`crate::host`).

pub mod componentize;
pub mod detect;
pub mod engine;
pub mod files;
pub mod registry;
pub mod seed_era;
pub mod spin;
pub mod wagi_command;
pub mod wasi_p2;

pub use registry::{Handler, HandlerKey, Handlers};

use seed_era::SpinSeedEraModule;
use spin::SpinComponent;
use spin_redis_compat::WagiModule;
use spin_redis_sandbox::wasi::Message;
use spin_redis_sandbox::{Outcome, Prepared};
use wagi_command::WagiCommand;

/// One prepared executor.
pub enum Executor {
    /// `wagi`: a WASI preview1 core module.
    Wagi(WagiModule),
    /// `wagi`: a WASI 0.2 command component (`wasi:cli/run`).
    WagiCommand(WagiCommand),
    /// `spin`: a component exporting a Redis handler interface (perhaps made
    /// from a core module with component-type metadata, see `componentize`).
    Spin(SpinComponent),
    /// `spin`: a seed-era core module, `handle-redis-message` in the
    /// pre-component canonical ABI (see `seed_era`).
    SpinSeedEra(SpinSeedEraModule),
}

impl Executor {
    pub async fn run(&self, msg: Message<'_>) -> Outcome {
        match self {
            Executor::Wagi(m) => m.run(msg).await,
            Executor::WagiCommand(c) => c.run(msg).await,
            Executor::Spin(c) => c.run(msg).await,
            Executor::SpinSeedEra(s) => s.run(msg).await,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Executor::Wagi(_) => "wagi (WASI preview1 core module)".into(),
            Executor::WagiCommand(_) => "wagi (WASI 0.2 command component, wasi:cli/run)".into(),
            Executor::Spin(c) => format!("spin ({})", c.interface().describe()),
            Executor::SpinSeedEra(_) => {
                "spin (seed-era core module: handle-redis-message, pre-component canonical ABI)"
                    .into()
            }
        }
    }
}
