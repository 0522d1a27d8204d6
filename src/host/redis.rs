//! Outbound Redis for components: `fermyon:spin/redis@2.0.0` (resource
//! `connection`), `spin:redis/redis@3.0.0` (the same, async) and the
//! unversioned `fermyon:spin/redis` of older SDKs (an address per call).
//!
//! Connections are pooled per component and address ([`Pool`]): every
//! `open` of the same address (however it is spelled) in any instance of
//! one component shares one multiplexed connection (a `ConnectionManager`,
//! which reconnects by itself), so a handler that opens a connection per
//! message costs no connect per message. Each component has quotas of its
//! own (see `redis_quota`): one component can never use up another's.
//! A guest's connection goes to the one server its address names and no
//! other: cluster mode is never detected for it, and a `MOVED` or `ASK`
//! reply is the guest's error (`other`), never followed, so a server cannot
//! steer a guest to a host `allowed_outbound_hosts` does not list. Only an
//! operator's key-value store (runtime config, [`Owner::Operator`]) gets a
//! cluster connection when its server says `cluster_enabled:1`.
//! A component keeps at most `--max-redis-addresses` addresses. A command
//! that changes a connection's state or blocks it (`MULTI`, `SELECT`,
//! `BLPOP`...) sent through `execute` moves that guest connection onto a
//! dedicated one (at most `--max-redis-dedicated` per component at
//! once, closed when the guest drops it), so no other handler sees its
//! effect. Subscribing through `execute` is refused.
//!
//! Errors are the WIT's own: an address that does not parse (or that parsers
//! read in two ways: `destination::redis` reads where it goes from the very
//! connection information it is connected with), or that
//! `allowed_outbound_hosts` does not allow, is `invalid-address`; a full pool
//! `too-many-connections`; a value of the wrong type (a `WRONGTYPE` key, a
//! non-integer `incr`) `type-error`; anything else `other` with Redis's
//! message. The unversioned interface has only `error`. Addresses are shown
//! without credentials, everywhere.
//!
//! Not owned here: the trigger's own subscriber connections (`source`).

use super::redis_quota::{Owner, OwnerKey, pool_key};
use super::reply_bounds::{self, HostLimits, MessageBudget};
use super::{HasHost, HostData, HostView, Refused, destination, redis_probe};
use crate::address::RedisAddress;
use redis::aio::{
    ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection,
};
use redis::cluster_async::ClusterConnection;
use redis::{
    AsyncConnectionConfig, Cmd, ErrorKind, FromRedisValue, RedisError, ServerErrorKind, Value,
};
use std::collections::HashMap;
use std::future::Future;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OnceCell, OwnedSemaphorePermit, Semaphore};
use wasmtime::component::{Accessor, Linker, Resource};

mod bindings {
    wasmtime::component::bindgen!({
        inline: "
            package spin-redis:host;
            world redis {
                import fermyon:spin/redis;
                import fermyon:spin/redis@2.0.0;
                import spin:redis/redis@3.0.0;
            }
        ",
        path: [
            "wit/spin/fermyon-spin",
            "wit/spin/fermyon-spin@2.0.0",
            "wit/spin/spin-redis@3.0.0",
        ],
        imports: { default: async | trappable },
        with: {
            "fermyon:spin/redis@2.0.0.connection": super::Connection,
            "spin:redis/redis@3.0.0.connection": super::Connection,
        },
    });
}

use bindings::fermyon::spin::redis as v1;
use bindings::fermyon::spin::redis_types as v1_types;
use bindings::fermyon::spin2_0_0::redis as v2;
use bindings::spin::redis::redis as v3;

/// The interfaces [`link`] defines.
pub const INTERFACES: &[&str] = &[
    "fermyon:spin/redis",
    "fermyon:spin/redis-types",
    "fermyon:spin/redis@2.0.0",
    "spin:redis/redis@3.0.0",
];

/// Connections one instance may hold open at once.
pub const MAX_OPEN: usize = 256;
/// How long connecting and authenticating may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The app's outbound Redis connections.
pub struct Pool {
    /// CA certificates (PEM) that verify `rediss://` servers, when given.
    root_cert: Option<Vec<u8>>,
    /// Owner → connection (see `redis_quota::pool_key`) → its connection,
    /// made on first use.
    shared: Mutex<HashMap<OwnerKey, Owned>>,
    /// Each component's dedicated connections (at most
    /// `dedicated_per_component` at once).
    dedicated: Mutex<HashMap<String, Arc<Semaphore>>>,
    /// The quotas per component.
    pooled_per_component: usize,
    dedicated_per_component: usize,
}

/// One owner's pooled connections, by `redis_quota::pool_key`.
type Owned = HashMap<String, Arc<OnceCell<Shared>>>;

