//! Faults, limits and bad input, injected for real: redis-servers killed and
//! restarted, `CLIENT KILL`, wrong passwords, TLS with good and bad
//! certificates, handlers that loop, allocate and flood, payloads too large,
//! and floods faster than the handlers. Every test checks that spin-redis
//! keeps running, reports what happened, and accounts for every delivery.

use crate::support;
use std::process::Command;
use support::*;

fn one(url: &str, id: &str, wat: &str, channel: &str) -> String {
    many(url, &[(id, wat, channel)], "")
}

fn many(url: &str, components: &[(&str, &str, &str)], trigger_extra: &str) -> String {
    v1_fixtures(None, url, components, trigger_extra)
}

#[test]
fn a_redis_restart_is_survived_and_messages_after_recovery_are_handled() {
    let mut redis = Redis::start();
    let (_d, m) = manifest(&one(&redis.url(), "echo", "echo.wat", "news"));
    let mut s = SpinRedis::up(&redis, &m, &[], &["news"]);
    redis.publish("news", b"before");
    s.wait_log("echo_stdout.txt", "before\n");
    redis.restart(&[]);
    s.wait_stderr("lost the connection to redis; reconnecting");
    wait_until("resubscribed after the restart", || {
        redis.subscribers("news") >= 1
    });
    s.wait_stderr("reconnected to redis and resubscribed");
    redis.publish("news", b"after");
    s.wait_log("echo_stdout.txt", "before\nafter\n");
    assert_eq!(
        s.stderr().matches("lost the connection").count(),
        1,
        "logged once:\n{}",
        s.stderr()
    );
    assert!(s.stop().success());
}

#[test]
fn client_kill_of_the_subscriber_is_survived() {
    let redis = Redis::start();
    let (_d, m) = manifest(&one(&redis.url(), "echo", "echo.wat", "news"));
    let mut s = SpinRedis::up(&redis, &m, &[], &["news"]);
    let killed = redis.cli(&["CLIENT", "KILL", "TYPE", "pubsub"]).unwrap();
    assert_eq!(killed.trim(), "1");
    s.wait_stderr("reconnected to redis and resubscribed");
    wait_until("resubscribed", || redis.subscribers("news") >= 1);
    redis.publish("news", b"still here");
    s.wait_log("echo_stdout.txt", "still here\n");
    assert!(s.stop().success());
}

#[test]
fn redis_down_at_start_up_is_retried_until_it_comes() {
    let port = free_port();
    let url = format!("redis://127.0.0.1:{port}");
    let (_d, m) = manifest(&one(&url, "echo", "echo.wat", "news"));
    let mut s = SpinRedis::spawn(&m, &[]);
    s.wait_stderr(&format!("cannot connect to redis; retrying address={url}"));
    assert!(s.is_running());
    let redis = Redis::start_on(port, &[]);
    wait_until("subscribed once redis is up", || {
        redis.subscribers("news") >= 1
    });
    redis.publish("news", b"late");
    s.wait_log("echo_stdout.txt", "late\n");
    assert!(s.stop().success());
}

#[test]
fn acl_users_work_and_a_wrong_password_is_a_clear_error_that_never_shows_it() {
    let redis = Redis::start_with(&[
        "--user",
        "alice",
        "on",
        ">alice-pw",
        "~*",
        "&*",
        "+@all",
        "--user",
        "default",
        "off",
    ]);
    let good = format!("redis://alice:alice-pw@127.0.0.1:{}", redis.port);
    let (_d, m) = manifest(&one(&good, "echo", "echo.wat", "news"));
    let mut s = SpinRedis::spawn(&m, &[]);
    s.wait_stderr("subscribed");
    let publish = Command::new("redis-cli")
        .args([
            "-p",
            &redis.port.to_string(),
            "--user",
            "alice",
            "--pass",
            "alice-pw",
            "--no-auth-warning",
            "PUBLISH",
            "news",
            "hi alice",
        ])
        .output()
        .unwrap();
    assert!(publish.status.success());
    s.wait_log("echo_stdout.txt", "hi alice\n");
    assert!(s.stop().success());
    s.assert_not_logged("alice-pw", "the password must never be logged");

    let bad = format!("redis://alice:wrong-pw@127.0.0.1:{}", redis.port);
    let (_d2, m2) = manifest(&one(&bad, "echo", "echo.wat", "news"));
    let mut s2 = SpinRedis::spawn(&m2, &[]);
    s2.wait_stderr("authentication failed");
    assert!(s2.is_running(), "a daemon keeps retrying");
    assert!(s2.stop().success());
    let err = s2.stderr();
    assert!(
        !err.contains("wrong-pw"),
        "the password must never be logged:\n{err}"
    );
    assert!(
        err.contains(&format!("redis://127.0.0.1:{}", redis.port)),
        "names the address:\n{err}"
    );
}

