//! [`WagiModule`]: a WASI preview1 core module prepared once, run per message.
//!
//! Preparation does everything that does not depend on the message: compile
//! (through the engine's code cache), refuse components and non-wasm bytes,
//! check the entrypoint's export and type, link the whole preview1 API and
//! build the `InstancePre`. A run then only creates a `Store`, a WASI context
//! and an instance, calls the entrypoint and classifies how it ended.
//!
//! Not owned here: the engine and its epoch ticker, reading files from disk,
//! and naming the component in errors (the caller adds that context).

use spin_redis_sandbox::limits::{Limits, MemoryCap, limited_store};
use spin_redis_sandbox::prepare::{PrepareError, Prepared};
use spin_redis_sandbox::wasi::{Capture, Message, PreparedSandbox, Sandbox};
use spin_redis_sandbox::{HandlerError, WasmKind};
use wasmtime::{Engine, InstancePre, Linker, Module, ModuleExport};
use wasmtime_wasi::p1::WasiP1Ctx;

/// What a link failure adds: all this executor links.
const PROVIDES: &str =
    " (the wagi executor provides WASI preview1, `wasi_snapshot_preview1`, and nothing else)";

/// The state of one store: the WASI context and the memory cap.
pub struct WagiModuleState {
    wasi: WasiP1Ctx,
    memory: MemoryCap,
}

/// A prepared `wagi` core module.
pub struct WagiModule {
    engine: Engine,
    pre: InstancePre<WagiModuleState>,
    entrypoint: ModuleExport,
    sandbox: PreparedSandbox,
    limits: Limits,
}

impl WagiModule {
    /// Compiles and checks `bytes`. `entrypoint` is the export to call
    /// (`_start` for WASI commands).
    pub fn prepare(
        engine: &Engine,
        bytes: &[u8],
        entrypoint: &str,
        sandbox: Sandbox,
        limits: Limits,
    ) -> Result<Self, PrepareError> {
        WasmKind::require_core_module(bytes)?;
        let module =
            Module::new(engine, bytes).map_err(|e| PrepareError::Compile(format!("{e:#}")))?;
        Self::from_module(engine, module, entrypoint, sandbox, limits)
    }

    /// Like [`WagiModule::prepare`] for an already compiled module.
    pub fn from_module(
        engine: &Engine,
        module: Module,
        entrypoint: &str,
        sandbox: Sandbox,
        limits: Limits,
    ) -> Result<Self, PrepareError> {
        let func_ty = match module.get_export(entrypoint) {
            Some(wasmtime::ExternType::Func(f)) => f,
            Some(other) => {
                return Err(PrepareError::EntrypointType {
                    entrypoint: entrypoint.into(),
                    found: format!("{other:?}")
                        .split('(')
                        .next()
                        .unwrap_or("not a function")
                        .to_lowercase(),
                });
            }
            None => {
                let exports: Vec<String> = module
                    .exports()
                    .filter(|e| matches!(e.ty(), wasmtime::ExternType::Func(_)))
                    .map(|e| format!("{:?}", e.name()))
                    .collect();
                return Err(PrepareError::MissingEntrypoint {
                    entrypoint: entrypoint.into(),
                    exports: if exports.is_empty() {
                        "no functions".into()
                    } else {
                        exports.join(", ")
                    },
                });
            }
        };
        if func_ty.params().len() != 0 || func_ty.results().len() != 0 {
            return Err(PrepareError::EntrypointType {
                entrypoint: entrypoint.into(),
                found: format!("{func_ty}"),
            });
        }
        let sandbox = PreparedSandbox::new(sandbox).map_err(PrepareError::mount)?;
        let mut linker: Linker<WagiModuleState> = Linker::new(engine);
        spin_redis_sandbox::preview1::add_to_linker(&mut linker, |s| &mut s.wasi)
            .map_err(|e| PrepareError::link(e, PROVIDES))?;
        let pre = linker
            .instantiate_pre(&module)
            .map_err(|e| PrepareError::link(e, PROVIDES))?;
        let entrypoint = module
            .get_export_index(entrypoint)
            .expect("invariant: the export was found above");
        Ok(WagiModule {
            engine: engine.clone(),
            pre,
            entrypoint,
            sandbox,
            limits,
        })
    }
}

impl Prepared for WagiModule {
    fn limits(&self) -> &Limits {
        &self.limits
    }

    async fn call(&self, msg: &Message<'_>, capture: &Capture) -> Result<(), HandlerError> {
        let wasi = self.sandbox.p1_ctx(msg, capture);
        let state = WagiModuleState {
            wasi,
            memory: MemoryCap(self.limits.max_memory_bytes),
        };
        let mut store = limited_store(&self.engine, state, self.limits.timeout, |s| &mut s.memory);
        let ended = async {
            let instance = self.pre.instantiate_async(&mut store).await?;
            let func = instance
                .get_module_export(&mut store, &self.entrypoint)
                .and_then(|e| e.into_func())
                .expect("invariant: the entrypoint was checked at start-up");
            let func = func.typed::<(), ()>(&store)?;
            func.call_async(&mut store, ()).await
        }
        .await;
        HandlerError::from_call(ended)
    }
}
