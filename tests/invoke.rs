//! `spin-redis invoke`: one component, one payload, no Redis.

use crate::support;
use support::*;

fn app() -> (tempfile::TempDir, std::path::PathBuf) {
    let mut text = String::from(
        "spin_manifest_version = \"1\"\ntrigger = { type = \"redis\", address = \"redis://user:pw@127.0.0.1:1\" }\n",
    );
    for (id, wat) in [
        ("echo", "echo.wat"),
        ("fails", "exit7.wat"),
        ("env", "env.wat"),
    ] {
        text.push_str(&format!(
            "[[component]]\nid = \"{id}\"\nsource = \"{}\"\n[component.trigger]\nchannel = \"ch-{id}\"\nexecutor = {{ type = \"wagi\" }}\n",
            fixture(wat).display()
        ));
    }
    manifest(&text)
}

#[test]
fn invoke_runs_the_handler_once_and_prints_its_output() {
    let (_d, m) = app();
    let (code, out, err) = invoke_with(&m, "echo", &["--payload", "hello"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "hello\n");
    assert!(err.contains("echo: ok"), "{err}");
}

#[test]
fn invoke_exits_1_when_the_handler_fails() {
    let (_d, m) = app();
    let (code, out, err) = invoke_with(&m, "fails", &[]);
    assert_eq!(code, 1);
    assert!(out.is_empty());
    assert!(
        err.contains("about to fail") && err.contains("exited with code 7"),
        "{err}"
    );
}

#[test]
fn invoke_takes_binary_payload_files_and_a_channel() {
    let (d, m) = app();
    let payload = d.path().join("p.bin");
    std::fs::write(&payload, b"\x00\x01\xff").unwrap();
    let (code, out, err) = invoke_with(
        &m,
        "env",
        &[
            "--payload-file",
            payload.to_str().unwrap(),
            "--channel",
            "override",
        ],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("REDIS_CHANNEL=override\n"), "{out}");
    assert!(out.contains("CONTENT_LENGTH=3\n"), "{out}");
    assert!(
        out.contains("REDIS_ADDRESS=redis://127.0.0.1:1\n"),
        "no credentials: {out}"
    );
    let (code, out, _) = invoke_with(&m, "env", &[]);
    assert_eq!(code, 0);
    assert!(
        out.contains("REDIS_CHANNEL=ch-env\n"),
        "defaults to the trigger's channel: {out}"
    );
}

#[test]
fn invoke_of_an_unknown_component_is_a_usage_error() {
    let (_d, m) = app();
    let (code, _, err) = invoke_with(&m, "ghost", &[]);
    assert_unknown_component(code, &err, "ghost", "echo, fails, env");
}

#[test]
fn invoke_prepares_only_the_component_it_runs() {
    let (d, m) = app();
    let broken = d.path().join("broken.wasm");
    std::fs::write(&broken, b"not wasm").unwrap();
    let mut text = std::fs::read_to_string(&m).unwrap();
    text.push_str(&format!(
        "[[component]]\nid = \"broken\"\nsource = \"{}\"\n[component.trigger]\nchannel = \"b\"\nexecutor = {{ type = \"wagi\" }}\n",
        broken.display()
    ));
    std::fs::write(&m, text).unwrap();
    let (code, out, err) = invoke_with(&m, "echo", &["--payload", "fine"]);
    assert_eq!((code, out.as_str()), (0, "fine\n"), "{err}");
    let (code, _, err) = invoke_with(&m, "broken", &[]);
    assert_eq!(code, 2);
    assert!(
        err.contains("component \"broken\"") && err.contains("is not a WebAssembly core module"),
        "{err}"
    );
}
