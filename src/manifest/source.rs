//! A trigger's source as the manifest gives it: a channel, a channel
//! pattern, or a stream (with its consumer-group settings), and where it is
//! served, a single server or a Redis Cluster (`cluster = true`,
//! comma-separated seed nodes). Both manifest versions hand their fields
//! here, so v1 and v2 report the same problems in the same words.
//!
//! A `pattern` is Redis's glob syntax (`PSUBSCRIBE`); it is never sharded,
//! since Redis has no sharded patterns. A `list` is a reliable queue (see
//! `source::list`) and takes the stream fields that apply to it:
//! `consumer`, `max_deliveries`, `dead_letter` (default `<list>:dead`) and
//! `claim_idle` (default 60 s: how long a consumer's heartbeat lives; it
//! need not exceed the timeout, since a live consumer keeps beating while
//! its handlers run).
//!
//! | stream field | default | valid |
//! |---|---|---|
//! | `group` | `<app name>.<component id>` | not empty |
//! | `consumer` | `<hostname>-<pid>` | any; empty means the default |
//! | `field` | `payload` | not empty |
//! | `start` | `0` | `0`, `$` or an entry id such as `1700000000000-0` |
//! | `max_deliveries` | 5 | 1 to 1000 |
//! | `dead_letter` | `<stream>:dead` | not empty, not the stream itself |
//! | `claim_idle` | 60 s, or twice the timeout when that is longer | 100ms to 48h, and longer than the timeout |
//!
//! Not owned here: reading the fields from the file (`v1`, `v2`), and
//! reading Redis (`crate::source`).

use super::app::{App, ListTrigger, StreamTrigger};
use super::error::{ManifestError, ManifestErrorKind as K};
use super::shared::Ctx;
use crate::address::RedisAddress;
use crate::settings::ranges;
use std::time::Duration;

pub const DEFAULT_FIELD: &str = "payload";
pub const DEFAULT_START: &str = "0";
pub const DEFAULT_MAX_DELIVERIES: u32 = 5;
/// The `claim_idle` of a list trigger that sets none: the life of a
/// consumer's heartbeat.
pub const DEFAULT_LIST_CLAIM_IDLE: Duration = Duration::from_secs(60);

/// The `claim_idle` of a stream trigger that sets none: 60 s, or twice the
/// timeout when that is longer, so that it always exceeds the timeout.
pub fn default_claim_idle(timeout: Duration) -> Duration {
    Duration::from_secs(60).max(timeout.saturating_mul(2))
}

/// The source fields of one trigger as written (v1 `[component.trigger]`,
/// v2 `[[trigger.redis]]`).
#[derive(Debug, Default, Clone, Copy)]
pub struct SourceFields<'a> {
    pub channel: Option<&'a str>,
    pub pattern: Option<&'a str>,
    pub stream: Option<&'a str>,
    pub list: Option<&'a str>,
    pub group: Option<&'a str>,
    pub consumer: Option<&'a str>,
    pub field: Option<&'a str>,
    pub start: Option<&'a str>,
    pub max_deliveries: Option<u64>,
    pub dead_letter: Option<&'a str>,
    pub claim_idle: Option<&'a str>,
    pub sharded: Option<bool>,
}

impl SourceFields<'_> {
    /// The stream-only fields that are set, by name.
    fn stream_only(&self) -> Vec<&'static str> {
        let set = [
            ("group", self.group.is_some()),
            ("consumer", self.consumer.is_some()),
            ("field", self.field.is_some()),
            ("start", self.start.is_some()),
            ("max_deliveries", self.max_deliveries.is_some()),
            ("dead_letter", self.dead_letter.is_some()),
            ("claim_idle", self.claim_idle.is_some()),
        ];
        set.iter().filter(|(_, s)| *s).map(|(n, _)| *n).collect()
    }
}

/// Where a trigger's fields are in the file: the line of a key, and the full
/// field path of a key (`component[0].trigger.stream`,
/// `trigger.redis[1].stream`).
pub struct Place<'a> {
    pub start: Option<usize>,
    pub line: &'a dyn Fn(&str) -> Option<usize>,
    pub field: &'a dyn Fn(&str) -> String,
}

