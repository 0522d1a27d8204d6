//! The command line: clap definitions. Each flag's doc comment is its
//! `--help` text; each setting flag is checked against its range (see
//! `settings::ranges`) as it is parsed, and [`Common::overrides`] and
//! [`UpArgs::overrides`] hand the flags given to `settings`.

use crate::settings::ranges::{self, DurationRange, NumberRange};
use crate::settings::{AppSettings, Overrides};
use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;
use std::time::Duration;

/// Run WebAssembly handlers for every message on a Redis channel.
#[derive(Debug, Parser)]
#[command(
    name = "spin-redis",
    version,
    about,
    long_about = None,
    propagate_version = true,
    after_help = "Exit codes: 0 ok; 1 runtime failure (for `invoke`: the handler failed); \
                  2 usage, manifest or handler-file problem found at start-up.\n\
                  Diagnostics go to stderr; SPIN_REDIS_LOG=debug shows more."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// How the runtime's own log lines are written to stderr: `text` for
    /// people, `json` for log pipelines (one JSON object per line). Handler
    /// output is never reformatted.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// The format of the runtime's log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Subscribe to every channel of the manifest and run its handlers until
    /// SIGINT or SIGTERM; SIGHUP reloads the manifest.
    Up(UpArgs),
    /// Build and run the app like `up`, and rebuild and swap in a component
    /// when its files (`build.watch`, or its wasm source) change.
    Watch(UpArgs),
    /// Run one component once on one payload, without Redis, and print its
    /// output and result.
    Invoke(InvokeArgs),
    /// Validate the manifest and compile every component (filling the
    /// cache) without connecting to Redis; print one line per trigger.
    Check(CheckArgs),
    /// Make a new app from a template (see `spin-redis templates list`).
    New(crate::templates::NewArgs),
    /// The templates `spin-redis new` makes apps from.
    Templates(crate::templates::TemplatesArgs),
    /// Run each component's build command (`[component.<id>.build]`).
    Build(crate::build::BuildArgs),
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub common: Common,
}

/// Options shared by `up` and `invoke`.
#[derive(Debug, Clone, Args)]
pub struct Common {
    #[command(flatten)]
    pub from: crate::build::ManifestFrom,

    /// Set an environment variable for every handler (repeatable); replaces
    /// a value from the manifest.
    #[arg(short = 'e', long = "env", value_name = "KEY=VALUE", value_parser = parse_env)]
    pub env: Vec<(String, String)>,

    /// Per-message deadline, such as 30s or 500ms [default: 30s].
    #[arg(long, value_name = "DURATION", value_parser = duration("--timeout", &ranges::TIMEOUT))]
    pub timeout: Option<Duration>,

    /// Linear-memory cap per handler instance, such as 256MiB [default: 256MiB].
    #[arg(long, value_name = "SIZE", value_parser = size("--max-memory", &ranges::MAX_MEMORY))]
    pub max_memory: Option<u64>,

    /// Bytes of stdout and of stderr kept per message; the rest is cut and the
    /// cut noted [default: 4MiB].
    #[arg(long, value_name = "SIZE", value_parser = size("--max-output", &ranges::MAX_OUTPUT))]
    pub max_output: Option<u64>,

    /// The largest reply, value or body one host call hands a component
    /// (an outbound Redis reply, a key-value value, a fermyon:spin/http
    /// body); larger ones fail with the interface's error [default: 16MiB].
    #[arg(long, value_name = "SIZE", value_parser = size("--max-host-reply", &ranges::MAX_HOST_REPLY))]
    pub max_host_reply: Option<u64>,

    /// Keys one key-value listing (get-keys) may return [default: 10000].
    #[arg(long, value_name = "N", value_parser = count("--max-host-listing", &ranges::MAX_HOST_LISTING))]
    pub max_host_listing: Option<u64>,

    /// All that one message may receive through the host APIs [default: 64MiB].
    #[arg(long, value_name = "SIZE", value_parser = size("--max-host-received", &ranges::MAX_HOST_RECEIVED))]
    pub max_host_received: Option<u64>,

