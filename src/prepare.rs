//! Start-up shared by every command: read the manifest, settle the settings,
//! build the engine and prepare every handler. Everything here happens once;
//! nothing of it is repeated per message.

use crate::cli::Common;
use crate::config::{Overrides, RunConfig};
use crate::engine::{EngineOptions, Runtime, default_cache_dir};
use crate::executor::Handlers;
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

/// Loads and prepares the app named by `common.from` (only component `only`,
/// when given). `overrides` holds the command's flags beyond `common`.
pub fn prepare(
    common: &Common,
    mut overrides: Overrides,
    only: Option<&str>,
) -> Result<Prepared, Failure> {
    let app = manifest::load(&common.from).map_err(Failure::usage)?;
    overrides.timeout = common.timeout;
    overrides.max_memory = common.max_memory;
    overrides.max_output = common.max_output;
    let config = RunConfig::resolve(&app.settings, &overrides);
    let cache_dir = if common.no_cache {
        None
    } else {
        common.cache_dir.clone().or_else(default_cache_dir)
    };
    let runtime = Runtime::new(&EngineOptions {
        // Each trigger has a slot of its own besides the shared ones (see
        // `dispatch`), so as many as this may run at once.
        max_instances: u32::try_from(config.max_concurrency.max(app.triggers.len()))
            .unwrap_or(u32::MAX),
        max_memory: config.limits.max_memory_bytes as u64,
        cache_dir,
    })
    .map_err(Failure::runtime)?;
    let handlers =
        Handlers::prepare(&runtime, &app, &config, &common.env, only).map_err(Failure::usage)?;
    Ok(Prepared {
        app,
        config,
        handlers,
        runtime,
    })
}
