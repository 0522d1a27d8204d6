//! Making a core module that carries component-type metadata into a
//! component, as Spin does when it loads one, and caching the result.
//!
//! Modules built with wit-bindgen 0.5 and newer (the Spin SDKs 2-4 for Rust
//! built for `wasm32-wasi`/`wasm32-wasip1`, the Spin Go SDK) describe their
//! world in `component-type*` custom sections but are core modules importing
//! WASI preview1. wit-component's `ComponentEncoder` turns such a module into
//! a component with the WASI preview1 *reactor* adapter that wasmtime
//! publishes (`wasi-preview1-component-adapter-provider`, the version that
//! matches the wasmtime in use); the component then runs exactly like any
//! other under the `spin` executor.
//!
//! Encoding takes a while for large modules, so the result is kept under the
//! compiled-code cache folder, as
//! `componentize/p1-reactor-<adapter version>-<adapter hash>/<module SHA-256>`:
//! a restart reads it back instead of encoding again, and a new adapter never
//! reuses an old entry. That shape (a file without extension two folders
//! down) is the one wasmtime's cache cleanup recognises as an entry, so it
//! counts ours within its size limits instead of deleting them as unknown
//! files. Entries are written whole (a temporary file renamed into place),
//! and an entry that does not load is encoded again ([`Componentizer::redo`]).
//! `--no-cache` turns this cache off with the compiled-code cache.
//!
//! Not owned here: deciding that a module is to be encoded (`detect`),
//! compiling and running the component (`component`; wasmtime's own cache
//! keeps the compiled code).

use crate::executor::engine::CacheUse;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use wasi_preview1_component_adapter_provider::{
    WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME, WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
};

/// The version of `wasi-preview1-component-adapter-provider` (pinned in
/// Cargo.toml); part of every cache entry's name, with the adapter's hash.
pub const ADAPTER_VERSION: &str = "48.0.8";

/// The folder under the compiled-code cache that holds encoded components.
const SUBDIR: &str = "componentize";

/// Why a module could not be made into a component.
#[derive(Debug, thiserror::Error)]
#[error(
    "carries component-type metadata but cannot be made into a component with the WASI preview1 adapter {ADAPTER_VERSION}: {0}"
)]
pub struct EncodeError(String);

/// A component made from a module, and whether it came from the cache.
#[derive(Debug)]
pub struct Encoded {
    pub bytes: Vec<u8>,
    /// `Hit`: read from the cache; `Miss`: encoded now (and stored); `Off`:
    /// encoded now, no cache.
    pub cache: CacheUse,
    /// How long reading or encoding it took.
    pub elapsed: std::time::Duration,
}

/// Encodes modules into components through the on-disk cache.
#[derive(Debug, Clone)]
pub struct Componentizer {
    /// `<compiled-code cache>/componentize`, or `None` when caching is off.
    dir: Option<PathBuf>,
}

impl Componentizer {
    /// `cache_dir` is the compiled-code cache folder (`None`: no cache).
    pub fn new(cache_dir: Option<&Path>) -> Componentizer {
        Componentizer {
            dir: cache_dir.map(|d| d.join(SUBDIR)),
        }
    }

    /// The component for `module`: from the cache when an entry exists,
    /// otherwise encoded now and stored.
    pub fn component(&self, module: &[u8]) -> Result<Encoded, EncodeError> {
        let started = std::time::Instant::now();
        let Some(path) = self.entry(module) else {
            return self.redo(module);
        };
        match std::fs::read(&path) {
            Ok(bytes) => {
                return Ok(Encoded {
                    bytes,
                    cache: CacheUse::Hit,
                    elapsed: started.elapsed(),
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(entry = %path.display(), error = %e, "cannot read a componentize cache entry; encoding again");
            }
        }
        self.redo(module)
    }

    /// Encodes `module` again and replaces its cache entry: for an entry
    /// that did not load.
    pub fn redo(&self, module: &[u8]) -> Result<Encoded, EncodeError> {
        let started = std::time::Instant::now();
        let bytes = encode(module)?;
        let Some(path) = self.entry(module) else {
            return Ok(Encoded {
                bytes,
                cache: CacheUse::Off,
                elapsed: started.elapsed(),
            });
        };
        if let Err(e) = store(&path, &bytes) {
            // The component still runs; only the next start pays again.
            tracing::warn!(entry = %path.display(), error = %format!("{e:#}"), "cannot write a componentize cache entry");
        }
        Ok(Encoded {
            bytes,
            cache: CacheUse::Miss,
            elapsed: started.elapsed(),
        })
    }

    /// The cache entry's path for `module`, when caching is on.
    pub fn entry(&self, module: &[u8]) -> Option<PathBuf> {
        let dir = self.dir.as_ref()?;
        let adapter = hex(&Sha256::digest(WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER));
        Some(
            dir.join(format!("p1-reactor-{ADAPTER_VERSION}-{}", &adapter[..16]))
                .join(hex(&Sha256::digest(module))),
        )
    }
}

/// Encodes `module` into a component with the WASI preview1 reactor adapter.
pub fn encode(module: &[u8]) -> Result<Vec<u8>, EncodeError> {
    wit_component::ComponentEncoder::default()
        .validate(true)
        .module(module)
        .and_then(|e| {
            e.adapter(
                WASI_SNAPSHOT_PREVIEW1_ADAPTER_NAME,
                WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER,
            )
        })
        .and_then(|mut e| e.encode())
        .map_err(|e| EncodeError(format!("{e:#}")))
}

/// Writes `bytes` to `path` whole: into a temporary file beside it, then
/// renamed, so a reader never sees half an entry.
fn store(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use anyhow::Context as _;
    use std::io::Write as _;
    let dir = path
        .parent()
        .expect("invariant: an entry path is a file in the cache folder");
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create {:?}", dir.display().to_string()))?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.persist(path)?;
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_cannot_be_encoded_fails_with_the_reason() {
        let e = encode(b"\0asm\x01\0\0\0garbage").unwrap_err().to_string();
        assert!(
            e.contains(&format!("with the WASI preview1 adapter {ADAPTER_VERSION}")),
            "{e}"
        );
        // The adapter has no such preview1 function to give it.
        let module = wat::parse_str(
            r#"(module (import "wasi_snapshot_preview1" "no_such_call" (func)) (memory (export "memory") 1))"#,
        )
        .unwrap();
        let e = encode(&module).unwrap_err().to_string();
        assert!(e.contains("no_such_call"), "{e}");
    }

    #[test]
    fn entries_are_named_by_module_and_adapter_and_off_without_a_folder() {
        let c = Componentizer::new(Some(Path::new("/cache")));
        let a = c.entry(b"a").unwrap();
        assert!(a.starts_with("/cache/componentize"));
        let folder = a.parent().unwrap().file_name().unwrap().to_str().unwrap();
        assert!(
            folder.starts_with(&format!("p1-reactor-{ADAPTER_VERSION}-")),
            "{folder}"
        );
        // No extension: wasmtime's cache cleanup would delete it as unknown.
        assert_eq!(a.extension(), None);
        assert_ne!(c.entry(b"b"), Some(a));
        assert!(Componentizer::new(None).entry(b"a").is_none());
    }
}
