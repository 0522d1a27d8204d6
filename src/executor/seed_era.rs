//! The seed-era executor: a core module built for the seed's
//! `spin-redis.wit` with the wit-bindgen of its time (wit-bindgen-rust 0.2,
//! Aug 2022), called through the pre-component canonical ABI as the seed's
//! Spin (v0.2 to v0.5) called it.
//!
//! Recognised (see `detect`): a core module exporting `memory`,
//! `handle-redis-message: (i32 ptr, i32 len) -> i32` and
//! `canonical_abi_realloc: (old_ptr, old_len, align, new_len) -> i32`
//! (`canonical_abi_free` is usually there too, and not needed). For each
//! message, in a fresh instance:
//! 1. `_initialize` is called first if the module exports it (a WASI
//!    reactor);
//! 2. `canonical_abi_realloc(0, 0, 1, len)` makes room for the payload, which
//!    is copied there; the guest owns it from then on (wit-bindgen 0.2's
//!    export glue frees it itself), so the host never calls
//!    `canonical_abi_free`;
//! 3. `handle-redis-message(ptr, len)` returns a pointer to its result area,
//!    where `expected<unit, error>` is laid out as one byte for the case
//!    (0: ok, 1: err) and, for err, one byte at offset 1 for the `error` enum
//!    (0: `success`, 1: `error`).
//!
//! `ok` and `err(success)` are success and `err(error)` a failure, as in the
//! component contract (the seed's Spin ignored the result; failures are
//! logged and counted here, like every other handler's). Any other byte is
//! an ABI violation and fails the message.
//!
//! The module gets WASI preview1 with the `wagi` executor's sandbox, limits
//! and output capture. Any other import (a seed-era Spin SDK's
//! `spin-config`, `outbound-redis`, `wasi-outbound-http`...) is linked to a
//! stub that fails the message naming it, so the module loads.
//!
//! Not owned here: recognising such a module (`detect`), choosing the
//! executor (`executor`).

use crate::executor::detect::{SEED_HANDLER, SEED_MEMORY, SEED_REALLOC};
use crate::host::stubs::Unavailable;
use spin_redis_sandbox::limits::{Limits, MemoryCap, limited_store};
use spin_redis_sandbox::wasi::{Capture, Message, PreparedSandbox, Sandbox};
use spin_redis_sandbox::{HandlerError, PrepareError, Prepared};
use wasmtime::{Engine, ExternType, InstancePre, Linker, Module, ModuleExport, ValType};
use wasmtime_wasi::p1::WasiP1Ctx;

/// The WASI preview1 module name; every other import module is stubbed.
const WASI_P1: &str = "wasi_snapshot_preview1";
/// What a link failure adds: all this executor links.
const PROVIDES: &str =
    " (a seed-era module gets WASI preview1 and stubs of other functions, nothing else)";
/// A WASI reactor's initialiser, called before the handler when exported.
const INITIALIZE: &str = "_initialize";

/// How a run broke the pre-component canonical ABI.
#[derive(Debug, thiserror::Error)]
#[error("`{SEED_HANDLER}` broke the canonical ABI: {0}")]
pub struct AbiViolation(String);

/// The state of one store.
pub struct SpinSeedEraState {
    wasi: WasiP1Ctx,
    memory: MemoryCap,
}

/// A prepared seed-era module.
pub struct SpinSeedEraModule {
    engine: Engine,
    pre: InstancePre<SpinSeedEraState>,
    handler: ModuleExport,
    realloc: ModuleExport,
    memory: ModuleExport,
    initialize: Option<ModuleExport>,
    sandbox: PreparedSandbox,
    limits: Limits,
}

impl SpinSeedEraModule {
    /// Compiles `bytes` (a core module that `detect` found to be seed-era),
    /// checks the ABI's exports and links it.
    pub fn prepare(
        engine: &Engine,
        bytes: &[u8],
        sandbox: Sandbox,
        limits: Limits,
    ) -> Result<SpinSeedEraModule, PrepareError> {
        let module =
            Module::new(engine, bytes).map_err(|e| PrepareError::Compile(format!("{e:#}")))?;
        use ValType::I32;
        check_func(
            &module,
            SEED_HANDLER,
            &[I32, I32],
            &[I32],
            "(i32, i32) -> i32",
        )?;
        check_func(
            &module,
            SEED_REALLOC,
            &[I32, I32, I32, I32],
            &[I32],
            "(i32, i32, i32, i32) -> i32",
        )?;
        let initialize = match module.get_export(INITIALIZE) {
            Some(ExternType::Func(_)) => {
                check_func(&module, INITIALIZE, &[], &[], "() -> ()")?;
                module.get_export_index(INITIALIZE)
            }
            _ => None,
        };
        let index = |name: &str| {
            module
                .get_export_index(name)
                .expect("invariant: `detect` found this export")
        };
        let (handler, realloc, memory) =
            (index(SEED_HANDLER), index(SEED_REALLOC), index(SEED_MEMORY));
        let mut linker: Linker<SpinSeedEraState> = Linker::new(engine);
        spin_redis_sandbox::preview1::add_to_linker(&mut linker, |s| &mut s.wasi)
            .map_err(|e| PrepareError::link(e, PROVIDES))?;
        for import in module.imports() {
            let (ExternType::Func(ty), false) = (import.ty(), import.module() == WASI_P1) else {
                continue;
            };
            let full = format!("{}::{}", import.module(), import.name());
            linker
                .func_new(import.module(), import.name(), ty, move |_, _, _| {
                    Err(wasmtime::Error::new(Unavailable(full.clone())))
                })
                .map_err(|e| PrepareError::link(e, PROVIDES))?;
        }
        let pre = linker
            .instantiate_pre(&module)
            .map_err(|e| PrepareError::link(e, PROVIDES))?;
        let sandbox = PreparedSandbox::new(sandbox).map_err(PrepareError::mount)?;
        Ok(SpinSeedEraModule {
            engine: engine.clone(),
            pre,
            handler,
            realloc,
            memory,
            initialize,
            sandbox,
            limits,
        })
    }
}

