//! Stream triggers against a real redis-server: at-least-once delivery
//! through a consumer group, retries, dead letters, take-over of a killed
//! consumer's entries, own pending entries first on restart, SIGTERM, the
//! manifest's checks. The handler is `stream.wat`, which logs
//! `<id> <delivery> <payload>` for every attempt and fails or sleeps by the
//! payload's first byte.

use crate::support;
use std::collections::HashMap;
use support::*;

// The fault tests, in a file of their own (tests/streams/faults.rs).
mod faults;

const GROUP: &str = "app.h";

/// A stream app: [`source_app`] for a stream trigger on `stream`.
fn stream_app(
    redis: &Redis,
    stream: &str,
    trigger: &str,
    app: &str,
) -> (tempfile::TempDir, std::path::PathBuf) {
    source_app("stream", redis, stream, trigger, app)
}

fn xadd(redis: &Redis, stream: &str, fields: &[(&str, &str)]) -> String {
    let mut cmd = redis::cmd("XADD");
    cmd.arg(stream).arg("*");
    for (k, v) in fields {
        cmd.arg(*k).arg(*v);
    }
    cmd.query(&mut redis.connection()).unwrap()
}

/// Adds `payloads` in one pipeline; returns their ids.
fn add_all(redis: &Redis, stream: &str, payloads: &[String]) -> Vec<String> {
    let mut pipe = redis::pipe();
    for p in payloads {
        pipe.cmd("XADD").arg(stream).arg("*").arg("payload").arg(p);
    }
    pipe.query(&mut redis.connection()).unwrap()
}

/// Adds `n` entries with payloads `<prefix>0` to `<prefix><n - 1>`, in
/// order; returns their ids.
fn add_numbered(redis: &Redis, stream: &str, prefix: &str, n: usize) -> Vec<String> {
    let payloads: Vec<String> = (0..n).map(|i| format!("{prefix}{i}")).collect();
    add_all(redis, stream, &payloads)
}

/// Entries pending in the group (`XPENDING` summary).
fn pending(redis: &Redis, stream: &str) -> i64 {
    let v: Vec<redis::Value> = redis::cmd("XPENDING")
        .arg(stream)
        .arg(GROUP)
        .query(&mut redis.connection())
        .unwrap();
    match v.first() {
        Some(redis::Value::Int(n)) => *n,
        other => panic!("XPENDING: {other:?}"),
    }
}

/// Entries pending on one consumer.
fn pending_on(redis: &Redis, stream: &str, consumer: &str) -> usize {
    let v: Vec<redis::Value> = redis::cmd("XPENDING")
        .arg(stream)
        .arg(GROUP)
        .arg("-")
        .arg("+")
        .arg(10_000)
        .arg(consumer)
        .query(&mut redis.connection())
        .unwrap();
    v.len()
}

/// The group's lag from `XINFO GROUPS` (`None`: unknown to Redis).
fn lag(redis: &Redis, stream: &str) -> Option<i64> {
    let groups: Vec<HashMap<String, redis::Value>> = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(stream)
        .query(&mut redis.connection())
        .unwrap();
    let g = groups
        .iter()
        .find(|g| g.get("name") == Some(&redis::Value::BulkString(GROUP.into())))
        .expect("the group exists");
    match g.get("lag") {
        Some(redis::Value::Int(n)) => Some(*n),
        _ => None,
    }
}

/// Every attempt logged: (id, delivery, payload). A last line still being
/// written is left out.
fn attempts(log: &str) -> Vec<(String, u32, String)> {
    log.split_inclusive('\n')
        .filter_map(|l| l.strip_suffix('\n'))
        .map(|l| {
            let mut parts = l.splitn(3, ' ');
            let id = parts.next().unwrap().to_string();
            let delivery = parts.next().unwrap().parse().unwrap();
            (id, delivery, parts.next().unwrap_or("").to_string())
        })
        .collect()
}

