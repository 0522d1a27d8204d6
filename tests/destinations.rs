//! Issue 17, one reading of a destination: a hostile component
//! (tests/guests/rust-destinations) sends outbound HTTP and Redis to URLs its
//! payload chooses, run with `spin-redis invoke`. What it must not reach is
//! a real server on loopback that counts what it gets: an HTTP server behind
//! zone-id and `@` URLs, and a real redis-server that a fake "cluster" node
//! (an allowed address that answers `INFO` with `cluster_enabled:1`,
//! `CLUSTER SLOTS`/`SHARDS`/`NODES` naming the real server, and `MOVED` to
//! every key) points at.

use crate::support::*;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn destinations_guest() -> PathBuf {
    guest("rust-destinations")
}

/// A manifest with component `d` (the hostile guest) allowed `allowed`.
fn app(allowed: &[String]) -> (tempfile::TempDir, PathBuf) {
    let allowed: Vec<String> = allowed.iter().map(|a| format!("{a:?}")).collect();
    manifest(
        &[
            v2_head("destinations", "redis://127.0.0.1:1"),
            v2_trigger("channel", "requests", "d"),
            v2_component("d", destinations_guest().display()),
            format!("allowed_outbound_hosts = [{}]\n", allowed.join(", ")),
        ]
        .concat(),
    )
}

/// Runs the guest once on `payload`; its one line of stdout.
fn invoke(manifest: &std::path::Path, payload: &str) -> String {
    let (code, out, err) = invoke_with(manifest, "d", &["--payload", payload]);
    assert_eq!(code, 0, "{payload}:\n{out}\n{err}");
    out.trim().to_string()
}

/// An HTTP server on loopback that counts every connection it accepts and
/// answers each request 200.
struct CountingServer {
    port: u16,
    accepted: Arc<AtomicUsize>,
}

impl CountingServer {
    fn start() -> CountingServer {
        let v4 = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = v4.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let mut listeners = vec![v4];
        // `[::1%1]` goes to IPv6 loopback: listen there too where the
        // machine has it (the IPv4-mapped addresses reach the IPv4 one).
        if let Ok(v6) = TcpListener::bind(("::1", port)) {
            listeners.push(v6);
        }
        for listener in listeners {
            let accepted = accepted.clone();
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    let Ok(mut stream) = stream else { continue };
                    accepted.fetch_add(1, Ordering::SeqCst);
                    std::thread::spawn(move || {
                        let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                        let mut r = BufReader::new(stream.try_clone().unwrap());
                        let mut line = String::new();
                        while r.read_line(&mut line).is_ok_and(|n| n > 0) {
                            if line == "\r\n" {
                                break;
                            }
                            line.clear();
                        }
                        let _ = stream.write_all(
                            b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
                        );
                    });
                }
            });
        }
        CountingServer { port, accepted }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

#[test]
fn zone_id_and_at_sign_urls_are_invalid_and_never_reach_a_loopback_server() {
    let server = CountingServer::start();
    let port = server.port;
    // The control: an allowed loopback origin is reached (so the count is
    // real), once.
    let (_c, control) = app(&[format!("http://127.0.0.1:{port}")]);
    assert_eq!(
        invoke(&control, &format!("http http://127.0.0.1:{port}/ok")),
        "http 200"
    );
    assert_eq!(server.accepted(), 1);

    // Allowed only allowed.example.com; each URL connects to loopback.
    let (_d, m) = app(&[
        "http://allowed.example.com".into(),
        "redis://allowed.example.com".into(),
    ]);
    for url in [
        format!("http://[::ffff:127.0.0.1%0]:{port}/zone?@allowed.example.com"),
        format!("http://[::1%1]:{port}/@allowed.example.com/"),
        format!("http://[::ffff:127.0.0.1%25lo]:{port}/?@allowed.example.com"),
    ] {
        assert_eq!(
            invoke(&m, &format!("http {url}")),
            "http error invalid-url",
            "{url}"
        );
    }
    // User information in an HTTP URL: `url` and the connection would read
    // the host differently.
    assert_eq!(
        invoke(
            &m,
            &format!("http http://allowed.example.com@127.0.0.1:{port}/")
        ),
        "http error invalid-url"
    );
    // An `@` in the path is data: the host is loopback, which is checked
    // (and refused), not allowed.example.com.
    assert_eq!(
        invoke(
            &m,
            &format!("http http://127.0.0.1:{port}/@allowed.example.com/")
        ),
        "http error destination-not-allowed"
    );
    // wasi:http: the authority as the guest set it.
    for authority in [
        format!("[::ffff:127.0.0.1%0]:{port}"),
        format!("allowed.example.com@127.0.0.1:{port}"),
    ] {
        let out = invoke(&m, &format!("wasi-http http {authority}"));
        assert!(
            out == "wasi-http error ErrorCode::HttpRequestUriInvalid"
                || out == "wasi-http error the authority was refused by set-authority",
            "{authority}: {out}"
        );
    }
    // Outbound Redis with the same tricks: invalid-address (the
    // unversioned interface has only `error`).
    let out = invoke(
        &m,
        &format!("redis2 redis://[::ffff:127.0.0.1%0]:{port}/?@allowed.example.com k"),
    );
    assert_eq!(out, "redis2 error invalid-address");
    let out = invoke(
        &m,
        &format!("redis1 redis://[::1%1]:{port}/@allowed.example.com k"),
    );
    assert_eq!(out, "redis1 error error");
    assert_eq!(server.accepted(), 1, "nothing but the control got through");
}

