//! The compat contract, checked on real WASI modules (the WAT fixtures) with
//! a real wasmtime engine: results, output capture, environment, argv, files,
//! limits and isolation. No Redis here; `spin-redis`'s tests cover that.

use bytes::Bytes;
use spin_redis_compat::{
    CompatModule, HandlerError, Limits, Message, Mount, Outcome, PrepareError, Sandbox,
};
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

fn module(name: &str, sandbox: Sandbox, limits: Limits) -> CompatModule {
    CompatModule::prepare(engine(), &fixture(name), "_start", sandbox, limits).expect("prepare")
}

fn sandbox() -> Sandbox {
    Sandbox {
        component_id: "comp".into(),
        ..Default::default()
    }
}

fn run(m: &CompatModule, payload: &[u8]) -> Outcome {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(m.run(Message {
        channel: "news",
        address: "redis://127.0.0.1:7777",
        payload: Bytes::copy_from_slice(payload),
        stream: None,
    }))
}

#[test]
fn payload_goes_to_stdin_and_stdout_is_captured() {
    let m = module("echo.wat", sandbox(), Limits::default());
    let o = run(&m, b"hello \xff world");
    assert_eq!(o.result, Ok(()));
    assert_eq!(&o.stdout[..], b"hello \xff world\n");
    assert!(o.stderr.is_empty());
}

#[test]
fn empty_payload_is_just_end_of_file() {
    let m = module("echo.wat", sandbox(), Limits::default());
    let o = run(&m, b"");
    assert_eq!(o.result, Ok(()));
    assert_eq!(&o.stdout[..], b"\n");
}

#[test]
fn nonzero_exit_is_an_error_carrying_the_code_and_stderr_is_kept() {
    let m = module("exit7.wat", sandbox(), Limits::default());
    let o = run(&m, b"x");
    assert_eq!(o.result, Err(HandlerError::Exit(7)));
    assert_eq!(&o.stderr[..], b"about to fail\n");
}

#[test]
fn proc_exit_zero_is_success() {
    let m = module("exit0.wat", sandbox(), Limits::default());
    let o = run(&m, b"");
    assert_eq!(o.result, Ok(()));
    assert_eq!(&o.stdout[..], b"bye\n");
}

#[test]
fn a_trap_is_an_error_carrying_the_trap_message() {
    let m = module("trap.wat", sandbox(), Limits::default());
    let o = run(&m, b"");
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
    let m = module("spin.wat", sandbox(), limits);
    let o = run(&m, b"");
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
    let m = module("grow.wat", sandbox(), limits);
    let o = run(&m, b"");
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
    let m = module("flood.wat", sandbox(), limits);
    let o = run(&m, b"");
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

fn mounted(name: &str) -> (CompatModule, tempfile::TempDir) {
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

#[test]
fn mounts_are_read_only() {
    let (m, dir) = mounted("writefile.wat");
    let o = run(&m, b"new.txt");
    assert!(
        matches!(o.result, Err(HandlerError::Exit(_))),
        "creating a file must fail: {:?}",
        o.result
    );
    assert!(!dir.path().join("new.txt").exists());
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
    let m = module("readfile.wat", sandbox(), Limits::default());
    let o = run(&m, b"etc/passwd");
    assert_eq!(
        o.result,
        Err(HandlerError::Exit(8)),
        "8 = badf: no preopened directory"
    );
}

#[test]
fn each_message_gets_a_fresh_instance() {
    // `_start` of a wasi-libc program may only run once per instance; here
    // the echo module is run repeatedly and must behave the same each time.
    let m = module("echo.wat", sandbox(), Limits::default());
    for i in 0..5 {
        let o = run(&m, format!("m{i}").as_bytes());
        assert_eq!(o.stdout, Bytes::from(format!("m{i}\n")));
    }
}

#[test]
fn bad_modules_are_refused_at_prepare_time_with_a_reason() {
    let prep = |bytes: &[u8], entry: &str| {
        CompatModule::prepare(engine(), bytes, entry, sandbox(), Limits::default())
    };
    assert!(matches!(
        prep(b"garbage", "_start"),
        Err(PrepareError::NotWasm)
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
