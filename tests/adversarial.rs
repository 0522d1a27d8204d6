//! Adversarial handlers built from source (`tests/guests/`, built by
//! `bash tests/guests/build.sh`), run by the real binary against a real
//! redis-server: handlers in C, Go and a Rust component that block in a host
//! call (a one-hour sleep), a C handler that floods stdout forever and one
//! that allocates forever. Every test checks that the per-message limits hold
//! against them, that other channels go on, and that the shutdown summary
//! accounts for every delivery.
//!
//! Waiting is bounded polling for an effect; nothing asserts on timing.

use crate::support;
use std::path::PathBuf;
use support::*;

/// One component of a test manifest.
struct Component<'a> {
    id: &'a str,
    source: PathBuf,
    /// `wagi` (a WASI preview1 module) or `spin` (a component).
    executor: &'a str,
    channel: &'a str,
}

fn wagi<'a>(id: &'a str, source: PathBuf, channel: &'a str) -> Component<'a> {
    Component {
        id,
        source,
        executor: "wagi",
        channel,
    }
}

/// A version 1 manifest binding every component to its channel on `url`.
fn app(url: &str, components: &[Component]) -> String {
    let mut m = v1_head(None, url);
    for c in components {
        m.push_str(&v1_component(c.id, &c.source, c.channel, c.executor));
    }
    m
}

/// A handler sleeping in a host call is stopped at the deadline, reported as
/// timed out, and what it wrote before reaches its log.
fn a_sleeper_is_timed_out(component: Component) {
    let redis = Redis::start();
    let (id, channel) = (component.id, component.channel);
    let (_d, m) = manifest(&app(&redis.url(), &[component]));
    let mut s = SpinRedis::up(&redis, &m, &["--timeout", "2s"], &[channel]);
    redis.publish(channel, b"nap-1");
    let reason = wait_failure(&s, id, channel, "timed out");
    assert!(reason.contains("timed out after 2s"), "{reason}");
    // Written and flushed before the deadline: the cut run's output is kept.
    let log = format!("{id}_stdout.txt");
    wait_for(
        &s,
        &format!("{log} to hold the line written before the deadline"),
        || s.log_text(&log).contains("sleeping on nap-1\n"),
    );
    assert!(s.stop().success(), "{}", s.stderr());
    let err = s.stderr();
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(
        summary(&err),
        [1, 0, 1, 0, 0, 0],
        "one delivery, failed (timed out) and not cut short:\n{err}"
    );
}

#[test]
fn a_c_handler_sleeping_in_a_host_call_is_timed_out() {
    a_sleeper_is_timed_out(wagi("c-sleep", guest("c-sleep"), "sleepy"));
}

#[test]
fn a_go_handler_sleeping_in_a_host_call_is_timed_out() {
    a_sleeper_is_timed_out(wagi("go-sleep", guest("go-sleep"), "sleepy"));
}

#[test]
fn a_rust_component_sleeping_in_a_host_call_is_timed_out() {
    a_sleeper_is_timed_out(Component {
        id: "rust-sleep",
        source: guest("rust-sleep-component"),
        executor: "spin",
        channel: "sleepy",
    });
}

/// Publishes `n` messages on "sleepy" to a C sleeper that is never timed out
/// during the test, waits until the dispatcher has received them all, then
/// publishes one on "other" (the echo fixture) and waits until it is handled.
/// `extra` are more flags for `spin-redis up`.
fn sleepers_never_hold_up_another_channel(n: usize, extra: &[&str]) {
    let redis = Redis::start();
    let (_d, m) = manifest(&app(
        &redis.url(),
        &[
            wagi("sleeper", guest("c-sleep"), "sleepy"),
            wagi("echo", fixture("echo.wat"), "other"),
        ],
    ));
    // The sleepers' deadline is far past the test's patience, so a deadline
    // freeing their slots or worker threads cannot make the test pass.
    let mut flags = vec!["--timeout", "1h", "--drain-timeout", "1s"];
    flags.extend_from_slice(extra);
    let mut s = SpinRedis::up_with_env(
        &redis,
        &m,
        &flags,
        &[("SPIN_REDIS_LOG", TRACE_RECEIVED)],
        &["sleepy", "other"],
    );
    for i in 0..n {
        redis.publish("sleepy", format!("s{i}").as_bytes());
    }
    wait_for(&s, &format!("all {n} sleepy messages received"), || {
        received(&s.stderr(), "sleepy") == n
    });
    redis.publish("other", b"meanwhile");
    s.wait_log("echo_stdout.txt", "meanwhile\n");
    let err = s.stderr();
    assert!(
        failures(&err, "sleeper", "sleepy").is_empty(),
        "no sleeper may have ended:\n{err}"
    );
    // At shutdown the sleepers are still asleep: the drain deadline cuts
    // every one of them short.
    assert!(s.stop().success(), "{}", s.stderr());
    let err = s.stderr();
    assert_eq!(
        summary(&err),
        [n as u64 + 1, 1, 0, 0, 0, n as u64],
        "the echo ok, every sleeper cut short:\n{err}"
    );
}

#[test]
fn more_sleepers_than_cores_never_delay_another_channel() {
    sleepers_never_hold_up_another_channel(8, &[]);
}

#[test]
fn a_hung_channel_holds_only_its_own_share_of_the_handler_slots() {
    // Ten sleepers against four slots in all: one trigger must not be able to
    // take every slot and starve the other channel.
    sleepers_never_hold_up_another_channel(10, &["--max-concurrency", "4"]);
}