/// The shared connection of one address: to a single server, or to the
/// Redis Cluster the address is a node of.
#[derive(Clone)]
pub enum Shared {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Shared {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> redis::RedisFuture<'a, Value> {
        match self {
            Shared::Single(c) => c.req_packed_command(cmd),
            Shared::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<Value>> {
        match self {
            Shared::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Shared::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Shared::Single(c) => c.get_db(),
            Shared::Cluster(c) => c.get_db(),
        }
    }
}

/// Why a connection could not be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    #[error("invalid address")]
    InvalidAddress,
    #[error("too many connections")]
    TooManyConnections,
    #[error("{0}")]
    Other(String),
}

impl Pool {
    /// A pool verifying `rediss://` servers with the CA file `tls_ca_file`
    /// (else the system roots).
    pub fn new(tls_ca_file: Option<&Path>, limits: &HostLimits) -> anyhow::Result<Pool> {
        let root_cert = tls_ca_file
            .map(|f| {
                std::fs::read(f).map_err(|e| {
                    anyhow::anyhow!(
                        "cannot read the TLS CA file {:?}: {e}",
                        f.display().to_string()
                    )
                })
            })
            .transpose()?;
        Ok(Pool {
            root_cert,
            shared: Mutex::new(HashMap::new()),
            dedicated: Mutex::new(HashMap::new()),
            pooled_per_component: limits.pooled_per_component,
            dedicated_per_component: limits.dedicated_per_component,
        })
    }

    /// A client for `address`, made from the connection information
    /// `destination::redis` reads the checked destination from (so what is
    /// checked is what is connected to).
    fn client(&self, address: &RedisAddress) -> Result<redis::Client, OpenError> {
        let info = destination::redis(address)
            .map_err(|_| OpenError::InvalidAddress)?
            .info;
        let client = match (&self.root_cert, address.is_tls()) {
            (Some(root_cert), true) => redis::Client::build_with_tls(
                info,
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(root_cert.clone()),
                },
            ),
            _ => redis::Client::open(info),
        };
        client.map_err(|_| OpenError::InvalidAddress)
    }

    /// `owner`'s shared connection to `address`, made on first use. A
    /// component past its `pooled_per_component` addresses gets
    /// `too-many-connections`; a connect that fails leaves nothing behind.
    /// A component's connection goes to that one server, whatever it says
    /// it is; an operator's store follows a cluster (see the module docs).
    pub async fn shared(
        &self,
        owner: Owner<'_>,
        address: &RedisAddress,
    ) -> Result<Shared, OpenError> {
        let key = pool_key(address).ok_or(OpenError::InvalidAddress)?;
        let follow_cluster = matches!(owner, Owner::Operator);
        let cell = {
            let mut map = self
                .shared
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            let owned = map.entry(owner.key()).or_default();
            match owned.get(&key) {
                Some(cell) => cell.clone(),
                None if matches!(owner, Owner::Component(_))
                    && owned.len() >= self.pooled_per_component =>
                {
                    return Err(OpenError::TooManyConnections);
                }
                None => owned.entry(key.clone()).or_default().clone(),
            }
        };
        let made = cell
            .get_or_try_init(|| self.connect(address, follow_cluster))
            .await
            .cloned();
        if made.is_err() {
            // Forget the failed entry (unless another open has replaced or
            // filled it meanwhile), so that failures never use up a quota.
            let mut map = self
                .shared
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if let Some(owned) = map.get_mut(&owner.key())
                && owned
                    .get(&key)
                    .is_some_and(|c| Arc::ptr_eq(c, &cell) && !c.initialized())
            {
                owned.remove(&key);
            }
        }
        made
    }

    /// Connects to `address`: that one server; with `follow_cluster` (an
    /// operator's store), the cluster it says it is a node of.
    async fn connect(
        &self,
        address: &RedisAddress,
        follow_cluster: bool,
    ) -> Result<Shared, OpenError> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_number_of_retries(2);
        let mut single = ConnectionManager::new_with_config(self.client(address)?, config)
            .await
            .map_err(|e| connect_error(address, &e))?;
        if !follow_cluster {
            return Ok(Shared::Single(single));
        }
        // A store on a cluster node: commands must go to their keys' nodes.
        let info: String = redis::cmd("INFO")
            .arg("cluster")
            .query_async(&mut single)
            .await
            .unwrap_or_default();
        if !info.contains("cluster_enabled:1") {
            return Ok(Shared::Single(single));
        }
        let seed = destination::redis(address)
            .map_err(|_| OpenError::InvalidAddress)?
            .info;
        let mut b = redis::cluster::ClusterClientBuilder::new([seed])
            .connection_timeout(CONNECT_TIMEOUT)
            .response_timeout(CONNECT_TIMEOUT);
        if let (Some(root_cert), true) = (&self.root_cert, address.is_tls()) {
            b = b.certs(redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(root_cert.clone()),
            });
        }
        let cluster = b
            .build()
            .map_err(|_| OpenError::InvalidAddress)?
            .get_async_connection()
            .await
            .map_err(|e| connect_error(address, &e))?;
        tracing::info!(address = %address.redacted(), "outbound redis: the address is a cluster node; commands go to their keys' nodes");
        Ok(Shared::Cluster(cluster))
    }

    /// A connection of its own to `address` for `component`, counted
    /// against its `dedicated_per_component` until dropped.
    async fn dedicated(
        &self,
        component: &str,
        address: &RedisAddress,
    ) -> Result<(MultiplexedConnection, OwnedSemaphorePermit), OpenError> {
        let quota = self
            .dedicated
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .entry(component.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(self.dedicated_per_component)))
            .clone();
        let permit = quota
            .try_acquire_owned()
            .map_err(|_| OpenError::TooManyConnections)?;
        let config = AsyncConnectionConfig::new().set_connection_timeout(Some(CONNECT_TIMEOUT));
        let conn = self
            .client(address)?
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|e| connect_error(address, &e))?;
        Ok((conn, permit))
    }

    /// How many addresses have a shared connection, all owners together.
    pub fn addresses(&self) -> usize {
        self.shared
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .values()
            .flat_map(|owned| owned.values())
            .filter(|c| c.initialized())
            .count()
    }
}

