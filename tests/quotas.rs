//! Quotas per component and per trigger, and host memory bounded by
//! settings, end to end: the real binary against a real redis-server, with
//! WAT fixtures and the test guest `tests/guests/rust-host-quotas` (a
//! component that asks the host APIs for more than it may have; built by
//! `bash tests/guests/build.sh`).
//!
//! Each test checks that what one component or channel does cannot take
//! from another, and that a reply past its cap is refused with an error
//! naming the cap. Time and memory are measured and printed, never
//! asserted.

use crate::support;
use std::path::PathBuf;
use support::*;

fn quota_guest() -> PathBuf {
    guest("rust-host-quotas")
}

/// A version 2 manifest: each `(id, channel, source, extra)` is a
/// component bound to its channel, `extra` more lines of its table.
fn app(redis: &Redis, components: &[(&str, &str, PathBuf, String)]) -> String {
    let mut m = format!(
        "spin_manifest_version = 2\n[application]\nname = \"quotas\"\n[application.trigger.redis]\naddress = \"{}\"\n",
        redis.plain_url()
    );
    for (id, channel, source, extra) in components {
        m.push_str(&format!(
            "\n[[trigger.redis]]\nchannel = \"{channel}\"\ncomponent = \"{id}\"\n\n[component.{id}]\nsource = \"{}\"\n{extra}\n",
            source.display()
        ));
    }
    m
}

/// The peak resident memory of a process, from /proc (for the record).
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

// ---- queued memory: a guaranteed share per trigger ----

/// `spin-redis up` with two C sleepers (`tests/guests/c-sleep`) that never
/// finish during the test, and the echo fixture on "idle".
fn hung_app(redis: &Redis, sleepers: &[(&str, &str)]) -> (tempfile::TempDir, PathBuf) {
    let sleep = guest("c-sleep");
    let mut text = v1_head(None, &redis.url());
    for (id, channel) in sleepers {
        text.push_str(&v1_component(id, &sleep, channel, "wagi"));
    }
    text.push_str(&v1_component("echo", &fixture("echo.wat"), "idle", "wagi"));
    manifest(&text)
}

#[test]
fn a_hung_channel_never_makes_an_idle_channel_drop() {
    let redis = Redis::start();
    let (_d, m) = hung_app(&redis, &[("sleeper", "hung")]);
    // 64 KiB for two triggers: 16 KiB reserved each, 32 KiB shared. One
    // message runs per trigger, the rest wait in the queue.
    let mut s = up_hung(&redis, &m, "2", &["hung", "idle"]);
    publish_30(&redis, &s, "hung", "the 30 hung messages received");
    let err = s.stderr();
    assert!(
        err.contains("message dropped") && err.contains("component=sleeper channel=hung"),
        "the hung channel's backlog outgrew its share and the pool:\n{err}"
    );
    // The idle channel's messages, as large as the hung one's (so they
    // cannot slip into what the hung backlog left of a shared budget), fit
    // in its own share.
    for i in 0..3 {
        let mut p = format!("idle-{i}:").into_bytes();
        p.resize(4000, b'i');
        redis.publish("idle", &p);
    }
    wait_for(&s, "the three idle messages handled", || {
        s.log_text("echo_stdout.txt").lines().count() == 3
    });
    let out = s.log_text("echo_stdout.txt");
    for (i, line) in out.lines().enumerate() {
        assert!(line.starts_with(&format!("idle-{i}:")), "{line}");
    }
    assert!(
        !s.stderr()
            .lines()
            .any(|l| l.contains("message dropped") && l.contains("component=echo")),
        "no drop on the idle channel:\n{}",
        s.stderr()
    );
    assert!(s.stop().success(), "{}", s.stderr());
}

/// `spin-redis up` on a [`hung_app`]: handlers that never finish within
/// the test, `max_concurrency` of them at once, 64 KiB of queued messages,
/// and every received message logged (for [`received`]).
fn up_hung(redis: &Redis, m: &std::path::Path, max_concurrency: &str, ready: &[&str]) -> SpinRedis {
    SpinRedis::up_with_env(
        redis,
        m,
        &[
            "--timeout",
            "1h",
            "--drain-timeout",
            "1s",
            "--max-concurrency",
            max_concurrency,
            "--max-queued-bytes",
            "64KiB",
            "-q",
        ],
        &[("SPIN_REDIS_LOG", TRACE_RECEIVED)],
        ready,
    )
}

