//! The operations surface against real redis-servers: `check`, the
//! Prometheus `/metrics` scrape and the `/healthz` and `/readyz` probes
//! across a Redis outage, `--log-format json`, and OpenTelemetry spans
//! received by a tiny OTLP/HTTP receiver started by the test.

use crate::support;
use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use support::*;

/// A v1 manifest of compat components `(id, fixture, channel)` at `url`.
fn compat(url: &str, components: &[(&str, &str, &str)]) -> String {
    v1_fixtures(Some("ops"), url, components, "")
}

#[test]
fn check_prints_one_line_per_trigger_fills_the_cache_and_never_connects() {
    // The address holds a password and points nowhere: check must neither
    // connect nor show the password.
    let text = compat(
        "redis://alice:hunter2@127.0.0.1:1",
        &[("echo", "echo.wat", "one"), ("envy", "env.wat", "two")],
    );
    let (dir, m) = manifest(&text);
    let cache = dir.path().join("cache");
    let env = [("SPIN_REDIS_CACHE_DIR", cache.to_str().unwrap())];
    let (code, out, err) = run_with_env(&["check", "-f", m.to_str().unwrap()], &env);
    assert_eq!(code, 0, "{out}{err}");
    let lines: Vec<&str> = out.lines().filter(|l| l.starts_with("channel ")).collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert!(
        lines[0].contains("\"one\"")
            && lines[0].contains("\"echo\"")
            && lines[0].contains("wagi")
            && lines[0].contains("redis://127.0.0.1:1"),
        "{out}"
    );
    assert!(
        out.contains("ok: 2 trigger(s), 2 component(s) ready"),
        "{out}"
    );
    assert!(
        !out.contains("hunter2") && !err.contains("hunter2"),
        "{out}{err}"
    );
    assert!(err.contains("cache=miss"), "{err}");
    // The cache is filled: a second check compiles nothing.
    let (code, _, err) = run_with_env(&["check", "-f", m.to_str().unwrap()], &env);
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("cache=hit") && !err.contains("cache=miss"),
        "{err}"
    );
}

#[test]
fn check_lists_every_broken_component_not_only_the_first() {
    let (dir, m) = manifest("");
    std::fs::write(dir.path().join("garbage.wasm"), b"not wasm at all").unwrap();
    let text = format!(
        "spin_manifest_version = \"1\"\nname = \"broken\"\ntrigger = {{ type = \"redis\", address = \"redis://127.0.0.1:1\" }}\n\
         [[component]]\nid = \"good\"\nsource = \"{}\"\n[component.trigger]\nchannel = \"a\"\nexecutor = {{ type = \"wagi\" }}\n\
         [[component]]\nid = \"junk\"\nsource = \"garbage.wasm\"\n[component.trigger]\nchannel = \"b\"\nexecutor = {{ type = \"wagi\" }}\n\
         [[component]]\nid = \"noentry\"\nsource = \"{}\"\n[component.trigger]\nchannel = \"c\"\nexecutor = {{ type = \"wagi\" }}\n",
        fixture("echo.wat").display(),
        fixture("noentry.wat").display()
    );
    std::fs::write(&m, text).unwrap();
    let (code, out, err) = run(&["check", "-f", m.to_str().unwrap()]);
    assert_eq!(code, 2, "{out}{err}");
    let problems: Vec<&str> = err.lines().filter(|l| l.starts_with("problem:")).collect();
    assert_eq!(problems.len(), 2, "{err}");
    assert!(
        problems[0].contains("\"junk\"") && problems[0].contains("garbage.wasm"),
        "{err}"
    );
    assert!(
        problems[1].contains("\"noentry\"") && problems[1].contains("noentry.wat"),
        "{err}"
    );
    assert!(err.contains("2 problem(s) found"), "{err}");
    // The good one is still described.
    assert!(out.contains("\"good\": wagi"), "{out}");
}

