//! The guest's connection resource of the resource versions (`v2`, `v3`):
//! opening one (within `MAX_OPEN` per instance), where each command on it
//! goes, moving it onto a dedicated connection when `execute` needs one,
//! and closing it. Both adapters reach the instance through `host::WithView`.
//!
//! Not owned here: checking the address (`super::open`), the pool.

use super::ops::{self, Needs};
use super::target::Target;
use super::{MAX_OPEN, Pooled, open, open_error, v3};
use crate::address::RedisAddress;
use crate::host::{HostView, WithView};
use redis::aio::MultiplexedConnection;
use tokio::sync::OwnedSemaphorePermit;
use wasmtime::component::Resource;

/// A guest's open connection (`fermyon:spin/redis@2.0.0` and
/// `spin:redis/redis@3.0.0` resource `connection`).
pub struct Connection {
    address: RedisAddress,
    pooled: Pooled,
    /// Set once a stateful or blocking command was sent.
    dedicated: Option<(MultiplexedConnection, OwnedSemaphorePermit)>,
}

/// `open(address)` of the resource versions: a new guest connection, unless
/// the instance holds `MAX_OPEN` already.
pub async fn open_connection<W: WithView>(
    w: &mut W,
    address: &str,
) -> wasmtime::Result<Result<Resource<Connection>, v3::Error>> {
    let (component, full) = w.with_view(|view| {
        (
            view.host.component.clone(),
            view.host.open_connections >= MAX_OPEN,
        )
    });
    if full {
        return Ok(Err(v3::Error::TooManyConnections));
    }
    let (address, pooled) = match open(&component, address).await {
        Ok(opened) => opened,
        Err(e) => return Ok(Err(e)),
    };
    w.with_view(|view| {
        let r = view.table.push(Connection {
            address,
            pooled,
            dedicated: None,
        })?;
        view.host.open_connections += 1;
        Ok(Ok(r))
    })
}

/// Where the next command on guest connection `c` goes.
pub fn target_of<W: WithView>(w: &mut W, c: &Resource<Connection>) -> wasmtime::Result<Target> {
    w.with_view(|view| {
        let budget = &view.host.budget;
        let c = view.table.get(c)?;
        Ok(match &c.dedicated {
            Some((d, _)) => Target::dedicated(d.clone(), budget),
            None => Target::pooled(c.pooled.clone(), budget),
        })
    })
}

/// Where `execute(command, args)` on guest connection `c` goes: its
/// dedicated connection, made now (and kept until the guest drops `c`) if
/// the command needs one.
pub async fn execute_target<W: WithView>(
    w: &mut W,
    c: &Resource<Connection>,
    command: &str,
    args: &[v3::RedisParameter],
) -> wasmtime::Result<Result<Target, v3::Error>> {
    let (address, has_dedicated, component) = w.with_view(|view| {
        let conn = view.table.get(c)?;
        wasmtime::Result::<_>::Ok((
            conn.address.clone(),
            conn.dedicated.is_some(),
            view.host.component.clone(),
        ))
    })?;
    match (ops::needs(command, args), has_dedicated) {
        (Needs::Refused, _) => Ok(Err(refused(command))),
        (Needs::Pooled, _) | (Needs::Dedicated, true) => target_of(w, c).map(Ok),
        (Needs::Dedicated, false) => {
            match component.app.redis.dedicated(&component.id, &address).await {
                Ok(d) => {
                    w.with_view(|view| view.table.get_mut(c).map(|c| c.dedicated = Some(d)))?;
                    target_of(w, c).map(Ok)
                }
                Err(e) => Ok(Err(open_error(e))),
            }
        }
    }
}

/// Drops a guest connection (and its dedicated connection, if any).
pub fn close(view: &mut HostView<'_>, c: Resource<Connection>) -> wasmtime::Result<()> {
    view.table.delete(c)?;
    view.host.open_connections = view.host.open_connections.saturating_sub(1);
    Ok(())
}

/// The error of a command `execute` refuses to send.
pub fn refused(command: &str) -> v3::Error {
    v3::Error::Other(format!(
        "{command} is not supported through execute: it would turn the connection into a subscriber or replica"
    ))
}
