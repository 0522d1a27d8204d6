//! Spin's host APIs for components: outbound Redis, variables, key-value and
//! outbound HTTP, under every interface version the Spin SDKs import.
//!
//! One interface family per module ([`redis`], [`variables`], [`key_value`],
//! [`http`]), each generating its bindings with `bindgen!` from the vendored
//! WIT in `wit/spin/`; `manifest::allowed_hosts` is the
//! `allowed_outbound_hosts` check they share ([`refusals`] logs what it
//! refuses), [`destination`] reads where a connection goes from the
//! value it is made with, and [`runtime_config`] reads Spin's runtime config file
//! (the key-value stores). This file holds only the state they share and
//! [`link`].
//!
//! State lives at three levels: [`AppHost`] (one per process: the Redis
//! connection pool and the key-value stores), [`ComponentHost`] (one per
//! component, built at start-up from its manifest: allowed hosts, variables,
//! store labels) and [`InstanceHost`] (one per message: the deadline and the
//! HTTP context). Handles the guest holds (connections, open stores) live in
//! the store's `ResourceTable`, so they end with the message.
//!
//! Not owned here: WASI itself (wasmtime-wasi), the imports no host API
//! provides (`stubs`), and `wagi` modules, which get no host APIs.

pub mod destination;
pub mod http;
pub mod key_value;
pub mod redis;
pub mod refusals;

pub mod reply_bounds;
pub mod runtime_config;
pub mod stubs;
pub mod variables;

use crate::manifest::allowed_hosts::{AllowedHosts, Destination};
use crate::manifest::{App, Component};
use crate::settings::RunConfig;
use refusals::RefusalLog;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;
use wasmtime::component::{Accessor, HasData, Linker, ResourceTable};

/// What every component of the app shares.
pub struct AppHost {
    pub redis: redis::Pool,
    /// The bounds of the host APIs (see `reply_bounds`).
    pub limits: reply_bounds::HostLimits,
    pub stores: key_value::Stores,
    /// The manifest, for messages.
    manifest: PathBuf,
}

impl AppHost {
    /// The app's shared host state: the Redis pool (verifying `rediss://`
    /// with the TLS CA file in force) and the key-value stores of the
    /// runtime config `stores`. Connects to nothing and opens no file.
    pub fn new(
        app: &App,
        config: &RunConfig,
        stores: &runtime_config::HostConfig,
    ) -> anyhow::Result<Arc<AppHost>> {
        let limits = config.host_limits;
        let redis = redis::Pool::new(config.tls_ca_file.as_deref(), &limits)?;
        let stores = stores.stores(&app.dir);
        Ok(Arc::new(AppHost {
            redis,
            limits,
            stores,
            manifest: app.manifest.clone(),
        }))
    }

    /// An app with no stores and an empty pool, for a component prepared
    /// outside a manifest (benchmarks, tests): see [`ComponentHost::ungranted`].
    pub fn empty() -> Arc<AppHost> {
        Arc::new(AppHost {
            redis: redis::Pool::new(None, &Default::default())
                .expect("invariant: no CA file to read"),
            limits: Default::default(),
            stores: key_value::Stores::default(),
            manifest: PathBuf::new(),
        })
    }

    /// What component `c`'s manifest grants it. A store label it lists that
    /// no store defines is refused, as Spin does.
    pub fn component(self: &Arc<Self>, c: &Component) -> anyhow::Result<Arc<ComponentHost>> {
        let apis = &c.host_apis;
        for label in &apis.key_value_stores {
            let Some(backend) = self.stores.describe(label) else {
                anyhow::bail!(
                    "{}: component.{}.key_value_stores: store {label:?} is not defined\n  hint: spin-redis defines \"{}\" and the stores of the runtime config file: add [key_value_store.{label}] with type = \"spin\" (SQLite) or type = \"redis\" to a file passed with --runtime-config-file",
                    self.manifest.display(),
                    c.id,
                    runtime_config::DEFAULT_STORE,
                );
            };
            tracing::info!(component = %c.id, store = %label, %backend, "key-value store");
        }
        Ok(Arc::new(ComponentHost::new(
            c.id.clone(),
            apis.allowed_outbound_hosts.clone(),
            apis.variables.clone(),
            apis.key_value_stores.clone(),
            self.clone(),
        )))
    }
}

/// What a component's manifest grants it, shared by all its instances.
pub struct ComponentHost {
    pub id: String,
    pub allowed_hosts: AllowedHosts,
    pub variables: variables::ComponentVariables,
    /// The `key_value_stores` labels the component may open.
    pub key_value_stores: Vec<String>,
    pub app: Arc<AppHost>,
    refusals: RefusalLog,
}

