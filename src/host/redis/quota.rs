//! Outbound Redis connections are bounded per component: how the pool names
//! a connection and who it is charged to.
//!
//! Before, the pool was keyed by the URL as the guest spelled it and capped
//! at 64 addresses for the whole app, entries were added before connecting
//! and never removed: one component opening 80 spellings of one allowed
//! address (`redis://h:p/?n=1`...) left no room for any other component.
//! Now:
//! - a pooled connection is keyed by its [`Owner`] and by [`pool_key`], the
//!   connection info redis-rs would connect with (scheme, host, port,
//!   database, user, password, protocol), not by spelling: all the spellings
//!   of one address are one entry;
//! - each component may keep at most `--max-redis-addresses` pooled
//!   addresses and hold at most `--max-redis-dedicated` dedicated
//!   connections at once (see `settings`); past either it gets `too-many-connections`, and no
//!   other component notices;
//! - a connect that failed leaves no entry behind;
//! - the operator's stores (runtime-config key-value stores) are
//!   [`Owner::Operator`]: never counted against any component.
//!
//! Not owned here: connecting (`pool`), parsing addresses.

use crate::address::RedisAddress;
use redis::{ConnectionAddr, IntoConnectionInfo};

/// Who a pooled connection belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Owner<'a> {
    /// A component, by id: counted against its quota.
    Component(&'a str),
    /// The operator's runtime config (key-value stores): never counted.
    Operator,
}

impl Owner<'_> {
    /// The owned key of this owner in the pool's map.
    pub fn key(&self) -> OwnerKey {
        match self {
            Owner::Component(id) => OwnerKey::Component(id.to_string()),
            Owner::Operator => OwnerKey::Operator,
        }
    }
}

/// [`Owner`], owned.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum OwnerKey {
    Component(String),
    Operator,
}

/// The connection `address` names, as redis-rs reads it: one key for every
/// spelling of it (query strings it ignores, default ports, `/0`, case of
/// the host). It holds the password: it is never shown or logged. `None`
/// when redis-rs cannot read the address.
pub fn pool_key(address: &RedisAddress) -> Option<String> {
    let info = address.connection_url().into_connection_info().ok()?;
    // Host names are case-insensitive, but the URL parser keeps the case of
    // a `redis://` host (not a scheme it knows).
    let addr = match info.addr() {
        ConnectionAddr::Tcp(host, port) => {
            format!("redis {}:{port}", host.to_ascii_lowercase())
        }
        ConnectionAddr::TcpTls {
            host,
            port,
            insecure,
            ..
        } => format!(
            "rediss {}:{port} insecure={insecure}",
            host.to_ascii_lowercase()
        ),
        other => format!("other {other}"),
    };
    let r = info.redis_settings();
    Some(format!(
        "{addr} db={} user={:?} password={:?} protocol={:?}",
        r.db(),
        r.username(),
        r.password(),
        r.protocol()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(url: &str) -> String {
        pool_key(&RedisAddress::parse(url).unwrap()).unwrap()
    }

    #[test]
    fn every_spelling_of_one_address_is_one_key() {
        let k = key("redis://h:6379");
        for same in [
            "redis://h:6379/?n=1",
            "redis://h:6379/?n=2",
            "redis://H:6379",
            "redis://h",
            "redis://h:6379/0",
            "redis://h:6379/#x",
        ] {
            assert_eq!(key(same), k, "{same}");
        }
        for other in [
            "redis://h:6380",
            "redis://h:6379/1",
            "redis://u:p@h:6379",
            "rediss://h:6379",
            "redis://h:6379/?protocol=resp3",
        ] {
            assert_ne!(key(other), k, "{other}");
        }
    }
}