/// The numbers of a stream's shutdown line: handled, retried,
/// dead-lettered, claimed from others.
fn stream_summary(stderr: &str, stream: &str) -> [u64; 4] {
    let (line, counts) = source_summary(stderr, "stream", stream);
    // What follows the `;` is not a count of this line's four.
    let counts = counts.split(';').next().unwrap_or(counts);
    summary_numbers(line, counts)
}

fn start(m: &std::path::Path, extra: &[&str]) -> SpinRedis {
    SpinRedis::reading(m, extra, "stream")
}

/// Entries of a stream as (id, fields).
fn xrange(redis: &Redis, stream: &str) -> Vec<(String, HashMap<String, String>)> {
    let v: Vec<(String, Vec<(String, String)>)> = redis::cmd("XRANGE")
        .arg(stream)
        .arg("-")
        .arg("+")
        .query(&mut redis.connection())
        .unwrap();
    v.into_iter()
        .map(|(id, f)| (id, f.into_iter().collect()))
        .collect()
}

#[test]
fn entries_are_handled_once_acknowledged_and_see_their_stream_variables() {
    // Both executors: env.wat (compat) and a component that prints its
    // environment, each in a group of its own.
    let redis = Redis::start();
    let text = env_printers(
        "stream",
        &redis.url(),
        (
            "events",
            "REDIS_MESSAGE_ID = \"spoofed\", REDIS_CHANNEL = \"spoofed\"",
        ),
        ("events", "REDIS_DELIVERY = \"spoofed\""),
    );
    let (_d, m) = manifest(&text);
    let id = xadd(&redis, "events", &[("payload", "hello"), ("other", "x")]);
    let mut s = start(&m, &[]);
    s.wait_log("h_stdout.txt", "REDIS_DELIVERY=1\n");
    s.wait_log("c_stdout.txt", "payload bytes: 5\n");
    wait_until("acknowledged", || pending(&redis, "events") == 0);
    let component_pending = || {
        redis
            .cli(&["XPENDING", "events", "app.c"])
            .unwrap_or_default()
    };
    wait_until("acknowledged by the component's group", || {
        component_pending().lines().next() == Some("0")
    });
    assert!(s.stop().success());
    for log in ["h_stdout.txt", "c_stdout.txt"] {
        let env = s.log_text(log);
        for line in [
            "REDIS_STREAM=events\n".to_string(),
            format!("REDIS_MESSAGE_ID={id}\n"),
            "REDIS_DELIVERY=1\n".into(),
            format!("REDIS_ADDRESS={}\n", redis.plain_url()),
            "CONTENT_LENGTH=5\n".into(),
        ] {
            assert!(env.contains(&line), "{log}: {line:?} missing from:\n{env}");
        }
        assert!(!env.contains("REDIS_CHANNEL"), "{log}: {env}");
        assert!(!env.contains("spoofed"), "{log}: {env}");
    }
    assert_eq!(lag(&redis, "events"), Some(0));
    let stderr = s.stderr();
    let lines = stderr
        .lines()
        .filter(|l| l.starts_with("spin-redis: stream \"events\""))
        .count();
    assert_eq!(lines, 2, "a line per stream trigger: {stderr}");
    assert_eq!(stream_summary(&s.stderr(), "events"), [1, 0, 0, 0]);
}

