//! The commands every interface version offers, once: `publish`, `get`,
//! `set`, `incr`, `del`, `sadd`, `smembers`, `srem` and `execute`, in the
//! v3 vocabulary (`v3::Error`, `v3::RedisResult`); each adapter (`v1`,
//! `v2`, `v3`) only converts its own types around them. `with_commands!`
//! lists the eight fixed commands once, so that each adapter writes its
//! method shape once. What connection `execute` needs is decided here too.
//!
//! Not owned here: sending and measuring (`target`), the pool (`pool`).

use super::target::{Target, command_error};
use super::v3;
use redis::{RedisError, Value};

/// Calls the macro `$adapter` with the eight fixed commands as
/// `name(argument: type, ...) -> v3 ok type;`, one a line. (`open`,
/// `execute` and `drop` differ between versions: each adapter writes them.)
macro_rules! with_commands {
    ($adapter:ident) => {
        $adapter! {
            publish(channel: String, payload: Vec<u8>) -> ();
            get(key: String) -> Option<Vec<u8>>;
            set(key: String, value: Vec<u8>) -> ();
            incr(key: String) -> i64;
            del(keys: Vec<String>) -> u32;
            sadd(key: String, values: Vec<String>) -> u32;
            smembers(key: String) -> Vec<String>;
            srem(key: String, values: Vec<String>) -> u32;
        }
    };
}
pub(super) use with_commands;

/// `From` between v3's `redis-parameter` and `redis-result` and the
/// same-shaped `RedisParameter` and `RedisResult` of the adapter it is
/// invoked in (`v1`, `v2`).
macro_rules! convert_values {
    () => {
        impl From<RedisParameter> for v3::RedisParameter {
            fn from(p: RedisParameter) -> v3::RedisParameter {
                match p {
                    RedisParameter::Int64(n) => v3::RedisParameter::Int64(n),
                    RedisParameter::Binary(b) => v3::RedisParameter::Binary(b),
                }
            }
        }

        impl From<v3::RedisResult> for RedisResult {
            fn from(r: v3::RedisResult) -> RedisResult {
                match r {
                    v3::RedisResult::Nil => RedisResult::Nil,
                    v3::RedisResult::Status(s) => RedisResult::Status(s),
                    v3::RedisResult::Int64(n) => RedisResult::Int64(n),
                    v3::RedisResult::Binary(b) => RedisResult::Binary(b),
                }
            }
        }
    };
}
pub(super) use convert_values;

/// An older adapter's `execute` arguments as v3's, which the commands take.
pub fn v3_arguments<P: Into<v3::RedisParameter>>(arguments: Vec<P>) -> Vec<v3::RedisParameter> {
    arguments.into_iter().map(Into::into).collect()
}

/// What a command needs of its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    Pooled,
    Dedicated,
    Refused,
}

/// Commands that change a connection's state or hold it up: they get a
/// connection of their own. (Subscriptions and replication streams turn the
/// connection into something else: refused.)
pub fn needs(command: &str, args: &[v3::RedisParameter]) -> Needs {
    let c = command.to_ascii_uppercase();
    match c.as_str() {
        "SUBSCRIBE" | "PSUBSCRIBE" | "SSUBSCRIBE" | "UNSUBSCRIBE" | "PUNSUBSCRIBE"
        | "SUNSUBSCRIBE" | "MONITOR" | "SYNC" | "PSYNC" | "QUIT" => Needs::Refused,
        "MULTI" | "EXEC" | "DISCARD" | "WATCH" | "UNWATCH" | "SELECT" | "AUTH" | "HELLO"
        | "RESET" | "CLIENT" | "READONLY" | "READWRITE" | "SWAPDB" | "BLPOP" | "BRPOP"
        | "BRPOPLPUSH" | "BLMOVE" | "BLMPOP" | "BZPOPMIN" | "BZPOPMAX" | "BZMPOP" | "WAIT"
        | "WAITAOF" => Needs::Dedicated,
        "XREAD" | "XREADGROUP"
            if args.iter().any(
                |a| matches!(a, v3::RedisParameter::Binary(b) if b.eq_ignore_ascii_case(b"BLOCK")),
            ) =>
        {
            Needs::Dedicated
        }
        _ => Needs::Pooled,
    }
}

pub async fn publish(c: Target, channel: String, payload: Vec<u8>) -> Result<(), v3::Error> {
    c.query::<i64>(redis::cmd("PUBLISH").arg(channel).arg(payload))
        .await
        .map(drop)
}

