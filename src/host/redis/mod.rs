//! Outbound Redis for components: `fermyon:spin/redis@2.0.0` (resource
//! `connection`), `spin:redis/redis@3.0.0` (the same, async) and the
//! unversioned `fermyon:spin/redis` of older SDKs (an address per call).
//!
//! Connections are pooled per component and address ([`Pool`]): every
//! `open` of the same address (however it is spelled) in any instance of
//! one component shares one multiplexed connection (a `ConnectionManager`,
//! which reconnects by itself), so a handler that opens a connection per
//! message costs no connect per message. Each component has quotas of its
//! own (see [`quota`]): one component can never use up another's.
//! A guest's connection goes to the one server its address names and no
//! other: cluster mode is never detected for it, and a `MOVED` or `ASK`
//! reply is the guest's error (`other`), never followed, so a server cannot
//! steer a guest to a host `allowed_outbound_hosts` does not list. Only an
//! operator's key-value store (runtime config, [`Owner::Operator`]) gets a
//! cluster connection when its server says `cluster_enabled:1`.
//! A component keeps at most `--max-redis-addresses` addresses. A command
//! that changes a connection's state or blocks it (`MULTI`, `SELECT`,
//! `BLPOP`...) sent through `execute` moves that guest connection onto a
//! dedicated one (at most `--max-redis-dedicated` per component at
//! once, closed when the guest drops it), so no other handler sees its
//! effect. Subscribing through `execute` is refused.
//!
//! Errors are the WIT's own: an address that does not parse (or that parsers
//! read in two ways: `destination::redis` reads where it goes from the very
//! connection information it is connected with), or that
//! `allowed_outbound_hosts` does not allow, is `invalid-address`; a full pool
//! `too-many-connections`; a value of the wrong type (a `WRONGTYPE` key, a
//! non-integer `incr`) `type-error`; anything else `other` with Redis's
//! message. The unversioned interface has only `error`. Addresses are shown
//! without credentials, everywhere.
//!
//!
//! Layout: [`pool`] holds the connections, [`quota`] names and counts them,
//! [`target`] sends one command and measures its reply ([`probe`] sizes it
//! first where it can), [`ops`] holds the commands once, and `v1`, `v2`,
//! `v3` adapt them to each interface version; `connection` is the
//! guest's connection resource. This file holds the bindings and the check
//! of a guest's address.
//!
//! Not owned here: the trigger's own subscriber connections (`source`).

mod connection;
pub mod ops;
pub mod pool;
pub mod probe;
pub mod quota;
pub mod target;
mod v1;
mod v2;
mod v3;

pub use connection::Connection;
pub use pool::{OpenError, Pool, Pooled};

use super::{ComponentHost, HasHost, HostData, Refused, destination};
use crate::address::RedisAddress;
use quota::Owner;
use wasmtime::component::Linker;

mod bindings {
    wasmtime::component::bindgen!({
        inline: "
            package spin-redis:host;
            world redis {
                import fermyon:spin/redis;
                import fermyon:spin/redis@2.0.0;
                import spin:redis/redis@3.0.0;
            }
        ",
        path: [
            "wit/spin/fermyon-spin",
            "wit/spin/fermyon-spin@2.0.0",
            "wit/spin/spin-redis@3.0.0",
        ],
        imports: { default: async | trappable },
        with: {
            "fermyon:spin/redis@2.0.0.connection": super::Connection,
            "spin:redis/redis@3.0.0.connection": super::Connection,
        },
    });
}

/// The interfaces [`link`] defines.
pub const INTERFACES: &[&str] = &[
    "fermyon:spin/redis",
    "fermyon:spin/redis-types",
    "fermyon:spin/redis@2.0.0",
    "spin:redis/redis@3.0.0",
];

/// Connections one instance may hold open at once.
pub const MAX_OPEN: usize = 256;

/// Adds the outbound Redis interfaces to `linker`.
pub fn link<T: HasHost>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    bindings::fermyon::spin::redis::add_to_linker::<T, HostData>(linker, T::host_view)?;
    bindings::fermyon::spin::redis_types::add_to_linker::<T, HostData>(linker, T::host_view)?;
    bindings::fermyon::spin2_0_0::redis::add_to_linker::<T, HostData>(linker, T::host_view)?;
    bindings::spin::redis::redis::add_to_linker::<T, HostData>(linker, T::host_view)?;
    Ok(())
}

/// Parses and checks a guest's address, then gets its pooled connection.
async fn open(
    component: &ComponentHost,
    address: &str,
) -> Result<(RedisAddress, Pooled), v3::Error> {
    // Parsed once: the destination is read from the connection information
    // the pool connects with (`Pool::client`), never from the text again.
    let parsed = RedisAddress::parse(address).map_err(|_| v3::Error::InvalidAddress)?;
    let read = destination::redis(&parsed).map(|t| t.destination);
    match component.check_outbound(read) {
        Ok(_) => {}
        Err(Refused::BadUrl | Refused::NotAllowed(_)) => return Err(v3::Error::InvalidAddress),
    }
    let pooled = component
        .app
        .redis
        .shared(Owner::Component(&component.id), &parsed)
        .await
        .map_err(open_error)?;
    Ok((parsed, pooled))
}

/// Why a connection could not be had, in the v3 vocabulary.
fn open_error(e: OpenError) -> v3::Error {
    match e {
        OpenError::InvalidAddress => v3::Error::InvalidAddress,
        OpenError::TooManyConnections => v3::Error::TooManyConnections,
        OpenError::Other(m) => v3::Error::Other(m),
    }
}
