//! [`CompatModule`]: a WASI preview1 core module prepared once, run per message.
//!
//! Preparation does everything that does not depend on the message: compile
//! (through the engine's code cache), refuse components and non-wasm bytes,
//! check the entrypoint's export and type, link the whole preview1 API and
//! build the `InstancePre`. A run then only creates a `Store`, a WASI context
//! and an instance, calls the entrypoint and classifies how it ended.
//!
//! Not owned here: the engine and its epoch ticker, reading files from disk,
//! and naming the component in errors (the caller adds that context).

use spin_redis_sandbox::WasmKind;
use spin_redis_sandbox::limits::{Limits, MemoryCap, limited_store};
use spin_redis_sandbox::wasi::{Capture, Message, PreparedSandbox, Sandbox};
use spin_redis_sandbox::{HandlerError, Outcome};
use wasmtime::{Engine, InstancePre, Linker, Module, ModuleExport};
use wasmtime_wasi::p1::WasiP1Ctx;

/// Why a module was refused at start-up.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    #[error(
        "is a WebAssembly component, not a core module: use executor = {{ type = \"spin\" }} (the component executor) for it"
    )]
    IsComponent,
    #[error("is not a WebAssembly core module (no `\\0asm` version 1 header, and not WAT text)")]
    NotWasm,
    #[error("does not compile: {0}")]
    Compile(String),
    #[error("has no exported function {entrypoint:?} to call; it exports: {exports}")]
    MissingEntrypoint { entrypoint: String, exports: String },
    #[error(
        "export {entrypoint:?} must be a function taking and returning nothing, like WASI's `_start`, but it is {found}"
    )]
    EntrypointType { entrypoint: String, found: String },
    #[error("has a mount that cannot be opened: {0}")]
    Mount(String),
    #[error(
        "cannot be linked: {0} (the compat executor provides WASI preview1, `wasi_snapshot_preview1`, and nothing else)"
    )]
    Link(String),
}

/// The state of one store: the WASI context and the memory cap.
pub struct CompatState {
    wasi: WasiP1Ctx,
    memory: MemoryCap,
}

/// A prepared compat module.
pub struct CompatModule {
    engine: Engine,
    pre: InstancePre<CompatState>,
    entrypoint: ModuleExport,
    sandbox: PreparedSandbox,
    limits: Limits,
}

impl CompatModule {
    /// Compiles and checks `bytes`. `entrypoint` is the export to call
    /// (`_start` for WASI commands).
    pub fn prepare(
        engine: &Engine,
        bytes: &[u8],
        entrypoint: &str,
        sandbox: Sandbox,
        limits: Limits,
    ) -> Result<Self, PrepareError> {
        match WasmKind::of(bytes) {
            WasmKind::CoreModule => {}
            WasmKind::Component => return Err(PrepareError::IsComponent),
            WasmKind::UnknownWasm | WasmKind::NotWasm => return Err(PrepareError::NotWasm),
        }
        let module =
            Module::new(engine, bytes).map_err(|e| PrepareError::Compile(format!("{e:#}")))?;
        Self::from_module(engine, module, entrypoint, sandbox, limits)
    }

    /// Like [`CompatModule::prepare`] for an already compiled module.
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
        let sandbox =
            PreparedSandbox::new(sandbox).map_err(|e| PrepareError::Mount(format!("{e:#}")))?;
        let mut linker: Linker<CompatState> = Linker::new(engine);
        spin_redis_sandbox::preview1::add_to_linker(&mut linker, |s| &mut s.wasi)
            .map_err(|e| PrepareError::Link(format!("{e:#}")))?;
        let pre = linker
            .instantiate_pre(&module)
            .map_err(|e| PrepareError::Link(format!("{e:#}")))?;
        let entrypoint = module
            .get_export_index(entrypoint)
            .expect("invariant: the export was found above");
        Ok(CompatModule {
            engine: engine.clone(),
            pre,
            entrypoint,
            sandbox,
            limits,
        })
    }

    /// The sandbox this module runs in.
    pub fn sandbox(&self) -> &Sandbox {
        self.sandbox.sandbox()
    }

    /// Runs the module once on one message in a fresh instance.
    pub async fn run(&self, msg: Message<'_>) -> Outcome {
        spin_redis_sandbox::run::run(&self.limits, async |capture| {
            self.run_in(&msg, capture).await
        })
        .await
    }

    async fn run_in(&self, msg: &Message<'_>, capture: &Capture) -> Result<(), HandlerError> {
        let wasi = self.sandbox.p1_ctx(msg, capture);
        let state = CompatState {
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
