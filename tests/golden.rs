//! Golden-output tests: every example handler (and the mixed app) run by
//! `spin-redis up` against a real redis-server, with the messages in
//! `tests/golden/<case>/case.toml`; each component's stdout, stderr and
//! per-message results are compared with `tests/golden/<case>/<id>.stdout`,
//! `.stderr` and `.results`, printing a unified diff on mismatch.
//!
//! `SNAPSHOTS=overwrite cargo test --test suite golden::` rewrites the golden files
//! (read the diff before committing them); CI never sets it.
//!
//! Runs with `--max-concurrency 1` so that each component's messages are
//! handled one at a time in publish order, which makes the files
//! deterministic.

use crate::support;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use support::*;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    /// Relative to the repository root.
    manifest: String,
    messages: Vec<Msg>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Msg {
    channel: String,
    payload: Option<String>,
    payload_hex: Option<String>,
}

impl Msg {
    fn bytes(&self) -> Vec<u8> {
        match (&self.payload, &self.payload_hex) {
            (Some(text), None) => text.clone().into_bytes(),
            (None, Some(hex)) => (0..hex.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("payload_hex is hex"))
                .collect(),
            _ => panic!("a message has exactly one of payload and payload_hex"),
        }
    }
}

/// What one component produced in one run.
#[derive(Default)]
struct Produced {
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    results: String,
}

fn run_case(dir: &Path) -> BTreeMap<String, Produced> {
    let case: Case = toml::from_str(&std::fs::read_to_string(dir.join("case.toml")).unwrap())
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let manifest_path = repo().join(&case.manifest);
    let redis = Redis::start();
    let port = redis.port.to_string();
    let env = |k: &str| (k == "SPIN_VARIABLE_REDIS_PORT").then(|| port.clone());
    let app = spin_redis::manifest::parse(
        &manifest_path,
        &std::fs::read_to_string(&manifest_path).unwrap(),
        &env,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    for c in &app.components {
        assert!(
            c.source.is_file(),
            "{} is missing: run `bash examples/build.sh`",
            c.source.display()
        );
    }
    let mut channels: Vec<&str> = app.triggers.iter().map(|t| t.channel.as_str()).collect();
    channels.dedup();
    let deliveries: usize = case
        .messages
        .iter()
        .map(|m| {
            app.triggers
                .iter()
                .filter(|t| t.channel == m.channel)
                .count()
        })
        .sum();
    // A fresh key-value store for every run (not the one beside the
    // example's manifest), so counts start at zero.
    let state = tempfile::tempdir().unwrap();
    let mut s = SpinRedis::up_with_env(
        &redis,
        &manifest_path,
        &[
            "--max-concurrency",
            "1",
            "-q",
            "--state-dir",
            state.path().to_str().unwrap(),
        ],
        &[
            ("SPIN_VARIABLE_REDIS_PORT", &port),
            ("SPIN_REDIS_LOG", "info,spin_redis::dispatch=debug"),
        ],
        &channels,
    );
    for m in &case.messages {
        redis.publish(&m.channel, &m.bytes());
    }
    wait_until(
        &format!("{deliveries} results in {}", dir.display()),
        || results(&s.stderr()).len() >= deliveries,
    );
    assert!(s.stop().success());
    let mut out: BTreeMap<String, Produced> = BTreeMap::new();
    for c in &app.components {
        let p = out.entry(c.id.clone()).or_default();
        p.stdout = s.log(&format!("{}_stdout.txt", c.id));
        p.stderr = s.log(&format!("{}_stderr.txt", c.id));
    }
    for (component, line) in results(&s.stderr()) {
        let p = out.entry(component).or_default();
        p.results.push_str(&line);
        p.results.push('\n');
    }
    out
}

/// `(component, "ok on <channel>" | "error on <channel>: <reason>")` in order.
fn results(stderr: &str) -> Vec<(String, String)> {
    let field = |line: &str, key: &str| -> String {
        let start = line.find(key).map(|i| i + key.len()).unwrap_or(line.len());
        line[start..].split(' ').next().unwrap_or("").to_string()
    };
    stderr
        .lines()
        .filter_map(|l| {
            if l.contains(" handled component=") {
                Some((
                    field(l, "component="),
                    format!("ok on {}", field(l, "channel=")),
                ))
            } else if l.contains(" handler failed component=") {
                let reason = l.split_once("reason=").map_or("", |(_, r)| r);
                Some((
                    field(l, "component="),
                    format!("error on {}: {reason}", field(l, "channel=")),
                ))
            } else {
                None
            }
        })
        .collect()
}

fn compare(path: &Path, actual: &[u8], overwrite: bool, problems: &mut Vec<String>) {
    let expected = std::fs::read(path).ok();
    if expected.as_deref() == Some(actual) {
        return;
    }
    if overwrite {
        std::fs::write(path, actual).unwrap();
        eprintln!("rewrote {}", path.display());
        return;
    }
    let old = String::from_utf8_lossy(expected.as_deref().unwrap_or_default()).into_owned();
    let new = String::from_utf8_lossy(actual).into_owned();
    let diff = similar::TextDiff::from_lines(&old, &new)
        .unified_diff()
        .header(&format!("{} (golden)", path.display()), "actual")
        .to_string();
    let missing = if expected.is_none() {
        " (the golden file does not exist)"
    } else {
        ""
    };
    problems.push(format!("{}{missing}:\n{diff}", path.display()));
}

#[test]
fn every_example_matches_its_golden_output() {
    let overwrite = std::env::var("SNAPSHOTS").is_ok_and(|v| v == "overwrite");
    let root = repo().join("tests/golden");
    let mut cases: Vec<PathBuf> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("case.toml").is_file())
        .collect();
    cases.sort();
    assert!(cases.len() >= 9, "every example has a case");
    // GOLDEN_CASE=<name> runs one case (to write a new one on purpose).
    if let Ok(only) = std::env::var("GOLDEN_CASE") {
        cases.retain(|c| c.file_name().is_some_and(|n| n == only.as_str()));
        assert_eq!(cases.len(), 1, "no golden case {only:?}");
    }
    let mut problems = Vec::new();
    for dir in &cases {
        let produced = run_case(dir);
        for (id, p) in &produced {
            compare(
                &dir.join(format!("{id}.stdout")),
                &p.stdout,
                overwrite,
                &mut problems,
            );
            compare(
                &dir.join(format!("{id}.stderr")),
                &p.stderr,
                overwrite,
                &mut problems,
            );
            compare(
                &dir.join(format!("{id}.results")),
                p.results.as_bytes(),
                overwrite,
                &mut problems,
            );
        }
    }
    assert!(
        problems.is_empty(),
        "{} golden file(s) differ (SNAPSHOTS=overwrite rewrites them; read the diff first):\n\n{}",
        problems.len(),
        problems.join("\n")
    );
}
