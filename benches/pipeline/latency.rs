//! The latency rows: `stamp.wat` writes the publish timestamp carried in the
//! payload and its own clock at start and end; messages at a fixed rate from
//! a publisher that sleeps between publishes. The floor is the plain
//! subscriber of `raw`, on the same paced messages in the same run.
//!
//! Not owned here: the floor's subscriber (`raw::latency`).

use crate::harness::{
    Redis, Report, Up, connect, manifest, percentile, repo, start_redis, wait_for,
};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Publishes `rate` × `seconds` messages on "bench", each carrying the
/// wall-clock nanoseconds at its publish; returns how many.
pub fn paced_publish(redis: &Redis, rate: u64, seconds: u64) -> u64 {
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

/// (p50, p99) of publish→start and publish→end in µs at `rate` msg/s.
fn handler_latency(rate: u64, seconds: u64, cache: &Path) -> ((f64, f64), (f64, f64), usize) {
    let redis = start_redis();
    let dir = tempfile::tempdir().unwrap();
    let wasm = repo().join("compat/tests/fixtures/stamp.wat");
    let m = manifest(dir.path(), &wasm, "wagi", None, &redis.url());
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

/// The floor, then publish→start and publish→end, at 10k msg/s for 2 s.
pub fn rows(report: &mut Report, cache: &Path) {
    let (r50, r99) = crate::raw::latency(10_000, 2);
    report.baseline("latency p99", r99, "plain subscriber's p99");
    report.base(
        "latency at 10k msg/s, publish → plain redis-rs subscriber (the floor)",
        format!("p50 {r50:.0} µs, p99 {r99:.0} µs"),
    );
    let ((s50, s99), (e50, e99), n) = handler_latency(10_000, 2, cache);
    report.row(
        format!("latency at 10k msg/s, publish → handler start ({n} messages)"),
        format!("p50 {s50:.0} µs, p99 {s99:.0} µs"),
        s99,
        "latency p99",
    );
    report.row(
        "latency at 10k msg/s, publish → handler end",
        format!("p50 {e50:.0} µs, p99 {e99:.0} µs"),
        e99,
        "latency p99",
    );
}
