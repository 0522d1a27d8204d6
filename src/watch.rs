//! `spin-redis watch`: `up` (after building, as Spin's `watch` does) plus a
//! watcher of each component's files. A component's files are its
//! `build.watch` globs (relative to its build's workdir, or to the
//! manifest's folder), or, for a component without a build, its wasm
//! `source` itself.
//!
//! A change (debounced) rebuilds the components whose files changed, one
//! at a time, with the build code of `spin-redis build`, and then asks the
//! running app to reload (see `reload`): the rebuilt component is prepared
//! and swapped in while its subscriptions stay up. A build that fails asks
//! for nothing but a failed-reload count and a line saying why: the old
//! version keeps running.
//!
//! What is watched is settled at start-up from the manifest then; the
//! manifest itself is read again at every reload, but a component added by
//! a reload is not watched until the next start.
//!
//! Not owned here: running the app (`up`), building (`build`), reloading
//! (`reload`).

use crate::build::{Echo, build_app};
use crate::cli::{LogFormat, UpArgs};
use crate::failure::Failure;
use crate::manifest::{self, App};
use crate::up::Request;
use anyhow::Context as _;
use notify_debouncer_mini::notify::{RecommendedWatcher, RecursiveMode};
use notify_debouncer_mini::{DebounceEventResult, Debouncer, new_debouncer};
use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::mpsc as std_mpsc;
use std::time::Duration;
use tokio::sync::mpsc;

/// How long files must be quiet before a change is acted on: an editor's
/// save or a compiler's output is several events.
pub const DEBOUNCE: Duration = Duration::from_millis(300);

/// `spin-redis watch`: returns the exit code.
pub fn watch(mut args: UpArgs, log_format: LogFormat) -> Result<u8, Failure> {
    args.build = true;
    crate::up::run(args, log_format, Some(&start)).map(|()| 0)
}

/// The files of one component.
struct Watched {
    id: String,
    /// Absolute globs; a path matching one calls for a rebuild.
    globs: Vec<glob::Pattern>,
    /// Whether it has a build to run (else a change only reloads).
    builds: bool,
}

/// What keeps the watching going: dropped at the end of `up`.
pub struct Watching {
    _debouncer: Debouncer<RecommendedWatcher>,
}

/// Starts watching `app`'s components; changes turn into `requests`.
fn start(app: &App, requests: mpsc::UnboundedSender<Request>) -> anyhow::Result<Watching> {
    let mut watched = Vec::new();
    let mut roots = BTreeSet::new();
    for c in &app.components {
        let (dir, globs, builds) = match &c.build {
            Some(b) if !b.watch.is_empty() => (b.dir.clone(), b.watch.clone(), true),
            // A build without globs: nothing tells what its inputs are, so
            // the output is watched, as for a component without a build.
            _ => (
                c.source.parent().map(Path::to_path_buf).unwrap_or_default(),
                vec![file_name(&c.source)],
                false,
            ),
        };
        let mut patterns = Vec::new();
        for g in &globs {
            let full = dir.join(g);
            let text = full.to_string_lossy().into_owned();
            patterns.push(glob::Pattern::new(&text).with_context(|| {
                format!("component {:?}: the watch glob {g:?} is not a glob", c.id)
            })?);
            roots.insert(root_of(&full));
        }
        if !builds && c.build.is_some() {
            tracing::warn!(component = %c.id, "no build.watch globs: watching its wasm source only; rebuild it yourself");
        }
        tracing::info!(component = %c.id, watching = ?globs, dir = %dir.display(), "watching");
        watched.push(Watched {
            id: c.id.clone(),
            globs: patterns,
            builds,
        });
    }
    let (tx, rx) = std_mpsc::channel::<DebounceEventResult>();
    let mut debouncer = new_debouncer(DEBOUNCE, tx).context("cannot start watching files")?;
    for root in &roots {
        debouncer
            .watcher()
            .watch(root, RecursiveMode::Recursive)
            .with_context(|| format!("cannot watch {:?}", root.display().to_string()))?;
    }
    let manifest = app.manifest.clone();
    std::thread::Builder::new()
        .name("watch".into())
        .spawn(move || rebuild_loop(&manifest, &watched, &rx, &requests))
        .context("cannot start the watch thread")?;
    Ok(Watching {
        _debouncer: debouncer,
    })
}

