//! The compiled-code cache: a cold start fills it, a warm start uses it, and
//! a corrupt entry is recompiled, never trusted. Which of these happened is
//! read from the start-up line `prepared component=<id> ... cache=<state>`
//! (`miss`, `hit`, or `off` with `--no-cache`).

use crate::support;
use support::*;

fn files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            files(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// The `cache` field of `component`'s `prepared` line on stderr, without
/// quotes: "hit", "miss" or "off".
fn cache_state(stderr: &str, component: &str) -> String {
    let line = stderr
        .lines()
        .find(|l| l.contains("prepared") && l.contains(&format!("component={component} ")))
        .unwrap_or_else(|| panic!("no `prepared` line for {component} in:\n{stderr}"));
    let value = line
        .split(" cache=")
        .nth(1)
        .unwrap_or_else(|| panic!("no cache= field in {line:?}"));
    value
        .trim_start_matches('"')
        .split(|c: char| !c.is_ascii_alphabetic())
        .next()
        .unwrap_or_default()
        .to_string()
}

/// A manifest with one compat component, `echo`.
fn echo_manifest() -> (tempfile::TempDir, std::path::PathBuf) {
    manifest(&format!(
        "spin_manifest_version = \"1\"\ntrigger = {{ type = \"redis\", address = \"redis://127.0.0.1:1\" }}\n[[component]]\nid = \"echo\"\nsource = \"{}\"\n[component.trigger]\nchannel = \"c\"\nexecutor = {{ type = \"wagi\" }}\n",
        fixture("echo.wat").display()
    ))
}

/// `spin-redis invoke echo --payload cached` with `cache_args`; checks the
/// handler ran and returns spin-redis's stderr.
fn invoke(m: &std::path::Path, cache_args: &[&str]) -> String {
    let mut args = vec!["--payload", "cached"];
    args.extend(cache_args);
    let (code, out, err) = invoke_with(m, "echo", &args);
    assert_eq!((code, out.as_str()), (0, "cached\n"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

/// Waits until the cache folder holds at least one file and returns them all.
fn entries(cache: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut entries = Vec::new();
    wait_until("a cache entry", || {
        entries.clear();
        files(cache, &mut entries);
        !entries.is_empty()
    });
    entries
}

/// A cold start: the echo app invoked once on an empty cache folder (a
/// miss). Returns the cache folder, the app's folder and manifest, and the
/// entries the run wrote.
fn cold_start() -> (
    tempfile::TempDir,
    tempfile::TempDir,
    std::path::PathBuf,
    Vec<std::path::PathBuf>,
) {
    let cache = tempfile::tempdir().unwrap();
    let (d, m) = echo_manifest();
    let err = invoke(&m, &["--cache-dir", cache.path().to_str().unwrap()]);
    assert_eq!(cache_state(&err, "echo"), "miss", "empty cache:\n{err}");
    let written = entries(cache.path());
    (cache, d, m, written)
}

#[test]
fn a_cold_start_fills_the_cache_and_a_warm_start_uses_it() {
    let (cache, _d, m, _) = cold_start();
    let dir = cache.path().to_str().unwrap();
    let err = invoke(&m, &["--cache-dir", dir]);
    assert_eq!(cache_state(&err, "echo"), "hit", "warm cache:\n{err}");
    let err = invoke(&m, &["--cache-dir", dir, "--no-cache"]);
    assert_eq!(cache_state(&err, "echo"), "off", "--no-cache:\n{err}");
}

#[test]
fn corrupt_cache_entries_are_recompiled_not_trusted() {
    let (cache, _d, m, written) = cold_start();
    let dir = cache.path().to_str().unwrap();
    for e in written {
        std::fs::write(e, b"definitely not compiled code").unwrap();
    }
    // Still runs (checked by `invoke`), from freshly compiled code.
    let err = invoke(&m, &["--cache-dir", dir]);
    assert_eq!(
        cache_state(&err, "echo"),
        "miss",
        "a corrupt entry must be recompiled, not used:\n{err}"
    );
    // The recompiled code replaced the corrupt entry.
    let err = invoke(&m, &["--cache-dir", dir]);
    assert_eq!(
        cache_state(&err, "echo"),
        "hit",
        "after recompiling:\n{err}"
    );
}

#[test]
fn a_relative_cache_dir_is_taken_from_the_current_folder() {
    let (d, m) = echo_manifest();
    let run_in = || {
        let out = bin()
            .current_dir(d.path())
            .args([
                "invoke",
                "-f",
                m.to_str().unwrap(),
                "echo",
                "--payload",
                "x",
            ])
            .args(["--cache-dir", "relative-cache"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(out.status.success(), "{err}");
        err
    };
    assert_eq!(cache_state(&run_in(), "echo"), "miss");
    assert!(d.path().join("relative-cache").is_dir());
    assert_eq!(cache_state(&run_in(), "echo"), "hit");
}
