//! The normalised application: what both manifest versions mean.
//!
//! Everything here is validated: sources exist, channels are non-empty,
//! addresses parse, every trigger names a component. The rest of the program
//! never looks at the manifest's text again.

use crate::address::RedisAddress;
use crate::settings::AppSettings;
use std::path::PathBuf;
use std::time::Duration;

/// A validated application.
#[derive(Debug, Clone)]
pub struct App {
    /// The manifest file.
    pub manifest: PathBuf,
    /// The folder relative paths are resolved against.
    pub dir: PathBuf,
    pub name: String,
    pub components: Vec<Component>,
    pub triggers: Vec<Trigger>,
    pub settings: AppSettings,
}

/// One `[[component]]` (v1) or `[component.<id>]` (v2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Component {
    pub id: String,
    /// Absolute or manifest-relative path resolved against the manifest's
    /// folder; the file exists.
    pub source: PathBuf,
    /// In file order.
    pub environment: Vec<(String, String)>,
    pub files: Vec<FileMapping>,
    /// Globs relative to the manifest's folder: files matching one are not
    /// mounted even when a `files` entry covers them (as in Spin).
    pub exclude_files: Vec<String>,
    /// What the component may use of Spin's host APIs.
    pub host_apis: HostApis,
    /// How `spin-redis build` makes its source, when the manifest says.
    pub build: Option<super::build::BuildConfig>,
}

/// A component's grants for Spin's host APIs (see `host`): validated, with
/// templates expanded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostApis {
    /// Where outbound Redis and HTTP may connect; empty: nowhere.
    pub allowed_outbound_hosts: super::allowed_hosts::AllowedHosts,
    /// The key-value store labels it may open.
    pub key_value_stores: Vec<String>,
    /// Its variables, expanded (values are never shown).
    pub variables: super::component_variables::ComponentVariables,
}

/// One entry of a component's `files`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileMapping {
    /// A glob relative to the manifest's folder; matching files are mounted
    /// at `/` under their relative path. A plain path naming a folder (no
    /// glob characters) mounts the whole folder the same way, as in Spin;
    /// folders matched by a glob (`assets/**`) mount nothing by themselves.
    Pattern(String),
    /// A host folder (resolved) mounted at `destination`.
    Directory {
        source: PathBuf,
        destination: String,
    },
}

/// One trigger: messages on `channel` (or on the channels matching a
/// pattern, or entries of a stream, or items of a list) at `address` go to
/// `component`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Trigger {
    /// The server; with `cluster`, the first of its seed nodes.
    pub address: RedisAddress,
    /// Where the deliveries come from, as logs and metrics name it: the
    /// channel, the pattern of a pattern trigger, or the stream or list key.
    pub channel: String,
    /// `channel` is a pattern (`pattern = "..."`): subscribed with
    /// `PSUBSCRIBE`, its handlers see `REDIS_PATTERN` and the channel each
    /// message was published to.
    pub pattern: bool,
    pub component: String,
    pub executor: ExecutorConfig,
    /// How many messages of this trigger may run at once; `Some(1)` gives
    /// strict arrival order. `None`: only the global bound applies.
    pub max_concurrency: Option<usize>,
    /// `Some` for a stream trigger (`stream = "..."`): entries are read
    /// through a consumer group instead of a subscription.
    pub stream: Option<StreamTrigger>,
    /// `Some` for a list trigger (`list = "..."`): items are taken from the
    /// list `channel` as from a reliable queue.
    pub list: Option<ListTrigger>,
    /// `Some` with `cluster = true`: the Redis Cluster seed nodes, `address`
    /// first. `None`: a single server.
    pub cluster: Option<Vec<RedisAddress>>,
    /// `SSUBSCRIBE` instead of `SUBSCRIBE` (cluster channels only).
    pub sharded: bool,
}

impl Trigger {
    /// The manifest key naming this trigger's source: see [`source_kind`].
    pub fn kind(&self) -> &'static str {
        source_kind(self.stream.is_some(), self.list.is_some(), self.pattern)
    }
}

/// The manifest key that names a source of this kind (`stream`, `list`,
/// `pattern` or `channel`): where errors point and what logs call it.
pub fn source_kind(stream: bool, list: bool, pattern: bool) -> &'static str {
    if stream {
        "stream"
    } else if list {
        "list"
    } else if pattern {
        "pattern"
    } else {
        "channel"
    }
}

/// The consumer-group settings of a stream trigger (see `source::stream`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StreamTrigger {
    /// The consumer group; default `<app name>.<component id>`.
    pub group: String,
    /// This process's consumer name; `None`: `<hostname>-<pid>`, settled at
    /// start-up.
    pub consumer: Option<String>,
    /// The entry field handed to the handler; default `payload`.
    pub field: String,
    /// Where a group created by spin-redis starts: `0` (the whole stream,
    /// the default), `$` (only new entries) or an entry id.
    pub start: String,
    /// Attempts before an entry is dead-lettered; default 5.
    pub max_deliveries: u32,
    /// The dead-letter stream; default `<stream>:dead`.
    pub dead_letter: String,
    /// How long an entry may stay pending on a consumer before another takes
    /// it over; `None`: the default, settled against the timeout in force.
    pub claim_idle: Option<Duration>,
}

/// The settings of a list trigger (see `source::list`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ListTrigger {
    /// This process's consumer name (its processing list and heartbeat);
    /// `None`: `<hostname>-<pid>`, settled at start-up.
    pub consumer: Option<String>,
    /// Attempts before an item is dead-lettered; default 5.
    pub max_deliveries: u32,
    /// The dead-letter list; default `<list>:dead`.
    pub dead_letter: String,
    /// How long a consumer's heartbeat lives: a consumer silent this long is
    /// taken for dead, and its processing list is handed back to the queue.
    pub claim_idle: Duration,
}

/// Which executor runs a component: a closed set.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ExecutorConfig {
    /// The `spin` executor (Spin's default).
    Spin,
    /// The `wagi` executor for WASI preview1 core modules and WASI commands.
    Wagi {
        entrypoint: String,
        /// The argv template, split on whitespace; empty = `[component id]`.
        argv: Vec<String>,
    },
}

impl ExecutorConfig {
    pub fn name(&self) -> &'static str {
        match self {
            ExecutorConfig::Spin => "spin",
            ExecutorConfig::Wagi { .. } => "wagi",
        }
    }
}
