//! Where the tests' handlers live: the repository, the WAT fixtures of
//! `compat/tests/fixtures`, and the built guests of `tests/guests` (built by
//! `bash tests/guests/build.sh`, which tests/all.sh runs). Does not build
//! anything itself.

use std::path::PathBuf;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn fixture(name: &str) -> PathBuf {
    repo().join("compat/tests/fixtures").join(name)
}

/// The Rust component that prints its environment (built by
/// tests/guests/build.sh).
pub fn env_component() -> PathBuf {
    let c = repo().join("tests/guests/rust-env-component/rust-env-component.wasm");
    assert!(
        c.is_file(),
        "{} is missing: run bash tests/guests/build.sh (tests/all.sh does)",
        c.display()
    );
    c
}
