//! `spin-redis up` end to end: a real redis-server, the real binary, real
//! WASI modules (the compat WAT fixtures); effects checked in the log files.

use crate::support;
use support::*;

fn compat_manifest(url: &str, components: &[(&str, &str, &str)]) -> String {
    v1_fixtures(Some("t"), url, components, "")
}

/// The manifest text of one fixture `wat` as component `id` on `channel`,
/// one message at a time (`max_concurrency = 1`).
fn one_at_a_time(url: &str, id: &str, wat: &str, channel: &str) -> String {
    v1_fixtures(
        Some("t"),
        url,
        &[(id, wat, channel)],
        "max_concurrency = 1\n",
    )
}

/// [`one_at_a_time`] written and running against `redis`.
fn up_one_at_a_time(
    redis: &Redis,
    id: &str,
    wat: &str,
    channel: &str,
) -> (tempfile::TempDir, SpinRedis) {
    let (d, m) = manifest(&one_at_a_time(&redis.url(), id, wat, channel));
    (d, SpinRedis::up(redis, &m, &[], &[channel]))
}

/// Publishes `payloads` on `channel` in ONE pipeline: Redis receives them
/// together and sends them to the subscriber back to back.
fn publish_pipelined(redis: &Redis, channel: &str, payloads: &[String]) {
    let client = redis::Client::open(redis.url()).unwrap();
    let mut con = client.get_connection().expect("connect to redis");
    let mut pipe = redis::pipe();
    for p in payloads {
        pipe.cmd("PUBLISH").arg(channel).arg(p.as_bytes()).ignore();
    }
    let () = pipe.query(&mut con).expect("pipelined PUBLISH");
}

#[test]
fn messages_are_handled_in_order_of_arrival_for_one_component() {
    let redis = Redis::start();
    // nap.wat sleeps 1 ms per payload byte before echoing, and each payload
    // is shorter than the one before: handled concurrently, the later
    // messages would finish first and the output would come out reversed.
    // Only the trigger's `max_concurrency = 1` keeps arrival order; the
    // global bound is left at its default (64), so nothing else serialises.
    let (_d, mut s) = up_one_at_a_time(&redis, "echo", "nap.wat", "news");
    let payloads: Vec<String> = (0..20)
        .map(|i| format!("m{i:02} {}", ".".repeat((20 - i) * 8)))
        .collect();
    publish_pipelined(&redis, "news", &payloads);
    s.wait_log("echo_stdout.txt", "m19 ");
    let expected: String = payloads.iter().map(|p| format!("{p}\n")).collect();
    assert_eq!(s.log_text("echo_stdout.txt"), expected);
    // Echoed to the terminal with the component prefix.
    let last = format!("[echo] {}\n", payloads[19]);
    wait_until("terminal echo", || s.stdout().contains(&last));
    let err = s.stop_ok();
    assert_eq!(summary(&err), [20, 20, 0, 0, 0, 0], "{err}");
}

#[test]
fn each_message_gets_a_fresh_instance() {
    // End to end, through the pooling allocator, whose instance slots are
    // reused message after message: counter.wat counts its runs in a global
    // and in linear memory, so a slot that kept either would print a 2.
    let redis = Redis::start();
    let (_d, mut s) = up_one_at_a_time(&redis, "counter", "counter.wat", "count");
    let payloads: Vec<String> = (0..10).map(|i| format!("c{i}")).collect();
    publish_pipelined(&redis, "count", &payloads);
    wait_until("ten runs", || {
        s.log_text("counter_stdout.txt").lines().count() >= 10
    });
    assert_eq!(
        s.log_text("counter_stdout.txt"),
        "global 1, memory 1\n".repeat(10)
    );
    assert!(s.stop().success());
}

#[test]
fn a_message_fans_out_to_every_component_on_its_channel_and_only_those() {
    let redis = Redis::start();
    let (_d, m) = manifest(&compat_manifest(
        &redis.url(),
        &[
            ("one", "echo.wat", "shared"),
            ("two", "echo.wat", "shared"),
            ("other", "echo.wat", "elsewhere"),
        ],
    ));
    let mut s = SpinRedis::up(&redis, &m, &[], &["shared", "elsewhere"]);
    redis.publish("shared", b"for both");
    redis.publish("elsewhere", b"for other");
    s.wait_log("one_stdout.txt", "for both\n");
    s.wait_log("two_stdout.txt", "for both\n");
    s.wait_log("other_stdout.txt", "for other\n");
    assert_eq!(s.log_text("one_stdout.txt"), "for both\n");
    assert_eq!(s.log_text("other_stdout.txt"), "for other\n");
    assert!(s.stop().success());
}

