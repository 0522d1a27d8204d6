//! Key-value stores for components: `fermyon:spin/key-value@2.0.0`,
//! `spin:key-value/key-value@3.0.0` (async; `get-keys` is a stream) and the
//! unversioned `fermyon:spin/key-value` of older SDKs (stores are `u32`
//! handles there).
//!
//! A store is a label: `default`, or one defined by the runtime config
//! (`runtime_config`). Two backends, as in Spin:
//! - SQLite (`type = "spin"`; the `default` store unless configured
//!   otherwise): Spin's own table `spin_key_value(store, key, value)` with the
//!   label in `store`, in `.spin/sqlite_key_value.db` beside the manifest, so
//!   a Spin app's data carries over both ways. Opened on first use; every
//!   call runs on a blocking thread, never on a handler worker.
//! - Redis (`type = "redis"`): keys and values as they are, on the app's
//!   pooled connection to that address (see `redis::Pool`).
//!
//! A component may open only the labels in its `key_value_stores`:
//! another label is `access-denied`; a listed label that no store defines is
//! `no-such-store` (start-up refuses such a manifest, as Spin does, so this
//! is not seen in practice). Each instance may hold [`MAX_OPEN`] open stores
//! (`store-table-full` beyond).
//!
//! Layout: [`store`] holds the stores and their backends, [`ops`] what a
//! guest does with an open one, once; `v1`, `v2`, `v3` adapt it to
//! each interface version. This file holds the bindings and the guest's
//! handle to an open store.
//!
//! Not owned here: reading the runtime config file (`runtime_config`).

pub mod ops;
pub mod store;
mod v1;
mod v2;
mod v3;

pub use ops::{KvError, OpenStore};
pub use store::{Backend, SqliteDb, Stores};

use super::{HasHost, HostData, HostView};
use wasmtime::component::{Linker, Resource};

mod bindings {
    wasmtime::component::bindgen!({
        inline: "
            package spin-redis:host;
            world key-value {
                import fermyon:spin/key-value;
                import fermyon:spin/key-value@2.0.0;
                import spin:key-value/key-value@3.0.0;
            }
        ",
        path: [
            "wit/spin/fermyon-spin",
            "wit/spin/fermyon-spin@2.0.0",
            "wit/spin/spin-key-value@3.0.0",
        ],
        imports: { default: async | trappable },
        with: {
            "fermyon:spin/key-value@2.0.0.store": super::OpenStore,
            "spin:key-value/key-value@3.0.0.store": super::OpenStore,
        },
    });
}

/// The interfaces [`link`] defines.
pub const INTERFACES: &[&str] = &[
    "fermyon:spin/key-value",
    "fermyon:spin/key-value@2.0.0",
    "spin:key-value/key-value@3.0.0",
];

/// Stores one instance may hold open at once.
pub const MAX_OPEN: usize = 256;

/// Adds the key-value interfaces to `linker`.
pub fn link<T: HasHost>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    bindings::fermyon::spin::key_value::add_to_linker::<T, HostData>(linker, T::host_view)?;
    bindings::fermyon::spin2_0_0::key_value::add_to_linker::<T, HostData>(linker, T::host_view)?;
    bindings::spin::key_value::key_value::add_to_linker::<T, HostData>(linker, T::host_view)?;
    Ok(())
}

/// Opens `label` for the instance behind `view`.
pub fn open(
    view: &mut HostView<'_>,
    label: &str,
) -> wasmtime::Result<Result<Resource<OpenStore>, KvError>> {
    let component = &view.host.component;
    if !component.key_value_stores.iter().any(|l| l == label) {
        return Ok(Err(KvError::AccessDenied));
    }
    let Some(backend) = component.app.stores.by_label.get(label).cloned() else {
        return Ok(Err(KvError::NoSuchStore));
    };
    if view.host.open_stores >= MAX_OPEN {
        return Ok(Err(KvError::TableFull));
    }
    let store = OpenStore {
        backend,
        pool: component.app.clone(),
        budget: view.host.budget.clone(),
    };
    let r = view.table.push(store)?;
    view.host.open_stores += 1;
    Ok(Ok(r))
}

pub fn close(view: &mut HostView<'_>, store: Resource<OpenStore>) -> wasmtime::Result<()> {
    view.table.delete(store)?;
    view.host.open_stores = view.host.open_stores.saturating_sub(1);
    Ok(())
}

/// A handle to an open store, to use outside the store's lock.
pub fn handle(view: &HostView<'_>, store: &Resource<OpenStore>) -> wasmtime::Result<OpenStore> {
    let s = view.table.get(store)?;
    Ok(OpenStore {
        backend: s.backend.clone(),
        pool: s.pool.clone(),
        budget: s.budget.clone(),
    })
}
