//! Reading what `spin-redis` printed on stderr: per-channel receive counts
//! (with [`TRACE_RECEIVED`]), "handler failed" reasons and the shutdown
//! summary lines, and the usage error for an unknown component. Does not own
//! waiting (`wait`, `spin_redis`).

/// Logs every message the dispatcher receives, so a test can wait until a
/// burst has arrived before it publishes more or stops spin-redis.
pub const TRACE_RECEIVED: &str = "info,spin_redis::dispatch=trace";

/// How many messages on `channel` the dispatcher has received so far.
pub fn received(stderr: &str, channel: &str) -> usize {
    stderr
        .matches(&format!("received channel={channel} "))
        .count()
}

/// The reasons of the "handler failed" warnings for `component` on `channel`.
pub fn failures(stderr: &str, component: &str, channel: &str) -> Vec<String> {
    stderr
        .lines()
        .filter(|l| {
            l.contains("handler failed")
                && l.contains(&format!("component={component} "))
                && l.contains(&format!("channel={channel} "))
        })
        .map(|l| match l.split_once("reason=") {
            Some((_, reason)) => reason.to_string(),
            None => panic!("a failure without a reason: {l}"),
        })
        .collect()
}

/// The `N` numbers written in `counts`, a part of the summary `line`.
pub fn summary_numbers<const N: usize>(line: &str, counts: &str) -> [u64; N] {
    let nums: Vec<u64> = counts
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty())
        .map(|s| s.parse().expect("a run of digits is a number"))
        .collect();
    nums.try_into()
        .unwrap_or_else(|_| panic!("bad summary {line}"))
}

/// The shutdown summary line, parsed: (received, ok, failed, dropped,
/// skipped, cut short).
pub fn summary(stderr: &str) -> [u64; 6] {
    let line = stderr
        .lines()
        .find(|l| l.starts_with("spin-redis: received"))
        .unwrap_or_else(|| panic!("no summary in:\n{stderr}"));
    summary_numbers(line, line)
}

/// The shutdown line of source `kind` (`list`, `stream`) named `name`:
/// the line and what follows its `): `.
pub fn source_summary<'a>(stderr: &'a str, kind: &str, name: &str) -> (&'a str, &'a str) {
    let prefix = format!("spin-redis: {kind} {name:?}");
    let line = stderr
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no summary for {name} in:\n{stderr}"));
    let counts = line
        .split("): ")
        .nth(1)
        .unwrap_or_else(|| panic!("no counts in {line}"));
    (line, counts)
}

/// A run that named a component the manifest lacks: a usage error (exit 2)
/// naming it and listing the ids there are (`known`, comma-separated).
pub fn assert_unknown_component(code: i32, stderr: &str, name: &str, known: &str) {
    assert_eq!(code, 2);
    assert!(
        stderr.contains(&format!("no component \"{name}\"")) && stderr.contains(known),
        "{stderr}"
    );
}
