//! rust-sleep-component: an adversarial component handler for spin-redis's
//! tests, exporting the seed world `redis-handler` (`wit/spin-redis.wit` at
//! the root of the repository).
//!
//! It prints `sleeping on <payload>` to stdout (flushed at once), then sleeps
//! for an hour with `std::thread::sleep`, which on wasm32-wasip2 blocks in the
//! host (`wasi:clocks/monotonic-clock` subscribe-duration, then
//! `wasi:io/poll`), so only a deadline that holds against blocking host calls
//! can stop it. The payload `quick` returns `ok` right after the line instead.

wit_bindgen::generate!({
    path: "../../../wit/spin-redis.wit",
    world: "redis-handler",
});

use std::io::Write as _;
use std::time::Duration;

struct Handler;

impl Guest for Handler {
    fn handle_redis_message(message: Payload) -> Result<(), Error> {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(b"sleeping on ");
        let _ = out.write_all(&message);
        let _ = out.write_all(b"\n");
        let _ = out.flush();
        drop(out);
        if message != b"quick" {
            std::thread::sleep(Duration::from_secs(3600));
        }
        Ok(())
    }
}

export!(Handler);
