//! Fuzzes the one reading of a destination (`src/host/destination.rs`):
//! whenever a URL is accepted as a destination, the host and port that are
//! checked are the ones that are connected to, and every other parser reads
//! the same:
//! - HTTP: the `host:port` text wasmtime-wasi-http's `default_send_request`
//!   hands to `TcpStream::connect` (made here as it makes it), and the `url`
//!   crate's reading of the same text;
//! - Redis: redis-rs's own reading of the guest's text
//!   (`IntoConnectionInfo for &str`), of the parsed address it connects
//!   with, and the `url` crate's;
//! - both: the `allowed_outbound_hosts` entry naming the destination allows
//!   it (the matcher reads the host as the destination names it).
//! Never a panic, for any text.

#![no_main]

use libfuzzer_sys::fuzz_target;
use redis::{ConnectionAddr, IntoConnectionInfo};
use std::net::{IpAddr, SocketAddr};

#[allow(dead_code)]
#[path = "../../src/address.rs"]
mod address;
#[allow(dead_code)]
#[path = "../../src/manifest/allowed_hosts.rs"]
pub mod allowed_hosts;
/// Where `destination` finds the parser in the crate.
mod manifest {
    pub use super::allowed_hosts;
}
#[allow(dead_code)]
#[path = "../../src/host/destination.rs"]
pub mod destination;

use allowed_hosts::{AllowedHost, AllowedHosts, Destination};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    http_case(text);
    redis_case(text);
});

/// An IP address (bracketed or not) or name as a destination names it.
fn named(host: &str) -> String {
    let inner = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    match inner.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) => format!("[{v6}]"),
        Ok(ip) => ip.to_string(),
        Err(_) => host.to_ascii_lowercase(),
    }
}

fn allowed_by_its_own_entry(d: &Destination) {
    let entry = AllowedHost::parse(&d.to_string())
        .unwrap_or_else(|e| panic!("the entry naming {d} does not parse: {e}"));
    assert!(
        AllowedHosts::new(vec![entry]).allows(d),
        "{d} is not allowed by its own entry"
    );
}

fn http_case(text: &str) {
    let Ok(uri) = text.parse::<http::Uri>() else {
        return;
    };
    let Ok(d) = destination::http(&uri) else {
        return;
    };
    // What default_send_request connects to.
    let authority = uri.authority().expect("a destination has an authority");
    let tls = uri.scheme() == Some(&http::uri::Scheme::HTTPS);
    let connect = if authority.port().is_some() {
        authority.to_string()
    } else {
        format!("{authority}:{}", if tls { 443 } else { 80 })
    };
    match connect.parse::<SocketAddr>() {
        Ok(addr) => {
            assert_eq!(named(&addr.ip().to_string()), d.host, "{text:?}");
            assert_eq!(addr.port(), d.port, "{text:?}");
        }
        Err(_) => {
            let (host, port) = connect.rsplit_once(':').expect("a port was added");
            assert_eq!(host.to_ascii_lowercase(), d.host, "{text:?}");
            assert!(host.parse::<IpAddr>().is_err(), "{text:?}");
            assert_eq!(port.parse::<u16>().ok(), Some(d.port), "{text:?}");
        }
    }
    // What `url` reads.
    let u = url::Url::parse(text).unwrap_or_else(|e| panic!("{text:?}: url refuses it: {e}"));
    assert_eq!(u.scheme(), d.scheme, "{text:?}");
    assert_eq!(
        u.host_str().map(named).as_deref(),
        Some(d.host.as_str()),
        "{text:?}"
    );
    assert_eq!(u.port_or_known_default(), Some(d.port), "{text:?}");
    assert!(
        u.username().is_empty() && u.password().is_none(),
        "{text:?}"
    );
    allowed_by_its_own_entry(&d);
}

fn redis_case(text: &str) {
    let Ok(address) = address::RedisAddress::parse(text) else {
        return;
    };
    let Ok(target) = destination::redis(&address) else {
        return;
    };
    let d = &target.destination;
    let tcp = |info: &redis::ConnectionInfo| match info.addr() {
        ConnectionAddr::Tcp(h, p) => ("redis", named(h), *p),
        ConnectionAddr::TcpTls { host, port, .. } => ("rediss", named(host), *port),
        other => panic!("{text:?}: a destination from {other:?}"),
    };
    let want = (d.scheme.as_str(), d.host.clone(), d.port);
    // What it connects with, and redis-rs's own reading of the guest's text.
    assert_eq!(tcp(&target.info), want, "{text:?}");
    let own = text
        .into_connection_info()
        .unwrap_or_else(|e| panic!("{text:?}: redis refuses the text it accepted parsed: {e}"));
    assert_eq!(tcp(&own), want, "{text:?}");
    // What `url` reads.
    let u = url::Url::parse(text).expect("RedisAddress parsed it with url");
    assert_eq!(
        u.host_str().map(named).as_deref(),
        Some(d.host.as_str()),
        "{text:?}"
    );
    assert_eq!(u.port().unwrap_or(6379), d.port, "{text:?}");
    allowed_by_its_own_entry(d);
}
