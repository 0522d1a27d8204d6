//! One reading of a destination: the scheme, host and port an outbound
//! connection is checked against are read from the very value that it then
//! connects with, never from a second parse of the guest's text.
//!
//! - HTTP (`fermyon:spin/http`, `wasi:http/outgoing-handler`): [`http()`]
//!   reads an `http::Uri` exactly as wasmtime-wasi-http's
//!   `default_send_request` turns it into the `host:port` text it hands to
//!   `TcpStream::connect`, and that same `Uri` is what is sent.
//! - Redis (outbound Redis, every interface version): [`redis()`] turns a
//!   parsed [`RedisAddress`] into the `redis::ConnectionInfo` that the
//!   connection is made from, and reads the destination from that value.
//!
//! Whatever the parsers could read in two ways is refused as an invalid URL
//! ([`Invalid`]): a host with a zone id (`[::1%1]`) or percent-encoding,
//! user information in an HTTP URL (`user@host`), a host that the `url`
//! crate would rewrite (`127.1`, `0x7f.0.0.1`, a trailing dot on an
//! address), and any URI on which `url`'s reading of scheme, host or port
//! differs from the one that connects. An `@` in a path or query is plain
//! data: both parsers end the authority at the first `/`, `?` or `#`.
//!
//! Not owned here: whether a destination is allowed (`manifest::allowed_hosts`), and
//! which error a refusal becomes (each interface maps it onto its own WIT
//! variant).

use crate::address::RedisAddress;
use crate::manifest::allowed_hosts::{Destination, well_known_port};
use redis::{ConnectionAddr, ConnectionInfo, IntoConnectionInfo};
use std::net::{IpAddr, Ipv6Addr, SocketAddr};

/// Why a URL is not a destination. Never quotes the URL (it may hold a
/// password).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Invalid(&'static str);

/// A Redis address read once: where the connection goes, and the
/// connection information it is made from.
#[derive(Debug, Clone)]
pub struct RedisTarget {
    pub destination: Destination,
    pub info: ConnectionInfo,
}

/// The destination of an HTTP request to `uri`: the scheme, and the host
/// and port `default_send_request` connects to (the authority, with the
/// scheme's port added when it has none).
pub fn http(uri: &http::Uri) -> Result<Destination, Invalid> {
    let (scheme, default_port) = match uri.scheme_str() {
        Some("http") => ("http", 80),
        Some("https") => ("https", 443),
        _ => return Err(Invalid("the scheme must be http or https")),
    };
    let authority = uri.authority().ok_or(Invalid("it has no host"))?;
    if authority.as_str().contains('@') {
        // The connection would be made to the text before the port, user
        // information included; `url` would connect to what follows `@`.
        return Err(Invalid(
            "user information (`user@`) is not allowed in an HTTP URL; send credentials in a header",
        ));
    }
    // Exactly the text wasmtime-wasi-http's `default_send_request` hands to
    // `TcpStream::connect`.
    let connect = if authority.port().is_some() {
        authority.to_string()
    } else {
        format!("{authority}:{default_port}")
    };
    let (host_text, port_text) = connect.rsplit_once(':').ok_or(Invalid("it has no port"))?;
    let port: u16 = port_text
        .parse()
        .map_err(|_| Invalid("its port is not a number from 0 to 65535"))?;
    let host = host(host_text)?;
    // tokio reads `connect` as a socket address when it is one, else
    // resolves the name: either way it must be the host just read.
    match connect.parse::<SocketAddr>() {
        Ok(addr) if ip_text(addr.ip()) == host && addr.port() == port => {}
        Ok(_) => return Err(Invalid("its host is read in two ways")),
        Err(_) if host.parse::<IpAddr>().is_ok() || host.starts_with('[') => {
            return Err(Invalid("its host is read in two ways"));
        }
        Err(_) => {}
    }
    let d = Destination {
        scheme: scheme.to_string(),
        host,
        port,
    };
    agrees_with_url(&uri.to_string(), &d)?;
    Ok(d)
}

/// [`http()`] for `wasi:http`'s parts of a request: `scheme` and `authority`
/// put together as wasmtime-wasi-http puts them (the path plays no part in
/// where a request goes).
pub fn http_parts(scheme: &str, authority: &str) -> Result<Destination, Invalid> {
    let uri = http::Uri::builder()
        .scheme(scheme)
        .authority(authority)
        .path_and_query("/")
        .build()
        .map_err(|_| Invalid("it is not a valid URI"))?;
    http(&uri)
}