/// Publishes 30 messages of 4000 bytes on `channel` and waits until the
/// dispatcher has received them all.
fn publish_30(redis: &Redis, s: &SpinRedis, channel: &str, what: &str) {
    let payload = vec![b'x'; 4000];
    for _ in 0..30 {
        redis.publish(channel, &payload);
    }
    wait_for(s, what, || received(&s.stderr(), channel) == 30);
}

#[test]
fn every_trigger_that_drops_says_so_in_its_own_line() {
    let redis = Redis::start();
    let (_d, m) = hung_app(&redis, &[("first", "one"), ("second", "two")]);
    let mut s = up_hung(&redis, &m, "3", &["one", "two"]);
    publish_30(&redis, &s, "one", "the 30 messages on one received");
    publish_30(&redis, &s, "two", "the 30 messages on two received");
    let err = s.stderr();
    for at in [
        "component=first channel=one",
        "component=second channel=two",
    ] {
        assert!(
            err.lines()
                .any(|l| l.contains("message dropped") && l.contains(at)),
            "a drop line for {at}:\n{err}"
        );
    }
    assert!(s.stop().success(), "{}", s.stderr());
    let err = s.stderr();
    let line = err
        .lines()
        .find(|l| l.starts_with("spin-redis: received"))
        .unwrap_or_else(|| panic!("no summary:\n{err}"));
    assert!(line.contains("received 60,"), "{line}");
    assert!(!line.contains("dropped 0,"), "drops are counted: {line}");
}

// ---- outbound Redis: pooled and dedicated connections per component ----

fn redis_grants(redis: &Redis) -> String {
    let port = redis.plain_url().rsplit(':').next().unwrap().to_string();
    format!(
        "allowed_outbound_hosts = [\"redis://127.0.0.1:{port}\", \"redis://localhost:{port}\", \"redis://127.0.0.1:1\"]\nkey_value_stores = [\"big\"]\n"
    )
}

fn quota_app(redis: &Redis) -> (tempfile::TempDir, PathBuf, String) {
    let grants = redis_grants(redis);
    let (d, m) = manifest(&app(
        redis,
        &[
            ("a", "a", quota_guest(), grants.clone()),
            ("b", "b", quota_guest(), grants),
        ],
    ));
    // An operator's Redis store on database 3.
    let rc = redis_store_config(d.path(), "big", &format!("{}/3", redis.plain_url()));
    let rc = rc.to_str().unwrap().to_string();
    (d, m, rc)
}

/// [`quota_app`] running: its runtime config given, a long deadline, quiet.
fn up_quota_app(redis: &Redis) -> (tempfile::TempDir, SpinRedis) {
    let (d, m, rc) = quota_app(redis);
    let flags = ["--runtime-config-file", &rc, "--timeout", "2m", "-q"];
    (d, SpinRedis::up(redis, &m, &flags, &["a", "b"]))
}

#[test]
fn one_component_cannot_use_up_the_outbound_redis_pool() {
    let redis = Redis::start_with(&["--databases", "32"]);
    let (_d, mut s) = up_quota_app(&redis);
    let url = redis.plain_url();
    let localhost = url.replace("127.0.0.1", "localhost");
    // 80 spellings of one address are one pooled connection.
    redis.publish("a", format!("open {url}/ 80").as_bytes());
    s.wait_log("a_stdout.txt", "opened 80 of 80\n");
    // So another component can still open a new address.
    redis.publish("b", format!("open {localhost}/ 1").as_bytes());
    s.wait_log("b_stdout.txt", "opened 1 of 1\n");
    // Connects that fail leave nothing behind: 17 dead addresses, then the
    // component's whole quota of live ones, one more refused.
    redis.publish("a", b"opendbs redis://127.0.0.1:1 17");
    s.wait_log("a_stdout.txt", "opened 0 of 17\n");
    redis.publish("a", format!("opendbs {url} 17").as_bytes());
    s.wait_log("a_stdout.txt", "opened 16 of 17\n");
    assert!(
        s.log_text("a_stdout.txt")
            .contains("error x1: Error::TooManyConnections\n"),
        "{}",
        s.log_text("a_stdout.txt")
    );
    // Its quota is its own: b opens 16 databases too, and the operator's
    // store is never counted against a.
    redis.publish("b", format!("opendbs {localhost} 16").as_bytes());
    s.wait_log("b_stdout.txt", "opened 16 of 16\n");
    redis.publish("a", b"keys big");
    s.wait_log("a_stdout.txt", "keys: 0\n");
    assert!(s.stop().success(), "{}", s.stderr());
}