#[test]
fn poison_is_dead_lettered_after_exactly_max_deliveries_and_a_flaky_entry_succeeds_on_its_second() {
    let redis = Redis::start();
    let (_d, m) = stream_app(
        &redis,
        "jobs",
        "max_deliveries = 3\nclaim_idle = \"5s\"",
        "timeout = \"2s\"",
    );
    let poison = xadd(&redis, "jobs", &[("payload", "poison"), ("tenant", "t1")]);
    let flaky = xadd(&redis, "jobs", &[("payload", "flaky")]);
    let fine = xadd(&redis, "jobs", &[("payload", "good")]);
    let fieldless = xadd(&redis, "jobs", &[("body", "no payload field")]);
    let mut s = start(&m, &["-q"]);
    wait_until("two entries dead-lettered", || {
        xrange(&redis, "jobs:dead").len() == 2
    });
    wait_until("nothing pending", || pending(&redis, "jobs") == 0);
    assert!(s.stop().success());

    let log = attempts(&s.log_text("h_stdout.txt"));
    let of = |id: &str| -> Vec<u32> {
        log.iter()
            .filter(|(i, ..)| i == id)
            .map(|(_, d, _)| *d)
            .collect()
    };
    assert_eq!(of(&poison), [1, 2, 3], "exactly max_deliveries attempts");
    assert_eq!(of(&flaky), [1, 2], "failed once, then succeeded");
    assert_eq!(of(&fine), [1]);
    assert_eq!(of(&fieldless), Vec::<u32>::new(), "never run");

    let dead = xrange(&redis, "jobs:dead");
    let by_id = |id: &str| {
        dead.iter()
            .find(|(_, f)| f.get("dead_letter_id").map(String::as_str) == Some(id))
            .unwrap_or_else(|| panic!("{id} not dead-lettered: {dead:?}"))
            .1
            .clone()
    };
    let p = by_id(&poison);
    assert_eq!(p["payload"], "poison");
    assert_eq!(p["tenant"], "t1", "the original fields are kept");
    assert_eq!(p["dead_letter_stream"], "jobs");
    assert_eq!(p["dead_letter_component"], "h");
    assert_eq!(p["dead_letter_deliveries"], "3");
    assert_eq!(p["dead_letter_error"], "exited with code 1");
    let f = by_id(&fieldless);
    assert_eq!(f["body"], "no payload field");
    assert_eq!(f["dead_letter_deliveries"], "1");
    assert!(
        f["dead_letter_error"].contains("no field \"payload\""),
        "{f:?}"
    );
    // handled: flaky and fine; retried: poison twice and flaky once.
    assert_eq!(stream_summary(&s.stderr(), "jobs"), [2, 3, 2, 0]);
    assert_eq!(lag(&redis, "jobs"), Some(0));
}

#[test]
fn entries_added_while_no_consumer_ran_are_handled_when_one_starts() {
    let redis = Redis::start();
    // One at a time: entries are handled in stream order.
    let (_d, m) = stream_app(&redis, "later", "max_concurrency = 1", "");
    // Before the group exists: the group starts at the beginning ("0").
    let early = add_numbered(&redis, "later", "early", 5);
    let mut s = start(&m, &["-q"]);
    wait_until("the first five", || {
        attempts(&s.log_text("h_stdout.txt")).len() == 5
    });
    wait_until("acknowledged", || pending(&redis, "later") == 0);
    assert!(s.stop().success());
    // While nothing runs.
    let late = add_numbered(&redis, "later", "late", 20);
    assert_eq!(lag(&redis, "later"), Some(20));
    let mut s2 = start(&m, &["-q"]);
    wait_until("the twenty added meanwhile", || {
        attempts(&s2.log_text("h_stdout.txt")).len() == 20
    });
    wait_until("acknowledged", || pending(&redis, "later") == 0);
    assert!(s2.stop().success());
    let ids = |s: &SpinRedis| -> Vec<String> {
        attempts(&s.log_text("h_stdout.txt"))
            .into_iter()
            .map(|(id, ..)| id)
            .collect()
    };
    assert_eq!(ids(&s), early);
    assert_eq!(ids(&s2), late, "each once, in order (max_concurrency = 1)");
    assert_eq!(lag(&redis, "later"), Some(0));
}

