//! The single-server subscriber connection of our own
//! (`src/source/subscriber.rs`) against a real redis-server: a payload over
//! `max_payload` is streamed past, skipped and counted for every trigger it
//! was for while the next message is delivered; an address asking for
//! RESP3 and a database subscribes to channels and patterns and receives
//! through push frames; the ping watchdog reads its pongs, and notices a
//! server that stopped answering. (Reconnecting, TLS, passwords and reloads
//! on this connection are the `faults`, `reload` and `sources` tests.)

use crate::support;
use support::*;

/// An app whose component `h` echoes what channel `c` and pattern `c*` bring.
fn echo_on_channel_and_pattern(url: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    manifest(
        &[
            v2_head("app", url),
            wagi_trigger("channel", "c", "h"),
            wagi_trigger("pattern", "c*", "h"),
            v2_component("h", fixture("echo.wat").display()),
        ]
        .concat(),
    )
}

/// How many times `line` was echoed.
fn echoed(s: &SpinRedis, line: &str) -> usize {
    s.log_text("h_stdout.txt")
        .lines()
        .filter(|l| *l == line)
        .count()
}

#[test]
fn a_payload_over_max_payload_is_streamed_past_counted_and_the_next_delivered() {
    let redis = Redis::start();
    let (_d, m) = echo_on_channel_and_pattern(&redis.url());
    let mut s = SpinRedis::up(&redis, &m, &["--max-payload", "1KiB", "-q"], &["c"]);
    wait_until("the pattern subscribed", || {
        redis
            .cli(&["PUBSUB", "NUMPAT"])
            .is_some_and(|n| n.trim() == "1")
    });
    // Far larger than the read buffer: it must be skipped as it streams in.
    redis.publish("c", &vec![b'x'; 3 << 20]);
    redis.publish("c", b"after");
    wait_until("the next message delivered to both triggers", || {
        echoed(&s, "after") == 2
    });
    s.wait_stderr("message larger than max_payload skipped");
    assert!(s.stop().success());
    // Received 4 (2 messages x 2 triggers): 2 ok, 2 skipped.
    assert_eq!(summary(&s.stderr()), [4, 2, 0, 0, 2, 0], "{}", s.stderr());
    assert!(s.stderr().contains("bytes=3145728"), "{}", s.stderr());
}

#[test]
fn an_address_asking_for_resp3_and_a_database_receives_channels_and_patterns() {
    let redis = Redis::start();
    let (_d, m) = echo_on_channel_and_pattern(&format!("{}/3?protocol=resp3", redis.url()));
    let mut s = SpinRedis::up(&redis, &m, &["-q"], &["c"]);
    wait_until("the pattern subscribed", || {
        redis
            .cli(&["PUBSUB", "NUMPAT"])
            .is_some_and(|n| n.trim() == "1")
    });
    let clients = redis.cli(&["CLIENT", "LIST"]).unwrap_or_default();
    assert!(
        clients
            .lines()
            .any(|l| l.contains("resp=3") && l.contains("db=3")),
        "{clients}"
    );
    redis.publish("c", b"on the channel");
    redis.publish("cx", b"on the pattern only");
    wait_until("both delivered", || {
        echoed(&s, "on the channel") == 2 && echoed(&s, "on the pattern only") == 1
    });
    assert!(s.stop().success());
    assert_eq!(summary(&s.stderr()), [3, 3, 0, 0, 0, 0], "{}", s.stderr());
}

/// `INFO commandstats`: how many `PING`s the server answered.
fn pings(redis: &Redis) -> u64 {
    let stats = redis.cli(&["INFO", "commandstats"]).unwrap_or_default();
    stats
        .lines()
        .find_map(|l| l.strip_prefix("cmdstat_ping:calls="))
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// The redis-server's process id (asked while it answers).
fn pid(redis: &Redis) -> String {
    let info = redis.cli(&["INFO", "server"]).expect("redis answers");
    info.lines()
        .find_map(|l| l.strip_prefix("process_id:"))
        .expect("INFO names the process")
        .trim()
        .to_string()
}

/// Sends `signal` to process `pid`.
fn signal(pid: &str, signal: &str) {
    let killed = std::process::Command::new("kill")
        .args([signal, pid])
        .status()
        .unwrap();
    assert!(killed.success());
}

#[test]
fn the_watchdog_reads_pongs_while_subscribed_and_gives_up_on_a_frozen_server() {
    let redis = Redis::start();
    let (_d, m) = echo_on_channel_and_pattern(&redis.url());
    let mut s = SpinRedis::up(&redis, &m, &["-q"], &["c"]);
    // The watchdog's second ping goes out only once the first one's pong
    // was read (the harness pinged the server before: counted from here).
    let before = pings(&redis);
    wait_until_within("two pings", std::time::Duration::from_secs(120), || {
        pings(&redis) >= before + 2
    });
    assert!(
        !s.stderr().contains("lost the connection"),
        "{}",
        s.stderr()
    );
    // A server that stops answering (but keeps the socket) is noticed by
    // the ping, and the subscription is made again once it is back.
    let pid = pid(&redis);
    signal(&pid, "-STOP");
    s.wait_stderr("ping timed out");
    signal(&pid, "-CONT");
    s.wait_stderr("reconnected to redis and resubscribed");
    wait_until("subscribed again", || redis.subscribers("c") >= 1);
    redis.publish("c", b"after the freeze");
    wait_until("delivered", || echoed(&s, "after the freeze") == 2);
    assert!(s.stop().success());
}
