//! spin-redis example: a Redis component written with the Spin Rust SDK 5.
//!
//! `#[spin_sdk::redis_component]` exports the unversioned
//! `fermyon:spin/inbound-redis` interface (`handle-message`). The handler
//! prints each payload reversed. A payload that is not UTF-8, or that is
//! exactly `fail`, fails the message: the SDK prints the error to stderr and
//! returns `error::error` to the host.

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use spin_sdk::redis_component;

/// Reverse a payload's text, or explain why it cannot be handled.
fn reverse(message: &[u8]) -> Result<String> {
    let text = std::str::from_utf8(message).context("payload is not valid UTF-8")?;
    if text == "fail" {
        bail!("asked to fail (payload was \"fail\")");
    }
    Ok(text.chars().rev().collect())
}

#[redis_component]
fn on_message(message: Bytes) -> Result<()> {
    let reversed = reverse(&message)?;
    let channel = std::env::var("REDIS_CHANNEL").unwrap_or_else(|_| "?".into());
    println!("reversed on {channel}: {reversed}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::reverse;

    #[test]
    fn reverses_text() {
        assert_eq!(reverse(b"hello world").unwrap(), "dlrow olleh");
        assert_eq!(reverse("añb".as_bytes()).unwrap(), "bña");
        assert_eq!(reverse(b"").unwrap(), "");
    }

    #[test]
    fn fails_on_fail_and_bad_utf8() {
        assert!(reverse(b"fail").is_err());
        assert!(reverse(b"\xff\xfe").is_err());
        assert!(reverse(b"failure").is_ok());
    }
}
