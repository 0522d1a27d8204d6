//! The runtime settings in force: documented defaults, overridden by the
//! manifest's redis trigger table, overridden by command-line flags.
//!
//! | setting | default | manifest key | flag |
//! |---|---|---|---|
//! | per-message timeout | 30 s | `timeout = "30s"` | `--timeout` |
//! | linear memory per instance | 256 MiB | `max_memory = "256MiB"` | `--max-memory` |
//! | stdout / stderr kept per message | 4 MiB each | `max_output = "4MiB"` | `--max-output` |
//! | largest payload run | 16 MiB | `max_payload = "16MiB"` | `--max-payload` |
//! | handlers running at once | 64 | `max_concurrency = 64` | `--max-concurrency` |
//! | queued messages per trigger | no count limit | | `--queue-capacity` |
//! | memory of queued messages, all triggers | 128 MiB | | `--max-queued-bytes` |
//! | shutdown drain deadline | 10 s | | `--drain-timeout` |
//! | one reply, value or body a host call hands a guest | 16 MiB | | `--max-host-reply` |
//! | keys in one key-value listing | 10 000 | | `--max-host-listing` |
//! | all one message receives through the host APIs | 64 MiB | | `--max-host-received` |
//! | pooled outbound Redis addresses per component | 16 | | `--max-redis-addresses` |
//! | dedicated outbound Redis connections per component | 16 | | `--max-redis-dedicated` |

use crate::host::reply_bounds::HostLimits;
use crate::manifest::Settings;
use spin_redis_sandbox::Limits;
use std::path::PathBuf;
use std::time::Duration;

pub const DEFAULT_TIMEOUT: Duration = crate::manifest::ranges::DEFAULT_TIMEOUT;
pub const DEFAULT_MAX_MEMORY: u64 = 256 << 20;
pub const DEFAULT_MAX_OUTPUT: u64 = 4 << 20;
pub const DEFAULT_MAX_PAYLOAD: u64 = 16 << 20;
pub const DEFAULT_MAX_CONCURRENCY: usize = 64;
/// The queues are bounded by memory, not by a message count: 128 MiB holds
/// a backlog of 900 000 small messages (see `dispatch::QUEUED_OVERHEAD`).
pub const DEFAULT_MAX_QUEUED_BYTES: u64 = 128 << 20;
pub const DEFAULT_DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Values given on the command line; `None` = not given.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub timeout: Option<Duration>,
    pub max_memory: Option<u64>,
    pub max_output: Option<u64>,
    pub max_payload: Option<u64>,
    pub max_concurrency: Option<usize>,
    pub queue_capacity: Option<usize>,
    pub max_queued_bytes: Option<u64>,
    pub drain_timeout: Option<Duration>,
    pub tls_ca_file: Option<PathBuf>,
    pub max_host_reply: Option<u64>,
    pub max_host_listing: Option<u64>,
    pub max_host_received: Option<u64>,
    pub max_redis_addresses: Option<usize>,
    pub max_redis_dedicated: Option<usize>,
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
    /// The bounds of the host APIs (defaults in `host::reply_bounds`).
    pub host_limits: HostLimits,
    /// The runtime config file and state folder (key-value stores); set by
    /// `prepare::setup` from `--runtime-config-file` and `--state-dir`.
    pub host: crate::host::runtime_config::HostConfig,
}

impl RunConfig {
    pub fn resolve(manifest: &Settings, flags: &Overrides) -> RunConfig {
        let max_output = flags
            .max_output
            .or(manifest.max_output)
            .unwrap_or(DEFAULT_MAX_OUTPUT);
        let max_output = usize::try_from(max_output).unwrap_or(usize::MAX);
        RunConfig {
            limits: Limits {
                timeout: flags
                    .timeout
                    .or(manifest.timeout)
                    .unwrap_or(DEFAULT_TIMEOUT),
                max_memory_bytes: usize::try_from(
                    flags
                        .max_memory
                        .or(manifest.max_memory)
                        .unwrap_or(DEFAULT_MAX_MEMORY),
                )
                .unwrap_or(usize::MAX),
                max_stdout_bytes: max_output,
                max_stderr_bytes: max_output,
            },
            max_payload: flags
                .max_payload
                .or(manifest.max_payload)
                .unwrap_or(DEFAULT_MAX_PAYLOAD),
            max_concurrency: flags
                .max_concurrency
                .or(manifest.max_concurrency)
                .unwrap_or(DEFAULT_MAX_CONCURRENCY)
                .max(1),
            queue_capacity: flags.queue_capacity.map(|n| n.max(1)),
            max_queued_bytes: flags.max_queued_bytes.unwrap_or(DEFAULT_MAX_QUEUED_BYTES),
            drain_timeout: flags.drain_timeout.unwrap_or(DEFAULT_DRAIN_TIMEOUT),
            tls_ca_file: flags
                .tls_ca_file
                .clone()
                .or_else(|| manifest.tls_ca_file.clone()),
            host_limits: host_limits(flags),
            host: Default::default(),
        }
    }
}

/// The host APIs' bounds: the flags given, else the defaults.
fn host_limits(flags: &Overrides) -> HostLimits {
    let d = HostLimits::default();
    HostLimits {
        max_reply: flags.max_host_reply.unwrap_or(d.max_reply),
        max_listing: flags.max_host_listing.unwrap_or(d.max_listing),
        max_received: flags.max_host_received.unwrap_or(d.max_received),
        pooled_per_component: flags.max_redis_addresses.unwrap_or(d.pooled_per_component),
        dedicated_per_component: flags
            .max_redis_dedicated
            .unwrap_or(d.dedicated_per_component),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_win_over_manifest_which_wins_over_defaults() {
        let manifest = Settings {
            timeout: Some(Duration::from_secs(5)),
            max_payload: Some(100),
            ..Default::default()
        };
        let flags = Overrides {
            timeout: Some(Duration::from_secs(1)),
            ..Default::default()
        };
        let c = RunConfig::resolve(&manifest, &flags);
        assert_eq!(c.limits.timeout, Duration::from_secs(1));
        assert_eq!(c.max_payload, 100);
        assert_eq!(c.limits.max_memory_bytes as u64, DEFAULT_MAX_MEMORY);
        assert_eq!(c.max_concurrency, DEFAULT_MAX_CONCURRENCY);
    }
}
