//! A Redis message handler for spin-redis, written with Spin's Rust SDK.

use anyhow::Result;
use bytes::Bytes;
use spin_sdk::redis_subscriber;

/// Runs once for every message published on the channel: prints its payload
/// (spin-redis writes a component's stdout to its log and the terminal).
/// An `Err` fails the message, and spin-redis logs the failure.
#[redis_subscriber]
async fn on_message(message: Bytes) -> Result<()> {
    println!("{}", String::from_utf8_lossy(&message));
    Ok(())
}