#[test]
fn tls_is_verified_against_the_given_ca_and_a_bad_certificate_is_a_clear_error() {
    let (_certs, redis, ca, url) = tls_redis();
    let (_d, m) = manifest(&one(&url, "echo", "echo.wat", "secure"));
    let mut s = SpinRedis::up(&redis, &m, &["--tls-ca-file", &ca], &["secure"]);
    redis.publish("secure", b"over tls");
    s.wait_log("echo_stdout.txt", "over tls\n");
    assert!(s.stop().success());

    // A CA that did not sign the server's certificate.
    let other = tempfile::tempdir().unwrap();
    certificates(other.path(), "other");
    let other_ca = other.path().join("other.crt").display().to_string();
    let mut s = SpinRedis::spawn(&m, &["--tls-ca-file", &other_ca]);
    s.wait_stderr("certificate");
    assert!(s.is_running());
    assert!(s.stop().success());
}

#[test]
fn a_handler_in_an_endless_loop_is_timed_out_and_does_not_delay_other_channels() {
    let redis = Redis::start();
    let text = many(
        &redis.url(),
        &[("stuck", "spin.wat", "slow"), ("echo", "echo.wat", "fast")],
        "max_concurrency = 1\n",
    );
    let (_d, m) = manifest(&text);
    let mut s = SpinRedis::up(&redis, &m, &["--timeout", "3s"], &["slow", "fast"]);
    redis.publish("slow", b"x");
    redis.publish("fast", b"meanwhile");
    s.wait_log("echo_stdout.txt", "meanwhile\n");
    // The other channel was handled while the loop was still running.
    s.assert_not_logged(
        "timed out",
        "the other channel is handled before the loop times out",
    );
    s.wait_failure("stuck", "slow", "timed out after 3s");
    assert!(s.stop().success());
}

#[test]
fn memory_and_output_limits_fail_or_cut_only_what_exceeds_them() {
    let redis = Redis::start();
    let text = many(
        &redis.url(),
        &[("grow", "grow.wat", "mem"), ("flood", "flood.wat", "out")],
        "",
    );
    let (_d, m) = manifest(&text);
    let mut s = SpinRedis::up(
        &redis,
        &m,
        &["--max-memory", "16MiB", "--max-output", "1MiB", "-q"],
        &["mem", "out"],
    );
    redis.publish("mem", b"");
    redis.publish("out", b"");
    s.wait_failure("grow", "mem", "memory limit of 16777216 bytes exceeded");
    s.wait_log("flood_stdout.txt", "were cut at the output cap]\n");
    let out = s.log("flood_stdout.txt");
    let note = format!(
        "[spin-redis: {} more bytes of stdout were cut at the output cap]\n",
        (16 << 20) - (1 << 20)
    );
    assert_eq!(out.len(), (1 << 20) + note.len());
    assert!(out.ends_with(note.as_bytes()));
    s.wait_log("flood_stderr.txt", "done\n");
    let [_, ok, failed, ..] = summary(&s.stop_ok());
    assert_eq!(
        (ok, failed),
        (1, 1),
        "the flood succeeded, the growth failed"
    );
}