#[test]
fn a_stdout_flood_is_cut_at_the_output_cap_and_stopped_at_the_deadline() {
    let redis = Redis::start();
    let (_d, m) = manifest(&app(
        &redis.url(),
        &[wagi("flood", guest("c-flood"), "out")],
    ));
    let mut s = SpinRedis::up(
        &redis,
        &m,
        &["--timeout", "2s", "--max-output", "1MiB", "-q"],
        &["out"],
    );
    redis.publish("out", b"go");
    let reason = wait_failure(&s, "flood", "out", "timed out");
    assert!(reason.contains("timed out after 2s"), "{reason}");
    s.wait_log("flood_stdout.txt", "were cut at the output cap]\n");
    let out = s.log("flood_stdout.txt");
    let cap = 1 << 20;
    assert!(out.len() > cap, "{} bytes", out.len());
    let (kept, note) = out.split_at(cap);
    assert!(
        kept.iter().all(|&b| b == b'f' || b == b'\n'),
        "the first 1 MiB is the flood's own output"
    );
    let note = std::str::from_utf8(note).expect("the note is text");
    let cut: u64 = note
        .strip_prefix("[spin-redis: ")
        .and_then(|n| n.strip_suffix(" more bytes of stdout were cut at the output cap]\n"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("the log ends with one cut note, not {note:?}"));
    assert!(cut > 0, "{note}");
    assert!(s.stop().success(), "{}", s.stderr());
    let err = s.stderr();
    assert_eq!(summary(&err), [1, 0, 1, 0, 0, 0], "{err}");
}

#[test]
fn an_allocation_loop_fails_at_the_memory_cap_and_others_go_on() {
    let redis = Redis::start();
    let (_d, m) = manifest(&app(
        &redis.url(),
        &[
            wagi("alloc", guest("c-alloc"), "mem"),
            wagi("quick", guest("c-sleep"), "after"),
        ],
    ));
    let mut s = SpinRedis::up(
        &redis,
        &m,
        &["--max-memory", "64MiB", "-q"],
        &["mem", "after"],
    );
    redis.publish("mem", b"grow");
    let reason = wait_failure(&s, "alloc", "mem", "memory limit");
    assert!(
        reason.contains("memory limit of 67108864 bytes exceeded"),
        "{reason}"
    );
    // The guest never saw malloc fail: the growth itself was refused.
    assert!(
        !s.log_text("alloc_stderr.txt").contains("NULL"),
        "{}",
        s.log_text("alloc_stderr.txt")
    );
    redis.publish("after", b"quick");
    s.wait_log("quick_stdout.txt", "sleeping on quick\n");
    assert!(s.stop().success(), "{}", s.stderr());
    let err = s.stderr();
    assert!(failures(&err, "quick", "after").is_empty(), "{err}");
    assert_eq!(
        summary(&err),
        [2, 1, 1, 0, 0, 0],
        "the allocation failed, the quick message succeeded:\n{err}"
    );
}

/// Runs `spin-redis` with `args` to its end, but gives up (killing it) after
/// the start-up patience: a run that never returns fails the test instead of
/// hanging it. Returns (exit code, stdout, stderr).
fn run_bounded(args: &[&str]) -> (i32, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let (out_path, err_path) = (dir.path().join("out"), dir.path().join("err"));
    let mut child = bin()
        .args(args)
        .env("SPIN_REDIS_CACHE_DIR", dir.path().join("cache"))
        .stdin(std::process::Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .spawn()
        .expect("spawn spin-redis");
    let read = |p: &std::path::Path| std::fs::read_to_string(p).unwrap_or_default();
    let started = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return (
                status.code().unwrap_or(-1),
                read(&out_path),
                read(&err_path),
            );
        }
        if started.elapsed() > START_UP_PATIENCE {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "spin-redis {args:?} did not return; stderr:\n{}",
                read(&err_path)
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

#[test]
fn a_sleep_with_a_bad_events_pointer_is_refused_at_once_by_invoke() {
    // Three days on one relative clock, `events` past the end of memory:
    // wasmtime-wasi would sleep the thread before it looked at the pointer,
    // out of reach of --timeout.
    let (_d, m) = manifest(&app(
        "redis://127.0.0.1:1",
        &[wagi("badpoll", fixture("badpoll.wat"), "naps")],
    ));
    let (code, out, err) = run_bounded(&invoke_args(&m, "badpoll", &["--timeout", "2s"]));
    assert_eq!(code, 1, "the handler failed:\n{err}");
    assert_eq!(out, "polling\n");
    // errno 21 is `fault`: the guest's bad pointer, reported at once.
    assert!(err.contains("exited with code 21"), "{err}");
}

#[test]
fn sleeps_with_a_bad_events_pointer_never_stop_other_channels() {
    let redis = Redis::start();
    let (_d, m) = manifest(&app(
        &redis.url(),
        &[
            wagi("badpoll", fixture("badpoll.wat"), "naps"),
            wagi("echo", fixture("echo.wat"), "other"),
        ],
    ));
    // Four such messages held all four handler slots and threads before.
    let mut s = SpinRedis::up(
        &redis,
        &m,
        &["--timeout", "2s", "--max-concurrency", "4", "-q"],
        &["naps", "other"],
    );
    for i in 0..4 {
        redis.publish("naps", format!("n{i}").as_bytes());
    }
    redis.publish("other", b"meanwhile");
    s.wait_log("echo_stdout.txt", "meanwhile\n");
    wait_for(&s, "all four bad sleeps reported failed", || {
        failures(&s.stderr(), "badpoll", "naps").len() == 4
    });
    for reason in failures(&s.stderr(), "badpoll", "naps") {
        assert!(reason.contains("exited with code 21"), "{reason}");
    }
    assert!(s.stop().success(), "{}", s.stderr());
    let err = s.stderr();
    assert_eq!(
        summary(&err),
        [5, 1, 4, 0, 0, 0],
        "the echo ok, every bad sleep failed, none cut short:\n{err}"
    );
}
