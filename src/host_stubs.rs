//! Imports the host does not provide, linked to stubs that fail the message.
//!
//! Components built with the Spin SDKs import Spin's host APIs
//! (`fermyon:spin/*`, `spin:*`: key-value, outbound redis, variables, ...)
//! whether or not the handler uses them. Each such import is defined here as a
//! function that fails with [`Unavailable`], naming the import, so that the
//! component loads and only a message whose handler calls one fails.
//!
//! WASI 0.2 imports are left alone: wasmtime-wasi provides them and matches
//! any 0.2.x version. (wasmtime's own `define_unknown_imports_as_traps` would
//! shadow those semver matches with stubs, which is why this exists.)

use wasmtime::Engine;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, Linker, LinkerInstance, ResourceType};

/// The error a stubbed import fails with.
#[derive(Debug, thiserror::Error)]
#[error("the handler called `{0}`, a host API spin-redis does not provide")]
pub struct Unavailable(pub String);

/// Whether wasmtime-wasi provides `name` (WASI 0.2.x).
fn provided_by_wasi(name: &str) -> bool {
    name.strip_prefix("wasi:")
        .and_then(|rest| rest.split_once('@'))
        .is_some_and(|(_, version)| version.starts_with("0.2."))
}

/// Defines a failing stub for every import of `component` that WASI does not
/// provide.
pub fn link<T: Send + 'static>(
    engine: &Engine,
    linker: &mut Linker<T>,
    component: &Component,
) -> wasmtime::Result<()> {
    let ty = component.component_type();
    for (name, ext) in ty.imports(engine) {
        if provided_by_wasi(name) {
            continue;
        }
        match &ext.ty {
            ComponentItem::ComponentInstance(inst) => {
                let mut li = linker.instance(name)?;
                for (export, item) in inst.exports(engine) {
                    stub(&mut li, name, export, &item.ty)?;
                }
            }
            item => stub(&mut linker.root(), "", name, item)?,
        }
    }
    Ok(())
}

fn stub<T: Send + 'static>(
    li: &mut LinkerInstance<'_, T>,
    parent: &str,
    name: &str,
    item: &ComponentItem,
) -> wasmtime::Result<()> {
    let full = if parent.is_empty() {
        name.to_string()
    } else {
        format!("{parent}#{name}")
    };
    match item {
        ComponentItem::ComponentFunc(f) if f.async_() => {
            li.func_new_concurrent(name, move |_, _, _, _| {
                let full = full.clone();
                Box::pin(async move { Err(wasmtime::Error::new(Unavailable(full))) })
            })?;
        }
        ComponentItem::ComponentFunc(_) => {
            li.func_new(name, move |_, _, _, _| {
                Err(wasmtime::Error::new(Unavailable(full.clone())))
            })?;
        }
        ComponentItem::Resource(_) => {
            li.resource(name, ResourceType::host::<()>(), |_, _| Ok(()))?;
        }
        // Types need no definition; anything else (nested components or
        // modules as imports) is left for instantiation to report.
        _ => {}
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_wasi_0_2_is_left_to_wasmtime_wasi() {
        assert!(provided_by_wasi("wasi:cli/environment@0.2.6"));
        assert!(provided_by_wasi("wasi:io/streams@0.2.9"));
        assert!(!provided_by_wasi(
            "wasi:cli/environment@0.3.0-rc-2025-09-16"
        ));
        assert!(!provided_by_wasi("fermyon:spin/key-value"));
        assert!(!provided_by_wasi("spin:redis/redis@3.0.0"));
    }
}
