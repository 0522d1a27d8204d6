//! The scale rows: how cost grows with the work. Time to subscribed, peak
//! RSS and one message on each channel for 100, 1 000 and 10 000 triggers
//! (each with its growth factor against the previous size); payloads from
//! 16 B to 1 MiB (msg/s, MB/s, peak RSS); 100 components in one app
//! (start-up with a cold and a warm cache, peak RSS). Also the app writer
//! these rows (and a profile of `check` or `up`) use:
//! `BENCH_WRITE_APP=<dir>:<triggers>` writes the many-trigger app and exits.
//!
//! Not owned here: the one-component floods (`end_to_end`).

use crate::harness::{Report, Up, env_usize, flood, mib, repo, start_redis, wait_for};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The trigger counts of the trigger rows.
const TRIGGERS: [usize; 3] = [100, 1_000, 10_000];
/// The payload sizes of the payload rows.
const PAYLOADS: [usize; 4] = [16, 1024, 64 * 1024, 1024 * 1024];
/// The components of the many-component rows.
const COMPONENTS: usize = 100;

/// Writes a v2 manifest into `dir`: `triggers` triggers, trigger i on
/// channel `c<i>`, all bound to one component, the trivial WAT module
/// `echo.wat`, at `url`. Returns its path.
pub fn write_trigger_app(dir: &Path, triggers: usize, url: &str) -> PathBuf {
    let mut text = format!(
        "spin_manifest_version = 2\n[application]\nname = \"scale\"\n[application.trigger.redis]\naddress = \"{url}\"\n"
    );
    for i in 0..triggers {
        text.push_str(&format!(
            "[[trigger.redis]]\nchannel = \"c{i}\"\ncomponent = \"echo\"\nexecutor = {{ type = \"wagi\" }}\n"
        ));
    }
    text.push_str(&format!(
        "[component.echo]\nsource = \"{}\"\n",
        repo().join("compat/tests/fixtures/echo.wat").display()
    ));
    let p = dir.join("spin.toml");
    std::fs::write(&p, text).unwrap();
    p
}

/// Writes `n` distinct modules (echo.wat with a data segment naming each,
/// so none shares another's compiled code) and an app binding module i to
/// channel `c<i>`. Returns the manifest's path.
fn write_component_app(dir: &Path, n: usize, url: &str) -> PathBuf {
    let echo = std::fs::read_to_string(repo().join("compat/tests/fixtures/echo.wat")).unwrap();
    let mut text = format!(
        "spin_manifest_version = 2\n[application]\nname = \"components\"\n[application.trigger.redis]\naddress = \"{url}\"\n"
    );
    for i in 0..n {
        let wat = echo.replacen(
            "(data (i32.const 100) \"\\n\")",
            &format!("(data (i32.const 100) \"\\n\") (data (i32.const 200) \"component {i}\")"),
            1,
        );
        assert_ne!(wat, echo, "echo.wat has its newline data segment");
        std::fs::write(dir.join(format!("c{i}.wat")), wat).unwrap();
        text.push_str(&format!(
            "[[trigger.redis]]\nchannel = \"c{i}\"\ncomponent = \"c{i}\"\nexecutor = {{ type = \"wagi\" }}\n[component.c{i}]\nsource = \"c{i}.wat\"\n"
        ));
    }
    let p = dir.join("spin.toml");
    std::fs::write(&p, text).unwrap();
    p
}

/// What `INFO` says: `pubsub_channels` (from `INFO stats`) or the calls of
/// a command (`cmdstat_<cmd>:calls=N` from `INFO commandstats`).
fn info_number(con: &mut redis::Connection, section: &str, key: &str) -> u64 {
    let info: String = redis::cmd("INFO").arg(section).query(con).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix(key))
        .and_then(|v| {
            v.trim_start_matches("calls=")
                .split(|c: char| !c.is_ascii_digit())
                .next()
                .and_then(|n| n.parse().ok())
        })
        .unwrap_or(0)
}

/// Starts `up` on `manifest` and waits until `channels` channels are
/// subscribed; returns (the running process, seconds from spawn to then).
fn up_until_subscribed(
    con: &mut redis::Connection,
    manifest: &Path,
    channels: u64,
    cache: &Path,
) -> (Up, f64) {
    let start = Instant::now();
    let up = Up::start(manifest, &[], cache);
    wait_for("every channel subscribed", Duration::from_secs(120), || {
        info_number(con, "stats", "pubsub_channels:") >= channels
    });
    (up, start.elapsed().as_secs_f64())
}

/// What one trigger row measured.
struct TriggerRun {
    subscribed: f64,
    subscribes: u64,
    rss_subscribed: u64,
    one_each: f64,
    rss: u64,
}

/// `n` triggers: time to subscribed, how many SUBSCRIBE commands it took,
/// peak RSS then, and the time for one message on every channel.
fn triggers(n: usize, cache: &Path) -> TriggerRun {
    let redis = start_redis();
    let dir = tempfile::tempdir().unwrap();
    let m = write_trigger_app(dir.path(), n, &redis.url());
    let mut con = crate::harness::connect(&redis);
    let (up, subscribed) = up_until_subscribed(&mut con, &m, n as u64, cache);
    let subscribes = info_number(&mut con, "commandstats", "cmdstat_subscribe:");
    let rss_subscribed = up.peak_rss_kib();
    // One 8-byte message per channel, pipelined; echo.wat writes 9 bytes.
    let start = Instant::now();
    let mut pipe = redis::pipe();
    for i in 0..n {
        pipe.cmd("PUBLISH")
            .arg(format!("c{i}"))
            .arg("m0000000")
            .ignore();
    }
    let () = pipe.query(&mut con).unwrap();
    wait_for(
        "one message on every channel",
        Duration::from_secs(120),
        || up.log_len_of("echo") >= 9 * n as u64,
    );
    let one_each = start.elapsed().as_secs_f64();
    let rss = up.peak_rss_kib();
    let _ = up.stop();
    TriggerRun {
        subscribed,
        subscribes,
        rss_subscribed,
        one_each,
        rss,
    }
}

