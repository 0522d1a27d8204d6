//! The `spin` executor for components: runs a WebAssembly component's Redis handler once
//! per message, with WASI preview2.
//!
//! Three interfaces are accepted, detected from the component's exports at
//! start-up (exactly one must be present):
//! - the seed's `wit/spin-redis.wit`: a top-level `handle-redis-message`;
//! - Spin 1-3 SDKs' unversioned `fermyon:spin/inbound-redis`
//!   (`handle-message`), produced by Rust `spin-sdk` 5 and Python `spin-sdk`;
//! - Spin 4 SDKs' `spin:redis/inbound-redis@3.0.0` (`handle-message`, an
//!   `async func`), produced by Rust `spin-sdk` 6/7; called through
//!   wasmtime's component-model-async support.
//!
//! WASI preview2 is linked with the same sandbox as the `wagi` executor (see
//! `spin_redis_sandbox::wasi`), and Spin's host APIs (outbound Redis and
//! HTTP, variables, key-value) from `host`. Every other import is linked to a
//! failing stub (see `host::stubs`), so the component loads and only a message
//! that calls one fails, with an error naming the import.
//!
//! Not owned here: choosing between this and the `wagi` executor (see
//! `executor`), logs, Redis.

use crate::executor::engine::compile_error;
use crate::executor::wasi_p2::WasiP2State;
use spin_redis_sandbox::limits::{Limits, limited_store};
use spin_redis_sandbox::wasi::{Capture, Message, PreparedSandbox, Sandbox};
use spin_redis_sandbox::{HandlerError, PrepareError, Prepared, WasmKind};
use wasmtime::Engine;
use wasmtime::component::types::{ComponentItem, Type};
use wasmtime::component::{
    Component, ComponentExportIndex, ComponentType, InstancePre, Lift, Linker,
};
use wasmtime_wasi::{WasiCtxView, WasiView};

use crate::host::{ComponentHost, HasHost, HostView, InstanceHost};
use std::sync::Arc;
use std::time::Instant;

/// Which handler interface a component exports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Interface {
    /// `handle-redis-message` from `wit/spin-redis.wit`.
    Seed,
    /// `fermyon:spin/inbound-redis` `handle-message`.
    FermyonSpin,
    /// `spin:redis/inbound-redis@3.0.0` `handle-message` (async).
    SpinRedis3,
}

impl Interface {
    pub fn describe(self) -> &'static str {
        match self {
            Interface::Seed => "handle-redis-message (wit/spin-redis.wit)",
            Interface::FermyonSpin => "fermyon:spin/inbound-redis",
            Interface::SpinRedis3 => "spin:redis/inbound-redis@3.0.0",
        }
    }
}

const SEED_EXPORT: &str = "handle-redis-message";
const FERMYON_INSTANCES: [&str; 2] = [
    "fermyon:spin/inbound-redis",
    "fermyon:spin/inbound-redis@2.0.0",
];
const SPIN3_INSTANCE: &str = "spin:redis/inbound-redis@3.0.0";
const HANDLE_MESSAGE: &str = "handle-message";

/// The seed's and Spin 1-3's `enum error { success, error }`.
// Its values are only ever made by `Lift`, from the guest's result.
#[allow(dead_code)]
#[derive(ComponentType, Lift, Debug, Clone, Copy, PartialEq, Eq)]
#[component(enum)]
#[repr(u8)]
enum SeedError {
    #[component(name = "success")]
    Success,
    #[component(name = "error")]
    Error,
}

/// `spin:redis/redis@3.0.0`'s error variant.
#[derive(ComponentType, Lift, Debug, Clone, PartialEq, Eq)]
#[component(variant)]
enum Spin3Error {
    #[component(name = "invalid-address")]
    InvalidAddress,
    #[component(name = "too-many-connections")]
    TooManyConnections,
    #[component(name = "type-error")]
    TypeError,
    #[component(name = "other")]
    Other(String),
}

/// The state of one store.
pub struct SpinComponentState {
    wasi: WasiP2State,
    /// Spin's host APIs for this instance (see `host`).
    host: InstanceHost,
}

impl HasHost for SpinComponentState {
    fn host_view(&mut self) -> HostView<'_> {
        HostView {
            host: &mut self.host,
            table: &mut self.wasi.table,
        }
    }
}

