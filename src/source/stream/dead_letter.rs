//! Dead-lettering a stream entry: appending it to the dead-letter stream and
//! acknowledging it, once, in a bounded number of tries.
//!
//! - **Atomic when it can be**: on one server, or in a cluster when the
//!   stream and its dead-letter stream share a slot, one script checks that
//!   the entry is still pending on this consumer, appends the dead letter,
//!   acknowledges the entry, and takes the dead letter back if the
//!   acknowledgement is refused. A lost reply is harmless: the next try
//!   finds the entry no longer pending and writes nothing.
//! - **Idempotent otherwise** (the two keys on different cluster slots,
//!   scripts refused by the server's ACL, or an entry with more fields than
//!   a script takes): each try checks that the entry
//!   is still pending, appends the dead letter unless this round already did
//!   or (when scripts run) one for the same entry, stream and component is
//!   among the last [`LOOKBACK`] dead letters, then acknowledges.
//! - **Bounded**: [`TRIES`] tries a little apart; then an error is logged
//!   and the entry stays pending, to be taken up again after `claim_idle`
//!   (its delivery count past `max_deliveries`, so it is dead-lettered then
//!   without running).
//!
//! While it runs, the caller counts the entry against the trigger's room
//! for waiting entries (`retry.rs`), so reading does not run ahead
//! of it.
//!
//! Not owned here: deciding that an entry is dead (`attempt.rs`).

use super::reply::{Entry, cap};
use super::running::Inner;
use crate::source::connect::describe;
use crate::source::reconnect::broken;
use redis::Value;
use redis::cluster_routing::Slot;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Bytes of the last error kept in `dead_letter_error`.
const ERROR_CAP: usize = 1024;
/// Tries per dead-lettering before it is left for a later claim.
pub const TRIES: u32 = 5;
/// The pause after the first failed try; it doubles after each.
const PAUSE: Duration = Duration::from_millis(200);
/// Dead letters searched for an earlier copy when the append and the
/// acknowledgement cannot be one step.
pub const LOOKBACK: usize = 100;
/// The most dead-letter fields and values handed to a script: Redis's Lua
/// unpacks at most about 8 000 values at once. An entry with more is
/// appended by the runtime itself (the stepwise way, without the lookback).
const SCRIPT_VALUES: usize = 7000;

/// KEYS: stream, dead-letter stream. ARGV: group, id, consumer, then the
/// dead letter's fields and values. Returns 1 (moved) or 0 (no longer
/// pending on this consumer: settled already, or taken over).
const MOVE: &str = r"
local pending = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1, ARGV[3])
if #pending == 0 then return 0 end
local dead = redis.call('XADD', KEYS[2], '*', unpack(ARGV, 4))
local ack = redis.pcall('XACK', KEYS[1], ARGV[1], ARGV[2])
if type(ack) == 'table' and ack.err then
  redis.call('XDEL', KEYS[2], dead)
  return redis.error_reply(ack.err)
end
return 1
";

/// KEYS: dead-letter stream. ARGV: id, stream, component, lookback, then the
/// dead letter's fields and values. Appends the dead letter unless one for
/// the same entry, stream and component is among the newest `lookback`
/// (read ten at a time). Returns 1 (appended) or 0 (found).
const APPEND_ONCE: &str = r"
local last = '+'
local left = tonumber(ARGV[4])
while left > 0 do
  local rows = redis.call('XREVRANGE', KEYS[1], last, '-', 'COUNT', math.min(left, 10))
  if #rows == 0 then break end
  for _, row in ipairs(rows) do
    local flat, f = row[2], {}
    for i = 1, #flat, 2 do f[flat[i]] = flat[i + 1] end
    if f.dead_letter_id == ARGV[1] and f.dead_letter_stream == ARGV[2]
      and f.dead_letter_component == ARGV[3] then return 0 end
    last = '(' .. row[1]
  end
  left = left - #rows
end
redis.call('XADD', KEYS[1], '*', unpack(ARGV, 5))
return 1
";

/// How one try ended.
enum Moved {
    /// Appended and acknowledged.
    Yes,
    /// No longer pending on this consumer: nothing to do.
    NotPending,
}

