//! spin-redis example: a Redis component written with the Spin Rust SDK 5.
//!
//! `#[spin_sdk::redis_component]` exports the unversioned
//! `fermyon:spin/inbound-redis` interface (`handle-message`). The handler
//! prints each payload reversed, then uses Spin's host APIs the way the Spin
//! docs show them:
//! - variables (`fermyon:spin/variables@2.0.0`): the Redis address, the
//!   channel to publish on and an optional webhook come from the component's
//!   variables;
//! - outbound Redis (`fermyon:spin/redis@2.0.0`): `INCR reverse:messages`
//!   counts the messages, and the reversed text is `PUBLISH`ed;
//! - outbound HTTP (`wasi:http`, through `spin_sdk::http::send`): when the
//!   `webhook` variable is set, the reversed text is POSTed to it.
//!
//! A payload `count:<key>` instead counts visits of `<key>` in the default
//! key-value store (`fermyon:spin/key-value@2.0.0`), and `incr:<key>` only
//! increments `<key>` in Redis (one `INCR`, nothing else: the benchmark's
//! host-API handler), and `echo:<text>` only prints `<text>` (Spin's
//! hello-world handler: the benchmark's trivial SDK 5 handler).
//!
//! A payload that is not UTF-8, or that is exactly `fail`, fails the message:
//! the SDK prints the error to stderr and returns `error::error` to the host.
//! So does any host API call that fails (a refused host, a store the
//! component may not open, an undefined variable): the SDK prints only the
//! outermost error, so host API errors are passed up as they are.

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use spin_sdk::{key_value, redis, redis_component, variables};

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
    let store = key_value::Store::open_default()?;
    let n = store
        .get(key)?
        .and_then(|v| String::from_utf8(v).ok())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0)
        + 1;
    store.set(key, n.to_string().as_bytes())?;
    Ok(n)
}

/// POSTs `text` to `url`; returns the response status.
fn post(url: &str, text: &str) -> Result<u16> {
    let request = spin_sdk::http::Request::post(url, text.to_string())
        .header("content-type", "text/plain")
        .build();
    let response: spin_sdk::http::Response =
        spin_sdk::http::run(spin_sdk::http::send(request))?;
    Ok(*response.status())
}

#[redis_component]
fn on_message(message: Bytes) -> Result<()> {
    if let Some(text) = message.strip_prefix(b"echo:") {
        println!("{}", String::from_utf8_lossy(text));
        return Ok(());
    }
    if let Some(key) = message.strip_prefix(b"count:") {
        let key = String::from_utf8_lossy(key);
        let n = count(&key)?;
        println!("{key} seen {n} times");
        return Ok(());
    }
    if let Some(key) = message.strip_prefix(b"incr:") {
        let key = String::from_utf8_lossy(key);
        let conn = redis::Connection::open(&variables::get("redis_address")?)?;
        let n = conn.incr(&key)?;
        println!("{key} is now {n}");
        return Ok(());
    }
    let reversed = reverse(&message)?;
    let channel = std::env::var("REDIS_CHANNEL").unwrap_or_else(|_| "?".into());
    println!("reversed on {channel}: {reversed}");

    let address = variables::get("redis_address")?;
    let results = variables::get("results_channel")?;
    let conn = redis::Connection::open(&address)?;
    let n = conn.incr("reverse:messages")?;
    conn.publish(&results, &reversed.as_bytes().to_vec())?;
    println!("message {n}, published to {results}");

    let webhook = variables::get("webhook")?;
    if !webhook.is_empty() {
        let status = post(&webhook, &reversed)?;
        println!("webhook answered {status}");
    }
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
