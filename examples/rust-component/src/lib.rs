//! spin-redis example: a Rust component handler for the seed world
//! `redis-handler` (`wit/spin-redis.wit` at the root of the repository).
//!
//! Each message is an order, either `name:amount` (`apple:3`) or a JSON
//! object (`{"name": "apple", "amount": 3}`). A valid order prints one line to
//! stdout; anything else prints one line to stderr and fails the message.

wit_bindgen::generate!({
    path: "../../wit/spin-redis.wit",
    world: "redis-handler",
});

use serde::Deserialize;

struct Handler;

#[derive(Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
struct Order {
    name: String,
    amount: u32,
}

/// Parse one payload into an order, or explain what is wrong with it.
fn parse_order(payload: &[u8]) -> Result<Order, String> {
    let text = std::str::from_utf8(payload).map_err(|e| format!("not UTF-8: {e}"))?;
    let text = text.trim();
    let order = if text.starts_with('{') {
        serde_json::from_str::<Order>(text).map_err(|e| format!("bad JSON order: {e}"))?
    } else {
        let (name, amount) = text
            .split_once(':')
            .ok_or_else(|| "expected `name:amount` or a JSON object".to_string())?;
        let amount = amount
            .trim()
            .parse::<u32>()
            .map_err(|e| format!("bad amount {:?}: {e}", amount.trim()))?;
        Order { name: name.trim().to_string(), amount }
    };
    if order.name.is_empty() {
        return Err("empty name".into());
    }
    if order.amount == 0 {
        return Err("amount must be at least 1".into());
    }
    Ok(order)
}

impl Guest for Handler {
    fn handle_redis_message(message: Payload) -> Result<(), Error> {
        let channel = std::env::var("REDIS_CHANNEL").unwrap_or_else(|_| "?".into());
        match parse_order(&message) {
            Ok(order) => {
                println!("order {} x{} on {}", order.name, order.amount, channel);
                Ok(())
            }
            Err(why) => {
                eprintln!(
                    "malformed order on {channel} ({} bytes): {why}",
                    message.len()
                );
                Err(Error::Error)
            }
        }
    }
}

export!(Handler);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_forms() {
        let want = Order { name: "apple".into(), amount: 3 };
        assert_eq!(parse_order(b"apple:3"), Ok(want));
        assert_eq!(parse_order(b" apple : 3 \n").unwrap().amount, 3);
        assert_eq!(
            parse_order(br#"{"name":"apple","amount":3}"#).unwrap().name,
            "apple"
        );
    }

    #[test]
    fn rejects_malformed() {
        for bad in [&b"apple"[..], b"apple:x", b":3", b"apple:0", b"{\"name\":1}", b"\xff:1", b""] {
            assert!(parse_order(bad).is_err(), "{bad:?}");
        }
    }
}
