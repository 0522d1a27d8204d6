//! The spin-redis benchmark: `cargo bench --bench pipeline`.
//!
//! Prints one table, every figure measured in the same run on the same
//! machine: the raw redis-rs subscriber rate (the ceiling), the executors
//! alone (no Redis), end to end through a real redis-server under a pipelined
//! flood (every message accounted for), the same trivial handler fed by a
//! stream through a consumer group shared by one and by two processes
//! (every entry acknowledged), added latency at a fixed rate,
//! start-up with a cold and a warm compiled-code cache, and peak RSS. Needs
//! the example handlers (`bash examples/build.sh`) and `redis-server`.
//!
//! Sizes: `BENCH_MESSAGES` (end-to-end flood, default 100000) and
//! `BENCH_CALLS` (executor-alone calls, default 20000).

use bytes::Bytes;
use futures_util::StreamExt as _;
use spin_redis::executor::Executor;
use spin_redis::executor::engine::{EngineOptions, Runtime};
use spin_redis::executor::spin::SpinComponent;
use spin_redis::host::ComponentHost;
use spin_redis_compat::WagiModule;
use spin_redis_sandbox::{Limits, Message, Mount, Sandbox};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The test harness's redis-server, tuned for floods.
#[path = "../tests/support/mod.rs"]
mod support;
use support::Redis;

fn start_redis() -> Redis {
    // The benchmark floods on purpose: let the subscriber's buffer grow
    // rather than have redis cut it off mid-measurement.
    Redis::start_with(&["--client-output-buffer-limit", "pubsub 0 0 0"])
}

fn connect(redis: &Redis) -> redis::Connection {
    redis::Client::open(redis.url())
        .unwrap()
        .get_connection()
        .unwrap()
}

/// Publishes `n` payloads from `make` in pipelined batches of 1000.
fn flood(url: &str, channel: &str, n: usize, make: impl Fn(usize) -> Vec<u8>) {
    let mut con = redis::Client::open(url).unwrap().get_connection().unwrap();
    let mut i = 0;
    while i < n {
        let mut pipe = redis::pipe();
        for j in i..(i + 1000).min(n) {
            pipe.cmd("PUBLISH").arg(channel).arg(make(j)).ignore();
        }
        let () = pipe.query(&mut con).unwrap();
        i += 1000;
    }
}

struct Row {
    what: String,
    value: String,
}

fn row(rows: &mut Vec<Row>, what: impl Into<String>, value: impl Into<String>) {
    let r = Row {
        what: what.into(),
        value: value.into(),
    };
    eprintln!("  {:<70} {}", r.what, r.value);
    rows.push(r);
}

/// The raw ceiling: an async redis-rs subscriber that only counts.
fn raw_subscriber_rate(n: usize) -> f64 {
    let redis = start_redis();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let url = redis.url();
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let counter = std::thread::spawn(move || {
        rt.block_on(async move {
            let client = redis::Client::open(url).unwrap();
            let mut ps = client.get_async_pubsub().await.unwrap();
            ps.subscribe("raw").await.unwrap();
            ready_tx.send(()).unwrap();
            let mut stream = ps.on_message();
            let mut seen = 0;
            while seen < n {
                stream.next().await.unwrap();
                seen += 1;
            }
            Instant::now()
        })
    });
    ready_rx.recv().unwrap();
    let start = Instant::now();
    flood(&redis.url(), "raw", n, |i| format!("m{i:07}").into_bytes());
    let end = counter.join().unwrap();
    n as f64 / (end - start).as_secs_f64()
}

/// A handler under test, as the executor-alone and end-to-end parts see it.
struct Subject {
    name: &'static str,
    wasm: PathBuf,
    executor: &'static str,
    payload: fn(usize) -> Vec<u8>,
    mount: Option<PathBuf>,
}

