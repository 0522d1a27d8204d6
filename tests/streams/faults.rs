//! Stream triggers under faults, against a real redis-server: a dependency
//! down (every attempt fails), a group lost while running, acknowledgements
//! refused by an ACL (on one server and in a cluster), consumers left
//! behind by dead processes, and a component whose log file is stuck. A
//! module of `streams` (its helpers are `streams.rs`'s).

use super::*;

/// `XLEN` of `stream`.
fn xlen(redis: &Redis, stream: &str) -> usize {
    redis::cmd("XLEN")
        .arg(stream)
        .query(&mut redis.connection())
        .unwrap()
}

/// Entries pending in `group` (`XPENDING` summary).
fn pending_in(redis: &Redis, stream: &str, group: &str) -> i64 {
    let v: Vec<redis::Value> = redis::cmd("XPENDING")
        .arg(stream)
        .arg(group)
        .query(&mut redis.connection())
        .unwrap();
    match v.first() {
        Some(redis::Value::Int(n)) => *n,
        other => panic!("XPENDING: {other:?}"),
    }
}

/// The consumers of the test group: (name, pending, idle ms).
fn consumers(redis: &Redis, stream: &str) -> Vec<(String, i64, i64)> {
    let v: Vec<HashMap<String, redis::Value>> = redis::cmd("XINFO")
        .arg("CONSUMERS")
        .arg(stream)
        .arg(GROUP)
        .query(&mut redis.connection())
        .unwrap();
    v.iter()
        .map(|c| {
            let int = |k: &str| match c.get(k) {
                Some(redis::Value::Int(n)) => *n,
                other => panic!("{k}: {other:?}"),
            };
            let name = match c.get("name") {
                Some(redis::Value::BulkString(b)) => String::from_utf8(b.clone()).unwrap(),
                other => panic!("name: {other:?}"),
            };
            (name, int("pending"), int("idle"))
        })
        .collect()
}

/// The delivery count of a pending entry (0 when not pending).
fn deliveries(redis: &Redis, stream: &str, id: &str) -> i64 {
    let v: Vec<(String, String, i64, i64)> = redis::cmd("XPENDING")
        .arg(stream)
        .arg(GROUP)
        .arg(id)
        .arg(id)
        .arg(1)
        .query(&mut redis.connection())
        .unwrap();
    v.first().map_or(0, |r| r.3)
}

#[test]
fn a_failing_handler_leaves_the_backlog_in_redis_and_holds_few_entries() {
    const N: usize = 2000;
    const CONCURRENCY: i64 = 4;
    let redis = Redis::start();
    let (_d, m) = stream_app(
        &redis,
        "outage",
        &format!("max_concurrency = {CONCURRENCY}\nmax_deliveries = 3"),
        "",
    );
    // 'p': every attempt fails, as when a dependency is down. 4 KiB each.
    let payloads: Vec<String> = (0..N)
        .map(|i| format!("p{i:05}{}", "x".repeat(4090)))
        .collect();
    add_all(&redis, "outage", &payloads);
    let mut s = start(&m, &["-q"]);
    // Held by the process: running (at most CONCURRENCY) and waiting for a
    // retry or a dead-lettering (reading pauses once 16 wait: the least
    // spin-redis lets wait).
    let bound = 16 + CONCURRENCY;
    let mut most = 0;
    wait_until("more than twice the bound dead-lettered", || {
        let held = pending(&redis, "outage");
        most = most.max(held);
        assert!(
            held <= bound,
            "{held} entries delivered and not acknowledged; at most {bound} may be"
        );
        xlen(&redis, "outage:dead") > 2 * bound as usize
    });
    assert!(
        s.stderr()
            .contains("reading paused while failed entries wait"),
        "{}",
        s.stderr()
    );
    // Stopped first, so the lag and the dead letters below are one
    // consistent picture (while it runs, entries read or dead-lettered
    // between the two reads would skew the bound either way).
    assert!(s.stop().success());
    let never_read = lag(&redis, "outage").expect("lag known");
    let dead = xlen(&redis, "outage:dead") as i64;
    eprintln!("held at most {most}; {dead} dead-lettered; {never_read} never read");
    assert!(
        never_read >= N as i64 - dead - bound,
        "the backlog stays in the stream: {never_read} of {N} never read, {dead} dead-lettered"
    );
    assert!(pending(&redis, "outage") <= bound);
}

