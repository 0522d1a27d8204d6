//! The settings in force ([`RunConfig`]), settled once at start-up from the
//! flags given ([`Overrides`]) over the manifest's values ([`AppSettings`])
//! over the defaults (`settings`). This is the one place that order is
//! written.
//!
//! Not owned here: the defaults and ranges (`settings`, `ranges`), reading
//! the flags (`cli`) and the manifest (`manifest`).

use super::*;
use spin_redis_sandbox::Limits;
use std::path::PathBuf;
use std::time::Duration;

/// Values given on the command line; `None` = not given. `app` holds the
/// flags that override a manifest value.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub app: AppSettings,
    pub queue_capacity: Option<usize>,
    pub max_queued_bytes: Option<u64>,
    pub drain_timeout: Option<Duration>,
    pub max_host_reply: Option<u64>,
    pub max_host_listing: Option<u64>,
    pub max_host_received: Option<u64>,
    pub max_redis_addresses: Option<usize>,
    pub max_redis_dedicated: Option<usize>,
}

/// The bounds of the host APIs in force (see `host::reply_bounds` and
/// `host::redis::quota`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostLimits {
    /// One reply, value or body handed to a guest.
    pub max_reply: u64,
    /// Keys in one key-value listing.
    pub max_listing: u64,
    /// All that one message receives through the host APIs.
    pub max_received: u64,
    /// Pooled outbound Redis addresses per component.
    pub pooled_per_component: usize,
    /// Dedicated outbound Redis connections per component at once.
    pub dedicated_per_component: usize,
}

impl Default for HostLimits {
    fn default() -> Self {
        HostLimits::resolve(&Overrides::default())
    }
}

impl HostLimits {
    /// The flags given, else the defaults.
    fn resolve(flags: &Overrides) -> HostLimits {
        HostLimits {
            max_reply: flags.max_host_reply.unwrap_or(DEFAULT_MAX_HOST_REPLY),
            max_listing: flags.max_host_listing.unwrap_or(DEFAULT_MAX_HOST_LISTING),
            max_received: flags.max_host_received.unwrap_or(DEFAULT_MAX_HOST_RECEIVED),
            pooled_per_component: flags
                .max_redis_addresses
                .unwrap_or(DEFAULT_MAX_REDIS_ADDRESSES),
            dedicated_per_component: flags
                .max_redis_dedicated
                .unwrap_or(DEFAULT_MAX_REDIS_DEDICATED),
        }
    }
}

/// The settings in force.
#[derive(Debug, Clone)]
pub struct RunConfig {
    pub limits: Limits,
    pub max_payload: u64,
    pub max_concurrency: usize,
    /// Messages per trigger queue; `None` = bounded by memory only.
    pub queue_capacity: Option<usize>,
    pub max_queued_bytes: u64,
    pub drain_timeout: Duration,
    pub tls_ca_file: Option<PathBuf>,
    /// The bounds of the host APIs.
    pub host_limits: HostLimits,
}

impl RunConfig {
    /// A flag given wins over the manifest's value, which wins over the
    /// default.
    pub fn resolve(manifest: &AppSettings, flags: &Overrides) -> RunConfig {
        let app = &flags.app;
        let max_output = app
            .max_output
            .or(manifest.max_output)
            .unwrap_or(DEFAULT_MAX_OUTPUT);
        let max_output = usize::try_from(max_output).unwrap_or(usize::MAX);
        let max_memory = app
            .max_memory
            .or(manifest.max_memory)
            .unwrap_or(DEFAULT_MAX_MEMORY);
        RunConfig {
            limits: Limits {
                timeout: app.timeout.or(manifest.timeout).unwrap_or(DEFAULT_TIMEOUT),
                max_memory_bytes: usize::try_from(max_memory).unwrap_or(usize::MAX),
                max_stdout_bytes: max_output,
                max_stderr_bytes: max_output,
            },
            max_payload: app
                .max_payload
                .or(manifest.max_payload)
                .unwrap_or(DEFAULT_MAX_PAYLOAD),
            max_concurrency: app
                .max_concurrency
                .or(manifest.max_concurrency)
                .unwrap_or(DEFAULT_MAX_CONCURRENCY)
                .max(1),
            queue_capacity: flags.queue_capacity.map(|n| n.max(1)),
            max_queued_bytes: flags.max_queued_bytes.unwrap_or(DEFAULT_MAX_QUEUED_BYTES),
            drain_timeout: flags.drain_timeout.unwrap_or(DEFAULT_DRAIN_TIMEOUT),
            tls_ca_file: app
                .tls_ca_file
                .clone()
                .or_else(|| manifest.tls_ca_file.clone()),
            host_limits: HostLimits::resolve(flags),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn flags_win_over_manifest_which_wins_over_defaults() {
        let manifest = AppSettings {
            timeout: Some(Duration::from_secs(5)),
            max_payload: Some(100),
            ..Default::default()
        };
        let flags = Overrides {
            app: AppSettings {
                timeout: Some(Duration::from_secs(1)),
                ..Default::default()
            },
            ..Default::default()
        };
        let c = RunConfig::resolve(&manifest, &flags);
        assert_eq!(c.limits.timeout, Duration::from_secs(1));
        assert_eq!(c.max_payload, 100);
        assert_eq!(c.limits.max_memory_bytes as u64, DEFAULT_MAX_MEMORY);
        assert_eq!(c.max_concurrency, DEFAULT_MAX_CONCURRENCY);
    }
}