#[test]
fn odd_payloads_are_handled_and_too_large_ones_skipped_and_counted() {
    let redis = Redis::start();
    let (_d, m) = manifest(&one(&redis.url(), "env", "env.wat", "odd"));
    let mut s = SpinRedis::up(&redis, &m, &["--max-payload", "16MiB", "-q"], &["odd"]);
    redis.publish("odd", b"");
    redis.publish("odd", b"\x00\xff\xfe binary");
    redis.publish("odd", &vec![b'z'; 16_000_000]);
    redis.publish("odd", &vec![b'z'; (16 << 20) + 1]);
    s.wait_log("env_stdout.txt", "CONTENT_LENGTH=16000000\n");
    let log = s.log_text("env_stdout.txt");
    assert!(
        log.contains("CONTENT_LENGTH=0\n") && log.contains("CONTENT_LENGTH=10\n"),
        "{log}"
    );
    s.wait_stderr("message larger than max_payload skipped");
    assert_eq!(summary(&s.stop_ok()), [4, 3, 0, 0, 1, 0]);
}

#[test]
fn a_flood_faster_than_the_handler_drops_and_counts_instead_of_growing() {
    let redis = Redis::start();
    let text = many(
        &redis.url(),
        &[("slow", "slow.wat", "flood")],
        "max_concurrency = 1\n",
    );
    let (_d, m) = manifest(&text);
    let mut s = SpinRedis::up_with_env(
        &redis,
        &m,
        &["--queue-capacity", "5", "-q", "--drain-timeout", "60s"],
        &[("SPIN_REDIS_LOG", TRACE_RECEIVED)],
        &["flood"],
    );
    let client = redis::Client::open(redis.url()).unwrap();
    let mut con = client.get_connection().unwrap();
    let mut pipe = redis::pipe();
    for i in 0..500 {
        pipe.cmd("PUBLISH")
            .arg("flood")
            .arg(format!("f{i}"))
            .ignore();
    }
    let () = pipe.query(&mut con).unwrap();
    s.wait_stderr("message dropped");
    wait_until("all 500 received", || received(&s.stderr(), "flood") == 500);
    let [received, ok, failed, dropped, skipped, cut] = summary(&s.stop_ok());
    assert_eq!(received, 500);
    assert_eq!(
        ok + failed + dropped + skipped + cut,
        received,
        "every delivery accounted for"
    );
    assert!(dropped > 0 && ok >= 1, "{}", s.stderr());
    assert_eq!(s.log_text("slow_stdout.txt").lines().count() as u64, ok);
    assert!(
        s.log_text("slow_stdout.txt").starts_with("f0\n"),
        "the first messages are the ones kept"
    );
}

#[test]
fn shutdown_reports_what_the_drain_deadline_cut_short() {
    let redis = Redis::start();
    let (_d, m) = manifest(&one(&redis.url(), "stuck", "spin.wat", "slow"));
    let mut s = SpinRedis::up_with_env(
        &redis,
        &m,
        &["--drain-timeout", "500ms", "--timeout", "60s"],
        &[("SPIN_REDIS_LOG", TRACE_RECEIVED)],
        &["slow"],
    );
    redis.publish("slow", b"a");
    redis.publish("slow", b"b");
    wait_until("both deliveries received", || {
        s.stderr().matches("received channel=slow").count() == 2
    });
    assert!(s.stop().success());
    s.wait_stderr("drain deadline passed");
    assert_eq!(summary(&s.stderr()), [2, 0, 0, 0, 0, 2]);
}

