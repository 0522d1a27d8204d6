//! Writing the applications tests run: a manifest in a fresh folder. Does
//! not own where the handlers come from (`wasm`) or running them
//! (`spin_redis`).

use std::path::PathBuf;

/// Writes `text` as `spin.toml` in a fresh folder and returns (folder, path).
pub fn manifest(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = dir.path().join("spin.toml");
    std::fs::write(&path, text).expect("write spin.toml");
    (dir, path)
}
