//! A WASI 0.2 command component under spin-redis's wagi executor: the same
//! contract as a WASI preview1 module. The payload is stdin; stdout and
//! stderr go to the component's logs; the exit code is the result.
//!
//! Counts the words of the message. An empty message and one that is not
//! UTF-8 are errors. (Rust's standard library on wasm32-wasip2 ends a failed
//! `main` through `wasi:cli/exit` with an error, whatever the `ExitCode`, so
//! spin-redis reports both as exit code 1; a guest that calls
//! `exit-with-code` keeps its code.)

use std::io::{Read, Write};
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut payload = Vec::new();
    if let Err(e) = std::io::stdin().read_to_end(&mut payload) {
        eprintln!("cannot read the payload: {e}");
        return ExitCode::from(2);
    }
    let channel = std::env::var("REDIS_CHANNEL").unwrap_or_default();
    let Ok(text) = std::str::from_utf8(&payload) else {
        eprintln!("{channel}: the message is not UTF-8 ({} bytes)", payload.len());
        return ExitCode::FAILURE;
    };
    if text.trim().is_empty() {
        eprintln!("{channel}: empty message");
        return ExitCode::from(3);
    }
    let words = text.split_whitespace().count();
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{channel}: {words} word(s) in {:?}", text.trim());
    ExitCode::SUCCESS
}
