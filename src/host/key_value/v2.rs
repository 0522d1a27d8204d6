//! `fermyon:spin/key-value@2.0.0` (Spin SDKs 2 and 3): the resource
//! `store`. This adapter converts the error and calls the shared operations.
//!
//! Not owned here: the operations (`ops`), the guest's handle (`super`).

pub use super::bindings::fermyon::spin2_0_0::key_value::*;

use super::ops::{KvError, OpenStore, convert_error, with_commands};
use super::{close, handle, open};
use crate::host::HostView;
use wasmtime::component::Resource;

impl Host for HostView<'_> {}

/// One fixed command: the open store, then the shared operation.
macro_rules! command {
    ($($name:ident($($arg:ident: $ty:ty),*) -> $ok:ty;)*) => {$(
        async fn $name(
            &mut self,
            store: Resource<OpenStore>,
            $($arg: $ty),*
        ) -> wasmtime::Result<Result<$ok, Error>> {
            Ok(handle(self, &store)?.$name($($arg),*).await.map_err(Error::from))
        }
    )*};
}

impl HostStore for HostView<'_> {
    async fn open(
        &mut self,
        label: String,
    ) -> wasmtime::Result<Result<Resource<OpenStore>, Error>> {
        Ok(open(self, &label)?.map_err(Error::from))
    }

    with_commands!(command);

    async fn get_keys(
        &mut self,
        store: Resource<OpenStore>,
    ) -> wasmtime::Result<Result<Vec<String>, Error>> {
        Ok(handle(self, &store)?.get_keys().await.map_err(Error::from))
    }

    async fn drop(&mut self, store: Resource<OpenStore>) -> wasmtime::Result<()> {
        close(self, store)
    }
}

convert_error!(Other);
