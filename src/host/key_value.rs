//! Key-value stores for components: `fermyon:spin/key-value@2.0.0`,
//! `spin:key-value/key-value@3.0.0` (async; `get-keys` is a stream) and the
//! unversioned `fermyon:spin/key-value` of older SDKs (stores are `u32`
//! handles there).
//!
//! A store is a label: `default`, or one defined by the runtime config
//! (`runtime_config`). Two backends, as in Spin:
//! - SQLite (`type = "spin"`; the `default` store unless configured
//!   otherwise): Spin's own table `spin_key_value(store, key, value)` with the
//!   label in `store`, in `.spin/sqlite_key_value.db` beside the manifest, so
//!   a Spin app's data carries over both ways. Opened on first use; every
//!   call runs on a blocking thread, never on a handler worker.
//! - Redis (`type = "redis"`): keys and values as they are, on the app's
//!   pooled connection to that address (see `redis::Pool`).
//!
//! A component may open only the labels in its `key_value_stores`:
//! another label is `access-denied`; a listed label that no store defines is
//! `no-such-store` (start-up refuses such a manifest, as Spin does, so this
//! is not seen in practice). Each instance may hold [`MAX_OPEN`] open stores
//! (`store-table-full` beyond).
//!
//! Not owned here: reading the runtime config file (`runtime_config`).

use super::reply_bounds::{self, MessageBudget};
use super::{HasHost, HostData, HostView};
use crate::address::RedisAddress;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use wasmtime::component::{Accessor, FutureReader, Linker, Resource, StreamReader};

mod bindings {
    wasmtime::component::bindgen!({
        inline: "
            package spin-redis:host;
            world key-value {
                import fermyon:spin/key-value;
                import fermyon:spin/key-value@2.0.0;
                import spin:key-value/key-value@3.0.0;
            }
        ",
        path: [
            "wit/spin/fermyon-spin",
            "wit/spin/fermyon-spin@2.0.0",
            "wit/spin/spin-key-value@3.0.0",
        ],
        imports: { default: async | trappable },
        with: {
            "fermyon:spin/key-value@2.0.0.store": super::OpenStore,
            "spin:key-value/key-value@3.0.0.store": super::OpenStore,
        },
    });
}

use bindings::fermyon::spin::key_value as v1;
use bindings::fermyon::spin2_0_0::key_value as v2;
use bindings::spin::key_value::key_value as v3;

/// The interfaces [`link`] defines.
pub const INTERFACES: &[&str] = &[
    "fermyon:spin/key-value",
    "fermyon:spin/key-value@2.0.0",
    "spin:key-value/key-value@3.0.0",
];

/// Stores one instance may hold open at once.
pub const MAX_OPEN: usize = 256;