impl ComponentHost {
    pub fn new(
        id: String,
        allowed_hosts: AllowedHosts,
        variables: variables::ComponentVariables,
        key_value_stores: Vec<String>,
        app: Arc<AppHost>,
    ) -> ComponentHost {
        ComponentHost {
            id,
            allowed_hosts,
            variables,
            key_value_stores,
            app,
            refusals: RefusalLog::default(),
        }
    }

    /// A component granted nothing: no outbound connection, no store, no
    /// variable (every host API call fails with the interface's error).
    pub fn ungranted(id: &str) -> Arc<ComponentHost> {
        Arc::new(ComponentHost::new(
            id.to_string(),
            AllowedHosts::default(),
            variables::ComponentVariables::default(),
            Vec::new(),
            AppHost::empty(),
        ))
    }

    /// Checks an outbound destination against `allowed_outbound_hosts`.
    /// `read` is what `destination` read from the value the connection is
    /// made with (an invalid URL is refused as such). A refusal is logged
    /// once per host, naming the entry that would allow it.
    pub fn check_outbound(
        &self,
        read: Result<Destination, destination::Invalid>,
    ) -> Result<Destination, Refused> {
        let d = match read {
            Ok(d) => d,
            Err(why) => {
                // The URL itself is not shown: it may hold a password.
                tracing::debug!(component = %self.id, reason = %why, "refused an outbound connection: invalid URL");
                return Err(Refused::BadUrl);
            }
        };
        if self.allowed_hosts.allows(&d) {
            return Ok(d);
        }
        self.refusals.refused(&self.id, &d);
        Err(Refused::NotAllowed(d))
    }
}

/// Why an outbound connection was not made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// Not a URL with a host, or one that parsers read in two ways (see
    /// `destination`).
    BadUrl,
    /// Not in `allowed_outbound_hosts`.
    NotAllowed(Destination),
}

/// The host state of one instance (one message).
pub struct InstanceHost {
    pub component: Arc<ComponentHost>,
    /// When the message's deadline passes: outbound connections wait no
    /// longer than this.
    pub deadline: Instant,
    pub http: http::InstanceHttp,
    /// Key-value stores open now (see `key_value::MAX_OPEN`).
    pub open_stores: usize,
    /// Outbound Redis connections open now (see `redis::MAX_OPEN`).
    pub open_connections: usize,
    /// What this message has received through the host APIs (see
    /// `reply_bounds`).
    pub budget: Arc<reply_bounds::MessageBudget>,
}

impl InstanceHost {
    pub fn new(component: Arc<ComponentHost>, deadline: Instant) -> InstanceHost {
        let http = http::InstanceHttp::new(component.clone(), deadline);
        let budget = Arc::new(reply_bounds::MessageBudget::new(component.app.limits));
        InstanceHost {
            component,
            deadline,
            http,
            open_stores: 0,
            open_connections: 0,
            budget,
        }
    }
}

/// The view of a store's state the host APIs work on.
pub struct HostView<'a> {
    pub host: &'a mut InstanceHost,
    pub table: &'a mut ResourceTable,
}

/// [`HasData`] for the host APIs' `add_to_linker` functions.
pub struct HostData;

impl HasData for HostData {
    type Data<'a> = HostView<'a>;
}

/// Reaches the instance's host state from an interface adapter: directly
/// (`v1`, `v2`) or through the store's accessor (`v3`, whose calls run
/// concurrently and so may not hold the state across an await).
pub trait WithView {
    fn with_view<R>(&mut self, f: impl FnOnce(&mut HostView<'_>) -> R) -> R;
}

impl WithView for HostView<'_> {
    fn with_view<R>(&mut self, f: impl FnOnce(&mut HostView<'_>) -> R) -> R {
        f(self)
    }
}

impl<T> WithView for &Accessor<T, HostData> {
    fn with_view<R>(&mut self, f: impl FnOnce(&mut HostView<'_>) -> R) -> R {
        self.with(|mut access| f(&mut access.get()))
    }
}

/// Implemented by the store state of components that get the host APIs.
pub trait HasHost: Send + 'static {
    fn host_view(&mut self) -> HostView<'_>;
}

/// Adds every host API to `linker`.
pub fn link<T: HasHost + wasmtime_wasi_http::WasiHttpView>(
    linker: &mut Linker<T>,
) -> wasmtime::Result<()> {
    redis::link(linker)?;
    variables::link(linker)?;
    key_value::link(linker)?;
    http::link(linker)?;
    Ok(())
}

/// Whether [`link`] defines the import `name` (an interface name such as
/// `fermyon:spin/key-value@2.0.0`), so that the stubs leave it alone.
pub fn provides(name: &str) -> bool {
    redis::INTERFACES
        .iter()
        .chain(variables::INTERFACES)
        .chain(key_value::INTERFACES)
        .chain(http::SPIN_INTERFACES)
        .any(|i| *i == name)
        || http::is_wasi_http(name)
}
