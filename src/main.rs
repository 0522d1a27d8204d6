//! The `spin-redis` binary: parse the command line, set up diagnostics, run
//! the command, print an error chain once and exit with its documented code
//! (see `failure`).

use clap::Parser as _;
use spin_redis::cli::{Cli, Command};
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
    init_tracing();
    // rustls needs one process-wide crypto provider for rediss://; a second
    // install can only fail because one is already there, which is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();

    let result = match cli.command {
        Command::Up(args) => spin_redis::up::up(args).map(|()| 0),
        Command::Invoke(args) => spin_redis::invoke::invoke(args),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(Failure { code, error }) => {
            eprintln!("error: {error:#}");
            ExitCode::from(code)
        }
    }
}

/// Diagnostics to stderr; `SPIN_REDIS_LOG` (or `RUST_LOG`) sets the filter,
/// default `info`.
fn init_tracing() {
    use std::io::IsTerminal as _;
    use tracing_subscriber::EnvFilter;
    let filter = std::env::var("SPIN_REDIS_LOG")
        .ok()
        .or_else(|| std::env::var("RUST_LOG").ok())
        .unwrap_or_else(|| "info".into());
    tracing_subscriber::fmt()
        .with_env_filter(EnvFilter::new(filter))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
}
