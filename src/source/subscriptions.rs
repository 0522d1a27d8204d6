//! What a subscriber connection is subscribed to, and bringing it to what is
//! wanted: one command for the channels added, one for the patterns added,
//! one for each kind removed; what stays is never touched (pub/sub loses what
//! is published while nobody is subscribed). Used at connect time (from
//! nothing) and on a reload (from what the connection has).
//!
//! Does not own reading, reconnecting or which channels are wanted (the
//! reload decides that and sends it through a `watch` channel).

use super::connect::{Endpoint, describe};
use super::pubsub::CONNECT_TIMEOUT;
use std::collections::BTreeSet;

/// The channels and patterns one subscription wants.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Wanted {
    pub channels: BTreeSet<String>,
    /// Subscribed with `PSUBSCRIBE` (never sharded).
    pub patterns: BTreeSet<String>,
}

impl Wanted {
    /// What `self` wants that `have` lacks: (channels, patterns).
    pub(super) fn beyond(&self, have: &Wanted) -> (Vec<String>, Vec<String>) {
        (
            self.channels.difference(&have.channels).cloned().collect(),
            self.patterns.difference(&have.patterns).cloned().collect(),
        )
    }
}

/// The subscribe commands of a connection: a single server's subscriber
/// (`super::subscriber::Commands`) or a cluster connection. `sharded`: `SSUBSCRIBE` and `SUNSUBSCRIBE` for
/// channels (cluster only).
pub(super) trait SubscribeCommands {
    async fn channels(
        &mut self,
        on: bool,
        sharded: bool,
        names: &[String],
    ) -> redis::RedisResult<()>;
    async fn patterns(&mut self, on: bool, names: &[String]) -> redis::RedisResult<()>;
}

impl SubscribeCommands for redis::cluster_async::ClusterConnection {
    async fn channels(
        &mut self,
        on: bool,
        sharded: bool,
        names: &[String],
    ) -> redis::RedisResult<()> {
        match (on, sharded) {
            (true, true) => self.ssubscribe(names).await,
            (false, true) => self.sunsubscribe(names).await,
            (true, false) => self.subscribe(names).await,
            (false, false) => self.unsubscribe(names).await,
        }
    }

    async fn patterns(&mut self, on: bool, names: &[String]) -> redis::RedisResult<()> {
        match on {
            true => self.psubscribe(names).await,
            false => self.punsubscribe(names).await,
        }
    }
}

/// Brings the connection's subscriptions from `have` to `want`: one command
/// for the channels added, one for the patterns added, then one for each
/// removed (a command with no argument would be refused). What stays is not
/// touched. `have` follows each command that succeeded.
pub(super) async fn follow(
    conn: &mut impl SubscribeCommands,
    sharded: bool,
    have: &mut Wanted,
    want: &Wanted,
) -> redis::RedisResult<()> {
    let (channels, patterns) = want.beyond(have);
    let (gone_channels, gone_patterns) = have.beyond(want);
    if !channels.is_empty() {
        conn.channels(true, sharded, &channels).await?;
        have.channels.extend(channels);
    }
    if !patterns.is_empty() {
        conn.patterns(true, &patterns).await?;
        have.patterns.extend(patterns);
    }
    if !gone_channels.is_empty() {
        conn.channels(false, sharded, &gone_channels).await?;
        have.channels.retain(|c| !gone_channels.contains(c));
    }
    if !gone_patterns.is_empty() {
        conn.patterns(false, &gone_patterns).await?;
        have.patterns.retain(|p| !gone_patterns.contains(p));
    }
    Ok(())
}

/// [`follow`] on a live session (a reload), bounded by [`CONNECT_TIMEOUT`]
/// and logged; the error ends the session, whose reconnect subscribes to
/// what is wanted then.
pub(super) async fn change(
    conn: &mut impl SubscribeCommands,
    sharded: bool,
    have: &mut Wanted,
    want: &Wanted,
    endpoint: &Endpoint,
) -> Result<(), String> {
    let (channels, patterns) = want.beyond(have);
    let (gone_channels, gone_patterns) = have.beyond(want);
    match tokio::time::timeout(CONNECT_TIMEOUT, follow(conn, sharded, have, want)).await {
        Ok(Ok(())) => {
            tracing::info!(address = %endpoint.shown(), subscribed = ?channels, psubscribed = ?patterns, unsubscribed = ?gone_channels, punsubscribed = ?gone_patterns, "subscriptions changed");
            Ok(())
        }
        Ok(Err(e)) => Err(format!(
            "changing the subscriptions failed: {}",
            describe(&e)
        )),
        Err(_) => Err(format!(
            "changing the subscriptions took longer than {CONNECT_TIMEOUT:?}"
        )),
    }
}
