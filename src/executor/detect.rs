//! What a handler's wasm is, and which executor can run it, read from its
//! bytes alone (nothing is compiled), so that a handler that fits no
//! executor, or not the one configured, is refused at start-up with what was
//! found (exports, component-type metadata, imports) and what would fit.
//!
//! The spin executor runs, in this order of preference:
//! - a component (see `component`);
//! - a core module with `component-type*` custom sections (wit-bindgen 0.5 and
//!   newer: Spin SDKs 2-4 built for `wasm32-wasip1`, the Spin Go SDK), made
//!   into a component on the way (see `componentize`);
//! - a seed-era core module exporting `handle-redis-message`,
//!   `canonical_abi_realloc` and `memory` (see `seed`).
//!
//! The wagi executor runs a WASI command: a core module exporting `_start`
//! (or the configured entrypoint).
//!
//! Not owned here: checking types of exports, compiling, running.

use spin_redis_sandbox::WasmKind;
use std::borrow::Cow;
use wasmparser::{ExternalKind, Parser, Payload};

/// The seed-era ABI's export names.
pub const SEED_HANDLER: &str = "handle-redis-message";
pub const SEED_REALLOC: &str = "canonical_abi_realloc";
pub const SEED_MEMORY: &str = "memory";

/// How many names a summary lists before saying how many more there are.
const LIST_AT_MOST: usize = 12;

/// What a wasm binary holds, as far as choosing an executor goes.
#[derive(Debug, Clone, Default)]
pub struct Found {
    /// Whether it is a component (otherwise a core module, or unreadable).
    pub component: bool,
    /// Top-level export names, in order.
    pub exports: Vec<String>,
    /// Core: each import module with its item names; component: each
    /// top-level import name (no items).
    pub imports: Vec<(String, Vec<String>)>,
    /// Names of `component-type*` custom sections (core modules).
    pub component_type: Vec<String>,
    /// Exported functions of a core module (subset of `exports`).
    funcs: Vec<String>,
    /// Exported memories of a core module.
    memories: Vec<String>,
    /// Why the bytes could not be read through, if they could not.
    pub unreadable: Option<String>,
}

/// Which executor a handler's wasm fits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fit {
    /// A component: the spin executor as it is.
    Component,
    /// A core module with component-type metadata: the spin executor, made
    /// into a component first.
    Componentize,
    /// A seed-era core module (`handle-redis-message` in the pre-component
    /// canonical ABI): the spin executor's seed variant.
    Seed,
    /// A WASI command module (`_start`): the wagi executor.
    Command,
    /// Nothing runs it.
    Nothing,
}

impl Found {
    /// Reads `bytes` (a binary, or WAT text, which is turned into a binary
    /// first). Never fails: what cannot be read is noted in `unreadable`,
    /// and compiling it later reports the details.
    pub fn of(bytes: &[u8]) -> Found {
        let mut found = Found::default();
        let binary = match binary(bytes) {
            Ok(b) => b,
            Err(e) => {
                found.unreadable = Some(e);
                return found;
            }
        };
        if let Err(e) = found.read(&binary) {
            found.unreadable = Some(format!("{e}"));
        }
        found
    }