impl Inner {
    /// Appends the entry to the dead-letter stream and acknowledges it, at
    /// most [`TRIES`] times; see the module comment.
    pub(super) async fn dead_letter(&self, entry: &Entry, delivery: u32, reason: &str) {
        let spec = &self.spec;
        let fields = self.dead_letter_fields(entry, delivery, reason);
        let one_slot = !spec.endpoint.cluster
            || Slot::for_key(&spec.stream) == Slot::for_key(&spec.dead_letter);
        // Appended in this round (the stepwise way): only the
        // acknowledgement is left.
        let mut appended = false;
        let mut last_error = String::new();
        let fits = fields.len() <= SCRIPT_VALUES;
        for attempt in 1..=TRIES {
            let scripts = fits && !self.scripts_refused.load(Ordering::Relaxed);
            let tried = if scripts && one_slot {
                self.move_atomically(entry, &fields).await
            } else {
                self.move_in_steps(entry, &fields, scripts, &mut appended)
                    .await
            };
            match tried {
                Ok(Moved::Yes) => {
                    self.counters.dead_lettered.fetch_add(1, Ordering::Relaxed);
                    self.route_metrics.dead_lettered.inc();
                    tracing::warn!(component = %self.handler.component, stream = %spec.stream, id = %entry.id, deliveries = delivery, dead_letter = %spec.dead_letter, reason = %reason, "entry moved to the dead-letter stream");
                    return;
                }
                Ok(Moved::NotPending) => {
                    tracing::info!(component = %self.handler.component, stream = %spec.stream, id = %entry.id, "the entry to dead-letter is no longer pending on this consumer (settled or taken over meanwhile)");
                    return;
                }
                Err(e) if scripts && script_refused(&e) => {
                    // Not a failed try: the same try, the other way.
                    note_scripts_refused(&self.scripts_refused, &spec.stream, &e);
                    continue;
                }
                Err(e) => {
                    last_error = describe(&e);
                    tracing::debug!(stream = %spec.stream, id = %entry.id, attempt, reason = %last_error, "cannot dead-letter the entry yet");
                    if attempt < TRIES {
                        tokio::time::sleep(PAUSE * 2u32.pow(attempt - 1)).await;
                    }
                }
            }
        }
        tracing::error!(component = %self.handler.component, stream = %spec.stream, id = %entry.id, dead_letter = %spec.dead_letter, tries = TRIES, reason = %last_error, "gave up dead-lettering the entry for now; it stays pending and is dead-lettered again once taken up after claim_idle");
    }

    /// The dead letter: the entry's fields (less any `dead_letter_*` of an
    /// earlier dead-lettering) and the `dead_letter_*` fields, flat.
    fn dead_letter_fields(&self, entry: &Entry, delivery: u32, reason: &str) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        for (k, v) in entry.fields.as_deref().unwrap_or_default() {
            if !k.starts_with(b"dead_letter_") {
                out.push(k.to_vec());
                out.push(v.to_vec());
            }
        }
        for (k, v) in [
            ("dead_letter_id", entry.id.as_str()),
            ("dead_letter_stream", self.spec.stream.as_str()),
            ("dead_letter_component", self.handler.component.as_str()),
            ("dead_letter_deliveries", &delivery.to_string()),
            ("dead_letter_error", cap(reason, ERROR_CAP)),
        ] {
            out.push(k.as_bytes().to_vec());
            out.push(v.as_bytes().to_vec());
        }
        out
    }

    async fn move_atomically(
        &self,
        entry: &Entry,
        fields: &[Vec<u8>],
    ) -> redis::RedisResult<Moved> {
        let spec = &self.spec;
        let mut cmd = redis::cmd("EVAL");
        cmd.arg(MOVE)
            .arg(2)
            .arg(&spec.stream)
            .arg(&spec.dead_letter);
        cmd.arg(&spec.group).arg(&entry.id).arg(&spec.consumer);
        let moved: i64 = self.commands.query(&with_fields(cmd, fields)).await?;
        Ok(if moved == 1 {
            Moved::Yes
        } else {
            Moved::NotPending
        })
    }

    async fn move_in_steps(
        &self,
        entry: &Entry,
        fields: &[Vec<u8>],
        scripts: bool,
        appended: &mut bool,
    ) -> redis::RedisResult<Moved> {
        let spec = &self.spec;
        let pending: Value = self.commands.query(&spec.xpending_own(&entry.id)).await?;
        if matches!(&pending, Value::Array(rows) if rows.is_empty()) {
            // Acknowledged by an earlier try whose reply was lost, or
            // settled by another consumer.
            return Ok(if *appended {
                Moved::Yes
            } else {
                Moved::NotPending
            });
        }
        if !*appended {
            let cmd = if scripts {
                let mut cmd = redis::cmd("EVAL");
                cmd.arg(APPEND_ONCE).arg(1).arg(&spec.dead_letter);
                cmd.arg(&entry.id).arg(&spec.stream);
                cmd.arg(&self.handler.component).arg(LOOKBACK);
                cmd
            } else {
                let mut cmd = redis::cmd("XADD");
                cmd.arg(&spec.dead_letter).arg("*");
                cmd
            };
            self.commands
                .query::<Value>(&with_fields(cmd, fields))
                .await?;
            *appended = true;
        }
        self.commands.query::<Value>(&spec.xack(&entry.id)).await?;
        Ok(Moved::Yes)
    }
}

/// `cmd` followed by the dead letter's fields and values.
fn with_fields(mut cmd: redis::Cmd, fields: &[Vec<u8>]) -> redis::Cmd {
    for f in fields {
        cmd.arg(f.as_slice());
    }
    cmd
}

/// Whether the server refused to run a script at all (an ACL without
/// `EVAL`, scripting disabled), as opposed to a command in it failing.
pub(super) fn script_refused(e: &redis::RedisError) -> bool {
    if broken(e) {
        return false;
    }
    let text = e.to_string().to_ascii_lowercase();
    e.code() == Some("NOPERM") && text.contains("'eval'")
        || text.contains("unknown command") && text.contains("eval")
}

/// Remembers that scripts are refused, and says so once.
pub(super) fn note_scripts_refused(flag: &AtomicBool, stream: &str, e: &redis::RedisError) {
    if !flag.swap(true, Ordering::Relaxed) {
        tracing::warn!(stream = %stream, reason = %describe(e), "redis refuses scripts (EVAL): dead letters are written in steps, and a failed acknowledgement may leave one twice; stale consumers are not removed");
    }
}
