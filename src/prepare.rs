//! Start-up shared by every command: read the manifest, settle the settings,
//! read the runtime config, build the engine and prepare every handler.
//! Everything here happens once; nothing of it is repeated per message.
//!
//! Not owned here: the flags (`cli`, which turns them into
//! `settings::Overrides`) and settling each setting (`settings`).

use crate::cli::Common;
use crate::executor::Handlers;
use crate::executor::engine::{EngineOptions, Runtime, default_cache_dir};
use crate::failure::Failure;
use crate::host::runtime_config::HostConfig;
use crate::manifest::{self, App};
use crate::settings::{Overrides, RunConfig};

/// A ready-to-run application.
pub struct Prepared {
    pub app: App,
    pub config: RunConfig,
    /// The runtime config: the key-value stores.
    pub stores: HostConfig,
    pub handlers: Handlers,
    /// Kept alive for its epoch ticker; dropped last.
    pub runtime: Runtime,
}

/// What start-up settles before preparing handlers.
pub struct Setup {
    pub app: App,
    pub config: RunConfig,
    pub stores: HostConfig,
    pub runtime: Runtime,
}

/// Loads the app named by `common.from`, settles the settings (`overrides`:
/// every flag given, see `cli`) and builds the engine: everything before
/// preparing handlers (`check` prepares them one by one to report every
/// problem). `only`: the one component a command will run.
pub fn setup(common: &Common, overrides: Overrides, only: Option<&str>) -> Result<Setup, Failure> {
    let (app, config, stores) = settle(common, overrides, only)?;
    let runtime = engine(common, &app, &config)?;
    Ok(Setup {
        app,
        config,
        stores,
        runtime,
    })
}

/// Loads and validates the app named by `common.from` and settles its
/// settings and runtime config; no engine (a reload keeps the one it runs
/// with).
pub fn settle(
    common: &Common,
    overrides: Overrides,
    only: Option<&str>,
) -> Result<(App, RunConfig, HostConfig), Failure> {
    let app = manifest::load(&common.from).map_err(Failure::usage)?;
    let config = RunConfig::resolve(&app.settings, &overrides);
    let stores = HostConfig::load(
        common.runtime_config_file.as_deref(),
        common.state_dir.as_deref(),
    )
    .map_err(Failure::usage)?;
    if only.is_none() {
        manifest::source::check_claim_idles(&app, config.limits.timeout)
            .map_err(|m| Failure::usage(anyhow::anyhow!(m)))?;
        crate::source::list::check(&app).map_err(Failure::usage)?;
    }
    Ok((app, config, stores))
}

/// The engine for `app`: sized by its triggers and settings.
fn engine(common: &Common, app: &App, config: &RunConfig) -> Result<Runtime, Failure> {
    let cache_dir = if common.no_cache {
        None
    } else {
        // wasmtime's cache wants an absolute folder; a relative one is
        // taken from the current directory, as a user means it.
        common
            .cache_dir
            .clone()
            .or_else(default_cache_dir)
            .map(|d| std::path::absolute(&d).unwrap_or(d))
    };
    Runtime::new(&EngineOptions {
        // Each trigger has a slot of its own besides the shared ones (see
        // `dispatch`), so as many as this may run at once.
        max_instances: u32::try_from(config.max_concurrency.max(app.triggers.len()))
            .unwrap_or(u32::MAX),
        max_memory: config.limits.max_memory_bytes as u64,
        cache_dir,
    })
    .map_err(Failure::runtime)
}

/// Loads and prepares the app named by `common.from` (only component `only`,
/// when given). `overrides` holds every flag given (see `cli`).
pub fn prepare(
    common: &Common,
    overrides: Overrides,
    only: Option<&str>,
) -> Result<Prepared, Failure> {
    let Setup {
        app,
        config,
        stores,
        runtime,
    } = setup(common, overrides, only)?;
    let handlers = Handlers::prepare(&runtime, &app, &config, &stores, &common.env, only)
        .map_err(Failure::usage)?;
    Ok(Prepared {
        app,
        config,
        stores,
        handlers,
        runtime,
    })
}
