//! `spin:key-value/key-value@3.0.0` (Spin SDK 4 and later): the resource
//! `store`, async, and `get-keys` as a stream. It reaches the instance
//! through the store's accessor, since its calls run concurrently.
//!
//! Not owned here: the operations (`ops`), the guest's handle (`super`).

pub use super::bindings::spin::key_value::key_value::*;

use super::ops::{KvError, OpenStore, convert_error, with_commands};
use super::{close, handle, open};
use crate::host::{HostData, HostView, WithView};
use wasmtime::component::{Accessor, FutureReader, Resource, StreamReader};

impl Host for HostView<'_> {}

impl HostStore for HostView<'_> {
    async fn drop(&mut self, store: Resource<OpenStore>) -> wasmtime::Result<()> {
        close(self, store)
    }
}

/// One fixed command: the open store, then the shared operation.
macro_rules! command {
    ($($name:ident($($arg:ident: $ty:ty),*) -> $ok:ty;)*) => {$(
        async fn $name(
            mut accessor: &Accessor<T, Self>,
            store: Resource<OpenStore>,
            $($arg: $ty),*
        ) -> wasmtime::Result<Result<$ok, Error>> {
            let s = accessor.with_view(|view| handle(view, &store))?;
            Ok(s.$name($($arg),*).await.map_err(Error::from))
        }
    )*};
}

impl<T: Send> HostStoreWithStore<T> for HostData {
    async fn open(
        mut accessor: &Accessor<T, Self>,
        label: String,
    ) -> wasmtime::Result<Result<Resource<OpenStore>, Error>> {
        accessor.with_view(|view| Ok(open(view, &label)?.map_err(Error::from)))
    }

    with_commands!(command);

    async fn get_keys(
        mut accessor: &Accessor<T, Self>,
        store: Resource<OpenStore>,
    ) -> wasmtime::Result<(StreamReader<String>, FutureReader<Result<(), Error>>)> {
        // The keys are read at once (bounded by `--max-host-listing`), then
        // streamed; a failure is an empty stream and an error in the future.
        let s = accessor.with_view(|view| handle(view, &store))?;
        let (keys, done) = match s.get_keys().await {
            Ok(keys) => (keys, Ok(())),
            Err(e) => (Vec::new(), Err(Error::from(e))),
        };
        accessor.with(|mut access| {
            let stream = StreamReader::new(&mut access, keys)?;
            let future =
                FutureReader::new(&mut access, async move { wasmtime::Result::<_>::Ok(done) })?;
            Ok((stream, future))
        })
    }
}

convert_error!(Other);