fn connect_error(address: &RedisAddress, e: &RedisError) -> OpenError {
    // Redis's connection errors describe the failure, never the URL.
    OpenError::Other(format!("cannot connect to {}: {e}", address.redacted()))
}

/// A guest's open connection (`fermyon:spin/redis@2.0.0` and
/// `spin:redis/redis@3.0.0` resource `connection`).
pub struct Connection {
    address: RedisAddress,
    shared: Shared,
    /// The message's budget of what it may receive.
    budget: Arc<MessageBudget>,
    /// Set once a stateful or blocking command was sent.
    dedicated: Option<(MultiplexedConnection, OwnedSemaphorePermit)>,
}

/// A connection to send one command on, and the message's budget of what
/// it may receive (see `reply_bounds`).
#[derive(Clone)]
struct Conn {
    link: Link,
    budget: Arc<MessageBudget>,
}

#[derive(Clone)]
enum Link {
    Shared(Shared),
    Dedicated(MultiplexedConnection),
}

impl Conn {
    fn shared(c: Shared, budget: &Arc<MessageBudget>) -> Conn {
        Conn {
            link: Link::Shared(c),
            budget: budget.clone(),
        }
    }

    fn dedicated(c: MultiplexedConnection, budget: &Arc<MessageBudget>) -> Conn {
        Conn {
            link: Link::Dedicated(c),
            budget: budget.clone(),
        }
    }

    async fn send(&mut self, cmd: &Cmd) -> Result<Value, RedisError> {
        match &mut self.link {
            Link::Shared(c) => cmd.query_async(c).await,
            Link::Dedicated(c) => cmd.query_async(c).await,
        }
    }

    /// Sends `cmd`; a reply past `max_reply` or the message's total
    /// is refused (measured once read, see `redis_probe`).
    async fn query<T: FromRedisValue>(mut self, cmd: &Cmd) -> Result<T, v3::Error> {
        let value = self.send(cmd).await.map_err(command_error)?;
        self.budget
            .admit("the reply", redis_probe::measure(&value))
            .map_err(v3::Error::Other)?;
        T::from_redis_value(value).map_err(|e| command_error(e.into()))
    }

    /// Refuses `command args` before it is sent when its probe (see
    /// `redis_probe`) says the reply would pass `max_reply`.
    /// Only on a shared connection: a dedicated one may be inside `MULTI`,
    /// where the probe would be queued into the guest's transaction (its
    /// replies are measured once read).
    async fn probe(&mut self, command: &str, args: &[Vec<u8>]) -> Result<(), v3::Error> {
        if matches!(self.link, Link::Dedicated(_)) {
            return Ok(());
        }
        let Some(p) = redis_probe::probe(command, args) else {
            return Ok(());
        };
        let mut cmd = redis::cmd(p.command);
        if let Some(key) = &p.key {
            cmd.arg(key);
        }
        // A probe that fails (a wrong type, a command the server lacks)
        // decides nothing: the command itself says what is wrong.
        let Ok(Value::Int(n)) = self.send(&cmd).await else {
            return Ok(());
        };
        let at_least = p.lower_bound(n);
        let max_reply = self.budget.limits().max_reply;
        if at_least > max_reply {
            return Err(v3::Error::Other(reply_bounds::would_be_too_large(
                &format!("the reply to {}", command.to_ascii_uppercase()),
                at_least,
                max_reply,
            )));
        }
        Ok(())
    }
}

/// What a command needs of its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Needs {
    Shared,
    Dedicated,
    Refused,
}

/// Commands that change a connection's state or hold it up: they get a
/// connection of their own. (Subscriptions and replication streams turn the
/// connection into something else: refused.)
fn needs(command: &str, args: &[v3::RedisParameter]) -> Needs {
    let c = command.to_ascii_uppercase();
    match c.as_str() {
        "SUBSCRIBE" | "PSUBSCRIBE" | "SSUBSCRIBE" | "UNSUBSCRIBE" | "PUNSUBSCRIBE"
        | "SUNSUBSCRIBE" | "MONITOR" | "SYNC" | "PSYNC" | "QUIT" => Needs::Refused,
        "MULTI" | "EXEC" | "DISCARD" | "WATCH" | "UNWATCH" | "SELECT" | "AUTH" | "HELLO"
        | "RESET" | "CLIENT" | "READONLY" | "READWRITE" | "SWAPDB" | "BLPOP" | "BRPOP"
        | "BRPOPLPUSH" | "BLMOVE" | "BLMPOP" | "BZPOPMIN" | "BZPOPMAX" | "BZMPOP" | "WAIT"
        | "WAITAOF" => Needs::Dedicated,
        "XREAD" | "XREADGROUP"
            if args.iter().any(
                |a| matches!(a, v3::RedisParameter::Binary(b) if b.eq_ignore_ascii_case(b"BLOCK")),
            ) =>
        {
            Needs::Dedicated
        }
        _ => Needs::Shared,
    }
}

