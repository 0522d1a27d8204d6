//! Variables for components: `fermyon:spin/variables@2.0.0`,
//! `spin:variables/variables@3.0.0` (async), the unversioned
//! `fermyon:spin/config` of older SDKs and `wasi:config/store`, all reading
//! the component's own variables.
//!
//! A component's variables are `[component.<id>.variables]` (v2) or
//! `[component.config]` (v1): names mapped to templates over the app's
//! `[variables]`. The manifest expands them once at start-up
//! ([`ComponentVariables`]); values are never logged.
//!
//! Errors, as in Spin: a name that is not a valid variable name is
//! `invalid-name`; a valid name the component does not define is
//! `undefined` (`config`: `provider`; `wasi:config/store`: `none`).

use super::{HasHost, HostData, HostView};
use wasmtime::component::{Accessor, Linker};

mod bindings {
    wasmtime::component::bindgen!({
        inline: "
            package spin-redis:host;
            world variables {
                import fermyon:spin/config;
                import fermyon:spin/variables@2.0.0;
                import spin:variables/variables@3.0.0;
                import wasi:config/store@0.2.0-draft-2024-09-27;
            }
        ",
        path: [
            "wit/spin/fermyon-spin",
            "wit/spin/fermyon-spin@2.0.0",
            "wit/spin/spin-variables@3.0.0",
            "wit/spin/wasi-config@0.2.0-draft-2024-09-27",
        ],
        imports: { default: async | trappable },
    });
}

use bindings::fermyon::spin::config as v1;
use bindings::fermyon::spin2_0_0::variables as v2;
use bindings::spin::variables::variables as v3;
use bindings::wasi::config::store as wasi_config;

/// The interfaces [`link`] defines.
pub const INTERFACES: &[&str] = &[
    "fermyon:spin/config",
    "fermyon:spin/variables@2.0.0",
    "spin:variables/variables@3.0.0",
    "wasi:config/store@0.2.0-draft-2024-09-27",
];

pub use crate::manifest::component_variables::{ComponentVariables, LookupError, validate_name};

/// Adds the variables interfaces to `linker`.
pub fn link<T: HasHost>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    v1::add_to_linker::<T, HostData>(linker, T::host_view)?;
    v2::add_to_linker::<T, HostData>(linker, T::host_view)?;
    v3::add_to_linker::<T, HostData>(linker, T::host_view)?;
    wasi_config::add_to_linker::<T, HostData>(linker, T::host_view)?;
    Ok(())
}

fn lookup(view: &HostView<'_>, name: &str) -> Result<String, LookupError> {
    view.host.component.variables.get(name).map(str::to_string)
}

impl v2::Host for HostView<'_> {
    async fn get(&mut self, name: String) -> wasmtime::Result<Result<String, v2::Error>> {
        Ok(lookup(self, &name).map_err(|e| match e {
            LookupError::InvalidName(m) => v2::Error::InvalidName(m),
            LookupError::Undefined(m) => v2::Error::Undefined(m),
        }))
    }
}

impl v3::Host for HostView<'_> {}

impl<T: Send> v3::HostWithStore<T> for HostData {
    async fn get(
        accessor: &Accessor<T, Self>,
        name: String,
    ) -> wasmtime::Result<Result<String, v3::Error>> {
        let found = accessor.with(|mut access| lookup(&access.get(), &name));
        Ok(found.map_err(|e| match e {
            LookupError::InvalidName(m) => v3::Error::InvalidName(m),
            LookupError::Undefined(m) => v3::Error::Undefined(m),
        }))
    }
}

impl v1::Host for HostView<'_> {
    async fn get_config(&mut self, key: String) -> wasmtime::Result<Result<String, v1::Error>> {
        Ok(lookup(self, &key).map_err(|e| match e {
            LookupError::InvalidName(m) => v1::Error::InvalidKey(m),
            LookupError::Undefined(m) => v1::Error::Provider(m),
        }))
    }
}

impl wasi_config::Host for HostView<'_> {
    async fn get(
        &mut self,
        key: String,
    ) -> wasmtime::Result<Result<Option<String>, wasi_config::Error>> {
        // Undefined and invalid names are both `none`, as wasi:config says.
        Ok(Ok(lookup(self, &key).ok()))
    }

    async fn get_all(
        &mut self,
    ) -> wasmtime::Result<Result<Vec<(String, String)>, wasi_config::Error>> {
        Ok(Ok(self.host.component.variables.all()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn names_follow_spins_rules() {
        for good in ["a", "redis_address", "port2", "a_b_c"] {
            assert_eq!(validate_name(good), Ok(()), "{good}");
        }
        for bad in ["", "Port", "2port", "_a", "a_", "a__b", "a-b", "a.b"] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn lookups_tell_invalid_from_undefined_and_debug_hides_values() {
        let mut m = BTreeMap::new();
        m.insert("token".to_string(), "hunter2".to_string());
        let v = ComponentVariables::new(m);
        assert_eq!(v.get("token"), Ok("hunter2"));
        assert!(matches!(v.get("nope"), Err(LookupError::Undefined(m)) if m.contains("\"token\"")));
        assert!(matches!(v.get("No-pe"), Err(LookupError::InvalidName(_))));
        assert!(!format!("{v:?}").contains("hunter2"));
    }
}
