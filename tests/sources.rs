//! The other sources against a real redis-server: pattern triggers
//! (`PSUBSCRIBE`: matching, `REDIS_PATTERN` and `REDIS_CHANNEL` in both
//! executors, keyspace notifications, resubscribing after a restart, refused
//! with `sharded`) and list triggers (a reliable queue: shared by several
//! processes, one of them killed; retries and dead letters; a restart that
//! resumes its own processing list). Handlers are WAT fixtures, and the Rust
//! component that prints its environment.

use crate::support;
use std::collections::BTreeMap;
use std::io::{Read as _, Write as _};
use support::*;

/// `PUBSUB NUMPAT`: patterns subscribed on the server.
fn numpat(redis: &Redis) -> i64 {
    redis
        .cli(&["PUBSUB", "NUMPAT"])
        .and_then(|o| o.trim().parse().ok())
        .unwrap_or(0)
}

/// A plain HTTP/1.1 GET of `/metrics` on loopback: the body.
fn metrics(port: u16) -> String {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect to /metrics");
    write!(
        s,
        "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut text = String::new();
    s.read_to_string(&mut text).unwrap();
    text
}

/// Starts `spin-redis up` and waits until `patterns` patterns are
/// subscribed on the server.
fn up_with_patterns(
    redis: &Redis,
    m: &std::path::Path,
    extra: &[&str],
    patterns: i64,
) -> SpinRedis {
    let s = SpinRedis::spawn(m, extra);
    wait_until_within("the patterns subscribed", START_UP_PATIENCE, || {
        assert!(s.is_running(), "spin-redis exited early:\n{}", s.stderr());
        numpat(redis) >= patterns
    });
    s
}

#[test]
fn patterns_match_as_redis_globs_and_handlers_see_the_channel_and_the_pattern() {
    let redis = Redis::start();
    let port = free_port().to_string();
    // `h` (wagi) is bound to the pattern and to one of its channels; `c` (a
    // component) to the pattern only; `q` to a second pattern with `?` and
    // a class.
    let text = [
        v2_head("app", &redis.url()),
        wagi_trigger("pattern", "orders.*", "h"),
        wagi_trigger("channel", "orders.eu", "h"),
        v2_trigger("pattern", "orders.*", "c"),
        wagi_trigger("pattern", "r?gion.[ab]", "q"),
        v2_component("h", fixture("env.wat").display()),
        "environment = { BLOCK = \"start\", REDIS_PATTERN = \"spoofed\" }\n".into(),
        v2_component("c", env_component().display()),
        v2_component("q", fixture("echo.wat").display()),
    ]
    .concat();
    let (_d, m) = manifest(&text);
    let mut s = up_with_patterns(&redis, &m, &["--metrics", &format!("127.0.0.1:{port}")], 2);
    wait_until("the channel subscribed too", || {
        redis.subscribers("orders.eu") >= 1
    });
    // Not matching: another prefix, no dot, a dot too many for `?`.
    for ch in ["other", "orders", "xorders.eu", "rxxgion.a", "region.c"] {
        redis.publish(ch, ch.as_bytes());
    }
    redis.publish("orders.eu", b"one");
    redis.publish("orders.us.east", b"two");
    redis.publish("region.a", b"r-a");
    redis.publish("ragion.b", b"r-b");
    wait_until("h ran three times", || {
        wagi_blocks(&s.log_text("h_stdout.txt")).len() >= 3
    });
    wait_until("c ran twice", || {
        component_blocks(&s.log_text("c_stdout.txt")).len() >= 2
    });
    s.wait_log("q_stdout.txt", "r-a\n");
    s.wait_log("q_stdout.txt", "r-b\n");
    // A last message, handled after all the others were received: nothing
    // else arrives for the ones that did not match.
    redis.publish("orders.end", b"end");
    wait_until("c saw the last one", || {
        component_blocks(&s.log_text("c_stdout.txt")).len() >= 3
    });
    wait_until("h saw the last one", || {
        wagi_blocks(&s.log_text("h_stdout.txt")).len() >= 4
    });
    let scraped = metrics(port.parse().unwrap());
    assert!(s.stop().success());

    let h = wagi_blocks(&s.log_text("h_stdout.txt"));
    let seen = |blocks: &[BTreeMap<String, String>], channel: &str, pattern: Option<&str>| {
        blocks
            .iter()
            .filter(|b| {
                b.get("REDIS_CHANNEL").map(String::as_str) == Some(channel)
                    && b.get("REDIS_PATTERN").map(String::as_str) == pattern
            })
            .count()
    };
    assert_eq!(h.len(), 4, "{h:#?}");
    // orders.eu matched the pattern and the channel: one run each.
    assert_eq!(seen(&h, "orders.eu", Some("orders.*")), 1, "{h:#?}");
    assert_eq!(seen(&h, "orders.eu", None), 1, "{h:#?}");
    assert_eq!(seen(&h, "orders.us.east", Some("orders.*")), 1, "{h:#?}");
    assert_eq!(seen(&h, "orders.end", Some("orders.*")), 1, "{h:#?}");
    for b in &h {
        assert_eq!(b["REDIS_ADDRESS"], redis.plain_url());
        assert!(!b.contains_key("REDIS_STREAM"), "{b:?}");
    }
    let c = component_blocks(&s.log_text("c_stdout.txt"));
    assert_eq!(c.len(), 3, "{c:#?}");
    for ch in ["orders.eu", "orders.us.east", "orders.end"] {
        assert_eq!(seen(&c, ch, Some("orders.*")), 1, "{c:#?}");
    }
    let q = s.log_text("q_stdout.txt");
    assert_eq!(q.lines().count(), 2, "{q}");
    // The pattern is the source label.
    for series in [
        r#"spin_redis_deliveries_total{component="c",source="orders.*",outcome="ok"} 3"#,
        r#"spin_redis_deliveries_total{component="h",source="orders.*",outcome="ok"} 3"#,
        r#"spin_redis_deliveries_total{component="h",source="orders.eu",outcome="ok"} 1"#,
        r#"spin_redis_deliveries_total{component="q",source="r?gion.[ab]",outcome="ok"} 2"#,
    ] {
        assert!(
            scraped.contains(series),
            "{series} missing from:\n{scraped}"
        );
    }
    // Nothing was received on a channel nothing is bound to.
    s.assert_not_logged("nothing is bound to", "a message on an unbound channel");
}

#[test]
fn keyspace_notifications_run_a_pattern_trigger() {
    let redis = Redis::start();
    redis
        .cli(&["CONFIG", "SET", "notify-keyspace-events", "KA"])
        .unwrap();
    let text = [
        v2_head("keyspace", &redis.url()),
        wagi_trigger("pattern", "__keyspace@0__:user:*", "events"),
        wagi_trigger("pattern", "__keyspace@0__:user:*", "env"),
        v2_component("events", fixture("echo.wat").display()),
        v2_component("env", fixture("env.wat").display()),
        "environment = { BLOCK = \"start\" }\n".into(),
    ]
    .concat();
    let (_d, m) = manifest(&text);
    let mut s = up_with_patterns(&redis, &m, &[], 1);
    redis.cli(&["SET", "user:1", "ada"]).unwrap();
    redis.cli(&["SET", "session:1", "x"]).unwrap();
    redis.cli(&["DEL", "user:1"]).unwrap();
    s.wait_log("events_stdout.txt", "del\n");
    wait_until("env ran twice", || {
        wagi_blocks(&s.log_text("env_stdout.txt")).len() >= 2
    });
    assert!(s.stop().success());
    let events = s.log_text("events_stdout.txt");
    let mut lines: Vec<&str> = events.lines().collect();
    lines.sort();
    assert_eq!(lines, ["del", "set"], "{events}");
    let env = wagi_blocks(&s.log_text("env_stdout.txt"));
    assert_eq!(env.len(), 2, "{env:#?}");
    for b in &env {
        assert_eq!(b["REDIS_CHANNEL"], "__keyspace@0__:user:1");
        assert_eq!(b["REDIS_PATTERN"], "__keyspace@0__:user:*");
    }
}

#[test]
fn patterns_are_subscribed_with_the_channels_and_again_after_a_redis_restart() {
    let mut redis = Redis::start();
    let echo = fixture("echo.wat");
    let text = [
        v1_head(None, &redis.url()),
        v1_component_on("a", &echo, "pattern", "news.*", "wagi"),
        v1_component_on("b", &echo, "pattern", "alerts.*", "wagi"),
        v1_component("c", &echo, "plain", "wagi"),
    ]
    .concat();
    let (_d, m) = manifest(&text);
    let mut s = up_with_patterns(&redis, &m, &[], 2);
    wait_until("the channel subscribed", || redis.subscribers("plain") >= 1);
    // One connection, one PSUBSCRIBE for both patterns.
    let clients = redis.cli(&["CLIENT", "LIST", "TYPE", "pubsub"]).unwrap();
    assert_eq!(clients.lines().count(), 1, "{clients}");
    assert!(clients.contains(" sub=1 psub=2 "), "{clients}");
    let psubscribes = redis.command_stats("psubscribe");
    assert!(psubscribes.contains("calls=1,"), "{psubscribes}");
    redis.publish("news.1", b"before");
    s.wait_log("a_stdout.txt", "before\n");

    redis.restart(&[]);
    s.wait_stderr("lost the connection to redis; reconnecting");
    wait_until("both patterns subscribed again", || numpat(&redis) >= 2);
    s.wait_stderr("reconnected to redis and resubscribed");
    redis.publish("news.2", b"after");
    redis.publish("alerts.fire", b"alarm");
    redis.publish("plain", b"still");
    s.wait_log("a_stdout.txt", "before\nafter\n");
    s.wait_log("b_stdout.txt", "alarm\n");
    s.wait_log("c_stdout.txt", "still\n");
    assert!(s.stop().success());
}

#[test]
fn a_sharded_pattern_is_refused_at_start_up_naming_the_file_line_and_field() {
    let v2 = r#"spin_manifest_version = 2
[application]
name = "app"
[application.trigger.redis]
address = "redis://127.0.0.1:1"
cluster = true
[[trigger.redis]]
pattern = "orders.*"
sharded = true
component = "h"
[component.h]
source = "h.wasm"
"#;
    let v1 = r#"spin_manifest_version = "1"
trigger = { type = "redis", address = "redis://127.0.0.1:1", cluster = true }
[[component]]
id = "h"
source = "h.wasm"
[component.trigger]
pattern = "orders.*"
sharded = true
"#;
    for (text, field) in [
        (v2, "trigger.redis[0].sharded"),
        (v1, "component[0].trigger.sharded"),
    ] {
        let (dir, m) = manifest(text);
        std::fs::write(dir.path().join("h.wasm"), b"").unwrap();
        let line = text
            .lines()
            .position(|l| l.starts_with("sharded"))
            .expect("a sharded line")
            + 1;
        let (code, _, err) = run(&["up", "-f", m.to_str().unwrap()]);
        assert_eq!(code, 2, "{err}");
        let at = format!("{}:{line}: {field}: ", m.display());
        assert!(err.contains(&at), "{at:?} missing from:\n{err}");
        assert!(
            err.contains("Redis has no sharded pattern subscriptions"),
            "{err}"
        );
    }
}

// ---- Lists ----

/// `LPUSH`es `items` in one command, as a producer does.
fn push(redis: &Redis, list: &str, items: &[String]) {
    let _: i64 = redis::cmd("LPUSH")
        .arg(list)
        .arg(items)
        .query(&mut redis.connection())
        .unwrap();
}

fn llen(redis: &Redis, key: &str) -> i64 {
    redis::cmd("LLEN")
        .arg(key)
        .query(&mut redis.connection())
        .unwrap()
}

fn lrange(redis: &Redis, key: &str) -> Vec<String> {
    redis::cmd("LRANGE")
        .arg(key)
        .arg(0)
        .arg(-1)
        .query(&mut redis.connection())
        .unwrap()
}

/// Every key of the server matching `pattern`.
fn keys(redis: &Redis, pattern: &str) -> Vec<String> {
    let mut k: Vec<String> = redis::cmd("KEYS")
        .arg(pattern)
        .query(&mut redis.connection())
        .unwrap();
    k.sort();
    k
}

/// Every attempt `stream.wat` logged: (delivery, payload). A last line
/// still being written is left out.
fn list_attempts(log: &str) -> Vec<(u32, String)> {
    log.split_inclusive('\n')
        .filter_map(|l| l.strip_suffix('\n'))
        .map(|l| {
            let mut parts = l.splitn(3, ' ');
            let _id = parts.next().unwrap();
            let delivery = parts.next().unwrap().parse().unwrap();
            (delivery, parts.next().unwrap_or("").to_string())
        })
        .collect()
}

/// The numbers of a list's shutdown line: handled, retried, dead-lettered,
/// recovered from dead consumers, resumed, handed back.
fn list_summary(stderr: &str, list: &str) -> [u64; 6] {
    let (line, counts) = source_summary(stderr, "list", list);
    summary_numbers(line, counts)
}

/// Starts `spin-redis up` and waits until it reads its list(s).
fn start_list(m: &std::path::Path, extra: &[&str]) -> SpinRedis {
    SpinRedis::reading(m, extra, "list")
}

#[test]
fn list_items_are_handled_once_removed_and_see_their_list_variables() {
    let redis = Redis::start();
    let text = env_printers(
        "list",
        &redis.url(),
        (
            "jobs",
            "BLOCK = \"start\", REDIS_LIST = \"spoofed\", REDIS_CHANNEL = \"spoofed\"",
        ),
        ("{tasks}", "REDIS_DELIVERY = \"spoofed\""),
    );
    let (_d, m) = manifest(&text);
    // Pushed before start: the list is the queue.
    push(&redis, "jobs", &["hello".into()]);
    let mut s = start_list(&m, &[]);
    push(&redis, "{tasks}", &["world!".into()]);
    wait_until("both handled and removed", || {
        !wagi_blocks(&s.log_text("h_stdout.txt")).is_empty()
            && !component_blocks(&s.log_text("c_stdout.txt")).is_empty()
            && keys(&redis, "*processing*").is_empty()
    });
    assert!(s.stop().success());
    let h = wagi_blocks(&s.log_text("h_stdout.txt"));
    let c = component_blocks(&s.log_text("c_stdout.txt"));
    assert_eq!((h.len(), c.len()), (1, 1), "{h:#?} {c:#?}");
    for (b, list, len) in [(&h[0], "jobs", "5"), (&c[0], "{tasks}", "6")] {
        assert_eq!(b["REDIS_LIST"], list, "{b:?}");
        assert_eq!(b["REDIS_DELIVERY"], "1", "{b:?}");
        assert_eq!(b["REDIS_ADDRESS"], redis.plain_url());
        assert_eq!(b["CONTENT_LENGTH"], len);
        for absent in [
            "REDIS_CHANNEL",
            "REDIS_STREAM",
            "REDIS_MESSAGE_ID",
            "REDIS_PATTERN",
        ] {
            assert!(!b.contains_key(absent), "{absent}: {b:?}");
        }
    }
    // Nothing left beside the lists: no processing list, no counts, no
    // heartbeat; the lists themselves are empty (and so gone).
    let left = keys(&redis, "*");
    assert!(left.iter().all(|k| k.ends_with(":consumers")), "{left:?}");
    assert_eq!(list_summary(&s.stderr(), "jobs"), [1, 0, 0, 0, 0, 0]);
    assert_eq!(list_summary(&s.stderr(), "{tasks}"), [1, 0, 0, 0, 0, 0]);
}

#[test]
fn three_processes_share_a_queue_and_one_killed_with_sigkill_loses_nothing() {
    let redis = Redis::start();
    // 200 ms of work an item, two at a time per process.
    let items: Vec<String> = (0..60)
        .map(|i| format!("w-{i:03}-{}", "x".repeat(193)))
        .collect();
    let manifests: Vec<(tempfile::TempDir, std::path::PathBuf)> = ["w1", "w2", "w3"]
        .iter()
        .map(|w| {
            manifest(&source_manifest(
                "list",
                &redis.url(),
                "jobs",
                &format!("consumer = \"{w}\"\nclaim_idle = \"2s\"\nmax_concurrency = 2"),
                "",
            ))
        })
        .collect();
    let mut procs: Vec<SpinRedis> = manifests
        .iter()
        .map(|(_, m)| start_list(m, &["-q"]))
        .collect();
    push(&redis, "jobs", &items);
    let handled = |procs: &[SpinRedis]| -> Vec<(u32, String)> {
        procs
            .iter()
            .flat_map(|p| list_attempts(&p.log_text("h_stdout.txt")))
            .collect()
    };
    wait_until("a few handled by w2", || {
        list_attempts(&procs[1].log_text("h_stdout.txt")).len() >= 3
    });
    procs[1].signal("-KILL");
    let _ = procs[1].wait();
    // What w2 held when it died: all that may run twice.
    let in_flight = llen(&redis, "{jobs}:processing:w2");
    assert!(in_flight >= 1, "w2 was killed with nothing in flight");
    wait_until("every item handled and nothing left anywhere", || {
        let done: std::collections::HashSet<String> =
            handled(&procs).into_iter().map(|(_, p)| p).collect();
        done.len() == items.len()
            && llen(&redis, "jobs") == 0
            && keys(&redis, "{jobs}:processing:*").is_empty()
    });
    let all = handled(&procs);
    for item in &items {
        assert!(all.iter().any(|(_, p)| p == item), "{item} never handled");
    }
    let duplicates = all.len() - items.len();
    assert!(
        duplicates as i64 <= in_flight,
        "{duplicates} duplicates, {in_flight} in flight when w2 died"
    );
    let survivors = format!("{}{}", procs[0].stderr(), procs[2].stderr());
    assert!(
        survivors.contains("handed the processing list of a dead consumer (its heartbeat expired) back to the queue")
            && survivors.contains("consumer=w2"),
        "{survivors}"
    );
    let registered = redis.cli(&["SMEMBERS", "{jobs}:consumers"]).unwrap();
    assert!(!registered.contains("w2"), "{registered}");
    for i in [0, 2] {
        assert!(procs[i].stop().success());
    }
    let recovered: u64 = [0, 2]
        .iter()
        .map(|i| list_summary(&procs[*i].stderr(), "jobs")[3])
        .sum();
    assert_eq!(recovered as i64, in_flight);
    assert!(keys(&redis, "{jobs}:heartbeat:*").is_empty());
    assert!(keys(&redis, "{jobs}:deliveries").is_empty());
}

#[test]
fn failures_are_retried_and_dead_lettered_with_their_delivery_count() {
    let redis = Redis::start();
    let (_d, m) = source_app("list", &redis, "jobs", "max_deliveries = 3", "");
    push(
        &redis,
        "jobs",
        &["poison-1".into(), "flaky-1".into(), "good-1".into()],
    );
    let mut s = start_list(&m, &["-q"]);
    wait_until("the poison dead-lettered", || {
        llen(&redis, "jobs:dead") == 1
    });
    wait_until("nothing left in processing", || {
        keys(&redis, "{jobs}:processing:*").is_empty()
    });
    assert!(s.stop().success());
    assert_eq!(lrange(&redis, "jobs:dead"), ["poison-1"]);
    let mut tries = list_attempts(&s.log_text("h_stdout.txt"));
    tries.sort();
    assert_eq!(
        tries,
        [
            (1, "flaky-1".to_string()),
            (1, "good-1".into()),
            (1, "poison-1".into()),
            (2, "flaky-1".into()),
            (2, "poison-1".into()),
            (3, "poison-1".into()),
        ]
    );
    let err = s.stderr();
    let dead = err
        .lines()
        .find(|l| l.contains("item moved to the dead-letter list"))
        .unwrap_or_else(|| panic!("{err}"));
    for part in [
        "component=h",
        "list=jobs",
        "item=poison-1",
        "deliveries=3",
        "dead_letter=jobs:dead",
        "reason=",
    ] {
        assert!(dead.contains(part), "{part} missing from {dead}");
    }
    // 1 s, then 2 s: the backoff doubles.
    assert!(err.contains("retry_in=1s"), "{err}");
    assert!(err.contains("retry_in=2s"), "{err}");
    assert_eq!(list_summary(&err, "jobs"), [2, 3, 1, 0, 0, 0]);
    assert!(keys(&redis, "{jobs}:deliveries").is_empty());
}

#[test]
fn a_restart_with_the_same_consumer_name_resumes_its_own_processing_list_first() {
    let redis = Redis::start();
    // No other consumer, and a heartbeat that outlives the test: only the
    // restarted process itself can take its items up.
    let (_d, m) = source_app(
        "list",
        &redis,
        "jobs",
        "consumer = \"w1\"\nclaim_idle = \"1h\"\nmax_concurrency = 2",
        "",
    );
    let mut s = start_list(&m, &["-q"]);
    push(&redis, "jobs", &["slow-1".into(), "slow-2".into()]);
    wait_until("both taken", || {
        llen(&redis, "{jobs}:processing:w1") == 2 && llen(&redis, "jobs") == 0
    });
    s.signal("-KILL");
    let _ = s.wait();
    let mut again = start_list(&m, &["-q"]);
    again.wait_stderr("took up this consumer's own processing list");
    wait_until("both handled after the restart", || {
        list_attempts(&again.log_text("h_stdout.txt")).len() == 2
            && keys(&redis, "{jobs}:processing:*").is_empty()
    });
    assert!(again.stop().success());
    let mut tries = list_attempts(&again.log_text("h_stdout.txt"));
    tries.sort();
    // The count lives in Redis: the second delivery of each.
    assert_eq!(tries, [(2, "slow-1".to_string()), (2, "slow-2".into())]);
    assert_eq!(list_summary(&again.stderr(), "jobs"), [2, 0, 0, 0, 2, 0]);
}

#[test]
fn list_triggers_that_cannot_work_are_refused_at_start_up() {
    let wasm = fixture("stream.wat").display().to_string();
    // Two triggers on one list as one consumer would share a processing
    // list; a cluster list whose keys cannot share its slot; a stream-only
    // field.
    let twice = [
        v2_head("app", "redis://127.0.0.1:1"),
        wagi_trigger("list", "jobs", "a"),
        wagi_trigger("list", "jobs", "b"),
        v2_component("a", &wasm),
        v2_component("b", &wasm),
    ]
    .concat();
    let unslotted = source_manifest("list", "redis://127.0.0.1:1", "a}b", "", "cluster = true");
    let grouped = source_manifest("list", "redis://127.0.0.1:1", "jobs", "group = \"g\"", "");
    for (text, wanted) in [
        (twice.as_str(), "both read list \"jobs\" as consumer"),
        (unslotted.as_str(), "cannot share its cluster slot"),
        (
            grouped.as_str(),
            "trigger.redis[0].group: \"group\" applies to stream triggers only",
        ),
    ] {
        let (_d, m) = manifest(text);
        let (code, _, err) = run(&["up", "-f", m.to_str().unwrap()]);
        assert_eq!(code, 2, "{err}");
        assert!(err.contains(wanted), "{wanted:?} missing from:\n{err}");
    }
}
