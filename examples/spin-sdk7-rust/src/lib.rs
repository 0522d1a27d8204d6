//! spin-redis example: a Redis subscriber written with the Spin Rust SDK 7.
//!
//! `#[spin_sdk::redis_subscriber]` exports `spin:redis/inbound-redis@3.0.0`,
//! whose `handle-message` is an `async func` (component-model async). The
//! handler prints each payload's size and first word. An empty payload (or one
//! with only whitespace) fails the message: the SDK prints the error to stderr
//! and returns `error::other("<message>")` to the host.

use anyhow::{bail, Result};
use bytes::Bytes;
use spin_sdk::redis_subscriber;

/// Describe a payload in one line, or explain why it cannot be handled.
fn describe(message: &[u8]) -> Result<String> {
    if message.is_empty() {
        bail!("empty payload");
    }
    let text = String::from_utf8_lossy(message);
    let Some(first) = text.split_whitespace().next() else {
        bail!("payload has no words ({} bytes of whitespace)", message.len());
    };
    Ok(format!("{} bytes, first word {first:?}", message.len()))
}

#[redis_subscriber]
async fn on_message(message: Bytes) -> Result<()> {
    let line = describe(&message)?;
    let channel = std::env::var("REDIS_CHANNEL").unwrap_or_else(|_| "?".into());
    println!("{line} on {channel}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::describe;

    #[test]
    fn describes_payloads() {
        assert_eq!(describe(b"hello world").unwrap(), "11 bytes, first word \"hello\"");
        assert_eq!(describe(b"  solo\n").unwrap(), "7 bytes, first word \"solo\"");
    }

    #[test]
    fn fails_on_empty() {
        assert!(describe(b"").is_err());
        assert!(describe(b" \t\n").is_err());
    }
}