#[test]
fn failing_handlers_are_reported_and_do_not_stop_the_trigger() {
    let redis = Redis::start();
    let (_d, m) = manifest(&compat_manifest(
        &redis.url(),
        &[
            ("exits", "exit7.wat", "jobs"),
            ("traps", "trap.wat", "jobs"),
            ("echo", "echo.wat", "jobs"),
        ],
    ));
    let mut s = SpinRedis::up(&redis, &m, &[], &["jobs"]);
    redis.publish("jobs", b"first");
    redis.publish("jobs", b"second");
    s.wait_log("echo_stdout.txt", "second\n");
    s.wait_stderr("exited with code 7");
    s.wait_stderr("unreachable");
    let err = s.stderr();
    assert!(
        err.contains("component=exits") && err.contains("channel=jobs"),
        "{err}"
    );
    assert!(err.contains("component=traps"), "{err}");
    // stderr of the failing handler is logged too.
    s.wait_log("exits_stderr.txt", "about to fail\nabout to fail\n");
    assert!(s.is_running());
    s.stop_counting("ok 2, failed 4");
}

#[test]
fn handlers_see_the_documented_environment_and_nothing_else() {
    let redis = Redis::start_with(&["--requirepass", "pw-secret"]);
    let text = compat_manifest(&redis.url(), &[("env", "env.wat", "vars")]).replace(
        "[component.trigger]",
        "environment = { FROM_MANIFEST = \"m\", OVERRIDDEN = \"manifest\" }\n[component.trigger]",
    );
    let (_d, m) = manifest(&text);
    let mut s = SpinRedis::up(
        &redis,
        &m,
        &["-e", "OVERRIDDEN=flag", "-e", "EXTRA=x"],
        &["vars"],
    );
    redis.publish("vars", b"four");
    s.wait_log("env_stdout.txt", "CONTENT_LENGTH=4\n");
    let env = s.log_text("env_stdout.txt");
    let mut lines: Vec<&str> = env.lines().collect();
    lines.sort();
    // The address handlers see has no credentials.
    let url_line = format!("REDIS_ADDRESS={}", redis.plain_url());
    let mut expected = vec![
        "CONTENT_LENGTH=4",
        "EXTRA=x",
        "FROM_MANIFEST=m",
        "OVERRIDDEN=flag",
        "REDIS_CHANNEL=vars",
        url_line.as_str(),
        "SPIN_COMPONENT_ID=env",
    ];
    expected.sort();
    assert_eq!(lines, expected);
    assert!(s.stop().success());
    s.assert_not_logged("pw-secret", "the password must never be logged");
}

#[test]
fn argv_follows_the_executor_template() {
    let redis = Redis::start();
    let text = compat_manifest(&redis.url(), &[("args", "args.wat", "argv")]).replace(
        "executor = { type = \"wagi\" }",
        "executor = { type = \"wagi\", argv = \"${COMPONENT_ID} --from ${CHANNEL}\" }",
    );
    let (_d, m) = manifest(&text);
    let mut s = SpinRedis::up(&redis, &m, &[], &["argv"]);
    redis.publish("argv", b"");
    s.wait_log("args_stdout.txt", "argv\n");
    assert_eq!(s.log_text("args_stdout.txt"), "args\n--from\nargv\n");
    assert!(s.stop().success());
}

/// The WASI errnos that mean "not allowed to write": perm (63), notcapable
/// (76), rofs (69), acces (2); not noent (44) nor badf (8, nothing mounted).
const DENIED: [u32; 4] = [63, 76, 69, 2];

