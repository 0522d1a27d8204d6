//! spin-redis example: a Redis component written with the Spin Rust SDK 5.
//!
//! `#[spin_sdk::redis_component]` exports the unversioned
//! `fermyon:spin/inbound-redis` interface (`handle-message`). The handler
//! prints each payload reversed. A payload that is not UTF-8, or that is
//! exactly `fail`, fails the message: the SDK prints the error to stderr and
//! returns `error::error` to the host.
//!
//! A payload `count:<key>` instead counts visits in Spin's key-value store, a
//! Spin host API. spin-redis does not provide Spin's host APIs, so under
//! spin-redis that message fails with an error naming the import, and every
//! other message goes on working: the example shows that a component built
//! for Spin loads and runs unchanged as long as it does not call them.

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

/// Counts one visit of `key` in the default key-value store.
fn count(key: &str) -> Result<u64> {
    let store = spin_sdk::key_value::Store::open_default()?;
    let n = store
        .get(key)?
        .and_then(|v| String::from_utf8(v).ok())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0)
        + 1;
    store.set(key, n.to_string().as_bytes())?;
    Ok(n)
}

#[redis_component]
fn on_message(message: Bytes) -> Result<()> {
    if let Some(key) = message.strip_prefix(b"count:") {
        let key = String::from_utf8_lossy(key);
        let n = count(&key)?;
        println!("{key} seen {n} times");
        return Ok(());
    }
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
