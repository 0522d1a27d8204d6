//! What a guest does with an open store, once for every interface version:
//! `get`, `set`, `delete`, `exists` and `get-keys` on either backend, each
//! reply bounded by the host's caps (see `reply_bounds`), SQLite calls on a
//! blocking thread. `with_commands!` lists the four fixed commands once,
//! so that each adapter writes its method shape once.
//!
//! Not owned here: the stores (`store`), the interfaces' types (`v1`, `v2`,
//! `v3`).

use super::store::{Backend, SqliteDb};
use crate::address::RedisAddress;
use crate::host::AppHost;
use crate::host::reply_bounds::{self, MessageBudget};
use std::sync::Arc;

/// Calls the macro `$adapter` with the four fixed commands as
/// `name(argument: type, ...) -> ok type;`. (`open`, `get-keys` and closing
/// differ between versions: each adapter writes them.)
macro_rules! with_commands {
    ($adapter:ident) => {
        $adapter! {
            get(key: String) -> Option<Vec<u8>>;
            set(key: String, value: Vec<u8>) -> ();
            delete(key: String) -> ();
            exists(key: String) -> bool;
        }
    };
}
pub(super) use with_commands;

/// `From<KvError>` for the `Error` of the adapter it is invoked in, whose
/// catch-all variant is `$other`.
macro_rules! convert_error {
    ($other:ident) => {
        impl From<KvError> for Error {
            fn from(e: KvError) -> Error {
                match e {
                    KvError::NoSuchStore => Error::NoSuchStore,
                    KvError::AccessDenied => Error::AccessDenied,
                    KvError::TableFull => Error::StoreTableFull,
                    KvError::Other(m) => Error::$other(m),
                }
            }
        }
    };
}
pub(super) use convert_error;

/// Why a store operation failed, before it is put in an interface's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KvError {
    NoSuchStore,
    AccessDenied,
    TableFull,
    Other(String),
}

/// An open store: the guest's handle (`store` resource, or a `u32` in the
/// unversioned interface).
pub struct OpenStore {
    pub(super) backend: Arc<Backend>,
    pub(super) pool: Arc<AppHost>,
    /// The message's budget of what it may receive (see `reply_bounds`).
    pub(super) budget: Arc<MessageBudget>,
}

impl OpenStore {
    pub async fn get(&self, key: String) -> Result<Option<Vec<u8>>, KvError> {
        match &*self.backend {
            Backend::Sqlite { db, label } => {
                let label = label.clone();
                let max_reply = self.budget.limits().max_reply;
                // The length first, in the same statement: a value past the
                // cap is never read.
                let row = sqlite(db, move |c| {
                    let mut stmt = c.prepare_cached(
                        "SELECT length(value), CASE WHEN length(value) > ?3 THEN NULL ELSE value END
                         FROM spin_key_value WHERE store = ?1 AND key = ?2",
                    )?;
                    // SQLite's integers are i64; the caps are far below.
                    let cap = i64::try_from(max_reply).unwrap_or(i64::MAX);
                    let mut rows = stmt.query(rusqlite::params![label, key, cap])?;
                    rows.next()?
                        .map(|r| Ok((r.get::<_, i64>(0)?, r.get::<_, Option<Vec<u8>>>(1)?)))
                        .transpose()
                })
                .await?;
                match row {
                    None => Ok(None),
                    Some((len, value)) => {
                        let len = u64::try_from(len).unwrap_or(0);
                        self.admit("the value", len)?;
                        Ok(Some(value.unwrap_or_default()))
                    }
                }
            }
            Backend::Redis { address } => {
                let len: i64 = self.redis(address, redis::cmd("STRLEN").arg(&key)).await?;
                self.admit("the value", u64::try_from(len).unwrap_or(0))?;
                let v: Option<Vec<u8>> = self.redis(address, redis::cmd("GET").arg(key)).await?;
                // The value may have grown since STRLEN: measure it too.
                if let Some(v) = &v {
                    let read = v.len() as u64;
                    let max_reply = self.budget.limits().max_reply;
                    if read > max_reply {
                        return Err(KvError::Other(reply_bounds::too_large(
                            "the value",
                            read,
                            max_reply,
                        )));
                    }
                    let grown = read.saturating_sub(u64::try_from(len).unwrap_or(0));
                    self.budget.charge(grown).map_err(KvError::Other)?;
                }
                Ok(v)
            }
        }
    }

    /// Checks `bytes` against the cap per reply and charges them to the
    /// message.
    fn admit(&self, what: &str, bytes: u64) -> Result<(), KvError> {
        self.budget.admit(what, bytes).map_err(KvError::Other)
    }