/// For each batch of changes: rebuild the components they touch, then ask
/// for one reload. Ends when the app stops (its requests are closed).
fn rebuild_loop(
    manifest: &Path,
    watched: &[Watched],
    rx: &std_mpsc::Receiver<DebounceEventResult>,
    requests: &mpsc::UnboundedSender<Request>,
) {
    // What each watched file was when last seen: an event that leaves a
    // file as it was (a build reading its inputs) is no change.
    let mut seen: HashMap<PathBuf, Option<Stamp>> = HashMap::new();
    for w in watched {
        for g in &w.globs {
            for p in glob::glob(g.as_str()).into_iter().flatten().flatten() {
                let stamp = stamp(&p);
                seen.insert(p, stamp);
            }
        }
    }
    while let Ok(events) = rx.recv() {
        let paths: Vec<PathBuf> = match events {
            Ok(events) => events.into_iter().map(|e| e.path).collect(),
            Err(e) => {
                tracing::warn!(error = %e, "watching files failed");
                continue;
            }
        };
        // Only watched files, and only those that changed (the folders
        // watched hold others, such as the log files).
        let paths: Vec<PathBuf> = paths
            .into_iter()
            .filter(|p| {
                watched
                    .iter()
                    .any(|w| w.globs.iter().any(|g| g.matches_path(p)))
            })
            .filter(|p| {
                let now = stamp(p);
                seen.insert(p.clone(), now) != Some(now)
            })
            .collect();
        let touched: Vec<&Watched> = watched
            .iter()
            .filter(|w| {
                paths
                    .iter()
                    .any(|p| w.globs.iter().any(|g| g.matches_path(p)))
            })
            .collect();
        if touched.is_empty() {
            continue;
        }
        let ids: Vec<String> = touched.iter().map(|w| w.id.clone()).collect();
        let to_build: Vec<String> = touched
            .iter()
            .filter(|w| w.builds)
            .map(|w| w.id.clone())
            .collect();
        let cause = format!("changed files of {}", ids.join(", "));
        let request = match rebuild(manifest, &to_build) {
            Ok(()) => {
                if !to_build.is_empty() {
                    eprintln!("spin-redis: rebuilt {}; swapping", to_build.join(", "));
                }
                Request::Reload(cause)
            }
            Err(error) => {
                eprintln!(
                    "spin-redis: rebuilding {} failed; the running version stays: {error}",
                    to_build.join(", ")
                );
                Request::BuildFailed { cause, error }
            }
        };
        if requests.send(request).is_err() {
            return;
        }
    }
}

/// A file's modification time and length; `None` when it is gone.
type Stamp = (std::time::SystemTime, u64);

fn stamp(path: &Path) -> Option<Stamp> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.modified().ok()?, m.len()))
}

/// Builds components `ids` of the manifest as it is now.
fn rebuild(manifest: &Path, ids: &[String]) -> Result<(), String> {
    if ids.is_empty() {
        return Ok(());
    }
    let app = manifest::load_for_build(manifest).map_err(|e| format!("{e:#}"))?;
    build_app(&app, ids, Echo::AsIs).map_err(|f| format!("{:#}", f.error))
}

/// The file name of `path` as a glob matching only itself.
fn file_name(path: &Path) -> String {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    glob::Pattern::escape(&name)
}

/// The folder to watch for `glob`: its longest leading part without glob
/// characters (a glob naming one file watches that file's folder).
fn root_of(glob: &Path) -> PathBuf {
    let mut root = PathBuf::new();
    for part in glob.components() {
        let text = part.as_os_str().to_string_lossy();
        if text.contains(['*', '?', '[', '{']) {
            return root;
        }
        root.push(part);
    }
    // No glob character: a file (watch its folder) or a folder.
    match root.is_dir() {
        true => root,
        false => root.parent().map(Path::to_path_buf).unwrap_or(root),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_glob_is_watched_from_its_fixed_part() {
        assert_eq!(
            root_of(Path::new("/a/b/src/**/*.rs")),
            Path::new("/a/b/src")
        );
        assert_eq!(root_of(Path::new("/a/b/*.toml")), Path::new("/a/b"));
        assert_eq!(
            root_of(Path::new("/no/such/file.wasm")),
            Path::new("/no/such")
        );
    }
}
