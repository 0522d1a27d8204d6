//! spin-redis test guest: asks the host APIs for more than a component's
//! quotas and bounds allow, and prints what it got, one line per result, so
//! a test can read its stdout log. Every message succeeds; the lines tell.
//!
//! The payload is one request, words separated by spaces:
//! - `open URL N`: opens N spellings of URL (`URL?n=1`...) and keeps them
//!   open for the message; prints `opened K of N` and each error seen.
//! - `opendbs URL N`: opens databases 0 to N-1 of URL (`URL/0`...), each a
//!   distinct address; prints `opened K of N` and each error seen.
//! - `dedicated URL N SECS`: opens N connections to URL and sends `MULTI`
//!   on each (a command that takes a dedicated connection), keeps them for
//!   SECS seconds; prints `dedicated K of N` and each error seen, then
//!   `released`.
//! - `exec URL CMD ARG...`: `execute`; prints `exec: N results, B bytes` or
//!   `exec error: E`.
//! - `get URL KEY`: the typed `get`; prints `get: B bytes`, `get: none` or
//!   `get error: E`.
//! - `keys LABEL`: key-value `get-keys`; prints `keys: N` or `keys error: E`.
//! - `kvget LABEL KEY`: key-value `get`; prints `kvget: B bytes` or
//!   `kvget error: E`.
//! - `http URL`: fermyon:spin/http GET; prints `http: status S, B bytes` or
//!   `http error: E`.

wit_bindgen::generate!({
    // The dependencies first: a path is resolved against those before it.
    path: [
        "../../../wit/spin/fermyon-spin",
        "../../../wit/spin/fermyon-spin@2.0.0",
        "wit",
    ],
    world: "spin-redis-test:host-quotas/guest",
    generate_all,
});

use fermyon::spin::http;
use fermyon::spin::http_types;
use fermyon::spin2_0_0::key_value::Store;
use fermyon::spin2_0_0::redis::{Connection, RedisParameter, RedisResult};
use std::collections::BTreeMap;

struct Handler;

/// Counts errors by their text, so that 80 identical errors are one line.
fn tally(errors: &BTreeMap<String, usize>) {
    for (e, n) in errors {
        println!("error x{n}: {e}");
    }
}

impl Guest for Handler {
    fn handle_redis_message(message: Payload) -> Result<(), Error> {
        let text = String::from_utf8_lossy(&message).into_owned();
        let words: Vec<&str> = text.split_whitespace().collect();
        match words.as_slice() {
            ["open", url, n] => {
                let n: usize = n.parse().unwrap_or(0);
                let mut held = Vec::new();
                let mut errors = BTreeMap::new();
                for i in 1..=n {
                    match Connection::open(&format!("{url}?n={i}")) {
                        Ok(c) => held.push(c),
                        Err(e) => *errors.entry(format!("{e:?}")).or_insert(0) += 1,
                    }
                }
                println!("opened {} of {n}", held.len());
                tally(&errors);
            }
            ["opendbs", url, n] => {
                let n: usize = n.parse().unwrap_or(0);
                let mut held = Vec::new();
                let mut errors = BTreeMap::new();
                for i in 0..n {
                    match Connection::open(&format!("{url}/{i}")) {
                        Ok(c) => held.push(c),
                        Err(e) => *errors.entry(format!("{e:?}")).or_insert(0) += 1,
                    }
                }
                println!("opened {} of {n}", held.len());
                tally(&errors);
            }
            ["dedicated", url, n, secs] => {
                let n: usize = n.parse().unwrap_or(0);
                let mut held = Vec::new();
                let mut errors = BTreeMap::new();
                for _ in 0..n {
                    let c = match Connection::open(url) {
                        Ok(c) => c,
                        Err(e) => {
                            *errors.entry(format!("open: {e:?}")).or_insert(0) += 1;
                            continue;
                        }
                    };
                    match c.execute("MULTI", &[]) {
                        Ok(_) => held.push(c),
                        Err(e) => *errors.entry(format!("{e:?}")).or_insert(0) += 1,
                    }
                }
                println!("dedicated {} of {n}", held.len());
                tally(&errors);
                std::thread::sleep(std::time::Duration::from_secs(secs.parse().unwrap_or(0)));
                drop(held);
                println!("released");
            }
            ["exec", url, cmd, args @ ..] => {
                let args: Vec<RedisParameter> = args
                    .iter()
                    .map(|a| RedisParameter::Binary(a.as_bytes().to_vec()))
                    .collect();
                match Connection::open(url).and_then(|c| c.execute(cmd, &args)) {
                    Ok(results) => {
                        let bytes: usize = results
                            .iter()
                            .map(|r| match r {
                                RedisResult::Binary(b) => b.len(),
                                RedisResult::Status(s) => s.len(),
                                _ => 8,
                            })
                            .sum();
                        println!("exec: {} results, {bytes} bytes", results.len());
                    }
                    Err(e) => println!("exec error: {e:?}"),
                }
            }
            ["get", url, key] => match Connection::open(url).and_then(|c| c.get(key)) {
                Ok(Some(v)) => println!("get: {} bytes", v.len()),
                Ok(None) => println!("get: none"),
                Err(e) => println!("get error: {e:?}"),
            },
            ["keys", label] => match Store::open(label).and_then(|s| s.get_keys()) {
                Ok(keys) => println!("keys: {}", keys.len()),
                Err(e) => println!("keys error: {e:?}"),
            },
            ["kvget", label, key] => match Store::open(label).and_then(|s| s.get(key)) {
                Ok(Some(v)) => println!("kvget: {} bytes", v.len()),
                Ok(None) => println!("kvget: none"),
                Err(e) => println!("kvget error: {e:?}"),
            },
            ["http", url] => {
                let req = http_types::Request {
                    method: http_types::Method::Get,
                    uri: url.to_string(),
                    headers: Vec::new(),
                    params: Vec::new(),
                    body: None,
                };
                match http::send_request(&req) {
                    Ok(r) => println!(
                        "http: status {}, {} bytes",
                        r.status,
                        r.body.map_or(0, |b| b.len())
                    ),
                    Err(e) => println!("http error: {e:?}"),
                }
            }
            _ => {
                eprintln!("unknown request {text:?}");
                return Err(Error::Error);
            }
        }
        Ok(())
    }
}

export!(Handler);