/// A fake Redis "cluster node" on loopback: every connection gets
/// `cluster_enabled:1` from `INFO`, a slot map that puts every slot on
/// `target`, and `MOVED` to `target` for every key command. It records
/// each command it is sent.
struct FakeClusterNode {
    port: u16,
    commands: Arc<Mutex<Vec<String>>>,
}

impl FakeClusterNode {
    fn start(target: u16) -> FakeClusterNode {
        let (port, commands) = serve_loopback(move |stream, log| serve_fake(stream, target, log));
        FakeClusterNode { port, commands }
    }

    fn commands(&self) -> Vec<String> {
        self.commands.lock().unwrap().clone()
    }
}

fn bulk(s: &str) -> String {
    format!("${}\r\n{s}\r\n", s.len())
}

fn serve_fake(stream: TcpStream, target: u16, log: &Mutex<Vec<String>>) {
    let id = "f".repeat(40);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let mut r = BufReader::new(stream.try_clone().unwrap());
    let mut w = stream;
    // Each request is an array of bulk strings (redis-rs sends no inline
    // commands).
    let line = |r: &mut BufReader<TcpStream>| -> Option<String> {
        let mut l = String::new();
        (r.read_line(&mut l).ok()? > 0).then(|| l.trim_end().to_string())
    };
    while let Some(head) = line(&mut r) {
        let Some(n) = head.strip_prefix('*').and_then(|n| n.parse::<usize>().ok()) else {
            return;
        };
        let mut args = Vec::new();
        for _ in 0..n {
            let Some(len) = line(&mut r).and_then(|l| l.strip_prefix('$')?.parse::<usize>().ok())
            else {
                return;
            };
            let mut data = vec![0; len + 2];
            if r.read_exact(&mut data).is_err() {
                return;
            }
            data.truncate(len);
            args.push(String::from_utf8_lossy(&data).to_string());
        }
        let name = args
            .first()
            .map(|a| a.to_ascii_uppercase())
            .unwrap_or_default();
        let sub = args
            .get(1)
            .map(|a| a.to_ascii_uppercase())
            .unwrap_or_default();
        log.lock().unwrap().push(args.join(" "));
        let node = format!("*3\r\n{}:{target}\r\n{}", bulk("127.0.0.1"), bulk(&id));
        let reply = match (name.as_str(), sub.as_str()) {
            ("PING", _) => "+PONG\r\n".to_string(),
            ("INFO", _) => bulk("# Cluster\r\ncluster_enabled:1\r\n"),
            ("CLUSTER", "SLOTS") => format!("*1\r\n*3\r\n:0\r\n:16383\r\n{node}"),
            ("CLUSTER", "SHARDS") => {
                let fields = [
                    bulk("id"),
                    bulk(&id),
                    bulk("port"),
                    format!(":{target}\r\n"),
                    bulk("ip"),
                    bulk("127.0.0.1"),
                    bulk("endpoint"),
                    bulk("127.0.0.1"),
                    bulk("role"),
                    bulk("master"),
                    bulk("replication-offset"),
                    ":0\r\n".into(),
                    bulk("health"),
                    bulk("online"),
                ];
                format!(
                    "*1\r\n*4\r\n{}*2\r\n:0\r\n:16383\r\n{}*1\r\n*{}\r\n{}",
                    bulk("slots"),
                    bulk("nodes"),
                    fields.len(),
                    fields.concat()
                )
            }
            ("CLUSTER", "NODES") => bulk(&format!(
                "{id} 127.0.0.1:{target}@{} myself,master - 0 0 1 connected 0-16383\n",
                u32::from(target) + 10000
            )),
            ("CLIENT" | "SELECT" | "READONLY" | "AUTH", _) => "+OK\r\n".to_string(),
            ("HELLO", _) => "-ERR unknown command 'HELLO'\r\n".to_string(),
            // Every key lives on `target`.
            _ => format!("-MOVED 1 127.0.0.1:{target}\r\n"),
        };
        if w.write_all(reply.as_bytes()).is_err() {
            return;
        }
    }
}

#[test]
fn a_server_claiming_to_be_a_cluster_cannot_steer_outbound_redis_elsewhere() {
    // The real server the fake node points at: not allowed.
    let hidden = Redis::start();
    let fake = FakeClusterNode::start(hidden.port);
    let (_d, m) = app(&[format!("redis://127.0.0.1:{}", fake.port)]);
    let address = format!("redis://127.0.0.1:{}", fake.port);
    // The guest sees the redirect as an error (the unversioned interface
    // has only `error`); nothing followed it.
    let out = invoke(&m, &format!("redis2 {address} steered"));
    assert!(
        out.starts_with("redis2 error other: Moved:") && out.contains("does not follow"),
        "{out}"
    );
    let out = invoke(&m, &format!("redis1 {address} steered"));
    assert_eq!(out, "redis1 error error");
    assert_eq!(
        hidden.cli(&["EXISTS", "steered"]).unwrap().trim(),
        "0",
        "the guest's INCR ran on a server it may not reach"
    );
    let seen = fake.commands();
    let incrs = seen.iter().filter(|c| c.starts_with("INCR ")).count();
    assert_eq!(incrs, 2, "each INCR went to the allowed address: {seen:?}");
    assert!(
        !seen
            .iter()
            .any(|c| c.to_ascii_uppercase().starts_with("CLUSTER")),
        "no slot map was asked for: {seen:?}"
    );
}
