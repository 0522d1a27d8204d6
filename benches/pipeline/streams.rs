//! The streams rows: the trivial handler on a stream trigger; one or two
//! `spin-redis up` processes share a consumer group while entries are added
//! (pipelined `XADD`); done when the group has read and acknowledged every
//! entry (`XINFO GROUPS`: pending 0, lag 0). Baseline: the raw subscriber.
//!
//! Not owned here: pub/sub end to end (`end_to_end`).

use crate::harness::{Report, Up, connect, repo, start_redis, wait_for};
use std::path::Path;
use std::time::{Duration, Instant};

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

/// One and two processes sharing a group.
pub fn rows(report: &mut Report, messages: usize, cache: &Path) {
    for procs in [1, 2] {
        let (rate, group) = streams_end_to_end(messages, procs, cache);
        report.row(
            format!(
                "streams end to end, trivial WAT compat module (echo.wat), {procs} process{}",
                if procs == 1 { "" } else { "es" }
            ),
            format!("{rate:.0} entries/s ({group})"),
            rate,
            "raw",
        );
    }
}