pub async fn get(mut c: Target, key: String) -> Result<Option<Vec<u8>>, v3::Error> {
    c.probe("GET", std::slice::from_ref(&key.clone().into_bytes()))
        .await?;
    c.query(redis::cmd("GET").arg(key)).await
}

pub async fn set(c: Target, key: String, value: Vec<u8>) -> Result<(), v3::Error> {
    c.query::<()>(redis::cmd("SET").arg(key).arg(value)).await
}

pub async fn incr(c: Target, key: String) -> Result<i64, v3::Error> {
    c.query(redis::cmd("INCR").arg(key)).await
}

pub async fn del(c: Target, keys: Vec<String>) -> Result<u32, v3::Error> {
    if keys.is_empty() {
        return Ok(0);
    }
    c.query(redis::cmd("DEL").arg(keys)).await
}

pub async fn sadd(c: Target, key: String, values: Vec<String>) -> Result<u32, v3::Error> {
    c.query(redis::cmd("SADD").arg(key).arg(values)).await
}

pub async fn srem(c: Target, key: String, values: Vec<String>) -> Result<u32, v3::Error> {
    c.query(redis::cmd("SREM").arg(key).arg(values)).await
}

pub async fn smembers(mut c: Target, key: String) -> Result<Vec<String>, v3::Error> {
    c.probe("SMEMBERS", std::slice::from_ref(&key.clone().into_bytes()))
        .await?;
    c.query(redis::cmd("SMEMBERS").arg(key)).await
}

pub async fn execute(
    mut c: Target,
    command: String,
    args: Vec<v3::RedisParameter>,
) -> Result<Vec<v3::RedisResult>, v3::Error> {
    let texts: Vec<Vec<u8>> = args
        .iter()
        .map(|a| match a {
            v3::RedisParameter::Int64(n) => n.to_string().into_bytes(),
            v3::RedisParameter::Binary(b) => b.clone(),
        })
        .collect();
    c.probe(&command, &texts).await?;
    let mut cmd = redis::cmd(&command);
    for a in args {
        match a {
            v3::RedisParameter::Int64(n) => cmd.arg(n),
            v3::RedisParameter::Binary(b) => cmd.arg(b),
        };
    }
    let value: Value = c.query(&cmd).await?;
    let mut out = Vec::new();
    flatten(value, &mut out)?;
    Ok(out)
}

/// Spin's mapping of a reply onto `redis-result`s: arrays are flattened.
fn flatten(value: Value, out: &mut Vec<v3::RedisResult>) -> Result<(), v3::Error> {
    match value {
        Value::Nil => out.push(v3::RedisResult::Nil),
        Value::Int(n) => out.push(v3::RedisResult::Int64(n)),
        Value::BulkString(b) => out.push(v3::RedisResult::Binary(b)),
        Value::SimpleString(s) => out.push(v3::RedisResult::Status(s)),
        Value::Okay => out.push(v3::RedisResult::Status("OK".into())),
        Value::Double(d) => out.push(v3::RedisResult::Binary(d.to_string().into_bytes())),
        Value::Boolean(b) => out.push(v3::RedisResult::Int64(i64::from(b))),
        // The number as Redis wrote it (this build has no big-integer type).
        Value::BigNumber(n) => out.push(v3::RedisResult::Binary(n)),
        Value::Array(items) | Value::Set(items) => {
            for v in items {
                flatten(v, out)?;
            }
        }
        Value::ServerError(e) => return Err(command_error(RedisError::from(e))),
        other => {
            return Err(v3::Error::Other(format!(
                "the reply cannot be returned as redis-result values: {other:?}"
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stateful_and_blocking_commands_get_a_connection_of_their_own() {
        let none: &[v3::RedisParameter] = &[];
        assert_eq!(needs("incr", none), Needs::Pooled);
        assert_eq!(needs("XREAD", none), Needs::Pooled);
        for c in ["multi", "EXEC", "select", "BLPOP", "wait", "client"] {
            assert_eq!(needs(c, none), Needs::Dedicated, "{c}");
        }
        let block = [
            v3::RedisParameter::Binary(b"block".to_vec()),
            v3::RedisParameter::Int64(0),
        ];
        assert_eq!(needs("xreadgroup", &block), Needs::Dedicated);
        for c in ["subscribe", "PSUBSCRIBE", "monitor"] {
            assert_eq!(needs(c, none), Needs::Refused, "{c}");
        }
    }
}
