//! The manifest: Spin's `spin.toml`, version 1 or 2, read, validated and
//! normalised into one [`App`].
//!
//! Tour: [`app`] holds the normalised types everything else uses; `v1` and
//! `v2` are the two file formats (serde types plus their conversion);
//! `shared` holds the fragments and validation both formats share (ids, sources,
//! channels, addresses, executors); [`source`] a trigger's channel or stream
//! and its cluster addresses; `host_apis` a component's host-API grants
//! (allowed hosts, stores, variables), [`allowed_hosts`] the syntax of
//! `allowed_outbound_hosts` and the one check of a destination against it; `variables` expands Spin's
//! `{{ variable }}` templates; [`build`] a component's build commands;
//! [`error`] is [`ManifestError`], which names the file, the line and the
//! field.
//!
//! Not owned here: reading wasm, expanding `files` globs (the executors do
//! that at start-up), and the CLI's `-e` values.

pub mod allowed_hosts;
pub mod app;
pub mod build;
pub mod component_variables;
pub mod error;
mod host_apis;
mod shared;
pub mod source;
mod v1;
mod v2;
mod variables;

pub use app::{
    App, Component, ExecutorConfig, FileMapping, HostApis, ListTrigger, StreamTrigger, Trigger,
};
pub use build::BuildConfig;
pub use error::{ManifestError, ManifestErrorKind};
pub use variables::fill_braces;

use std::path::{Path, PathBuf};

/// Where a manifest is: `path` may be the file or a folder holding
/// `spin.toml`.
pub fn resolve_path(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.join("spin.toml")
    } else {
        path.to_path_buf()
    }
}

/// Reads and validates the manifest at `path` (a file, or a folder holding
/// `spin.toml`), taking variable values from the process environment.
pub fn load(path: &Path) -> Result<App, ManifestError> {
    load_with(path, Sources::MustExist)
}

/// Whether a component's `source` file must exist: it must for running, not
/// for `spin-redis build`, whose commands make it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sources {
    MustExist,
    MayBeMissing,
}

/// Like [`load`], for `spin-redis build`: a component's `source` file may
/// not exist yet (the build makes it); everything else is checked the same.
pub fn load_for_build(path: &Path) -> Result<App, ManifestError> {
    load_with(path, Sources::MayBeMissing)
}

fn load_with(path: &Path, sources: Sources) -> Result<App, ManifestError> {
    let file = resolve_path(path);
    let text = std::fs::read_to_string(&file).map_err(|e| {
        ManifestError::new(
            &file,
            ManifestErrorKind::Read,
            format!("cannot read the manifest: {e}"),
        )
        .hint("pass the manifest with -f PATH (a spin.toml file or the folder holding it)")
    })?;
    parse_with(&file, &text, &|name| std::env::var(name).ok(), sources)
}

/// Parses manifest `text` that was read from `file`; `env` looks up
/// `SPIN_VARIABLE_*` values.
pub fn parse(
    file: &Path,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<App, ManifestError> {
    parse_with(file, text, env, Sources::MustExist)
}

/// [`parse`], saying whether source files must exist.
pub fn parse_with(
    file: &Path,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
    sources: Sources,
) -> Result<App, ManifestError> {
    let at = error::Locator::new(file, text);
    #[derive(serde::Deserialize)]
    struct Version {
        spin_manifest_version: Option<toml::Value>,
        spin_version: Option<toml::Value>,
    }
    let version: Version = toml::from_str(text).map_err(|e| at.toml_error(None, &e))?;
    let v = version.spin_manifest_version.or(version.spin_version);
    let v = match &v {
        Some(toml::Value::String(s)) => s.trim().to_string(),
        Some(toml::Value::Integer(i)) => i.to_string(),
        Some(other) => other.to_string(),
        None => String::new(),
    };
    let dir = file
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let dir = if dir.as_os_str().is_empty() {
        PathBuf::from(".")
    } else {
        dir
    };
    match v.as_str() {
        "1" => v1::parse(&at, &dir, text, env, sources),
        "2" => v2::parse(&at, &dir, text, env, sources),
        "" => Err(at
            .error(ManifestErrorKind::Version, Some(1), Some("spin_manifest_version"), "the manifest has no version")
            .hint("add `spin_manifest_version = 2` (or `spin_manifest_version = \"1\"` for the version 1 format) at the top")),
        other => Err(at
            .error(
                ManifestErrorKind::Version,
                at.line_of_key("spin_manifest_version").or(at.line_of_key("spin_version")),
                Some("spin_manifest_version"),
                format!("version {other:?} is not supported"),
            )
            .hint("use 2 (or \"1\" for the version 1 format)")),
    }
}
