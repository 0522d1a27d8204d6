//! The closed set of executors, and preparing every handler of an app once at
//! start-up.
//!
//! A handler is a (component, executor) pair: in a v2 manifest two triggers
//! may run one component under different executors. Preparation reads the
//! wasm, stages the component's `files`, builds the sandbox and calls the
//! executor's own `prepare`, which compiles (through the cache), checks the
//! exports and builds the `InstancePre`. Any failure names the component and
//! the file, and stops start-up.

use crate::command::CommandComponent;
use crate::component::ComponentHandler;
use crate::componentize::Componentizer;
use crate::config::RunConfig;
use crate::detect::{Fit, Found};
use crate::engine::{CacheUse, Runtime};
use crate::manifest::{App, Component, ExecutorConfig, FileMapping};
use crate::seed::SeedModule;
use anyhow::Context as _;
use spin_redis_compat::sandbox::{Message, Mount, Sandbox};
use spin_redis_compat::{CompatModule, Limits, Outcome, WasmKind};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One prepared executor.
pub enum Executor {
    /// A WASI preview1 core module, Wagi style.
    Compat(CompatModule),
    /// A WASI 0.2 command component (`wasi:cli/run`), Wagi style.
    Command(CommandComponent),
    /// A component exporting a Redis handler interface (perhaps made from a
    /// core module with component-type metadata, see `componentize`).
    Component(ComponentHandler),
    /// A seed-era core module: `handle-redis-message` in the pre-component
    /// canonical ABI (see `seed`); under the spin executor.
    Seed(SeedModule),
}

impl Executor {
    pub async fn run(&self, msg: Message<'_>) -> Outcome {
        match self {
            Executor::Compat(m) => m.run(msg).await,
            Executor::Command(c) => c.run(msg).await,
            Executor::Component(c) => c.run(msg).await,
            Executor::Seed(s) => s.run(msg).await,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Executor::Compat(_) => "wagi (WASI preview1 core module)".into(),
            Executor::Command(_) => "wagi (WASI 0.2 command component, wasi:cli/run)".into(),
            Executor::Component(c) => format!("spin ({})", c.interface().describe()),
            Executor::Seed(_) => {
                "spin (seed-era core module: handle-redis-message, pre-component canonical ABI)"
                    .into()
            }
        }
    }
}

/// A prepared handler: its component id and executor.
pub struct Handler {
    pub component: String,
    pub executor: Executor,
}

/// All handlers of an app, keyed by component id and executor.
pub struct Handlers {
    map: HashMap<(String, ExecutorConfig), Arc<Handler>>,
    /// Staged `files` folders; deleted when the handlers are dropped.
    _staging: Vec<tempfile::TempDir>,
}

impl Handlers {
    pub fn get(&self, component: &str, executor: &ExecutorConfig) -> Option<Arc<Handler>> {
        self.map
            .get(&(component.to_string(), executor.clone()))
            .cloned()
    }