fn subjects() -> Vec<Subject> {
    let ex = |p: &str| repo().join("examples").join(p).join("handler.wasm");
    vec![
        Subject {
            name: "trivial WAT compat module (echo.wat)",
            wasm: repo().join("compat/tests/fixtures/echo.wat"),
            executor: "wagi",
            payload: |i| format!("m{i:07}").into_bytes(),
            mount: None,
        },
        Subject {
            name: "C compat module (examples/c)",
            wasm: ex("c"),
            executor: "wagi",
            payload: |i| format!("m{i:07}").into_bytes(),
            mount: None,
        },
        Subject {
            name: "Rust wasip1 compat module (examples/rust-wasip1)",
            wasm: ex("rust-wasip1"),
            executor: "wagi",
            payload: |i| format!("m{i:07}").into_bytes(),
            mount: Some(repo().join("examples/rust-wasip1/data")),
        },
        Subject {
            name: "Rust component (examples/rust-component)",
            wasm: ex("rust-component"),
            executor: "spin",
            payload: |i| format!("m{i:07}:1").into_bytes(),
            mount: None,
        },
        Subject {
            name: "Spin SDK 5 Rust component (examples/spin-sdk5-rust, echo)",
            wasm: ex("spin-sdk5-rust"),
            executor: "spin",
            payload: |i| format!("echo:m{i:07}").into_bytes(),
            mount: None,
        },
    ]
}

fn prepare(rt: &Runtime, s: &Subject) -> Executor {
    let bytes = std::fs::read(&s.wasm)
        .unwrap_or_else(|e| panic!("{}: {e} (run bash examples/build.sh)", s.wasm.display()));
    let sandbox = Sandbox {
        component_id: "bench".into(),
        env: vec![],
        mounts: s
            .mount
            .iter()
            .map(|m| Mount {
                host: m.clone(),
                guest: "/data".into(),
            })
            .collect(),
        argv: vec![],
    };
    let limits = Limits::default();
    match s.executor {
        "wagi" => Executor::Wagi(
            WagiModule::prepare(&rt.engine, &bytes, "_start", sandbox, limits).unwrap(),
        ),
        _ => Executor::Spin(
            SpinComponent::prepare(
                &rt.engine,
                &bytes,
                sandbox,
                limits,
                ComponentHost::ungranted("bench"),
            )
            .unwrap(),
        ),
    }
}