#[test]
fn bad_wasm_is_refused_at_start_up_naming_the_component_and_file() {
    let dir = tempfile::tempdir().unwrap();
    let echo = wat_bytes("echo.wat");
    let cases: Vec<(&str, Vec<u8>, &str, &str)> = vec![
        (
            "garbage",
            b"\x7fELF not wasm at all".to_vec(),
            "wagi",
            "is not a WebAssembly core module",
        ),
        (
            "truncated",
            echo[..echo.len() / 2].to_vec(),
            "wagi",
            "does not compile",
        ),
        (
            "empty",
            Vec::new(),
            "wagi",
            "is not a WebAssembly core module",
        ),
        (
            "wrong-exports",
            wat_bytes("noentry.wat"),
            "wagi",
            "has no exported function \"_start\" to call; it exports: \"handle\"",
        ),
        (
            "foreign-import",
            wat_bytes("badimport.wat"),
            "wagi",
            "host_magic",
        ),
        (
            "component-as-module",
            b"\0asm\x0d\0\x01\0".to_vec(),
            "wagi",
            "is a WebAssembly component",
        ),
        (
            "module-as-component",
            echo.clone(),
            "spin",
            "is a WASI core module",
        ),
    ];
    for (name, bytes, executor, expected) in cases {
        let path = dir.path().join(format!("{name}.wasm"));
        std::fs::write(&path, &bytes).unwrap();
        let text = format!(
            "spin_manifest_version = \"1\"\ntrigger = {{ type = \"redis\", address = \"redis://127.0.0.1:1\" }}\n[[component]]\nid = \"{name}\"\nsource = \"{}\"\n[component.trigger]\nchannel = \"c\"\nexecutor = {{ type = \"{executor}\" }}\n",
            path.display()
        );
        let (_d, m) = manifest(&text);
        let (code, _, err) = run(&["up", "-f", m.to_str().unwrap(), "--no-cache"]);
        assert_eq!(code, 2, "{name}: {err}");
        assert!(
            err.contains(&format!("component \"{name}\"")) && err.contains(&format!("{name}.wasm")),
            "{name}: {err}"
        );
        assert!(
            err.contains(expected),
            "{name}: {expected:?} missing from:\n{err}"
        );
        assert!(!err.contains("panicked"), "{name}: {err}");
    }
}

fn wat_bytes(name: &str) -> Vec<u8> {
    wat::parse_file(fixture(name)).unwrap()
}

/// With default settings a burst far larger than any small fixed queue
/// (the first round dropped past 10 000 messages) is held and handled: the
/// queues are bounded by memory. The first message keeps the only slot for
/// 3 s (`nap.wat` sleeps 1 ms per payload byte) while 30 000 more arrive.
#[test]
fn a_burst_is_absorbed_by_default() {
    let redis = Redis::start();
    let text = many(
        &redis.url(),
        &[("nap", "nap.wat", "burst")],
        "max_concurrency = 1\n",
    );
    let (_d, m) = manifest(&text);
    let mut s = SpinRedis::up(&redis, &m, &["-q"], &["burst"]);
    let client = redis::Client::open(redis.url()).unwrap();
    let mut con = client.get_connection().unwrap();
    let mut pipe = redis::pipe();
    pipe.cmd("PUBLISH")
        .arg("burst")
        .arg(vec![b'z'; 3000])
        .ignore();
    for _ in 0..30_000 {
        pipe.cmd("PUBLISH").arg("burst").arg("").ignore();
    }
    pipe.cmd("PUBLISH").arg("burst").arg("end").ignore();
    let () = pipe.query(&mut con).unwrap();
    // One at a time, in order: "end" is handled last. 30 000 handler runs
    // one after another take a while in a debug build on a busy machine.
    wait_until_within("the last message handled", START_UP_PATIENCE, || {
        s.log_text("nap_stdout.txt").ends_with("end\n")
    });
    let [received, ok, failed, dropped, skipped, cut] = summary(&s.stop_ok());
    assert_eq!(
        [received, ok, failed, dropped, skipped, cut],
        [30_002, 30_002, 0, 0, 0, 0],
        "{}",
        s.stderr()
    );
}

#[test]
fn queued_payload_bytes_are_bounded_too() {
    let redis = Redis::start();
    let text = many(
        &redis.url(),
        &[("slow", "slow.wat", "big")],
        "max_concurrency = 1\n",
    );
    let (_d, m) = manifest(&text);
    let mut s = SpinRedis::up_with_env(
        &redis,
        &m,
        &[
            "--max-queued-bytes",
            "300KiB",
            "-q",
            "--drain-timeout",
            "60s",
        ],
        &[("SPIN_REDIS_LOG", TRACE_RECEIVED)],
        &["big"],
    );
    let payload = vec![b'b'; 100 * 1024];
    let client = redis::Client::open(redis.url()).unwrap();
    let mut con = client.get_connection().unwrap();
    let mut pipe = redis::pipe();
    for _ in 0..40 {
        pipe.cmd("PUBLISH").arg("big").arg(&payload).ignore();
    }
    let () = pipe.query(&mut con).unwrap();
    s.wait_stderr("reason=queued memory at its limit");
    wait_until("all 40 received", || received(&s.stderr(), "big") == 40);
    let [received, ok, failed, dropped, skipped, cut] = summary(&s.stop_ok());
    assert_eq!(received, 40);
    assert_eq!(ok + failed + dropped + skipped + cut, received);
    assert!(
        dropped >= 30,
        "at most 3 queued and 1 running at a time: {}",
        s.stderr()
    );
}

