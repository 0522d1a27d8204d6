//! Spin's host APIs for components, end to end: the example handlers built
//! with the real SDKs (Rust spin-sdk 5 and 7, Python spin-sdk) under
//! `spin-redis up`, against a real redis-server, a real subscriber and a
//! tiny HTTP server on loopback. Each test writes its own manifest around an
//! example's `handler.wasm`, so that it controls what the component is
//! granted (allowed hosts, stores, variables).
//!
//! The example handlers are built by `bash examples/build.sh` (tests/all.sh
//! runs it first).

use crate::support;
use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::*;

/// A version 2 manifest running `example_name`'s handler as component `id`
/// on channel `channel` of `redis`, with `extra` lines in its component
/// table.
fn app(redis: &Redis, example_name: &str, id: &str, channel: &str, extra: &str) -> String {
    format!(
        "spin_manifest_version = 2\n[application]\nname = \"host-apis\"\n[application.trigger.redis]\naddress = \"{url}\"\n\n[[trigger.redis]]\nchannel = \"{channel}\"\ncomponent = \"{id}\"\n\n[component.{id}]\nsource = \"{source}\"\n{extra}\n",
        url = redis.plain_url(),
        source = example(example_name).display(),
    )
}

/// The component variables every example reads, pointing at `redis`.
fn variables(redis: &Redis, webhook: &str) -> String {
    format!(
        "[component.VARS.variables]\nredis_address = \"{}\"\nresults_channel = \"results\"\nwebhook = \"{webhook}\"\n",
        redis.plain_url()
    )
}

fn grants(id: &str, allowed: &[String], stores: &[&str], vars: &str) -> String {
    let list = |v: &[String]| {
        v.iter()
            .map(|s| format!("{s:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let stores: Vec<String> = stores.iter().map(|s| s.to_string()).collect();
    format!(
        "allowed_outbound_hosts = [{}]\nkey_value_stores = [{}]\n{}",
        list(allowed),
        list(&stores),
        vars.replace("VARS", id)
    )
}

fn get(redis: &Redis, key: &str) -> Option<String> {
    redis::cmd("GET")
        .arg(key)
        .query(&mut redis.connection())
        .unwrap()
}

/// Collects what is published on `channel`, from a real subscriber.
struct Subscriber {
    got: Arc<Mutex<Vec<Vec<u8>>>>,
}

impl Subscriber {
    fn start(redis: &Redis, channel: &str) -> Subscriber {
        let got = Arc::new(Mutex::new(Vec::new()));
        let sink = got.clone();
        let mut con = redis.connection();
        let channel = channel.to_string();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut ps = con.as_pubsub();
            ps.subscribe(&channel).expect("SUBSCRIBE");
            ready_tx.send(()).unwrap();
            // Ends when the server goes away with the test.
            while let Ok(msg) = ps.get_message() {
                sink.lock().unwrap().push(msg.get_payload_bytes().to_vec());
            }
        });
        ready_rx.recv().expect("the subscriber thread subscribed");
        Subscriber { got }
    }

    fn wait_for(&self, payload: &[u8]) {
        wait_until(
            &format!(
                "a subscriber to receive {:?}",
                String::from_utf8_lossy(payload)
            ),
            || self.got.lock().unwrap().iter().any(|p| p == payload),
        );
    }
}

/// A tiny HTTP/1.1 server on loopback recording each request's method,
/// path and body, answering 200 "ok".
/// One request the server saw: method, path, body.
type Request = (String, String, Vec<u8>);

struct HttpServer {
    origin: String,
    requests: Arc<Mutex<Vec<Request>>>,
}

impl HttpServer {
    fn start() -> HttpServer {
        let (port, requests) = serve_loopback(|stream, sink| {
            if let Some(req) = read_request(&stream) {
                sink.lock().unwrap().push(req);
                let mut s = &stream;
                let _ = s.write_all(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-type: text/plain\r\nconnection: close\r\n\r\nok",
                );
            }
        });
        let origin = format!("http://127.0.0.1:{port}");
        HttpServer { origin, requests }
    }

    fn wait_for(&self, method: &str, body: &[u8]) {
        wait_until(
            &format!(
                "the HTTP server to receive {method} {:?}",
                String::from_utf8_lossy(body)
            ),
            || {
                self.requests
                    .lock()
                    .unwrap()
                    .iter()
                    .any(|(m, _, b)| m == method && b == body)
            },
        );
    }

    fn count(&self) -> usize {
        self.requests.lock().unwrap().len()
    }
}

/// Reads one request (head, then a body by content-length or chunked).
fn read_request(stream: &std::net::TcpStream) -> Option<Request> {
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    let mut r = BufReader::new(stream);
    let mut line = String::new();
    r.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let path = parts.next()?.to_string();
    let mut length = 0usize;
    let mut chunked = false;
    loop {
        let mut h = String::new();
        r.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        match k.trim().to_ascii_lowercase().as_str() {
            "content-length" => length = v.trim().parse().ok()?,
            "transfer-encoding" => chunked = v.to_ascii_lowercase().contains("chunked"),
            _ => {}
        }
    }
    let mut body = Vec::new();
    if chunked {
        loop {
            let mut size = String::new();
            r.read_line(&mut size).ok()?;
            let n = usize::from_str_radix(size.trim().split(';').next()?, 16).ok()?;
            let mut chunk = vec![0; n + 2];
            r.read_exact(&mut chunk).ok()?;
            if n == 0 {
                break;
            }
            body.extend_from_slice(&chunk[..n]);
        }
    } else {
        body.resize(length, 0);
        r.read_exact(&mut body).ok()?;
    }
    Some((method, path, body))
}

/// The compiled-code cache the tests of this file share: the Python
/// handler takes many seconds to compile, once.
fn cache_dir() -> &'static str {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().unwrap())
        .path()
        .to_str()
        .unwrap()
}

