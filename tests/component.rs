//! The component executor end to end: components built from source with the
//! real SDKs (see examples/), a mixed app next to compat modules, start-up
//! refusals, and a Spin host API call failing only its message.
//!
//! The example handlers are built by `bash examples/build.sh` (tests/all.sh
//! runs it first).

use crate::support;
use support::*;

fn mixed() -> std::path::PathBuf {
    for name in [
        "c",
        "rust-component",
        "spin-sdk5-rust",
        "spin-sdk7-rust",
        "python",
        "rust-wasip1",
        "tinygo",
    ] {
        example(name);
    }
    repo().join("examples/mixed/spin.toml")
}

#[test]
fn a_mixed_app_routes_each_channel_to_its_handlers_with_every_interface() {
    let redis = Redis::start();
    let port = redis.port.to_string();
    // A fresh key-value store, not the one beside the example's manifest.
    let state = tempfile::tempdir().unwrap();
    let mut s = SpinRedis::up_with_env(
        &redis,
        &mixed(),
        &["--state-dir", state.path().to_str().unwrap()],
        &[("SPIN_VARIABLE_REDIS_PORT", &port)],
        &["orders", "events", "names", "config"],
    );
    // Seed WIT component + C compat module on one channel.
    redis.publish("orders", b"apple:3");
    redis.publish("orders", b"nonsense");
    // Python (fermyon:spin) + Spin SDK 7 (spin:redis@3.0.0, async) on another.
    redis.publish("events", br#"{"user": "ada", "action": "login"}"#);
    redis.publish("events", b"");
    // Spin SDK 5 + Rust compat module.
    redis.publish("names", b"world");
    redis.publish("names", b"count:visits");
    redis.publish("names", b"again");
    redis.publish("config", b"b=2;a=1");

    s.wait_logs(&[
        ("orders_stdout.txt", "order apple x3 on orders\n"),
        ("orders_stderr.txt", "malformed order on orders"),
        ("c-shout_stdout.txt", "[orders] APPLE:3\n"),
        ("c-shout_stdout.txt", "[orders] NONSENSE\n"),
        (
            "summary_stdout.txt",
            "json on events: object with 2 keys: action, user\n",
        ),
        ("words_stdout.txt", "first word"),
        ("reverse_stdout.txt", "reversed on names: dlrow\n"),
        ("reverse_stdout.txt", "reversed on names: niaga\n"),
        ("rust-greet_stdout.txt", "Hello, world!\n"),
        ("tinygo-kv_stdout.txt", "a: 1\nb: 2\n"),
    ]);
    // Error results are failures, reported with component and channel.
    s.wait_failure("orders", "orders", "returned an error: error");
    s.wait_failure("words", "events", "returned an error: empty payload");
    s.wait_failure("summary", "events", "returned an error: error");
    // Spin's host APIs: key-value, and outbound Redis publishing results.
    s.wait_log("reverse_stdout.txt", "visits seen 1 times\n");
    s.wait_log("reverse_stdout.txt", "message 2, published to results\n");
    // Nothing crossed channels.
    assert!(!s.log_text("summary_stdout.txt").contains("order"));
    assert!(!s.log_text("orders_stdout.txt").contains("json"));
    // 8 messages: orders x2 and events x2 reach two components each, names x3
    // two each, config one: 15 deliveries. Failures: orders "nonsense",
    // summary and words on the empty payload.
    s.stop_counting("received 15, ok 12, failed 3, dropped 0");
}

#[test]
fn start_up_refuses_handlers_under_the_wrong_executor_or_without_a_handler() {
    assert_refused(
        &example("c"),
        "spin",
        &[
            "component \"x\"",
            "is a WASI core module",
            "type = \"wagi\"",
        ],
    );
    assert_refused(
        &example("rust-component"),
        "wagi",
        &["is a WebAssembly component", "type = \"spin\""],
    );
    assert_refused(
        &repo().join("tests/fixtures/empty-component.wat"),
        "spin",
        &["exports no Redis handler; it exports: nothing"],
    );
    assert_refused(
        &repo().join("tests/fixtures/wrong-type-component.wat"),
        "spin",
        &["wrong type", "list<u8>"],
    );
    // Python's component also exports componentize-py's own `exports`: the
    // message lists everything it found when the handler is missing, but
    // here it has one, so it loads.
    let (_d, m) = manifest(&format!(
        "spin_manifest_version = \"1\"\ntrigger = {{ type = \"redis\", address = \"redis://127.0.0.1:1\" }}\n[[component]]\nid = \"py\"\nsource = \"{}\"\n[component.trigger]\nchannel = \"c\"\n",
        example("python").display()
    ));
    let (code, out, err) = invoke_with(&m, "py", &["--payload", "[1, 2]"]);
    // It loads and runs; this bare manifest gives it none of the variables
    // its host API calls need, so the message then fails, saying which.
    assert_eq!(out, "json on c: array of 2 items\n", "{err}");
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("redis_address"), "{err}");
    let garbage = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(garbage.path(), b"this is not wasm").unwrap();
    assert_refused(garbage.path(), "spin", &["is not a WebAssembly component"]);
}

#[test]
fn invoke_runs_components_too() {
    let m = mixed();
    let (code, out, err) = invoke_with(&m, "orders", &["--payload", "pear:12"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "order pear x12 on orders\n");
    let (code, _, err) = invoke_with(&m, "words", &["--payload", ""]);
    assert_eq!(code, 1);
    assert!(
        err.contains("words: returned an error: empty payload"),
        "{err}"
    );
}
