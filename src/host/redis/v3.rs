//! `spin:redis/redis@3.0.0` (Spin SDK 4 and later): the resource
//! `connection`, async. Its types are the shared vocabulary of [`super::ops`],
//! so this adapter converts nothing; it reaches the instance through the
//! store's accessor, since its calls run concurrently.
//!
//! Not owned here: the commands (`ops`), the connection resource (`super`).

pub use super::bindings::spin::redis::redis::*;

use super::connection::{Connection, close, execute_target, open_connection, target_of};
use super::ops::{self, with_commands};
use crate::host::{HostData, HostView};
use wasmtime::component::{Accessor, Resource};

impl Host for HostView<'_> {}

impl HostConnection for HostView<'_> {
    async fn drop(&mut self, c: Resource<Connection>) -> wasmtime::Result<()> {
        close(self, c)
    }
}

/// One fixed command: the guest's connection, then the shared operation.
macro_rules! command {
    ($($name:ident($($arg:ident: $ty:ty),*) -> $ok:ty;)*) => {$(
        async fn $name(
            mut accessor: &Accessor<T, Self>,
            c: Resource<Connection>,
            $($arg: $ty),*
        ) -> wasmtime::Result<Result<$ok, Error>> {
            let target = target_of(&mut accessor, &c)?;
            Ok(ops::$name(target, $($arg),*).await)
        }
    )*};
}

impl<T: Send> HostConnectionWithStore<T> for HostData {
    async fn open(
        mut accessor: &Accessor<T, Self>,
        address: String,
    ) -> wasmtime::Result<Result<Resource<Connection>, Error>> {
        open_connection(&mut accessor, &address).await
    }

    with_commands!(command);

    async fn execute(
        mut accessor: &Accessor<T, Self>,
        c: Resource<Connection>,
        command: String,
        arguments: Vec<RedisParameter>,
    ) -> wasmtime::Result<Result<Vec<RedisResult>, Error>> {
        // Settled inside the store, sent outside it.
        Ok(
            match execute_target(&mut accessor, &c, &command, &arguments).await? {
                Ok(target) => ops::execute(target, command, arguments).await,
                Err(e) => Err(e),
            },
        )
    }
}