    pub async fn set(&self, key: String, value: Vec<u8>) -> Result<(), KvError> {
        match &*self.backend {
            Backend::Sqlite { db, label } => {
                let label = label.clone();
                sqlite(db, move |c| {
                    c.prepare_cached(
                        "INSERT INTO spin_key_value (store, key, value) VALUES (?1, ?2, ?3)
                         ON CONFLICT(store, key) DO UPDATE SET value = ?3",
                    )?
                    .execute(rusqlite::params![label, key, value])
                    .map(drop)
                })
                .await
            }
            Backend::Redis { address } => {
                self.redis(address, redis::cmd("SET").arg(key).arg(value))
                    .await
            }
        }
    }

    pub async fn delete(&self, key: String) -> Result<(), KvError> {
        match &*self.backend {
            Backend::Sqlite { db, label } => {
                let label = label.clone();
                sqlite(db, move |c| {
                    c.prepare_cached("DELETE FROM spin_key_value WHERE store = ?1 AND key = ?2")?
                        .execute(rusqlite::params![label, key])
                        .map(drop)
                })
                .await
            }
            Backend::Redis { address } => self
                .redis::<i64>(address, redis::cmd("DEL").arg(key))
                .await
                .map(drop),
        }
    }

    pub async fn exists(&self, key: String) -> Result<bool, KvError> {
        match &*self.backend {
            Backend::Sqlite { db, label } => {
                let label = label.clone();
                sqlite(db, move |c| {
                    c.prepare_cached(
                        "SELECT EXISTS(SELECT 1 FROM spin_key_value WHERE store = ?1 AND key = ?2)",
                    )?
                    .query_row(rusqlite::params![label, key], |r| r.get::<_, bool>(0))
                })
                .await
            }
            Backend::Redis { address } => self.redis(address, redis::cmd("EXISTS").arg(key)).await,
        }
    }

    pub async fn get_keys(&self) -> Result<Vec<String>, KvError> {
        let max_listing = self.budget.limits().max_listing;
        let keys: Vec<String> = match &*self.backend {
            Backend::Sqlite { db, label } => {
                let label = label.clone();
                // One key past the cap tells that there are too many,
                // without reading them all.
                let limit = i64::try_from(max_listing).unwrap_or(i64::MAX - 1) + 1;
                sqlite(db, move |c| {
                    let mut stmt = c.prepare_cached(
                        "SELECT key FROM spin_key_value WHERE store = ?1 LIMIT ?2",
                    )?;
                    let keys = stmt
                        .query_map(rusqlite::params![label, limit], |r| r.get::<_, String>(0))?
                        .collect::<Result<Vec<_>, _>>()?;
                    Ok(keys)
                })
                .await?
            }
            Backend::Redis { address } => {
                // The store is the whole database: its size first.
                let n: u64 = self.redis(address, &redis::cmd("DBSIZE")).await?;
                if n > max_listing {
                    return Err(too_many_keys(n, max_listing));
                }
                self.redis(address, redis::cmd("KEYS").arg("*")).await?
            }
        };
        if keys.len() as u64 > max_listing {
            return Err(too_many_keys(keys.len() as u64, max_listing));
        }
        let bytes: u64 = keys
            .iter()
            .map(|k| k.len() as u64 + reply_bounds::ELEMENT_OVERHEAD)
            .sum();
        self.admit("the listing", bytes)?;
        Ok(keys)
    }

    async fn redis<T: redis::FromRedisValue>(
        &self,
        address: &RedisAddress,
        cmd: &redis::Cmd,
    ) -> Result<T, KvError> {
        let mut conn = self
            .pool
            .redis
            // The operator's store: never counted against the component.
            .shared(crate::host::redis::quota::Owner::Operator, address)
            .await
            .map_err(|e| KvError::Other(e.to_string()))?;
        cmd.query_async(&mut conn)
            .await
            .map_err(|e| KvError::Other(e.to_string()))
    }
}

/// A listing past `cap` keys (`n` keys, or at least `n`).
fn too_many_keys(n: u64, cap: u64) -> KvError {
    KvError::Other(format!(
        "the store holds {n} keys or more, more than the host's cap of {cap} keys per listing (get-keys; --max-host-listing)"
    ))
}

/// Runs `f` on the database's connection on a blocking thread.
async fn sqlite<R: Send + 'static>(
    db: &Arc<SqliteDb>,
    f: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<R> + Send + 'static,
) -> Result<R, KvError> {
    let db = db.clone();
    tokio::task::spawn_blocking(move || {
        let conn = db.connection()?;
        let guard = conn.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&guard).map_err(|e| format!("{}: {e}", db.describe()))
    })
    .await
    .map_err(|e| KvError::Other(format!("the key-value call did not finish: {e}")))?
    .map_err(KvError::Other)
}
