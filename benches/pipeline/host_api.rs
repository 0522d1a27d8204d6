//! The host API row: a Spin SDK 5 component doing one outbound `INCR` per
//! message (examples/spin-sdk5-rust, payload `incr:bench`), end to end. The
//! point of its last column: the outbound connection is opened once, by the
//! first message, and shared by every later `open`. Baseline: the raw
//! subscriber.
//!
//! Not owned here: the plain end-to-end rows (`end_to_end`).

use crate::harness::{Report, Up, connect, flood, repo, start_redis, wait_for};
use std::path::Path;
use std::time::{Duration, Instant};

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

pub fn row(report: &mut Report, messages: usize, cache: &Path) {
    let (rate, first, all, opened) = host_api_end_to_end(messages, cache);
    report.row(
        "end to end, Spin SDK 5 component doing one outbound INCR per message (host API)",
        format!(
            "{rate:.0} msg/s; redis connections open: {first} after 1 message, {all} after {} (the subscriber and the pooled outbound one); opened by spin-redis during the {messages} messages: {opened}",
            messages + 1
        ),
        rate,
        "raw",
    );
}