#[test]
fn one_component_cannot_hold_every_dedicated_redis_connection() {
    let redis = Redis::start();
    let (_d, mut s) = up_quota_app(&redis);
    let url = redis.plain_url();
    // a asks for 64 dedicated connections and holds what it got for 20 s.
    // (Its output reaches its log when its message ends: the server's
    // client count shows the hold.)
    let clients = || -> usize {
        redis
            .cli(&["INFO", "clients"])
            .and_then(|info| {
                info.lines()
                    .find_map(|l| l.strip_prefix("connected_clients:"))
                    .and_then(|n| n.trim().parse().ok())
            })
            .unwrap_or(0)
    };
    let before = clients();
    redis.publish("a", format!("dedicated {url} 64 20").as_bytes());
    wait_for(&s, "a to hold its 16 dedicated connections", || {
        clients() >= before + 16
    });
    // While a holds its 16, b gets its own.
    redis.publish("b", format!("dedicated {url} 2 0").as_bytes());
    s.wait_log("b_stdout.txt", "dedicated 2 of 2\n");
    assert!(
        s.log_text("a_stdout.txt").is_empty(),
        "a still held its connections when b got its own"
    );
    s.wait_log("a_stdout.txt", "released\n");
    let out = s.log_text("a_stdout.txt");
    assert!(
        out.starts_with("dedicated 16 of 64\nerror x48: Error::TooManyConnections\n"),
        "{out}"
    );
    assert!(s.stop().success(), "{}", s.stderr());
}

// ---- host memory: replies, listings ----

#[test]
fn replies_and_listings_past_their_caps_are_refused_naming_the_cap() {
    let redis = Redis::start();
    let mut c = redis.connection();
    // 1.1 million one-byte elements: more than 16 MiB once counted with the
    // per-value overhead, which LLEN tells before anything is read.
    let items: Vec<&str> = vec!["x"; 10_000];
    for _ in 0..110 {
        redis::cmd("RPUSH")
            .arg("long")
            .arg(&items)
            .query::<()>(&mut c)
            .unwrap();
    }
    // Twenty 1 MiB values: LLEN says 20, the reply is 20 MiB: measured.
    let mb = vec![b'y'; 1 << 20];
    for _ in 0..20 {
        redis::cmd("RPUSH")
            .arg("fat")
            .arg(&mb)
            .query::<()>(&mut c)
            .unwrap();
    }
    // A 17 MiB string: STRLEN says so first.
    redis::cmd("SET")
        .arg("huge")
        .arg(vec![b'z'; 17 << 20])
        .query::<()>(&mut c)
        .unwrap();
    // The operator's store (database 3) with one key more than a listing
    // may hold.
    redis::cmd("SELECT").arg(3).query::<()>(&mut c).unwrap();
    let mut pipe = redis::pipe();
    for i in 0..10_001 {
        pipe.cmd("SET").arg(format!("k{i}")).arg(1).ignore();
    }
    pipe.query::<()>(&mut c).unwrap();

    let (_d, mut s) = up_quota_app(&redis);
    let url = redis.plain_url();
    let before = peak_rss_kib(s.pid());
    for (request, expect) in [
        (
            format!("exec {url} LRANGE long 0 -1"),
            "exec error: Error::Other(",
        ),
        (
            format!("exec {url} LRANGE long 0 9"),
            "exec: 10 results, 10 bytes",
        ),
        (
            format!("exec {url} LRANGE fat 0 -1"),
            "exec error: Error::Other(",
        ),
        (format!("get {url} huge"), "get error: Error::Other("),
        (format!("exec {url} GET huge"), "exec error: Error::Other("),
        ("keys big".to_string(), "keys error: Error::Other("),
    ] {
        let before_len = s.log_text("a_stdout.txt").lines().count();
        redis.publish("a", request.as_bytes());
        wait_for(&s, &format!("an answer to {request:?}"), || {
            s.log_text("a_stdout.txt").lines().count() > before_len
        });
        let out = s.log_text("a_stdout.txt");
        let line = out.lines().nth(before_len).unwrap().to_string();
        assert!(line.starts_with(expect), "{request}: {line}");
        if expect.contains("error") {
            let cap = if request.starts_with("keys") {
                "cap of 10000 keys per listing"
            } else {
                "cap of 16 MiB per reply"
            };
            assert!(line.contains(cap), "{request}: {line}");
        }
    }
    eprintln!(
        "peak RSS of spin-redis: {before:?} KiB before the requests, {:?} KiB after",
        peak_rss_kib(s.pid())
    );
    assert!(s.stop().success(), "{}", s.stderr());
}

