//! The Redis keys of a list trigger, named so that a list and everything
//! kept beside it hash to one cluster slot: one Lua script may then touch
//! them all, on a single server or a Redis Cluster.
//!
//! The keys share a prefix, the *base*: the list's own name when it holds a
//! hash tag (`{jobs}` or `q{jobs}x`: the tag decides the slot), else the name
//! in braces (`jobs` becomes `{jobs}`, whose slot is that of `jobs`):
//!
//! | key | holds |
//! |---|---|
//! | `<base>:processing:<consumer>` | the items a consumer took and has not settled |
//! | `<base>:heartbeat:<consumer>` | present while the consumer lives (expires after `claim_idle`) |
//! | `<base>:consumers` | the set of consumers that took items from the list |
//! | `<base>:deliveries` | a hash: SHA-1 of an item's content → its delivery count |
//!
//! A name with a `}` and no hash tag (`a}b`) cannot be wrapped that way;
//! [`cluster_safe`] says so, and a cluster refuses it at start-up.
//!
//! Not owned here: what is done with the keys (`scripts`).

/// The part of `key` Redis hashes to find its slot: the content of the
/// first `{...}` when it is not empty, else the whole key.
pub fn hashed_part(key: &str) -> &str {
    if let Some(open) = key.find('{')
        && let Some(len) = key[open + 1..].find('}')
        && len > 0
    {
        return &key[open + 1..open + 1 + len];
    }
    key
}

/// Whether `key` holds a hash tag of its own.
fn has_tag(key: &str) -> bool {
    hashed_part(key) != key
}

/// The prefix of every key kept beside `list`.
pub fn base(list: &str) -> String {
    if has_tag(list) {
        list.to_string()
    } else {
        format!("{{{list}}}")
    }
}

/// Whether the keys beside `list` hash to the list's own slot.
pub fn cluster_safe(list: &str) -> bool {
    hashed_part(&base(list)) == hashed_part(list)
}

/// The keys of one consumer of one list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    pub list: String,
    base: String,
    /// This consumer's processing list.
    pub processing: String,
    /// This consumer's heartbeat.
    pub heartbeat: String,
    pub consumers: String,
    pub deliveries: String,
}

impl Keys {
    pub fn new(list: &str, consumer: &str) -> Keys {
        let base = base(list);
        Keys {
            list: list.to_string(),
            processing: format!("{base}:processing:{consumer}"),
            heartbeat: format!("{base}:heartbeat:{consumer}"),
            consumers: format!("{base}:consumers"),
            deliveries: format!("{base}:deliveries"),
            base,
        }
    }

    /// The processing list of another consumer.
    pub fn processing_of(&self, consumer: &str) -> String {
        format!("{}:processing:{consumer}", self.base)
    }

    /// The heartbeat of another consumer.
    pub fn heartbeat_of(&self, consumer: &str) -> String {
        format!("{}:heartbeat:{consumer}", self.base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashed_parts_follow_redis() {
        // (key, the part Redis hashes)
        let cases = [
            ("jobs", "jobs"),
            ("{jobs}:x", "jobs"),
            ("a{b}c{d}", "b"),
            ("a{}b", "a{}b"),
            ("a{b", "a{b"),
            ("}{x}", "x"),
        ];
        for (key, hashed) in cases {
            assert_eq!(hashed_part(key), hashed, "key {key:?}");
        }
    }

    #[test]
    fn every_key_shares_the_lists_slot() {
        for list in ["jobs", "{jobs}", "q{jobs}x", "a{b", "}{x}"] {
            let k = Keys::new(list, "w1");
            for key in [
                &k.processing,
                &k.heartbeat,
                &k.consumers,
                &k.deliveries,
                &k.processing_of("w2"),
                &k.heartbeat_of("w2"),
            ] {
                assert_eq!(hashed_part(key), hashed_part(list), "{list}: {key}");
            }
            assert!(cluster_safe(list), "{list}");
        }
        let k = Keys::new("jobs", "w1");
        assert_eq!(k.processing, "{jobs}:processing:w1");
        assert_eq!(k.deliveries, "{jobs}:deliveries");
        assert_eq!(Keys::new("{jobs}", "w1").processing, "{jobs}:processing:w1");
    }

    #[test]
    fn a_brace_without_a_tag_cannot_be_wrapped() {
        for list in ["a}b", "a{}b", "}", "{}", "a{}b{c}"] {
            assert!(!cluster_safe(list), "{list}");
        }
    }
}
