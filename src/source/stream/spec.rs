//! A stream trigger's settings, settled at start-up ([`StreamSpec`]): its
//! defaults, the start-up checks that need the run's timeout, and the
//! commands about one pending entry that several tasks send.
//!
//! Not owned here: what the manifest accepts (`manifest::source`), running
//! the trigger (`running.rs`).

use crate::manifest::Trigger;
use crate::manifest::source::default_claim_idle;
use crate::source::connect::Endpoint;
use std::time::Duration;

/// The fewest entries a trigger lets wait for a retry before it stops
/// reading: so that one failing entry does not stop a trigger that runs one
/// at a time.
pub const MIN_WAITING: usize = 16;

/// How many entries may wait for a retry (or a dead-lettering) before
/// reading pauses: as many as the trigger may run at once (its own
/// `max_concurrency`, or the global one), at least [`MIN_WAITING`]. A
/// waiting retry holds only its id, about a hundred bytes.
pub fn max_waiting(trigger_concurrency: Option<usize>, global_concurrency: usize) -> usize {
    trigger_concurrency
        .unwrap_or(global_concurrency)
        .max(MIN_WAITING)
}

/// The default consumer name: `<hostname>-<pid>`.
pub fn default_consumer() -> String {
    let host = ["/proc/sys/kernel/hostname", "/etc/hostname"]
        .iter()
        .find_map(|p| {
            std::fs::read_to_string(p)
                .ok()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
        })
        .unwrap_or_else(|| "localhost".into());
    format!("{host}-{}", std::process::id())
}

/// The settings of stream trigger `t`, with its defaults settled.
pub fn spec(t: &Trigger, endpoint: Endpoint, timeout: Duration) -> Option<StreamSpec> {
    let s = t.stream.as_ref()?;
    Some(StreamSpec {
        endpoint,
        stream: t.channel.clone(),
        group: s.group.clone(),
        consumer: s.consumer.clone().unwrap_or_else(default_consumer),
        field: s.field.clone(),
        start: s.start.clone(),
        max_deliveries: s.max_deliveries,
        dead_letter: s.dead_letter.clone(),
        claim_idle: s.claim_idle.unwrap_or_else(|| default_claim_idle(timeout)),
    })
}

/// One stream trigger's consumer-group settings, settled at start-up.
#[derive(Debug, Clone)]
pub struct StreamSpec {
    pub endpoint: Endpoint,
    pub stream: String,
    pub group: String,
    pub consumer: String,
    pub field: String,
    pub start: String,
    pub max_deliveries: u32,
    pub dead_letter: String,
    pub claim_idle: Duration,
}

impl StreamSpec {
    /// `cmd STREAM GROUP`, the start of every group command.
    pub(super) fn group_cmd(&self, cmd: &str) -> redis::Cmd {
        let mut c = redis::cmd(cmd);
        c.arg(&self.stream).arg(&self.group);
        c
    }

    /// `XACK` of `ids`.
    pub(super) fn xack<I: redis::ToRedisArgs>(&self, ids: I) -> redis::Cmd {
        let mut c = self.group_cmd("XACK");
        c.arg(ids);
        c
    }

    /// `XPENDING` of entry `id` on this consumer: `[[id, consumer, idle,
    /// count]]`, or `[]` when it is not pending on it.
    pub(super) fn xpending_own(&self, id: &str) -> redis::Cmd {
        let mut c = self.group_cmd("XPENDING");
        c.arg(id).arg(id).arg(1).arg(&self.consumer);
        c
    }
}