/// The destination of a parsed Redis address, and the connection
/// information to connect with: both from one `redis::ConnectionInfo`.
///
/// `redis:` is not a special scheme to `url`, so a name is opaque text
/// (not lowercased, not read as an IPv4 address, percent-encoding kept)
/// that redis-rs hands to the resolver as it is: a name must be one that
/// `url` would read as itself, so the resolver cannot read it as an
/// address (`127.1`) that the check took for a name.
pub fn redis(address: &RedisAddress) -> Result<RedisTarget, Invalid> {
    let info = address
        .url()
        .clone()
        .into_connection_info()
        .map_err(|_| Invalid("redis cannot connect to it"))?;
    let (scheme, host_text, port) = match info.addr() {
        ConnectionAddr::Tcp(host, port) => ("redis", host.as_str(), *port),
        ConnectionAddr::TcpTls { host, port, .. } => ("rediss", host.as_str(), *port),
        _ => return Err(Invalid("only redis:// and rediss:// addresses")),
    };
    // redis-rs connects to `(host, port)`: an IP address when the host text
    // is one, else the name resolved.
    let host = match host_text.parse::<IpAddr>() {
        Ok(ip) => ip_text(ip),
        Err(_) => match host(host_text)? {
            h if h.parse::<IpAddr>().is_ok() || h.starts_with('[') => {
                return Err(Invalid("its host is read in two ways"));
            }
            h => h,
        },
    };
    let destination = Destination {
        scheme: scheme.to_string(),
        host,
        port,
    };
    let url = address.url();
    let url_port = url.port().or_else(|| well_known_port(url.scheme()));
    if url.scheme() != destination.scheme
        || !url.host().is_some_and(|h| same_host(&h, &destination.host))
        || url_port != Some(destination.port)
    {
        return Err(Invalid("its host is read in two ways"));
    }
    Ok(RedisTarget { destination, info })
}

