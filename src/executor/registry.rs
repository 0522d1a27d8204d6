//! The handler registry: every (component, executor) pair of an app,
//! prepared once at start-up.
//!
//! A handler is a (component, executor) pair: in a v2 manifest two triggers
//! may run one component under different executors. Preparation reads the
//! wasm, stages the component's `files` (see `files`), builds the sandbox and
//! calls the executor's own `prepare`, which compiles (through the cache),
//! checks the exports and builds the `InstancePre`. Any failure names the
//! component and the file, and stops start-up.
//!
//! Not owned here: running a handler (`Executor::run`) or choosing which
//! handler a message goes to (`dispatch`).

use super::Executor;
use super::componentize::Componentizer;
use super::detect::{Fit, Found};
use super::engine::{CacheUse, Runtime};
use super::files::stage_files;
use super::seed_era::SpinSeedEraModule;
use super::spin::SpinComponent;
use super::wagi_command::WagiCommand;
use crate::host::runtime_config::HostConfig;
use crate::manifest::{App, Component, ExecutorConfig};
use crate::settings::RunConfig;
use anyhow::Context as _;
use sha2::{Digest as _, Sha256};
use spin_redis_compat::WagiModule;
use spin_redis_sandbox::wasi::Sandbox;
use spin_redis_sandbox::{Limits, WasmKind};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// A prepared handler: its component id and executor.
pub struct Handler {
    pub component: String,
    pub executor: Executor,
    /// SHA-256 of the wasm file's bytes this handler was compiled from (a
    /// reload compares it; the file may have changed since).
    pub wasm_sha256: [u8; 32],
    /// Staged `files` folders, deleted with the handler: after the last
    /// delivery that holds it (a reload may have swapped it out meanwhile).
    /// Declared last, so the executor is dropped before its files.
    _staging: Vec<tempfile::TempDir>,
}

/// A handler's key: its component id and executor.
pub type HandlerKey = (String, ExecutorConfig);

/// All handlers of an app, keyed by component id and executor.
pub struct Handlers {
    map: HashMap<HandlerKey, Arc<Handler>>,
}

impl Handlers {
    pub fn get(&self, component: &str, executor: &ExecutorConfig) -> Option<Arc<Handler>> {
        self.map
            .get(&(component.to_string(), executor.clone()))
            .cloned()
    }

    /// Every handler, by key (a reload keeps them in slots of its own).
    pub fn into_map(self) -> HashMap<HandlerKey, Arc<Handler>> {
        self.map
    }

    /// Prepares every (component, executor) pair the app's triggers use, or
    /// only those of component `only`. `stores` is the runtime config (the
    /// key-value stores); `env` are the `-e` values, applied to every
    /// component.
    pub fn prepare(
        runtime: &Runtime,
        app: &App,
        config: &RunConfig,
        stores: &HostConfig,
        env: &[(String, String)],
        only: Option<&str>,
    ) -> anyhow::Result<Handlers> {
        Self::prepare_where(runtime, app, config, stores, env, |(id, _)| {
            only.is_none_or(|only| only == id)
        })
    }

    /// Prepares the (component, executor) pairs the app's triggers use for
    /// which `wanted` holds (a reload prepares only what changed).
    pub fn prepare_where(
        runtime: &Runtime,
        app: &App,
        config: &RunConfig,
        stores: &HostConfig,
        env: &[(String, String)],
        wanted: impl Fn(&HandlerKey) -> bool,
    ) -> anyhow::Result<Handlers> {
        let mut map = HashMap::new();
        // By id, so that finding each trigger's component does not scan
        // them all (linear in triggers and components together).
        let components: HashMap<&str, &Component> =
            app.components.iter().map(|c| (c.id.as_str(), c)).collect();
        let keys = app
            .triggers
            .iter()
            .map(|t| (t.component.clone(), t.executor.clone()))
            .filter(|key| wanted(key));
        let mut host = None;
        for key in keys {
            if map.contains_key(&key) {
                continue;
            }
            // Spin's host APIs: one state for the app, shared by its
            // components; made only when something is prepared.
            let host = match &host {
                Some(host) => host,
                None => host.insert(crate::host::AppHost::new(app, config, stores)?),
            };
            let c = components
                .get(key.0.as_str())
                .expect("invariant: the manifest checked that every trigger names a component");
            let handler = prepare_one(runtime, app, c, &key.1, config, env, host)?;
            map.insert(key, Arc::new(handler));
        }
        Ok(Handlers { map })
    }
}

