//! The unversioned `fermyon:spin/key-value` of older SDKs: stores are `u32`
//! handles (the resource's index), `get` of a missing key is the error
//! `no-such-key`, and the catch-all error is `io`. This adapter converts
//! those and calls the shared operations.
//!
//! Not owned here: the operations (`ops`), the guest's handle (`super`).

use super::bindings::fermyon::spin::key_value::{Error, Host};
use super::ops::{KvError, OpenStore, convert_error, with_commands};
use super::{close, handle, open};
use crate::host::HostView;
use wasmtime::component::Resource;

/// The open store behind an unversioned handle (`invalid-store` if none).
fn handle_v1(view: &HostView<'_>, store: u32) -> Result<OpenStore, Error> {
    handle(view, &Resource::new_own(store)).map_err(|_| Error::InvalidStore)
}

/// A shared operation's result as v1 returns it.
pub trait ToV1: Sized {
    type V1;
    fn to_v1(self) -> Result<Self::V1, Error>;
}

impl ToV1 for Option<Vec<u8>> {
    /// The unversioned `get` has no `option`: a missing key is an error.
    type V1 = Vec<u8>;
    fn to_v1(self) -> Result<Vec<u8>, Error> {
        self.ok_or(Error::NoSuchKey)
    }
}

impl ToV1 for () {
    type V1 = ();
    fn to_v1(self) -> Result<(), Error> {
        Ok(())
    }
}

impl ToV1 for bool {
    type V1 = bool;
    fn to_v1(self) -> Result<bool, Error> {
        Ok(self)
    }
}

/// One fixed command: the open store, then the shared operation.
macro_rules! command {
    ($($name:ident($($arg:ident: $ty:ty),*) -> $ok:ty;)*) => {$(
        async fn $name(
            &mut self,
            store: u32,
            $($arg: $ty),*
        ) -> wasmtime::Result<Result<<$ok as ToV1>::V1, Error>> {
            Ok(match handle_v1(self, store) {
                Ok(s) => s.$name($($arg),*).await.map_err(Error::from).and_then(ToV1::to_v1),
                Err(e) => Err(e),
            })
        }
    )*};
}

impl Host for HostView<'_> {
    async fn open(&mut self, name: String) -> wasmtime::Result<Result<u32, Error>> {
        Ok(open(self, &name)?.map(|r| r.rep()).map_err(Error::from))
    }

    with_commands!(command);

    async fn get_keys(&mut self, store: u32) -> wasmtime::Result<Result<Vec<String>, Error>> {
        Ok(match handle_v1(self, store) {
            Ok(s) => s.get_keys().await.map_err(Error::from),
            Err(e) => Err(e),
        })
    }

    async fn close(&mut self, store: u32) -> wasmtime::Result<()> {
        // Closing a handle that is not open has no effect.
        if handle_v1(self, store).is_ok() {
            close(self, Resource::new_own(store))?;
        }
        Ok(())
    }
}

convert_error!(Io);
