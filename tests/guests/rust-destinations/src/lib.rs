//! spin-redis test guest for issue 17 ("one reading of a destination"): a
//! hostile handler that sends outbound requests to whatever URL its payload
//! names, and prints what the host answered, one line per request.
//!
//! Payloads (one request each; the message succeeds whatever the answer,
//! so the test reads the outcome from stdout):
//! - `http <url>`: `fermyon:spin/http` `send-request` GET; prints
//!   `http <status>` or `http error <WIT name>` (`invalid-url`...);
//! - `wasi-http <scheme> <authority>`: `wasi:http/outgoing-handler` GET of
//!   `/` with that scheme and authority set as they are; prints
//!   `wasi-http <status>` or `wasi-http error <code>`;
//! - `redis2 <address> <key>`: `fermyon:spin/redis@2.0.0` `open` + `incr`;
//!   prints `redis2 <n>` or `redis2 error <WIT name>` (`other: <message>`);
//! - `redis1 <address> <key>`: the unversioned `fermyon:spin/redis` `incr`;
//!   prints `redis1 <n>` or `redis1 error error` (its only failure).
//!
//! Anything else fails the message.

wit_bindgen::generate!({
    // The dependencies first: a path is resolved against those before it.
    path: [
        "../../../wit/spin/fermyon-spin",
        "../../../wit/spin/fermyon-spin@2.0.0",
        "wit",
    ],
    world: "spin-redis-test:destinations/guest",
    generate_all,
});

use fermyon::spin::http as spin_http;
use fermyon::spin::http_types;
use fermyon::spin::redis as redis_v1;
use fermyon::spin2_0_0::redis as redis_v2;

struct Handler;

impl Guest for Handler {
    fn handle_redis_message(message: Payload) -> Result<(), Error> {
        let text = String::from_utf8_lossy(&message);
        let words: Vec<&str> = text.split_whitespace().collect();
        match words.as_slice() {
            ["http", url] => println!("http {}", spin_http_get(url)),
            ["wasi-http", scheme, authority] => {
                println!("wasi-http {}", wasi_http_get(scheme, authority))
            }
            ["redis2", address, key] => {
                let answer = match redis_v2::Connection::open(address).and_then(|c| c.incr(key)) {
                    Ok(n) => n.to_string(),
                    Err(e) => format!("error {}", redis_v2_error(&e)),
                };
                println!("redis2 {answer}");
            }
            ["redis1", address, key] => match redis_v1::incr(address, key) {
                Ok(n) => println!("redis1 {n}"),
                Err(redis_v1::Error::Success) => println!("redis1 error success"),
                Err(redis_v1::Error::Error) => println!("redis1 error error"),
            },
            _ => {
                eprintln!("unknown request {text:?}");
                return Err(Error::Error);
            }
        }
        Ok(())
    }
}

/// A `fermyon:spin/redis@2.0.0` error by its WIT name.
fn redis_v2_error(e: &redis_v2::Error) -> String {
    match e {
        redis_v2::Error::InvalidAddress => "invalid-address".into(),
        redis_v2::Error::TooManyConnections => "too-many-connections".into(),
        redis_v2::Error::TypeError => "type-error".into(),
        redis_v2::Error::Other(m) => format!("other: {m}"),
    }
}

/// A `fermyon:spin/http-types` error by its WIT name.
fn http_error(e: http_types::HttpError) -> &'static str {
    use http_types::HttpError as E;
    match e {
        E::Success => "success",
        E::DestinationNotAllowed => "destination-not-allowed",
        E::InvalidUrl => "invalid-url",
        E::RequestError => "request-error",
        E::RuntimeError => "runtime-error",
        E::TooManyRequests => "too-many-requests",
    }
}

fn spin_http_get(url: &str) -> String {
    let request = http_types::Request {
        method: http_types::Method::Get,
        uri: url.to_string(),
        headers: Vec::new(),
        params: Vec::new(),
        body: None,
    };
    match spin_http::send_request(&request) {
        Ok(response) => response.status.to_string(),
        Err(e) => format!("error {}", http_error(e)),
    }
}

fn wasi_http_get(scheme: &str, authority: &str) -> String {
    use wasi::http::outgoing_handler;
    use wasi::http::types::{Fields, OutgoingRequest, Scheme};
    let request = OutgoingRequest::new(Fields::new());
    let scheme = match scheme {
        "http" => Scheme::Http,
        "https" => Scheme::Https,
        other => Scheme::Other(other.to_string()),
    };
    if request.set_scheme(Some(&scheme)).is_err() {
        return "error the scheme was refused by set-scheme".into();
    }
    if request.set_authority(Some(authority)).is_err() {
        return "error the authority was refused by set-authority".into();
    }
    let future = match outgoing_handler::handle(request, None) {
        Ok(f) => f,
        Err(e) => return format!("error {e:?}"),
    };
    future.subscribe().block();
    match future.get() {
        Some(Ok(Ok(response))) => response.status().to_string(),
        Some(Ok(Err(e))) => format!("error {e:?}"),
        Some(Err(())) => "error the response was taken twice".into(),
        None => "error no response after the pollable was ready".into(),
    }
}

export!(Handler);