/// Parses and checks a guest's address, then gets its shared connection.
async fn open(
    component: &super::ComponentHost,
    address: &str,
) -> Result<(RedisAddress, Shared), OpenError> {
    // Parsed once: the destination is read from the connection information
    // the pool connects with (`Pool::client`), never from the text again.
    let parsed = RedisAddress::parse(address).map_err(|_| OpenError::InvalidAddress)?;
    let read = destination::redis(&parsed).map(|t| t.destination);
    match component.check_outbound(read) {
        Ok(_) => {}
        Err(Refused::BadUrl | Refused::NotAllowed(_)) => return Err(OpenError::InvalidAddress),
    }
    let conn = component
        .app
        .redis
        .shared(Owner::Component(&component.id), &parsed)
        .await?;
    Ok((parsed, conn))
}

/// The error a command failed with, in the v3 (and v2) vocabulary.
fn command_error(e: RedisError) -> v3::Error {
    let type_error = e.kind() == ErrorKind::UnexpectedReturnType
        || e.code() == Some("WRONGTYPE")
        || e.detail()
            .is_some_and(|d| d.contains("not an integer") || d.contains("not a valid float"));
    if type_error {
        v3::Error::TypeError
    } else if matches!(
        e.kind(),
        ErrorKind::Server(ServerErrorKind::Moved | ServerErrorKind::Ask)
    ) {
        // Never followed: the node it names was not checked against
        // `allowed_outbound_hosts`, and a server must not steer a guest.
        v3::Error::Other(format!(
            "{e}: a component's outbound redis does not follow cluster redirects; address the node that holds the key"
        ))
    } else {
        v3::Error::Other(e.to_string())
    }
}

fn open_error_v3(e: OpenError) -> v3::Error {
    match e {
        OpenError::InvalidAddress => v3::Error::InvalidAddress,
        OpenError::TooManyConnections => v3::Error::TooManyConnections,
        OpenError::Other(m) => v3::Error::Other(m),
    }
}

fn to_v2(e: v3::Error) -> v2::Error {
    match e {
        v3::Error::InvalidAddress => v2::Error::InvalidAddress,
        v3::Error::TooManyConnections => v2::Error::TooManyConnections,
        v3::Error::TypeError => v2::Error::TypeError,
        v3::Error::Other(m) => v2::Error::Other(m),
    }
}

/// The commands every interface version offers, on any connection.
mod ops {
    use super::*;

    pub async fn publish(c: Conn, channel: String, payload: Vec<u8>) -> Result<(), v3::Error> {
        c.query::<i64>(redis::cmd("PUBLISH").arg(channel).arg(payload))
            .await
            .map(drop)
    }

    pub async fn get(mut c: Conn, key: String) -> Result<Option<Vec<u8>>, v3::Error> {
        c.probe("GET", std::slice::from_ref(&key.clone().into_bytes()))
            .await?;
        c.query(redis::cmd("GET").arg(key)).await
    }

    pub async fn set(c: Conn, key: String, value: Vec<u8>) -> Result<(), v3::Error> {
        c.query::<()>(redis::cmd("SET").arg(key).arg(value)).await
    }

    pub async fn incr(c: Conn, key: String) -> Result<i64, v3::Error> {
        c.query(redis::cmd("INCR").arg(key)).await
    }

    pub async fn del(c: Conn, keys: Vec<String>) -> Result<u32, v3::Error> {
        if keys.is_empty() {
            return Ok(0);
        }
        c.query(redis::cmd("DEL").arg(keys)).await
    }

    pub async fn sadd(c: Conn, key: String, values: Vec<String>) -> Result<u32, v3::Error> {
        c.query(redis::cmd("SADD").arg(key).arg(values)).await
    }

    pub async fn srem(c: Conn, key: String, values: Vec<String>) -> Result<u32, v3::Error> {
        c.query(redis::cmd("SREM").arg(key).arg(values)).await
    }

    pub async fn smembers(mut c: Conn, key: String) -> Result<Vec<String>, v3::Error> {
        c.probe("SMEMBERS", std::slice::from_ref(&key.clone().into_bytes()))
            .await?;
        c.query(redis::cmd("SMEMBERS").arg(key)).await
    }

    pub async fn execute(
        mut c: Conn,
        command: String,
        args: Vec<v3::RedisParameter>,
    ) -> Result<Vec<v3::RedisResult>, v3::Error> {
        let texts: Vec<Vec<u8>> = args
            .iter()
            .map(|a| match a {
                v3::RedisParameter::Int64(n) => n.to_string().into_bytes(),
                v3::RedisParameter::Binary(b) => b.clone(),
            })
            .collect();
        c.probe(&command, &texts).await?;
        let mut cmd = redis::cmd(&command);
        for a in args {
            match a {
                v3::RedisParameter::Int64(n) => cmd.arg(n),
                v3::RedisParameter::Binary(b) => cmd.arg(b),
            };
        }
        let value: Value = c.query(&cmd).await?;
        let mut out = Vec::new();
        flatten(value, &mut out)?;
        Ok(out)
    }