    /// Outbound Redis addresses one component may keep pooled connections
    /// to [default: 16].
    #[arg(long, value_name = "N", value_parser = count("--max-redis-addresses", &ranges::MAX_REDIS_CONNECTIONS))]
    pub max_redis_addresses: Option<u64>,

    /// Dedicated outbound Redis connections (MULTI, BLPOP...) one component
    /// may hold at once [default: 16].
    #[arg(long, value_name = "N", value_parser = count("--max-redis-dedicated", &ranges::MAX_REDIS_CONNECTIONS))]
    pub max_redis_dedicated: Option<u64>,

    /// Folder of the compiled-code cache [default: $SPIN_REDIS_CACHE_DIR,
    /// $XDG_CACHE_HOME/spin-redis or ~/.cache/spin-redis].
    #[arg(long, value_name = "DIR")]
    pub cache_dir: Option<PathBuf>,

    /// Do not use the compiled-code cache.
    #[arg(long)]
    pub no_cache: bool,

    /// Spin's runtime config file: key-value stores
    /// (`[key_value_store.<label>]` with type = "spin" or "redis") and
    /// `state_dir`.
    #[arg(long, value_name = "FILE")]
    pub runtime_config_file: Option<PathBuf>,

    /// The state folder, where the default key-value store lives
    /// (sqlite_key_value.db) [default: .spin beside the manifest].
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct UpArgs {
    #[command(flatten)]
    pub common: Common,

    /// Folder for the component logs [default: .spin/logs beside the manifest].
    #[arg(short = 'L', long = "log-dir", value_name = "DIR")]
    pub log_dir: Option<PathBuf>,

    /// Do not echo handler output to the terminal (the log files still get it).
    #[arg(short, long)]
    pub quiet: bool,

    /// Messages larger than this are logged and skipped [default: 16MiB].
    #[arg(long, value_name = "SIZE", value_parser = size("--max-payload", &ranges::MAX_PAYLOAD))]
    pub max_payload: Option<u64>,

    /// Handlers running at once across the app [default: 64].
    #[arg(long, value_name = "N", value_parser = count("--max-concurrency", &ranges::MAX_CONCURRENCY))]
    pub max_concurrency: Option<u64>,

    /// Messages queued per trigger before new ones are dropped (and counted)
    /// [default: no count limit; the queues are bounded by --max-queued-bytes].
    #[arg(long, value_name = "N", value_parser = count("--queue-capacity", &ranges::QUEUE_CAPACITY))]
    pub queue_capacity: Option<u64>,

    /// Memory of the messages queued across all triggers (payload plus a
    /// fixed overhead per queued message) before new ones are dropped (and
    /// counted) [default: 128MiB].
    #[arg(long, value_name = "SIZE", value_parser = size("--max-queued-bytes", &ranges::MAX_QUEUED_BYTES))]
    pub max_queued_bytes: Option<u64>,

    /// On SIGINT/SIGTERM, how long queued and running messages may take to
    /// finish [default: 10s].
    #[arg(long, value_name = "DURATION", value_parser = duration("--drain-timeout", &ranges::DRAIN_TIMEOUT))]
    pub drain_timeout: Option<Duration>,

    /// PEM file of CA certificates to verify rediss:// servers (instead of
    /// the system roots).
    #[arg(long, value_name = "FILE")]
    pub tls_ca_file: Option<PathBuf>,

    /// Serve Prometheus metrics at /metrics, and /healthz and /readyz
    /// probes, on this address (such as 127.0.0.1:9464).
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<std::net::SocketAddr>,

    /// Run the components' build commands first, as `spin-redis build` does.
    #[arg(long)]
    pub build: bool,
}

#[derive(Debug, Args)]
pub struct InvokeArgs {
    #[command(flatten)]
    pub common: Common,

    /// The component id to run.
    pub component: String,

    /// The payload, as text.
    #[arg(long, conflicts_with = "payload_file")]
    pub payload: Option<String>,

    /// Read the payload from this file (binary is fine); `-` is stdin.
    #[arg(long, value_name = "FILE")]
    pub payload_file: Option<PathBuf>,

