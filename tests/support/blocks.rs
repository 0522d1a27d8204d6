//! Parsing what the environment-printing handlers wrote to their logs into
//! one map per run. Does not own the handlers (see `wasm`).

use std::collections::BTreeMap;

/// The environment blocks `env.wat` printed, one map per run. Each run
/// starts with the component's own `BLOCK=start` (user variables come
/// first).
pub fn wagi_blocks(log: &str) -> Vec<BTreeMap<String, String>> {
    log.split("BLOCK=start\n")
        .skip(1)
        .map(|block| {
            block
                .lines()
                .filter_map(|l| l.split_once('='))
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        })
        .collect()
}

/// The environment blocks the Rust component printed: sorted `KEY=VALUE`
/// lines, each run ended by `payload bytes: N`.
pub fn component_blocks(log: &str) -> Vec<BTreeMap<String, String>> {
    let mut out = Vec::new();
    let mut block = BTreeMap::new();
    for line in log.lines() {
        if line.starts_with("payload bytes: ") {
            out.push(std::mem::take(&mut block));
        } else if let Some((k, v)) = line.split_once('=') {
            block.insert(k.to_string(), v.to_string());
        }
    }
    out
}