impl Prepared for SpinSeedEraModule {
    fn limits(&self) -> &Limits {
        &self.limits
    }

    async fn call(&self, msg: &Message<'_>, capture: &Capture) -> Result<(), HandlerError> {
        let state = SpinSeedEraState {
            wasi: self.sandbox.p1_ctx(msg, capture),
            memory: MemoryCap(self.limits.max_memory_bytes),
        };
        let mut store = limited_store(&self.engine, state, self.limits.timeout, |s| &mut s.memory);
        let payload: &[u8] = &msg.payload;
        let ended: wasmtime::Result<Result<(), HandlerError>> = async {
            let instance = self.pre.instantiate_async(&mut store).await?;
            let func = |store: &mut wasmtime::Store<SpinSeedEraState>, idx: &ModuleExport| {
                instance
                    .get_module_export(store, idx)
                    .and_then(|e| e.into_func())
                    .expect("invariant: the export was checked at start-up")
            };
            if let Some(init) = &self.initialize {
                let init = func(&mut store, init).typed::<(), ()>(&store)?;
                init.call_async(&mut store, ()).await?;
            }
            let memory = instance
                .get_module_export(&mut store, &self.memory)
                .and_then(|e| e.into_memory())
                .expect("invariant: `detect` found the memory export");
            let realloc =
                func(&mut store, &self.realloc).typed::<(i32, i32, i32, i32), i32>(&store)?;
            let handler = func(&mut store, &self.handler).typed::<(i32, i32), i32>(&store)?;
            // Payloads are capped far below 2 GiB (`--max-payload`).
            let len = i32::try_from(payload.len()).map_err(|_| {
                wasmtime::Error::new(AbiViolation("the payload is too large for wasm32".into()))
            })?;
            let ptr = realloc.call_async(&mut store, (0, 0, 1, len)).await?;
            memory
                .write(&mut store, ptr as u32 as usize, payload)
                .map_err(|_| {
                    wasmtime::Error::new(AbiViolation(format!(
                        "`{SEED_REALLOC}` returned {ptr:#x}, with no room for {len} bytes there"
                    )))
                })?;
            let ret = handler.call_async(&mut store, (ptr, len)).await?;
            let mut area = [0u8; 2];
            memory
                .read(&store, ret as u32 as usize, &mut area)
                .map_err(|_| {
                    wasmtime::Error::new(AbiViolation(format!(
                        "its result pointer {ret:#x} is outside memory"
                    )))
                })?;
            match area {
                [0, _] | [1, 0] => Ok(Ok(())),
                [1, 1] => Ok(Err(HandlerError::Returned("error".into()))),
                [1, e] => Err(wasmtime::Error::new(AbiViolation(format!(
                    "its error enum is {e}, not 0 (success) or 1 (error)"
                )))),
                [case, _] => Err(wasmtime::Error::new(AbiViolation(format!(
                    "its result case is {case}, not 0 (ok) or 1 (err)"
                )))),
            }
        }
        .await;
        HandlerError::from_handled(ended)
    }
}

/// Checks that `module` exports function `name` with exactly this type.
fn check_func(
    module: &Module,
    name: &'static str,
    params: &[ValType],
    results: &[ValType],
    expected: &'static str,
) -> Result<(), PrepareError> {
    let wrong = |found: String| PrepareError::WrongSignature {
        name,
        found,
        expected,
    };
    let Some(ExternType::Func(f)) = module.get_export(name) else {
        return Err(wrong("not a function".into()));
    };
    let same = |a: &mut dyn ExactSizeIterator<Item = ValType>, b: &[ValType]| {
        a.len() == b.len() && a.zip(b).all(|(x, y)| ValType::eq(&x, y))
    };
    if !same(&mut f.params(), params) || !same(&mut f.results(), results) {
        return Err(wrong(signature(&f)));
    }
    Ok(())
}

/// `(i32, i32) -> i32`, the way the expected types are written.
fn signature(f: &wasmtime::FuncType) -> String {
    let list =
        |types: &mut dyn Iterator<Item = ValType>| types.map(|t| t.to_string()).collect::<Vec<_>>();
    let params = list(&mut f.params()).join(", ");
    let results = list(&mut f.results());
    let results = match results.as_slice() {
        [one] => one.clone(),
        many => format!("({})", many.join(", ")),
    };
    format!("({params}) -> {results}")
}