#[test]
fn a_group_lost_while_running_with_start_dollar_is_made_again_without_skipping() {
    let redis = Redis::start();
    let (_d, m) = stream_app(&redis, "live", "start = \"$\"", "");
    let mut s = start(&m, &["-q"]);
    let first = xadd(&redis, "live", &[("payload", "before")]);
    s.wait_log("h_stdout.txt", &format!("{first} 1 before\n"));
    wait_until("acknowledged", || pending(&redis, "live") == 0);
    // The group vanishes and entries arrive before spin-redis can make it
    // again: one transaction, so it cannot be otherwise.
    let (destroyed, a, b): (i64, String, String) = redis::pipe()
        .atomic()
        .cmd("XGROUP")
        .arg("DESTROY")
        .arg("live")
        .arg(GROUP)
        .cmd("XADD")
        .arg("live")
        .arg("*")
        .arg("payload")
        .arg("meanwhile-a")
        .cmd("XADD")
        .arg("live")
        .arg("*")
        .arg("payload")
        .arg("meanwhile-b")
        .query(&mut redis.connection())
        .unwrap();
    assert_eq!(destroyed, 1);
    s.wait_log("h_stdout.txt", &format!("{a} 1 meanwhile-a\n"));
    s.wait_log("h_stdout.txt", &format!("{b} 1 meanwhile-b\n"));
    wait_until("acknowledged", || pending(&redis, "live") == 0);
    assert!(s.stop().success());
    // a and b may run at once: in any order.
    let mut handled: Vec<String> = attempts(&s.log_text("h_stdout.txt"))
        .into_iter()
        .map(|(id, ..)| id)
        .collect();
    handled.sort();
    assert_eq!(handled, [first, a, b], "each once: {handled:?}");
    assert!(
        s.stderr()
            .contains("the consumer group was lost; made it again"),
        "{}",
        s.stderr()
    );
}

#[test]
fn a_refused_acknowledgement_never_leaves_a_dead_letter_twice() {
    let redis = Redis::start();
    // claim_idle short: the entry is taken up again (and dead-lettering
    // tried again) every 2 s.
    let (_d, m) = stream_app(
        &redis,
        "acl",
        "max_deliveries = 1\nclaim_idle = \"2s\"",
        "timeout = \"1s\"",
    );
    let mut s = start(&m, &["-q"]);
    // A real refusal: the ACL takes XACK from the user spin-redis is.
    assert!(
        redis
            .cli(&["ACL", "SETUSER", "default", "-xack"])
            .is_some_and(|o| o.trim() == "OK")
    );
    let poison = xadd(&redis, "acl", &[("payload", "poison")]);
    // Tried at its failure, then at two take-overs (each one counts a
    // delivery).
    wait_until("dead-lettering tried three times", || {
        deliveries(&redis, "acl", &poison) >= 3
    });
    assert!(
        redis
            .cli(&["ACL", "SETUSER", "default", "+xack"])
            .is_some_and(|o| o.trim() == "OK")
    );
    wait_until("dead-lettered and acknowledged", || {
        pending(&redis, "acl") == 0
    });
    assert!(s.stop().success());
    let copies: Vec<_> = xrange(&redis, "acl:dead")
        .into_iter()
        .filter(|(_, f)| f.get("dead_letter_id") == Some(&poison))
        .collect();
    assert_eq!(copies.len(), 1, "one dead letter: {copies:?}");
    assert_eq!(copies[0].1["payload"], "poison");
    assert!(
        s.stderr()
            .contains("gave up dead-lettering the entry for now"),
        "the bounded tries end with an error: {}",
        s.stderr()
    );
}