    /// The channel the handler sees in REDIS_CHANNEL [default: the
    /// component's trigger channel].
    #[arg(long, value_name = "NAME")]
    pub channel: Option<String>,

    /// Build the component first (its build output goes to stderr).
    #[arg(long)]
    pub build: bool,
}

fn parse_env(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
        _ => Err(format!("{s:?} is not KEY=VALUE")),
    }
}

// One value parser per kind of flag, each checking the flag's documented
// range (see `settings::ranges`), so a value out of range is a usage error
// (exit 2) in the same words as in the manifest.

/// A duration such as `30s` or `500ms`, within `range`.
fn duration(
    flag: &'static str,
    range: &'static DurationRange,
) -> impl Fn(&str) -> Result<Duration, String> + Clone + Send + Sync + 'static {
    move |s| {
        let d = humantime::parse_duration(s)
            .map_err(|e| format!("{s:?} is not a duration ({e}); write it as 30s or 500ms"))?;
        range.check(flag, d)
    }
}

/// A size such as `256MiB`, within `range`.
fn size(
    flag: &'static str,
    range: &'static NumberRange,
) -> impl Fn(&str) -> Result<u64, String> + Clone + Send + Sync + 'static {
    move |s| range.check(flag, ranges::parse_size(s)?)
}

/// A whole number within `range`.
fn count(
    flag: &'static str,
    range: &'static NumberRange,
) -> impl Fn(&str) -> Result<u64, String> + Clone + Send + Sync + 'static {
    move |s| {
        let n = s
            .trim()
            .parse()
            .map_err(|_| format!("{s:?} is not a whole number"))?;
        range.check(flag, n)
    }
}

/// A count already checked against its range, as a `usize`.
fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

impl Common {
    /// The setting flags every command shares, for `settings`.
    pub fn overrides(&self) -> Overrides {
        Overrides {
            app: AppSettings {
                timeout: self.timeout,
                max_memory: self.max_memory,
                max_output: self.max_output,
                ..Default::default()
            },
            max_host_reply: self.max_host_reply,
            max_host_listing: self.max_host_listing,
            max_host_received: self.max_host_received,
            max_redis_addresses: self.max_redis_addresses.map(to_usize),
            max_redis_dedicated: self.max_redis_dedicated.map(to_usize),
            ..Default::default()
        }
    }
}

impl UpArgs {
    /// Every setting flag of `up`, for `settings`.
    pub fn overrides(&self) -> Overrides {
        let common = self.common.overrides();
        Overrides {
            app: AppSettings {
                max_payload: self.max_payload,
                max_concurrency: self.max_concurrency.map(to_usize),
                tls_ca_file: self.tls_ca_file.clone(),
                ..common.app
            },
            queue_capacity: self.queue_capacity.map(to_usize),
            max_queued_bytes: self.max_queued_bytes,
            drain_timeout: self.drain_timeout,
            ..common
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_cli_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn env_values_must_be_key_equals_value() {
        assert_eq!(parse_env("A=b=c"), Ok(("A".into(), "b=c".into())));
        assert!(parse_env("novalue").is_err());
        assert!(parse_env("=x").is_err());
    }

    #[test]
    fn out_of_range_flags_are_usage_errors_not_panics() {
        for args in [
            ["--max-concurrency", "18446744073709551615"],
            ["--max-concurrency", "0"],
            ["--queue-capacity", "18446744073709551615"],
            ["--timeout", "0s"],
            ["--max-memory", "1B"],
            ["--max-payload", "1GiB"],
            ["--max-queued-bytes", "1000TiB"],
            ["--max-host-reply", "1B"],
            ["--max-host-listing", "0"],
            ["--max-redis-addresses", "5000"],
        ] {
            let e = Cli::try_parse_from(["spin-redis", "up", args[0], args[1]]).unwrap_err();
            assert_eq!(
                e.kind(),
                clap::error::ErrorKind::ValueValidation,
                "{args:?}"
            );
            assert!(e.to_string().contains(args[0]), "{e}");
        }
        assert!(Cli::try_parse_from(["spin-redis", "up", "--max-concurrency", "1024"]).is_ok());
    }
}
