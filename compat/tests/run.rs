//! The compat contract, checked on real WASI modules (the WAT fixtures) with
//! a real wasmtime engine: results, output capture, environment, argv, files,
//! limits and isolation. No Redis here; `spin-redis`'s tests cover that.

use bytes::Bytes;
use spin_redis_compat::{PrepareError, Prepared, WagiModule};
use spin_redis_sandbox::{HandlerError, Limits, Message, Mount, Outcome, Sandbox};
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;
use wasmtime::{Config, Engine};

fn engine() -> &'static Engine {
    static ENGINE: OnceLock<Engine> = OnceLock::new();
    ENGINE.get_or_init(|| {
        let mut c = Config::new();
        c.epoch_interruption(true);
        let engine = Engine::new(&c).expect("engine");
        let e = engine.clone();
        std::thread::spawn(move || {
            loop {
                std::thread::sleep(Duration::from_millis(10));
                e.increment_epoch();
            }
        });
        engine
    })
}

fn fixture(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn module(name: &str, sandbox: Sandbox, limits: Limits) -> WagiModule {
    WagiModule::prepare(engine(), &fixture(name), "_start", sandbox, limits).expect("prepare")
}

/// Runs fixture `name` once, in the default sandbox, under `limits`.
fn run_fixture(name: &str, limits: Limits, payload: &[u8]) -> Outcome {
    run(&module(name, sandbox(), limits), payload)
}

fn sandbox() -> Sandbox {
    Sandbox {
        component_id: "comp".into(),
        ..Default::default()
    }
}

fn run(m: &WagiModule, payload: &[u8]) -> Outcome {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(m.run(Message {
        channel: "news",
        address: "redis://127.0.0.1:7777",
        payload: Bytes::copy_from_slice(payload),
        stream: None,
        origin: None,
    }))
}

#[test]
fn payload_goes_to_stdin_and_stdout_is_captured() {
    let o = run_fixture("echo.wat", Limits::default(), b"hello \xff world");
    assert_eq!(o.result, Ok(()));
    assert_eq!(&o.stdout[..], b"hello \xff world\n");
    assert!(o.stderr.is_empty());
}

#[test]
fn empty_payload_is_just_end_of_file() {
    let o = run_fixture("echo.wat", Limits::default(), b"");
    assert_eq!(o.result, Ok(()));
    assert_eq!(&o.stdout[..], b"\n");
}

#[test]
fn nonzero_exit_is_an_error_carrying_the_code_and_stderr_is_kept() {
    let o = run_fixture("exit7.wat", Limits::default(), b"x");
    assert_eq!(o.result, Err(HandlerError::Exit(7)));
    assert_eq!(&o.stderr[..], b"about to fail\n");
}

#[test]
fn proc_exit_zero_is_success() {
    let o = run_fixture("exit0.wat", Limits::default(), b"");
    assert_eq!(o.result, Ok(()));
    assert_eq!(&o.stdout[..], b"bye\n");
}

#[test]
fn a_trap_is_an_error_carrying_the_trap_message() {
    let o = run_fixture("trap.wat", Limits::default(), b"");
    match o.result {
        Err(HandlerError::Trap(msg)) => assert!(msg.contains("unreachable"), "{msg}"),
        other => panic!("expected a trap, got {other:?}"),
    }
}

#[test]
fn an_endless_loop_is_stopped_at_the_deadline() {
    let limits = Limits {
        timeout: Duration::from_millis(200),
        ..Limits::default()
    };
    let o = run_fixture("spin.wat", limits, b"");
    assert_eq!(
        o.result,
        Err(HandlerError::TimedOut(Duration::from_millis(200)))
    );
}

#[test]
fn growing_memory_past_the_cap_is_an_error() {
    let limits = Limits {
        max_memory_bytes: 8 << 20,
        ..Limits::default()
    };
    let o = run_fixture("grow.wat", limits, b"");
    match o.result {
        Err(HandlerError::MemoryLimit(msg)) => assert!(msg.contains("8388608"), "{msg}"),
        other => panic!("expected the memory limit, got {other:?}"),
    }
}

#[test]
fn output_past_the_cap_is_cut_and_counted_and_the_run_still_succeeds() {
    let limits = Limits {
        max_stdout_bytes: 1 << 20,
        ..Limits::default()
    };
    let o = run_fixture("flood.wat", limits, b"");
    assert_eq!(o.result, Ok(()));
    assert_eq!(o.stdout.len(), 1 << 20);
    assert_eq!(o.stdout_cut, (16 << 20) - (1 << 20));
    assert_eq!(&o.stderr[..], b"done\n");
}

#[test]
fn environment_has_the_runtime_variables_user_values_and_nothing_of_the_host() {
    // SAFETY: set before any module runs in this test; the variable is unique
    // to this test, and only its absence inside the guest is checked.
    unsafe { std::env::set_var("HOST_SECRET_FOR_TEST", "leak") };
    let mut s = sandbox();
    s.env = vec![
        ("GREETING".into(), "hi".into()),
        ("CONTENT_LENGTH".into(), "999".into()),
    ];
    let m = module("env.wat", s, Limits::default());
    let o = run(&m, b"12345");
    assert_eq!(o.result, Ok(()));
    let env = String::from_utf8(o.stdout.to_vec()).unwrap();
    let lines: Vec<&str> = env.lines().collect();
    assert_eq!(
        lines,
        vec![
            "GREETING=hi",
            "REDIS_CHANNEL=news",
            "REDIS_ADDRESS=redis://127.0.0.1:7777",
            "SPIN_COMPONENT_ID=comp",
            "CONTENT_LENGTH=5",
        ]
    );
}

#[test]
fn argv_defaults_to_the_component_id_and_follows_the_template() {
    let m = module("args.wat", sandbox(), Limits::default());
    assert_eq!(&run(&m, b"").stdout[..], b"comp\n");
    let mut s = sandbox();
    s.argv = vec![
        "${COMPONENT_ID}".into(),
        "--channel".into(),
        "${CHANNEL}".into(),
    ];
    let m = module("args.wat", s, Limits::default());
    assert_eq!(&run(&m, b"").stdout[..], b"comp\n--channel\nnews\n");
}

fn mounted(name: &str) -> (WagiModule, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("greeting.txt"), "hello from the host\n").unwrap();
    let mut s = sandbox();
    s.mounts = vec![Mount {
        host: dir.path().to_path_buf(),
        guest: "/data".into(),
    }];
    (module(name, s, Limits::default()), dir)
}

