//! The unversioned `fermyon:spin/redis` of older SDKs: an address per call,
//! no connection resource, one error (`error`). Each call gets the pooled
//! connection of its address; this adapter converts v1's types (a missing
//! key is an empty value, counts are `s64`) and calls the shared operations.
//!
//! Not owned here: the commands (`ops`), the pool (`pool`).

use super::bindings::fermyon::spin::redis::Host;
use super::bindings::fermyon::spin::redis_types::{self, Error, RedisParameter, RedisResult};
use super::ops::{self, Needs, convert_values, with_commands};
use super::target::Target;
use super::{open, v3};
use crate::host::HostView;
use std::future::Future;

impl redis_types::Host for HostView<'_> {}

impl HostView<'_> {
    /// The pooled connection for one unversioned call.
    fn v1_target(&self, address: &str) -> impl Future<Output = Result<Target, Error>> + use<> {
        let component = self.host.component.clone();
        let budget = self.host.budget.clone();
        let address = address.to_string();
        async move {
            open(&component, &address)
                .await
                .map(|(_, pooled)| Target::pooled(pooled, &budget))
                .map_err(|_| Error::Error)
        }
    }
}

/// A v3 result as v1 returns it.
pub trait ToV1 {
    type V1;
    fn to_v1(self) -> Self::V1;
}

impl<T: Same> ToV1 for T {
    type V1 = T;
    fn to_v1(self) -> T {
        self
    }
}

/// The results v1 returns as v3 does.
pub trait Same {}
impl Same for () {}
impl Same for i64 {}
impl Same for Vec<String> {}

impl ToV1 for Option<Vec<u8>> {
    /// The unversioned `get` has no `option`: a missing key is empty, as in
    /// Spin.
    type V1 = Vec<u8>;
    fn to_v1(self) -> Vec<u8> {
        self.unwrap_or_default()
    }
}

impl ToV1 for u32 {
    type V1 = i64;
    fn to_v1(self) -> i64 {
        i64::from(self)
    }
}

/// One fixed command: the address's pooled connection, then the shared
/// operation.
macro_rules! command {
    ($($name:ident($($arg:ident: $ty:ty),*) -> $ok:ty;)*) => {$(
        async fn $name(
            &mut self,
            address: String,
            $($arg: $ty),*
        ) -> wasmtime::Result<Result<<$ok as ToV1>::V1, Error>> {
            Ok(match self.v1_target(&address).await {
                Ok(target) => ops::$name(target, $($arg),*)
                    .await
                    .map(ToV1::to_v1)
                    .map_err(error),
                Err(e) => Err(e),
            })
        }
    )*};
}

impl Host for HostView<'_> {
    with_commands!(command);

    async fn execute(
        &mut self,
        address: String,
        command: String,
        arguments: Vec<RedisParameter>,
    ) -> wasmtime::Result<Result<Vec<RedisResult>, Error>> {
        let args = ops::v3_arguments(arguments);
        // Without a connection resource there is no state to keep: a
        // stateful or blocking command gets a connection for this call only.
        let results = match ops::needs(&command, &args) {
            Needs::Refused => return Ok(Err(Error::Error)),
            Needs::Pooled => match self.v1_target(&address).await {
                Ok(target) => ops::execute(target, command, args).await,
                Err(e) => return Ok(Err(e)),
            },
            Needs::Dedicated => {
                let component = self.host.component.clone();
                let Ok((parsed, _)) = open(&component, &address).await else {
                    return Ok(Err(Error::Error));
                };
                let Ok((c, permit)) = component.app.redis.dedicated(&component.id, &parsed).await
                else {
                    return Ok(Err(Error::Error));
                };
                let target = Target::dedicated(c, &self.host.budget);
                let results = ops::execute(target, command, args).await;
                drop(permit);
                results
            }
        };
        Ok(results
            .map(|r| r.into_iter().map(RedisResult::from).collect())
            .map_err(error))
    }
}

fn error(_: v3::Error) -> Error {
    Error::Error
}

convert_values!();
