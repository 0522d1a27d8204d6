//! Spin's runtime config file (`--runtime-config-file`): the key-value
//! stores, and where the state folder is.
//!
//! ```toml
//! state_dir = ".spin"                  # optional; --state-dir wins
//! [key_value_store.default]            # replaces the default SQLite store
//! type = "redis"
//! url = "redis://localhost:6379"
//! [key_value_store.cache]
//! type = "spin"                        # SQLite, Spin's own table
//! path = "cache.db"                    # relative to this file; none: in memory
//! ```
//!
//! As in Spin, the store `default` is always defined: SQLite at
//! `<state dir>/sqlite_key_value.db`, the state dir being `--state-dir`, else
//! the file's `state_dir` (`""`: none, so the default store lives in
//! memory), else `.spin` beside the manifest. Spin's other sections
//! (`[sqlite_database]`, `[llm_compute]`, `[[config_provider]]`...) are for
//! host APIs spin-redis does not provide: they are ignored with a warning.
//! A mistake is reported with the file, the line and the field.
//!
//! Not owned here: the stores themselves (`key_value`).

use super::key_value::{Backend, SqliteDb, Stores};
use crate::address::RedisAddress;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The default store's label and file name, as in Spin.
pub const DEFAULT_STORE: &str = "default";
pub const DEFAULT_STORE_FILE: &str = "sqlite_key_value.db";

/// What the runtime config and the flags say about host state.
#[derive(Debug, Clone, Default)]
pub struct HostConfig {
    /// The file read, if any.
    pub file: Option<PathBuf>,
    /// `--state-dir`, made absolute.
    pub state_dir_flag: Option<PathBuf>,
    /// The file's `state_dir`: `Some(None)` for `""` (no state folder).
    state_dir_file: Option<Option<PathBuf>>,
    pub key_value: BTreeMap<String, StoreConfig>,
}

/// One `[key_value_store.<label>]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreConfig {
    /// `type = "spin"`: SQLite at `path` (resolved), or in memory.
    Spin { path: Option<PathBuf> },
    /// `type = "redis"`.
    Redis { url: RedisAddress },
}

/// A runtime config problem, located like a manifest problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeConfigError {
    pub file: PathBuf,
    pub line: Option<usize>,
    pub field: Option<String>,
    pub message: String,
}

impl fmt::Display for RuntimeConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        crate::manifest::error::write_place(f, &self.file, self.line, self.field.as_deref())?;
        f.write_str(&self.message)
    }
}

impl std::error::Error for RuntimeConfigError {}

impl HostConfig {
    /// Reads `file` (if given) and takes `state_dir` from the flag.
    pub fn load(
        file: Option<&Path>,
        state_dir_flag: Option<&Path>,
    ) -> Result<HostConfig, RuntimeConfigError> {
        let state_dir_flag = state_dir_flag.map(absolute);
        let Some(file) = file else {
            return Ok(HostConfig {
                state_dir_flag,
                ..Default::default()
            });
        };
        let text = std::fs::read_to_string(file).map_err(|e| RuntimeConfigError {
            file: file.to_path_buf(),
            line: None,
            field: None,
            message: format!("cannot read the runtime config file: {e}"),
        })?;
        let mut c = parse(file, &text)?;
        c.state_dir_flag = state_dir_flag;
        Ok(c)
    }

    /// The state folder: `--state-dir`, else the file's `state_dir`, else
    /// `.spin` in `app_dir`. `None`: no state folder.
    pub fn state_dir(&self, app_dir: &Path) -> Option<PathBuf> {
        if let Some(flag) = &self.state_dir_flag {
            return Some(flag.clone());
        }
        match &self.state_dir_file {
            Some(from_file) => from_file.clone(),
            None => Some(absolute(&app_dir.join(".spin"))),
        }
    }