/// What the manifest says about one trigger's source.
#[derive(Debug)]
pub struct Source {
    /// The channel, the pattern or the stream key.
    pub name: String,
    /// `name` is a channel pattern (`PSUBSCRIBE`).
    pub pattern: bool,
    pub stream: Option<StreamTrigger>,
    pub list: Option<ListTrigger>,
    pub sharded: bool,
}

/// The keys that name a trigger's source, in the order they are reported.
const SOURCE_KEYS: [&str; 4] = ["channel", "pattern", "stream", "list"];

/// What the trigger belongs to, for the defaults.
pub struct Owner<'a> {
    pub app: &'a str,
    pub component: &'a str,
    /// The timeout the manifest sets, or the default.
    pub timeout: Duration,
    pub cluster: bool,
}

impl Ctx<'_> {
    /// Validates and normalises one trigger's source fields.
    pub fn trigger_source(
        &self,
        at: &Place<'_>,
        f: &SourceFields<'_>,
        owner: &Owner<'_>,
    ) -> Result<Source, ManifestError> {
        let err = |kind, key: &str, msg: String| {
            self.at.error(
                kind,
                (at.line)(key).or(at.start),
                Some(&(at.field)(key)),
                msg,
            )
        };
        let expand =
            |key: &str, raw: &str| self.vars.expand(raw).map_err(|m| err(K::Variable, key, m));
        let sharded = f.sharded.unwrap_or(false);
        let given = [f.channel, f.pattern, f.stream, f.list];
        let set: Vec<&str> = SOURCE_KEYS
            .iter()
            .zip(given)
            .filter(|(_, v)| v.is_some())
            .map(|(k, _)| *k)
            .collect();
        if set.len() > 1 {
            return Err(err(
                K::BadValue,
                set[1],
                match set[..] {
                    [a, b] => format!("a trigger takes a {a} or a {b}, not both"),
                    _ => format!("a trigger takes one source, and this one sets {}", set.join(", ")),
                },
            )
            .hint("channel = \"...\" subscribes (pub/sub, at-most-once); pattern = \"...\" subscribes to every matching channel; stream = \"...\" reads through a consumer group and list = \"...\" pops a queue (both at-least-once)"));
        }
        if set.is_empty() {
            return Err(self
                .at
                .error(
                    K::EmptyChannel,
                    at.start,
                    Some(&(at.field)("channel")),
                    "the trigger has no channel and no stream (nor a pattern or a list)",
                )
                .hint("set channel = \"name\" to subscribe to a channel, pattern = \"orders.*\" to every matching channel, stream = \"key\" to read a stream, or list = \"key\" to pop a queue"));
        }
        if let (Some(_), true) = (f.pattern, sharded) {
            return Err(err(
                K::BadValue,
                "sharded",
                "sharded applies to channels only: Redis has no sharded pattern subscriptions".into(),
            )
            .hint("remove sharded = true: a pattern is subscribed with PSUBSCRIBE, which sees the channels of the whole cluster"));
        }
        let channel = f.channel;
        if sharded && !owner.cluster {
            return Err(err(
                K::BadValue,
                "sharded",
                "sharded pub/sub is for a Redis Cluster".into(),
            )
            .hint("add cluster = true beside the address, or remove sharded"));
        }
        if let Some((key, raw)) = channel
            .map(|c| ("channel", c))
            .or(f.pattern.map(|p| ("pattern", p)))
        {
            if let Some(only) = f.stream_only().first() {
                let (which, instead) = match *only {
                    "group" | "field" | "start" => ("stream triggers", "stream = \"...\""),
                    _ => (
                        "stream and list triggers",
                        "stream = \"...\" or list = \"...\"",
                    ),
                };
                return Err(err(
                    K::BadValue,
                    only,
                    format!("{only:?} applies to {which} only"),
                )
                .hint(format!("use {instead} instead of {key}, or remove {only}")));
            }
            let name = if key == "channel" {
                self.channel((at.line)(key), &(at.field)(key), raw)?
            } else {
                let pattern = expand(key, raw)?;
                if pattern.trim().is_empty() {
                    return Err(err(K::EmptyChannel, key, "the pattern is empty".into())
                        .hint("set pattern = \"orders.*\" to a glob over channel names, as PSUBSCRIBE takes it"));
                }
                pattern
            };
            return Ok(Source {
                name,
                pattern: key == "pattern",
                stream: None,
                list: None,
                sharded,
            });
        }
        // A stream or a list: a key read at-least-once.
        let (kind, raw) = match (f.stream, f.list) {
            (Some(s), _) => ("stream", s),
            (None, Some(l)) => ("list", l),
            (None, None) => unreachable!("invariant: one source is set, checked above"),
        };
        if sharded {
            return Err(err(
                K::BadValue,
                "sharded",
                "sharded applies to channels only".into(),
            )
            .hint(format!(
                "remove it: a {kind} is always read from the node that holds its key"
            )));
        }
        let name = expand(kind, raw)?;
        if name.trim().is_empty() {
            return Err(err(K::EmptyChannel, kind, format!("the {kind} is empty"))
                .hint(format!("set {kind} = \"key\" to the Redis {kind} to read")));
        }
        if kind == "list" {
            let group_only = [
                ("group", f.group.is_some()),
                ("field", f.field.is_some()),
                ("start", f.start.is_some()),
            ];
            if let Some((only, _)) = group_only.iter().find(|(_, set)| *set) {
                return Err(err(
                    K::BadValue,
                    only,
                    format!("{only:?} applies to stream triggers only"),
                )
                .hint(format!("a list has no consumer group: remove {only}")));
            }
        }
        let text = |key: &str, v: Option<&str>, default: String| -> Result<String, ManifestError> {
            let Some(raw) = v else { return Ok(default) };
            let s = expand(key, raw)?;
            if s.trim().is_empty() {
                return Err(err(K::BadValue, key, format!("{key} is empty"))
                    .hint(format!("remove {key} for its default, or give it a value")));
            }
            Ok(s)
        };
        let group = text(
            "group",
            f.group,
            format!("{}.{}", owner.app, owner.component),
        )?;
        // Empty (such as an unset variable's default) means the default.
        let consumer = f
            .consumer
            .map(|c| expand("consumer", c))
            .transpose()?
            .filter(|c| !c.trim().is_empty());
        let field = text("field", f.field, DEFAULT_FIELD.into())?;
        let start = text("start", f.start, DEFAULT_START.into())?;
        if !is_start(&start) {
            return Err(err(
                K::BadValue,
                "start",
                format!("start {start:?} is not \"0\", \"$\" or an entry id"),
            )
            .hint("\"0\" starts a new group at the beginning of the stream, \"$\" at its end"));
        }
        let max_deliveries = match f.max_deliveries {
            None => DEFAULT_MAX_DELIVERIES,
            Some(n) => ranges::MAX_DELIVERIES
                .check("max_deliveries", n)
                .map(|n| u32::try_from(n).expect("invariant: at most 1000"))
                .map_err(|m| {
                    err(K::BadValue, "max_deliveries", m).hint(format!(
                        "the attempts an item gets before it is moved to the dead-letter {kind}"
                    ))
                })?,
        };
        let dead_letter = text("dead_letter", f.dead_letter, format!("{name}:dead"))?;
        if dead_letter == name {
            return Err(err(
                K::BadValue,
                "dead_letter",
                format!("the dead-letter {kind} {dead_letter:?} is the {kind} itself"),
            )
            .hint(format!(
                "use another key, such as \"<{kind}>:dead\" (the default)"
            )));
        }
        let claim_idle = f
            .claim_idle
            .map(|raw| {
                let t = expand("claim_idle", raw)?;
                let d = humantime::parse_duration(&t)
                    .map_err(|e| format!("claim_idle {t:?} is not a duration ({e}); write it as \"60s\" or \"5m\""))
                    .and_then(|d| ranges::CLAIM_IDLE.check("claim_idle", d))
                    .map_err(|m| err(K::BadValue, "claim_idle", m))?;
                if kind == "list" {
                    // A heartbeat's life: unrelated to the timeout.
                    return Ok(d);
                }
                check_claim_idle(d, owner.timeout)
                    .map_err(|m| {
                        err(K::BadValue, "claim_idle", m)
                            .hint("raise claim_idle or lower the timeout: an entry still running must never be taken over")
                    })?;
                Ok::<_, ManifestError>(d)
            })
            .transpose()?;
        if kind == "list" {
            return Ok(Source {
                name,
                pattern: false,
                stream: None,
                list: Some(ListTrigger {
                    consumer,
                    max_deliveries,
                    dead_letter,
                    claim_idle: claim_idle.unwrap_or(DEFAULT_LIST_CLAIM_IDLE),
                }),
                sharded: false,
            });
        }
        Ok(Source {
            name,
            pattern: false,
            list: None,
            stream: Some(StreamTrigger {
                group,
                consumer,
                field,
                start,
                max_deliveries,
                dead_letter,
                claim_idle,
            }),
            sharded: false,
        })
    }

    /// Parses an address field: one address, or with `cluster` one or more
    /// comma-separated seed nodes (all `redis://` or all `rediss://`).
    pub fn addresses(
        &self,
        line: Option<usize>,
        field: &str,
        raw: &str,
        cluster: bool,
    ) -> Result<Vec<RedisAddress>, ManifestError> {
        let text = self
            .vars
            .expand(raw)
            .map_err(|m| self.at.error(K::Variable, line, Some(field), m))?;
        // Every refusal here is a bad address of this one field.
        let bad = |msg: String, hint: &str| {
            self.at
                .error(K::BadAddress, line, Some(field), msg)
                .hint(hint)
        };
        let parts: Vec<&str> = text.split(',').map(str::trim).collect();
        if parts.len() > 1 && !cluster {
            return Err(bad(
                format!(
                    "{} addresses are given, and only a cluster takes several",
                    parts.len()
                ),
                "add cluster = true beside the address to name the nodes of a Redis Cluster, or give one address",
            ));
        }
        let nodes = parts
            .iter()
            .map(|p| {
                RedisAddress::parse(p).map_err(|e| {
                    bad(
                        format!("bad address: {e}"),
                        "write it as redis://[user[:password]@]host[:port][/db], or rediss:// for TLS",
                    )
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if nodes.iter().any(|n| n.is_tls() != nodes[0].is_tls()) {
            return Err(bad(
                "the cluster's nodes mix redis:// and rediss://".into(),
                "a cluster uses TLS on all of its nodes or on none",
            ));
        }
        Ok(nodes)
    }
}

/// `Ok` when `claim_idle` exceeds `timeout`; else says why it must.
pub fn check_claim_idle(claim_idle: Duration, timeout: Duration) -> Result<(), String> {
    if claim_idle > timeout {
        return Ok(());
    }
    Err(format!(
        "claim_idle {} must be longer than the timeout ({}), or entries still running would be taken over by other consumers",
        humantime::format_duration(claim_idle),
        humantime::format_duration(timeout)
    ))
}

/// Checks every stream trigger's `claim_idle` (its own, or the default for
/// `timeout`) against the timeout in force: the manifest checked it against
/// its own `timeout`, and `--timeout` may differ.
pub fn check_claim_idles(app: &App, timeout: Duration) -> Result<(), String> {
    let too_short = app.triggers.iter().find_map(|t| {
        let s = t.stream.as_ref()?;
        let claim_idle = s.claim_idle.unwrap_or_else(|| default_claim_idle(timeout));
        check_claim_idle(claim_idle, timeout).err().map(|m| (t, m))
    });
    match too_short {
        None => Ok(()),
        Some((t, m)) => Err(format!(
            "the stream trigger of component {:?} (stream {:?}): {m}; raise claim_idle in the manifest or lower --timeout",
            t.component, t.channel
        )),
    }
}

/// `0`, `$`, or an entry id (`<ms>` or `<ms>-<seq>`).
fn is_start(s: &str) -> bool {
    let digits = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    match s.split_once('-') {
        _ if s == "$" => true,
        Some((ms, seq)) => digits(ms) && digits(seq),
        None => digits(s),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_is_zero_dollar_or_an_entry_id() {
        for ok in ["0", "$", "1700000000000-0", "17"] {
            assert!(is_start(ok), "{ok}");
        }
        for bad in ["", "-", "now", "1-", "-1", "1-2-3", "$0"] {
            assert!(!is_start(bad), "{bad}");
        }
    }

    #[test]
    fn the_default_claim_idle_always_exceeds_the_timeout() {
        assert_eq!(
            default_claim_idle(Duration::from_secs(30)),
            Duration::from_secs(60)
        );
        assert_eq!(
            default_claim_idle(Duration::from_secs(45)),
            Duration::from_secs(90)
        );
        for t in [1, 30, 60, 86_400] {
            let t = Duration::from_secs(t);
            assert!(check_claim_idle(default_claim_idle(t), t).is_ok());
        }
        assert!(check_claim_idle(Duration::from_secs(5), Duration::from_secs(5)).is_err());
    }
}
