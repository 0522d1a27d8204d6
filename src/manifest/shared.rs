//! What both manifest versions share: the serde types of common fragments
//! (executor, files, runtime settings) and the validation of ids, sources,
//! channels and cross-references, so that v1 and v2 report the same problems
//! in the same words (a trigger's stream and cluster addresses: `source`).

use super::app::{App, Component, ExecutorConfig, FileMapping, Trigger};
use super::error::{Locator, ManifestError, ManifestErrorKind as K};
use super::variables::Variables;
use crate::settings::AppSettings;
use crate::settings::ranges::{self, parse_size};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

/// `executor = { type = "spin" }` or `{ type = "wagi", entrypoint, argv }`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ExecutorSpec {
    Spin,
    Wagi(WagiSpec),
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WagiSpec {
    pub entrypoint: Option<String>,
    pub argv: Option<String>,
}

/// One entry of `files`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum FileEntry {
    Pattern(String),
    Mapping { source: String, destination: String },
}

/// The application's redis trigger table: `trigger = { type = "redis", ... }`
/// in v1, `[application.trigger.redis]` in v2. Besides the address it holds
/// the runtime settings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppTrigger {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub address: Option<String>,
    /// Per-message deadline, such as "30s" or "500ms".
    pub timeout: Option<String>,
    /// Linear memory cap per instance, such as "256MiB".
    pub max_memory: Option<toml::Value>,
    /// stdout and stderr cap per message, such as "4MiB".
    pub max_output: Option<toml::Value>,
    /// Largest payload run; larger messages are logged and skipped.
    pub max_payload: Option<toml::Value>,
    /// Handlers running at once across the app.
    pub max_concurrency: Option<u64>,
    /// PEM file of CA certificates for rediss:// servers.
    pub tls_ca_file: Option<String>,
    /// The address names Redis Cluster nodes (comma-separated).
    pub cluster: Option<bool>,
}

/// Context for validating one manifest.
pub struct Ctx<'a> {
    pub at: &'a Locator<'a>,
    pub dir: &'a Path,
    pub vars: Variables,
    /// Whether `source` files must exist (not for `spin-redis build`).
    pub sources: super::Sources,
}

/// A component as found in the file, with the line it starts on.
pub struct Draft<T> {
    pub value: T,
    pub line: Option<usize>,
    pub field: String,
}