    fn read(&mut self, bytes: &[u8]) -> Result<(), wasmparser::BinaryReaderError> {
        // Nested modules and components of a component yield their own
        // payloads, between their section and their `End`: only the outer
        // level is recorded.
        let mut depth = 0usize;
        for payload in Parser::new(0).parse_all(bytes) {
            let payload = payload?;
            match payload {
                Payload::Version { encoding, .. } if depth == 0 => {
                    self.component = encoding == wasmparser::Encoding::Component;
                }
                Payload::ModuleSection { .. } | Payload::ComponentSection { .. } => depth += 1,
                Payload::End(_) => depth = depth.saturating_sub(1),
                _ if depth > 0 => {}
                Payload::ImportSection(reader) => {
                    for import in reader.into_imports() {
                        let import = import?;
                        match self.imports.iter_mut().find(|(m, _)| m == import.module) {
                            Some((_, items)) => items.push(import.name.to_string()),
                            None => self
                                .imports
                                .push((import.module.to_string(), vec![import.name.to_string()])),
                        }
                    }
                }
                Payload::ExportSection(reader) => {
                    for export in reader {
                        let export = export?;
                        self.exports.push(export.name.to_string());
                        match export.kind {
                            ExternalKind::Func | ExternalKind::FuncExact => {
                                self.funcs.push(export.name.to_string())
                            }
                            ExternalKind::Memory => self.memories.push(export.name.to_string()),
                            _ => {}
                        }
                    }
                }
                Payload::CustomSection(c) if c.name().starts_with("component-type") => {
                    self.component_type.push(c.name().to_string());
                }
                Payload::ComponentImportSection(reader) => {
                    for import in reader {
                        self.imports
                            .push((import?.name.name.to_string(), Vec::new()));
                    }
                }
                Payload::ComponentExportSection(reader) => {
                    for export in reader {
                        self.exports.push(export?.name.name.to_string());
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn exports_func(&self, name: &str) -> bool {
        self.funcs.iter().any(|f| f == name)
    }

    /// Which executor fits, for the spin executor's choice among its ways
    /// of running a handler (see the module docs for the order).
    pub fn fit(&self) -> Fit {
        if self.unreadable.is_some() {
            return Fit::Nothing;
        }
        if self.component {
            return Fit::Component;
        }
        if !self.component_type.is_empty() {
            return Fit::Componentize;
        }
        if self.exports_func(SEED_HANDLER)
            && self.exports_func(SEED_REALLOC)
            && self.memories.iter().any(|m| m == SEED_MEMORY)
        {
            return Fit::Seed;
        }
        if self.exports_func("_start") {
            return Fit::Command;
        }
        Fit::Nothing
    }

    /// One line on what was found: exports, component-type metadata (core
    /// modules), imports.
    pub fn summary(&self) -> String {
        let exports = if self.exports.is_empty() {
            "exports nothing".to_string()
        } else {
            format!(
                "exports {}",
                list(self.exports.iter().map(|e| format!("`{e}`")))
            )
        };
        let metadata = if self.component {
            String::new()
        } else if self.component_type.is_empty() {
            "; no component-type metadata".to_string()
        } else {
            format!(
                "; component-type metadata ({})",
                list(self.component_type.iter().map(|c| format!("`{c}`")))
            )
        };
        let imports = if self.imports.is_empty() {
            "; imports nothing".to_string()
        } else if self.component {
            format!(
                "; imports {}",
                list(self.imports.iter().map(|(m, _)| format!("`{m}`")))
            )
        } else {
            format!(
                "; imports from {}",
                list(self.imports.iter().map(|(m, items)| {
                    format!("`{m}` ({})", list(items.iter().map(String::as_str)))
                }))
            )
        };
        format!("{exports}{metadata}{imports}")
    }

    /// Why the spin executor refuses a core module that fits none of its
    /// ways, and what would fit instead.
    pub fn refusal_for_spin(&self) -> String {
        if let Some(e) = &self.unreadable {
            return format!("cannot be read as WebAssembly: {e}");
        }
        let found = self.summary();
        if self.fit() == Fit::Command {
            return format!(
                "is a WASI core module exporting `_start` (a WASI command), which the spin executor does not run: use executor = {{ type = \"wagi\" }} for it. Found: it {found}"
            );
        }
        let near_seed = if self.exports_func(SEED_HANDLER) {
            let mut missing = Vec::new();
            if !self.exports_func(SEED_REALLOC) {
                missing.push(format!("function `{SEED_REALLOC}`"));
            }
            if !self.memories.iter().any(|m| m == SEED_MEMORY) {
                missing.push(format!("memory `{SEED_MEMORY}`"));
            }
            format!(
                " It exports `{SEED_HANDLER}` like a seed-era module, but not {}.",
                missing.join(" or ")
            )
        } else {
            String::new()
        };
        format!(
            "is a core module that no executor runs. Found: it {found}.{near_seed} The spin executor runs components, core modules with component-type metadata (Spin SDKs 2-4 built for wasm32-wasip1, the Spin Go SDK) and seed-era modules exporting `{SEED_HANDLER}`, `{SEED_REALLOC}` and `{SEED_MEMORY}`; the wagi executor runs WASI commands exporting `_start`"
        )
    }

    /// What fits a component that exports no Redis handler, from its
    /// exports; appended to the `spin` executor's own message.
    pub fn hint_for_component(&self) -> String {
        let exports = |prefix: &str| self.exports.iter().any(|e| e.starts_with(prefix));
        let what = if exports("wasi:cli/run") {
            "It is a WASI command component (it exports `wasi:cli/run`): use executor = { type = \"wagi\" } for it."
        } else if exports("wasi:http/incoming-handler") || exports("fermyon:spin/inbound-http") {
            "It is an HTTP handler, not a Redis one."
        } else {
            ""
        };
        let imports = if self.imports.is_empty() {
            "imports nothing".to_string()
        } else {
            format!(
                "imports {}",
                list(self.imports.iter().map(|(m, _)| format!("`{m}`")))
            )
        };
        let sep = if what.is_empty() { "" } else { " " };
        format!("; it {imports}.{sep}{what}")
    }

    /// What fits a core module the wagi executor refuses (no entrypoint):
    /// the spin executor, when it is a Spin SDK or seed-era module.
    pub fn hint_for_wagi(&self) -> String {
        match self.fit() {
            Fit::Componentize => format!(
                ". It carries component-type metadata ({}): a Spin SDK module, which runs under executor = {{ type = \"spin\" }}",
                list(self.component_type.iter().map(|c| format!("`{c}`")))
            ),
            Fit::Seed => format!(
                ". It exports `{SEED_HANDLER}` and `{SEED_REALLOC}`: a seed-era Spin module, which runs under executor = {{ type = \"spin\" }}"
            ),
            _ => String::new(),
        }
    }
}

/// `bytes` as a binary: WAT text is parsed, a binary passes through.
pub fn binary(bytes: &[u8]) -> Result<Cow<'_, [u8]>, String> {
    match WasmKind::of(bytes) {
        WasmKind::NotWasm => Err("neither a WebAssembly binary nor WAT text".into()),
        _ => wat::parse_bytes(bytes).map_err(|e| format!("{e}")),
    }
}

/// `a, b, c` or `a, b, ... and 7 more`.
fn list<S: AsRef<str>>(items: impl Iterator<Item = S>) -> String {
    let items: Vec<S> = items.collect();
    let shown: Vec<&str> = items.iter().take(LIST_AT_MOST).map(AsRef::as_ref).collect();
    let mut text = shown.join(", ");
    if items.len() > LIST_AT_MOST {
        text.push_str(&format!(" and {} more", items.len() - LIST_AT_MOST));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(wat: &str) -> Found {
        Found::of(wat.as_bytes())
    }

    #[test]
    fn tells_each_kind_of_module_apart() {
        let seed = found(
            r#"(module (memory (export "memory") 1)
                (func (export "handle-redis-message") (param i32 i32) (result i32) i32.const 0)
                (func (export "canonical_abi_realloc") (param i32 i32 i32 i32) (result i32) i32.const 0))"#,
        );
        assert_eq!(seed.fit(), Fit::Seed);
        let command = found(
            r#"(module (import "wasi_snapshot_preview1" "proc_exit" (func (param i32))) (func (export "_start")))"#,
        );
        assert_eq!(command.fit(), Fit::Command);
        assert_eq!(
            command.summary(),
            "exports `_start`; no component-type metadata; imports from `wasi_snapshot_preview1` (proc_exit)"
        );
        let with_metadata =
            found(r#"(module (@custom "component-type:x" "") (func (export "_start")))"#);
        assert_eq!(with_metadata.fit(), Fit::Componentize);
        let component = found("(component)");
        assert_eq!(component.fit(), Fit::Component);
        let nothing = found(
            r#"(module (func (export "handle-redis-message") (param i32 i32) (result i32) i32.const 0))"#,
        );
        assert_eq!(nothing.fit(), Fit::Nothing);
        let why = nothing.refusal_for_spin();
        assert!(
            why.contains("not function `canonical_abi_realloc` or memory `memory`"),
            "{why}"
        );
    }

    #[test]
    fn lists_only_the_outer_level_of_a_component_and_cap_long_lists() {
        let c = found(
            r#"(component
                 (import "wasi:cli/environment@0.2.0" (instance))
                 (core module $m (func (export "inner")))
                 (core instance $i (instantiate $m))
                 (func $f (canon lift (core func $i "inner")))
                 (export "wasi:cli/run@0.2.0" (func $f)))"#,
        );
        assert_eq!(c.exports, vec!["wasi:cli/run@0.2.0"]);
        assert_eq!(c.imports.len(), 1);
        assert!(c.hint_for_component().contains("WASI command component"));
        let many = list((0..20).map(|i| i.to_string()));
        assert!(many.ends_with("11 and 8 more"), "{many}");
    }
}