/// Calls per second with `workers` concurrent loops.
fn executor_alone(
    exec: Arc<Executor>,
    payload: fn(usize) -> Vec<u8>,
    calls: usize,
    workers: usize,
) -> f64 {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        // Warm up (first-touch of pool slots, lazy init).
        for i in 0..200 {
            let o = exec
                .run(Message {
                    channel: "bench",
                    address: "redis://127.0.0.1:1",
                    payload: payload(i).into(),
                    stream: None,
                    origin: None,
                })
                .await;
            assert!(
                o.result.is_ok(),
                "{:?} {}",
                o.result,
                String::from_utf8_lossy(&o.stderr)
            );
        }
        let start = Instant::now();
        let per = calls / workers;
        let tasks: Vec<_> = (0..workers)
            .map(|w| {
                let exec = exec.clone();
                tokio::spawn(async move {
                    for i in 0..per {
                        let o = exec
                            .run(Message {
                                channel: "bench",
                                address: "redis://127.0.0.1:1",
                                payload: Bytes::from(payload(w * per + i)),
                                stream: None,
                                origin: None,
                            })
                            .await;
                        debug_assert!(o.result.is_ok());
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        (per * workers) as f64 / start.elapsed().as_secs_f64()
    })
}

fn manifest(dir: &Path, s: &Subject, url: &str) -> PathBuf {
    let files = match &s.mount {
        Some(m) => format!(
            "files = [{{ source = \"{}\", destination = \"/data\" }}]\n",
            m.display()
        ),
        None => String::new(),
    };
    let text = format!(
        "spin_manifest_version = \"1\"\ntrigger = {{ type = \"redis\", address = \"{url}\" }}\n[[component]]\nid = \"bench\"\nsource = \"{}\"\n{files}[component.trigger]\nchannel = \"bench\"\nexecutor = {{ type = \"{}\" }}\n",
        s.wasm.display(),
        s.executor
    );
    let p = dir.join("spin.toml");
    std::fs::write(&p, text).unwrap();
    p
}

struct Up {
    child: Child,
    dir: tempfile::TempDir,
}

impl Up {
    /// `spin-redis up` with default settings, quiet (no echo of handler
    /// output to the terminal), plus `extra` flags.
    fn start(manifest: &Path, extra: &[&str], cache: &Path) -> Up {
        Up::start_echo(manifest, &[&["-q"], extra].concat(), cache)
    }
    /// Like `start`, echoing handler output to stdout (the default; stdout
    /// goes to /dev/null, so this measures spin-redis's echo path, not a
    /// terminal).
    fn start_echo(manifest: &Path, extra: &[&str], cache: &Path) -> Up {
        let dir = tempfile::tempdir().unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_spin-redis"))
            .args(["up", "-f"])
            .arg(manifest)
            .arg("-L")
            .arg(dir.path().join("logs"))
            .args(extra)
            .env("SPIN_REDIS_CACHE_DIR", cache)
            .env("SPIN_REDIS_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("stderr.txt")).unwrap())
            .spawn()
            .unwrap();
        Up { child, dir }
    }
    fn log_len(&self) -> u64 {
        std::fs::metadata(self.dir.path().join("logs/bench_stdout.txt"))
            .map(|m| m.len())
            .unwrap_or(0)
    }
    fn peak_rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .unwrap_or_default();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    }
    fn stop(mut self) -> String {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
        std::fs::read_to_string(self.dir.path().join("stderr.txt")).unwrap_or_default()
    }
}

fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while !cond() {
        if start.elapsed() > limit {
            eprintln!("  (gave up waiting for {what})");
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    true
}

/// Floods `n` messages to `spin-redis up` with default settings (quiet
/// unless `echo`); returns (messages/s, summary line, peak RSS KiB).
fn end_to_end(s: &Subject, n: usize, echo: bool, cache: &Path) -> (f64, String, u64) {
    let redis = start_redis();
    let dir = tempfile::tempdir().unwrap();
    let m = manifest(dir.path(), s, &redis.url());
    // Output per message, measured once with `invoke`.
    let out = Command::new(env!("CARGO_BIN_EXE_spin-redis"))
        .args(["invoke", "-f"])
        .arg(&m)
        .args(["bench", "--payload"])
        .arg(String::from_utf8((s.payload)(0)).unwrap())
        .env("SPIN_REDIS_CACHE_DIR", cache)
        .env("SPIN_REDIS_LOG", "warn")
        .output()
        .unwrap();
    let per_message = out.stdout.len() as u64;
    let up = if echo {
        Up::start_echo(&m, &[], cache)
    } else {
        Up::start(&m, &[], cache)
    };
    wait_for("subscription", Duration::from_secs(60), || {
        redis.subscribers("bench") > 0
    });
    let start = Instant::now();
    let publisher = {
        let payload = s.payload;
        let url = redis.url();
        std::thread::spawn(move || flood(&url, "bench", n, payload))
    };
    let expected = per_message * n as u64;
    let mut last_len = 0;
    let mut last_change = Instant::now();
    let mut end = Instant::now();
    wait_for("all messages handled", Duration::from_secs(600), || {
        let len = up.log_len();
        if len != last_len {
            last_len = len;
            last_change = Instant::now();
            end = last_change;
        }
        // Done when everything arrived, or nothing moved for 2 s (drops).
        len >= expected || last_change.elapsed() > Duration::from_secs(2)
    });
    publisher.join().unwrap();
    let rss = up.peak_rss_kib();
    let stderr = up.stop();
    let summary = stderr
        .lines()
        .find(|l| l.starts_with("spin-redis: received"))
        .unwrap_or("no summary")
        .to_string();
    let handled = last_len / per_message.max(1);
    (handled as f64 / (end - start).as_secs_f64(), summary, rss)
}

/// Streams end to end: `procs` processes share one consumer group while `n`
/// entries are added (pipelined); returns (entries/s, what the group says
/// at the end). Done when every entry was read and acknowledged.
fn streams_end_to_end(n: usize, procs: usize, cache: &Path) -> (f64, String) {
    let redis = start_redis();
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "spin_manifest_version = 2\n[application]\nname = \"bench\"\n[application.trigger.redis]\naddress = \"{}\"\n[[trigger.redis]]\nstream = \"bench\"\ngroup = \"g\"\ncomponent = \"bench\"\nexecutor = {{ type = \"wagi\" }}\n[component.bench]\nsource = \"{}\"\n",
        redis.url(),
        repo().join("compat/tests/fixtures/echo.wat").display()
    );
    let m = dir.path().join("spin.toml");
    std::fs::write(&m, text).unwrap();
    let mut con = connect(&redis);
    let _: () = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg("bench")
        .arg("g")
        .arg("0")
        .arg("MKSTREAM")
        .query(&mut con)
        .unwrap();
    let ups: Vec<Up> = (0..procs).map(|_| Up::start(&m, &[], cache)).collect();
    let consumers = |con: &mut redis::Connection| -> usize {
        redis::cmd("XINFO")
            .arg("CONSUMERS")
            .arg("bench")
            .arg("g")
            .query::<Vec<redis::Value>>(con)
            .map_or(0, |v| v.len())
    };
    wait_for("every consumer reading", Duration::from_secs(60), || {
        consumers(&mut con) == procs
    });
    // (entries read, pending, lag) of the group.
    let group = |con: &mut redis::Connection| -> (i64, i64, i64) {
        let groups: Vec<std::collections::HashMap<String, redis::Value>> = redis::cmd("XINFO")
            .arg("GROUPS")
            .arg("bench")
            .query(con)
            .unwrap();
        let int = |k: &str| match groups[0].get(k) {
            Some(redis::Value::Int(v)) => *v,
            _ => -1,
        };
        (int("entries-read"), int("pending"), int("lag"))
    };
    let start = Instant::now();
    let publisher = {
        let url = redis.url();
        std::thread::spawn(move || {
            let mut con = redis::Client::open(url).unwrap().get_connection().unwrap();
            let mut i = 0;
            while i < n {
                let mut pipe = redis::pipe();
                for j in i..(i + 1000).min(n) {
                    pipe.cmd("XADD")
                        .arg("bench")
                        .arg("*")
                        .arg("payload")
                        .arg(format!("m{j:07}"))
                        .ignore();
                }
                let () = pipe.query(&mut con).unwrap();
                i += 1000;
            }
        })
    };
    let mut last = (0, 0, 0);
    wait_for("every entry acknowledged", Duration::from_secs(600), || {
        last = group(&mut con);
        last.0 == n as i64 && last.1 == 0
    });
    let elapsed = start.elapsed();
    publisher.join().unwrap();
    for up in ups {
        let _ = up.stop();
    }
    (
        n as f64 / elapsed.as_secs_f64(),
        format!("read {}, pending {}, lag {}", last.0, last.1, last.2),
    )
}

/// Publishes `rate` × `seconds` messages on "bench", each carrying the
/// wall-clock nanoseconds at its publish; returns how many.
fn paced_publish(redis: &Redis, rate: u64, seconds: u64) -> u64 {
    let mut con = connect(redis);
    let n = rate * seconds;
    let interval = Duration::from_nanos(1_000_000_000 / rate);
    let start = Instant::now();
    for i in 0..n {
        // Sleep, not spin: the publisher must not take a core from
        // redis-server and spin-redis on a 2-core machine. The schedule is
        // absolute, so a late wake-up is made up by the next publishes and
        // the rate holds on average.
        let due = start + interval * i as u32;
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        let ns = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        let _: i64 = redis::cmd("PUBLISH")
            .arg("bench")
            .arg(&ns.to_le_bytes()[..])
            .query(&mut con)
            .unwrap();
    }
    n
}

/// The floor for the latency rows: (p50, p99) in µs from publish to receipt
/// by a plain redis-rs subscriber at `rate` msg/s, on the same machine.
fn raw_latency(rate: u64, seconds: u64) -> (f64, f64) {
    let redis = start_redis();
    let url = redis.url();
    let expected = (rate * seconds) as usize;
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let subscriber = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let client = redis::Client::open(url).unwrap();
            let mut ps = client.get_async_pubsub().await.unwrap();
            ps.subscribe("bench").await.unwrap();
            ready_tx.send(()).unwrap();
            let mut stream = ps.on_message();
            let mut lat = Vec::with_capacity(expected);
            while lat.len() < expected {
                let msg = stream.next().await.unwrap();
                let now = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64;
                let sent = u64::from_le_bytes(msg.get_payload_bytes()[..8].try_into().unwrap());
                lat.push(now.saturating_sub(sent) as f64 / 1000.0);
            }
            lat
        })
    });
    ready_rx.recv().unwrap();
    paced_publish(&redis, rate, seconds);
    let mut lat = subscriber.join().unwrap();
    (percentile(&mut lat, 0.5), percentile(&mut lat, 0.99))
}

