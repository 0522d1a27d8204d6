//! Spin apps of every era under the default (spin) executor: a Spin SDK 2
//! module built for wasm32-wasip1 (made a component at load, through the
//! componentize cache), a seed-era module in the pre-component canonical ABI,
//! imports the host does not provide (stubbed), and the refusal of what fits
//! no executor.
//!
//! `examples/spin-sdk2-rust/handler.wasm` is built by `bash
//! examples/build.sh` (tests/all.sh runs it first); the seed-era module and
//! the stubbed-imports component are WAT fixtures in `tests/fixtures/`.

use crate::support;
use std::path::{Path, PathBuf};
use support::*;

fn sdk2() -> PathBuf {
    example("spin-sdk2-rust")
}

fn fixture_here(name: &str) -> PathBuf {
    repo().join("tests/fixtures").join(name)
}

/// A v1 manifest with one component `id` from `source` on channel `c`.
fn v1(id: &str, source: &Path, executor: &str) -> (tempfile::TempDir, PathBuf) {
    manifest(&(v1_head(None, "redis://127.0.0.1:1") + &v1_component(id, source, "c", executor)))
}

/// `spin-redis invoke` of `id` in `m` on `payload`: (exit code, stdout,
/// stderr).
fn invoke(m: &Path, id: &str, payload: &str, extra: &[&str]) -> (i32, String, String) {
    let mut args = vec!["--payload", payload];
    args.extend(extra);
    invoke_with(m, id, &args)
}