#[test]
fn a_terminal_that_stops_reading_never_stalls_the_handlers() {
    // stdout is a pipe nobody reads: it fills after 64 KiB. The handlers and
    // the log files must go on; the echo past its queue is dropped and said.
    let redis = Redis::start();
    let (dir, m) = manifest(&one(&redis.url(), "echo", "echo.wat", "loud"));
    let log_dir = dir.path().join("logs");
    let stderr_path = dir.path().join("stderr.txt");
    let mut child = bin()
        .args([
            "up",
            "-f",
            m.to_str().unwrap(),
            "-L",
            log_dir.to_str().unwrap(),
        ])
        .env("SPIN_REDIS_CACHE_DIR", dir.path().join("cache"))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::fs::File::create(&stderr_path).unwrap())
        .spawn()
        .unwrap();
    // Held, never read.
    let _stdout = child.stdout.take();
    wait_until("subscribed", || redis.subscribers("loud") >= 1);
    // 12 MiB of output (echo.wat adds a newline to each 64 KiB - 1 payload):
    // past the pipe and past the 8 MiB echo queue.
    let payload = "x".repeat(64 * 1024 - 1);
    let n = 192;
    for _ in 0..n {
        redis.publish("loud", payload.as_bytes());
    }
    let log = log_dir.join("echo_stdout.txt");
    wait_until("every message's output in the log file", || {
        std::fs::metadata(&log).is_ok_and(|m| m.len() == (n * 64 * 1024) as u64)
    });
    let stderr = || std::fs::read_to_string(&stderr_path).unwrap_or_default();
    wait_until("the echo drop said once", || {
        stderr().contains("the terminal is not keeping up")
    });
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(start.elapsed() < PATIENCE, "did not exit:\n{}", stderr());
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
    let err = stderr();
    assert_eq!(summary(&err), [n as u64, n as u64, 0, 0, 0, 0], "{err}");
    assert_eq!(
        err.matches("the terminal is not keeping up").count(),
        1,
        "{err}"
    );
    assert!(err.contains("did not keep up"), "{err}");
}

#[test]
fn all_channels_of_an_address_are_subscribed_in_one_command() {
    let redis = Redis::start();
    let text = many(
        &redis.url(),
        &[
            ("a", "echo.wat", "one"),
            ("b", "echo.wat", "two"),
            ("c", "echo.wat", "three"),
        ],
        "",
    );
    let (_d, m) = manifest(&text);
    let _s = SpinRedis::up(&redis, &m, &[], &["one", "two", "three"]);
    let line = redis.command_stats("subscribe");
    assert!(line.contains("calls=1,"), "{line}");
}

#[test]
fn a_server_that_accepts_but_never_answers_is_given_up_on_and_retried() {
    // A listener that accepts connections and never says a word: connecting
    // (HELLO/PING/SUBSCRIBE) must time out, be logged, and be retried.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = accepted.clone();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            held.push(stream);
        }
    });
    let (_d, m) = manifest(&one(
        &format!("redis://127.0.0.1:{port}"),
        "echo",
        "echo.wat",
        "silent",
    ));
    let mut s = SpinRedis::spawn(&m, &[]);
    s.wait_stderr("took longer than 10s");
    wait_until("a second attempt", || {
        accepted.load(std::sync::atomic::Ordering::Relaxed) >= 2
    });
    assert!(s.is_running());
    assert!(s.stop().success());
}