/// What `check` gets: every handler that could be prepared, and for each
/// component that could not, its problem (in trigger order).
pub struct Checked {
    pub handlers: Handlers,
    pub failed: Vec<(String, String)>,
}

impl Handlers {
    /// Prepares every (component, executor) pair the app's triggers use, in
    /// one pass over the triggers, going on past a component that fails
    /// (its other pairs are not tried), so that every problem is found.
    pub fn prepare_each(
        runtime: &Runtime,
        app: &App,
        config: &RunConfig,
        stores: &HostConfig,
        env: &[(String, String)],
    ) -> Checked {
        let mut map = HashMap::new();
        let mut failed: Vec<(String, String)> = Vec::new();
        let mut failed_ids: HashSet<&str> = HashSet::new();
        let components: HashMap<&str, &Component> =
            app.components.iter().map(|c| (c.id.as_str(), c)).collect();
        let host = crate::host::AppHost::new(app, config, stores);
        for t in &app.triggers {
            let key = (t.component.clone(), t.executor.clone());
            if map.contains_key(&key) || failed_ids.contains(t.component.as_str()) {
                continue;
            }
            let c = components
                .get(t.component.as_str())
                .expect("invariant: the manifest checked that every trigger names a component");
            let prepared = match &host {
                Ok(host) => prepare_one(runtime, app, c, &t.executor, config, env, host),
                // Every component would meet the same problem.
                Err(e) => Err(anyhow::anyhow!("{e:#}")),
            };
            match prepared {
                Ok(handler) => {
                    map.insert(key, Arc::new(handler));
                }
                Err(e) => {
                    failed_ids.insert(&t.component);
                    failed.push((t.component.clone(), format!("{e:#}")));
                }
            }
        }
        Checked {
            handlers: Handlers { map },
            failed,
        }
    }
}

fn prepare_one(
    runtime: &Runtime,
    app: &App,
    c: &Component,
    executor: &ExecutorConfig,
    config: &RunConfig,
    env: &[(String, String)],
    host: &Arc<crate::host::AppHost>,
) -> anyhow::Result<Handler> {
    let what = || {
        format!(
            "component {:?} (source {:?})",
            c.id,
            c.source.display().to_string()
        )
    };
    let bytes = std::fs::read(&c.source).with_context(|| format!("cannot read {}", what()))?;
    let (mounts, stage) = stage_files(&app.dir, &c.files, &c.exclude_files)
        .with_context(|| format!("cannot prepare the files of {}", what()))?;
    let mut sandbox = Sandbox {
        component_id: c.id.clone(),
        env: c.environment.clone(),
        mounts,
        argv: Vec::new(),
    };
    sandbox.env.extend(env.iter().cloned());
    announce(&c.id, bytes.len());
    let started = std::time::Instant::now();
    let engine = &runtime.engine;
    let (exec, cache) = runtime.observe_cache(|| match executor {
        ExecutorConfig::Wagi { argv, .. } if WagiCommand::is_component(&bytes) => {
            sandbox.argv = argv.clone();
            WagiCommand::prepare(engine, &bytes, sandbox, config.limits.clone())
                .map(|c| (Executor::WagiCommand(c), None))
                .map_err(|e| anyhow::anyhow!("{} {e}", what()))
        }
        ExecutorConfig::Wagi { entrypoint, argv } => {
            sandbox.argv = argv.clone();
            WagiModule::prepare(engine, &bytes, entrypoint, sandbox, config.limits.clone())
                .map(|m| (Executor::Wagi(m), None))
                .map_err(|e| {
                    // Say what would fit a module without the entrypoint.
                    let hint = match &e {
                        spin_redis_sandbox::PrepareError::MissingEntrypoint { .. } => {
                            Found::of(&bytes).hint_for_wagi()
                        }
                        _ => String::new(),
                    };
                    anyhow::anyhow!("{} {e}{hint}", what())
                })
        }
        ExecutorConfig::Spin => {
            let granted = host.component(c)?;
            let component = |bytes: &[u8], sandbox: Sandbox| {
                SpinComponent::prepare(
                    engine,
                    bytes,
                    sandbox,
                    config.limits.clone(),
                    granted.clone(),
                )
            };
            prepare_spin(runtime, &bytes, sandbox, &config.limits, component)
                .map_err(|e| anyhow::anyhow!("{} {e}", what()))
        }
    });
    let (exec, componentized) = exec?;
    if let Some((state, took)) = componentized {
        tracing::info!(component = %c.id, componentize_cache = %state, adapter = super::componentize::ADAPTER_VERSION, elapsed = ?took, "made a component of a core module with component-type metadata");
    }
    tracing::info!(component = %c.id, executor = %exec.describe(), bytes = bytes.len(), %cache, elapsed = ?started.elapsed(), "prepared");
    Ok(Handler {
        component: c.id.clone(),
        executor: exec,
        wasm_sha256: Sha256::digest(&bytes).into(),
        _staging: stage,
    })
}

