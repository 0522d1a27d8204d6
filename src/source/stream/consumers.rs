//! Removing stale consumers from a stream trigger's group.
//!
//! Every process names itself (by default `<hostname>-<pid>`, a new name on
//! every start), and Redis keeps a consumer until it is deleted: without
//! this, `XINFO CONSUMERS` grows by one name per restart for ever. When it
//! starts, and then every `claim_idle`, each process deletes
//! (`XGROUP DELCONSUMER`) the consumers of its group, other than itself,
//! that hold no pending entry and have been idle at least `claim_idle`.
//!
//! A consumer with pending entries is never deleted: deleting it would drop
//! them from the group's pending list, so no one could take them over. The
//! check and the deletion are one script, so a consumer cannot be handed an
//! entry in between. Deleting a live consumer that merely idles is
//! harmless: its next read makes it again. At most [`MAX_REMOVED`] are
//! deleted per sweep, to keep the script short.
//!
//! Not owned here: taking over the entries of dead consumers (the claimer,
//! `claim.rs`).

use super::dead_letter::{note_scripts_refused, script_refused};
use super::running::Inner;
use crate::source::connect::describe;
use std::sync::atomic::Ordering;

/// Consumers deleted per sweep, at most.
pub const MAX_REMOVED: usize = 100;

/// KEYS: stream. ARGV: group, own consumer, idle milliseconds, most to
/// delete. Returns the names deleted.
const SWEEP: &str = r"
local removed = {}
for _, c in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
  if #removed >= tonumber(ARGV[4]) then break end
  local info = {}
  for i = 1, #c, 2 do info[c[i]] = c[i + 1] end
  if info.name ~= ARGV[2] and info.pending == 0 and info.idle ~= nil and info.idle >= tonumber(ARGV[3]) then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], info.name)
    removed[#removed + 1] = info.name
  end
end
return removed
";

impl Inner {
    /// Deletes the group's stale consumers; see the module comment.
    pub(super) async fn remove_stale_consumers(&self) {
        let spec = &self.spec;
        if self.scripts_refused.load(Ordering::Relaxed) {
            return;
        }
        let removed: redis::RedisResult<Vec<String>> = self
            .commands
            .query(
                redis::cmd("EVAL")
                    .arg(SWEEP)
                    .arg(1)
                    .arg(&spec.stream)
                    .arg(&spec.group)
                    .arg(&spec.consumer)
                    .arg(spec.claim_idle.as_millis() as u64)
                    .arg(MAX_REMOVED),
            )
            .await;
        match removed {
            Ok(names) if names.is_empty() => {}
            Ok(names) => {
                tracing::info!(stream = %spec.stream, group = %spec.group, consumers = ?names, "removed consumers idle past claim_idle with nothing pending");
            }
            Err(e) if script_refused(&e) => {
                note_scripts_refused(&self.scripts_refused, &spec.stream, &e);
            }
            // NOGROUP (the group is being made again), a lost connection:
            // the next sweep tries again.
            Err(e) => {
                tracing::debug!(stream = %spec.stream, reason = %describe(&e), "cannot remove stale consumers now");
            }
        }
    }
}
