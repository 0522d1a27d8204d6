//! `fermyon:spin/redis@2.0.0` (Spin SDKs 2 and 3): the resource
//! `connection`. Its types mirror v3's one for one: this adapter converts
//! them and calls the shared operations.
//!
//! Not owned here: the commands (`ops`), the connection resource (`super`).

pub use super::bindings::fermyon::spin2_0_0::redis::*;

use super::connection::{Connection, close, execute_target, open_connection, target_of};
use super::ops::{self, convert_values, with_commands};
use super::v3;
use crate::host::HostView;
use wasmtime::component::Resource;

impl Host for HostView<'_> {}

/// One fixed command: the guest's connection, then the shared operation.
macro_rules! command {
    ($($name:ident($($arg:ident: $ty:ty),*) -> $ok:ty;)*) => {$(
        async fn $name(
            &mut self,
            c: Resource<Connection>,
            $($arg: $ty),*
        ) -> wasmtime::Result<Result<$ok, Error>> {
            let target = target_of(self, &c)?;
            Ok(ops::$name(target, $($arg),*).await.map_err(error))
        }
    )*};
}

impl HostConnection for HostView<'_> {
    async fn open(
        &mut self,
        address: String,
    ) -> wasmtime::Result<Result<Resource<Connection>, Error>> {
        Ok(open_connection(self, &address).await?.map_err(error))
    }

    with_commands!(command);

    async fn execute(
        &mut self,
        c: Resource<Connection>,
        command: String,
        arguments: Vec<RedisParameter>,
    ) -> wasmtime::Result<Result<Vec<RedisResult>, Error>> {
        let args = ops::v3_arguments(arguments);
        let target = match execute_target(self, &c, &command, &args).await? {
            Ok(target) => target,
            Err(e) => return Ok(Err(error(e))),
        };
        Ok(ops::execute(target, command, args)
            .await
            .map(|r| r.into_iter().map(RedisResult::from).collect())
            .map_err(error))
    }

    async fn drop(&mut self, c: Resource<Connection>) -> wasmtime::Result<()> {
        close(self, c)
    }
}

fn error(e: v3::Error) -> Error {
    match e {
        v3::Error::InvalidAddress => Error::InvalidAddress,
        v3::Error::TooManyConnections => Error::TooManyConnections,
        v3::Error::TypeError => Error::TypeError,
        v3::Error::Other(m) => Error::Other(m),
    }
}

convert_values!();