// ---- instance-pool slots ----

#[test]
fn a_component_needing_more_than_a_slots_share_is_refused_at_start_up() {
    let (_d, m) = manifest(&format!(
        "spin_manifest_version = \"1\"\ntrigger = {{ type = \"redis\", address = \"redis://127.0.0.1:1\" }}\n[[component]]\nid = \"greedy\"\nsource = \"{}\"\n[component.trigger]\nchannel = \"c\"\n",
        repo()
            .join("tests/fixtures/many-memories-component.wat")
            .display()
    ));
    let (code, _, err) = run(&["up", "-f", m.to_str().unwrap(), "--no-cache"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("\"greedy\"")
            && err.contains("one handler slot's share")
            && err.contains("5 Wasm linear memories"),
        "{err}"
    );
}

/// A loopback HTTP/1.1 server: `/big` answers 17 MiB, anything else
/// "small". Returns its port; it serves until the test ends.
fn http_server() -> u16 {
    use std::io::{BufRead as _, BufReader, Write as _};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut first = String::new();
                let _ = reader.read_line(&mut first);
                loop {
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                        break;
                    }
                }
                let body = if first.contains(" /big ") {
                    vec![b'b'; 17 << 20]
                } else {
                    b"small".to_vec()
                };
                let head = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                    body.len()
                );
                let _ = stream.write_all(head.as_bytes());
                let _ = stream.write_all(&body);
            });
        }
    });
    port
}

#[test]
fn an_http_body_past_its_cap_is_refused_and_the_cap_is_logged() {
    let redis = Redis::start();
    let port = http_server();
    let grants = format!("allowed_outbound_hosts = [\"http://127.0.0.1:{port}\"]\n");
    let (_d, m) = manifest(&app(&redis, &[("web", "web", quota_guest(), grants)]));
    let mut s = SpinRedis::up(&redis, &m, &["-q"], &["web"]);
    redis.publish(
        "web",
        format!("http http://127.0.0.1:{port}/small").as_bytes(),
    );
    s.wait_log("web_stdout.txt", "http: status 200, 5 bytes\n");
    redis.publish(
        "web",
        format!("http http://127.0.0.1:{port}/big").as_bytes(),
    );
    wait_for(&s, "the big response's answer", || {
        s.log_text("web_stdout.txt").lines().count() == 2
    });
    let out = s.log_text("web_stdout.txt");
    assert!(
        out.ends_with(
            "http error: HttpError { code: 4, name: \"runtime-error\", message: \"\" }\n"
        ),
        "{out}"
    );
    let err = s.stderr();
    assert!(
        err.lines()
            .any(|l| l.contains("fermyon:spin/http response refused")
                && l.contains("component=web")
                && l.contains("cap of 16 MiB per response")),
        "{err}"
    );
    assert!(s.stop().success(), "{}", s.stderr());
}

#[test]
fn the_quotas_and_caps_are_settings() {
    let redis = Redis::start();
    let mut c = redis.connection();
    redis::cmd("SELECT").arg(3).query::<()>(&mut c).unwrap();
    for i in 0..5 {
        redis::cmd("SET")
            .arg(format!("k{i}"))
            .arg(i)
            .query::<()>(&mut c)
            .unwrap();
    }
    let (_d, m, rc) = quota_app(&redis);
    let mut s = SpinRedis::up(
        &redis,
        &m,
        &[
            "--runtime-config-file",
            &rc,
            "--max-redis-addresses",
            "2",
            "--max-host-listing",
            "3",
            "-q",
        ],
        &["a", "b"],
    );
    let url = redis.plain_url();
    redis.publish("a", format!("opendbs {url} 3").as_bytes());
    s.wait_log("a_stdout.txt", "opened 2 of 3\n");
    redis.publish("a", b"keys big");
    s.wait_log("a_stdout.txt", "keys error: Error::Other(");
    let out = s.log_text("a_stdout.txt");
    assert!(
        out.contains("cap of 3 keys per listing (get-keys; --max-host-listing)"),
        "{out}"
    );
    assert!(s.stop().success(), "{}", s.stderr());
}
