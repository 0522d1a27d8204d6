//! The atomic steps of a list trigger, each one Lua script (`EVAL`) over keys
//! of one slot (see `keys`), so that no crash between two commands can lose
//! an item or run it uncounted:
//!
//! - [`take`]: move up to n items from the list to this consumer's
//!   processing list and count a delivery of each;
//! - [`count`]: count the delivery of an item the blocking `BLMOVE` took (a
//!   blocking command cannot run in a script; a process killed between the
//!   two undercounts that one attempt);
//! - [`count_held`]: count another attempt of an item, if it is still in
//!   this consumer's processing list (a retry, or resuming after a restart);
//! - [`settle`]: remove handled (or dead-lettered) items from the processing
//!   list and forget their counts;
//! - [`hand_back`]: move a consumer's processing list back to the queue,
//!   unless its heartbeat lives (`force`: this consumer's own, at shutdown).
//!
//! Delivery counts are keyed by the SHA-1 of an item's content (items carry
//! no id and are not wrapped): identical items share one count.
//!
//! Not owned here: when each step runs (`consume`, `recover`).

use super::keys::Keys;
use bytes::Bytes;
use redis::Value;
use redis::aio::ConnectionLike;

const TAKE: &str = r"
local out = {}
for i = 1, tonumber(ARGV[1]) do
  local item = redis.call('LMOVE', KEYS[1], KEYS[2], 'RIGHT', 'LEFT')
  if not item then break end
  out[#out + 1] = item
  out[#out + 1] = redis.call('HINCRBY', KEYS[3], redis.sha1hex(item), 1)
end
return out
";

const COUNT: &str = r"
return redis.call('HINCRBY', KEYS[1], redis.sha1hex(ARGV[1]), 1)
";

const COUNT_HELD: &str = r"
if not redis.call('LPOS', KEYS[1], ARGV[1]) then return -1 end
return redis.call('HINCRBY', KEYS[2], redis.sha1hex(ARGV[1]), 1)
";

const SETTLE: &str = r"
local removed = 0
for i = 1, #ARGV do
  if redis.call('LREM', KEYS[1], 1, ARGV[i]) == 1 then
    removed = removed + 1
    redis.call('HDEL', KEYS[2], redis.sha1hex(ARGV[i]))
  end
end
return removed
";

// The processing list's left end holds the item taken last: moving from the
// left to the queue's right end puts the item taken first where the next
// consumer pops.
const HAND_BACK: &str = r"
if ARGV[2] == '1' then
  redis.call('DEL', KEYS[3])
elseif redis.call('EXISTS', KEYS[3]) == 1 then
  return -1
end
local n = 0
while redis.call('LMOVE', KEYS[2], KEYS[1], 'LEFT', 'RIGHT') do n = n + 1 end
if ARGV[2] ~= '1' then redis.call('SREM', KEYS[4], ARGV[1]) end
return n
";

fn eval(script: &str, keys: &[&str]) -> redis::Cmd {
    let mut cmd = redis::cmd("EVAL");
    cmd.arg(script).arg(keys.len());
    for k in keys {
        cmd.arg(*k);
    }
    cmd
}

fn delivery(n: i64) -> u32 {
    u32::try_from(n.max(1)).unwrap_or(u32::MAX)
}

/// Moves up to `n` items to the processing list; each with its delivery
/// count, the item taken first first.
pub async fn take(
    conn: &mut impl ConnectionLike,
    keys: &Keys,
    n: usize,
) -> redis::RedisResult<Vec<(Bytes, u32)>> {
    let reply: Value = eval(TAKE, &[&keys.list, &keys.processing, &keys.deliveries])
        .arg(n)
        .query_async(conn)
        .await?;
    Ok(taken(reply))
}

/// `[item, count, item, count, ...]`.
fn taken(reply: Value) -> Vec<(Bytes, u32)> {
    let Value::Array(flat) = reply else {
        return Vec::new();
    };
    flat.chunks_exact(2)
        .filter_map(|pair| match pair {
            [Value::BulkString(item), Value::Int(n)] => {
                Some((Bytes::copy_from_slice(item), delivery(*n)))
            }
            _ => None,
        })
        .collect()
}

/// Counts a delivery of `item` (just moved by `BLMOVE`).
pub async fn count(
    conn: &mut impl ConnectionLike,
    keys: &Keys,
    item: &[u8],
) -> redis::RedisResult<u32> {
    let n: i64 = eval(COUNT, &[&keys.deliveries])
        .arg(item)
        .query_async(conn)
        .await?;
    Ok(delivery(n))
}

/// Counts another delivery of `item` if it is still in this consumer's
/// processing list; `None` when it is not (handed back meanwhile).
pub async fn count_held(
    conn: &mut impl ConnectionLike,
    keys: &Keys,
    item: &[u8],
) -> redis::RedisResult<Option<u32>> {
    let n: i64 = eval(COUNT_HELD, &[&keys.processing, &keys.deliveries])
        .arg(item)
        .query_async(conn)
        .await?;
    Ok((n >= 0).then(|| delivery(n)))
}

/// Removes settled items (one occurrence each) from the processing list and
/// forgets their counts; returns how many were still there.
pub async fn settle(
    conn: &mut impl ConnectionLike,
    keys: &Keys,
    items: &[Bytes],
) -> redis::RedisResult<usize> {
    let mut cmd = eval(SETTLE, &[&keys.processing, &keys.deliveries]);
    for item in items {
        cmd.arg(item.as_ref());
    }
    let n: i64 = cmd.query_async(conn).await?;
    Ok(usize::try_from(n).unwrap_or(0))
}

/// Moves `consumer`'s processing list back to the queue and forgets the
/// consumer, unless its heartbeat lives (`None`). With `force` (this
/// consumer's own list, at shutdown) its heartbeat is deleted first and it
/// stays registered, so that a live consumer also hands back anything a
/// read still in flight adds later.
pub async fn hand_back(
    conn: &mut impl ConnectionLike,
    keys: &Keys,
    consumer: &str,
    force: bool,
) -> redis::RedisResult<Option<u64>> {
    let processing = keys.processing_of(consumer);
    let heartbeat = keys.heartbeat_of(consumer);
    let n: i64 = eval(
        HAND_BACK,
        &[&keys.list, &processing, &heartbeat, &keys.consumers],
    )
    .arg(consumer)
    .arg(if force { "1" } else { "0" })
    .query_async(conn)
    .await?;
    Ok(u64::try_from(n).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_take_reply_pairs_items_with_their_counts() {
        let reply = Value::Array(vec![
            Value::BulkString(b"a".to_vec()),
            Value::Int(1),
            Value::BulkString(b"b".to_vec()),
            Value::Int(3),
        ]);
        assert_eq!(
            taken(reply),
            vec![(Bytes::from("a"), 1), (Bytes::from("b"), 3)]
        );
        assert!(taken(Value::Nil).is_empty());
    }
}
