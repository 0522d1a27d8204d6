//! Sizing an outbound-Redis reply: before it is read, where one cheap
//! command tells how large it will be at least, and after, by measuring it.
//!
//! redis-rs 1.8 has no bound on what it reads: its parser buffers a reply
//! of any size (a bulk string up to Redis's 512 MiB, arrays of any length)
//! before the host sees it. So for the commands whose reply grows with the
//! data, a probe runs first and the command is refused when the reply would
//! pass the cap: `STRLEN` for `GET`/`GETDEL`/`GETEX`, `SCARD` for
//! `SMEMBERS`, `HLEN` for `HGETALL`/`HKEYS`/`HVALS`, `LLEN` (with the
//! range's own arithmetic) for `LRANGE`, `ZCARD` for an index `ZRANGE`,
//! `XLEN` for `XRANGE`/`XREVRANGE` without `COUNT`, `DBSIZE` for `KEYS`. A
//! probe gives a lower bound (a collection's length times
//! `ELEMENT_OVERHEAD`, a string's length), so it never refuses a reply that
//! would have fit. Every other reply, and what a probe cannot see (the
//! sizes of a collection's members, a value that grew between probe and
//! command), is measured once read ([`measure`]) and refused then: it never
//! reaches the guest, but the host held it until then.
//!
//! Not owned here: the caps (`reply_bounds`), sending commands (`target`).

use crate::host::reply_bounds::ELEMENT_OVERHEAD;
use redis::Value;

/// A command to send first, and how its integer reply bounds the real one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    /// The probe command and its arguments.
    pub command: &'static str,
    pub key: Option<Vec<u8>>,
    /// The reply counts bytes (`STRLEN`) rather than elements.
    pub bytes: bool,
    /// Values per element in the real reply (2 for a hash's fields and
    /// values, 3 at least for a stream entry).
    pub per_element: u64,
    /// An index range (`LRANGE`, `ZRANGE`): only that part is returned.
    pub range: Option<(i64, i64)>,
}

impl Probe {
    /// The least the reply will cost, given the probe's integer reply.
    pub fn lower_bound(&self, n: i64) -> u64 {
        let n = u64::try_from(n).unwrap_or(0);
        if self.bytes {
            return n + ELEMENT_OVERHEAD;
        }
        let elements = match self.range {
            Some((start, stop)) => range_len(n, start, stop),
            None => n,
        };
        elements
            .saturating_mul(self.per_element)
            .saturating_mul(ELEMENT_OVERHEAD)
    }
}

/// How many elements `LRANGE key start stop` returns from a list of `len`
/// (Redis's rules: negative indexes count from the end, out-of-range ends
/// are clamped).
fn range_len(len: u64, start: i64, stop: i64) -> u64 {
    let len = i64::try_from(len).unwrap_or(i64::MAX);
    let at = |i: i64| if i < 0 { len.saturating_add(i) } else { i };
    let start = at(start).max(0);
    let stop = at(stop).min(len - 1);
    if start > stop || start >= len {
        return 0;
    }
    u64::try_from(stop - start + 1).unwrap_or(0)
}

fn int(arg: &[u8]) -> Option<i64> {
    std::str::from_utf8(arg).ok()?.parse().ok()
}

