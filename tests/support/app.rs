//! Writing the applications tests run: a manifest in a fresh folder, and a
//! runtime config beside it. Does not own where the handlers come from
//! (`wasm`) or running them (`spin_redis`).

use super::{Redis, env_component, fixture};
use std::path::{Path, PathBuf};

/// Writes `text` as `spin.toml` in a fresh folder and returns (folder, path).
pub fn manifest(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = dir.path().join("spin.toml");
    std::fs::write(&path, text).expect("write spin.toml");
    (dir, path)
}

/// Writes a runtime config beside the manifest in `dir` whose key-value
/// store `label` is the Redis server at `url`; returns its path.
pub fn redis_store_config(dir: &Path, label: &str, url: &str) -> PathBuf {
    let rc = dir.join("runtime-config.toml");
    std::fs::write(
        &rc,
        format!("[key_value_store.{label}]\ntype = \"redis\"\nurl = \"{url}\"\n"),
    )
    .expect("write runtime-config.toml");
    rc
}

/// The head of a version 1 manifest: the Redis trigger at `url`, after the
/// application `name` when there is one.
pub fn v1_head(name: Option<&str>, url: &str) -> String {
    let name = name.map_or(String::new(), |n| format!("name = \"{n}\"\n"));
    format!(
        "spin_manifest_version = \"1\"\n{name}trigger = {{ type = \"redis\", address = \"{url}\" }}\n"
    )
}

/// One version 1 component `id` from `source` bound to `channel`, run by
/// `executor` (`wagi` or `spin`); its trigger table is last, so lines
/// appended after it belong to the trigger.
pub fn v1_component(id: &str, source: &Path, channel: &str, executor: &str) -> String {
    v1_component_on(id, source, "channel", channel, executor)
}

/// Like [`v1_component`], bound by `kind` (`channel`, `pattern`) to `key`.
pub fn v1_component_on(id: &str, source: &Path, kind: &str, key: &str, executor: &str) -> String {
    format!(
        "[[component]]\nid = \"{id}\"\nsource = \"{}\"\n[component.trigger]\n{kind} = \"{key}\"\nexecutor = {{ type = \"{executor}\" }}\n",
        source.display()
    )
}

/// A version 1 manifest of WAT fixtures `(id, fixture, channel)` run by
/// `wagi`, each trigger table ending with `trigger_extra`.
pub fn v1_fixtures(
    name: Option<&str>,
    url: &str,
    components: &[(&str, &str, &str)],
    trigger_extra: &str,
) -> String {
    let mut m = v1_head(name, url);
    for (id, wat, channel) in components {
        m.push_str(&v1_component(id, &fixture(wat), channel, "wagi"));
        m.push_str(trigger_extra);
    }
    m
}

/// The head of a version 2 manifest: application `name` and its Redis
/// trigger at `url`; application-level trigger keys may follow.
pub fn v2_head(name: &str, url: &str) -> String {
    format!(
        "spin_manifest_version = 2\n[application]\nname = \"{name}\"\n[application.trigger.redis]\naddress = \"{url}\"\n"
    )
}

/// A version 2 manifest (application "app") with one `wagi` trigger of
/// `kind` (`stream`, `list`) on `key` for component `h`, the `stream.wat`
/// fixture; `trigger` and `app` are more lines for the trigger table and
/// the application's trigger table.
pub fn source_manifest(kind: &str, url: &str, key: &str, trigger: &str, app: &str) -> String {
    format!(
        "{head}{app}\n[[trigger.redis]]\n{kind} = \"{key}\"\ncomponent = \"h\"\nexecutor = {{ type = \"wagi\" }}\n{trigger}\n[component.h]\nsource = \"{}\"\n",
        fixture("stream.wat").display(),
        head = v2_head("app", url),
    )
}

/// A `[[trigger.redis]]` table of a version 2 manifest: `kind` (`channel`,
/// `pattern`, `stream`, `list`) = `key`, for `component`, run by the
/// default executor; lines appended after it belong to the trigger.
pub fn v2_trigger(kind: &str, key: &str, component: &str) -> String {
    format!("[[trigger.redis]]\n{kind} = \"{key}\"\ncomponent = \"{component}\"\n")
}

/// Like [`v2_trigger`], run by the `wagi` executor.
pub fn wagi_trigger(kind: &str, key: &str, component: &str) -> String {
    v2_trigger(kind, key, component) + "executor = { type = \"wagi\" }\n"
}

/// A `[component.<id>]` table of a version 2 manifest with its `source`;
/// lines appended after it belong to the component.
pub fn v2_component(id: &str, source: impl std::fmt::Display) -> String {
    format!("[component.{id}]\nsource = \"{source}\"\n")
}

/// A version 2 manifest (application "app") with two environment printers
/// on `kind` sources: `h` (`env.wat`, run by `wagi`) on `h_key` and `c` (the
/// Rust environment component) on `c_key`, each with an `environment` table
/// (`h_env`, `c_env`) of values the host must override with its own.
pub fn env_printers(
    kind: &str,
    url: &str,
    (h_key, h_env): (&str, &str),
    (c_key, c_env): (&str, &str),
) -> String {
    [
        v2_head("app", url),
        wagi_trigger(kind, h_key, "h"),
        v2_trigger(kind, c_key, "c"),
        v2_component("h", fixture("env.wat").display()),
        format!("environment = {{ {h_env} }}\n"),
        v2_component("c", env_component().display()),
        format!("environment = {{ {c_env} }}\n"),
    ]
    .concat()
}

/// [`source_manifest`] on `redis`, written in a fresh folder.
pub fn source_app(
    kind: &str,
    redis: &Redis,
    key: &str,
    trigger: &str,
    app: &str,
) -> (tempfile::TempDir, PathBuf) {
    manifest(&source_manifest(kind, &redis.url(), key, trigger, app))
}
