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
use crate::manifest::{App, Component, ExecutorConfig, FileMapping};
use anyhow::Context as _;
use spin_redis_compat::sandbox::{Message, Mount, Sandbox};
use spin_redis_compat::{CompatModule, Outcome};
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use wasmtime::Engine;

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
        engine: &Engine,
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
            let (handler, stage) = prepare_one(engine, app, c, &t.executor, config, env)?;
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
    engine: &Engine,
    app: &App,
    c: &Component,
    executor: &ExecutorConfig,
    config: &RunConfig,
    env: &[(String, String)],
) -> anyhow::Result<(Handler, Option<tempfile::TempDir>)> {
    let what = || {
        format!(
            "component {:?} (source {:?})",
            c.id,
            c.source.display().to_string()
        )
    };
    let bytes = std::fs::read(&c.source).with_context(|| format!("cannot read {}", what()))?;
    let (mounts, stage) = stage_files(&app.dir, &c.files)
        .with_context(|| format!("cannot prepare the files of {}", what()))?;
    let mut sandbox = Sandbox {
        component_id: c.id.clone(),
        env: c.environment.clone(),
        mounts,
        argv: Vec::new(),
    };
    sandbox.env.extend(env.iter().cloned());
    let mut sandbox = sandbox.settle();
    let started = std::time::Instant::now();
    let exec = match executor {
        ExecutorConfig::Wagi { entrypoint, argv } => {
            sandbox.argv = argv.clone();
            Executor::Compat(
                CompatModule::prepare(engine, &bytes, entrypoint, sandbox, config.limits.clone())
                    .map_err(|e| anyhow::anyhow!("{} {e}", what()))?,
            )
        }
        ExecutorConfig::Spin => Executor::Component(
            ComponentHandler::prepare(engine, &bytes, sandbox, config.limits.clone())
                .map_err(|e| anyhow::anyhow!("{} {e}", what()))?,
        ),
    };
    tracing::info!(component = %c.id, executor = %exec.describe(), elapsed = ?started.elapsed(), "prepared");
    Ok((
        Handler {
            component: c.id.clone(),
            executor: exec,
        },
        stage,
    ))
}

/// Turns `files` into mounts: folders are mounted as they are; glob matches
/// are copied, keeping their relative paths, into one staging folder mounted
/// at `/` (as Spin does).
fn stage_files(
    dir: &Path,
    files: &[FileMapping],
) -> anyhow::Result<(Vec<Mount>, Option<tempfile::TempDir>)> {
    let mut mounts = Vec::new();
    let mut stage: Option<tempfile::TempDir> = None;
    for f in files {
        match f {
            FileMapping::Directory {
                source,
                destination,
            } => mounts.push(Mount {
                host: source.clone(),
                guest: destination.clone(),
            }),
            FileMapping::Pattern(pattern) => {
                let root = match &stage {
                    Some(s) => s.path().to_path_buf(),
                    None => {
                        let s = tempfile::Builder::new()
                            .prefix("spin-redis-files-")
                            .tempdir()?;
                        let p = s.path().to_path_buf();
                        stage = Some(s);
                        p
                    }
                };
                let full = dir.join(pattern);
                let full = full
                    .to_str()
                    .with_context(|| format!("pattern {pattern:?} is not valid UTF-8"))?;
                let mut matched = 0;
                for entry in
                    glob::glob(full).with_context(|| format!("bad file pattern {pattern:?}"))?
                {
                    let path = entry?;
                    if !path.is_file() {
                        continue;
                    }
                    let rel = path.strip_prefix(dir).with_context(|| {
                        format!(
                            "{:?} is outside the manifest's folder",
                            path.display().to_string()
                        )
                    })?;
                    let dest = root.join(rel);
                    if let Some(parent) = dest.parent() {
                        std::fs::create_dir_all(parent)?;
                    }
                    std::fs::copy(&path, &dest)?;
                    matched += 1;
                }
                if matched == 0 {
                    tracing::warn!(pattern = %pattern, "file pattern matches no files");
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
    Ok((mounts, stage))
}
