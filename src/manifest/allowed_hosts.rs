//! `allowed_outbound_hosts`: Spin's syntax for the hosts a component may
//! connect to, and the check every outbound connection goes through.
//!
//! An entry is `<scheme>://<host>[:<port>]`, as in Spin:
//! - scheme: a name (`redis`, `rediss`, `http`, `https`...) or `*`;
//! - host: a name or IP address, `*`, `*.example.com` (any subdomain, not the
//!   domain itself), or an IP network in CIDR form (`10.0.0.0/8`);
//! - port: a number, a range `a..b` (end excluded), `*`, or nothing for the
//!   scheme's well-known port (`redis`/`rediss` 6379, `http` 80, `https` 443).
//!
//! `{{ variable }}` templates are expanded by the manifest before an entry
//! reaches [`AllowedHost::parse`]; an entry whose expansion is empty is
//! dropped (Spin's "optional endpoint").
//!
//! Owns: parsing entries (the manifest reads them at load) and matching a
//! [`Destination`] (the host APIs check every outbound connection here).
//! Not owned here: reading a destination from a URL (`host::destination`,
//! which reads it from the very value that is connected to), logging a
//! refusal (`host::refusals`), and which error a refusal becomes (each
//! interface maps it onto its own WIT variant).

use std::fmt;
use std::net::IpAddr;

/// A component's parsed `allowed_outbound_hosts`. Empty: no outbound
/// connection at all.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedHosts {
    entries: Vec<AllowedHost>,
}

/// One entry of `allowed_outbound_hosts`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHost {
    original: String,
    scheme: SchemePattern,
    host: HostPattern,
    port: PortPattern,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum SchemePattern {
    Any,
    Exact(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum HostPattern {
    Any,
    /// `*.example.com`, kept as `.example.com`.
    Subdomain(String),
    Exact(url::Host),
    Network {
        addr: IpAddr,
        prefix: u8,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum PortPattern {
    Any,
    /// A single port is the range `p..p+1`.
    Range {
        start: u16,
        end: u32,
    },
}

/// Why an `allowed_outbound_hosts` entry is not valid.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{entry:?} is not a valid allowed outbound host: {reason}")]
pub struct AllowedHostError {
    pub entry: String,
    pub reason: String,
}

/// The destination of an outbound connection, as checked and as shown in
/// logs (never with credentials).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Destination {
    pub scheme: String,
    pub host: String,
    pub port: u16,
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}:{}", self.scheme, self.host, self.port)
    }
}

/// The well-known port of a scheme, used when an entry or a URL has none.
pub fn well_known_port(scheme: &str) -> Option<u16> {
    match scheme {
        "redis" | "rediss" => Some(6379),
        "http" => Some(80),
        "https" => Some(443),
        "postgres" => Some(5432),
        "mysql" => Some(3306),
        "mqtt" => Some(1883),
        _ => None,
    }
}

impl AllowedHost {
    /// Parses one entry (templates already expanded).
    pub fn parse(entry: &str) -> Result<AllowedHost, AllowedHostError> {
        let fail = |reason: String| AllowedHostError {
            entry: entry.to_string(),
            reason,
        };
        let text = entry.trim();
        if text == "insecure:allow-all" {
            return Err(fail(
                "`insecure:allow-all` belongs to `allowed_http_hosts`; use \"*://*:*\" to allow every host".into(),
            ));
        }
        let Some((scheme, rest)) = text.split_once("://") else {
            return Err(fail(
                "it has no scheme; write it as <scheme>://<host>[:<port>], such as \"redis://localhost:6379\" (`*` is allowed for each part)".into(),
            ));
        };
        let scheme = if scheme == "*" {
            SchemePattern::Any
        } else if !scheme.is_empty() && scheme.chars().all(|c| c.is_ascii_alphabetic()) {
            SchemePattern::Exact(scheme.to_ascii_lowercase())
        } else {
            return Err(fail(format!(
                "scheme {scheme:?} must be letters only, or `*`"
            )));
        };
        // A trailing `/` is allowed; any other path is not.
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        // The whole rest may be a host (an IPv6 address or network has
        // colons of its own); otherwise the part after the last colon is the
        // port.
        let (host, port) = if HostPattern::parse(rest).is_ok() {
            (rest, "")
        } else {
            match rest.rsplit_once(':') {
                Some((h, p)) => (h, p),
                None => (rest, ""),
            }
        };
        let host = HostPattern::parse(host).map_err(|r| fail(format!("host {host:?}: {r}")))?;
        let port = match port {
            "" => {
                let name = match &scheme {
                    SchemePattern::Exact(s) => s.as_str(),
                    SchemePattern::Any => "*",
                };
                let p = well_known_port(name).ok_or_else(|| {
                    fail(format!(
                        "it has no port and scheme {name:?} has no well-known one; add `:<port>` or `:*`"
                    ))
                })?;
                PortPattern::Range {
                    start: p,
                    end: u32::from(p) + 1,
                }
            }
            "*" => PortPattern::Any,
            p => PortPattern::parse(p).map_err(|r| fail(format!("port {p:?}: {r}")))?,
        };
        Ok(AllowedHost {
            original: entry.to_string(),
            scheme,
            host,
            port,
        })
    }

    fn allows(&self, d: &Destination) -> bool {
        let scheme_ok = match &self.scheme {
            SchemePattern::Any => true,
            SchemePattern::Exact(s) => *s == d.scheme,
        };
        scheme_ok && self.host.allows(&d.host) && self.port.allows(d.port)
    }
}

impl fmt::Display for AllowedHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.original)
    }
}