#[test]
fn sigterm_finishes_and_acknowledges_what_is_in_flight_and_leaves_the_rest() {
    let redis = Redis::start();
    let (_d, m) = stream_app(&redis, "slowly", "max_concurrency = 2", "");
    let s_ids = add_numbered(&redis, "slowly", "s", 6);
    let mut s = start(&m, &["-q"]);
    // Two in flight (2 s each): read, running, not acknowledged.
    wait_until("two entries in flight", || pending(&redis, "slowly") == 2);
    assert!(s.stop().success());
    let mut done: Vec<String> = attempts(&s.log_text("h_stdout.txt"))
        .into_iter()
        .map(|(id, ..)| id)
        .collect();
    // They ran at once: in either order.
    done.sort();
    assert_eq!(done, s_ids[..2], "the two in flight finished");
    assert_eq!(pending(&redis, "slowly"), 0, "and were acknowledged");
    assert_eq!(lag(&redis, "slowly"), Some(4), "the rest was never read");
    assert_eq!(stream_summary(&s.stderr(), "slowly"), [2, 0, 0, 0]);
}

#[test]
fn a_restarted_consumer_first_handles_its_own_pending_entries() {
    let redis = Redis::start();
    // claim_idle is far off: only the consumer's own recovery can pick the
    // entries up within the test.
    let (_d, m) = stream_app(
        &redis,
        "own",
        "consumer = \"worker-1\"\nclaim_idle = \"10m\"\nmax_concurrency = 3",
        "",
    );
    let ids = add_numbered(&redis, "own", "s", 3);
    let s = start(&m, &["-q"]);
    wait_until("three in flight", || {
        pending_on(&redis, "own", "worker-1") == 3
    });
    s.signal("-KILL");
    drop(s);
    let mut s2 = start(&m, &["-q"]);
    wait_until("the three handled again", || {
        attempts(&s2.log_text("h_stdout.txt")).len() == 3
    });
    wait_until("acknowledged", || pending(&redis, "own") == 0);
    assert!(s2.stop().success());
    // They ran at once: in any order.
    let mut log = attempts(&s2.log_text("h_stdout.txt"));
    log.sort();
    for (i, id) in ids.iter().enumerate() {
        assert_eq!(log[i].0, *id);
        assert_eq!(log[i].1, 2, "the second delivery: {log:?}");
    }
    assert!(
        s2.stderr()
            .contains("took up this consumer's own pending entries"),
        "{}",
        s2.stderr()
    );
    assert_eq!(stream_summary(&s2.stderr(), "own"), [3, 0, 0, 0]);
}