/// The `p` quantile of `v` (sorted in place).
fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() as f64 * p) as usize).min(v.len() - 1)]
}

/// (p50, p99) of publish→start and publish→end in µs at `rate` msg/s.
fn latency(rate: u64, seconds: u64, cache: &Path) -> ((f64, f64), (f64, f64), usize) {
    let redis = start_redis();
    let dir = tempfile::tempdir().unwrap();
    let s = Subject {
        name: "stamp",
        wasm: repo().join("compat/tests/fixtures/stamp.wat"),
        executor: "wagi",
        payload: |_| vec![],
        mount: None,
    };
    let m = manifest(dir.path(), &s, &redis.url());
    let up = Up::start(&m, &[], cache);
    wait_for("subscription", Duration::from_secs(60), || {
        redis.subscribers("bench") > 0
    });
    let n = paced_publish(&redis, rate, seconds);
    wait_for("latency records", Duration::from_secs(30), || {
        up.log_len() >= n * 24
    });
    let bytes = std::fs::read(up.dir.path().join("logs/bench_stdout.txt")).unwrap();
    let _ = up.stop();
    let mut to_start = vec![];
    let mut to_end = vec![];
    for rec in bytes.chunks_exact(24) {
        let f = |i: usize| u64::from_le_bytes(rec[i..i + 8].try_into().unwrap());
        to_start.push((f(8).saturating_sub(f(0))) as f64 / 1000.0);
        to_end.push((f(16).saturating_sub(f(0))) as f64 / 1000.0);
    }
    let count = to_start.len();
    (
        (
            percentile(&mut to_start, 0.5),
            percentile(&mut to_start, 0.99),
        ),
        (percentile(&mut to_end, 0.5), percentile(&mut to_end, 0.99)),
        count,
    )
}

