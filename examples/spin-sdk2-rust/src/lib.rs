//! spin-redis example: a Redis handler written with the Spin Rust SDK 2.2,
//! built the way Spin 2 and 3 apps were (`cargo build --target
//! wasm32-wasip1`), so the result is a WASI preview1 core module whose
//! `component-type` custom section describes the `fermyon:spin` world.
//! spin-redis, like Spin, makes it a component when it loads it.
//!
//! The handler title-cases each payload's words and prints them with the
//! channel. A payload that is not UTF-8, or that is empty or only white
//! space, fails the message.
//!
//! A payload `sql:<statement>` runs the statement on Spin's SQLite database,
//! a Spin host API spin-redis does not provide: that message fails with an
//! error naming the import, and every other message goes on working.

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use spin_sdk::redis_component;

/// Title-cases every word of a payload, or explains why it cannot.
fn title_case(message: &[u8]) -> Result<String> {
    let text = std::str::from_utf8(message).context("payload is not valid UTF-8")?;
    if text.trim().is_empty() {
        bail!("nothing to title-case (the payload is empty)");
    }
    let words: Vec<String> = text
        .split_whitespace()
        .map(|w| {
            let mut chars = w.chars();
            match chars.next() {
                Some(first) => first.to_uppercase().chain(chars.flat_map(char::to_lowercase)).collect(),
                None => String::new(),
            }
        })
        .collect();
    Ok(words.join(" "))
}

/// Runs one statement on the default SQLite database (a Spin host API).
fn run_sql(statement: &str) -> Result<usize> {
    let db = spin_sdk::sqlite::Connection::open_default()?;
    let rows = db.execute(statement, &[])?;
    Ok(rows.rows.len())
}

#[redis_component]
fn on_message(message: Bytes) -> Result<()> {
    if let Some(statement) = message.strip_prefix(b"sql:") {
        let n = run_sql(&String::from_utf8_lossy(statement))?;
        println!("{n} rows");
        return Ok(());
    }
    let titled = title_case(&message)?;
    let channel = std::env::var("REDIS_CHANNEL").unwrap_or_else(|_| "?".into());
    println!("title on {channel}: {titled}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::title_case;

    #[test]
    fn title_cases_words() {
        assert_eq!(title_case(b"hello WORLD").unwrap(), "Hello World");
        assert_eq!(title_case("émile  zola".as_bytes()).unwrap(), "Émile Zola");
    }

    #[test]
    fn fails_on_blank_and_bad_utf8() {
        assert!(title_case(b"").is_err());
        assert!(title_case(b"  \n").is_err());
        assert!(title_case(b"\xff\xfe").is_err());
    }
}