/// An IP address as a destination names it (IPv6 in brackets, as URLs and
/// `allowed_outbound_hosts` write it).
fn ip_text(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

/// The host a connection goes to, from the text that is connected to:
/// `[IPv6]`, an IPv4 address in its one plain form, or a domain name that
/// the `url` crate reads as itself (lowercased).
fn host(text: &str) -> Result<String, Invalid> {
    if text.is_empty() {
        return Err(Invalid("it has no host"));
    }
    if text.contains('%') {
        return Err(Invalid(
            "a zone id or percent-encoding in the host is not allowed",
        ));
    }
    if let Some(inner) = text.strip_prefix('[') {
        let v6: Ipv6Addr = inner
            .strip_suffix(']')
            .and_then(|a| a.parse().ok())
            .ok_or(Invalid("its host is not an IPv6 address in brackets"))?;
        return Ok(ip_text(IpAddr::V6(v6)));
    }
    let parsed =
        url::Host::parse(text).map_err(|_| Invalid("its host is not a valid host name"))?;
    let shown = parsed.to_string();
    let name_chars = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_');
    if matches!(parsed, url::Host::Domain(_)) && !shown.chars().all(name_chars) {
        // `url` and `http` take `*`, `!`, `$`... in a name; no host has
        // them, and `allowed_outbound_hosts` could not name one.
        return Err(Invalid(
            "its host name has characters other than letters, digits, `-`, `.` and `_`",
        ));
    }
    if !shown.eq_ignore_ascii_case(text) {
        // `url` rewrites it (`127.1` is 127.0.0.1 to it, `0x7f.1` too): the
        // resolver might or might not do the same.
        return Err(Invalid("its host is read in two ways"));
    }
    Ok(shown)
}

/// Whether `url`'s host is `host` as a destination names it (addresses
/// compared as addresses: `url` writes `::ffff:127.0.0.1` as
/// `::ffff:7f00:1`).
fn same_host(url_host: &url::Host<&str>, host: &str) -> bool {
    match url_host {
        url::Host::Domain(d) => d.eq_ignore_ascii_case(host),
        url::Host::Ipv4(a) => host.parse::<std::net::Ipv4Addr>() == Ok(*a),
        url::Host::Ipv6(a) => {
            host.strip_prefix('[')
                .and_then(|h| h.strip_suffix(']'))
                .and_then(|h| h.parse::<Ipv6Addr>().ok())
                == Some(*a)
        }
    }
}

/// Whether the `url` crate reads `text` as going to `d` (no credentials).
fn agrees_with_url(text: &str, d: &Destination) -> Result<(), Invalid> {
    let url = url::Url::parse(text).map_err(|_| Invalid("it is not a valid URL"))?;
    let same = url.scheme() == d.scheme
        && url.username().is_empty()
        && url.password().is_none()
        && url.host().is_some_and(|h| same_host(&h, &d.host))
        && url.port_or_known_default() == Some(d.port);
    if same {
        Ok(())
    } else {
        Err(Invalid("its host is read in two ways"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn http_url(text: &str) -> Result<Destination, Invalid> {
        let uri: http::Uri = text.parse().map_err(|_| Invalid("http::Uri refused it"))?;
        http(&uri)
    }

    fn redis_url(text: &str) -> Result<Destination, Invalid> {
        let address = RedisAddress::parse(text).map_err(|_| Invalid("not an address"))?;
        redis(&address).map(|t| t.destination)
    }

    #[test]
    fn plain_http_urls_read_as_they_connect() {
        let d = http_url("http://allowed.example.com/path?q=1").unwrap();
        assert_eq!(d.to_string(), "http://allowed.example.com:80");
        let d = http_url("https://API.Example.com:8443/").unwrap();
        assert_eq!(d.to_string(), "https://api.example.com:8443");
        let d = http_url("http://127.0.0.1:8080/x").unwrap();
        assert_eq!(d.to_string(), "http://127.0.0.1:8080");
        let d = http_url("http://[::1]:8080/").unwrap();
        assert_eq!(d.to_string(), "http://[::1]:8080");
        let d = http_url("http://[::FFFF:127.0.0.1]:8080/").unwrap();
        assert_eq!(d.host, "[::ffff:127.0.0.1]");
        // An `@` in the path or query is data: the authority ends before it.
        let d = http_url("http://127.0.0.1:9/@allowed.example.com/?a=@b").unwrap();
        assert_eq!(d.to_string(), "http://127.0.0.1:9");
        let d = http_parts("https", "allowed.example.com").unwrap();
        assert_eq!(d.to_string(), "https://allowed.example.com:443");
    }

    #[test]
    fn the_issues_urls_are_invalid() {
        for bad in [
            // Issue 17: `url` refused these and a second parse with the
            // text up to the last `@` as user info read allowed.example.com,
            // while the connection went to the loopback address.
            "http://[::ffff:127.0.0.1%0]:8080/zone?@allowed.example.com",
            "http://[::1%1]:8080/@allowed.example.com/",
            "http://[::ffff:169.254.169.254%0]/latest/meta-data?@allowed.example.com",
            "http://[fe80::1%25eth0]:80/",
        ] {
            let e = http_url(bad).expect_err(bad);
            assert!(e.to_string().contains("zone id"), "{bad}: {e}");
        }
        assert!(http_parts("http", "[::ffff:127.0.0.1%0]:8080").is_err());
    }

    #[test]
    fn hosts_two_parsers_read_differently_are_invalid() {
        for bad in [
            "http://user@allowed.example.com/",
            "http://allowed.example.com@127.0.0.1/",
            "http://a@b@127.0.0.1/",
            "http://127.1:80/",
            "http://0x7f.0.0.1/",
            "http://2130706433/",
            "http://127.0.0.1./",
            "http://127.000.000.001/",
            "http://%61llowed.example.com/",
            "http://allowed.example.com:/",
            "http://[127.0.0.1]/",
            "http://[::1/",
            "ftp://allowed.example.com/",
            // Found by cargo fuzz: a name no entry can name.
            "http://*x7f./",
            "http://a!b.example.com/",
            "/relative/path",
        ] {
            assert!(http_url(bad).is_err(), "{bad} was accepted");
        }
    }

    #[test]
    fn redis_addresses_read_as_they_connect() {
        let d = redis_url("redis://user:p%23ss@db.internal:6390/1").unwrap();
        assert_eq!(d.to_string(), "redis://db.internal:6390");
        assert_eq!(
            redis_url("redis://h").unwrap().to_string(),
            "redis://h:6379"
        );
        assert_eq!(
            redis_url("redis://[::1]:7000").unwrap().to_string(),
            "redis://[::1]:7000"
        );
        assert_eq!(
            redis_url("redis://[::ffff:127.0.0.1]:7000").unwrap().host,
            "[::ffff:127.0.0.1]"
        );
        assert_eq!(
            redis_url("redis://127.0.0.1:7000/?protocol=resp3")
                .unwrap()
                .to_string(),
            "redis://127.0.0.1:7000"
        );
        assert_eq!(
            redis_url("redis://LOCALHOST:7000").unwrap().to_string(),
            "redis://localhost:7000"
        );
        let t = redis(&RedisAddress::parse("redis://127.0.0.1:7000").unwrap()).unwrap();
        assert!(matches!(t.info.addr(), ConnectionAddr::Tcp(h, 7000) if h == "127.0.0.1"));
    }

    #[test]
    fn redis_addresses_two_parsers_read_differently_are_invalid() {
        for bad in [
            "redis://[::ffff:127.0.0.1%0]:7000/?@allowed.example.com",
            "redis://[::1%1]:7000/@allowed.example.com/",
            // An unencoded `#` ends the URL for `url`: the host would be
            // "user" and the port "p".
            "redis://user:p#ss@db.internal:6390/1",
            "redis://0.0.0.0:6379",
            "unix:///tmp/redis.sock",
            // `redis:` is not a special scheme to `url`: its host is opaque
            // text, handed to the resolver as it is, which reads these as
            // 127.0.0.1 while `allowed_outbound_hosts` sees a name.
            "redis://127.1",
            "redis://0x7f.0.0.1:6379",
            "redis://2130706433:6379",
            "redis://%31%32%37.0.0.1:6379",
            "redis://a*b:6379",
        ] {
            assert!(redis_url(bad).is_err(), "{bad} was accepted");
        }
    }
}