#[test]
fn mounted_files_can_be_read() {
    let (m, _dir) = mounted("readfile.wat");
    let o = run(&m, b"greeting.txt");
    assert_eq!(o.result, Ok(()));
    assert_eq!(&o.stdout[..], b"hello from the host\n");
}

/// The WASI errnos that mean "not allowed to write": perm (63), notcapable
/// (76), rofs (69), acces (2). Not noent (44, missing) nor badf (8, no
/// preopened directory at all): a read-only mount must be *there* and refuse.
const DENIED: [i32; 4] = [63, 76, 69, 2];
const NOENT: i32 = 44;

/// The WASI errno a fixture exited with (writefile.wat and readfile.wat exit
/// with the errno of the call that failed).
fn errno(o: &Outcome) -> i32 {
    match o.result {
        Err(HandlerError::Exit(n)) => n,
        ref other => panic!("expected an exit with a WASI errno, got {other:?}"),
    }
}

#[test]
fn mounts_are_read_only() {
    let (m, dir) = mounted("writefile.wat");
    // The mount is there: writing to a file in it, new or existing, is
    // *denied*, not "missing".
    for name in ["new.txt", "greeting.txt"] {
        let o = run(&m, name.as_bytes());
        let n = errno(&o);
        assert!(
            DENIED.contains(&n),
            "writing {name} must be denied (one of {DENIED:?}), got errno {n}"
        );
        assert_eq!(&o.stdout[..], format!("errno {n}\n").as_bytes());
    }
    assert!(!dir.path().join("new.txt").exists());
    assert_eq!(
        std::fs::read_to_string(dir.path().join("greeting.txt")).unwrap(),
        "hello from the host\n"
    );
    // What "missing" looks like, for contrast: a path that does not exist
    // in the same mount is noent, not one of the denied errnos.
    let (reader, _dir) = mounted("readfile.wat");
    assert_eq!(errno(&run(&reader, b"no-such-file.txt")), NOENT);
}