#[test]
fn three_processes_share_a_stream_and_one_killed_mid_run_loses_nothing() {
    const N: usize = 3000;
    let redis = Redis::start();
    let (_d, m) = stream_app(
        &redis,
        "work",
        "max_concurrency = 4\nclaim_idle = \"2s\"",
        "timeout = \"1s\"",
    );
    // Each takes about 10 ms ("w" + 9 bytes).
    let payloads: Vec<String> = (0..N).map(|i| format!("w{i:08}")).collect();
    let ids = add_all(&redis, "work", &payloads);
    let mut procs: Vec<SpinRedis> = (0..3).map(|_| start(&m, &["-q"])).collect();
    let handled = |p: &SpinRedis| attempts(&p.log_text("h_stdout.txt")).len();
    wait_until("the first process to be well into its share", || {
        handled(&procs[0]) >= 100
    });
    let mut victim = procs.remove(0);
    let victim_pid = victim.pid();
    victim.signal("-KILL");
    victim.wait();
    let victim_log = || victim.log_text("h_stdout.txt");
    // What it held at the kill is what may be handled twice.
    let consumers: Vec<HashMap<String, redis::Value>> = redis::cmd("XINFO")
        .arg("CONSUMERS")
        .arg("work")
        .arg(GROUP)
        .query(&mut redis.connection())
        .unwrap();
    let name = consumers
        .iter()
        .filter_map(|c| match c.get("name") {
            Some(redis::Value::BulkString(n)) => Some(String::from_utf8(n.clone()).unwrap()),
            _ => None,
        })
        .find(|n| n.ends_with(&format!("-{victim_pid}")))
        .expect("the default consumer name is <hostname>-<pid>");
    let in_flight = pending_on(&redis, "work", &name);
    let all_logs = |procs: &[SpinRedis]| -> Vec<String> {
        let mut all: Vec<String> = attempts(&victim_log())
            .into_iter()
            .map(|(id, ..)| id)
            .collect();
        for p in procs {
            all.extend(
                attempts(&p.log_text("h_stdout.txt"))
                    .into_iter()
                    .map(|(id, ..)| id),
            );
        }
        all
    };
    wait_until("every entry handled", || {
        let mut seen = all_logs(&procs);
        seen.sort();
        seen.dedup();
        seen.len() == N
    });
    wait_until("nothing pending", || pending(&redis, "work") == 0);
    let mut claimed = 0;
    for p in &mut procs {
        assert!(p.stop().success());
        claimed += stream_summary(&p.stderr(), "work")[3];
    }
    let seen = all_logs(&procs);
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for id in &seen {
        *counts.entry(id.as_str()).or_default() += 1;
    }
    assert_eq!(counts.len(), N);
    assert!(ids.iter().all(|id| counts.contains_key(id.as_str())));
    let twice: usize = counts.values().map(|n| n - 1).sum();
    eprintln!(
        "{N} entries, 3 processes, one killed with {in_flight} pending on it: {twice} handled twice, {claimed} taken over"
    );
    assert!(
        twice <= in_flight,
        "{twice} entries handled twice, but only {in_flight} were in flight at the kill"
    );
    assert!(
        claimed as usize >= in_flight,
        "the survivors took over what the killed one held: {claimed} < {in_flight}"
    );
    assert!(attempts(&victim_log()).len() >= 100);
    assert_eq!(lag(&redis, "work"), Some(0));
    assert_eq!(pending(&redis, "work"), 0);
}

#[test]
fn a_redis_restart_that_loses_the_group_is_survived() {
    let mut redis = Redis::start();
    let (_d, m) = stream_app(&redis, "fresh", "", "");
    let mut s = start(&m, &["-q"]);
    let first = xadd(&redis, "fresh", &[("payload", "before")]);
    s.wait_log("h_stdout.txt", &format!("{first} 1 before\n"));
    // No persistence: the stream and its group are gone.
    redis.restart(&[]);
    wait_until("the group made again", || {
        redis
            .cli(&["XINFO", "GROUPS", "fresh"])
            .is_some_and(|o| o.contains(GROUP))
    });
    let second = xadd(&redis, "fresh", &[("payload", "after")]);
    s.wait_log("h_stdout.txt", &format!("{second} 1 after\n"));
    wait_until("acknowledged", || pending(&redis, "fresh") == 0);
    assert!(s.stop().success());
}

/// Runs `up` to its exit; fails the test if it is still running after
/// [`PATIENCE`] (`up` on a manifest that passes its checks runs for ever).
fn up_bounded(m: &std::path::Path, extra: &[&str]) -> (i32, String) {
    let mut s = SpinRedis::spawn(m, extra);
    let code = s.wait().code().unwrap_or(-1);
    (code, s.stderr())
}