#[test]
fn metrics_count_known_traffic_and_readyz_follows_redis() {
    let mut redis = Redis::start();
    let port = free_port();
    let text = compat(
        &redis.url(),
        &[("echo", "echo.wat", "good"), ("sad", "exit7.wat", "bad")],
    );
    let (_d, m) = manifest(&text);
    let addr = format!("127.0.0.1:{port}");
    let mut s = SpinRedis::up(&redis, &m, &["--metrics", &addr], &["good", "bad"]);
    wait_until("/readyz is 200", || {
        http_get(port, "/readyz").is_some_and(|(status, _)| status == 200)
    });
    assert_eq!(http_get(port, "/healthz").map(|r| r.0), Some(200));
    for i in 0..3 {
        redis.publish("good", format!("m{i}").as_bytes());
    }
    for _ in 0..2 {
        redis.publish("bad", b"x");
    }
    let ok = "spin_redis_deliveries_total{component=\"echo\",source=\"good\",outcome=\"ok\"}";
    let failed = "spin_redis_deliveries_total{component=\"sad\",source=\"bad\",outcome=\"failed\"}";
    wait_until("the counters to reach 3 ok and 2 failed", || {
        let m = scrape(port);
        m.get(ok) == Some(&3.0) && m.get(failed) == Some(&2.0)
    });
    let m = scrape(port);
    assert_eq!(
        m.get("spin_redis_handler_duration_seconds_count{component=\"echo\"}"),
        Some(&3.0)
    );
    assert_eq!(
        m.get("spin_redis_deliveries_total{component=\"echo\",source=\"good\",outcome=\"failed\"}"),
        Some(&0.0)
    );
    let up = format!("spin_redis_redis_up{{address=\"{}\"}}", redis.plain_url());
    assert_eq!(m.get(&up), Some(&1.0), "{m:?}");
    let depth = "spin_redis_queue_depth{component=\"echo\",source=\"good\"}";
    assert_eq!(m.get(depth), Some(&0.0), "{m:?}");

    // Redis goes away: not ready, and the gauge says so; back: ready again.
    redis.stop();
    wait_until("/readyz is 503 while redis is down", || {
        http_get(port, "/readyz").is_some_and(|(status, _)| status == 503)
    });
    let (_, why) = http_get(port, "/readyz").unwrap();
    assert!(why.contains(&redis.plain_url()), "{why}");
    assert_eq!(scrape(port).get(&up), Some(&0.0));
    assert_eq!(http_get(port, "/healthz").map(|r| r.0), Some(200));
    redis.restart(&[]);
    wait_until("/readyz is 200 again", || {
        http_get(port, "/readyz").is_some_and(|(status, _)| status == 200)
    });
    let m = scrape(port);
    assert_eq!(m.get(&up), Some(&1.0));
    let reconnects = format!(
        "spin_redis_reconnects_total{{address=\"{}\"}}",
        redis.plain_url()
    );
    assert_eq!(m.get(&reconnects), Some(&1.0), "{m:?}");
    assert!(s.stop().success());
}

#[test]
fn json_logs_are_one_object_per_line_with_the_delivery_fields() {
    let redis = Redis::start();
    let text = compat(&redis.url(), &[("sad", "exit7.wat", "bad")]);
    let (_d, m) = manifest(&text);
    let mut s = SpinRedis::up(&redis, &m, &["--log-format", "json", "-q"], &["bad"]);
    redis.publish("bad", b"x");
    s.wait_stderr("handler failed");
    let err = s.stop_ok();
    let mut failed = None;
    for line in err.lines() {
        let v: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON object ({e}): {line:?}\nall:\n{err}"));
        assert!(
            v["timestamp"].is_string() && v["level"].is_string(),
            "{line}"
        );
        assert!(v["message"].is_string(), "{line}");
        if v["message"] == "handler failed" {
            failed = Some(v);
        }
    }
    let f = failed.unwrap_or_else(|| panic!("no failure line in:\n{err}"));
    assert_eq!(f["component"], "sad");
    assert_eq!(f["channel"], "bad");
    assert_eq!(f["outcome"], "failed");
    assert!(f["duration_ms"].is_number(), "{f}");
    assert!(
        f["reason"].as_str().unwrap().contains("exited with code 7"),
        "{f}"
    );
    assert!(err.contains("\"message\":\"stopped\""), "{err}");
}

