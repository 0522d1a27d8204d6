//! spin-redis example: a Redis subscriber written with the Spin Rust SDK 7.
//!
//! `#[spin_sdk::redis_subscriber]` exports `spin:redis/inbound-redis@3.0.0`,
//! whose `handle-message` is an `async func` (component-model async). The
//! handler prints each payload's size and first word, then uses Spin's host
//! APIs (all async in SDK 7) the way the Spin docs show them:
//! - key-value (`spin:key-value/key-value@3.0.0`): counts how often each first
//!   word was seen in the default store, and how many distinct words it holds
//!   (`get-keys`, a stream);
//! - variables (`spin:variables/variables@3.0.0`): the Redis address and the
//!   channel to publish on;
//! - outbound Redis (`spin:redis/redis@3.0.0`): `INCR words:messages` and
//!   `PUBLISH` of the first word.
//!
//! An empty payload (or one with only whitespace) fails the message: the SDK
//! prints the error to stderr and returns `error::other("<message>")` to the
//! host. So does a host API call that fails.

use anyhow::{bail, Result};
use bytes::Bytes;
use spin_sdk::{key_value, redis, redis_subscriber, variables};

/// The first word of a payload, or why it has none.
fn first_word(message: &[u8]) -> Result<String> {
    if message.is_empty() {
        bail!("empty payload");
    }
    let text = String::from_utf8_lossy(message);
    let Some(first) = text.split_whitespace().next() else {
        bail!("payload has no words ({} bytes of whitespace)", message.len());
    };
    Ok(first.to_string())
}

/// Counts one more sighting of `word`; returns it and the distinct words.
async fn count(word: &str) -> Result<(u64, usize)> {
    let store = key_value::Store::open_default().await?;
    let key = format!("word:{word}");
    let seen = store
        .get(&key)
        .await?
        .and_then(|v| String::from_utf8(v).ok())
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0)
        + 1;
    store.set(&key, seen.to_string()).await?;
    let distinct = store
        .get_keys()
        .await
        .collect()
        .await?
        .iter()
        .filter(|k| k.starts_with("word:"))
        .count();
    Ok((seen, distinct))
}

#[redis_subscriber]
async fn on_message(message: Bytes) -> Result<()> {
    let word = first_word(&message)?;
    let channel = std::env::var("REDIS_CHANNEL").unwrap_or_else(|_| "?".into());
    println!("{} bytes, first word {word:?} on {channel}", message.len());

    let (seen, distinct) = count(&word).await?;
    let address = variables::get("redis_address").await?;
    let results = variables::get("results_channel").await?;
    let conn = redis::Connection::open(&address).await?;
    let n = conn.incr("words:messages").await?;
    conn.publish(&results, word.as_bytes()).await?;
    println!("{word:?} seen {seen} times ({distinct} distinct words); message {n}, published to {results}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::first_word;

    #[test]
    fn finds_the_first_word() {
        assert_eq!(first_word(b"hello world").unwrap(), "hello");
        assert_eq!(first_word(b"  solo\n").unwrap(), "solo");
    }

    #[test]
    fn fails_on_empty() {
        assert!(first_word(b"").is_err());
        assert!(first_word(b" \t\n").is_err());
    }
}
