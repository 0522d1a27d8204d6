//! The closed set of executors, and preparing every handler of an app once at
//! start-up.
//!
//! A handler is a (component, executor) pair: in a v2 manifest two triggers
//! may run one component under different executors. Preparation reads the
//! wasm, stages the component's `files`, builds the sandbox and calls the
//! executor's own `prepare`, which compiles (through the cache), checks the
//! exports and builds the `InstancePre`. Any failure names the component and
//! the file, and stops start-up.

use crate::component::ComponentHandler;
use crate::config::RunConfig;
use crate::engine::Runtime;
use crate::manifest::{App, Component, ExecutorConfig, FileMapping};
use anyhow::Context as _;
use spin_redis_compat::sandbox::{Message, Mount, Sandbox};
use spin_redis_compat::{CompatModule, Outcome};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// One prepared executor.
pub enum Executor {
    /// A WASI preview1 core module, Wagi style.
    Compat(CompatModule),
    /// A component exporting a Redis handler interface.
    Component(ComponentHandler),
}

impl Executor {
    pub async fn run(&self, msg: Message<'_>) -> Outcome {
        match self {
            Executor::Compat(m) => m.run(msg).await,
            Executor::Component(c) => c.run(msg).await,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Executor::Compat(_) => "wagi (WASI preview1 core module)".into(),
            Executor::Component(c) => format!("spin ({})", c.interface().describe()),
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
            let (handler, stage) = prepare_one(runtime, app, c, &t.executor, config, env)?;
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
    let started = std::time::Instant::now();
    let engine = &runtime.engine;
    let (exec, cache) = runtime.observe_cache(|| match executor {
        ExecutorConfig::Wagi { entrypoint, argv } => {
            sandbox.argv = argv.clone();
            CompatModule::prepare(engine, &bytes, entrypoint, sandbox, config.limits.clone())
                .map(Executor::Compat)
                .map_err(|e| anyhow::anyhow!("{} {e}", what()))
        }
        ExecutorConfig::Spin => {
            ComponentHandler::prepare(engine, &bytes, sandbox, config.limits.clone())
                .map(Executor::Component)
                .map_err(|e| anyhow::anyhow!("{} {e}", what()))
        }
    });
    let exec = exec?;
    tracing::info!(component = %c.id, executor = %exec.describe(), bytes = bytes.len(), %cache, elapsed = ?started.elapsed(), "prepared");
    Ok((
        Handler {
            component: c.id.clone(),
            executor: exec,
        },
        stage,
    ))
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
                walk(source, &mut found)?;
                let any_excluded = found
                    .iter()
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
                    walk(&full, &mut matched)?;
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

/// Every file under `dir`, recursively.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir)
        .with_context(|| format!("cannot read {:?}", dir.display().to_string()))?
    {
        let path = entry?.path();
        if path.is_dir() {
            walk(&path, out)?;
        } else if path.is_file() {
            out.push(path);
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