impl wasmtime_wasi_http::WasiHttpView for SpinComponentState {
    fn http(&mut self) -> wasmtime_wasi_http::WasiHttpCtxView<'_> {
        self.host.http.view(&mut self.wasi.table)
    }
}

impl WasiView for SpinComponentState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        self.wasi.ctx()
    }
}

/// One import of a component, and whether the host provides it (else it is
/// a stub that fails the message that calls it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Import {
    pub name: String,
    pub provided: bool,
}

/// A prepared component handler.
pub struct SpinComponent {
    imports: Vec<Import>,
    engine: Engine,
    pre: InstancePre<SpinComponentState>,
    interface: Interface,
    func: ComponentExportIndex,
    sandbox: PreparedSandbox,
    limits: Limits,
    host: Arc<ComponentHost>,
}

impl SpinComponent {
    /// `host` is what the component's manifest grants it (allowed hosts,
    /// variables, stores).
    pub fn prepare(
        engine: &Engine,
        bytes: &[u8],
        sandbox: Sandbox,
        limits: Limits,
        host: Arc<ComponentHost>,
    ) -> Result<Self, PrepareError> {
        WasmKind::require_component(bytes)?;
        let component = Component::new(engine, bytes).map_err(|e| compile_error(&e))?;
        let (interface, func) = find_handler(engine, &component)?;
        let mut linker: Linker<SpinComponentState> = Linker::new(engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(|e| PrepareError::link(e, ""))?;
        // Spin's host APIs first: the stubs skip what they define.
        crate::host::link(&mut linker).map_err(|e| PrepareError::link(e, ""))?;
        let stubbed =
            crate::host::stubs::link_except(engine, &mut linker, &component, crate::host::provides)
                .map_err(|e| PrepareError::link(e, ""))?;
        let imports = component
            .component_type()
            .imports(engine)
            .map(|(name, _)| Import {
                name: name.to_string(),
                provided: !stubbed.iter().any(|s| s == name),
            })
            .collect();
        let pre = linker
            .instantiate_pre(&component)
            .map_err(|e| PrepareError::link(e, ""))?;
        let sandbox = PreparedSandbox::new(sandbox).map_err(PrepareError::mount)?;
        Ok(SpinComponent {
            imports,
            engine: engine.clone(),
            pre,
            interface,
            func,
            sandbox,
            limits,
            host,
        })
    }

    pub fn interface(&self) -> Interface {
        self.interface
    }

    /// What the component imports, in its own order.
    pub fn imports(&self) -> &[Import] {
        &self.imports
    }
}

impl Prepared for SpinComponent {
    fn limits(&self) -> &Limits {
        &self.limits
    }

