//! Reloading a running app under load: SIGHUP (a changed component swapped,
//! a trigger added), `watch` (a watched source rebuilt and swapped), and
//! what must change nothing (a failed build, a manifest made invalid).
//!
//! The handlers are WAT echo modules that print `<version>:<payload>`; a
//! version is changed by writing the file anew. A publisher sends numbered
//! messages throughout, and the handlers' log must hold every number
//! exactly once, the later ones from the new version. The trigger runs one
//! message at a time, so the versions split the numbers in two.

use crate::support;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use support::*;

/// A WASI preview1 module that prints `prefix`, the payload, and a newline.
fn echo_wat(prefix: &str) -> String {
    format!(
        r#"(module
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 2)
  (func $write (param $ptr i32) (param $len i32)
    (i32.store (i32.const 64) (local.get $ptr))
    (i32.store (i32.const 68) (local.get $len))
    (drop (call $fd_write (i32.const 1) (i32.const 64) (i32.const 1) (i32.const 72))))
  (func $read_all (result i32)
    (local $total i32) (local $n i32)
    (loop $more
      (i32.store (i32.const 80) (i32.add (i32.const 4096) (local.get $total)))
      (i32.store (i32.const 84) (i32.const 32768))
      (drop (call $fd_read (i32.const 0) (i32.const 80) (i32.const 1) (i32.const 88)))
      (local.set $n (i32.load (i32.const 88)))
      (local.set $total (i32.add (local.get $total) (local.get $n)))
      (br_if $more (i32.gt_u (local.get $n) (i32.const 0))))
    (local.get $total))
  (data (i32.const 100) "\n")
  (data (i32.const 200) "{prefix}")
  (func (export "_start")
    (call $write (i32.const 200) (i32.const {len}))
    (call $write (i32.const 4096) (call $read_all))
    (call $write (i32.const 100) (i32.const 1))))
"#,
        len = prefix.len()
    )
}

