//! The app's pool of outbound Redis connections: one shared connection per
//! owner and address (made on first use, a `ConnectionManager` that
//! reconnects by itself), and the dedicated connections a guest's stateful
//! or blocking commands move onto, counted per component (see `quota`).
//!
//! A component's connection goes to the one server its address names:
//! cluster mode is never detected for it. Only an operator's key-value store
//! ([`Owner::Operator`]) gets a cluster connection when its server says
//! `cluster_enabled:1`.
//!
//! Not owned here: checking a guest's address (`super::open`), sending
//! commands (`target`), the guest's connection resource (`super`).

use super::quota::{Owner, OwnerKey, pool_key};
use crate::address::RedisAddress;
use crate::host::destination;
use crate::settings::HostLimits;
use redis::aio::{
    ConnectionLike, ConnectionManager, ConnectionManagerConfig, MultiplexedConnection,
};
use redis::cluster_async::ClusterConnection;
use redis::{AsyncConnectionConfig, Cmd, RedisError, Value};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OnceCell, OwnedSemaphorePermit, Semaphore};

/// How long connecting and authenticating may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The app's outbound Redis connections.
pub struct Pool {
    /// CA certificates (PEM) that verify `rediss://` servers, when given.
    root_cert: Option<Vec<u8>>,
    /// Owner → connection (see `quota::pool_key`) → its connection,
    /// made on first use.
    shared: Mutex<HashMap<OwnerKey, Owned>>,
    /// Each component's dedicated connections (at most
    /// `dedicated_per_component` at once).
    dedicated: Mutex<HashMap<String, Arc<Semaphore>>>,
    /// The quotas per component.
    pooled_per_component: usize,
    dedicated_per_component: usize,
}

/// One owner's pooled connections, by `quota::pool_key`.
type Owned = HashMap<String, Arc<OnceCell<Pooled>>>;

/// The shared connection of one address: to a single server, or to the
/// Redis Cluster the address is a node of.
#[derive(Clone)]
pub enum Pooled {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Pooled {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> redis::RedisFuture<'a, Value> {
        match self {
            Pooled::Single(c) => c.req_packed_command(cmd),
            Pooled::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<Value>> {
        match self {
            Pooled::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Pooled::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Pooled::Single(c) => c.get_db(),
            Pooled::Cluster(c) => c.get_db(),
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
    ) -> Result<Pooled, OpenError> {
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
    ) -> Result<Pooled, OpenError> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_number_of_retries(2);
        let mut single = ConnectionManager::new_with_config(self.client(address)?, config)
            .await
            .map_err(|e| connect_error(address, &e))?;
        if !follow_cluster {
            return Ok(Pooled::Single(single));
        }
        // A store on a cluster node: commands must go to their keys' nodes.
        let info: String = redis::cmd("INFO")
            .arg("cluster")
            .query_async(&mut single)
            .await
            .unwrap_or_default();
        if !info.contains("cluster_enabled:1") {
            return Ok(Pooled::Single(single));
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
        Ok(Pooled::Cluster(cluster))
    }

    /// A connection of its own to `address` for `component`, counted
    /// against its `dedicated_per_component` until dropped.
    pub(super) async fn dedicated(
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