#[test]
fn files_are_mounted_read_only() {
    let redis = Redis::start();
    let (dir, m) = manifest("");
    std::fs::create_dir(dir.path().join("data")).unwrap();
    std::fs::write(dir.path().join("data/greeting.txt"), "hi from a file\n").unwrap();
    let text = compat_manifest(
        &redis.url(),
        &[
            ("reader", "readfile.wat", "read"),
            ("writer", "writefile.wat", "write"),
        ],
    )
    .replace(
        "[component.trigger]",
        "files = [{ source = \"data\", destination = \"/data\" }]\n[component.trigger]",
    );
    std::fs::write(&m, text).unwrap();
    let mut s = SpinRedis::up(&redis, &m, &[], &["read", "write"]);
    // Writing into the mount, to a new file or to the existing one, is
    // *denied*: writefile.wat prints the errno it got. (Were nothing
    // mounted, it would be badf, 8.)
    redis.publish("write", b"new.txt");
    redis.publish("write", b"greeting.txt");
    wait_until("two write attempts", || {
        s.log_text("writer_stdout.txt").lines().count() >= 2
    });
    for line in s.log_text("writer_stdout.txt").lines() {
        let errno: u32 = line
            .strip_prefix("errno ")
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("the write must fail with an errno: {line:?}"));
        assert!(
            DENIED.contains(&errno),
            "a write into a read-only mount must be denied (one of {DENIED:?}), not errno {errno}"
        );
    }
    // The mount is there and readable.
    redis.publish("read", b"greeting.txt");
    s.wait_log("reader_stdout.txt", "hi from a file\n");
    // "Missing" looks different: a path that is not there is noent (44),
    // reported as readfile.wat's exit code.
    redis.publish("read", b"no-such-file.txt");
    s.wait_stderr("exited with code 44");
    assert!(
        s.stderr()
            .lines()
            .any(|l| l.contains("component=reader") && l.contains("exited with code 44")),
        "{}",
        s.stderr()
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("data/greeting.txt")).unwrap(),
        "hi from a file\n"
    );
    let names: Vec<_> = std::fs::read_dir(dir.path().join("data"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(
        names,
        vec!["greeting.txt"],
        "the writer must not have created anything"
    );
    assert!(s.stop().success());
}

#[test]
fn sigterm_drains_in_flight_handlers_before_exiting() {
    use std::os::unix::fs::OpenOptionsExt as _;
    /// `O_NONBLOCK` on Linux (x86-64, aarch64 and most others).
    const O_NONBLOCK: i32 = 0o4000;

    // A handler that is provably in flight at SIGTERM and cannot finish
    // before it. opens.wat opens the FIFOs `enter`, then `leave`, from its
    // mount; opening a FIFO for reading blocks until a writer opens it. A
    // non-blocking open for writing fails (ENXIO) unless a reader has the
    // FIFO open or is waiting in its open, so when the test's open of
    // `enter` succeeds the handler is running; it then waits at `leave`,
    // which the test opens only after SIGTERM. (The handler's own output
    // would not do as a signal: a message's output reaches the log only
    // once its run is over.)
    let redis = Redis::start();
    let (dir, m) = manifest("");
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    std::fs::write(data.join("after.txt"), "").unwrap();
    let open_for_writing = |fifo: &str| {
        std::fs::OpenOptions::new()
            .write(true)
            .custom_flags(O_NONBLOCK)
            .open(data.join(fifo))
            .ok()
    };
    let text = one_at_a_time(&redis.url(), "gated", "opens.wat", "drain").replace(
        "[component.trigger]",
        "files = [{ source = \"data\", destination = \"/data\" }]\n[component.trigger]",
    );
    std::fs::write(&m, text).unwrap();
    // Trace logs each received message, to know when all have arrived.
    let mut s = SpinRedis::up_with_env(
        &redis,
        &m,
        &[],
        &[("SPIN_REDIS_LOG", "info,spin_redis::dispatch=trace")],
        &["drain"],
    );
    // The FIFOs are made only now: start-up refuses a mounted folder that
    // holds one (`a_named_pipe_in_a_mounted_folder_is_refused…` in
    // tests/files.rs), and checks the folder only then.
    for fifo in ["enter", "leave"] {
        let made = std::process::Command::new("mkfifo")
            .arg(data.join(fifo))
            .status()
            .unwrap();
        assert!(made.success(), "mkfifo {fifo}");
    }
    // The gated message first, then five queued behind it (one at a time).
    let mut payloads = vec!["enter leave".to_string()];
    payloads.extend((0..5).map(|_| "after.txt".to_string()));
    publish_pipelined(&redis, "drain", &payloads);
    let mut enter = None;
    wait_until("the handler to open `enter`", || {
        enter = open_for_writing("enter");
        enter.is_some()
    });
    wait_until("all six messages received", || {
        s.stderr().matches("received channel=drain ").count() == 6
    });
    s.signal("-TERM");
    s.wait_stderr("stopping");
    // Only now may the handler go on. Had spin-redis exited without waiting
    // for it, `leave` would never get a reader: the summary would appear
    // first.
    let mut leave = None;
    wait_until(
        "the handler to open `leave`, before spin-redis exits",
        || {
            assert!(
                !s.stderr().contains("spin-redis: received"),
                "spin-redis exited while its handler was still in flight:\n{}",
                s.stderr()
            );
            leave = open_for_writing("leave");
            leave.is_some()
        },
    );
    drop((enter, leave));
    let status = s.wait();
    assert!(status.success(), "exit status {status:?}");
    let err = s.stderr();
    // The in-flight handler and the five queued behind it all completed.
    assert_eq!(
        s.log_text("gated_stdout.txt"),
        format!("opened enter leave\n{}", "opened after.txt\n".repeat(5)),
        "{err}"
    );
    assert_eq!(
        summary(&err),
        [6, 6, 0, 0, 0, 0],
        "ok 6, cut short 0:\n{err}"
    );
}
