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

/// `path`, which a build script (`script`, run by tests/all.sh) must have
/// written.
fn built(path: PathBuf, script: &str) -> PathBuf {
    assert!(
        path.is_file(),
        "{} is missing: run `bash {script}` first (tests/all.sh does)",
        path.display()
    );
    path
}

/// `examples/<name>/handler.wasm`, built by examples/build.sh.
pub fn example(name: &str) -> PathBuf {
    built(
        repo().join("examples").join(name).join("handler.wasm"),
        "examples/build.sh",
    )
}

/// `tests/guests/<name>/<name>.wasm`, built by tests/guests/build.sh.
pub fn guest(name: &str) -> PathBuf {
    built(
        repo()
            .join("tests/guests")
            .join(name)
            .join(format!("{name}.wasm")),
        "tests/guests/build.sh",
    )
}

/// The Rust component that prints its environment (built by
/// tests/guests/build.sh).
pub fn env_component() -> PathBuf {
    guest("rust-env-component")
}