/// Writes `text` to `path` in one step (a rename), so that a reader never
/// sees half a file.
fn write_atomically(path: &Path, text: &str) {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// A v2 manifest: channel `load` to component `echo` (`handler.wat`), one
/// message at a time; with `extra`, channel `extra` to component `extra`.
fn app_manifest(url: &str, build: &str, extra: bool) -> String {
    let mut m = format!(
        "spin_manifest_version = 2\n[application]\nname = \"reload\"\n[application.trigger.redis]\naddress = \"{url}\"\n\
         [[trigger.redis]]\nchannel = \"load\"\ncomponent = \"echo\"\nmax_concurrency = 1\nexecutor = {{ type = \"wagi\" }}\n"
    );
    if extra {
        m.push_str("[[trigger.redis]]\nchannel = \"extra\"\ncomponent = \"extra\"\nexecutor = { type = \"wagi\" }\n");
    }
    m.push_str(&format!(
        "[component.echo]\nsource = \"handler.wat\"\n{build}"
    ));
    if extra {
        m.push_str("[component.extra]\nsource = \"extra.wat\"\n");
    }
    m
}

/// Publishes `0, 1, 2, ...` on `load` until stopped; returns how many.
struct Publisher {
    stop: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    thread: Option<std::thread::JoinHandle<u64>>,
}

impl Publisher {
    fn start(redis: &Redis) -> Publisher {
        let stop = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(AtomicU64::new(0));
        let client = redis::Client::open(redis.url()).unwrap();
        let (s, n) = (stop.clone(), sent.clone());
        let thread = std::thread::spawn(move || {
            let mut con = client.get_connection().expect("connect to redis");
            let mut i = 0u64;
            while !s.load(Ordering::Relaxed) {
                let _: i64 = redis::cmd("PUBLISH")
                    .arg("load")
                    .arg(i.to_string())
                    .query(&mut con)
                    .expect("PUBLISH");
                i += 1;
                n.store(i, Ordering::Relaxed);
                // Paced, so that the backlog stays small; not a timing.
                if i.is_multiple_of(50) {
                    std::thread::sleep(Duration::from_millis(2));
                }
            }
            i
        });
        Publisher {
            stop,
            sent,
            thread: Some(thread),
        }
    }

    /// Waits until `more` further messages were sent.
    fn wait_more(&self, more: u64) {
        let from = self.sent.load(Ordering::Relaxed);
        wait_until(&format!("{more} more messages published"), || {
            self.sent.load(Ordering::Relaxed) >= from + more
        });
    }

    fn stop(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().expect("running").join().unwrap()
    }
}

/// The `(version, number)` of every line the `echo` component printed.
fn handled(s: &SpinRedis) -> Vec<(String, u64)> {
    s.log_text("echo_stdout.txt")
        .lines()
        .map(|l| {
            let (v, n) = l.split_once(':').unwrap_or_else(|| panic!("line {l:?}"));
            (
                v.to_string(),
                n.parse().unwrap_or_else(|_| panic!("line {l:?}")),
            )
        })
        .collect()
}

/// Checks that `numbers`, sorted, are `0..sent`, naming the missing and
/// the repeated ones (not the thousands that are right).
fn each_once(numbers: &[u64], sent: u64) {
    let mut sorted = numbers.to_vec();
    sorted.sort_unstable();
    let repeated: Vec<u64> = sorted
        .windows(2)
        .filter(|w| w[0] == w[1])
        .map(|w| w[0])
        .collect();
    let missing: Vec<u64> = (0..sent)
        .filter(|n| sorted.binary_search(n).is_err())
        .collect();
    assert!(
        repeated.is_empty() && missing.is_empty() && sorted.len() as u64 == sent,
        "each of 0..{sent} once: repeated {repeated:?}, missing {missing:?}"
    );
}

/// Waits until `sent` lines were handled, then checks each number was
/// handled exactly once, in order, by `old` first and `new` from some point
/// on (at least once each).
fn every_number_once(s: &SpinRedis, sent: u64, old: &str, new: &str) {
    wait_until_within(
        &format!("{sent} messages handled"),
        START_UP_PATIENCE,
        || s.log_text("echo_stdout.txt").lines().count() as u64 >= sent,
    );
    let lines = handled(s);
    let numbers: Vec<u64> = lines.iter().map(|(_, n)| *n).collect();
    each_once(&numbers, sent);
    assert!(numbers.is_sorted(), "in order of arrival");
    let switch = lines
        .iter()
        .position(|(v, _)| v == new)
        .expect("the new version handled messages");
    assert!(switch > 0, "the old version handled the first messages");
    assert!(lines[..switch].iter().all(|(v, _)| v == old), "{lines:?}");
    assert!(lines[switch..].iter().all(|(v, _)| v == new), "{lines:?}");
}

/// An app folder: the manifest (without `extra`), `handler.wat` at version
/// `v1` and `extra.wat`.
fn app(redis: &Redis, build: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("spin.toml");
    std::fs::write(&m, app_manifest(&redis.url(), build, false)).unwrap();
    std::fs::write(dir.path().join("handler.wat"), echo_wat("v1:")).unwrap();
    std::fs::write(dir.path().join("extra.wat"), echo_wat("x:")).unwrap();
    (dir, m)
}

#[test]
fn sighup_swaps_a_changed_component_and_adds_a_trigger_without_losing_a_message() {
    let redis = Redis::start();
    let (dir, m) = app(&redis, "");
    let mut s = SpinRedis::up(&redis, &m, &[], &["load"]);
    let publisher = Publisher::start(&redis);
    publisher.wait_more(1000);
    // Both changes in one reload: a new version and a new trigger.
    write_atomically(&dir.path().join("handler.wat"), &echo_wat("v2:"));
    write_atomically(&m, &app_manifest(&redis.url(), "", true));
    s.signal("-HUP");
    s.wait_stderr("reloaded");
    let line = s.stderr();
    let line = line.lines().find(|l| l.contains("reloaded")).unwrap();
    assert!(line.contains("channel \\\"extra\\\" -> extra"), "{line}");
    assert!(line.contains("swapped=[\"echo\"]"), "{line}");
    wait_until("the new trigger subscribed", || {
        redis.subscribers("extra") >= 1
    });
    redis.publish("extra", b"hello");
    s.wait_log("extra_stdout.txt", "x:hello\n");
    // The subscription to `load` stayed: one subscriber all along.
    assert_eq!(redis.subscribers("load"), 1);
    publisher.wait_more(1000);
    let sent = publisher.stop();
    every_number_once(&s, sent, "v1", "v2");
    assert!(s.stop().success(), "{}", s.stderr());
}

/// The build of `echo` under `watch`: `handler.wat` made from
/// `src/version.txt` (two characters, the length of the placeholder `VV`),
/// refused when the version is `fail`.
const BUILD: &str = "[component.echo.build]\n\
    command = \"test \\\"$(cat src/version.txt)\\\" != fail && sed \\\"s/VV/$(cat src/version.txt)/\\\" template.wat > handler.wat.tmp && mv handler.wat.tmp handler.wat\"\n\
    watch = [\"src/*.txt\"]\n";

#[test]
fn watch_rebuilds_and_swaps_a_changed_component_without_losing_a_message() {
    let redis = Redis::start();
    let (dir, m) = app(&redis, BUILD);
    std::fs::create_dir(dir.path().join("src")).unwrap();
    std::fs::write(dir.path().join("src/version.txt"), "v1").unwrap();
    std::fs::write(dir.path().join("template.wat"), echo_wat("VV:")).unwrap();
    let port = free_port();
    let metrics = format!("127.0.0.1:{port}");
    let mut s = SpinRedis::spawn_command("watch", &m, &["--metrics", &metrics], &[]);
    s.wait_stderr("watching");
    wait_until_within("subscribed to load", START_UP_PATIENCE, || {
        assert!(s.is_running(), "{}", s.stderr());
        redis.subscribers("load") >= 1
    });
    let publisher = Publisher::start(&redis);
    publisher.wait_more(1000);

    // A build that fails leaves v1 running, and says why.
    write_atomically(&dir.path().join("src/version.txt"), "fail");
    s.wait_stderr("rebuilding echo failed");
    wait_until("the failed reload counted", || {
        scrape(port).get("spin_redis_reloads_total{result=\"error\"}") == Some(&1.0)
    });
    publisher.wait_more(1000);
    assert!(handled(&s).iter().all(|(v, _)| v == "v1"));

    // A good change is rebuilt and swapped.
    write_atomically(&dir.path().join("src/version.txt"), "v2");
    s.wait_stderr("rebuilt echo; swapping");
    s.wait_stderr("reloaded");
    wait_until("v2 handled messages", || {
        handled(&s).iter().any(|(v, _)| v == "v2")
    });
    publisher.wait_more(1000);
    let sent = publisher.stop();
    every_number_once(&s, sent, "v1", "v2");
    let m = scrape(port);
    assert_eq!(m.get("spin_redis_reloads_total{result=\"ok\"}"), Some(&1.0));
    assert_eq!(redis.subscribers("load"), 1);
    assert!(s.stop().success(), "{}", s.stderr());
}

#[test]
fn a_manifest_made_invalid_before_sighup_changes_nothing() {
    let redis = Redis::start();
    let (dir, m) = app(&redis, "");
    let port = free_port();
    let metrics = format!("127.0.0.1:{port}");
    let mut s = SpinRedis::up(&redis, &m, &["--metrics", &metrics], &["load"]);
    let publisher = Publisher::start(&redis);
    publisher.wait_more(1000);
    // A new version on disk, but a manifest that no longer validates: the
    // reload stops at the manifest, and v1 stays.
    write_atomically(&dir.path().join("handler.wat"), &echo_wat("v2:"));
    let broken =
        app_manifest(&redis.url(), "", false).replace("channel = \"load\"", "channel = \"\"");
    write_atomically(&m, &broken);
    s.signal("-HUP");
    s.wait_stderr("reload failed");
    let stderr = s.stderr();
    let line = stderr
        .lines()
        .find(|l| l.contains("reload failed"))
        .unwrap();
    assert!(line.contains("spin.toml"), "names the file: {line}");
    assert!(line.contains("channel"), "names the error: {line}");
    wait_until("the failed reload counted", || {
        scrape(port).get("spin_redis_reloads_total{result=\"error\"}") == Some(&1.0)
    });
    publisher.wait_more(1000);
    // A component that no longer prepares changes nothing either.
    write_atomically(&m, &app_manifest(&redis.url(), "", false));
    write_atomically(
        &dir.path().join("handler.wat"),
        "(module (this is not wat))",
    );
    s.signal("-HUP");
    wait_until("the second failed reload counted", || {
        scrape(port).get("spin_redis_reloads_total{result=\"error\"}") == Some(&2.0)
    });
    publisher.wait_more(1000);
    let sent = publisher.stop();
    wait_until_within(
        &format!("{sent} messages handled"),
        START_UP_PATIENCE,
        || handled(&s).len() as u64 >= sent,
    );
    let lines = handled(&s);
    each_once(&lines.iter().map(|(_, n)| *n).collect::<Vec<_>>(), sent);
    assert!(
        lines.iter().all(|(v, _)| v == "v1"),
        "the old version ran throughout"
    );
    assert_eq!(
        scrape(port).get("spin_redis_reloads_total{result=\"ok\"}"),
        Some(&0.0)
    );
    assert!(s.stop().success(), "{}", s.stderr());
}

#[test]
fn sighup_unsubscribes_a_removed_trigger_and_keeps_the_others() {
    let redis = Redis::start();
    let (_dir, m) = app(&redis, "");
    write_atomically(&m, &app_manifest(&redis.url(), "", true));
    let mut s = SpinRedis::up(&redis, &m, &[], &["load", "extra"]);
    redis.publish("extra", b"before");
    s.wait_log("extra_stdout.txt", "x:before\n");
    write_atomically(&m, &app_manifest(&redis.url(), "", false));
    s.signal("-HUP");
    s.wait_stderr("reloaded");
    let stderr = s.stderr();
    let line = stderr.lines().find(|l| l.contains("reloaded")).unwrap();
    assert!(
        line.contains("removed=[\"channel \\\"extra\\\" -> extra\"]"),
        "{line}"
    );
    assert!(
        line.contains("added=[]") && line.contains("swapped=[]"),
        "{line}"
    );
    wait_until("the removed trigger unsubscribed", || {
        redis.subscribers("extra") == 0
    });
    assert_eq!(
        redis.subscribers("load"),
        1,
        "the other subscription stayed"
    );
    redis.publish("load", b"0");
    wait_until("the staying trigger still handled", || {
        handled(&s) == vec![("v1".to_string(), 0)]
    });
    assert!(s.stop().success(), "{}", s.stderr());
}

#[test]
fn sighup_restarts_a_stream_trigger_whose_component_changed_without_losing_an_entry() {
    let redis = Redis::start();
    let dir = tempfile::tempdir().unwrap();
    let m = dir.path().join("spin.toml");
    std::fs::write(
        &m,
        format!(
            "spin_manifest_version = 2\n[application]\nname = \"reload\"\n[application.trigger.redis]\naddress = \"{}\"\n\
             [[trigger.redis]]\nstream = \"jobs\"\ncomponent = \"echo\"\nexecutor = {{ type = \"wagi\" }}\n\
             [component.echo]\nsource = \"handler.wat\"\n",
            redis.url()
        ),
    )
    .unwrap();
    std::fs::write(dir.path().join("handler.wat"), echo_wat("v1:")).unwrap();
    let mut s = SpinRedis::spawn(&m, &[]);
    let client = redis::Client::open(redis.url()).unwrap();
    let mut con = client.get_connection().unwrap();
    let mut add = |n: u64| {
        let _: String = redis::cmd("XADD")
            .arg("jobs")
            .arg("*")
            .arg("payload")
            .arg(n.to_string())
            .query(&mut con)
            .expect("XADD");
    };
    for n in 0..1000 {
        add(n);
    }
    wait_until_within("v1 handled entries", START_UP_PATIENCE, || {
        !handled(&s).is_empty()
    });
    write_atomically(&dir.path().join("handler.wat"), &echo_wat("v2:"));
    s.signal("-HUP");
    for n in 1000..2000 {
        add(n);
    }
    s.wait_stderr("reloaded");
    for n in 2000..3000 {
        add(n);
    }
    wait_until_within("every entry handled", START_UP_PATIENCE, || {
        handled(&s).len() >= 3000
    });
    let lines = handled(&s);
    each_once(&lines.iter().map(|(_, n)| *n).collect::<Vec<_>>(), 3000);
    let line = s.stderr();
    let line = line.lines().find(|l| l.contains("reloaded")).unwrap();
    assert!(
        line.contains("restarted=[\"stream \\\"jobs\\\" -> echo\"]"),
        "{line}"
    );
    assert!(lines.iter().any(|(v, _)| v == "v1"));
    let after: Vec<&(String, u64)> = lines.iter().filter(|(_, n)| *n >= 2000).collect();
    assert!(
        after.iter().all(|(v, _)| v == "v2"),
        "entries added after the reload ran on v2"
    );
    assert!(s.stop().success(), "{}", s.stderr());
}

/// A SIGHUP while `up` is still compiling (a Go module, cold cache) does not
/// end the process (SIGHUP's default action): it is taken as a reload once
/// the app is up, and the reload swaps in a component written again after
/// it was compiled (the running handler is known by the bytes it was made
/// of, not by the file as it is later).
#[test]
fn sighup_during_start_up_is_a_reload_once_up_not_the_end() {
    let redis = Redis::start();
    let (dir, m) = manifest(&format!(
        "{}{}{}{}{}",
        v2_head("early", &redis.url()),
        wagi_trigger("channel", "quick", "quick"),
        wagi_trigger("channel", "slow", "slow"),
        v2_component("quick", "handler.wat"),
        v2_component("slow", guest("go-sleep").display()),
    ));
    std::fs::write(dir.path().join("handler.wat"), echo_wat("v1:")).unwrap();
    let mut s = SpinRedis::spawn(&m, &[]);
    // `quick` is prepared first; `slow` is still compiling.
    s.wait_stderr("prepared component=quick");
    assert_eq!(
        redis.subscribers("quick"),
        0,
        "the signal must come before start-up ends:\n{}",
        s.stderr()
    );
    write_atomically(&dir.path().join("handler.wat"), &echo_wat("v2:"));
    s.signal("-HUP");
    s.wait_stderr("reloaded cause=\"SIGHUP\"");
    assert!(s.is_running(), "{}", s.stderr());
    wait_until("subscribed to quick", || redis.subscribers("quick") >= 1);
    let line = s.stderr();
    let line = line.lines().find(|l| l.contains("reloaded")).unwrap();
    assert!(line.contains("swapped=[\"quick\"]"), "{line}");
    redis.publish("quick", b"hello");
    s.wait_log("quick_stdout.txt", "v2:hello\n");
    assert!(s.stop().success(), "{}", s.stderr());
}
