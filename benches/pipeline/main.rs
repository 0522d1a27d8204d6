//! The spin-redis benchmark: `cargo bench --bench pipeline`.
//!
//! Prints one table, every figure measured in the same run on the same
//! machine and every row with its ratio to a baseline of that run: the raw
//! redis-rs subscriber rate (the ceiling of every throughput row), the
//! executors alone (no Redis), end to end through a real redis-server under
//! a pipelined flood (every message accounted for), streams through a
//! consumer group shared by one and by two processes, a 1M burst, the host
//! API, latency at a fixed rate against a plain subscriber's, start-up with
//! a cold and a warm cache, and how cost grows with the number of triggers,
//! the payload size and the number of components. Needs the example
//! handlers (`bash examples/build.sh`) and `redis-server`.
//!
//! Sizes: `BENCH_MESSAGES` (end-to-end flood, default 100000),
//! `BENCH_CALLS` (executor-alone calls, default 20000), `BENCH_BURST`
//! (default 1000000), `BENCH_PAYLOAD_BYTES` (bytes published per payload
//! row, default 64 MiB). `BENCH_PARTS=alone,e2e` runs only some parts (see
//! `PARTS`), `BENCH_SUBJECT=echo.wat` only the handlers whose name holds
//! that. `BENCH_WRITE_APP=<dir>:<triggers>[:<redis url>]` only writes
//! the many-trigger app of the scale rows, for profiling `check` and `up`.

mod alone;
mod end_to_end;
mod harness;
mod host_api;
mod latency;
mod raw;
mod scale;
mod startup;
mod streams;
mod subjects;

/// The test harness's redis-server.
#[path = "../../tests/support/mod.rs"]
mod support;

use harness::{Report, env_usize};
use spin_redis::executor::engine::{EngineOptions, Runtime};

/// Every part, in the order they run.
const PARTS: &str =
    "raw,alone,e2e,streams,burst,hostapi,latency,startup,triggers,payloads,components";

fn main() {
    // `cargo bench` passes `--bench`; nothing else is accepted.
    if let Ok(spec) = std::env::var("BENCH_WRITE_APP") {
        write_app(&spec);
        return;
    }
    let messages = env_usize("BENCH_MESSAGES", 100_000);
    let calls = env_usize("BENCH_CALLS", 20_000);
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let cache = tempfile::tempdir().unwrap();
    let mut report = Report::default();
    eprintln!(
        "spin-redis benchmark: {messages} messages end to end, {calls} executor calls, {cores} cores"
    );
    // The ratios need the baselines: raw (throughput) and alone (executors).
    let parts = std::env::var("BENCH_PARTS").unwrap_or_else(|_| PARTS.into());
    let part = |p: &str| parts.split(',').any(|x| x == p);

    let raw = if part("raw") {
        raw::subscriber_rate(messages)
    } else {
        f64::NAN
    };
    report.baseline("raw", raw, "raw subscriber");
    report.base(
        "raw redis-rs subscriber receive rate (ceiling)",
        format!("{raw:.0} msg/s"),
    );

    let rt = Runtime::new(&EngineOptions {
        max_instances: 64,
        max_memory: 256 << 20,
        cache_dir: Some(cache.path().join("code")),
    })
    .unwrap();
    report.row_with("pooling allocator in use", format!("{}", rt.pooling), "-");
    let subjects = subjects::chosen();
    let alone = if part("alone") {
        alone::rows(&mut report, &rt, &subjects, calls, cores)
    } else {
        Vec::new()
    };
    if part("e2e") {
        end_to_end::rows(
            &mut report,
            &subjects,
            &alone,
            messages,
            cores,
            cache.path(),
        );
    }
    if part("streams") {
        streams::rows(&mut report, messages, cache.path());
    }
    if part("burst") {
        end_to_end::burst_row(&mut report, &subjects::subjects()[1], cache.path());
    }
    if part("hostapi") {
        host_api::row(&mut report, messages, cache.path());
    }
    if part("latency") {
        latency::rows(&mut report, cache.path());
    }
    if part("startup") {
        startup::rows(&mut report);
    }
    if part("triggers") {
        scale::trigger_rows(&mut report, cache.path());
    }
    if part("payloads") {
        scale::payload_rows(&mut report, messages, cache.path());
    }
    if part("components") {
        scale::component_rows(&mut report);
    }
    report.print();
}

/// `BENCH_WRITE_APP=<dir>:<triggers>[:<redis url>]`: writes the
/// many-trigger app of the scale rows (for profiling `check` or `up` on it)
/// and prints its path.
fn write_app(spec: &str) {
    let mut parts = spec.splitn(3, ':');
    let dir = parts
        .next()
        .expect("invariant: splitn yields at least one part");
    let n: usize = parts
        .next()
        .and_then(|n| n.parse().ok())
        .expect("BENCH_WRITE_APP=<dir>:<triggers>[:<redis url>]");
    let url = parts.next().unwrap_or("redis://127.0.0.1:6379");
    std::fs::create_dir_all(dir).unwrap();
    let m = scale::write_trigger_app(std::path::Path::new(dir), n, url);
    println!("{}", m.display());
}
