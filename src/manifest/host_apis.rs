//! A component's host-API fields, as in Spin: `allowed_outbound_hosts`,
//! `key_value_stores` and its variables (`[component.<id>.variables]` in v2,
//! `[component.config]` in v1), validated and expanded into
//! [`HostApis`](super::app::HostApis). Both manifest versions hand their
//! fields here.
//!
//! - `allowed_outbound_hosts` entries are `<scheme>://<host>[:<port>]` (see
//!   `allowed_hosts`); `{{ variable }}` templates are expanded with the
//!   app's variables, and an entry that expands to nothing is dropped.
//! - A version 1 component without `allowed_outbound_hosts` may reach any
//!   Redis, MySQL or PostgreSQL server, and its `allowed_http_hosts` become
//!   `http://` and `https://` entries: Spin treats version 1 manifests so.
//! - Variable names follow Spin's rule (lower-case letters, digits, single
//!   underscores); values are templates over the app's `[variables]`.
//!
//! Not owned here: checking that each store label is defined (the runtime
//! config is read after the manifest, see `host`).

use super::allowed_hosts::{AllowedHost, AllowedHosts};
use super::app::HostApis;
use super::component_variables::{ComponentVariables, validate_name};
use super::error::{ManifestError, ManifestErrorKind as K};
use super::shared::Ctx;
use std::collections::BTreeMap;

/// The host-API fields of one component as written.
#[derive(Debug, Default, Clone, Copy)]
pub struct HostFields<'a> {
    pub allowed_outbound_hosts: Option<&'a [String]>,
    /// Version 1 only.
    pub allowed_http_hosts: Option<&'a [String]>,
    pub key_value_stores: Option<&'a [String]>,
    pub variables: Option<&'a BTreeMap<String, String>>,
    /// A version 1 manifest: its legacy defaults apply.
    pub v1: bool,
}

/// Where the fields are: the line of a key (and of a variable, by name),
/// and the full field path of a key.
pub struct HostPlace<'a> {
    pub line: &'a dyn Fn(&str) -> Option<usize>,
    pub variable_line: &'a dyn Fn(&str) -> Option<usize>,
    pub field: &'a dyn Fn(&str) -> String,
    /// `variables` (v2) or `config` (v1).
    pub variables_key: &'a str,
}

