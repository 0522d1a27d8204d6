//! The list source: a Redis list read as a reliable queue (producers
//! `LPUSH`, any number of spin-redis processes consume), at-least-once.
//!
//! - **Taken atomically**: an item moves from the list's right end to this
//!   consumer's own processing list (`LMOVE`, or `BLMOVE` while the list is
//!   empty) in the same step that counts its delivery, and leaves the
//!   processing list (`LREM` count 1) only after its handler succeeded and
//!   its output reached the log files. A crash never loses an item.
//! - **Reading follows capacity**: a handler slot is held before an item is
//!   taken, so nothing is read that could not run: the list is the queue.
//! - **Retries**: a failure is handed to a handler again after the shared
//!   backoff (`source::retry`: 1 s doubling, capped at 60 s), the item staying in the
//!   processing list meanwhile, up to `max_deliveries` attempts; then it is
//!   pushed to the dead-letter list (`LPUSH`, default `<list>:dead`) and the
//!   error is logged with its delivery count. Counts live in Redis (a hash
//!   keyed by the item's SHA-1), so they survive restarts and take-overs;
//!   identical items share one count.
//! - **Crashes**: every consumer keeps a heartbeat key alive
//!   (`claim_idle`) and is registered in a set; any live consumer hands the
//!   processing list of a consumer whose heartbeat expired back to the
//!   queue. A restart under the same consumer name first takes up its own
//!   processing list.
//! - **Shutdown**: taking stops, what is in flight finishes (within the
//!   drain deadline) and is removed; what is left (waiting retries, cut
//!   short) is handed back to the queue at once.
//!
//! Keys (see [`keys`]) share one hash tag with the list, so every step is a
//! single-slot Lua script (see [`scripts`]) on a Redis Cluster too.
//!
//! Here: the settings ([`ListSpec`]) and the start-up checks. The running
//! source is [`running`]; taking, running and retrying items [`consume`];
//! removing and dead-lettering [`settle`]; heartbeats, take-overs and the
//! own list [`recover`].

pub mod consume;
pub mod keys;
pub mod recover;
pub mod running;
pub mod scripts;
pub mod settle;

pub use running::{ListSource, Running, Summary};

use super::connect::Endpoint;
use crate::address::RedisAddress;
use crate::manifest::{App, Trigger};
use keys::Keys;
use std::collections::HashMap;
use std::time::Duration;

/// One list trigger's settings, settled at start-up.
#[derive(Debug, Clone)]
pub struct ListSpec {
    pub endpoint: Endpoint,
    pub list: String,
    pub consumer: String,
    pub max_deliveries: u32,
    pub dead_letter: String,
    /// How long this consumer's heartbeat lives.
    pub claim_idle: Duration,
    pub keys: Keys,
}

/// The settings of list trigger `t`, with its defaults settled.
pub fn spec(t: &Trigger, endpoint: Endpoint) -> Option<ListSpec> {
    let l = t.list.as_ref()?;
    let consumer = l
        .consumer
        .clone()
        .unwrap_or_else(crate::source::stream::default_consumer);
    Some(ListSpec {
        endpoint,
        keys: Keys::new(&t.channel, &consumer),
        list: t.channel.clone(),
        consumer,
        max_deliveries: l.max_deliveries,
        dead_letter: l.dead_letter.clone(),
        claim_idle: l.claim_idle,
    })
}

/// Checks what the manifest could not: a list on a cluster whose keys can
/// share its slot, and no two list triggers of the app sharing a consumer
/// (they would share one processing list).
pub fn check(app: &App) -> anyhow::Result<()> {
    // The first trigger of each (list, address, cluster, consumer), by that
    // key: a scan of the earlier triggers per trigger was quadratic.
    type Key<'a> = (
        &'a str,
        &'a RedisAddress,
        Option<&'a [RedisAddress]>,
        Option<&'a str>,
    );
    let mut first: HashMap<Key<'_>, &Trigger> = HashMap::new();
    for t in app.triggers.iter().filter(|t| t.list.is_some()) {
        if t.cluster.is_some() && !keys::cluster_safe(&t.channel) {
            anyhow::bail!(
                "the list trigger of component {:?}: list {:?} holds a '}}' and no hash tag, so its processing lists cannot share its cluster slot; name it with a hash tag, such as {:?}",
                t.component,
                t.channel,
                format!("{{{}}}", t.channel.replace(['{', '}'], ""))
            );
        }
        let consumer = t.list.as_ref().and_then(|l| l.consumer.as_deref());
        let key = (
            t.channel.as_str(),
            &t.address,
            t.cluster.as_deref(),
            consumer,
        );
        if let Some(other) = first.insert(key, t) {
            anyhow::bail!(
                "the list triggers of components {:?} and {:?} both read list {:?} as consumer {}; give one of them consumer = \"...\" of its own",
                other.component,
                t.component,
                t.channel,
                consumer
                    .map(|c| format!("{c:?}"))
                    .unwrap_or_else(|| "<hostname>-<pid> (the default)".into())
            );
        }
    }
    Ok(())
}
