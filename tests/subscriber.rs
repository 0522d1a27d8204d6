//! The single-server subscriber connection of our own
//! (`src/source/subscriber.rs`) against a real redis-server: a payload over
//! `max_payload` is streamed past, skipped and counted for every trigger it
//! was for while the next message is delivered; an address asking for
//! RESP3 and a database subscribes to channels and patterns and receives
//! through push frames. (Reconnecting, TLS, passwords, reloads and the
//! watchdog on this connection are the `faults`, `reload` and `sources`
//! tests.)

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
