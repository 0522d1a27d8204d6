//! The handlers under test, as the executor-alone and end-to-end rows see
//! them, and their preparation through the runtime's own executors.
//!
//! Not owned here: running them (`alone`, `end_to_end`).

use crate::harness::repo;
use spin_redis::executor::Executor;
use spin_redis::executor::engine::Runtime;
use spin_redis::executor::spin::SpinComponent;
use spin_redis::host::ComponentHost;
use spin_redis_compat::WagiModule;
use spin_redis_sandbox::{Limits, Mount, Sandbox};
use std::path::PathBuf;

/// A handler under test.
#[derive(Clone)]
pub struct Subject {
    pub name: &'static str,
    pub wasm: PathBuf,
    pub executor: &'static str,
    pub payload: fn(usize) -> Vec<u8>,
    pub mount: Option<PathBuf>,
}

/// The trivial WAT module, the C module (index 1, used by the burst), the
/// Rust modules and components, the Spin SDK 5 component.
pub fn subjects() -> Vec<Subject> {
    let ex = |p: &str| repo().join("examples").join(p).join("handler.wasm");
    vec![
        Subject {
            name: "trivial WAT compat module (echo.wat)",
            wasm: repo().join("compat/tests/fixtures/echo.wat"),
            executor: "wagi",
            payload: |i| format!("m{i:07}").into_bytes(),
            mount: None,
        },
        Subject {
            name: "C compat module (examples/c)",
            wasm: ex("c"),
            executor: "wagi",
            payload: |i| format!("m{i:07}").into_bytes(),
            mount: None,
        },
        Subject {
            name: "Rust wasip1 compat module (examples/rust-wasip1)",
            wasm: ex("rust-wasip1"),
            executor: "wagi",
            payload: |i| format!("m{i:07}").into_bytes(),
            mount: Some(repo().join("examples/rust-wasip1/data")),
        },
        Subject {
            name: "Rust component (examples/rust-component)",
            wasm: ex("rust-component"),
            executor: "spin",
            payload: |i| format!("m{i:07}:1").into_bytes(),
            mount: None,
        },
        Subject {
            name: "Spin SDK 5 Rust component (examples/spin-sdk5-rust, echo)",
            wasm: ex("spin-sdk5-rust"),
            executor: "spin",
            payload: |i| format!("echo:m{i:07}").into_bytes(),
            mount: None,
        },
    ]
}

/// The subjects the executor-alone and end-to-end rows run: all, or those
/// whose name holds `BENCH_SUBJECT` (to profile one).
pub fn chosen() -> Vec<Subject> {
    let only = std::env::var("BENCH_SUBJECT").unwrap_or_default();
    subjects()
        .into_iter()
        .filter(|s| s.name.contains(&only))
        .collect()
}

/// The subject's executor, prepared as `up` prepares it.
pub fn prepare(rt: &Runtime, s: &Subject) -> Executor {
    let bytes = std::fs::read(&s.wasm)
        .unwrap_or_else(|e| panic!("{}: {e} (run bash examples/build.sh)", s.wasm.display()));
    let sandbox = Sandbox {
        component_id: "bench".into(),
        env: vec![],
        mounts: s
            .mount
            .iter()
            .map(|m| Mount {
                host: m.clone(),
                guest: "/data".into(),
            })
            .collect(),
        argv: vec![],
    };
    let limits = Limits::default();
    match s.executor {
        "wagi" => Executor::Wagi(
            WagiModule::prepare(&rt.engine, &bytes, "_start", sandbox, limits).unwrap(),
        ),
        _ => Executor::Spin(
            SpinComponent::prepare(
                &rt.engine,
                &bytes,
                sandbox,
                limits,
                ComponentHost::ungranted("bench"),
            )
            .unwrap(),
        ),
    }
}