/// The spin executor's choice, from what the wasm is (see `detect`): a
/// component as it is; a core module with component-type metadata made into
/// a component first (through the componentize cache, whose use and time are
/// returned);
/// a seed-era module through its ABI. Anything else is refused with what was
/// found and what would fit. `component` prepares a component's bytes.
fn prepare_spin(
    runtime: &Runtime,
    bytes: &[u8],
    sandbox: Sandbox,
    limits: &Limits,
    component: impl Fn(&[u8], Sandbox) -> Result<SpinComponent, spin_redis_sandbox::PrepareError>,
) -> Result<(Executor, Option<(CacheUse, std::time::Duration)>), String> {
    use spin_redis_sandbox::PrepareError;
    if WasmKind::of(bytes) != WasmKind::CoreModule {
        // A component, or garbage: the `spin` executor says which.
        return component(bytes, sandbox)
            .map(|h| (Executor::Spin(h), None))
            .map_err(|e| match e {
                PrepareError::NoHandler { .. } => {
                    format!("{e}{}", Found::of(bytes).hint_for_component())
                }
                e => e.to_string(),
            });
    }
    let found = Found::of(bytes);
    match found.fit() {
        Fit::Componentize => {
            let made = |e: PrepareError| {
                let hint = match e {
                    PrepareError::NoHandler { .. } => found.hint_for_component(),
                    _ => String::new(),
                };
                format!(
                    "carries component-type metadata and was made into a component, which {e}{hint}"
                )
            };
            let binary = super::detect::binary(bytes)?;
            let componentizer = Componentizer::new(runtime.cache_dir());
            let encoded = componentizer
                .component(&binary)
                .map_err(|e| e.to_string())?;
            let (encoded, prepared) = match component(&encoded.bytes, sandbox.clone()) {
                // A cached entry that does not load is encoded again.
                Err(e @ (PrepareError::Compile(_) | PrepareError::NotWasm { .. }))
                    if encoded.cache == CacheUse::Hit =>
                {
                    tracing::warn!(error = %e, "a componentize cache entry does not load; encoding the module again");
                    let encoded = componentizer.redo(&binary).map_err(|e| e.to_string())?;
                    let prepared = component(&encoded.bytes, sandbox);
                    (encoded, prepared)
                }
                prepared => (encoded, prepared),
            };
            prepared
                .map(|h| (Executor::Spin(h), Some((encoded.cache, encoded.elapsed))))
                .map_err(made)
        }
        Fit::Seed => {
            let binary = super::detect::binary(bytes)?;
            SpinSeedEraModule::prepare(&runtime.engine, &binary, sandbox, limits.clone())
                .map(|s| (Executor::SpinSeedEra(s), None))
                .map_err(|e| {
                    format!(
                        "is a seed-era module (it exports `{}` and `{}`), which {e}",
                        super::detect::SEED_HANDLER,
                        super::detect::SEED_REALLOC
                    )
                })
        }
        Fit::Component | Fit::Command | Fit::Nothing => Err(found.refusal_for_spin()),
    }
}

/// On a terminal, says which component is being prepared before a large one
/// keeps the user waiting (its `prepared` line then tells the size, the
/// cache's part and the time). Nothing of it when stderr is not a terminal.
fn announce(id: &str, bytes: usize) {
    use std::io::IsTerminal as _;
    if std::io::stderr().is_terminal() {
        eprintln!(
            "preparing {id:?} ({:.1} MB)...",
            bytes as f64 / (1024.0 * 1024.0)
        );
    }
}