/// The trigger rows; the first size is the baseline of the others, and
/// each prints its growth against the size before it.
pub fn trigger_rows(report: &mut Report, cache: &Path) {
    let mut before: Option<(usize, TriggerRun)> = None;
    for n in TRIGGERS {
        let r = triggers(n, cache);
        let what = format!("{n} triggers on {n} channels (trivial module), start to subscribed");
        let value = format!(
            "{:.2} s ({} SUBSCRIBE command(s)), peak RSS {} subscribed; one message on each channel: {:.2} s, peak RSS {}",
            r.subscribed,
            r.subscribes,
            mib(r.rss_subscribed),
            r.one_each,
            mib(r.rss)
        );
        match &before {
            None => {
                report.baseline("triggers", r.subscribed, "the 100-trigger start");
                report.base(what, value);
            }
            Some((m, b)) => report.row_with(
                what,
                value,
                format!(
                    "growth for {}x the triggers: start {:.1}x, one each {:.1}x, RSS {:.2}x",
                    n / m,
                    r.subscribed / b.subscribed,
                    r.one_each / b.one_each,
                    r.rss as f64 / b.rss as f64
                ),
            ),
        }
        before = Some((n, r));
    }
}

/// `count` messages of `size` bytes to the drain handler; returns (msg/s,
/// peak RSS KiB, summary).
fn payloads(size: usize, count: usize, cache: &Path) -> (f64, u64, String) {
    let redis = start_redis();
    let dir = tempfile::tempdir().unwrap();
    let wasm = repo().join("benches/pipeline/drain.wat");
    let m = crate::harness::manifest(dir.path(), &wasm, "wagi", None, &redis.url());
    let up = Up::start(&m, &[], cache);
    wait_for("subscription", Duration::from_secs(60), || {
        redis.subscribers("bench") > 0
    });
    let payload = vec![b'x'; size];
    let start = Instant::now();
    let publisher = {
        let url = redis.url();
        std::thread::spawn(move || flood(&url, "bench", count, |_| payload.clone()))
    };
    let (last_len, last_change) = up.wait_output(3 * count as u64, Duration::from_secs(5));
    let elapsed = last_change - start;
    publisher.join().unwrap();
    let (rss, summary) = up.finish();
    ((last_len / 3) as f64 / elapsed.as_secs_f64(), rss, summary)
}

/// One row per payload size: at most `BENCH_PAYLOAD_BYTES` (default 64 MiB)
/// published per row, at most `messages`. Baseline: the 16-byte row.
pub fn payload_rows(report: &mut Report, messages: usize, cache: &Path) {
    let budget = env_usize("BENCH_PAYLOAD_BYTES", 64 << 20);
    for size in PAYLOADS {
        let count = (budget / size).clamp(100, messages);
        let (rate, rss, summary) = payloads(size, count, cache);
        let mbs = rate * size as f64 / 1e6;
        let what = format!("payload {} B x {count} (drain.wat, reads all of it)", size);
        let value = format!(
            "{rate:.0} msg/s = {mbs:.1} MB/s, peak RSS {} ({summary})",
            mib(rss)
        );
        if size == PAYLOADS[0] {
            report.baseline("payload", rate, "16-byte msg/s");
            report.base(what, value);
        } else {
            report.row(what, value, rate, "payload");
        }
    }
}

/// 100 distinct modules in one app: start to subscribed with a cold and
/// then a warm cache, and peak RSS. Baseline: the cold start.
pub fn component_rows(report: &mut Report) {
    let redis = start_redis();
    let dir = tempfile::tempdir().unwrap();
    let m = write_component_app(dir.path(), COMPONENTS, &redis.url());
    let cache = tempfile::tempdir().unwrap();
    let mut con = crate::harness::connect(&redis);
    let mut runs = Vec::new();
    for _ in 0..2 {
        let (up, t) = up_until_subscribed(&mut con, &m, COMPONENTS as u64, cache.path());
        let rss = up.peak_rss_kib();
        let _ = up.stop();
        wait_for("the subscriptions to end", Duration::from_secs(30), || {
            info_number(&mut con, "stats", "pubsub_channels:") == 0
        });
        runs.push((t, rss));
    }
    let (cold, cold_rss) = runs[0];
    let (warm, warm_rss) = runs[1];
    report.baseline("components cold", cold, "the cold start");
    report.base(
        format!(
            "{COMPONENTS} components (distinct modules) in one app, start to subscribed, cold cache"
        ),
        format!("{cold:.2} s, peak RSS {}", mib(cold_rss)),
    );
    report.row(
        format!("{COMPONENTS} components in one app, start to subscribed, warm cache"),
        format!("{warm:.2} s, peak RSS {}", mib(warm_rss)),
        warm,
        "components cold",
    );
}