impl Ctx<'_> {
    pub fn id(&self, line: Option<usize>, field: &str, id: &str) -> Result<(), ManifestError> {
        let ok = !id.is_empty()
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if ok {
            return Ok(());
        }
        Err(self
            .at
            .error(
                K::InvalidId,
                line,
                Some(field),
                format!("component id {id:?} is not valid"),
            )
            .hint("use only letters, digits, '-' and '_' (the id names the component's log files)"))
    }

    pub fn source(
        &self,
        line: Option<usize>,
        field: &str,
        id: &str,
        source: &str,
    ) -> Result<PathBuf, ManifestError> {
        if source.trim().is_empty() {
            return Err(self.at.error(
                K::MissingSource,
                line,
                Some(field),
                format!("component {id:?} has an empty source"),
            ));
        }
        let path = self.dir.join(source);
        if path.is_file() || self.sources == super::Sources::MayBeMissing {
            return Ok(path);
        }
        Err(self
            .at
            .error(
                K::MissingSource,
                line,
                Some(field),
                format!(
                    "source {source:?} of component {id:?} does not exist (looked for {:?})",
                    path.display().to_string()
                ),
            )
            .hint(
                "build the handler first, or fix the path: it is relative to the manifest's folder",
            ))
    }

    pub fn channel(
        &self,
        line: Option<usize>,
        field: &str,
        raw: &str,
    ) -> Result<String, ManifestError> {
        let channel = self
            .vars
            .expand(raw)
            .map_err(|m| self.at.error(K::Variable, line, Some(field), m))?;
        if channel.trim().is_empty() {
            return Err(self
                .at
                .error(K::EmptyChannel, line, Some(field), "the channel is empty")
                .hint("set channel = \"name\" to the Redis channel to subscribe to"));
        }
        Ok(channel)
    }

    pub fn files(
        &self,
        line: Option<usize>,
        field: &str,
        entries: &[FileEntry],
    ) -> Result<Vec<FileMapping>, ManifestError> {
        entries
            .iter()
            .map(|e| match e {
                FileEntry::Pattern(p) => {
                    if Path::new(p).is_absolute() || p.split('/').any(|s| s == "..") {
                        return Err(self
                            .at
                            .error(K::Files, line, Some(field), format!("file pattern {p:?} leaves the manifest's folder"))
                            .hint("use a pattern relative to the manifest's folder, such as \"assets/**/*\""));
                    }
                    Ok(FileMapping::Pattern(p.clone()))
                }
                FileEntry::Mapping { source, destination } => {
                    let src = self.dir.join(source);
                    if !src.is_dir() {
                        return Err(self
                            .at
                            .error(K::Files, line, Some(field), format!("files source {source:?} is not a folder (looked for {:?})", src.display().to_string()))
                            .hint("{ source, destination } mounts a folder; list single files as patterns instead"));
                    }
                    if !destination.starts_with('/') {
                        return Err(self
                            .at
                            .error(K::Files, line, Some(field), format!("files destination {destination:?} is not an absolute path"))
                            .hint("write it as \"/data\""));
                    }
                    Ok(FileMapping::Directory {
                        source: src,
                        destination: destination.clone(),
                    })
                }
            })
            .collect()
    }

    pub fn exclude_files(
        &self,
        line: Option<usize>,
        field: &str,
        patterns: &[String],
    ) -> Result<Vec<String>, ManifestError> {
        for p in patterns {
            if Path::new(p).is_absolute() || p.split('/').any(|s| s == "..") {
                return Err(self
                    .at
                    .error(
                        K::Files,
                        line,
                        Some(field),
                        format!("exclude pattern {p:?} leaves the manifest's folder"),
                    )
                    .hint("use a pattern relative to the manifest's folder, such as \"assets/private/**/*\""));
            }
            if let Err(e) = glob::Pattern::new(p) {
                return Err(self
                    .at
                    .error(K::Files, line, Some(field), format!("exclude pattern {p:?} is not a valid glob: {e}"))
                    .hint("see https://docs.rs/glob for the syntax; `**/*` matches files at any depth"));
            }
        }
        Ok(patterns.to_vec())
    }

    pub fn settings(&self, raw: &AppTrigger, field: &str) -> Result<AppSettings, ManifestError> {
        let bad = |key: &str, msg: String| {
            self.at.error(
                K::BadValue,
                self.at.line_of_key(key),
                Some(&format!("{field}.{key}")),
                msg,
            )
        };
        let size = |key: &str,
                    v: &Option<toml::Value>,
                    range: &ranges::NumberRange|
         -> Result<Option<u64>, ManifestError> {
            v.as_ref()
                .map(|v| {
                    parse_size_value(v)
                        .and_then(|n| range.check(key, n))
                        .map_err(|m| bad(key, m))
                })
                .transpose()
        };
        let timeout = raw
            .timeout
            .as_deref()
            .map(|t| {
                humantime::parse_duration(t)
                    .map_err(|e| format!("timeout {t:?} is not a duration ({e}); write it as \"30s\" or \"500ms\""))
                    .and_then(|d| ranges::TIMEOUT.check("timeout", d))
                    .map_err(|m| bad("timeout", m))
            })
            .transpose()?;
        let max_concurrency = raw
            .max_concurrency
            .map(|n| {
                ranges::MAX_CONCURRENCY
                    .check("max_concurrency", n)
                    .map(|n| usize::try_from(n).expect("invariant: at most 1024"))
                    .map_err(|m| bad("max_concurrency", m))
            })
            .transpose()?;
        Ok(AppSettings {
            timeout,
            max_memory: size("max_memory", &raw.max_memory, &ranges::MAX_MEMORY)?,
            max_output: size("max_output", &raw.max_output, &ranges::MAX_OUTPUT)?,
            max_payload: size("max_payload", &raw.max_payload, &ranges::MAX_PAYLOAD)?,
            max_concurrency,
            tls_ca_file: raw.tls_ca_file.as_ref().map(|f| self.dir.join(f)),
        })
    }

    /// A trigger's own `max_concurrency`, checked against its range.
    pub fn trigger_concurrency(
        &self,
        line: Option<usize>,
        field: &str,
        n: Option<u64>,
    ) -> Result<Option<usize>, ManifestError> {
        n.map(|n| {
            ranges::MAX_CONCURRENCY
                .check("max_concurrency", n)
                .map(|n| usize::try_from(n).expect("invariant: at most 1024"))
                .map_err(|m| {
                    self.at
                        .error(K::BadValue, line, Some(field), m)
                        .hint("1 runs this trigger's messages one at a time, in order")
                })
        })
        .transpose()
    }

    /// Cross-checks: unique ids, every trigger names a component, every
    /// component has a trigger.
    pub fn finish(
        &self,
        name: String,
        components: Vec<Draft<Component>>,
        triggers: Vec<Draft<Trigger>>,
        settings: AppSettings,
    ) -> Result<App, ManifestError> {
        let mut seen: HashMap<&str, Option<usize>> = HashMap::new();
        for c in &components {
            if let Some(first) = seen.insert(&c.value.id, c.line) {
                let first = first
                    .map(|l| format!(" (first defined on line {l})"))
                    .unwrap_or_default();
                return Err(self
                    .at
                    .error(
                        K::DuplicateId,
                        c.line,
                        Some(&c.field),
                        format!("duplicate component id {:?}{first}", c.value.id),
                    )
                    .hint("component ids must be unique: rename one of them"));
            }
        }
        for t in &triggers {
            if !seen.contains_key(t.value.component.as_str()) {
                let known: Vec<&str> = components.iter().map(|c| c.value.id.as_str()).collect();
                return Err(self
                    .at
                    .error(
                        K::UnknownComponent,
                        t.line,
                        Some(&t.field),
                        format!(
                            "trigger names component {:?}, which is not defined",
                            t.value.component
                        ),
                    )
                    .hint(format!(
                        "define [component.{}] or use one of: {}",
                        t.value.component,
                        if known.is_empty() {
                            "(none)".to_string()
                        } else {
                            known.join(", ")
                        }
                    )));
            }
        }
        // A set, not a scan of the triggers per component: linear in both.
        let bound: HashSet<&str> = triggers
            .iter()
            .map(|t| t.value.component.as_str())
            .collect();
        for c in &components {
            if !bound.contains(c.value.id.as_str()) {
                return Err(self
                    .at
                    .error(K::NoTrigger, c.line, Some(&c.field), format!("component {:?} has no trigger, so it would never run", c.value.id))
                    .hint("add a [[trigger.redis]] with component = \"...\" and channel = \"...\", or remove the component"));
            }
        }
        if components.is_empty() {
            return Err(self
                .at
                .error(
                    K::NoTrigger,
                    None,
                    None,
                    "the manifest defines no components",
                )
                .hint("add at least one component and the channel it listens on"));
        }
        Ok(App {
            manifest: self.at.file.to_path_buf(),
            dir: self.dir.to_path_buf(),
            name,
            components: components.into_iter().map(|c| c.value).collect(),
            triggers: triggers.into_iter().map(|t| t.value).collect(),
            settings,
        })
    }
}

/// Converts an executor spec; `None` is the default, `spin`.
pub fn executor(spec: Option<&ExecutorSpec>) -> ExecutorConfig {
    match spec {
        None | Some(ExecutorSpec::Spin) => ExecutorConfig::Spin,
        Some(ExecutorSpec::Wagi(w)) => ExecutorConfig::Wagi {
            entrypoint: w.entrypoint.clone().unwrap_or_else(|| "_start".into()),
            argv: w
                .argv
                .as_deref()
                .map(|a| a.split_whitespace().map(str::to_string).collect())
                .unwrap_or_default(),
        },
    }
}

/// Environment tables in file order (TOML tables are sorted maps here, so
/// file order is key order: stable and documented).
pub fn environment(env: &BTreeMap<String, String>) -> Vec<(String, String)> {
    env.iter().map(|(k, v)| (k.clone(), v.clone())).collect()
}

fn parse_size_value(v: &toml::Value) -> Result<u64, String> {
    match v {
        toml::Value::Integer(i) if *i >= 0 => Ok(*i as u64),
        toml::Value::String(s) => parse_size(s),
        other => Err(format!(
            "{other} is not a size; write it as \"256MiB\" or a number of bytes"
        )),
    }
}