impl Ctx<'_> {
    pub fn host_apis(
        &self,
        place: &HostPlace<'_>,
        f: &HostFields<'_>,
    ) -> Result<HostApis, ManifestError> {
        let hosts_line = (place.line)("allowed_outbound_hosts");
        let hosts_field = (place.field)("allowed_outbound_hosts");
        let mut entries = Vec::new();
        for raw in f.allowed_outbound_hosts.unwrap_or_default() {
            let text = self.vars.expand(raw).map_err(|m| {
                self.at
                    .error(K::Variable, hosts_line, Some(&hosts_field), m)
            })?;
            // An entry that a variable made empty is an optional endpoint
            // left unset, as in Spin.
            if raw.contains("{{") && matches!(text.trim(), "" | "http://" | "https://") {
                continue;
            }
            let entry = AllowedHost::parse(&text).map_err(|e| {
                self.at
                    .error(K::BadValue, hosts_line, Some(&hosts_field), e.to_string())
                    .hint("write entries as \"redis://host:port\" or \"https://api.example.com\"; `*` may stand for the scheme, the host or the port, `*.example.com` for any subdomain, and `a..b` for a port range")
            })?;
            entries.push(entry);
        }
        if f.v1 {
            if f.allowed_outbound_hosts.is_none() {
                for legacy in ["redis://*:*", "mysql://*:*", "postgres://*:*"] {
                    entries.push(AllowedHost::parse(legacy).expect("invariant: a valid entry"));
                }
            }
            let http_line = (place.line)("allowed_http_hosts");
            let http_field = (place.field)("allowed_http_hosts");
            for h in f.allowed_http_hosts.unwrap_or_default() {
                entries.extend(
                    http_hosts(h).map_err(|m| {
                        self.at
                            .error(K::BadValue, http_line, Some(&http_field), m)
                            .hint("write entries as \"example.com\" or \"example.com:8080\", or \"insecure:allow-all\"")
                    })?,
                );
            }
        }

        let stores_line = (place.line)("key_value_stores");
        let stores_field = (place.field)("key_value_stores");
        let mut key_value_stores = Vec::new();
        for label in f.key_value_stores.unwrap_or_default() {
            if label.trim().is_empty() {
                return Err(self
                    .at
                    .error(K::BadValue, stores_line, Some(&stores_field), "a store label is empty")
                    .hint("list store labels such as \"default\", or those defined by the runtime config"));
            }
            if !key_value_stores.contains(label) {
                key_value_stores.push(label.clone());
            }
        }

        let mut variables = BTreeMap::new();
        for (name, template) in f.variables.into_iter().flatten() {
            let line = (place.variable_line)(name).or_else(|| (place.line)(place.variables_key));
            let field = format!("{}.{name}", (place.field)(place.variables_key));
            validate_name(name).map_err(|m| {
                self.at
                    .error(
                        K::Variable,
                        line,
                        Some(&field),
                        format!("variable name {name:?}: {m}"),
                    )
                    .hint("name component variables like redis_address")
            })?;
            let value = self
                .vars
                .expand(template)
                .map_err(|m| self.at.error(K::Variable, line, Some(&field), m))?;
            variables.insert(name.clone(), value);
        }

        Ok(HostApis {
            allowed_outbound_hosts: AllowedHosts::new(entries),
            key_value_stores,
            variables: ComponentVariables::new(variables),
        })
    }
}

/// One version 1 `allowed_http_hosts` entry as `allowed_outbound_hosts`
/// entries (Spin's conversion): `host[:port]` allows both `http` and
/// `https`; `insecure:allow-all` allows every HTTP host; `self` is a request
/// to the app's own HTTP origin, which a Redis trigger has not.
fn http_hosts(entry: &str) -> Result<Vec<AllowedHost>, String> {
    let text = entry.trim();
    let texts: Vec<String> = if text == "insecure:allow-all" {
        vec!["http://*:*".into(), "https://*:*".into()]
    } else if text == "self" {
        Vec::new()
    } else {
        let hostport = match text.split_once("://") {
            Some(("http" | "https", rest)) => rest.trim_end_matches('/'),
            Some(_) => return Err(format!("{entry:?} is not an HTTP host")),
            None => text,
        };
        if hostport.is_empty() || hostport.contains(['/', '*']) {
            return Err(format!("{entry:?} is not a host or host:port"));
        }
        vec![format!("http://{hostport}"), format!("https://{hostport}")]
    };
    texts
        .iter()
        .map(|t| AllowedHost::parse(t).map_err(|e| e.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowed_http_hosts_become_http_and_https_entries() {
        let hosts = AllowedHosts::new(http_hosts("api.example.com:8080").unwrap());
        let d = |u: &str| {
            let uri: http::Uri = u.parse().unwrap();
            crate::host::destination::http(&uri).unwrap()
        };
        assert!(hosts.allows(&d("http://api.example.com:8080/x")));
        assert!(hosts.allows(&d("https://api.example.com:8080/x")));
        assert!(!hosts.allows(&d("https://api.example.com/x")));
        let all = AllowedHosts::new(http_hosts("insecure:allow-all").unwrap());
        assert!(all.allows(&d("https://anywhere:1")));
        let redis = crate::manifest::allowed_hosts::Destination {
            scheme: "redis".into(),
            host: "anywhere".into(),
            port: 1,
        };
        assert!(!all.allows(&redis));
        assert!(http_hosts("self").unwrap().is_empty());
        assert!(http_hosts("ftp://x").is_err());
        assert!(http_hosts("a/b").is_err());
    }
}