/// The control for `mounts_are_read_only`: the same fixture and payloads
/// succeed when the directory is mounted writable, so the errors above come
/// from the read-only mount and not from a broken fixture.
///
/// Why not through `Sandbox`: its public API only mounts read-only (that is
/// the contract), so there is no writable `Mount` to build. The control
/// therefore runs the fixture with plain wasmtime-wasi preview1, preopening
/// the directory the way the sandbox does but with `FsPerms::ReadWrite`: the
/// one difference from the sandbox's mount is the permission under test.
#[test]
fn the_write_fixture_succeeds_on_a_writable_mount() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("greeting.txt"), "hello from the host\n").unwrap();
    for name in ["new.txt", "greeting.txt"] {
        let (result, stdout) = direct(
            "writefile.wat",
            name.as_bytes(),
            Some((dir.path(), wasmtime_wasi::FsPerms::ReadWrite)),
            1,
        );
        assert_eq!(result, Ok(()), "writing {name}: {}", stdout_text(&stdout));
        assert_eq!(stdout_text(&stdout), "wrote\n");
    }
    assert_eq!(
        std::fs::read_to_string(dir.path().join("new.txt")).unwrap(),
        "written\n"
    );
    // Opened without truncation: the first bytes are overwritten.
    assert_eq!(
        std::fs::read_to_string(dir.path().join("greeting.txt")).unwrap(),
        "written\nom the host\n"
    );
    // And the same run with the permission the sandbox uses is denied, so
    // this path is a faithful stand-in for the sandbox's mount.
    let (result, stdout) = direct(
        "writefile.wat",
        b"other.txt",
        Some((dir.path(), wasmtime_wasi::FsPerms::ReadOnly)),
        1,
    );
    match result {
        Err(HandlerError::Exit(n)) => assert!(DENIED.contains(&n), "errno {n}"),
        other => panic!("expected a denied write, got {other:?}"),
    }
    assert!(stdout_text(&stdout).starts_with("errno "));
    assert!(!dir.path().join("other.txt").exists());
}

fn stdout_text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Runs fixture `name`'s `_start` `runs` times in ONE instance, outside the
/// compat executor, with plain wasmtime-wasi preview1: `payload` on stdin and
/// `mount` (if any) preopened at `/data` with the given permission. Returns
/// how the last run ended and everything written to stdout. Used as the
/// control of tests whose point is what the executor does differently.
fn direct(
    name: &str,
    payload: &[u8],
    mount: Option<(&std::path::Path, wasmtime_wasi::FsPerms)>,
    runs: usize,
) -> (Result<(), HandlerError>, Vec<u8>) {
    use wasmtime_wasi::p1::{self, WasiP1Ctx};
    use wasmtime_wasi::p2::pipe::{MemoryInputPipe, MemoryOutputPipe};
    let engine = Engine::default();
    let module = wasmtime::Module::new(&engine, fixture(name)).expect("compile");
    let mut linker: wasmtime::Linker<WasiP1Ctx> = wasmtime::Linker::new(&engine);
    p1::add_to_linker_sync(&mut linker, |s| s).expect("link");
    let stdout = MemoryOutputPipe::new(1 << 20);
    let mut b = wasmtime_wasi::WasiCtxBuilder::new();
    b.stdin(MemoryInputPipe::new(payload.to_vec()))
        .stdout(stdout.clone());
    if let Some((host, perms)) = mount {
        b.preopened_dir(host, "/data", perms).expect("preopen");
    }
    let mut store = wasmtime::Store::new(&engine, b.build_p1());
    let instance = linker
        .instantiate(&mut store, &module)
        .expect("instantiate");
    let start = instance
        .get_typed_func::<(), ()>(&mut store, "_start")
        .expect("_start");
    let mut result = Ok(());
    for _ in 0..runs {
        result = HandlerError::from_call(start.call(&mut store, ()));
    }
    drop(store);
    (result, stdout.contents().to_vec())
}

