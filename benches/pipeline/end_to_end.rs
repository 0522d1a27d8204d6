//! The end-to-end rows: `spin-redis up -q` (release build, default settings)
//! against a real redis-server while a pipelined publisher floods; every
//! message accounted for by the runtime's own summary. Also the echo row
//! (the same flood without `-q`) and the 1M-message burst.
//!
//! Not owned here: the raw subscriber (`raw`), the executors alone (`alone`).

use crate::harness::{Report, Up, env_usize, flood, manifest, mib, start_redis, wait_for};
use crate::subjects::Subject;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

/// Floods `n` messages to `spin-redis up` with default settings (quiet
/// unless `echo`); returns (messages/s, summary line, peak RSS KiB).
pub fn end_to_end(s: &Subject, n: usize, echo: bool, cache: &Path) -> (f64, String, u64) {
    let redis = start_redis();
    let dir = tempfile::tempdir().unwrap();
    let m = manifest(
        dir.path(),
        &s.wasm,
        s.executor,
        s.mount.as_deref(),
        &redis.url(),
    );
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
    // Done when everything arrived, or nothing moved for 2 s (drops).
    let (last_len, end) = up.wait_output(expected, Duration::from_secs(2));
    publisher.join().unwrap();
    let (rss, summary) = up.finish();
    let handled = last_len / per_message.max(1);
    (handled as f64 / (end - start).as_secs_f64(), summary, rss)
}

/// Every subject on the same pipelined flood; `alone` holds the
/// `cores`-worker executor rates in subject order.
pub fn rows(
    report: &mut Report,
    subjects: &[Subject],
    alone: &[f64],
    messages: usize,
    cores: usize,
    cache: &Path,
) {
    for (i, s) in subjects.iter().enumerate() {
        let (rate, summary, rss) = end_to_end(s, messages, false, cache);
        report.row(
            format!("end to end, {}", s.name),
            format!("{rate:.0} msg/s (spin-redis: {summary})"),
            rate,
            "raw",
        );
        if let Some(alone) = alone.get(i) {
            report.row_with(
                format!("  ratio end-to-end / executor alone ({cores} workers)"),
                format!("{:.0}%", 100.0 * rate / alone),
                format!("{:.2}x executor alone", rate / alone),
            );
        }
        let rss_mib = rss as f64 / 1024.0;
        if i == 0 {
            report.baseline("rss", rss_mib, "trivial module's end-to-end peak RSS");
            report.base("  peak RSS", mib(rss));
        } else {
            report.row("  peak RSS", mib(rss), rss_mib, "rss");
        }
        // The echo of handler output to the terminal is on by default: the
        // same flood to the C handler without `-q`.
        if i == 1 {
            let (echo, summary, _) = end_to_end(s, messages, true, cache);
            report.row_with(
                format!("end to end, {}, echo on (no -q)", s.name),
                format!("{echo:.0} msg/s (spin-redis: {summary})"),
                format!("{:.2}x the same with -q", echo / rate),
            );
        }
    }
}

/// A burst of a million small messages with default settings: absorbed by
/// the memory-bounded queue, none dropped. `c` is the C handler.
pub fn burst_row(report: &mut Report, c: &Subject, cache: &Path) {
    let burst = env_usize("BENCH_BURST", 1_000_000);
    let c = Subject {
        payload: |i| format!("m{i:015}").into_bytes(),
        ..c.clone()
    };
    let (rate, summary, rss) = end_to_end(&c, burst, false, cache);
    report.row(
        format!("burst of {burst} 16-byte messages, defaults, {}", c.name),
        format!(
            "{rate:.0} msg/s (spin-redis: {summary}), peak RSS {}",
            mib(rss)
        ),
        rate,
        "raw",
    );
}