/// The app's stores, by label.
#[derive(Default)]
pub struct Stores {
    by_label: BTreeMap<String, Arc<Backend>>,
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
    fn connection(&self) -> Result<Arc<Mutex<rusqlite::Connection>>, String> {
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
    backend: Arc<Backend>,
    pool: Arc<super::AppHost>,
    /// The message's budget of what it may receive (see `reply_bounds`).
    budget: Arc<MessageBudget>,
}

impl OpenStore {
    async fn get(&self, key: String) -> Result<Option<Vec<u8>>, KvError> {
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

    async fn set(&self, key: String, value: Vec<u8>) -> Result<(), KvError> {
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

    async fn delete(&self, key: String) -> Result<(), KvError> {
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

    async fn exists(&self, key: String) -> Result<bool, KvError> {
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

    async fn get_keys(&self) -> Result<Vec<String>, KvError> {
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
            .shared(super::redis_quota::Owner::Operator, address)
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

/// Opens `label` for the instance behind `view`.
fn open(
    view: &mut HostView<'_>,
    label: &str,
) -> wasmtime::Result<Result<Resource<OpenStore>, KvError>> {
    let component = &view.host.component;
    if !component.key_value_stores.iter().any(|l| l == label) {
        return Ok(Err(KvError::AccessDenied));
    }
    let Some(backend) = component.app.stores.by_label.get(label).cloned() else {
        return Ok(Err(KvError::NoSuchStore));
    };
    if view.host.open_stores >= MAX_OPEN {
        return Ok(Err(KvError::TableFull));
    }
    let store = OpenStore {
        backend,
        pool: component.app.clone(),
        budget: view.host.budget.clone(),
    };
    let r = view.table.push(store)?;
    view.host.open_stores += 1;
    Ok(Ok(r))
}

fn close(view: &mut HostView<'_>, store: Resource<OpenStore>) -> wasmtime::Result<()> {
    view.table.delete(store)?;
    view.host.open_stores = view.host.open_stores.saturating_sub(1);
    Ok(())
}

/// A handle to an open store, to use outside the store's lock.
fn handle(view: &HostView<'_>, store: &Resource<OpenStore>) -> wasmtime::Result<OpenStore> {
    let s = view.table.get(store)?;
    Ok(OpenStore {
        backend: s.backend.clone(),
        pool: s.pool.clone(),
        budget: s.budget.clone(),
    })
}

/// Adds the key-value interfaces to `linker`.
pub fn link<T: HasHost>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    v1::add_to_linker::<T, HostData>(linker, T::host_view)?;
    v2::add_to_linker::<T, HostData>(linker, T::host_view)?;
    v3::add_to_linker::<T, HostData>(linker, T::host_view)?;
    Ok(())
}

// ---- fermyon:spin/key-value@2.0.0 ----

fn err_v2(e: KvError) -> v2::Error {
    match e {
        KvError::NoSuchStore => v2::Error::NoSuchStore,
        KvError::AccessDenied => v2::Error::AccessDenied,
        KvError::TableFull => v2::Error::StoreTableFull,
        KvError::Other(m) => v2::Error::Other(m),
    }
}

impl v2::Host for HostView<'_> {}

impl v2::HostStore for HostView<'_> {
    async fn open(
        &mut self,
        label: String,
    ) -> wasmtime::Result<Result<Resource<OpenStore>, v2::Error>> {
        Ok(open(self, &label)?.map_err(err_v2))
    }

    async fn get(
        &mut self,
        store: Resource<OpenStore>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, v2::Error>> {
        Ok(handle(self, &store)?.get(key).await.map_err(err_v2))
    }

    async fn set(
        &mut self,
        store: Resource<OpenStore>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), v2::Error>> {
        Ok(handle(self, &store)?.set(key, value).await.map_err(err_v2))
    }

    async fn delete(
        &mut self,
        store: Resource<OpenStore>,
        key: String,
    ) -> wasmtime::Result<Result<(), v2::Error>> {
        Ok(handle(self, &store)?.delete(key).await.map_err(err_v2))
    }

    async fn exists(
        &mut self,
        store: Resource<OpenStore>,
        key: String,
    ) -> wasmtime::Result<Result<bool, v2::Error>> {
        Ok(handle(self, &store)?.exists(key).await.map_err(err_v2))
    }

    async fn get_keys(
        &mut self,
        store: Resource<OpenStore>,
    ) -> wasmtime::Result<Result<Vec<String>, v2::Error>> {
        Ok(handle(self, &store)?.get_keys().await.map_err(err_v2))
    }

    async fn drop(&mut self, store: Resource<OpenStore>) -> wasmtime::Result<()> {
        close(self, store)
    }
}

// ---- spin:key-value/key-value@3.0.0 (async) ----

fn err_v3(e: KvError) -> v3::Error {
    match e {
        KvError::NoSuchStore => v3::Error::NoSuchStore,
        KvError::AccessDenied => v3::Error::AccessDenied,
        KvError::TableFull => v3::Error::StoreTableFull,
        KvError::Other(m) => v3::Error::Other(m),
    }
}

impl v3::Host for HostView<'_> {}

impl v3::HostStore for HostView<'_> {
    async fn drop(&mut self, store: Resource<OpenStore>) -> wasmtime::Result<()> {
        close(self, store)
    }
}

fn handle_v3<T>(
    accessor: &Accessor<T, HostData>,
    store: &Resource<OpenStore>,
) -> wasmtime::Result<OpenStore> {
    accessor.with(|mut access| handle(&access.get(), store))
}

impl<T: Send> v3::HostStoreWithStore<T> for HostData {
    async fn open(
        accessor: &Accessor<T, Self>,
        label: String,
    ) -> wasmtime::Result<Result<Resource<OpenStore>, v3::Error>> {
        accessor.with(|mut access| Ok(open(&mut access.get(), &label)?.map_err(err_v3)))
    }

    async fn get(
        accessor: &Accessor<T, Self>,
        store: Resource<OpenStore>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, v3::Error>> {
        Ok(handle_v3(accessor, &store)?.get(key).await.map_err(err_v3))
    }

    async fn set(
        accessor: &Accessor<T, Self>,
        store: Resource<OpenStore>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), v3::Error>> {
        Ok(handle_v3(accessor, &store)?
            .set(key, value)
            .await
            .map_err(err_v3))
    }

    async fn delete(
        accessor: &Accessor<T, Self>,
        store: Resource<OpenStore>,
        key: String,
    ) -> wasmtime::Result<Result<(), v3::Error>> {
        Ok(handle_v3(accessor, &store)?
            .delete(key)
            .await
            .map_err(err_v3))
    }

    async fn exists(
        accessor: &Accessor<T, Self>,
        store: Resource<OpenStore>,
        key: String,
    ) -> wasmtime::Result<Result<bool, v3::Error>> {
        Ok(handle_v3(accessor, &store)?
            .exists(key)
            .await
            .map_err(err_v3))
    }

    async fn get_keys(
        accessor: &Accessor<T, Self>,
        store: Resource<OpenStore>,
    ) -> wasmtime::Result<(StreamReader<String>, FutureReader<Result<(), v3::Error>>)> {
        // The keys are read at once (bounded by `--max-host-listing`), then
        // streamed; a failure is an empty stream and an error in the future.
        let (keys, done) = match handle_v3(accessor, &store)?.get_keys().await {
            Ok(keys) => (keys, Ok(())),
            Err(e) => (Vec::new(), Err(err_v3(e))),
        };
        accessor.with(|mut access| {
            let stream = StreamReader::new(&mut access, keys)?;
            let future =
                FutureReader::new(&mut access, async move { wasmtime::Result::<_>::Ok(done) })?;
            Ok((stream, future))
        })
    }
}

// ---- fermyon:spin/key-value (unversioned: `u32` handles) ----

fn err_v1(e: KvError) -> v1::Error {
    match e {
        KvError::NoSuchStore => v1::Error::NoSuchStore,
        KvError::AccessDenied => v1::Error::AccessDenied,
        KvError::TableFull => v1::Error::StoreTableFull,
        KvError::Other(m) => v1::Error::Io(m),
    }
}

/// The open store behind an unversioned handle (`invalid-store` if none).
fn handle_v1(view: &HostView<'_>, store: u32) -> Result<OpenStore, v1::Error> {
    handle(view, &Resource::new_own(store)).map_err(|_| v1::Error::InvalidStore)
}

impl v1::Host for HostView<'_> {
    async fn open(&mut self, name: String) -> wasmtime::Result<Result<u32, v1::Error>> {
        Ok(open(self, &name)?.map(|r| r.rep()).map_err(err_v1))
    }

    async fn get(
        &mut self,
        store: u32,
        key: String,
    ) -> wasmtime::Result<Result<Vec<u8>, v1::Error>> {
        let s = match handle_v1(self, store) {
            Ok(s) => s,
            Err(e) => return Ok(Err(e)),
        };
        // The unversioned `get` has no `option`: a missing key is an error.
        Ok(match s.get(key).await {
            Ok(Some(v)) => Ok(v),
            Ok(None) => Err(v1::Error::NoSuchKey),
            Err(e) => Err(err_v1(e)),
        })
    }

    async fn set(
        &mut self,
        store: u32,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), v1::Error>> {
        Ok(match handle_v1(self, store) {
            Ok(s) => s.set(key, value).await.map_err(err_v1),
            Err(e) => Err(e),
        })
    }

    async fn delete(&mut self, store: u32, key: String) -> wasmtime::Result<Result<(), v1::Error>> {
        Ok(match handle_v1(self, store) {
            Ok(s) => s.delete(key).await.map_err(err_v1),
            Err(e) => Err(e),
        })
    }

    async fn exists(
        &mut self,
        store: u32,
        key: String,
    ) -> wasmtime::Result<Result<bool, v1::Error>> {
        Ok(match handle_v1(self, store) {
            Ok(s) => s.exists(key).await.map_err(err_v1),
            Err(e) => Err(e),
        })
    }

    async fn get_keys(&mut self, store: u32) -> wasmtime::Result<Result<Vec<String>, v1::Error>> {
        Ok(match handle_v1(self, store) {
            Ok(s) => s.get_keys().await.map_err(err_v1),
            Err(e) => Err(e),
        })
    }

    async fn close(&mut self, store: u32) -> wasmtime::Result<()> {
        // Closing a handle that is not open has no effect.
        if handle_v1(self, store).is_ok() {
            close(self, Resource::new_own(store))?;
        }
        Ok(())
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
