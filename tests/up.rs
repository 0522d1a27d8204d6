//! `spin-redis up` end to end: a real redis-server, the real binary, real
//! WASI modules (the compat WAT fixtures); effects checked in the log files.

mod support;
use support::*;

fn compat_manifest(url: &str, components: &[(&str, &str, &str)]) -> String {
    let mut m = format!(
        "spin_manifest_version = \"1\"\nname = \"t\"\ntrigger = {{ type = \"redis\", address = \"{url}\" }}\n"
    );
    for (id, wat, channel) in components {
        m.push_str(&format!(
            "\n[[component]]\nid = \"{id}\"\nsource = \"{}\"\n[component.trigger]\nchannel = \"{channel}\"\nexecutor = {{ type = \"wagi\" }}\n",
            fixture(wat).display()
        ));
    }
    m
}

#[test]
fn messages_are_handled_in_order_of_arrival_for_one_component() {
    let redis = Redis::start();
    let (_d, m) = manifest(&compat_manifest(
        &redis.url(),
        &[("echo", "echo.wat", "news")],
    ));
    let mut s = SpinRedis::up(&redis, &m, &["--max-concurrency", "1"], &["news"]);
    for i in 0..20 {
        redis.publish("news", format!("m{i}").as_bytes());
    }
    s.wait_log("echo_stdout.txt", "m19\n");
    let expected: String = (0..20).map(|i| format!("m{i}\n")).collect();
    assert_eq!(s.log_text("echo_stdout.txt"), expected);
    // Echoed to the terminal with the component prefix.
    wait_until("terminal echo", || s.stdout().contains("[echo] m19\n"));
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
    assert!(s.stop().success());
    let err = s.stderr();
    assert!(
        err.contains("ok 2, failed 4"),
        "the counters at shutdown: {err}"
    );
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
    assert!(
        !s.stderr().contains("pw-secret"),
        "the password must never be logged:\n{}",
        s.stderr()
    );
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

#[test]
fn files_are_mounted_read_only() {
    let redis = Redis::start();
    let (dir, m) = manifest("");
    std::fs::create_dir(dir.path().join("data")).unwrap();
    std::fs::write(dir.path().join("data/greeting.txt"), "hi from a file\n").unwrap();
    let text = compat_manifest(
        &redis.url(),
        &[
            ("reader", "readfile.wat", "files"),
            ("writer", "writefile.wat", "files"),
        ],
    )
    .replace(
        "[component.trigger]",
        "files = [{ source = \"data\", destination = \"/data\" }]\n[component.trigger]",
    );
    std::fs::write(&m, text).unwrap();
    let mut s = SpinRedis::up(&redis, &m, &[], &["files"]);
    redis.publish("files", b"greeting.txt");
    s.wait_log("reader_stdout.txt", "hi from a file\n");
    s.wait_stderr("component=writer");
    assert!(!dir.path().join("data/greeting.txt.new").exists());
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
    let redis = Redis::start();
    let (_d, m) = manifest(&compat_manifest(
        &redis.url(),
        &[("echo", "echo.wat", "drain")],
    ));
    let mut s = SpinRedis::up(&redis, &m, &["--max-concurrency", "1"], &["drain"]);
    for i in 0..200 {
        redis.publish("drain", format!("d{i}").as_bytes());
    }
    // Wait until the first arrived so the rest are queued or in flight.
    s.wait_log("echo_stdout.txt", "d0\n");
    let status = s.stop();
    assert!(status.success(), "exit status {status:?}");
    let out = s.log_text("echo_stdout.txt");
    let err = s.stderr();
    // Every message that reached spin-redis was either handled or counted as
    // cut short; none vanished.
    let handled = out.lines().count() as u64;
    let summary = err
        .lines()
        .find(|l| l.starts_with("spin-redis: received"))
        .unwrap_or_else(|| panic!("no summary in:\n{err}"));
    let num = |key: &str| -> u64 {
        summary
            .split(", ")
            .find_map(|p| p.strip_prefix(key))
            .map(|n| n.trim().parse().unwrap())
            .unwrap_or_else(|| panic!("{key} in {summary}"))
    };
    let received = num("spin-redis: received ");
    assert_eq!(num("ok "), handled, "{summary}");
    assert_eq!(
        received,
        handled + num("cut short ") + num("dropped "),
        "{summary}"
    );
    assert!(handled >= 1);
}