impl HostPattern {
    fn parse(host: &str) -> Result<HostPattern, String> {
        let host = host.trim();
        if host == "*" {
            return Ok(HostPattern::Any);
        }
        if host.is_empty() {
            return Err("it is empty".into());
        }
        if let Some((addr, prefix)) = host.split_once('/') {
            let addr: IpAddr = addr.parse().map_err(|_| {
                "only an IP network may have a `/` (such as 10.0.0.0/8); paths are not allowed"
                    .to_string()
            })?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let prefix: u8 =
                prefix.parse().ok().filter(|p| *p <= max).ok_or_else(|| {
                    format!("network prefix {prefix:?} is not a number up to {max}")
                })?;
            return Ok(HostPattern::Network { addr, prefix });
        }
        if let Some(domain) = host.strip_prefix("*.") {
            if domain.contains('*') {
                return Err("`*` is allowed only as the first label".into());
            }
            return match url::Host::parse(domain) {
                Ok(url::Host::Domain(d)) => Ok(HostPattern::Subdomain(format!(".{d}"))),
                Ok(_) => Err("`*.` must be followed by a domain name, not an address".into()),
                Err(e) => Err(format!("{domain:?} is not a domain name ({e})")),
            };
        }
        if host.contains('*') {
            return Err("`*` is allowed only alone or as `*.domain`".into());
        }
        url::Host::parse(host)
            .map(HostPattern::Exact)
            .map_err(|e| format!("not a host name or address ({e})"))
    }

    fn allows(&self, host: &str) -> bool {
        let Ok(parsed) = url::Host::parse(host) else {
            return false;
        };
        match (self, parsed) {
            (HostPattern::Any, _) => true,
            (HostPattern::Subdomain(suffix), url::Host::Domain(d)) => d.ends_with(suffix.as_str()),
            (HostPattern::Subdomain(_), _) => false,
            (HostPattern::Exact(want), got) => *want == got,
            (HostPattern::Network { addr, prefix }, url::Host::Ipv4(ip)) => {
                in_network(*addr, *prefix, IpAddr::V4(ip))
            }
            (HostPattern::Network { addr, prefix }, url::Host::Ipv6(ip)) => {
                in_network(*addr, *prefix, IpAddr::V6(ip))
            }
            (HostPattern::Network { .. }, url::Host::Domain(_)) => false,
        }
    }
}

fn in_network(net: IpAddr, prefix: u8, ip: IpAddr) -> bool {
    let (net, ip, bits) = match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => (u128::from(n.to_bits()), u128::from(i.to_bits()), 32),
        (IpAddr::V6(n), IpAddr::V6(i)) => (n.to_bits(), i.to_bits(), 128),
        _ => return false,
    };
    let shift = bits - u32::from(prefix);
    shift >= bits || (net >> shift) == (ip >> shift)
}

impl PortPattern {
    fn parse(port: &str) -> Result<PortPattern, String> {
        let number = |p: &str| {
            p.parse::<u16>()
                .map_err(|_| format!("{p:?} is not a port number"))
        };
        match port.split_once("..") {
            Some((a, b)) => {
                let (start, end) = (number(a)?, number(b)?);
                if end <= start {
                    return Err("a range `a..b` needs b greater than a (b is excluded)".into());
                }
                Ok(PortPattern::Range {
                    start,
                    end: u32::from(end),
                })
            }
            None => {
                let p = number(port)?;
                Ok(PortPattern::Range {
                    start: p,
                    end: u32::from(p) + 1,
                })
            }
        }
    }

    fn allows(&self, port: u16) -> bool {
        match self {
            PortPattern::Any => true,
            PortPattern::Range { start, end } => port >= *start && u32::from(port) < *end,
        }
    }
}

impl AllowedHosts {
    pub fn new(entries: Vec<AllowedHost>) -> AllowedHosts {
        AllowedHosts { entries }
    }