#[test]
fn nothing_outside_the_mount_is_reachable() {
    let (m, _dir) = mounted("readfile.wat");
    let o = run(&m, b"../../../../etc/passwd");
    assert!(
        matches!(o.result, Err(HandlerError::Exit(_))),
        "escaping the mount must fail: {:?}",
        o.result
    );
    assert!(o.stdout.is_empty());
    // And with no mount at all there is no directory to open anything in.
    let o = run_fixture("readfile.wat", Limits::default(), b"etc/passwd");
    assert_eq!(
        o.result,
        Err(HandlerError::Exit(8)),
        "8 = badf: no preopened directory"
    );
}

#[test]
fn each_message_gets_a_fresh_instance() {
    // counter.wat increments a mutable global and a counter in linear memory
    // on every run and prints both: any state surviving from one message to
    // the next would show as a 2.
    let m = module("counter.wat", sandbox(), Limits::default());
    for i in 0..5 {
        let o = run(&m, format!("m{i}").as_bytes());
        assert_eq!(o.result, Ok(()));
        assert_eq!(
            o.stdout,
            Bytes::from("global 1, memory 1\n"),
            "message {i} saw state left by an earlier one"
        );
    }
}

#[test]
fn the_counter_fixture_shows_a_reused_instance() {
    // The control for `each_message_gets_a_fresh_instance`: run twice in
    // one instance, the fixture does count, so reuse could not go unseen.
    let (result, stdout) = direct("counter.wat", b"", None, 2);
    assert_eq!(result, Ok(()));
    assert_eq!(
        stdout_text(&stdout),
        "global 1, memory 1\nglobal 2, memory 2\n"
    );
}

#[test]
fn bad_modules_are_refused_at_prepare_time_with_a_reason() {
    let prep = |bytes: &[u8], entry: &str| {
        WagiModule::prepare(engine(), bytes, entry, sandbox(), Limits::default())
    };
    assert!(matches!(
        prep(b"garbage", "_start"),
        Err(PrepareError::NotWasm { .. })
    ));
    let echo = wat::parse_bytes(&fixture("echo.wat")).unwrap().into_owned();
    assert!(matches!(
        prep(&echo[..echo.len() / 2], "_start"),
        Err(PrepareError::Compile(_))
    ));
    assert!(matches!(
        prep(b"\0asm\x0d\0\x01\0", "_start"),
        Err(PrepareError::IsComponent)
    ));
    match prep(&fixture("noentry.wat"), "_start") {
        Err(e @ PrepareError::MissingEntrypoint { .. }) => {
            assert!(e.to_string().contains("\"handle\""), "{e}")
        }
        other => panic!("{:?}", other.err()),
    }
    assert!(
        prep(&fixture("noentry.wat"), "handle").is_ok(),
        "a configured entrypoint is used"
    );
    match prep(&fixture("badimport.wat"), "_start") {
        Err(e @ PrepareError::Link(_)) => assert!(e.to_string().contains("host_magic"), "{e}"),
        other => panic!("{:?}", other.err()),
    }
}