    /// Spin's mapping of a reply onto `redis-result`s: arrays are flattened.
    fn flatten(value: Value, out: &mut Vec<v3::RedisResult>) -> Result<(), v3::Error> {
        match value {
            Value::Nil => out.push(v3::RedisResult::Nil),
            Value::Int(n) => out.push(v3::RedisResult::Int64(n)),
            Value::BulkString(b) => out.push(v3::RedisResult::Binary(b)),
            Value::SimpleString(s) => out.push(v3::RedisResult::Status(s)),
            Value::Okay => out.push(v3::RedisResult::Status("OK".into())),
            Value::Double(d) => out.push(v3::RedisResult::Binary(d.to_string().into_bytes())),
            Value::Boolean(b) => out.push(v3::RedisResult::Int64(i64::from(b))),
            // The number as Redis wrote it (this build has no big-integer type).
            Value::BigNumber(n) => out.push(v3::RedisResult::Binary(n)),
            Value::Array(items) | Value::Set(items) => {
                for v in items {
                    flatten(v, out)?;
                }
            }
            Value::ServerError(e) => return Err(command_error(RedisError::from(e))),
            other => {
                return Err(v3::Error::Other(format!(
                    "the reply cannot be returned as redis-result values: {other:?}"
                )));
            }
        }
        Ok(())
    }
}

impl Connection {
    fn conn(&self) -> Conn {
        match &self.dedicated {
            Some((c, _)) => Conn::dedicated(c.clone(), &self.budget),
            None => Conn::shared(self.shared.clone(), &self.budget),
        }
    }
}

/// The connection to run `execute(command, args)` on: the guest's dedicated
/// one, made now if the command needs it.
async fn execute_conn(
    view: &mut HostView<'_>,
    connection: &Resource<Connection>,
    command: &str,
    args: &[v3::RedisParameter],
) -> wasmtime::Result<Result<Conn, v3::Error>> {
    let needs = needs(command, args);
    let c = view.table.get(connection)?;
    match (needs, &c.dedicated) {
        (Needs::Refused, _) => Ok(Err(v3::Error::Other(format!(
            "{command} is not supported through execute: it would turn the connection into a subscriber or replica"
        )))),
        (Needs::Shared, _) | (Needs::Dedicated, Some(_)) => Ok(Ok(c.conn())),
        (Needs::Dedicated, None) => {
            let address = c.address.clone();
            let component = &view.host.component;
            match component.app.redis.dedicated(&component.id, &address).await {
                Ok(d) => {
                    let c = view.table.get_mut(connection)?;
                    c.dedicated = Some(d);
                    Ok(Ok(c.conn()))
                }
                Err(e) => Ok(Err(open_error_v3(e))),
            }
        }
    }
}

/// Adds the outbound Redis interfaces to `linker`.
pub fn link<T: HasHost>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    v1::add_to_linker::<T, HostData>(linker, T::host_view)?;
    v1_types::add_to_linker::<T, HostData>(linker, T::host_view)?;
    v2::add_to_linker::<T, HostData>(linker, T::host_view)?;
    v3::add_to_linker::<T, HostData>(linker, T::host_view)?;
    Ok(())
}

// ---- fermyon:spin/redis@2.0.0 ----

impl v2::Host for HostView<'_> {}

impl HostView<'_> {
    fn conn_of(&self, c: &Resource<Connection>) -> wasmtime::Result<Conn> {
        Ok(self.table.get(c)?.conn())
    }
}