    /// Every host, every scheme: `*://*:*`.
    pub fn all() -> AllowedHosts {
        AllowedHosts::new(vec![
            AllowedHost::parse("*://*:*").expect("invariant: a valid entry"),
        ])
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn entries(&self) -> impl Iterator<Item = &AllowedHost> {
        self.entries.iter()
    }

    /// Whether `d` is allowed.
    pub fn allows(&self, d: &Destination) -> bool {
        self.entries.iter().any(|e| e.allows(d))
    }
}

/// A plain URL's destination, read with `url` (the tests' URLs are read
/// the same by every parser).
#[cfg(test)]
pub fn test_destination(url: &str) -> Option<Destination> {
    let u = url::Url::parse(url).ok()?;
    let scheme = u.scheme().to_string();
    Some(Destination {
        host: u.host_str().filter(|h| !h.is_empty())?.to_string(),
        port: u.port().or_else(|| well_known_port(&scheme))?,
        scheme,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hosts(entries: &[&str]) -> AllowedHosts {
        AllowedHosts::new(
            entries
                .iter()
                .map(|e| AllowedHost::parse(e).unwrap_or_else(|err| panic!("{err}")))
                .collect(),
        )
    }

    fn allows(h: &AllowedHosts, url: &str) -> bool {
        h.allows(&test_destination(url).unwrap_or_else(|| panic!("{url} has no destination")))
    }

    /// Checks that `h` allows each of `allowed` and none of `refused`.
    fn expect(h: &AllowedHosts, allowed: &[&str], refused: &[&str]) {
        for url in allowed {
            assert!(allows(h, url), "{url} must be allowed");
        }
        for url in refused {
            assert!(!allows(h, url), "{url} must be refused");
        }
    }

    #[test]
    fn exact_entries_match_scheme_host_and_port() {
        let h = hosts(&["redis://127.0.0.1:6380", "https://api.example.com"]);
        expect(
            &h,
            &[
                "redis://127.0.0.1:6380",
                "redis://user:secret@127.0.0.1:6380/2",
                "https://api.example.com/path?q=1",
                "https://API.example.com:443",
            ],
            &[
                "redis://127.0.0.1:6381",
                "rediss://127.0.0.1:6380",
                "redis://127.0.0.2:6380",
                "http://api.example.com",
                "https://api.example.com:8443",
            ],
        );
    }

    #[test]
    fn default_ports_come_from_the_scheme() {
        let h = hosts(&["redis://cache", "http://web"]);
        expect(
            &h,
            &["redis://cache", "redis://cache:6379", "http://web/x"],
            &["redis://cache:6380", "http://web:8080/x"],
        );
    }

    #[test]
    fn wildcards_ranges_and_networks() {
        let h = hosts(&["*://*.example.com:*", "redis://localhost:7000..7002"]);
        expect(
            &h,
            &[
                "redis://a.example.com:1",
                "https://a.b.example.com",
                "redis://localhost:7000",
                "redis://localhost:7001",
            ],
            &[
                "https://example.com",
                "https://notexample.com",
                "redis://localhost:7002",
            ],
        );
        let h = hosts(&["redis://10.1.0.0/16:*", "http://[::1]:8080"]);
        expect(
            &h,
            &["redis://10.1.200.3:6379", "http://[::1]:8080/"],
            &[
                "redis://10.2.0.1:6379",
                "redis://ten.example:6379",
                "http://[::2]:8080/",
            ],
        );
        expect(&AllowedHosts::all(), &["rediss://anything:1"], &[]);
        expect(&AllowedHosts::default(), &[], &["redis://127.0.0.1"]);
    }

    #[test]
    fn bad_entries_are_refused_with_a_reason() {
        for bad in [
            "example.com",
            "redis://",
            "redis://exa mple.com",
            "redis://example.com:notaport",
            "redis://example.com:70000",
            "redis://example.com:9..3",
            "redis://*.*.example.com",
            "redis://ex*ample.com",
            "redis://*.127.0.0.1",
            "redis://example.com/path",
            "redis://10.0.0.0/33",
            "tcp://example.com",
            "re dis://example.com",
            "insecure:allow-all",
        ] {
            let e = AllowedHost::parse(bad).expect_err(bad);
            assert!(e.to_string().contains(&format!("{bad:?}")), "{e}");
        }
    }

    #[test]
    fn the_issue_17_urls_never_reach_the_check() {
        // `allowed.example.com` is allowed; each URL connects to a loopback
        // or metadata address. Before, a second parse read the text up to
        // the last `@` as user info and checked allowed.example.com.
        let h = hosts(&["http://allowed.example.com", "redis://allowed.example.com"]);
        for url in [
            "http://[::ffff:127.0.0.1%0]:8080/zone?@allowed.example.com",
            "http://[::1%1]:8080/@allowed.example.com/",
            "http://[::ffff:169.254.169.254%0]/?@allowed.example.com",
        ] {
            let uri: http::Uri = url.parse().expect("http::Uri takes a zone id");
            assert!(crate::host::destination::http(&uri).is_err(), "{url}");
        }
        for url in [
            "redis://[::ffff:127.0.0.1%0]:7000/?@allowed.example.com",
            "redis://user:p#ss@allowed.example.com:6379",
        ] {
            assert!(crate::address::RedisAddress::parse(url).is_err(), "{url}");
        }
        // What is read is what is checked: loopback is not allowed.
        let uri: http::Uri = "http://127.0.0.1:8080/@allowed.example.com/"
            .parse()
            .unwrap();
        let d = crate::host::destination::http(&uri).unwrap();
        assert!(!h.allows(&d), "{d}");
        let d = test_destination("http://allowed.example.com/x").unwrap();
        assert!(h.allows(&d));
    }
}
