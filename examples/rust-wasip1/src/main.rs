//! rust-greet: a compat (wagi) handler for spin-redis, written in Rust for
//! `wasm32-wasip1`.
//!
//! It reads a greeting from the mounted file `/data/greeting.txt` and the Redis
//! message payload from stdin, and prints
//!
//! ```text
//! <greeting>, <payload><PUNCTUATION>
//! -- <SPIN_COMPONENT_ID> (argv[0] <argv[0]>) on <REDIS_CHANNEL>
//! ```
//!
//! Leading and trailing whitespace of the greeting and the payload is trimmed;
//! an empty payload greets "world". `PUNCTUATION` comes from the manifest's
//! `environment` (default `!`).
//!
//! Exit codes: 0 greeted, 1 stdin could not be read, 4 the payload is not
//! valid UTF-8 (its lossy form goes to stderr), 5 the greeting file could not
//! be read.

use std::io::{self, Read, Write};
use std::process::ExitCode;

const GREETING_FILE: &str = "/data/greeting.txt";

fn env_or(name: &str, fallback: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| fallback.to_owned())
}

fn main() -> ExitCode {
    let argv0 = std::env::args().next().unwrap_or_default();
    let me = if argv0.is_empty() { "rust-greet" } else { argv0.as_str() };
    let channel = env_or("REDIS_CHANNEL", "(unknown channel)");
    let component = env_or("SPIN_COMPONENT_ID", "(unknown component)");
    let punctuation = env_or("PUNCTUATION", "!");

    let mut payload = Vec::new();
    if let Err(e) = io::stdin().read_to_end(&mut payload) {
        eprintln!("{me}: cannot read the payload from stdin: {e}");
        return ExitCode::from(1);
    }

    let greeting = match std::fs::read_to_string(GREETING_FILE) {
        Ok(text) => text.trim().to_owned(),
        Err(e) => {
            eprintln!("{me}: cannot read {GREETING_FILE}: {e} (is `data` mounted at /data?)");
            return ExitCode::from(5);
        }
    };

    let name = match std::str::from_utf8(&payload) {
        Ok(text) => text.trim(),
        Err(e) => {
            eprintln!(
                "{me}: the payload on {channel} is not valid UTF-8 from byte {}: {}",
                e.valid_up_to(),
                String::from_utf8_lossy(&payload)
            );
            return ExitCode::from(4);
        }
    };
    let name = if name.is_empty() { "world" } else { name };

    let mut out = io::stdout().lock();
    let written = writeln!(out, "{greeting}, {name}{punctuation}")
        .and_then(|()| writeln!(out, "-- {component} (argv[0] {argv0}) on {channel}"))
        .and_then(|()| out.flush());
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{me}: cannot write to stdout: {e}");
            ExitCode::from(1)
        }
    }
}