    async fn call(&self, msg: &Message<'_>, capture: &Capture) -> Result<(), HandlerError> {
        let state = SpinComponentState {
            wasi: WasiP2State::new(self.sandbox.p2_ctx(msg, capture), &self.limits),
            host: InstanceHost::new(self.host.clone(), Instant::now() + self.limits.timeout),
        };
        let mut store = limited_store(&self.engine, state, self.limits.timeout, |s| {
            &mut s.wasi.memory
        });
        let payload: &[u8] = &msg.payload;
        let ended: wasmtime::Result<Result<(), HandlerError>> = async {
            let instance = self.pre.instantiate_async(&mut store).await?;
            match self.interface {
                Interface::Seed | Interface::FermyonSpin => {
                    let f = instance.get_typed_func::<(&[u8],), (Result<(), SeedError>,)>(
                        &mut store, &self.func,
                    )?;
                    let (r,) = f.call_async(&mut store, (payload,)).await?;
                    Ok(match r {
                        Ok(()) | Err(SeedError::Success) => Ok(()),
                        Err(SeedError::Error) => Err(HandlerError::Returned("error".into())),
                    })
                }
                Interface::SpinRedis3 => {
                    let f = instance.get_typed_func::<(Vec<u8>,), (Result<(), Spin3Error>,)>(
                        &mut store, &self.func,
                    )?;
                    let (r,) = f.call_async(&mut store, (payload.to_vec(),)).await?;
                    Ok(r.map_err(|e| {
                        HandlerError::Returned(match e {
                            Spin3Error::InvalidAddress => "invalid-address".into(),
                            Spin3Error::TooManyConnections => "too-many-connections".into(),
                            Spin3Error::TypeError => "type-error".into(),
                            Spin3Error::Other(s) => s,
                        })
                    }))
                }
            }
        }
        .await;
        HandlerError::from_handled(ended)
    }
}

/// Finds the one handler export and checks its type.
fn find_handler(
    engine: &Engine,
    component: &Component,
) -> Result<(Interface, ComponentExportIndex), PrepareError> {
    let ty = component.component_type();
    let mut found: Vec<(
        Interface,
        ComponentExportIndex,
        wasmtime::component::types::ComponentFunc,
    )> = Vec::new();
    let mut exports = Vec::new();
    for (name, ext) in ty.exports(engine) {
        exports.push(name.to_string());
        match (&ext.ty, name) {
            (ComponentItem::ComponentFunc(f), SEED_EXPORT) => {
                let idx = component
                    .get_export_index(None, SEED_EXPORT)
                    .expect("invariant: the export was just listed");
                found.push((Interface::Seed, idx, f.clone()));
            }
            (ComponentItem::ComponentInstance(inst), n)
                if FERMYON_INSTANCES.contains(&n) || n == SPIN3_INSTANCE =>
            {
                let interface = if n == SPIN3_INSTANCE {
                    Interface::SpinRedis3
                } else {
                    Interface::FermyonSpin
                };
                let Some(ext) = inst.get_export(engine, HANDLE_MESSAGE) else {
                    return Err(PrepareError::WrongType {
                        interface: interface.describe(),
                        detail: format!("the instance has no `{HANDLE_MESSAGE}` function"),
                    });
                };
                let ComponentItem::ComponentFunc(f) = ext.ty else {
                    return Err(PrepareError::WrongType {
                        interface: interface.describe(),
                        detail: format!("`{HANDLE_MESSAGE}` is not a function"),
                    });
                };
                let outer = component
                    .get_export_index(None, n)
                    .expect("invariant: the export was just listed");
                let idx = component
                    .get_export_index(Some(&outer), HANDLE_MESSAGE)
                    .expect("invariant: the function was just found");
                found.push((interface, idx, f));
            }
            _ => {}
        }
    }
    match found.len() {
        0 => Err(PrepareError::NoHandler {
            exports: if exports.is_empty() {
                "nothing".into()
            } else {
                exports.join(", ")
            },
        }),
        1 => {
            let (interface, idx, f) = found.pop().expect("invariant: exactly one");
            check_type(interface, &f)?;
            Ok((interface, idx))
        }
        _ => Err(PrepareError::Ambiguous(
            found
                .iter()
                .map(|(i, _, _)| i.describe())
                .collect::<Vec<_>>()
                .join(", "),
        )),
    }
}

fn check_type(
    interface: Interface,
    f: &wasmtime::component::types::ComponentFunc,
) -> Result<(), PrepareError> {
    let wrong = |detail: String| PrepareError::WrongType {
        interface: interface.describe(),
        detail,
    };
    let params: Vec<Type> = f.params().map(|(_, t)| t).collect();
    let payload_ok = matches!(params.as_slice(), [Type::List(l)] if l.ty() == Type::U8);
    if !payload_ok {
        return Err(wrong("it must take one `list<u8>` payload".into()));
    }
    let results: Vec<Type> = f.results().collect();
    let [Type::Result(r)] = results.as_slice() else {
        return Err(wrong("it must return `result<_, error>`".into()));
    };
    if r.ok().is_some() {
        return Err(wrong("its result must have no `ok` value".into()));
    }
    match (interface, r.err()) {
        (Interface::Seed | Interface::FermyonSpin, Some(Type::Enum(e))) => {
            let names: Vec<&str> = e.names().collect();
            if names != ["success", "error"] {
                return Err(wrong(format!(
                    "its error enum must be `enum {{ success, error }}`, not {names:?}"
                )));
            }
        }
        (Interface::SpinRedis3, Some(Type::Variant(v))) => {
            let names: Vec<&str> = v.cases().map(|c| c.name).collect();
            if names
                != [
                    "invalid-address",
                    "too-many-connections",
                    "type-error",
                    "other",
                ]
            {
                return Err(wrong(format!(
                    "its error variant has unexpected cases {names:?}"
                )));
            }
        }
        _ => return Err(wrong("its error type does not match the interface".into())),
    }
    if interface == Interface::SpinRedis3 && !f.async_() {
        tracing::debug!(
            "spin:redis/inbound-redis@3.0.0 handle-message is not async; calling it anyway"
        );
    }
    Ok(())
}