/// `spin-redis up` on `path` with `extra` flags, once subscribed to every
/// channel in `ready`. Compiling the Python handler on a busy machine may
/// take longer than support's patience, hence a waiting loop of its own.
fn up(redis: &Redis, path: &std::path::Path, extra: &[&str], ready: &[&str]) -> SpinRedis {
    let mut args = vec!["--cache-dir", cache_dir()];
    args.extend_from_slice(extra);
    let s = SpinRedis::spawn(path, &args);
    let start = std::time::Instant::now();
    for ch in ready {
        while redis.subscribers(ch) < 1 {
            assert!(s.is_running(), "spin-redis exited early:\n{}", s.stderr());
            assert!(
                start.elapsed() < Duration::from_secs(600),
                "spin-redis did not subscribe to {ch:?}:\n{}",
                s.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    s
}

/// "reverse" (spin-sdk 5) on "names", granted `allowed`, `stores` and
/// `vars` (see [`grants`]).
fn reverse(redis: &Redis, allowed: &[String], stores: &[&str], vars: &str) -> String {
    app(
        redis,
        "spin-sdk5-rust",
        "reverse",
        "names",
        &grants("reverse", allowed, stores, vars),
    )
}

/// "reverse" (spin-sdk 5) on "names", allowed `redis` and the default
/// store, its variables pointing at `redis`.
fn reverse_app(redis: &Redis) -> String {
    let allowed = vec![format!("redis://127.0.0.1:{}", redis.port)];
    reverse(redis, &allowed, &["default"], &variables(redis, ""))
}

/// One more component `id`, `example_name`'s handler, on `channel`, with
/// `extra` lines in its component table (to append to an [`app`]).
fn also(id: &str, channel: &str, example_name: &str, extra: &str) -> String {
    format!(
        "[[trigger.redis]]\nchannel = \"{channel}\"\ncomponent = \"{id}\"\n[component.{id}]\nsource = \"{}\"\n{extra}\n",
        example(example_name).display(),
    )
}

/// "reverse" (spin-sdk 5) on "names" and "summary" (Python) on "events",
/// both granted `allowed`, the default store and `vars`.
fn reverse_and_summary(redis: &Redis, allowed: &[String], vars: &str) -> String {
    let mut m = reverse(redis, allowed, &["default"], vars);
    m.push_str(&also(
        "summary",
        "events",
        "python",
        &grants("summary", allowed, &["default"], vars),
    ));
    m
}

/// Three SDKs, each granted `allowed`, the default store and `vars`: the
/// [`reverse_and_summary`] pair and "words" (spin-sdk 7) on "words".
fn three_sdks(redis: &Redis, allowed: &[String], vars: &str) -> String {
    let mut m = reverse_and_summary(redis, allowed, vars);
    m.push_str(&also(
        "words",
        "words",
        "spin-sdk7-rust",
        &grants("words", allowed, &["default"], vars),
    ));
    m
}

fn occurrences(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

/// Publishes `payload` on "names" and waits until the reverse component's
/// handler failed on it, its stderr saying `why`.
fn reverse_fails(redis: &Redis, s: &SpinRedis, payload: &[u8], why: &str) {
    redis.publish("names", payload);
    s.wait_stderr("handler failed component=reverse channel=names");
    s.wait_log("reverse_stderr.txt", why);
}

#[test]
fn outbound_redis_increments_a_counter_and_publishes_the_result_for_every_sdk() {
    let redis = Redis::start();
    let results = Subscriber::start(&redis, "results");
    let allowed = vec![format!("redis://127.0.0.1:{}", redis.port)];
    let vars = variables(&redis, "");
    // Three SDKs, three interface versions of outbound Redis.
    let m = three_sdks(&redis, &allowed, &vars);
    let (_d, path) = manifest(&m);
    let mut s = up(&redis, &path, &[], &["names", "words", "events"]);

    // spin-sdk 5: fermyon:spin/redis@2.0.0.
    redis.publish("names", b"hello");
    redis.publish("names", b"again");
    s.wait_log("reverse_stdout.txt", "message 2, published to results\n");
    assert_eq!(get(&redis, "reverse:messages").as_deref(), Some("2"));
    results.wait_for(b"olleh");
    results.wait_for(b"niaga");

    // spin-sdk 7: spin:redis/redis@3.0.0 (async).
    redis.publish("words", b"first words here");
    s.wait_log("words_stdout.txt", "message 1, published to results\n");
    assert_eq!(get(&redis, "words:messages").as_deref(), Some("1"));
    results.wait_for(b"first");

    // Python: the unversioned fermyon:spin/redis (an address per call).
    redis.publish("events", br#"{"a": 1}"#);
    s.wait_log(
        "summary_stdout.txt",
        "event 1, 1 of type object; published to results\n",
    );
    assert_eq!(get(&redis, "summary:events").as_deref(), Some("1"));
    results.wait_for(b"object with 1 key: a");

    // A value of the wrong type for INCR is type-error, failing the message.
    redis::cmd("SET")
        .arg("reverse:messages")
        .arg("not a number")
        .query::<()>(&mut redis.connection())
        .unwrap();
    reverse_fails(&redis, &s, b"typed", "TypeError");
    assert!(s.stop().success());
}

#[test]
fn key_value_state_in_sqlite_survives_a_restart_in_spins_own_file_and_table() {
    let redis = Redis::start();
    let m = reverse_app(&redis);
    let (dir, path) = manifest(&m);
    let mut s = up(&redis, &path, &[], &["names"]);
    // One at a time: handlers run concurrently, and a get-then-set from two
    // at once would both see 0 (Spin's key-value has no atomic increment).
    redis.publish("names", b"count:visits");
    s.wait_log("reverse_stdout.txt", "visits seen 1 times\n");
    redis.publish("names", b"count:visits");
    s.wait_log("reverse_stdout.txt", "visits seen 2 times\n");
    assert!(s.stop().success());

    // The default store is Spin's: .spin/sqlite_key_value.db beside the
    // manifest, table spin_key_value, the label in `store`.
    let db = dir.path().join(".spin/sqlite_key_value.db");
    assert!(db.is_file(), "{} is missing", db.display());
    let value: Vec<u8> = rusqlite::Connection::open(&db)
        .unwrap()
        .query_row(
            "SELECT value FROM spin_key_value WHERE store = 'default' AND key = 'visits'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(value, b"2");

    let mut s = up(&redis, &path, &[], &["names"]);
    redis.publish("names", b"count:visits");
    s.wait_log("reverse_stdout.txt", "visits seen 3 times\n");
    assert!(s.stop().success());

    // --state-dir moves it.
    let state = tempfile::tempdir().unwrap();
    let mut s = up(
        &redis,
        &path,
        &["--state-dir", state.path().to_str().unwrap()],
        &["names"],
    );
    redis.publish("names", b"count:visits");
    s.wait_log("reverse_stdout.txt", "visits seen 1 times\n");
    assert!(s.stop().success());
    assert!(state.path().join("sqlite_key_value.db").is_file());
}

#[test]
fn a_redis_backed_store_comes_from_the_runtime_config_file_for_every_sdk() {
    let redis = Redis::start();
    let allowed = vec![format!("redis://127.0.0.1:{}", redis.port)];
    let vars = variables(&redis, "");
    let m = three_sdks(&redis, &allowed, &vars);
    let (dir, path) = manifest(&m);
    let rc = redis_store_config(dir.path(), "default", &redis.url());
    let mut s = up(
        &redis,
        &path,
        &["--runtime-config-file", rc.to_str().unwrap()],
        &["names", "words", "events"],
    );
    redis.publish("names", b"count:visits");
    s.wait_log("reverse_stdout.txt", "visits seen 1 times\n");
    assert_eq!(get(&redis, "visits").as_deref(), Some("1"));
    // spin:key-value@3.0.0, get-keys as a stream included.
    redis.publish("words", b"alpha beta");
    s.wait_log(
        "words_stdout.txt",
        "\"alpha\" seen 1 times (1 distinct words)",
    );
    assert_eq!(get(&redis, "word:alpha").as_deref(), Some("1"));
    // The unversioned fermyon:spin/key-value.
    redis.publish("events", b"[1]");
    s.wait_log("summary_stdout.txt", "1 of type array");
    assert_eq!(get(&redis, "events:array").as_deref(), Some("1"));
    assert!(s.stop().success());
    assert!(
        !dir.path().join(".spin/sqlite_key_value.db").exists(),
        "the default store is Redis here, not SQLite"
    );
}

#[test]
fn a_refused_host_fails_the_message_and_is_logged_once_with_the_entry_that_allows_it() {
    let redis = Redis::start();
    // Allowed: another port only.
    let allowed = vec![format!("redis://127.0.0.1:{}", free_port())];
    let m = reverse(&redis, &allowed, &["default"], &variables(&redis, ""));
    let (_d, path) = manifest(&m);
    let mut s = up(&redis, &path, &[], &["names"]);
    redis.publish("names", b"one");
    redis.publish("names", b"two");
    let dest = format!("redis://127.0.0.1:{}", redis.port);
    wait_until("both messages to fail", || {
        occurrences(
            &s.stderr(),
            "handler failed component=reverse channel=names",
        ) == 2
    });
    // The WIT's invalid-address, as the SDK reports it.
    s.wait_log("reverse_stderr.txt", "InvalidAddress");
    let err = s.stop_ok();
    let refusal = format!("refused an outbound connection to {dest}");
    assert_eq!(occurrences(&err, &refusal), 1, "{err}");
    assert!(
        err.contains(&format!("add \\\"{dest}\\\" to allowed_outbound_hosts"))
            || err.contains(&format!("add \"{dest}\" to allowed_outbound_hosts")),
        "{err}"
    );
    assert_eq!(
        get(&redis, "reverse:messages"),
        None,
        "nothing reached Redis"
    );
}

#[test]
fn a_store_the_component_did_not_list_is_access_denied() {
    let redis = Redis::start();
    let allowed = vec![format!("redis://127.0.0.1:{}", redis.port)];
    let m = reverse(&redis, &allowed, &[], &variables(&redis, ""));
    let (_d, path) = manifest(&m);
    let mut s = up(&redis, &path, &[], &["names"]);
    reverse_fails(&redis, &s, b"count:visits", "AccessDenied");
    assert!(s.stop().success());
}

#[test]
fn an_undefined_variable_is_undefined() {
    let redis = Redis::start();
    let allowed = vec![format!("redis://127.0.0.1:{}", redis.port)];
    // No results_channel.
    let vars = format!(
        "[component.VARS.variables]\nredis_address = \"{}\"\n",
        redis.plain_url()
    );
    let m = reverse(&redis, &allowed, &["default"], &vars);
    let (_d, path) = manifest(&m);
    let mut s = up(&redis, &path, &[], &["names"]);
    reverse_fails(&redis, &s, b"hello", "Undefined");
    s.wait_log("reverse_stderr.txt", "results_channel");
    assert!(s.stop().success());
}

#[test]
fn outbound_http_reaches_an_allowed_server_and_is_refused_elsewhere() {
    let redis = Redis::start();
    let server = HttpServer::start();
    let hook = format!("{}/hook", server.origin);
    let redis_host = format!("redis://127.0.0.1:{}", redis.port);
    // Allowed: wasi:http (spin-sdk 5) and fermyon:spin/http (Python).
    let allowed = vec![redis_host.clone(), server.origin.clone()];
    let vars = variables(&redis, &hook);
    let m = reverse_and_summary(&redis, &allowed, &vars);
    let (_d, path) = manifest(&m);
    let mut s = up(&redis, &path, &[], &["names", "events"]);
    redis.publish("names", b"webhook");
    server.wait_for("POST", b"koohbew");
    s.wait_log("reverse_stdout.txt", "webhook answered 200\n");
    redis.publish("events", b"true");
    server.wait_for("POST", b"boolean true");
    s.wait_log("summary_stdout.txt", "webhook answered 200\n");
    assert!(s.stop().success());
    let reached = server.count();
    assert_eq!(reached, 2);

    // Refused: the server's origin is not allowed.
    let allowed = vec![redis_host];
    let m = reverse_and_summary(&redis, &allowed, &vars);
    let (_d2, path) = manifest(&m);
    let mut s = up(&redis, &path, &[], &["names", "events"]);
    redis.publish("names", b"webhook");
    redis.publish("events", b"true");
    s.wait_stderr("handler failed component=reverse channel=names");
    s.wait_stderr("handler failed component=summary channel=events");
    // wasi:http's HTTP-request-denied, and fermyon:spin/http's
    // destination-not-allowed.
    s.wait_log("reverse_stderr.txt", "HttpRequestDenied");
    s.wait_log("summary_stderr.txt", "DESTINATION_NOT_ALLOWED");
    let err = s.stop_ok();
    let refusal = format!("refused an outbound connection to {}", server.origin);
    assert_eq!(occurrences(&err, &refusal), 2, "once per component:\n{err}");
    assert_eq!(server.count(), reached, "no request reached the server");
}

#[test]
fn start_up_refuses_an_undefined_store_and_a_bad_runtime_config() {
    let redis = Redis::start();
    let m = app(
        &redis,
        "spin-sdk5-rust",
        "reverse",
        "names",
        "key_value_stores = [\"default\", \"cache\"]\n",
    );
    let (dir, path) = manifest(&m);
    // `invoke`, which stops at once whatever happens: `up` would run on if
    // the refusal were missing.
    let invoke = |extra: &[&str]| {
        let mut args = vec!["invoke", "-f", path.to_str().unwrap()];
        args.extend_from_slice(extra);
        args.extend(["reverse", "--payload", "count:x"]);
        run(&args)
    };
    let (code, _, err) = invoke(&[]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("component.reverse.key_value_stores: store \"cache\" is not defined")
            && err.contains("[key_value_store.cache]"),
        "{err}"
    );

    // Defined by a runtime config file: accepted (invoke runs it once).
    let rc = dir.path().join("rc.toml");
    std::fs::write(
        &rc,
        "[key_value_store.cache]\ntype = \"spin\"\npath = \"cache.db\"\n",
    )
    .unwrap();
    let (code, out, err) = invoke(&["--runtime-config-file", rc.to_str().unwrap()]);
    assert_eq!((code, out.as_str()), (0, "x seen 1 times\n"), "{err}");

    std::fs::write(
        &rc,
        "\n[key_value_store.cache]\ntype = \"redis\"\nurl = \"redis://u:hunter2@h:notaport\"\n",
    )
    .unwrap();
    let (code, _, err) = invoke(&["--runtime-config-file", rc.to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("rc.toml:4: key_value_store.cache.url: bad address"),
        "{err}"
    );
    assert!(!err.contains("hunter2"), "{err}");
}

#[test]
fn manifest_host_api_fields_are_validated_with_file_line_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let wasm = dir.path().join("h.wasm");
    std::fs::write(&wasm, b"\0asm").unwrap();
    let parse = |text: &str| {
        spin_redis::manifest::parse(&dir.path().join("spin.toml"), text, &|k| {
            (k == "SPIN_VARIABLE_HOST").then(|| "cache.internal".to_string())
        })
    };
    let base = "spin_manifest_version = 2\n[application]\nname = \"a\"\n[application.trigger.redis]\naddress = \"redis://127.0.0.1:6379\"\n[variables]\nhost = { required = true }\nempty = { default = \"\" }\n[[trigger.redis]]\nchannel = \"c\"\ncomponent = \"x\"\n[component.x]\nsource = \"h.wasm\"\n";
    let app = parse(&format!(
        "{base}allowed_outbound_hosts = [\"redis://{{{{ host }}}}:6380\", \"{{{{ empty }}}}\"]\n[component.x.variables]\naddr = \"redis://{{{{ host }}}}:6380\"\n"
    ))
    .unwrap_or_else(|e| panic!("{e}"));
    let apis = &app.components[0].host_apis;
    assert_eq!(apis.allowed_outbound_hosts.entries().count(), 1);
    assert_eq!(
        apis.variables.get("addr"),
        Ok("redis://cache.internal:6380")
    );

    let e = parse(&format!(
        "{base}allowed_outbound_hosts = [\"cache:6380\"]\n"
    ))
    .unwrap_err();
    assert_eq!(e.line, Some(14), "{e}");
    assert_eq!(
        e.field.as_deref(),
        Some("component.x.allowed_outbound_hosts")
    );
    assert!(e.to_string().contains("has no scheme"), "{e}");

    let e = parse(&format!(
        "{base}[component.x.variables]\nok = \"1\"\nBad-Name = \"2\"\n"
    ))
    .unwrap_err();
    assert_eq!(e.line, Some(16), "{e}");
    assert_eq!(e.field.as_deref(), Some("component.x.variables.Bad-Name"));

    let e = parse(&format!(
        "{base}[component.x.variables]\naddr = \"{{{{ nope }}}}\"\n"
    ))
    .unwrap_err();
    assert_eq!(e.line, Some(15), "{e}");
    assert!(e.to_string().contains("\"nope\" is not declared"), "{e}");

    // Version 1: no allowed_outbound_hosts allows any Redis (as in Spin),
    // config is the component's variables, allowed_http_hosts are http(s).
    let v1 = "spin_manifest_version = \"1\"\nname = \"a\"\ntrigger = { type = \"redis\", address = \"redis://127.0.0.1:6379\" }\n[variables]\nhost = { required = true }\n[[component]]\nid = \"x\"\nsource = \"h.wasm\"\nallowed_http_hosts = [\"api.example.com\"]\n[component.config]\naddr = \"{{ host }}\"\n[component.trigger]\nchannel = \"c\"\n";
    let app = parse(v1).unwrap_or_else(|e| panic!("{e}"));
    let apis = &app.components[0].host_apis;
    // Each URL read as its connection reads it.
    let d = |u: &str| {
        use spin_redis::host::destination;
        if u.starts_with("redis") {
            let a = spin_redis::address::RedisAddress::parse(u).unwrap();
            destination::redis(&a).unwrap().destination
        } else {
            destination::http(&u.parse().unwrap()).unwrap()
        }
    };
    assert!(
        apis.allowed_outbound_hosts
            .allows(&d("redis://anywhere:1234"))
    );
    assert!(
        apis.allowed_outbound_hosts
            .allows(&d("https://api.example.com/x"))
    );
    assert!(
        !apis
            .allowed_outbound_hosts
            .allows(&d("https://other.example.com/x"))
    );
    assert_eq!(apis.variables.get("addr"), Ok("cache.internal"));
    let explicit = v1.replace(
        "allowed_http_hosts = [\"api.example.com\"]",
        "allowed_outbound_hosts = []",
    );
    let app = parse(&explicit).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        app.components[0]
            .host_apis
            .allowed_outbound_hosts
            .is_empty()
    );
}

#[test]
fn the_pool_keeps_one_connection_per_address_whatever_the_message_count() {
    let redis = Redis::start();
    let allowed = vec![format!("redis://127.0.0.1:{}", redis.port)];
    let m = app(
        &redis,
        "spin-sdk7-rust",
        "words",
        "words",
        &grants("words", &allowed, &["default"], &variables(&redis, "")),
    );
    let (_d, path) = manifest(&m);
    // One connection of the test's own, for publishing and asking: the
    // server's count of connections ever accepted then moves only for
    // spin-redis's.
    let mut con = redis.connection();
    let mut accepted = || -> u64 {
        let info: String = redis::cmd("INFO").arg("stats").query(&mut con).unwrap();
        info.lines()
            .find_map(|l| l.strip_prefix("total_connections_received:"))
            .and_then(|n| n.trim().parse().ok())
            .expect("INFO stats has total_connections_received")
    };
    let mut s = up(&redis, &path, &[], &["words"]);
    redis.publish("words", b"warm up");
    s.wait_log("words_stdout.txt", "message 1,");
    let after_first = accepted();
    let mut publisher = redis.connection();
    for i in 0..50 {
        let _: i64 = redis::cmd("PUBLISH")
            .arg("words")
            .arg(format!("w{i} x"))
            .query(&mut publisher)
            .unwrap();
    }
    s.wait_log("words_stdout.txt", "message 51,");
    assert_eq!(get(&redis, "words:messages").as_deref(), Some("51"));
    // `get` connected once; spin-redis not at all.
    assert_eq!(accepted(), after_first + 2, "no connection per message");
    assert!(s.stop().success());
}

#[test]
fn passwords_work_for_outbound_redis_and_never_show() {
    let redis = Redis::start_with(&["--requirepass", "s3cret-pw"]);
    let port = redis.port;
    // Allowed by host and port: credentials are not part of the check.
    let allowed = vec![format!("redis://127.0.0.1:{port}")];
    let vars = |pw: &str| {
        format!(
            "[component.VARS.variables]\nredis_address = \"redis://:{pw}@127.0.0.1:{port}\"\nresults_channel = \"results\"\nwebhook = \"\"\n"
        )
    };
    let mut m = reverse(&redis, &allowed, &["default"], &vars("s3cret-pw")).replace(
        &format!("address = \"{}\"", redis.plain_url()),
        &format!("address = \"{}\"", redis.url()),
    );
    m.push_str(&also(
        "wrong",
        "words",
        "spin-sdk5-rust",
        &grants("wrong", &allowed, &["default"], &vars("hunter2-wrong")),
    ));
    let (_d, path) = manifest(&m);
    let mut s = up(&redis, &path, &[], &["names", "words"]);
    redis.publish("names", b"private");
    s.wait_log("reverse_stdout.txt", "message 1, published to results\n");
    assert_eq!(get(&redis, "reverse:messages").as_deref(), Some("1"));
    // A wrong password fails the message, saying so without the password.
    redis.publish("words", b"denied");
    s.wait_stderr("handler failed component=wrong channel=words");
    s.wait_log("wrong_stderr.txt", &format!("redis://127.0.0.1:{port}"));
    assert!(s.stop().success());
    let everything = format!(
        "{}{}{}{}",
        s.stderr(),
        s.stdout(),
        s.log_text("reverse_stderr.txt"),
        s.log_text("wrong_stderr.txt")
    );
    for pw in ["s3cret-pw", "hunter2-wrong"] {
        assert!(!everything.contains(pw), "{pw} shown:\n{everything}");
    }
}

#[test]
fn outbound_rediss_is_verified_with_the_tls_ca_file() {
    let (_certs, redis, ca, url) = tls_redis();
    let text = format!(
        "spin_manifest_version = 2\n[application]\nname = \"tls\"\n[application.trigger.redis]\naddress = \"{url}\"\n[[trigger.redis]]\nchannel = \"names\"\ncomponent = \"reverse\"\n[component.reverse]\nsource = \"{}\"\nallowed_outbound_hosts = [\"{url}\"]\n[component.reverse.variables]\nredis_address = \"{url}\"\nresults_channel = \"results\"\nwebhook = \"\"\n",
        example("spin-sdk5-rust").display()
    );
    let (_d, path) = manifest(&text);
    let mut s = up(&redis, &path, &["--tls-ca-file", &ca], &["names"]);
    redis.publish("names", b"sealed");
    s.wait_log("reverse_stdout.txt", "message 1, published to results\n");
    assert_eq!(
        redis
            .cli(&["GET", "reverse:messages"])
            .map(|v| v.trim().to_string()),
        Some("1".to_string())
    );
    assert!(s.stop().success());
}

#[test]
fn the_pooled_connection_recovers_when_the_server_restarts() {
    let mut redis = Redis::start();
    let m = reverse_app(&redis);
    let (_d, path) = manifest(&m);
    let mut s = up(&redis, &path, &[], &["names"]);
    redis.publish("names", b"before");
    s.wait_log("reverse_stdout.txt", "message 1, published to results\n");
    redis.restart(&[]);
    // The new server starts empty; the trigger resubscribes by itself.
    wait_until("spin-redis to subscribe again", || {
        redis.subscribers("names") >= 1
    });
    // A command may meet the dead connection once; the pool reconnects, and
    // later messages INCR on the new server.
    wait_until("an INCR on the restarted server", || {
        redis.publish("names", b"after");
        std::thread::sleep(Duration::from_millis(100));
        get(&redis, "reverse:messages").is_some()
    });
    assert!(s.stop().success());
}

#[test]
fn wasi_config_store_reads_the_components_variables() {
    let guest = guest("rust-wasi-config");
    let (_d, path) = manifest(&format!(
        "spin_manifest_version = 2\n[application]\nname = \"config\"\n[application.trigger.redis]\naddress = \"redis://127.0.0.1:1\"\n[variables]\nhost = {{ default = \"api.example.com\" }}\nsecret = {{ required = true, secret = true }}\n[[trigger.redis]]\nchannel = \"c\"\ncomponent = \"x\"\n[component.x]\nsource = \"{}\"\n[component.x.variables]\napi_url = \"https://{{{{ host }}}}/v1\"\ntoken = \"{{{{ secret }}}}\"\n",
        guest.display()
    ));
    let invoke = |payload: &str| {
        run_with_env(
            &[
                "invoke",
                "-f",
                path.to_str().unwrap(),
                "x",
                "--payload",
                payload,
            ],
            &[("SPIN_VARIABLE_SECRET", "t0ken")],
        )
    };
    let (code, out, err) = invoke("get:api_url");
    assert_eq!(
        (code, out.as_str()),
        (0, "api_url = https://api.example.com/v1\n"),
        "{err}"
    );
    // Undefined and invalid names are `none`, as wasi:config says.
    let (code, out, err) = invoke("get:nope");
    assert_eq!((code, out.as_str()), (0, "nope is none\n"), "{err}");
    let (code, out, err) = invoke("get:Not-A-Name");
    assert_eq!((code, out.as_str()), (0, "Not-A-Name is none\n"), "{err}");
    let (code, out, err) = invoke("all");
    assert_eq!(
        (code, out.as_str()),
        (0, "api_url = https://api.example.com/v1\ntoken = t0ken\n"),
        "{err}"
    );
    // The secret reached the handler, and nothing else.
    assert!(!err.contains("t0ken"), "{err}");
}
