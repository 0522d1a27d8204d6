//! WASI 0.2 command components under the `wagi` executor: a component that
//! exports `wasi:cli/run` (a Rust `wasm32-wasip2` binary, TinyGo's or Go's
//! wasip2 output, componentize-py's command world) runs exactly like a
//! compat module: the payload on stdin, the same environment and argv,
//! stdout and stderr captured, and the exit code as the result
//! (`wasi:cli/exit` with an error, or `run` returning `err`, is exit code 1;
//! `exit-with-code n` is n).
//!
//! Not owned here: the shared sandbox and limits (`spin_redis_sandbox`), the
//! choice of executor (`executor`), stubbing other imports (`host::stubs`).

use crate::executor::engine::compile_error;
use crate::executor::wasi_p2::WasiP2State;
use spin_redis_sandbox::limits::{Limits, limited_store};
use spin_redis_sandbox::wasi::{Capture, Message, PreparedSandbox, Sandbox};
use spin_redis_sandbox::{HandlerError, PrepareError, Prepared, WasmKind};
use wasmtime::Engine;
use wasmtime::component::{Component, Linker};
use wasmtime_wasi::p2::bindings::CommandPre;

/// A prepared command component.
pub struct WagiCommand {
    engine: Engine,
    pre: CommandPre<WasiP2State>,
    sandbox: PreparedSandbox,
    limits: Limits,
}

impl WagiCommand {
    /// Whether `bytes` are a component at all (the wagi executor's other
    /// kind is a core module).
    pub fn is_component(bytes: &[u8]) -> bool {
        WasmKind::of(bytes) == WasmKind::Component
    }

    pub fn prepare(
        engine: &Engine,
        bytes: &[u8],
        sandbox: Sandbox,
        limits: Limits,
    ) -> Result<Self, PrepareError> {
        let component = Component::new(engine, bytes).map_err(|e| compile_error(&e))?;
        let exports: Vec<String> = component
            .component_type()
            .exports(engine)
            .map(|(name, _)| name.to_string())
            .collect();
        if !exports.iter().any(|e| e.starts_with("wasi:cli/run@0.2")) {
            return Err(PrepareError::NotCommand(if exports.is_empty() {
                "nothing".into()
            } else {
                exports.join(", ")
            }));
        }
        let mut linker: Linker<WasiP2State> = Linker::new(engine);
        // `exit-with-code` is part of wasi:cli@0.2.12, linked here.
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|e| PrepareError::link(e, ""))?;
        crate::host::stubs::link(engine, &mut linker, &component)
            .map_err(|e| PrepareError::link(e, ""))?;
        let pre = linker
            .instantiate_pre(&component)
            .and_then(CommandPre::new)
            .map_err(|e| PrepareError::link(e, ""))?;
        let sandbox = PreparedSandbox::new(sandbox).map_err(PrepareError::mount)?;
        Ok(WagiCommand {
            engine: engine.clone(),
            pre,
            sandbox,
            limits,
        })
    }
}

impl Prepared for WagiCommand {
    fn limits(&self) -> &Limits {
        &self.limits
    }

    async fn call(&self, msg: &Message<'_>, capture: &Capture) -> Result<(), HandlerError> {
        let state = WasiP2State::new(self.sandbox.p2_ctx(msg, capture), &self.limits);
        let mut store = limited_store(&self.engine, state, self.limits.timeout, |s| &mut s.memory);
        let ended = async {
            let command = self.pre.instantiate_async(&mut store).await?;
            command.wasi_cli_run().call_run(&mut store).await
        }
        .await;
        // `run` returning `err` is how a command says "exit code 1".
        HandlerError::from_handled(ended.map(|run| run.map_err(|()| HandlerError::Exit(1))))
    }
}