/// The probe for `command args`, if it has one (see the module docs).
pub fn probe(command: &str, args: &[Vec<u8>]) -> Option<Probe> {
    let c = command.to_ascii_uppercase();
    let key = args.first().cloned();
    let p = |command, bytes, per_element, range| Probe {
        command,
        key: key.clone(),
        bytes,
        per_element,
        range,
    };
    match (c.as_str(), args.len()) {
        ("GET" | "GETDEL", 1) | ("GETEX", _) if key.is_some() => Some(p("STRLEN", true, 1, None)),
        ("SMEMBERS", 1) => Some(p("SCARD", false, 1, None)),
        ("HGETALL", 1) => Some(p("HLEN", false, 2, None)),
        ("HKEYS" | "HVALS", 1) => Some(p("HLEN", false, 1, None)),
        ("LRANGE", 3) => {
            let range = (int(&args[1])?, int(&args[2])?);
            Some(p("LLEN", false, 1, Some(range)))
        }
        ("ZRANGE", 3 | 4) => {
            let with_scores = match args.get(3) {
                None => false,
                Some(a) if a.eq_ignore_ascii_case(b"WITHSCORES") => true,
                // BYSCORE, BYLEX, REV, LIMIT: measured once read.
                Some(_) => return None,
            };
            let range = (int(&args[1])?, int(&args[2])?);
            let per = if with_scores { 2 } else { 1 };
            Some(p("ZCARD", false, per, Some(range)))
        }
        ("XRANGE" | "XREVRANGE", 3) => Some(p("XLEN", false, 3, None)),
        ("KEYS", 1) => Some(Probe {
            command: "DBSIZE",
            key: None,
            bytes: false,
            per_element: 1,
            range: None,
        }),
        _ => None,
    }
}

/// What a reply costs the host: its bytes plus `ELEMENT_OVERHEAD` per value.
pub fn measure(v: &Value) -> u64 {
    let own = match v {
        Value::BulkString(b) | Value::BigNumber(b) => b.len() as u64,
        Value::SimpleString(s) => s.len() as u64,
        Value::VerbatimString { text, .. } => text.len() as u64,
        Value::Array(items) | Value::Set(items) => items.iter().map(measure).sum(),
        Value::Push { data, .. } => data.iter().map(measure).sum(),
        Value::Map(pairs) => pairs.iter().map(|(k, v)| measure(k) + measure(v)).sum(),
        Value::Attribute { data, attributes } => {
            measure(data)
                + attributes
                    .iter()
                    .map(|(k, v)| measure(k) + measure(v))
                    .sum::<u64>()
        }
        _ => 0,
    };
    own + ELEMENT_OVERHEAD
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<Vec<u8>> {
        a.iter().map(|s| s.as_bytes().to_vec()).collect()
    }

    #[test]
    fn ranges_count_as_redis_counts_them() {
        assert_eq!(range_len(10, 0, -1), 10);
        assert_eq!(range_len(10, 0, 2), 3);
        assert_eq!(range_len(10, -3, -1), 3);
        assert_eq!(range_len(10, 5, 100), 5);
        assert_eq!(range_len(10, 8, 2), 0);
        assert_eq!(range_len(10, 20, 30), 0);
        assert_eq!(range_len(0, 0, -1), 0);
        assert_eq!(range_len(10, -100, 0), 1);
    }

    #[test]
    fn probes_bound_from_below() {
        let p = probe("lrange", &args(&["big", "0", "-1"])).unwrap();
        assert_eq!((p.command, p.range), ("LLEN", Some((0, -1))));
        assert_eq!(p.lower_bound(1_000_000), 1_000_000 * ELEMENT_OVERHEAD);
        // A small window of a big list is small.
        let p = probe("LRANGE", &args(&["big", "0", "9"])).unwrap();
        assert_eq!(p.lower_bound(1_000_000), 10 * ELEMENT_OVERHEAD);
        let p = probe("GET", &args(&["k"])).unwrap();
        assert_eq!(p.lower_bound(100), 100 + ELEMENT_OVERHEAD);
        assert_eq!(probe("KEYS", &args(&["*"])).unwrap().command, "DBSIZE");
        assert_eq!(probe("HGETALL", &args(&["h"])).unwrap().lower_bound(3), 96);
        assert!(probe("ZRANGE", &args(&["z", "0", "10", "BYSCORE"])).is_none());
        assert!(probe("SET", &args(&["k", "v"])).is_none());
    }

    #[test]
    fn replies_are_measured_whole() {
        let v = Value::Array(vec![
            Value::BulkString(vec![0; 100]),
            Value::Nil,
            Value::Int(1),
        ]);
        assert_eq!(measure(&v), 100 + 4 * ELEMENT_OVERHEAD);
    }
}
