//! Start-up shared by every command: read the manifest, settle the settings,
//! build the engine and prepare every handler. Everything here happens once;
//! nothing of it is repeated per message.

use crate::cli::Common;
use crate::config::{Overrides, RunConfig};
use crate::executor::Handlers;
use crate::executor::engine::{EngineOptions, Runtime, default_cache_dir};
use crate::failure::Failure;
use crate::manifest::{self, App};

/// A ready-to-run application.
pub struct Prepared {
    pub app: App,
    pub config: RunConfig,
    pub handlers: Handlers,
    /// Kept alive for its epoch ticker; dropped last.
    pub runtime: Runtime,
}

/// Loads the app named by `common.from`, settles the settings and builds the
/// engine: everything before preparing handlers (`check` prepares them one
/// by one to report every problem). `only`: the one component a command
/// will run.
pub fn setup(
    common: &Common,
    overrides: Overrides,
    only: Option<&str>,
) -> Result<(App, RunConfig, Runtime), Failure> {
    let (app, config) = settle(common, overrides, only)?;
    let runtime = engine(common, &app, &config)?;
    Ok((app, config, runtime))
}

/// Loads and validates the app named by `common.from` and settles its
/// settings, runtime config included; no engine (a reload keeps the one it
/// runs with).
pub fn settle(
    common: &Common,
    mut overrides: Overrides,
    only: Option<&str>,
) -> Result<(App, RunConfig), Failure> {
    let app = manifest::load(&common.from).map_err(Failure::usage)?;
    overrides.timeout = common.timeout;
    overrides.max_memory = common.max_memory;
    overrides.max_output = common.max_output;
    overrides.max_host_reply = common.max_host_reply;
    overrides.max_host_listing = common.max_host_listing;
    overrides.max_host_received = common.max_host_received;
    overrides.max_redis_addresses = common
        .max_redis_addresses
        .map(|n| usize::try_from(n).unwrap_or(usize::MAX));
    overrides.max_redis_dedicated = common
        .max_redis_dedicated
        .map(|n| usize::try_from(n).unwrap_or(usize::MAX));
    let mut config = RunConfig::resolve(&app.settings, &overrides);
    config.host = crate::host::runtime_config::HostConfig::load(
        common.runtime_config_file.as_deref(),
        common.state_dir.as_deref(),
    )
    .map_err(Failure::usage)?;
    if only.is_none() {
        crate::source::stream::check_timeouts(&app, config.limits.timeout)
            .map_err(Failure::usage)?;
        crate::source::list::check(&app).map_err(Failure::usage)?;
    }
    Ok((app, config))
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
/// when given). `overrides` holds the command's flags beyond `common`.
pub fn prepare(
    common: &Common,
    overrides: Overrides,
    only: Option<&str>,
) -> Result<Prepared, Failure> {
    let (app, config, runtime) = setup(common, overrides, only)?;
    let handlers =
        Handlers::prepare(&runtime, &app, &config, &common.env, only).map_err(Failure::usage)?;
    Ok(Prepared {
        app,
        config,
        handlers,
        runtime,
    })
}
