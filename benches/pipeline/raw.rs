//! The baselines that involve no spin-redis at all: a plain async redis-rs
//! subscriber that only counts (the throughput ceiling) and one that stamps
//! receipt times of paced messages (the latency floor).
//!
//! Not owned here: the paced publisher (`latency`).

use crate::harness::{flood, percentile, start_redis};
use futures_util::StreamExt as _;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// A plain async redis-rs subscriber on `channel` in a thread of its own:
/// returns once it is subscribed; the thread calls `on` with `state` for
/// each of `n` messages and ends with `state` and the instant of the last.
fn subscriber<S: Send + 'static>(
    url: String,
    channel: &'static str,
    n: usize,
    mut state: S,
    on: fn(&mut S, redis::Msg),
) -> std::thread::JoinHandle<(S, Instant)> {
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let client = redis::Client::open(url).unwrap();
            let mut ps = client.get_async_pubsub().await.unwrap();
            ps.subscribe(channel).await.unwrap();
            ready_tx.send(()).unwrap();
            let mut stream = ps.on_message();
            for _ in 0..n {
                on(&mut state, stream.next().await.unwrap());
            }
            (state, Instant::now())
        })
    });
    ready_rx.recv().unwrap();
    thread
}

/// The raw ceiling: messages/s an async redis-rs subscriber receives.
pub fn subscriber_rate(n: usize) -> f64 {
    let redis = start_redis();
    let counter = subscriber(redis.url(), "raw", n, (), |_, _| {});
    let start = Instant::now();
    flood(&redis.url(), "raw", n, |i| format!("m{i:07}").into_bytes());
    let (_, end) = counter.join().unwrap();
    n as f64 / (end - start).as_secs_f64()
}

/// The floor for the latency rows: (p50, p99) in µs from publish to receipt
/// by a plain redis-rs subscriber at `rate` msg/s, on the same machine.
pub fn latency(rate: u64, seconds: u64) -> (f64, f64) {
    let redis = start_redis();
    let expected = (rate * seconds) as usize;
    let lat = Vec::with_capacity(expected);
    let subscriber = subscriber(redis.url(), "bench", expected, lat, |lat, msg| {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64;
        let sent = u64::from_le_bytes(msg.get_payload_bytes()[..8].try_into().unwrap());
        lat.push(now.saturating_sub(sent) as f64 / 1000.0);
    });
    crate::latency::paced_publish(&redis, rate, seconds);
    let (mut lat, _) = subscriber.join().unwrap();
    (percentile(&mut lat, 0.5), percentile(&mut lat, 0.99))
}
