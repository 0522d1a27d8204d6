//! A component's `files`, staged into the mounts its sandbox gets.
//!
//! As in Spin: globs and plain paths are copied into one staging folder
//! mounted at `/`; `{ source, destination }` folders are mounted in place
//! (or copied, when `exclude_files` reaches into them). Everything is
//! read-only to the guest. A mounted folder holding a named pipe, socket or
//! device is refused: file calls run on a handler thread, where reading a
//! pipe could wait past the message's deadline.
//!
//! Not owned here: opening the mounts (the sandbox does, once at start-up).

use crate::manifest::FileMapping;
use anyhow::Context as _;
use spin_redis_sandbox::wasi::Mount;
use std::path::{Path, PathBuf};

/// Turns `files` into mounts, as Spin does: files matched by a glob, and
/// whole folders named by a plain path, are copied (keeping their paths
/// relative to the manifest's folder) into one staging folder mounted at
/// `/`; `{ source, destination }` folders are mounted where they are.
/// `exclude_files` globs remove files from all of these (a mapped folder
/// with exclusions in it is staged too, so the exclusion holds).
pub fn stage_files(
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
                // (see `spin_redis_sandbox::wasi`), and reading a named pipe
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
