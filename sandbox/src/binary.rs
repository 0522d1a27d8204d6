//! Telling a core module from a component (or from garbage) by its header.
//!
//! Both start with `\0asm`; the next four bytes are the version (1, for core
//! modules) and the layer (0 for core modules, 1 for components). Checked at
//! start-up so that a module configured under the wrong executor gets a
//! message saying which executor fits, instead of a compile error: the
//! `require_*` checks give that refusal for the wagi and spin executors.

use crate::prepare::PrepareError;

/// What a file's bytes are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WasmKind {
    CoreModule,
    Component,
    /// Starts with `\0asm` but has an unknown version or layer.
    UnknownWasm,
    NotWasm,
}

impl WasmKind {
    pub fn of(bytes: &[u8]) -> WasmKind {
        match bytes {
            [0, b'a', b's', b'm', _, _, 0, 0, ..] if bytes[4..6] == [1, 0] => WasmKind::CoreModule,
            [0, b'a', b's', b'm', _, _, 1, 0, ..] => WasmKind::Component,
            [0, b'a', b's', b'm', ..] => WasmKind::UnknownWasm,
            // The text format is accepted too (tests and quick experiments):
            // wasmtime compiles WAT.
            _ => match wat_start(bytes) {
                Some(rest) if rest.starts_with("(component") => WasmKind::Component,
                Some(rest) if rest.starts_with("(module") => WasmKind::CoreModule,
                _ => WasmKind::NotWasm,
            },
        }
    }

    /// `Ok` when `bytes` are a core module, as the wagi executor's modules
    /// must be; else the refusal naming what they are instead.
    pub fn require_core_module(bytes: &[u8]) -> Result<(), PrepareError> {
        WasmKind::require(
            bytes,
            WasmKind::CoreModule,
            PrepareError::IsComponent,
            "core module",
            "no `\\0asm` version 1 header, and not WAT text",
        )
    }

    /// `Ok` when `bytes` are a component, as the spin executor's components
    /// must be; else the refusal naming what they are instead.
    pub fn require_component(bytes: &[u8]) -> Result<(), PrepareError> {
        WasmKind::require(
            bytes,
            WasmKind::Component,
            PrepareError::IsCoreModule,
            "component",
            "no `\\0asm` component header",
        )
    }

    /// `Ok` for `want`; `other_kind` for the other kind of wasm; `NotWasm`
    /// (`expected`, `found`) for what is no wasm at all.
    fn require(
        bytes: &[u8],
        want: WasmKind,
        other_kind: PrepareError,
        expected: &'static str,
        found: &'static str,
    ) -> Result<(), PrepareError> {
        match WasmKind::of(bytes) {
            kind if kind == want => Ok(()),
            WasmKind::UnknownWasm | WasmKind::NotWasm => {
                Err(PrepareError::NotWasm { expected, found })
            }
            _ => Err(other_kind),
        }
    }
}

/// The WAT text after leading white space and `;;` line comments.
fn wat_start(bytes: &[u8]) -> Option<&str> {
    let text = std::str::from_utf8(bytes).ok()?;
    let mut rest = text.trim_start();
    while let Some(r) = rest.strip_prefix(";;") {
        rest = r.split_once('\n').map_or("", |(_, tail)| tail).trim_start();
    }
    Some(rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tells_modules_components_and_garbage_apart() {
        assert_eq!(WasmKind::of(b"\0asm\x01\0\0\0"), WasmKind::CoreModule);
        assert_eq!(WasmKind::of(b"\0asm\x0d\0\x01\0"), WasmKind::Component);
        assert_eq!(WasmKind::of(b"\0asm\x02\0\x05\0"), WasmKind::UnknownWasm);
        assert_eq!(WasmKind::of(b"hello"), WasmKind::NotWasm);
        assert_eq!(WasmKind::of(b""), WasmKind::NotWasm);
        assert_eq!(WasmKind::of(b";; x\n(module)"), WasmKind::CoreModule);
        assert_eq!(WasmKind::of(b"  (component)"), WasmKind::Component);
        assert_eq!(WasmKind::of(b";; c\n(component)"), WasmKind::Component);
    }
}
