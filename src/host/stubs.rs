//! Imports the host does not provide, linked to stubs that fail the message.
//!
//! Components built with the Spin SDKs import Spin's host APIs
//! (`fermyon:spin/*`, `spin:*`: key-value, outbound redis, variables, ...)
//! whether or not the handler uses them. Each such import is defined here as a
//! function that fails with [`Unavailable`], naming the import, so that the
//! component loads and only a message whose handler calls one fails.
//!
//! The same holds for every other import the linker does not define:
//! `wasi:keyvalue`, `wasi:otel`, `wasi:http` where it is not linked, Spin's
//! sqlite, llm, mysql, postgres, mqtt... What the linker already defines
//! (wasmtime-wasi's cli, clocks, filesystem, io, random and sockets; Spin's
//! host APIs from `host`) is left alone, and "defines" is asked of the linker
//! itself (see [`linker_defines`]), so wasmtime's semver matching holds: an
//! import of `wasi:io/streams@0.2.0` is served by the linker's
//! `wasi:io/streams@0.2.6`, never shadowed by a stub. (wasmtime's own
//! `define_unknown_imports_as_traps` would shadow such semver matches with
//! stubs, which is why this exists.)

use wasmtime::Engine;
use wasmtime::component::types::ComponentItem;
use wasmtime::component::{Component, Linker, LinkerInstance, ResourceType};

/// The error a stubbed import fails with.
#[derive(Debug, thiserror::Error)]
#[error("the handler called `{0}`, a host API spin-redis does not provide")]
pub struct Unavailable(pub String);

/// The root cause wasmtime gives when nothing in the linker answers an
/// import's name (pinned by this module's tests).
const MISSING: &str = "function implementation is missing";

/// Whether `linker` defines the top-level import `name` in any form, found
/// by wasmtime's own lookup, semver matching included.
///
/// wasmtime's `Linker` has no query for this, so it is asked with a probe: a
/// component importing a function of that name. Pre-instantiating the probe
/// fails with `MISSING` exactly when nothing of that name is defined;
/// success, or any other failure (such as "expected function found
/// instance"), means something is. The probe is a few bytes, compiled in
/// well under a millisecond, once per import at start-up.
pub fn linker_defines<T: 'static>(engine: &Engine, linker: &Linker<T>, name: &str) -> bool {
    let escaped: String = name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b":/@.-_".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("\\{b:02x}")
            }
        })
        .collect();
    let Ok(probe) = Component::new(engine, format!("(component (import \"{escaped}\" (func)))"))
    else {
        // A name no component could import under (never one a component
        // does import): nothing is defined for it.
        return false;
    };
    match linker.instantiate_pre(&probe) {
        Ok(_) => true,
        Err(e) => e.root_cause().to_string() != MISSING,
    }
}

/// Defines a failing stub for every import of `component` that WASI does not
/// provide; returns the names of the imports stubbed (what `check` reports
/// as not provided).
pub fn link<T: Send + 'static>(
    engine: &Engine,
    linker: &mut Linker<T>,
    component: &Component,
) -> wasmtime::Result<Vec<String>> {
    link_except(engine, linker, component, |_| false)
}

/// Like [`link`], but leaves alone the imports `defined` says the linker
/// already has (Spin's host APIs, see `host::provides`).
pub fn link_except<T: Send + 'static>(
    engine: &Engine,
    linker: &mut Linker<T>,
    component: &Component,
    defined: impl Fn(&str) -> bool,
) -> wasmtime::Result<Vec<String>> {
    let ty = component.component_type();
    let mut stubbed = Vec::new();
    for (name, ext) in ty.imports(engine) {
        if linker_defines(engine, linker, name) || defined(name) {
            continue;
        }
        stubbed.push(name.to_string());
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
    Ok(stubbed)
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

    struct State {
        wasi: wasmtime_wasi::WasiCtx,
        table: wasmtime::component::ResourceTable,
    }

    impl wasmtime_wasi::WasiView for State {
        fn ctx(&mut self) -> wasmtime_wasi::WasiCtxView<'_> {
            wasmtime_wasi::WasiCtxView {
                ctx: &mut self.wasi,
                table: &mut self.table,
            }
        }
    }

    fn engine() -> Engine {
        let mut config = wasmtime::Config::new();
        config.wasm_component_model(true);
        Engine::new(&config).unwrap()
    }

    #[test]
    fn the_linker_is_asked_what_it_defines_semver_included() {
        let engine = engine();
        let mut linker: Linker<State> = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).unwrap();
        linker
            .instance("fermyon:spin/variables@2.0.0")
            .unwrap()
            .func_new("get", |_, _, _, _| Ok(()))
            .unwrap();
        // wasmtime-wasi's own version, and older and newer 0.2.x ones.
        assert!(linker_defines(&engine, &linker, "wasi:io/streams@0.2.6"));
        assert!(linker_defines(&engine, &linker, "wasi:io/streams@0.2.0"));
        assert!(linker_defines(
            &engine,
            &linker,
            "wasi:cli/environment@0.2.9"
        ));
        assert!(linker_defines(
            &engine,
            &linker,
            "fermyon:spin/variables@2.0.0"
        ));
        // Not linked: other WASI families, other majors, prereleases, Spin's.
        for name in [
            "wasi:keyvalue/store@0.2.0-draft",
            "wasi:http/types@0.2.0",
            "wasi:otel/tracing@0.2.0-draft",
            "wasi:cli/environment@0.3.0-rc-2025-09-16",
            "fermyon:spin/sqlite@2.0.0",
            "fermyon:spin/variables@3.0.0",
            "fermyon:spin/key-value",
            "spin:redis/redis@3.0.0",
            "a name \"with\" quotes\\",
        ] {
            assert!(!linker_defines(&engine, &linker, name), "{name}");
        }
    }

    #[test]
    fn only_imports_the_linker_lacks_are_stubbed() {
        let engine = engine();
        let mut linker: Linker<State> = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker).unwrap();
        let component = Component::new(
            &engine,
            r#"(component
                 (import "wasi:cli/environment@0.2.0" (instance
                   (export "get-arguments" (func (result (list string))))))
                 (import "wasi:keyvalue/store@0.2.0-draft" (instance
                   (export "bucket" (type (sub resource)))
                   (export "open" (func (param "identifier" string)))))
                 (import "fermyon:spin/sqlite@2.0.0" (instance
                   (export "open" (func))))
                 (import "wasi:io/streams@0.2.0" (instance)))"#,
        )
        .unwrap();
        let stubbed = link(&engine, &mut linker, &component).unwrap();
        assert_eq!(
            stubbed,
            vec![
                "wasi:keyvalue/store@0.2.0-draft",
                "fermyon:spin/sqlite@2.0.0"
            ]
        );
        linker.instantiate_pre(&component).unwrap();
    }
}
