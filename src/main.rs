//! The `spin-redis` binary: parse the command line, set up diagnostics, run
//! the command, print an error chain once and exit with its documented code
//! (see `failure`).

use clap::Parser as _;
use spin_redis::cli::{Cli, Command, LogFormat};
use spin_redis::failure::Failure;
use std::process::ExitCode;

fn main() -> ExitCode {
    // With RUST_BACKTRACE=1 in the environment every error value (a guest's
    // `proc_exit` among them) would capture a backtrace, about 9 µs each. Our
    // errors are reported as chains, never with backtraces, so turn library
    // backtraces off unless asked for explicitly.
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        // SAFETY: no other thread exists yet this early in `main`.
        unsafe { std::env::set_var("RUST_LIB_BACKTRACE", "0") };
    }
    let cli = Cli::parse();
    // Kept to the end: dropping it writes out the log lines still queued.
    let _log_guard = init_tracing(cli.log_format);
    // rustls needs one process-wide crypto provider for rediss://; a second
    // install can only fail because one is already there, which is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();

    let log_format = cli.log_format;
    let result = match cli.command {
        Command::Up(args) => spin_redis::up::up(args, log_format).map(|()| 0),
        Command::Watch(args) => spin_redis::watch::watch(args, log_format),
        Command::Invoke(args) => spin_redis::invoke::invoke(args),
        Command::Check(args) => spin_redis::check::check(args),
        Command::New(args) => spin_redis::templates::new(args),
        Command::Templates(args) => spin_redis::templates::templates(args),
        Command::Build(args) => spin_redis::build::build(args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(Failure { code, error }) => {
            match log_format {
                LogFormat::Text => eprintln!("error: {error:#}"),
                // One JSON object like every other line.
                LogFormat::Json => tracing::error!(exit_code = code, "{error:#}"),
            }
            ExitCode::from(code)
        }
    }
}

/// Diagnostics to stderr; `SPIN_REDIS_LOG` (or `RUST_LOG`) sets the filter,
/// default `info`, with [`QUIET_TARGETS`] at `warn` unless the filter names
/// them.
///
/// Lines go through a bounded queue to a writer thread, so a stderr that
/// stops reading never blocks the Redis connection or a handler: past
/// [`LOG_QUEUE_LINES`] waiting lines, new ones are dropped (and the writer
/// reports how many once it catches up).
fn init_tracing(format: LogFormat) -> tracing_appender::non_blocking::WorkerGuard {
    use std::io::IsTerminal as _;
    use tracing_subscriber::EnvFilter;
    let filter = std::env::var("SPIN_REDIS_LOG")
        .ok()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| "info".into());
    let filter = if QUIET_TARGETS.iter().any(|t| filter.contains(t)) {
        filter
    } else {
        QUIET_TARGETS
            .iter()
            .fold(filter, |f, t| format!("{f},{t}=warn"))
    };
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(true)
        .buffered_lines_limit(LOG_QUEUE_LINES)
        .thread_name("log-writer")
        .finish(std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new(filter))
        .with_writer(writer)
        .with_target(false);
    match format {
        LogFormat::Text => builder.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .init(),
    }
    guard
}

/// Crates whose `info` spans would be made (and their fields formatted) on
/// every guest call: wasmtime-wasi instruments each preview1 function at
/// `info`. Nothing of them is ever printed at `info` (the formatter shows
/// only events), yet they took about a tenth of the handler threads in a
/// burst (perf). A filter that names one of them is taken as it is.
const QUIET_TARGETS: [&str; 2] = ["wasmtime_wasi", "wiggle"];

/// Runtime log lines that may wait for stderr before new ones are dropped.
const LOG_QUEUE_LINES: usize = 64 * 1024;