/// What the server says about its connections, asked on `con`: (connected
/// now, besides `con`; accepted since it started).
fn connections(con: &mut redis::Connection) -> (usize, u64) {
    let list: String = redis::cmd("CLIENT").arg("LIST").query(con).unwrap();
    let info: String = redis::cmd("INFO").arg("stats").query(con).unwrap();
    let accepted = info
        .lines()
        .find_map(|l| l.strip_prefix("total_connections_received:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    (list.lines().count().saturating_sub(1), accepted)
}

fn counter(con: &mut redis::Connection) -> usize {
    let v: Option<usize> = redis::cmd("GET").arg("bench").query(con).unwrap();
    v.unwrap_or(0)
}

/// A Spin SDK 5 component doing one outbound `INCR` per message
/// (examples/spin-sdk5-rust, payload `incr:bench`), end to end. Returns
/// (messages/s, connections open after the first message, open after all of
/// them, and opened by spin-redis meanwhile): pooled connections do not grow
/// with the message count.
fn host_api_end_to_end(n: usize, cache: &Path) -> (f64, usize, usize, u64) {
    let redis = start_redis();
    let dir = tempfile::tempdir().unwrap();
    let url = redis.url();
    let text = format!(
        "spin_manifest_version = 2\n[application]\nname = \"bench\"\n[application.trigger.redis]\naddress = \"{url}\"\n[[trigger.redis]]\nchannel = \"bench\"\ncomponent = \"bench\"\n[component.bench]\nsource = \"{}\"\nallowed_outbound_hosts = [\"{url}\"]\n[component.bench.variables]\nredis_address = \"{url}\"\n",
        repo()
            .join("examples/spin-sdk5-rust/handler.wasm")
            .display()
    );
    let m = dir.path().join("spin.toml");
    std::fs::write(&m, text).unwrap();
    let up = Up::start(&m, &[], cache);
    wait_for("subscription", Duration::from_secs(60), || {
        redis.subscribers("bench") > 0
    });
    // One connection for every question, so that the server's count of
    // accepted connections moves only for the publisher and spin-redis.
    let mut con = connect(&redis);
    flood(&url, "bench", 1, |_| b"incr:bench".to_vec());
    wait_for("the first INCR", Duration::from_secs(60), || {
        counter(&mut con) >= 1
    });
    let (open_first, accepted_first) = connections(&mut con);
    let start = Instant::now();
    let publisher = {
        let url = url.clone();
        std::thread::spawn(move || flood(&url, "bench", n, |_| b"incr:bench".to_vec()))
    };
    wait_for("every INCR", Duration::from_secs(600), || {
        counter(&mut con) > n
    });
    let elapsed = start.elapsed();
    publisher.join().unwrap();
    let (open_all, accepted_all) = connections(&mut con);
    up.stop();
    // The publisher's own connection is the one accepted besides spin-redis's.
    let opened = accepted_all.saturating_sub(accepted_first + 1);
    (
        n as f64 / elapsed.as_secs_f64(),
        open_first,
        open_all,
        opened,
    )
}

/// Seconds from `up` starting to the subscription, for the Python component.
fn start_up(cache: &Path) -> f64 {
    let redis = start_redis();
    let manifest = repo().join("examples/python/spin.toml");
    let start = Instant::now();
    let child = Command::new(env!("CARGO_BIN_EXE_spin-redis"))
        .args(["up", "-q", "-f"])
        .arg(&manifest)
        .env("SPIN_VARIABLE_REDIS_PORT", redis.port.to_string())
        .env("SPIN_REDIS_CACHE_DIR", cache)
        .env("SPIN_REDIS_LOG", "warn")
        .arg("-L")
        .arg(cache.join("logs"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("python subscription", Duration::from_secs(120), || {
        redis.subscribers("events") > 0
    });
    let t = start.elapsed().as_secs_f64();
    let up = Up {
        child,
        dir: tempfile::tempdir().unwrap(),
    };
    let _ = up.stop();
    t
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is accepted.
    let messages = env_usize("BENCH_MESSAGES", 100_000);
    let calls = env_usize("BENCH_CALLS", 20_000);
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let cache = tempfile::tempdir().unwrap();
    let mut rows = Vec::new();
    eprintln!(
        "spin-redis benchmark: {messages} messages end to end, {calls} executor calls, {cores} cores"
    );

    // `BENCH_PARTS=alone,e2e` runs only some parts (raw, alone, e2e, streams, burst, hostapi,
    // latency, startup); the ratios need raw and alone.
    let parts = std::env::var("BENCH_PARTS")
        .unwrap_or_else(|_| "raw,alone,e2e,streams,burst,hostapi,latency,startup".into());
    let part = |p: &str| parts.split(',').any(|x| x == p);
    let raw = if part("raw") {
        raw_subscriber_rate(messages)
    } else {
        f64::NAN
    };
    row(
        &mut rows,
        "raw redis-rs subscriber receive rate (ceiling)",
        format!("{raw:.0} msg/s"),
    );

    let rt = Runtime::new(&EngineOptions {
        max_instances: 64,
        max_memory: 256 << 20,
        cache_dir: Some(cache.path().join("code")),
    })
    .unwrap();
    row(
        &mut rows,
        "pooling allocator in use",
        format!("{}", rt.pooling),
    );
    let mut alone = Vec::new();
    for s in subjects().into_iter().filter(|_| part("alone")) {
        let exec = Arc::new(prepare(&rt, &s));
        let one = executor_alone(exec.clone(), s.payload, calls, 1);
        let all = executor_alone(exec, s.payload, calls, cores);
        row(
            &mut rows,
            format!("executor alone, {}, 1 worker", s.name),
            format!("{one:.0} calls/s = {:.1} µs/call", 1e6 / one),
        );
        row(
            &mut rows,
            format!("executor alone, {}, {cores} workers", s.name),
            format!(
                "{all:.0} calls/s = {:.1} µs/call ({:.2}x one worker)",
                1e6 / all,
                all / one
            ),
        );
        alone.push(all);
    }
    // End to end with default settings (quiet): every subject on the same
    // pipelined flood.
    let all_subjects = subjects();
    for (i, s) in all_subjects.iter().enumerate().filter(|_| part("e2e")) {
        let (rate, summary, rss) = end_to_end(s, messages, false, cache.path());
        row(
            &mut rows,
            format!("end to end, {}", s.name),
            format!("{rate:.0} msg/s ({summary})"),
        );
        if let Some(alone) = alone.get(i) {
            row(
                &mut rows,
                format!("  ratio end-to-end / executor alone ({cores} workers)"),
                format!("{:.0}%", 100.0 * rate / alone),
            );
        }
        row(
            &mut rows,
            "  ratio end-to-end / raw subscriber",
            format!("{:.0}%", 100.0 * rate / raw),
        );
        row(
            &mut rows,
            "  peak RSS",
            format!("{:.1} MiB", rss as f64 / 1024.0),
        );
        // The echo of handler output to the terminal is on by default: the
        // same flood to the C handler without `-q`.
        if i == 1 {
            let (echo, summary, _) = end_to_end(s, messages, true, cache.path());
            row(
                &mut rows,
                format!("end to end, {}, echo on (no -q)", s.name),
                format!(
                    "{echo:.0} msg/s ({summary}); {:.0}% of -q",
                    100.0 * echo / rate
                ),
            );
        }
    }
    // Streams next to pub/sub: the same trivial handler, entries shared by
    // one and by two processes through a consumer group.
    for procs in [1, 2].into_iter().filter(|_| part("streams")) {
        let (rate, group) = streams_end_to_end(messages, procs, cache.path());
        row(
            &mut rows,
            format!(
                "streams end to end, {}, {procs} process{}",
                all_subjects[0].name,
                if procs == 1 { "" } else { "es" }
            ),
            format!("{rate:.0} entries/s ({group})"),
        );
    }
    // A burst of a million small messages with default settings: absorbed
    // by the memory-bounded queue, none dropped.
    if part("burst") {
        let burst = env_usize("BENCH_BURST", 1_000_000);
        let c = Subject {
            payload: |i| format!("m{i:015}").into_bytes(),
            ..subjects().swap_remove(1)
        };
        let (rate, summary, rss) = end_to_end(&c, burst, false, cache.path());
        row(
            &mut rows,
            format!("burst of {burst} 16-byte messages, defaults, {}", c.name),
            format!(
                "{rate:.0} msg/s ({summary}), peak RSS {:.1} MiB",
                rss as f64 / 1024.0
            ),
        );
    }
    if part("hostapi") {
        let (rate, first, all, opened) = host_api_end_to_end(messages, cache.path());
        row(
            &mut rows,
            "end to end, Spin SDK 5 component doing one outbound INCR per message (host API)",
            format!(
                "{rate:.0} msg/s; redis connections open: {first} after 1 message, {all} after {} (the subscriber and the pooled outbound one); opened by spin-redis during the {messages} messages: {opened}",
                messages + 1
            ),
        );
    }
    if part("latency") {
        let (r50, r99) = raw_latency(10_000, 2);
        row(
            &mut rows,
            "latency at 10k msg/s, publish → plain redis-rs subscriber (the floor)",
            format!("p50 {r50:.0} µs, p99 {r99:.0} µs"),
        );
        let ((s50, s99), (e50, e99), n) = latency(10_000, 2, cache.path());
        row(
            &mut rows,
            format!("latency at 10k msg/s, publish → handler start ({n} messages)"),
            format!("p50 {s50:.0} µs, p99 {e99_:.0} µs", e99_ = s99),
        );
        row(
            &mut rows,
            "latency at 10k msg/s, publish → handler end",
            format!("p50 {e50:.0} µs, p99 {e99:.0} µs"),
        );
    }
    if part("startup") {
        let cold_cache = tempfile::tempdir().unwrap();
        let cold = start_up(cold_cache.path());
        let warm = start_up(cold_cache.path());
        row(
            &mut rows,
            "start-up to subscribed, Python component (18 MB), cold cache",
            format!("{cold:.2} s"),
        );
        row(
            &mut rows,
            "start-up to subscribed, Python component (18 MB), warm cache",
            format!("{warm:.2} s"),
        );
    }
    let mut out = std::io::stdout().lock();
    writeln!(out, "| measurement | result |\n|---|---|").unwrap();
    for r in rows {
        writeln!(out, "| {} | {} |", r.what, r.value).unwrap();
    }
}