#[test]
fn stream_settings_are_checked_with_the_file_line_and_field() {
    let url = "redis://127.0.0.1:1";
    let v2 = |trigger: &str, app: &str| source_manifest("stream", url, "orders", trigger, app);
    let v1 = |trigger: &str| {
        format!(
            "spin_manifest_version = \"1\"\nname = \"app\"\ntrigger = {{ type = \"redis\", address = \"{url}\" }}\n[[component]]\nid = \"h\"\nsource = \"{}\"\n[component.trigger]\nexecutor = {{ type = \"wagi\" }}\n{trigger}\n",
            fixture("stream.wat").display()
        )
    };
    let cases: Vec<(String, &str, &str)> = vec![
        (
            v2("channel = \"c\"", ""),
            "trigger.redis[0].stream",
            "a channel or a stream, not both",
        ),
        (
            v2("claim_idle = \"20s\"", "timeout = \"30s\""),
            "trigger.redis[0].claim_idle",
            "must be longer than the timeout",
        ),
        (
            v2("claim_idle = \"30s\"", ""),
            "trigger.redis[0].claim_idle",
            "must be longer than the timeout (30s)",
        ),
        (
            v2("max_deliveries = 0", ""),
            "trigger.redis[0].max_deliveries",
            "from 1 to 1000",
        ),
        (
            v2("start = \"yesterday\"", ""),
            "trigger.redis[0].start",
            "is not \"0\", \"$\" or an entry id",
        ),
        (
            v2("dead_letter = \"orders\"", ""),
            "trigger.redis[0].dead_letter",
            "is the stream itself",
        ),
        (
            v2("group = \"\"", ""),
            "trigger.redis[0].group",
            "group is empty",
        ),
        (
            v2("sharded = true\ncluster = true", ""),
            "trigger.redis[0].sharded",
            "sharded applies to channels only",
        ),
        (
            v1("channel = \"c\"\nsharded = true"),
            "component[0].trigger.sharded",
            "sharded pub/sub is for a Redis Cluster",
        ),
        (
            v1("channel = \"c\"\ngroup = \"g\""),
            "component[0].trigger.group",
            "\"group\" applies to stream triggers only",
        ),
        (
            v1("stream = \"orders\"\nchannel = \"c\""),
            "component[0].trigger.stream",
            "a channel or a stream, not both",
        ),
        (
            v1("max_deliveries = 1001\nstream = \"s\""),
            "component[0].trigger.max_deliveries",
            "from 1 to 1000",
        ),
        (
            v1(""),
            "component[0].trigger.channel",
            "no channel and no stream",
        ),
        (
            format!(
                "spin_manifest_version = \"1\"\ntrigger = {{ type = \"redis\", address = \"redis://a:1,redis://b:2\" }}\n[[component]]\nid = \"h\"\nsource = \"{}\"\n[component.trigger]\nchannel = \"c\"\n",
                fixture("stream.wat").display()
            ),
            "trigger.address",
            "only a cluster takes several",
        ),
    ];
    // `invoke` reads the manifest as `up` does, and never connects: a check
    // that let a case through would run the handler and exit 0.
    for (text, field, message) in cases {
        let (_d, m) = manifest(&text);
        let (code, _, err) = run(&["invoke", "-f", m.to_str().unwrap(), "h", "--payload", "x"]);
        assert_eq!(code, 2, "{field}: {err}");
        assert!(
            err.contains("spin.toml:") && err.contains(&format!(": {field}: ")),
            "{field} not named in:\n{err}"
        );
        assert!(err.contains(message), "{message:?} not in:\n{err}");
    }
    // A line is named: the claim_idle line of the v2 case.
    let (_d, m) = manifest(&v2("claim_idle = \"20s\"", "timeout = \"30s\""));
    let (_, _, err) = run(&["invoke", "-f", m.to_str().unwrap(), "h"]);
    let line = std::fs::read_to_string(&m)
        .unwrap()
        .lines()
        .position(|l| l.starts_with("claim_idle"))
        .unwrap()
        + 1;
    assert!(err.contains(&format!("spin.toml:{line}: ")), "{err}");
    // A --timeout that claim_idle does not exceed is refused too.
    let (_d, m) = manifest(&v2("claim_idle = \"5s\"", "timeout = \"1s\""));
    let (code, err) = up_bounded(&m, &["--timeout", "10s"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("claim_idle 5s must be longer than the timeout (10s)")
            && err.contains("--timeout"),
        "{err}"
    );
}