    /// The app's stores: `default` plus every configured label. Opens
    /// nothing (SQLite files are opened on first use).
    pub fn stores(&self, app_dir: &Path) -> Stores {
        let mut stores = Stores::default();
        // Labels naming the same file share one connection.
        let mut files: BTreeMap<PathBuf, Arc<SqliteDb>> = BTreeMap::new();
        let mut sqlite = |path: Option<PathBuf>| match path {
            Some(p) => files
                .entry(p.clone())
                .or_insert_with(|| Arc::new(SqliteDb::new(Some(p))))
                .clone(),
            None => Arc::new(SqliteDb::new(None)),
        };
        if !self.key_value.contains_key(DEFAULT_STORE) {
            let path = self.state_dir(app_dir).map(|d| d.join(DEFAULT_STORE_FILE));
            stores.insert(
                DEFAULT_STORE.into(),
                Backend::Sqlite {
                    db: sqlite(path),
                    label: DEFAULT_STORE.into(),
                },
            );
        }
        for (label, c) in &self.key_value {
            let backend = match c {
                StoreConfig::Spin { path } => Backend::Sqlite {
                    db: sqlite(path.clone()),
                    label: label.clone(),
                },
                StoreConfig::Redis { url } => Backend::Redis {
                    address: url.clone(),
                },
            };
            stores.insert(label.clone(), backend);
        }
        stores
    }
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// Parses the text of runtime config `file`.
pub fn parse(file: &Path, text: &str) -> Result<HostConfig, RuntimeConfigError> {
    let err = |line: Option<usize>, field: Option<String>, message: String| RuntimeConfigError {
        file: file.to_path_buf(),
        line,
        field,
        message,
    };
    let line_at = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
    // The first line holding `needle` outside a comment.
    let line_of = |needle: &str| {
        text.lines()
            .position(|l| {
                let l = l.split('#').next().unwrap_or("");
                l.contains(needle)
            })
            .map(|i| i + 1)
    };
    let table: toml::Table = toml::from_str(text).map_err(|e| {
        err(
            e.span().map(|s| line_at(s.start)),
            None,
            e.message().to_string(),
        )
    })?;
    let dir = file.parent().map(absolute).unwrap_or_default();
    let mut config = HostConfig {
        file: Some(file.to_path_buf()),
        ..Default::default()
    };
    // A top-level key whose value has the wrong type.
    let wrong = |key: &str, what: &str| err(line_of(key), Some(key.into()), what.into());
    for (key, value) in &table {
        match key.as_str() {
            "state_dir" => {
                let Some(s) = value.as_str() else {
                    return Err(wrong("state_dir", "must be a string (a folder path)"));
                };
                config.state_dir_file = Some((!s.is_empty()).then(|| absolute(Path::new(s))));
            }
            "key_value_store" => {
                let Some(stores) = value.as_table() else {
                    return Err(wrong(
                        "key_value_store",
                        "must be tables: [key_value_store.<label>]",
                    ));
                };
                for (label, store) in stores {
                    let header = format!("key_value_store.{label}");
                    let line = line_of(&format!("[{header}]")).or_else(|| line_of(&header));
                    let store = parse_store(&dir, label, store).map_err(|(field, m)| {
                        let field_line = field
                            .as_deref()
                            .and_then(|f| {
                                let start = line.unwrap_or(1);
                                text.lines()
                                    .enumerate()
                                    .skip(start)
                                    .find(|(_, l)| l.trim_start().starts_with(f))
                                    .map(|(i, _)| i + 1)
                            })
                            .or(line);
                        let field = match field {
                            Some(f) => format!("{header}.{f}"),
                            None => header.clone(),
                        };
                        err(field_line, Some(field), m)
                    })?;
                    config.key_value.insert(label.clone(), store);
                }
            }
            other => {
                tracing::warn!(
                    file = %file.display(),
                    "ignoring `{other}` in the runtime config: spin-redis uses only key_value_store and state_dir"
                );
            }
        }
    }
    Ok(config)
}

/// One store table; `Err((field, message))`.
fn parse_store(
    dir: &Path,
    label: &str,
    value: &toml::Value,
) -> Result<StoreConfig, (Option<String>, String)> {
    let Some(t) = value.as_table() else {
        return Err((
            None,
            format!("must be a table: [key_value_store.{label}] with type = \"spin\" or \"redis\""),
        ));
    };
    let string = |key: &str| -> Result<Option<&str>, (Option<String>, String)> {
        match t.get(key) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s.as_str())),
            Some(_) => Err((Some(key.into()), "must be a string".into())),
        }
    };
    let allow_only = |keys: &[&str]| -> Result<(), (Option<String>, String)> {
        match t.keys().find(|k| !keys.contains(&k.as_str())) {
            Some(k) => Err((
                Some(k.clone()),
                format!(
                    "unknown field; this store type takes {}",
                    keys.iter()
                        .map(|k| format!("`{k}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
            None => Ok(()),
        }
    };
    match string("type")? {
        Some("spin") => {
            allow_only(&["type", "path"])?;
            let path = string("path")?.map(|p| {
                let p = Path::new(p);
                if p.is_absolute() {
                    p.to_path_buf()
                } else {
                    dir.join(p)
                }
            });
            Ok(StoreConfig::Spin { path })
        }
        Some("redis") => {
            allow_only(&["type", "url"])?;
            let url = string("url")?.ok_or_else(|| {
                (
                    None,
                    "a redis store needs url = \"redis://host:port\"".to_string(),
                )
            })?;
            let url = RedisAddress::parse(url)
                .map_err(|e| (Some("url".to_string()), format!("bad address: {e}")))?;
            // Refused here rather than at the first call: the pool connects
            // only to what `destination` reads in one way.
            super::destination::redis(&url).map_err(|e| {
                (
                    Some("url".to_string()),
                    format!("bad address {:?}: {e}", url.redacted()),
                )
            })?;
            Ok(StoreConfig::Redis { url })
        }
        Some(other) => Err((
            Some("type".into()),
            format!(
                "store type {other:?} is not supported by spin-redis; use \"spin\" (SQLite) or \"redis\""
            ),
        )),
        None => Err((
            None,
            "has no type: set type = \"spin\" (SQLite) or \"redis\"".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_text(text: &str) -> Result<HostConfig, RuntimeConfigError> {
        parse(Path::new("/etc/app/runtime-config.toml"), text)
    }

    #[test]
    fn stores_and_state_dir_are_read() {
        let c = parse_text(
            "state_dir = \"/var/state\"\n\n[key_value_store.cache]\ntype = \"spin\"\npath = \"cache.db\"\n\n[key_value_store.shared]\ntype = \"redis\"\nurl = \"redis://:pw@cache.internal:6390\"\n[sqlite_database.default]\ntype = \"spin\"\n",
        )
        .unwrap();
        assert_eq!(
            c.key_value["cache"],
            StoreConfig::Spin {
                path: Some(PathBuf::from("/etc/app/cache.db"))
            }
        );
        assert!(
            matches!(&c.key_value["shared"], StoreConfig::Redis { url } if url.redacted() == "redis://cache.internal:6390")
        );
        assert_eq!(
            c.state_dir(Path::new("/app")),
            Some(PathBuf::from("/var/state"))
        );
        let stores = c.stores(Path::new("/app"));
        let labels: Vec<&str> = stores.labels().collect();
        assert_eq!(labels, ["cache", "default", "shared"]);
        assert_eq!(
            stores.describe("default").unwrap(),
            "SQLite \"/var/state/sqlite_key_value.db\""
        );
    }

    #[test]
    fn the_default_store_follows_the_state_dir() {
        let c = HostConfig::load(None, None).unwrap();
        assert_eq!(
            c.state_dir(Path::new("/app")),
            Some(PathBuf::from("/app/.spin"))
        );
        let c = HostConfig::load(None, Some(Path::new("/elsewhere"))).unwrap();
        assert_eq!(
            c.state_dir(Path::new("/app")),
            Some(PathBuf::from("/elsewhere"))
        );
        let c = parse_text("state_dir = \"\"\n").unwrap();
        assert_eq!(c.state_dir(Path::new("/app")), None);
        assert_eq!(
            c.stores(Path::new("/app")).describe("default").unwrap(),
            "SQLite in memory"
        );
    }

    #[test]
    fn mistakes_name_the_line_and_field() {
        let e = parse_text("[key_value_store.cache]\ntype = \"azure_cosmos\"\n").unwrap_err();
        assert_eq!(e.line, Some(2));
        assert_eq!(e.field.as_deref(), Some("key_value_store.cache.type"));
        assert!(e.message.contains("\"azure_cosmos\""), "{e}");
        let e = parse_text(
            "\n[key_value_store.x]\ntype = \"redis\"\nurl = \"redis://u:hunter2@h:notaport\"\n",
        )
        .unwrap_err();
        assert_eq!(e.line, Some(4));
        assert!(!e.to_string().contains("hunter2"), "{e}");
        let e = parse_text("[key_value_store.x]\ntype = \"redis\"\nurl = \"redis://127.1:6379\"\n")
            .unwrap_err();
        assert_eq!(e.field.as_deref(), Some("key_value_store.x.url"));
        assert!(e.message.contains("read in two ways"), "{e}");
        let e = parse_text("[key_value_store.x]\ntype = \"spin\"\nurl = \"x\"\n").unwrap_err();
        assert_eq!(e.field.as_deref(), Some("key_value_store.x.url"));
        let e = parse_text("[key_value_store.x]\ntype = \"redis\"\n").unwrap_err();
        assert!(e.message.contains("needs url"), "{e}");
        let e = parse_text("[key_value_store.x\n").unwrap_err();
        assert_eq!(e.line, Some(1));
    }
}