impl v2::HostConnection for HostView<'_> {
    async fn open(
        &mut self,
        address: String,
    ) -> wasmtime::Result<Result<Resource<Connection>, v2::Error>> {
        if self.host.open_connections >= MAX_OPEN {
            return Ok(Err(v2::Error::TooManyConnections));
        }
        let component = self.host.component.clone();
        match open(&component, &address).await {
            Ok((address, shared)) => Ok(Ok(push(self, address, shared)?)),
            Err(e) => Ok(Err(to_v2(open_error_v3(e)))),
        }
    }

    async fn publish(
        &mut self,
        c: Resource<Connection>,
        channel: String,
        payload: Vec<u8>,
    ) -> wasmtime::Result<Result<(), v2::Error>> {
        let conn = self.conn_of(&c)?;
        Ok(ops::publish(conn, channel, payload).await.map_err(to_v2))
    }

    async fn get(
        &mut self,
        c: Resource<Connection>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, v2::Error>> {
        let conn = self.conn_of(&c)?;
        Ok(ops::get(conn, key).await.map_err(to_v2))
    }

    async fn set(
        &mut self,
        c: Resource<Connection>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), v2::Error>> {
        let conn = self.conn_of(&c)?;
        Ok(ops::set(conn, key, value).await.map_err(to_v2))
    }

    async fn incr(
        &mut self,
        c: Resource<Connection>,
        key: String,
    ) -> wasmtime::Result<Result<i64, v2::Error>> {
        let conn = self.conn_of(&c)?;
        Ok(ops::incr(conn, key).await.map_err(to_v2))
    }

    async fn del(
        &mut self,
        c: Resource<Connection>,
        keys: Vec<String>,
    ) -> wasmtime::Result<Result<u32, v2::Error>> {
        let conn = self.conn_of(&c)?;
        Ok(ops::del(conn, keys).await.map_err(to_v2))
    }

    async fn sadd(
        &mut self,
        c: Resource<Connection>,
        key: String,
        values: Vec<String>,
    ) -> wasmtime::Result<Result<u32, v2::Error>> {
        let conn = self.conn_of(&c)?;
        Ok(ops::sadd(conn, key, values).await.map_err(to_v2))
    }

    async fn smembers(
        &mut self,
        c: Resource<Connection>,
        key: String,
    ) -> wasmtime::Result<Result<Vec<String>, v2::Error>> {
        let conn = self.conn_of(&c)?;
        Ok(ops::smembers(conn, key).await.map_err(to_v2))
    }

    async fn srem(
        &mut self,
        c: Resource<Connection>,
        key: String,
        values: Vec<String>,
    ) -> wasmtime::Result<Result<u32, v2::Error>> {
        let conn = self.conn_of(&c)?;
        Ok(ops::srem(conn, key, values).await.map_err(to_v2))
    }

    async fn execute(
        &mut self,
        c: Resource<Connection>,
        command: String,
        arguments: Vec<v2::RedisParameter>,
    ) -> wasmtime::Result<Result<Vec<v2::RedisResult>, v2::Error>> {
        let args: Vec<v3::RedisParameter> = arguments.into_iter().map(param_v2).collect();
        let conn = match execute_conn(self, &c, &command, &args).await? {
            Ok(conn) => conn,
            Err(e) => return Ok(Err(to_v2(e))),
        };
        Ok(ops::execute(conn, command, args)
            .await
            .map(|r| r.into_iter().map(result_v2).collect())
            .map_err(to_v2))
    }

    async fn drop(&mut self, c: Resource<Connection>) -> wasmtime::Result<()> {
        close(self, c)
    }
}

/// Hands a new guest connection to the instance.
fn push(
    view: &mut HostView<'_>,
    address: RedisAddress,
    shared: Shared,
) -> wasmtime::Result<Resource<Connection>> {
    let r = view.table.push(Connection {
        address,
        shared,
        budget: view.host.budget.clone(),
        dedicated: None,
    })?;
    view.host.open_connections += 1;
    Ok(r)
}

/// Drops a guest connection (and its dedicated connection, if any).
fn close(view: &mut HostView<'_>, c: Resource<Connection>) -> wasmtime::Result<()> {
    view.table.delete(c)?;
    view.host.open_connections = view.host.open_connections.saturating_sub(1);
    Ok(())
}

fn param_v2(p: v2::RedisParameter) -> v3::RedisParameter {
    match p {
        v2::RedisParameter::Int64(n) => v3::RedisParameter::Int64(n),
        v2::RedisParameter::Binary(b) => v3::RedisParameter::Binary(b),
    }
}

fn result_v2(r: v3::RedisResult) -> v2::RedisResult {
    match r {
        v3::RedisResult::Nil => v2::RedisResult::Nil,
        v3::RedisResult::Status(s) => v2::RedisResult::Status(s),
        v3::RedisResult::Int64(n) => v2::RedisResult::Int64(n),
        v3::RedisResult::Binary(b) => v2::RedisResult::Binary(b),
    }
}

// ---- spin:redis/redis@3.0.0 (async) ----

impl v3::Host for HostView<'_> {}

impl v3::HostConnection for HostView<'_> {
    async fn drop(&mut self, c: Resource<Connection>) -> wasmtime::Result<()> {
        close(self, c)
    }
}

fn conn_v3<T>(
    accessor: &Accessor<T, HostData>,
    c: &Resource<Connection>,
) -> wasmtime::Result<Conn> {
    accessor.with(|mut access| access.get().conn_of(c))
}

impl<T: Send> v3::HostConnectionWithStore<T> for HostData {
    async fn open(
        accessor: &Accessor<T, Self>,
        address: String,
    ) -> wasmtime::Result<Result<Resource<Connection>, v3::Error>> {
        let (component, full) = accessor.with(|mut access| {
            let view = access.get();
            (
                view.host.component.clone(),
                view.host.open_connections >= MAX_OPEN,
            )
        });
        if full {
            return Ok(Err(v3::Error::TooManyConnections));
        }
        match open(&component, &address).await {
            Ok((address, shared)) => {
                accessor.with(|mut access| Ok(Ok(push(&mut access.get(), address, shared)?)))
            }
            Err(e) => Ok(Err(open_error_v3(e))),
        }
    }

    async fn publish(
        accessor: &Accessor<T, Self>,
        c: Resource<Connection>,
        channel: String,
        payload: Vec<u8>,
    ) -> wasmtime::Result<Result<(), v3::Error>> {
        let conn = conn_v3(accessor, &c)?;
        Ok(ops::publish(conn, channel, payload).await)
    }