/// What the receiver got: (path, body) per request.
type Received = Arc<Mutex<Vec<(String, Vec<u8>)>>>;

/// A tiny OTLP/HTTP receiver: accepts POSTs, answers 200, keeps the bodies.
fn otlp_receiver() -> (u16, Received) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let got = Arc::new(Mutex::new(Vec::new()));
    let keep = got.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let keep = keep.clone();
            std::thread::spawn(move || serve_one(stream, &keep));
        }
    });
    (port, got)
}

fn serve_one(mut s: TcpStream, keep: &Mutex<Vec<(String, Vec<u8>)>>) {
    loop {
        // Headers, then a body of Content-Length bytes.
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            match s.read(&mut byte) {
                Ok(1) => head.push(byte[0]),
                _ => return,
            }
        }
        let head = String::from_utf8_lossy(&head).to_string();
        let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
        let len: usize = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .unwrap_or(0);
        let mut body = vec![0u8; len];
        if s.read_exact(&mut body).is_err() {
            return;
        }
        keep.lock().unwrap().push((path, body));
        let reply =
            "HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\n\r\n";
        if s.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}

#[test]
fn with_an_otlp_endpoint_every_delivery_is_a_consumer_span() {
    let redis = Redis::start();
    let (port, got) = otlp_receiver();
    let text = compat(&redis.url(), &[("echo", "echo.wat", "traced")]);
    let (_d, m) = manifest(&text);
    let endpoint = format!("http://127.0.0.1:{port}");
    let mut s = SpinRedis::up_with_env(
        &redis,
        &m,
        &["-q"],
        &[("OTEL_EXPORTER_OTLP_ENDPOINT", &endpoint)],
        &["traced"],
    );
    redis.publish("traced", b"one");
    redis.publish("traced", b"two");
    s.wait_log("echo_stdout.txt", "two");
    // The batch goes out on its schedule or, at the latest, at shutdown.
    assert!(s.stop().success());
    wait_until("spans at /v1/traces", || {
        got.lock().unwrap().iter().any(|(p, _)| p == "/v1/traces")
    });
    let bodies: Vec<u8> = got
        .lock()
        .unwrap()
        .iter()
        .filter(|(p, _)| p == "/v1/traces")
        .flat_map(|(_, b)| b.clone())
        .collect();
    let count = |needle: &[u8]| {
        bodies
            .windows(needle.len())
            .filter(|w| *w == needle)
            .count()
    };
    // Protobuf keeps strings as they are: two spans named "traced receive",
    // each with messaging.system = redis and its outcome.
    assert_eq!(
        count(b"traced receive"),
        2,
        "{:?}",
        String::from_utf8_lossy(&bodies)
    );
    assert!(count(b"messaging.system") >= 2);
    assert!(count(b"spin_redis.outcome") >= 2);
    assert!(count(b"spin-redis") >= 1, "service name");
}

#[test]
fn preparing_is_announced_on_a_terminal_only() {
    let text = compat("redis://127.0.0.1:1", &[("echo", "echo.wat", "one")]);
    let (_d, m) = manifest(&text);
    // Not a terminal: nothing but the log line.
    let (code, _, err) = run(&["check", "-f", m.to_str().unwrap()]);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("preparing \"echo\""), "{err}");
    // A pseudo-terminal (util-linux `script`): announced.
    let cmd = format!(
        "{} check -f {}",
        env!("CARGO_BIN_EXE_spin-redis"),
        m.display()
    );
    let out = std::process::Command::new("script")
        .args(["-qec", &cmd, "/dev/null"])
        .env("SPIN_REDIS_LOG", "info")
        .output()
        .expect("script(1) from util-linux");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("preparing \"echo\""), "{text}");
}