#[test]
fn consumers_left_idle_with_nothing_pending_are_removed_and_none_holding_entries() {
    let redis = Redis::start();
    let (_d, m) = stream_app(&redis, "crowd", "claim_idle = \"2s\"", "timeout = \"1s\"");
    // A process that ran (default name "<hostname>-<pid>") and was killed.
    let earlier = start(&m, &["-q"]);
    let earlier_name = format!("-{}", earlier.pid());
    wait_until("its consumer exists", || {
        consumers(&redis, "crowd")
            .iter()
            .any(|(n, ..)| n.ends_with(&earlier_name))
    });
    earlier.signal("-KILL");
    drop(earlier);
    // One that died holding an entry, and one that never read.
    let held = xadd(&redis, "crowd", &[("payload", "held")]);
    let _: redis::Value = redis::cmd("XREADGROUP")
        .arg("GROUP")
        .arg(GROUP)
        .arg("ghost-holding")
        .arg("COUNT")
        .arg(1)
        .arg("STREAMS")
        .arg("crowd")
        .arg(">")
        .query(&mut redis.connection())
        .unwrap();
    assert_eq!(pending_on(&redis, "crowd", "ghost-holding"), 1);
    let _: i64 = redis::cmd("XGROUP")
        .arg("CREATECONSUMER")
        .arg("crowd")
        .arg(GROUP)
        .arg("ghost-empty")
        .query(&mut redis.connection())
        .unwrap();
    wait_until("all three idle past claim_idle", || {
        let c = consumers(&redis, "crowd");
        c.len() == 3 && c.iter().all(|(_, _, idle)| *idle > 2100)
    });
    let mut s = start(&m, &["-q"]);
    let own = format!("-{}", s.pid());
    // The holder keeps its entry until it is taken over: handled, not lost.
    s.wait_log("h_stdout.txt", &format!("{held} 2 held\n"));
    wait_until("only the live consumer is left", || {
        let c = consumers(&redis, "crowd");
        c.len() == 1 && c[0].0.ends_with(&own)
    });
    wait_until("acknowledged", || pending(&redis, "crowd") == 0);
    assert!(s.stop().success());
    assert!(
        s.stderr()
            .contains("removed consumers idle past claim_idle with nothing pending"),
        "{}",
        s.stderr()
    );
}

#[test]
fn a_stuck_log_file_of_one_component_does_not_hold_up_acknowledging_another() {
    let redis = Redis::start();
    // Component h on stream "stuck", one at a time; g on "fine".
    let text = [
        v2_head("app", &redis.url()),
        wagi_trigger("stream", "stuck", "h"),
        "max_concurrency = 1\n".into(),
        wagi_trigger("stream", "fine", "g"),
        v2_component("h", fixture("stream.wat").display()),
        v2_component("g", fixture("stream.wat").display()),
    ]
    .concat();
    let (_d, m) = manifest(&text);
    // h's stdout log is a pipe nobody reads: once its buffer (64 KiB) is
    // full, every write or flush of that file blocks, as on a hung disk.
    // (h's own handler then blocks one handler thread, which is why h runs
    // one at a time: g's handlers run on the other; there is one per core.)
    let logs = tempfile::tempdir().unwrap();
    let fifo = logs.path().join("h_stdout.txt");
    assert!(
        std::process::Command::new("mkfifo")
            .arg(&fifo)
            .status()
            .unwrap()
            .success()
    );
    // Opened for reading and writing, so that spin-redis can open it for
    // writing; never read.
    let hold = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(&fifo)
        .unwrap();
    let s = SpinRedis::spawn_logging_to(&m, &["-q"], logs.path());
    wait_until("both streams read", || {
        assert!(s.is_running(), "spin-redis exited early:\n{}", s.stderr());
        s.stderr().matches("reading the stream").count() == 2
    });
    // 60 KiB lines: two fill the pipe and the file's buffer.
    let big: Vec<String> = (0..4)
        .map(|i| format!("{i}{}", "x".repeat(60 << 10)))
        .collect();
    add_all(&redis, "stuck", &big);
    wait_until("h stuck on its log", || {
        lag_of(&redis, "stuck", "app.h").is_some_and(|l| l <= 2)
    });
    let ids = add_numbered(&redis, "fine", "good", 3);
    wait_until("g's entries handled and acknowledged", || {
        pending_in(&redis, "fine", "app.g") == 0 && lag_of(&redis, "fine", "app.g") == Some(0)
    });
    // g runs its entries at once: in any order.
    let mut g: Vec<String> = attempts(&s.log_text("g_stdout.txt"))
        .into_iter()
        .map(|(id, ..)| id)
        .collect();
    g.sort();
    assert_eq!(
        g,
        ids,
        "g's output reached its log before the acknowledgement:\n{}",
        s.stderr()
    );
    assert!(
        pending_in(&redis, "stuck", "app.h") >= 1,
        "h is still stuck"
    );
    // h cannot finish: killed (on drop), then the pipe is closed.
    drop(s);
    drop(hold);
}

