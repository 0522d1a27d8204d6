//! The app's key-value stores by label, and where each one's data lives:
//! Spin's SQLite table (opened on first use, shared by every label that
//! names the file) or a Redis address.
//!
//! Not owned here: what a guest does with a store (`ops`), reading the
//! runtime config file (`runtime_config`).

use crate::address::RedisAddress;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// The app's stores, by label.
#[derive(Default)]
pub struct Stores {
    pub(super) by_label: BTreeMap<String, Arc<Backend>>,
}

/// Where a store's data lives.
pub enum Backend {
    Sqlite { db: Arc<SqliteDb>, label: String },
    Redis { address: RedisAddress },
}

/// A SQLite database file (or an in-memory one), opened on first use and
/// shared by every label that names it.
pub struct SqliteDb {
    path: Option<PathBuf>,
    /// Opened on first use; a failed open is tried again by the next call.
    conn: Mutex<Option<Arc<Mutex<rusqlite::Connection>>>>,
}

impl SqliteDb {
    /// A database at `path` (`None`: in memory, gone at exit).
    pub fn new(path: Option<PathBuf>) -> SqliteDb {
        SqliteDb {
            path,
            conn: Mutex::new(None),
        }
    }

    pub fn describe(&self) -> String {
        match &self.path {
            Some(p) => format!("SQLite {:?}", p.display().to_string()),
            None => "SQLite in memory".into(),
        }
    }

    /// Runs on a blocking thread.
    pub(super) fn connection(&self) -> Result<Arc<Mutex<rusqlite::Connection>>, String> {
        let mut slot = self
            .conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(c) = &*slot {
            return Ok(c.clone());
        }
        let c = Arc::new(Mutex::new(self.open()?));
        *slot = Some(c.clone());
        Ok(c)
    }

    fn open(&self) -> Result<rusqlite::Connection, String> {
        let opened = match &self.path {
            Some(path) => {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        format!("cannot create {:?}: {e}", dir.display().to_string())
                    })?;
                }
                rusqlite::Connection::open(path)
            }
            None => rusqlite::Connection::open_in_memory(),
        };
        let conn = opened.map_err(|e| format!("cannot open {}: {e}", self.describe()))?;
        // Another process (Spin itself, another spin-redis) may hold the
        // file: wait for its lock rather than fail at once.
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .and_then(|()| {
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS spin_key_value (
                        store TEXT NOT NULL,
                        key   TEXT NOT NULL,
                        value BLOB NOT NULL,
                        PRIMARY KEY (store, key)
                    )",
                    [],
                )
            })
            .map_err(|e| format!("cannot prepare {}: {e}", self.describe()))?;
        Ok(conn)
    }
}

impl Stores {
    pub fn insert(&mut self, label: String, backend: Backend) {
        self.by_label.insert(label, Arc::new(backend));
    }

    pub fn contains(&self, label: &str) -> bool {
        self.by_label.contains_key(label)
    }

    pub fn labels(&self) -> impl Iterator<Item = &str> {
        self.by_label.keys().map(String::as_str)
    }

    /// What backs `label`, for start-up logs (no credentials).
    pub fn describe(&self, label: &str) -> Option<String> {
        self.by_label.get(label).map(|b| match &**b {
            Backend::Sqlite { db, .. } => db.describe(),
            Backend::Redis { address } => format!("Redis {}", address.redacted()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_uses_spins_table_and_a_failed_open_is_tried_again() {
        let dir = tempfile::tempdir().unwrap();
        // The folder the file goes in is a plain file at first.
        let blocker = dir.path().join("state");
        std::fs::write(&blocker, b"not a folder").unwrap();
        let db = SqliteDb::new(Some(blocker.join("sqlite_key_value.db")));
        let Err(e) = db.connection() else {
            panic!("a file cannot be created under a file");
        };
        assert!(e.contains("state"), "{e}");
        std::fs::remove_file(&blocker).unwrap();
        let conn = db.connection().expect("the folder can be made now");
        let conn = conn.lock().unwrap();
        conn.execute(
            "INSERT INTO spin_key_value (store, key, value) VALUES ('default', 'k', x'01')",
            [],
        )
        .unwrap();
        let n: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM spin_key_value WHERE store = 'default'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 1);
    }
}