/// The value of `componentize_cache=` on the line that says a module was
/// made a component.
fn componentize_cache(stderr: &str) -> String {
    let line = stderr
        .lines()
        .find(|l| l.contains("made a component of a core module"))
        .unwrap_or_else(|| panic!("no componentize line in:\n{stderr}"));
    line.split(" componentize_cache=")
        .nth(1)
        .unwrap_or_else(|| panic!("no componentize_cache= in {line:?}"))
        .split(' ')
        .next()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn a_spin_sdk2_module_runs_under_a_v2_manifest_and_its_host_api_call_fails_naming_it() {
    let redis = Redis::start();
    let (_d, m) = manifest(
        &[
            v2_head("sdk2", &redis.url()),
            v2_trigger("channel", "titles", "titles"),
            v2_component("titles", sdk2().display()),
        ]
        .concat(),
    );
    let mut s = SpinRedis::up(&redis, &m, &[], &["titles"]);
    let err = s.stderr();
    assert!(
        err.contains("executor=spin (fermyon:spin/inbound-redis)"),
        "{err}"
    );
    redis.publish("titles", b"hello WORLD");
    redis.publish("titles", b"   ");
    redis.publish("titles", b"sql:select 1");
    s.wait_log("titles_stdout.txt", "title on titles: Hello World\n");
    s.wait_log("titles_stderr.txt", "nothing to title-case");
    s.wait_failure("titles",
        "titles",
        "failed: the handler called `fermyon:spin/sqlite@2.0.0#[static]connection.open`, a host API spin-redis does not provide",
    );
    s.stop_counting("received 3, ok 1, failed 2");
}

#[test]
fn the_second_start_reads_the_component_from_the_componentize_cache() {
    let cache = tempfile::tempdir().unwrap();
    let dir = cache.path().to_str().unwrap();
    let (_d, m) = v1("titles", &sdk2(), "spin");
    let first = |args: &[&str]| {
        let (code, out, err) = invoke(&m, "titles", "ada lovelace", args);
        assert_eq!(
            (code, out.as_str()),
            (0, "title on c: Ada Lovelace\n"),
            "{err}"
        );
        err
    };
    assert_eq!(componentize_cache(&first(&["--cache-dir", dir])), "miss");
    let mut entries = Vec::new();
    for folder in std::fs::read_dir(cache.path().join("componentize")).unwrap() {
        for entry in std::fs::read_dir(folder.unwrap().path()).unwrap() {
            entries.push(entry.unwrap().path());
        }
    }
    assert_eq!(entries.len(), 1, "{entries:?}");
    assert!(
        entries[0].to_str().unwrap().contains("/p1-reactor-48.0.8-"),
        "{entries:?}"
    );
    assert_eq!(componentize_cache(&first(&["--cache-dir", dir])), "hit");
    // An entry that does not load is encoded again, and replaced.
    std::fs::write(&entries[0], b"\0asm\x0d\0\x01\0 not a component").unwrap();
    let err = first(&["--cache-dir", dir]);
    assert!(
        err.contains("does not load; encoding the module again"),
        "{err}"
    );
    assert_eq!(componentize_cache(&err), "miss");
    assert_eq!(componentize_cache(&first(&["--cache-dir", dir])), "hit");
    assert_eq!(componentize_cache(&first(&["--no-cache"])), "off");
}

#[test]
fn a_seed_era_module_runs_under_up_through_the_pre_component_abi() {
    let redis = Redis::start();
    let (_d, m) = manifest(&format!(
        "spin_version = \"1\"\nname = \"seed\"\ntrigger = {{ type = \"redis\", address = \"{}\" }}\n[[component]]\nid = \"seed\"\nsource = \"{}\"\n[component.trigger]\nchannel = \"messages\"\n",
        redis.url(),
        fixture_here("seed-era.wat").display()
    ));
    let mut s = SpinRedis::up(&redis, &m, &["--max-concurrency", "1"], &["messages"]);
    assert!(
        s.stderr()
            .contains("executor=spin (seed-era core module: handle-redis-message"),
        "{}",
        s.stderr()
    );
    for payload in [
        "hello",
        "fail",
        "err-success",
        "trap",
        "config",
        "bad-abi",
        "world",
    ] {
        redis.publish("messages", payload.as_bytes());
    }
    s.wait_log("seed_stdout.txt", "seed got: hello\nseed got: world\n");
    s.wait_log("seed_stderr.txt", "asked to fail\n");
    for reason in [
        "returned an error: error",
        "trapped: wasm trap: wasm `unreachable` instruction executed",
        "failed: the handler called `spin-config::get-config`, a host API spin-redis does not provide",
        "failed: `handle-redis-message` broke the canonical ABI: its result case is 7, not 0 (ok) or 1 (err)",
    ] {
        s.wait_failure("seed", "messages", reason);
    }
    // ok: hello, err-success, world; failed: fail, trap, config, bad-abi.
    s.stop_counting("received 7, ok 3, failed 4");
}

#[test]
fn imports_the_host_does_not_provide_load_and_fail_only_the_message_that_calls_them() {
    let (_d, m) = v1(
        "stubbed",
        &fixture_here("stubbed-imports-component.wat"),
        "spin",
    );
    let (code, _, err) = invoke(&m, "stubbed", "hello", &[]);
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = invoke(&m, "stubbed", "sqlite", &[]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("failed: the handler called `fermyon:spin/sqlite@2.0.0#execute`"),
        "{err}"
    );
    let (code, _, err) = invoke(&m, "stubbed", "kv", &[]);
    assert_eq!(code, 1, "{err}");
    assert!(
        err.contains("failed: the handler called `wasi:keyvalue/store@0.2.0-draft#open`"),
        "{err}"
    );
}

fn wat_file(dir: &tempfile::TempDir, name: &str, wat: &str) -> PathBuf {
    let p = dir.path().join(name);
    std::fs::write(&p, wat).unwrap();
    p
}

#[test]
fn what_fits_no_executor_is_refused_naming_what_was_found_and_what_would_fit() {
    let d = tempfile::tempdir().unwrap();
    // A WASI command under spin: wagi fits.
    assert_refused(
        &fixture("echo.wat"),
        "spin",
        &[
            "is a WASI core module exporting `_start` (a WASI command)",
            "use executor = { type = \"wagi\" }",
            "no component-type metadata",
            "imports from `wasi_snapshot_preview1` (fd_read, fd_write, proc_exit)",
        ],
    );
    // Nothing fits.
    let odd = wat_file(&d, "odd.wat", r#"(module (func (export "hello")))"#);
    assert_refused(
        &odd,
        "spin",
        &[
            "is a core module that no executor runs. Found: it exports `hello`; no component-type metadata; imports nothing.",
            "the wagi executor runs WASI commands exporting `_start`",
        ],
    );
    // Almost seed-era.
    let near = wat_file(
        &d,
        "near.wat",
        r#"(module (memory (export "memory") 1)
             (func (export "handle-redis-message") (param i32 i32) (result i32) i32.const 0))"#,
    );
    assert_refused(
        &near,
        "spin",
        &[
            "exports `handle-redis-message` like a seed-era module, but not function `canonical_abi_realloc`",
        ],
    );
    // Seed-era with the wrong type.
    let typed = wat_file(
        &d,
        "typed.wat",
        r#"(module (memory (export "memory") 1)
             (func (export "handle-redis-message") (param i32) (result i32) i32.const 0)
             (func (export "canonical_abi_realloc") (param i32 i32 i32 i32) (result i32) i32.const 0))"#,
    );
    assert_refused(
        &typed,
        "spin",
        &[
            "is a seed-era module",
            "which exports `handle-redis-message` with type (i32) -> i32 instead of (i32, i32) -> i32",
        ],
    );
    // Spin SDK and seed-era modules under wagi: spin fits.
    assert_refused(
        &sdk2(),
        "wagi",
        &[
            "has no exported function \"_start\"",
            "component-type metadata (`component-type:",
            "runs under executor = { type = \"spin\" }",
        ],
    );
    assert_refused(
        &fixture_here("seed-era.wat"),
        "wagi",
        &["a seed-era Spin module, which runs under executor = { type = \"spin\" }"],
    );
    // A component that is a WASI command, not a Redis handler.
    let command = wat_file(
        &d,
        "command.wat",
        r#"(component
             (import "wasi:cli/environment@0.2.0" (instance))
             (core module $m (func (export "run") (result i32) i32.const 0))
             (core instance $i (instantiate $m))
             (func $run (result (result)) (canon lift (core func $i "run")))
             (instance $e (export "run" (func $run)))
             (export "wasi:cli/run@0.2.0" (instance $e)))"#,
    );
    assert_refused(
        &command,
        "spin",
        &[
            "exports no Redis handler; it exports: wasi:cli/run@0.2.0",
            "it imports `wasi:cli/environment@0.2.0`",
            "It is a WASI command component",
        ],
    );
}