/// The lag of `group` on `stream`.
fn lag_of(redis: &Redis, stream: &str, group: &str) -> Option<i64> {
    let groups: Vec<HashMap<String, redis::Value>> = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(stream)
        .query(&mut redis.connection())
        .unwrap();
    let g = groups
        .iter()
        .find(|g| g.get("name") == Some(&redis::Value::BulkString(group.into())))?;
    match g.get("lag") {
        Some(redis::Value::Int(n)) => Some(*n),
        _ => None,
    }
}

#[test]
fn in_a_cluster_a_refused_acknowledgement_leaves_one_dead_letter_on_one_slot_or_two() {
    let cluster = Cluster::start();
    // "orders" and "orders:dead" hash to different slots (two steps, made
    // idempotent); a hash-tagged key shares its dead-letter stream's slot
    // (one script).
    let split = "orders".to_string();
    assert_ne!(cluster.slot(&split), cluster.slot(&format!("{split}:dead")));
    let tagged = cluster.key_on(1, "tagged");
    assert_eq!(
        cluster.slot(&tagged),
        cluster.slot(&format!("{tagged}:dead"))
    );
    let trigger = |stream: &str| {
        format!(
            "[[trigger.redis]]\nstream = \"{stream}\"\ncluster = true\nmax_deliveries = 1\nclaim_idle = \"2s\"\ncomponent = \"h\"\nexecutor = {{ type = \"wagi\" }}\n"
        )
    };
    let text = format!(
        "spin_manifest_version = 2\n[application]\nname = \"app\"\n[application.trigger.redis]\naddress = \"{}\"\ntimeout = \"1s\"\n{}{}[component.h]\nsource = \"{}\"\n",
        cluster.nodes[0].url(),
        trigger(&split),
        trigger(&tagged),
        fixture("stream.wat").display()
    );
    let (_d, m) = manifest(&text);
    let mut s = SpinRedis::spawn(&m, &["-q"]);
    wait_until("both streams read", || {
        assert!(s.is_running(), "spin-redis exited early:\n{}", s.stderr());
        s.stderr().matches("reading the stream").count() == 2
    });
    let acl = |rule: &str| {
        for n in &cluster.nodes {
            assert!(
                n.cli(&["ACL", "SETUSER", "default", rule])
                    .is_some_and(|o| o.trim() == "OK")
            );
        }
    };
    acl("-xack");
    let mut con = cluster.connection();
    let mut ids = Vec::new();
    for key in [&split, &tagged] {
        let id: String = redis::cmd("XADD")
            .arg(key)
            .arg("*")
            .arg("payload")
            .arg("poison")
            .query(&mut con)
            .unwrap();
        ids.push(id);
    }
    let mut deliveries = |key: &str| -> i64 {
        let v: Vec<(String, String, i64, i64)> = redis::cmd("XPENDING")
            .arg(key)
            .arg(GROUP)
            .arg("-")
            .arg("+")
            .arg(1)
            .query(&mut con)
            .unwrap();
        v.first().map_or(0, |r| r.3)
    };
    wait_until(
        "dead-lettering tried at the failure and two take-overs",
        || deliveries(&split) >= 3 && deliveries(&tagged) >= 3,
    );
    acl("+xack");
    wait_until("both dead-lettered and acknowledged", || {
        deliveries(&split) == 0 && deliveries(&tagged) == 0
    });
    assert!(s.stop().success());
    let mut con = cluster.connection();
    for (key, id) in [&split, &tagged].into_iter().zip(&ids) {
        let dead: Vec<(String, HashMap<String, String>)> = redis::cmd("XRANGE")
            .arg(format!("{key}:dead"))
            .arg("-")
            .arg("+")
            .query(&mut con)
            .unwrap();
        assert_eq!(dead.len(), 1, "{key}: one dead letter: {dead:?}");
        assert_eq!(dead[0].1["dead_letter_id"], *id);
        assert_eq!(dead[0].1["dead_letter_stream"], *key);
    }
}
