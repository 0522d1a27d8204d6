//! Reading Redis's replies to the stream commands (`XREADGROUP`,
//! `XAUTOCLAIM`, `XCLAIM`) in both protocols (RESP2 arrays and RESP3 maps),
//! deleted entries included, into [`Entry`]s; and capping an error text for
//! a dead letter.
//!
//! Not owned here: sending the commands (the reader, claimer and retrier).

use bytes::Bytes;
use redis::Value;

/// One entry as Redis returned it; `fields` is `None` for an entry that was
/// deleted while pending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Entry {
    pub id: String,
    pub fields: Option<Vec<(Bytes, Bytes)>>,
}

/// The entries of an `XREADGROUP` reply: `nil` (none), `[[key, entries]]`
/// (RESP2) or `{key: entries}` (RESP3).
pub(super) fn stream_entries(v: Value) -> Vec<Entry> {
    match v {
        Value::Array(streams) => streams
            .into_iter()
            .flat_map(|s| match s {
                Value::Array(mut kv) if kv.len() == 2 => entries_of(kv.swap_remove(1)),
                _ => Vec::new(),
            })
            .collect(),
        Value::Map(streams) => streams
            .into_iter()
            .flat_map(|(_, e)| entries_of(e))
            .collect(),
        _ => Vec::new(),
    }
}

/// An array of `[id, [field, value, ...] | nil]`.
pub(super) fn entries_of(v: Value) -> Vec<Entry> {
    let Value::Array(items) = v else {
        return Vec::new();
    };
    items
        .into_iter()
        .filter_map(|item| {
            let Value::Array(mut parts) = item else {
                return None;
            };
            if parts.len() != 2 {
                return None;
            }
            let fields = parts.pop().expect("invariant: two parts");
            let id = text(&parts[0])?;
            let fields = match fields {
                Value::Array(flat) => {
                    let mut out = Vec::with_capacity(flat.len() / 2);
                    let mut it = flat.into_iter();
                    while let (Some(k), Some(v)) = (it.next(), it.next()) {
                        out.push((bytes(k), bytes(v)));
                    }
                    Some(out)
                }
                Value::Map(pairs) => Some(
                    pairs
                        .into_iter()
                        .map(|(k, v)| (bytes(k), bytes(v)))
                        .collect(),
                ),
                _ => None,
            };
            Some(Entry { id, fields })
        })
        .collect()
}

/// `XAUTOCLAIM`'s `[next cursor, entries, deleted ids]`.
pub(super) fn autoclaim_reply(v: Value) -> (String, Vec<Entry>) {
    let Value::Array(mut parts) = v else {
        return ("0-0".into(), Vec::new());
    };
    if parts.len() < 2 {
        return ("0-0".into(), Vec::new());
    }
    let entries = entries_of(parts.swap_remove(1));
    let next = text(&parts[0]).unwrap_or_else(|| "0-0".into());
    // Deleted entries are removed from the pending list by Redis itself.
    (
        next,
        entries.into_iter().filter(|e| e.fields.is_some()).collect(),
    )
}

pub(super) fn text(v: &Value) -> Option<String> {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).ok(),
        Value::SimpleString(s) => Some(s.clone()),
        Value::VerbatimString { text, .. } => Some(text.clone()),
        _ => None,
    }
}

pub(super) fn bytes(v: Value) -> Bytes {
    match v {
        Value::BulkString(b) => Bytes::from(b),
        Value::SimpleString(s) => Bytes::from(s),
        Value::Int(n) => Bytes::from(n.to_string()),
        _ => Bytes::new(),
    }
}

/// The name/value pairs of a RESP2 flat array or a RESP3 map.
pub(super) fn pairs(v: &Value) -> Vec<(String, &Value)> {
    match v {
        Value::Array(flat) => flat
            .chunks_exact(2)
            .filter_map(|kv| Some((text(&kv[0])?, &kv[1])))
            .collect(),
        Value::Map(m) => m.iter().filter_map(|(k, v)| Some((text(k)?, v))).collect(),
        _ => Vec::new(),
    }
}

/// `s` cut to at most `max` bytes on a character boundary.
pub(super) fn cap(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &str) -> Value {
        Value::BulkString(s.as_bytes().to_vec())
    }

    #[test]
    fn read_replies_of_both_protocols_and_deleted_entries_are_understood() {
        let entry = |id: &str, fields: Option<&[&str]>| {
            Value::Array(vec![
                bulk(id),
                match fields {
                    Some(f) => Value::Array(f.iter().map(|s| bulk(s)).collect()),
                    None => Value::Nil,
                },
            ])
        };
        let entries = Value::Array(vec![
            entry("1-0", Some(&["payload", "a", "other", "b"])),
            entry("2-0", None),
        ]);
        let resp2 = Value::Array(vec![Value::Array(vec![bulk("s"), entries.clone()])]);
        let resp3 = Value::Map(vec![(bulk("s"), entries)]);
        for v in [resp2, resp3] {
            let e = stream_entries(v);
            assert_eq!(e.len(), 2);
            assert_eq!(e[0].id, "1-0");
            assert_eq!(
                e[0].fields.as_deref().unwrap(),
                [
                    (Bytes::from("payload"), Bytes::from("a")),
                    (Bytes::from("other"), Bytes::from("b"))
                ]
            );
            assert_eq!(e[1].fields, None);
        }
        assert!(stream_entries(Value::Nil).is_empty());
        let (next, claimed) = autoclaim_reply(Value::Array(vec![
            bulk("7-0"),
            Value::Array(vec![entry("3-0", Some(&["payload", "x"]))]),
            Value::Array(vec![bulk("4-0")]),
        ]));
        assert_eq!(next, "7-0");
        assert_eq!(claimed.len(), 1);
    }

    #[test]
    fn errors_are_capped_on_a_character_boundary() {
        assert_eq!(cap("héllo", 2), "h");
        assert_eq!(cap("hello", 10), "hello");
    }
}
