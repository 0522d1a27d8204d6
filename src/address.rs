//! Redis server addresses: parsing, validation and the credential-free form
//! that is shown to users and handlers.
//!
//! An address is `redis://[user[:password]@]host[:port][/db]` or the same with
//! `rediss://` for TLS. The password is kept only inside [`RedisAddress`];
//! `Display` and [`RedisAddress::redacted`] never include it, so an address
//! can be logged or put in an error message anywhere.

use std::fmt;

/// A validated Redis address.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct RedisAddress {
    url: url::Url,
    redacted: String,
}

/// Why an address was refused. Never contains the password.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AddressError {
    #[error("{0:?} is not a URL; expected redis://host:port or rediss://host:port")]
    NotUrl(String),
    #[error("scheme {0:?} is not supported; use redis:// (or rediss:// for TLS)")]
    Scheme(String),
    #[error("{0:?} has no host; expected redis://host:port")]
    NoHost(String),
    #[error("database {db:?} in {address:?} is not a number")]
    Db { db: String, address: String },
}

impl RedisAddress {
    pub fn parse(text: &str) -> Result<Self, AddressError> {
        // Parse errors from `url` echo nothing of the input, but the input
        // itself may hold a password: describe it by its redacted form only.
        // Errors describe the input by `redact_text`, never by the parsed URL:
        // a malformed address (`redis:/user:pw@h`) may carry its password in
        // what the parser took for the path.
        let url = url::Url::parse(text).map_err(|_| AddressError::NotUrl(redact_text(text)))?;
        match url.scheme() {
            "redis" | "rediss" => {}
            other => return Err(AddressError::Scheme(other.to_string())),
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(AddressError::NoHost(redact_text(text)));
        }
        let db = url.path().trim_start_matches('/');
        if !db.is_empty() && db.parse::<u32>().is_err() {
            return Err(AddressError::Db {
                db: redact_text(db),
                address: redact_text(text),
            });
        }
        let redacted = redact_url(&url);
        Ok(RedisAddress { url, redacted })
    }

    /// The full URL, credentials included: only for connecting.
    pub fn connection_url(&self) -> &str {
        self.url.as_str()
    }

    /// The parsed URL, credentials included: only for connecting (see
    /// `host::destination`, which reads where it goes from this value).
    pub fn url(&self) -> &url::Url {
        &self.url
    }

    /// The address without user or password, as logs and handlers see it.
    pub fn redacted(&self) -> &str {
        &self.redacted
    }

    pub fn is_tls(&self) -> bool {
        self.url.scheme() == "rediss"
    }
}

fn redact_url(url: &url::Url) -> String {
    let mut u = url.clone();
    // Setting these can only fail for URLs that cannot have a host, which
    // redis URLs always have; a failure leaves the field as it was, so clear
    // the password first: it is the part that matters.
    let _ = u.set_password(None);
    let _ = u.set_username("");
    u.to_string()
}

/// Redaction of address text that may not be a valid URL: everything after
/// the scheme (`redis:`, `redis://`) up to the last `@` is dropped, since it
/// may be `user:password`.
fn redact_text(text: &str) -> String {
    let Some(at) = text.rfind('@') else {
        return text.to_string();
    };
    let start = match text.find(':') {
        Some(colon) => colon + 1 + text[colon + 1..].chars().take_while(|c| *c == '/').count(),
        None => 0,
    };
    if at < start {
        return text.to_string();
    }
    format!("{}{}", &text[..start], &text[at + 1..])
}

/// `text` with the credentials of every URL-like word removed (see
/// `redact_text`): for messages that quote user input which may hold an
/// address, such as a TOML type error. A double-quoted string is one unit
/// whatever it holds (a template such as `{{ host }}` has spaces, and a
/// password may be followed by one); outside quotes, words end at
/// whitespace and punctuation.
pub fn redact_credentials(text: &str) -> String {
    if !text.contains('@') {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if word.contains('@') && word.contains(':') {
            out.push_str(&redact_text(word));
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    let mut quoted = false;
    for c in text.chars() {
        if c == '"' {
            // An opening or a closing quote ends the unit before it.
            flush(&mut word, &mut out);
            out.push(c);
            quoted = !quoted;
        } else if !quoted
            && (c.is_whitespace() || matches!(c, '\'' | '`' | ',' | '(' | ')' | '[' | ']'))
        {
            flush(&mut word, &mut out);
            out.push(c);
        } else {
            word.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

impl fmt::Display for RedisAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted)
    }
}

impl fmt::Debug for RedisAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RedisAddress({:?})", self.redacted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quoted_address_is_redacted_whole_even_with_spaces() {
        // Found by cargo fuzz: a template with spaces split the address into
        // words, and the first one (with the password) had no `@`.
        let e = redact_credentials(
            r#"invalid type: string "rediss://u:pwP{{ host }}:{{ port }}x://u:pw@{", expected struct"#,
        );
        assert!(!e.contains("pw"), "{e}");
        assert_eq!(e, r#"invalid type: string "rediss://{", expected struct"#);
        let w = redact_credentials("at redis://alice:s3cret@localhost, then");
        assert_eq!(w, "at redis://localhost, then");
    }

    #[test]
    fn never_shows_the_password() {
        let a = RedisAddress::parse("redis://alice:s3cret@localhost:6380/2").unwrap();
        assert_eq!(a.redacted(), "redis://localhost:6380/2");
        assert_eq!(
            format!("{a} {a:?}"),
            "redis://localhost:6380/2 RedisAddress(\"redis://localhost:6380/2\")"
        );
        assert!(a.connection_url().contains("s3cret"));
        for bad in [
            "redis://bob:hunter2@host:notaport",
            // Found by the fuzzer: one slash, so the credentials land in
            // what the URL parser calls the path.
            "redis:/'u:hunter2@h:1/x",
            "redis:u:hunter2@h",
            "redis://u:hunter2@h:1/db@x",
            "u:hunter2@h",
        ] {
            let e = RedisAddress::parse(bad).unwrap_err();
            assert!(!e.to_string().contains("hunter2"), "{bad}: {e}");
        }
    }

    #[test]
    fn credentials_are_removed_from_any_message() {
        let m = redact_credentials(
            "invalid type: string \"rediss://u:hunter2@{{ host }}:{{ port }}\", expected struct",
        );
        assert!(!m.contains("hunter2"), "{m}");
        assert!(m.contains("rediss://{{ host }}:{{ port }}"), "{m}");
        assert_eq!(redact_credentials("no address here"), "no address here");
        assert_eq!(redact_credentials("mail me@home"), "mail me@home");
    }

    #[test]
    fn refuses_what_is_not_a_redis_url() {
        assert!(matches!(
            RedisAddress::parse("localhost:6379"),
            Err(AddressError::Scheme(_)) | Err(AddressError::NotUrl(_))
        ));
        assert_eq!(
            RedisAddress::parse("http://x:1").unwrap_err(),
            AddressError::Scheme("http".into())
        );
        assert!(matches!(
            RedisAddress::parse("redis://h:1/abc"),
            Err(AddressError::Db { .. })
        ));
        assert!(RedisAddress::parse("rediss://h:1").unwrap().is_tls());
    }
}
