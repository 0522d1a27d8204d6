//! Where Redis connections are made: a single server or a Redis Cluster,
//! with the TLS CA file, bounded connect and response times, and error
//! descriptions that never carry a password.
//!
//! An [`Endpoint`] is what a trigger connects to. [`Conn`] is a command
//! connection to it, either kind, usable with every `redis` command API
//! (a cluster connection routes each command to its key's node and follows
//! `MOVED`/`ASK` redirects and failovers by itself); it is cheap to clone.
//! [`Endpoint::cluster_client`] builds the RESP3 client that cluster pub/sub needs.
//!
//! Not owned here: what is done on the connections (`pubsub`, `stream`,
//! `list`), making them again when they break (`reconnect`).

use crate::address::RedisAddress;
use crate::manifest::Trigger;
use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster::{ClusterClient, ClusterClientBuilder};
use redis::cluster_async::ClusterConnection;
use redis::{AsyncConnectionConfig, Cmd, Pipeline, RedisError, RedisFuture, RedisResult, Value};
use std::path::PathBuf;
use std::time::Duration;

/// How long connecting (and authenticating) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a command's answer may take.
pub const RESPONSE_TIMEOUT: Duration = Duration::from_secs(10);

/// A Redis server or cluster to connect to.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Endpoint {
    /// One address, or the seed nodes of a cluster.
    pub nodes: Vec<RedisAddress>,
    pub cluster: bool,
    pub tls_ca_file: Option<PathBuf>,
}

impl Endpoint {
    /// The endpoint trigger `t` reads from.
    pub fn of(t: &Trigger, tls_ca_file: Option<PathBuf>) -> Endpoint {
        match &t.cluster {
            Some(nodes) => Endpoint {
                nodes: nodes.clone(),
                cluster: true,
                tls_ca_file,
            },
            None => Endpoint::single(t.address.clone(), tls_ca_file),
        }
    }

    /// The endpoint of a single server.
    pub fn single(address: RedisAddress, tls_ca_file: Option<PathBuf>) -> Endpoint {
        Endpoint {
            nodes: vec![address],
            cluster: false,
            tls_ca_file,
        }
    }

    /// As logs and handlers show it: no credentials.
    pub fn shown(&self) -> String {
        let nodes: Vec<&str> = self.nodes.iter().map(RedisAddress::redacted).collect();
        nodes.join(",")
    }

    /// What identifies the endpoint's connections (credentials included):
    /// triggers with the same key share a subscription.
    pub fn key(&self) -> String {
        let nodes: Vec<&str> = self
            .nodes
            .iter()
            .map(RedisAddress::connection_url)
            .collect();
        format!(
            "{}{}",
            if self.cluster { "cluster:" } else { "" },
            nodes.join(",")
        )
    }

    /// The address of a single server (a cluster's first seed node).
    pub fn address(&self) -> &RedisAddress {
        self.nodes
            .first()
            .expect("invariant: the manifest gives every endpoint a node")
    }

    /// The TLS CA file's contents, for a `rediss://` endpoint that has one.
    pub fn root_cert(&self) -> RedisResult<Option<Vec<u8>>> {
        let Some(ca) = &self.tls_ca_file else {
            return Ok(None);
        };
        if !self.address().is_tls() {
            return Ok(None);
        }
        std::fs::read(ca).map(Some).map_err(|e| {
            RedisError::from((
                redis::ErrorKind::Io,
                "cannot read the TLS CA file",
                format!("{:?}: {e}", ca.display().to_string()),
            ))
        })
    }

    /// A client for one node (the first): for a single server, and for pub/sub.
    pub fn client(&self) -> RedisResult<redis::Client> {
        let url = self.address().connection_url();
        match self.root_cert()? {
            Some(root_cert) => redis::Client::build_with_tls(
                url,
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(root_cert),
                },
            ),
            None => redis::Client::open(url),
        }
    }

    /// A cluster client for commands, or with `push` for pub/sub (RESP3).
    pub fn cluster_client(
        &self,
        response_timeout: Duration,
        push: Option<tokio::sync::mpsc::UnboundedSender<redis::PushInfo>>,
    ) -> RedisResult<ClusterClient> {
        let mut b = ClusterClientBuilder::new(self.nodes.iter().map(RedisAddress::connection_url))
            .connection_timeout(CONNECT_TIMEOUT)
            .response_timeout(response_timeout);
        if let Some(root_cert) = self.root_cert()? {
            b = b.certs(redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(root_cert),
            });
        }
        if let Some(push) = push {
            b = b
                .use_protocol(redis::ProtocolVersion::RESP3)
                .push_sender(push);
        }
        b.build()
    }

    /// A command connection whose answers may take up to `response_timeout`
    /// (longer than any `BLOCK` sent on it).
    pub async fn connect(&self, response_timeout: Duration) -> RedisResult<Conn> {
        let connect = async {
            if self.cluster {
                let client = self.cluster_client(response_timeout, None)?;
                Ok(Conn::Cluster(client.get_async_connection().await?))
            } else {
                let config = AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(CONNECT_TIMEOUT))
                    .set_response_timeout(Some(response_timeout));
                let c = self
                    .client()?
                    .get_multiplexed_async_connection_with_config(&config)
                    .await?;
                Ok(Conn::Single(c))
            }
        };
        match tokio::time::timeout(CONNECT_TIMEOUT, connect).await {
            Ok(r) => r,
            Err(_) => Err(RedisError::from((
                redis::ErrorKind::Io,
                "connecting took too long",
                format!("more than {CONNECT_TIMEOUT:?}"),
            ))),
        }
    }
}

/// A command connection to a single server or a cluster.
#[derive(Clone)]
pub enum Conn {
    Single(MultiplexedConnection),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Single(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Single(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

/// Describes a redis error without ever including a URL (which may hold a
/// password).
pub fn describe(e: &RedisError) -> String {
    if e.kind() == redis::ErrorKind::AuthenticationFailed || e.to_string().contains("WRONGPASS") {
        return "authentication failed: check the user and password in the address".into();
    }
    let text = e.to_string();
    match text.find("://") {
        Some(_) => format!("{:?} error", e.kind()),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_endpoint_is_shown_without_credentials() {
        let e = Endpoint {
            nodes: vec![
                RedisAddress::parse("redis://u:secret@10.0.0.1:7000").unwrap(),
                RedisAddress::parse("redis://u:secret@10.0.0.2:7000").unwrap(),
            ],
            cluster: true,
            tls_ca_file: None,
        };
        assert_eq!(e.shown(), "redis://10.0.0.1:7000,redis://10.0.0.2:7000");
        assert!(e.key().starts_with("cluster:"));
        let err = RedisError::from((
            redis::ErrorKind::Io,
            "boom",
            "redis://u:secret@h".to_string(),
        ));
        assert!(!describe(&err).contains("secret"));
    }
}
