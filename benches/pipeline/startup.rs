//! The start-up rows: seconds from `up` starting to the subscription, for
//! the Python component (18 MB), with a cold and then a warm compiled-code
//! cache. Baseline: the cold start.
//!
//! Not owned here: start-up at scale (`scale`).

use crate::harness::{Report, Up, repo, start_redis, wait_for};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

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

pub fn rows(report: &mut Report) {
    let cache = tempfile::tempdir().unwrap();
    let cold = start_up(cache.path());
    let warm = start_up(cache.path());
    report.baseline("python cold", cold, "the cold start");
    report.base(
        "start-up to subscribed, Python component (18 MB), cold cache",
        format!("{cold:.2} s"),
    );
    report.row(
        "start-up to subscribed, Python component (18 MB), warm cache",
        format!("{warm:.2} s"),
        warm,
        "python cold",
    );
}
