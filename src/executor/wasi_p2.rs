//! The store state every WASI 0.2 guest needs, whichever executor runs it:
//! its WASI context, the resource table and the memory cap. The wagi
//! executor's command components run with it as is; the spin executor's
//! components keep it beside Spin's host APIs (`spin`).
//!
//! Not owned here: making the WASI context (`spin_redis_sandbox::wasi`),
//! the store around it (`spin_redis_sandbox::limits`).

use spin_redis_sandbox::limits::{Limits, MemoryCap};
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// One run's WASI 0.2 state.
pub struct WasiP2State {
    wasi: WasiCtx,
    pub table: ResourceTable,
    pub memory: MemoryCap,
}

impl WasiP2State {
    /// A fresh state around `wasi`, its memory capped by `limits`.
    pub fn new(wasi: WasiCtx, limits: &Limits) -> WasiP2State {
        WasiP2State {
            wasi,
            table: ResourceTable::new(),
            memory: MemoryCap(limits.max_memory_bytes),
        }
    }
}

impl WasiView for WasiP2State {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}