    /// Prepares every (component, executor) pair the app's triggers use, or
    /// only those of component `only`. `env` are the `-e` values, applied to
    /// every component.
    pub fn prepare(
        runtime: &Runtime,
        app: &App,
        config: &RunConfig,
        env: &[(String, String)],
        only: Option<&str>,
    ) -> anyhow::Result<Handlers> {
        let mut map = HashMap::new();
        let mut staging = Vec::new();
        // Spin's host APIs: one state for the app, shared by its components.
        let host = crate::host::AppHost::new(app, config)?;
        for t in app
            .triggers
            .iter()
            .filter(|t| only.is_none_or(|id| id == t.component))
        {
            let key = (t.component.clone(), t.executor.clone());
            if map.contains_key(&key) {
                continue;
            }
            let c = app
                .components
                .iter()
                .find(|c| c.id == t.component)
                .expect("invariant: the manifest checked that every trigger names a component");
            let (handler, stage) = prepare_one(runtime, app, c, &t.executor, config, env, &host)?;
            staging.extend(stage);
            map.insert(key, Arc::new(handler));
        }
        Ok(Handlers {
            map,
            _staging: staging,
        })
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
) -> anyhow::Result<(Handler, Vec<tempfile::TempDir>)> {
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
        ExecutorConfig::Wagi { argv, .. } if CommandComponent::is_component(&bytes) => {
            sandbox.argv = argv.clone();
            CommandComponent::prepare(engine, &bytes, sandbox, config.limits.clone())
                .map(|c| (Executor::Command(c), None))
                .map_err(|e| anyhow::anyhow!("{} {e}", what()))
        }
        ExecutorConfig::Wagi { entrypoint, argv } => {
            sandbox.argv = argv.clone();
            CompatModule::prepare(engine, &bytes, entrypoint, sandbox, config.limits.clone())
                .map(|m| (Executor::Compat(m), None))
                .map_err(|e| {
                    // Say what would fit a module without the entrypoint.
                    let hint = match &e {
                        spin_redis_compat::PrepareError::MissingEntrypoint { .. } => {
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
                ComponentHandler::prepare(
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
        tracing::info!(component = %c.id, componentize_cache = %state, adapter = crate::componentize::ADAPTER_VERSION, elapsed = ?took, "made a component of a core module with component-type metadata");
    }
    tracing::info!(component = %c.id, executor = %exec.describe(), bytes = bytes.len(), %cache, elapsed = ?started.elapsed(), "prepared");
    Ok((
        Handler {
            component: c.id.clone(),
            executor: exec,
        },
        stage,
    ))
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
    component: impl Fn(&[u8], Sandbox) -> Result<ComponentHandler, crate::component::PrepareError>,
) -> Result<(Executor, Option<(CacheUse, std::time::Duration)>), String> {
    use crate::component::PrepareError;
    if WasmKind::of(bytes) != WasmKind::CoreModule {
        // A component, or garbage: the component executor says which.
        return component(bytes, sandbox)
            .map(|h| (Executor::Component(h), None))
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
            let binary = crate::detect::binary(bytes)?;
            let componentizer = Componentizer::new(runtime.cache_dir());
            let encoded = componentizer
                .component(&binary)
                .map_err(|e| e.to_string())?;
            let (encoded, prepared) = match component(&encoded.bytes, sandbox.clone()) {
                // A cached entry that does not load is encoded again.
                Err(e @ (PrepareError::Compile(_) | PrepareError::NotWasm))
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
                .map(|h| {
                    (
                        Executor::Component(h),
                        Some((encoded.cache, encoded.elapsed)),
                    )
                })
                .map_err(made)
        }
        Fit::Seed => {
            let binary = crate::detect::binary(bytes)?;
            SeedModule::prepare(&runtime.engine, &binary, sandbox, limits.clone())
                .map(|s| (Executor::Seed(s), None))
                .map_err(|e| {
                    format!(
                        "is a seed-era module (it exports `{}` and `{}`), which {e}",
                        crate::detect::SEED_HANDLER,
                        crate::detect::SEED_REALLOC
                    )
                })
        }
        Fit::Component | Fit::Command | Fit::Nothing => Err(found.refusal_for_spin()),
    }
}

/// Turns `files` into mounts, as Spin does: files matched by a glob, and
/// whole folders named by a plain path, are copied (keeping their paths
/// relative to the manifest's folder) into one staging folder mounted at
/// `/`; `{ source, destination }` folders are mounted where they are.
/// `exclude_files` globs remove files from all of these (a mapped folder
/// with exclusions in it is staged too, so the exclusion holds).
fn stage_files(
    dir: &Path,
    files: &[FileMapping],
    exclude: &[String],
) -> anyhow::Result<(Vec<Mount>, Vec<tempfile::TempDir>)> {
    let exclude: Vec<glob::Pattern> = exclude
        .iter()
        .map(|p| glob::Pattern::new(p).with_context(|| format!("bad exclude pattern {p:?}")))
        .collect::<anyhow::Result<_>>()?;
    let excluded = |rel: &Path| exclude.iter().any(|p| p.matches_path(rel));
    let mut mounts = Vec::new();
    let new_stage = || {
        tempfile::Builder::new()
            .prefix("spin-redis-files-")
            .tempdir()
            .context("cannot create a staging folder for the component's files")
    };
    // The folder mounted at `/`, made on first use.
    let mut stage: Option<tempfile::TempDir> = None;
    // Copies of mapped folders that have exclusions in them.
    let mut mapped_copies = Vec::new();
    for f in files {
        match f {
            FileMapping::Directory {
                source,
                destination,
            } => {
                let mut found = Vec::new();
                let mut special = Vec::new();
                walk(source, &mut found, &mut special)?;
                // A folder is mounted as it is, so what a guest can open in
                // it must be a plain file: file calls run on a handler thread
                // (see `spin_redis_compat::sandbox`), and reading a named pipe
                // or a device could wait there without end, out of reach of
                // the message's timeout.
                if let Some(path) = special
                    .iter()
                    .find(|p| !p.strip_prefix(dir).is_ok_and(&excluded))
                {
                    anyhow::bail!(
                        "{:?} in the mounted folder {:?} is not a plain file or folder (a named pipe, socket or device): a handler reading it could wait without end, past its timeout; remove it, or list it in exclude_files",
                        path.display().to_string(),
                        source.display().to_string()
                    );
                }
                // An excluded pipe counts too: the copy leaves it out.
                let any_excluded = found
                    .iter()
                    .chain(&special)
                    .any(|p| p.strip_prefix(dir).is_ok_and(&excluded));
                if !any_excluded {
                    mounts.push(Mount {
                        host: source.clone(),
                        guest: destination.clone(),
                    });
                    continue;
                }
                // Copy what is not excluded into a folder of its own.
                let copy = new_stage()?;
                let root = copy.path().to_path_buf();
                mapped_copies.push(copy);
                for path in found {
                    let rel_app = path.strip_prefix(dir).unwrap_or(&path);
                    if excluded(rel_app) {
                        continue;
                    }
                    let rel = path
                        .strip_prefix(source)
                        .expect("invariant: walked from source");
                    copy_into(&root, rel, &path)?;
                }
                mounts.push(Mount {
                    host: root,
                    guest: destination.clone(),
                });
            }
            FileMapping::Pattern(pattern) => {
                if stage.is_none() {
                    stage = Some(new_stage()?);
                }
                let root = stage
                    .as_ref()
                    .expect("invariant: created above")
                    .path()
                    .to_path_buf();
                let full = dir.join(pattern);
                let is_glob = pattern.contains(['*', '?', '[']);
                let mut matched = Vec::new();
                if !is_glob && full.is_dir() {
                    // Only plain files are copied; anything else is left out.
                    walk(&full, &mut matched, &mut Vec::new())?;
                } else {
                    let text = full
                        .to_str()
                        .with_context(|| format!("pattern {pattern:?} is not valid UTF-8"))?;
                    for entry in
                        glob::glob(text).with_context(|| format!("bad file pattern {pattern:?}"))?
                    {
                        let path = entry?;
                        // As in Spin, a glob mounts the files it matches;
                        // `assets/**` matches folders only, and mounts nothing.
                        if path.is_file() {
                            matched.push(path);
                        }
                    }
                }
                let mut copied = 0;
                for path in matched {
                    let rel = path.strip_prefix(dir).with_context(|| {
                        format!(
                            "{:?} is outside the manifest's folder",
                            path.display().to_string()
                        )
                    })?;
                    if excluded(rel) {
                        continue;
                    }
                    copy_into(&root, rel, &path)?;
                    copied += 1;
                }
                if copied == 0 {
                    let hint = if pattern.ends_with("**") {
                        " (`**` alone matches folders, not files: write \"<folder>/**/*\")"
                    } else {
                        ""
                    };
                    tracing::warn!(pattern = %pattern, "file pattern mounts no files{hint}");
                }
            }
        }
    }
    if let Some(s) = &stage {
        mounts.push(Mount {
            host: s.path().to_path_buf(),
            guest: "/".into(),
        });
    }
    mapped_copies.extend(stage);
    Ok((mounts, mapped_copies))
}

/// Collects the plain files under `dir` into `out`, and what exists but is
/// neither a file nor a folder (named pipes, sockets, devices) into
/// `special`. Symbolic links are followed; a dangling one is neither.
fn walk(dir: &Path, out: &mut Vec<PathBuf>, special: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {:?}", dir.display().to_string()))?
    {
        let path = entry?.path();
        if path.is_dir() {
            walk(&path, out, special)?;
        } else if path.is_file() {
            out.push(path);
        } else if path.exists() {
            special.push(path);
        }
    }
    Ok(())
}

fn copy_into(root: &Path, rel: &Path, from: &Path) -> anyhow::Result<()> {
    let dest = root.join(rel);
    if let Some(parent) = dest.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::copy(from, &dest)
        .with_context(|| format!("cannot copy {:?}", from.display().to_string()))?;
    Ok(())
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