    async fn get(
        accessor: &Accessor<T, Self>,
        c: Resource<Connection>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, v3::Error>> {
        let conn = conn_v3(accessor, &c)?;
        Ok(ops::get(conn, key).await)
    }

    async fn set(
        accessor: &Accessor<T, Self>,
        c: Resource<Connection>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), v3::Error>> {
        let conn = conn_v3(accessor, &c)?;
        Ok(ops::set(conn, key, value).await)
    }

    async fn incr(
        accessor: &Accessor<T, Self>,
        c: Resource<Connection>,
        key: String,
    ) -> wasmtime::Result<Result<i64, v3::Error>> {
        let conn = conn_v3(accessor, &c)?;
        Ok(ops::incr(conn, key).await)
    }

    async fn del(
        accessor: &Accessor<T, Self>,
        c: Resource<Connection>,
        keys: Vec<String>,
    ) -> wasmtime::Result<Result<u32, v3::Error>> {
        let conn = conn_v3(accessor, &c)?;
        Ok(ops::del(conn, keys).await)
    }

    async fn sadd(
        accessor: &Accessor<T, Self>,
        c: Resource<Connection>,
        key: String,
        values: Vec<String>,
    ) -> wasmtime::Result<Result<u32, v3::Error>> {
        let conn = conn_v3(accessor, &c)?;
        Ok(ops::sadd(conn, key, values).await)
    }

    async fn smembers(
        accessor: &Accessor<T, Self>,
        c: Resource<Connection>,
        key: String,
    ) -> wasmtime::Result<Result<Vec<String>, v3::Error>> {
        let conn = conn_v3(accessor, &c)?;
        Ok(ops::smembers(conn, key).await)
    }

    async fn srem(
        accessor: &Accessor<T, Self>,
        c: Resource<Connection>,
        key: String,
        values: Vec<String>,
    ) -> wasmtime::Result<Result<u32, v3::Error>> {
        let conn = conn_v3(accessor, &c)?;
        Ok(ops::srem(conn, key, values).await)
    }

    async fn execute(
        accessor: &Accessor<T, Self>,
        c: Resource<Connection>,
        command: String,
        arguments: Vec<v3::RedisParameter>,
    ) -> wasmtime::Result<Result<Vec<v3::RedisResult>, v3::Error>> {
        // Settle the connection inside the store, then send outside it.
        let needs = needs(&command, &arguments);
        let (address, current, component, budget) = accessor.with(|mut access| {
            let view = access.get();
            let c = view.table.get(&c)?;
            wasmtime::Result::<_>::Ok((
                c.address.clone(),
                c.dedicated.as_ref().map(|(d, _)| d.clone()),
                view.host.component.clone(),
                c.budget.clone(),
            ))
        })?;
        let conn = match (needs, current) {
            (Needs::Refused, _) => {
                return Ok(Err(v3::Error::Other(format!(
                    "{command} is not supported through execute: it would turn the connection into a subscriber or replica"
                ))));
            }
            (_, Some(d)) => Conn::dedicated(d, &budget),
            (Needs::Shared, None) => conn_v3(accessor, &c)?,
            (Needs::Dedicated, None) => {
                match component.app.redis.dedicated(&component.id, &address).await {
                    Ok(d) => {
                        let conn = d.0.clone();
                        accessor.with(|mut access| {
                            access
                                .get()
                                .table
                                .get_mut(&c)
                                .map(|c| c.dedicated = Some(d))
                        })?;
                        Conn::dedicated(conn, &budget)
                    }
                    Err(e) => return Ok(Err(open_error_v3(e))),
                }
            }
        };
        Ok(ops::execute(conn, command, arguments).await)
    }
}

// ---- fermyon:spin/redis (unversioned: an address per call) ----

impl v1_types::Host for HostView<'_> {}

impl HostView<'_> {
    /// The shared connection for one unversioned call.
    fn v1_conn(
        &self,
        address: &str,
    ) -> impl Future<Output = Result<Conn, v1_types::Error>> + use<> {
        let component = self.host.component.clone();
        let budget = self.host.budget.clone();
        let address = address.to_string();
        async move {
            open(&component, &address)
                .await
                .map(|(_, c)| Conn::shared(c, &budget))
                .map_err(|_| v1_types::Error::Error)
        }
    }
}

fn v1_err(_: v3::Error) -> v1_types::Error {
    v1_types::Error::Error
}

impl v1::Host for HostView<'_> {
    async fn publish(
        &mut self,
        address: String,
        channel: String,
        payload: Vec<u8>,
    ) -> wasmtime::Result<Result<(), v1_types::Error>> {
        Ok(match self.v1_conn(&address).await {
            Ok(c) => ops::publish(c, channel, payload).await.map_err(v1_err),
            Err(e) => Err(e),
        })
    }

    async fn get(
        &mut self,
        address: String,
        key: String,
    ) -> wasmtime::Result<Result<Vec<u8>, v1_types::Error>> {
        // The unversioned `get` has no `option`: a missing key is empty, as
        // in Spin.
        Ok(match self.v1_conn(&address).await {
            Ok(c) => ops::get(c, key)
                .await
                .map(Option::unwrap_or_default)
                .map_err(v1_err),
            Err(e) => Err(e),
        })
    }

    async fn set(
        &mut self,
        address: String,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), v1_types::Error>> {
        Ok(match self.v1_conn(&address).await {
            Ok(c) => ops::set(c, key, value).await.map_err(v1_err),
            Err(e) => Err(e),
        })
    }

    async fn incr(
        &mut self,
        address: String,
        key: String,
    ) -> wasmtime::Result<Result<i64, v1_types::Error>> {
        Ok(match self.v1_conn(&address).await {
            Ok(c) => ops::incr(c, key).await.map_err(v1_err),
            Err(e) => Err(e),
        })
    }

    async fn del(
        &mut self,
        address: String,
        keys: Vec<String>,
    ) -> wasmtime::Result<Result<i64, v1_types::Error>> {
        Ok(match self.v1_conn(&address).await {
            Ok(c) => ops::del(c, keys).await.map(i64::from).map_err(v1_err),
            Err(e) => Err(e),
        })
    }

    async fn sadd(
        &mut self,
        address: String,
        key: String,
        values: Vec<String>,
    ) -> wasmtime::Result<Result<i64, v1_types::Error>> {
        Ok(match self.v1_conn(&address).await {
            Ok(c) => ops::sadd(c, key, values)
                .await
                .map(i64::from)
                .map_err(v1_err),
            Err(e) => Err(e),
        })
    }

    async fn smembers(
        &mut self,
        address: String,
        key: String,
    ) -> wasmtime::Result<Result<Vec<String>, v1_types::Error>> {
        Ok(match self.v1_conn(&address).await {
            Ok(c) => ops::smembers(c, key).await.map_err(v1_err),
            Err(e) => Err(e),
        })
    }

    async fn srem(
        &mut self,
        address: String,
        key: String,
        values: Vec<String>,
    ) -> wasmtime::Result<Result<i64, v1_types::Error>> {
        Ok(match self.v1_conn(&address).await {
            Ok(c) => ops::srem(c, key, values)
                .await
                .map(i64::from)
                .map_err(v1_err),
            Err(e) => Err(e),
        })
    }

    async fn execute(
        &mut self,
        address: String,
        command: String,
        arguments: Vec<v1_types::RedisParameter>,
    ) -> wasmtime::Result<Result<Vec<v1_types::RedisResult>, v1_types::Error>> {
        let args: Vec<v3::RedisParameter> = arguments
            .into_iter()
            .map(|p| match p {
                v1_types::RedisParameter::Int64(n) => v3::RedisParameter::Int64(n),
                v1_types::RedisParameter::Binary(b) => v3::RedisParameter::Binary(b),
            })
            .collect();
        // Without a connection resource there is no state to keep: a
        // stateful or blocking command gets a connection for this call only.
        let conn = match needs(&command, &args) {
            Needs::Refused => return Ok(Err(v1_types::Error::Error)),
            Needs::Shared => match self.v1_conn(&address).await {
                Ok(c) => c,
                Err(e) => return Ok(Err(e)),
            },
            Needs::Dedicated => {
                let component = self.host.component.clone();
                let Ok((parsed, _)) = open(&component, &address).await else {
                    return Ok(Err(v1_types::Error::Error));
                };
                match component.app.redis.dedicated(&component.id, &parsed).await {
                    Ok((c, permit)) => {
                        let budget = self.host.budget.clone();
                        let results =
                            ops::execute(Conn::dedicated(c, &budget), command, args).await;
                        drop(permit);
                        return Ok(results
                            .map(|r| r.into_iter().map(result_v1).collect())
                            .map_err(v1_err));
                    }
                    Err(_) => return Ok(Err(v1_types::Error::Error)),
                }
            }
        };
        Ok(ops::execute(conn, command, args)
            .await
            .map(|r| r.into_iter().map(result_v1).collect())
            .map_err(v1_err))
    }
}

fn result_v1(r: v3::RedisResult) -> v1_types::RedisResult {
    match r {
        v3::RedisResult::Nil => v1_types::RedisResult::Nil,
        v3::RedisResult::Status(s) => v1_types::RedisResult::Status(s),
        v3::RedisResult::Int64(n) => v1_types::RedisResult::Int64(n),
        v3::RedisResult::Binary(b) => v1_types::RedisResult::Binary(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stateful_and_blocking_commands_get_a_connection_of_their_own() {
        let none: &[v3::RedisParameter] = &[];
        assert_eq!(needs("incr", none), Needs::Shared);
        assert_eq!(needs("XREAD", none), Needs::Shared);
        for c in ["multi", "EXEC", "select", "BLPOP", "wait", "client"] {
            assert_eq!(needs(c, none), Needs::Dedicated, "{c}");
        }
        let block = [
            v3::RedisParameter::Binary(b"block".to_vec()),
            v3::RedisParameter::Int64(0),
        ];
        assert_eq!(needs("xreadgroup", &block), Needs::Dedicated);
        for c in ["subscribe", "PSUBSCRIBE", "monitor"] {
            assert_eq!(needs(c, none), Needs::Refused, "{c}");
        }
    }

    #[test]
    fn type_errors_are_told_apart() {
        let wrongtype = RedisError::from((
            ErrorKind::UnexpectedReturnType,
            "response was of incompatible type",
        ));
        assert!(matches!(command_error(wrongtype), v3::Error::TypeError));
        let other = RedisError::from((ErrorKind::Io, "connection reset"));
        assert!(matches!(command_error(other), v3::Error::Other(_)));
    }
}
