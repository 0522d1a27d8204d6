//! Manifest version 2: `[application.trigger.redis]` with the default
//! address, `[[trigger.redis]]` entries binding a channel to a component (with
//! an optional address override and executor), and `[component.<id>]` tables.
//! Other trigger types in the same file are ignored with a warning, so one
//! Spin app can run its redis part here.

use super::app::{App, Component, Trigger};
use super::error::{Locator, ManifestError, ManifestErrorKind as K};
use super::shared::{AppTrigger, Ctx, Draft, ExecutorSpec, FileEntry, environment, executor};
use super::v1::remote_source;
use super::variables::{VariableDecl, Variables};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct ManifestV2 {
    spin_manifest_version: toml::Value,
    application: Application,
    #[serde(default)]
    variables: BTreeMap<String, VariableDecl>,
    #[serde(default)]
    trigger: Triggers,
    #[serde(default)]
    component: BTreeMap<String, ComponentV2>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct Application {
    name: Option<String>,
    version: Option<String>,
    description: Option<String>,
    authors: Option<Vec<String>>,
    #[serde(default)]
    trigger: AppTriggers,
}

#[derive(Deserialize, Default)]
struct AppTriggers {
    redis: Option<AppTrigger>,
    #[serde(flatten)]
    other: BTreeMap<String, toml::Value>,
}

#[derive(Deserialize, Default)]
struct Triggers {
    #[serde(default)]
    redis: Vec<RedisTrigger>,
    #[serde(flatten)]
    other: BTreeMap<String, toml::Value>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct RedisTrigger {
    id: Option<String>,
    channel: String,
    component: toml::Value,
    address: Option<String>,
    executor: Option<ExecutorSpec>,
    max_concurrency: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // Spin fields for host APIs spin-redis does not provide
struct ComponentV2 {
    source: toml::Value,
    description: Option<String>,
    #[serde(default)]
    environment: BTreeMap<String, String>,
    #[serde(default)]
    files: Vec<FileEntry>,
    #[serde(default)]
    exclude_files: Vec<String>,
    allowed_outbound_hosts: Option<toml::Value>,
    key_value_stores: Option<toml::Value>,
    sqlite_databases: Option<toml::Value>,
    ai_models: Option<toml::Value>,
    variables: Option<toml::Value>,
    build: Option<toml::Value>,
    dependencies: Option<toml::Value>,
    dependencies_inherit_configuration: Option<toml::Value>,
}

pub fn parse(
    at: &Locator<'_>,
    dir: &Path,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<App, ManifestError> {
    let de = toml::Deserializer::parse(text).map_err(|e| at.toml_error(None, &e))?;
    let m: ManifestV2 = serde_path_to_error::deserialize(de)
        .map_err(|e| at.toml_error(Some(e.path().to_string()), e.inner()))?;

    for kind in m
        .trigger
        .other
        .keys()
        .chain(m.application.trigger.other.keys())
    {
        tracing::warn!(trigger = %kind, "ignoring the {kind:?} triggers in the manifest: spin-redis runs only redis triggers");
    }
    let vars = Variables::resolve(&m.variables, env).map_err(|msg| {
        at.error(
            K::Variable,
            at.header("[variables]", 0),
            Some("variables"),
            msg,
        )
    })?;
    let cx = Ctx { at, dir, vars };

    let app_trigger = m.application.trigger.redis.clone().unwrap_or_default();
    let app_line = at.header("[application.trigger.redis]", 0);
    if let Some(kind) = &app_trigger.kind {
        return Err(at
            .error(
                K::UnknownField,
                app_line,
                Some("application.trigger.redis.type"),
                format!("`type = {kind:?}` belongs to version 1 manifests"),
            )
            .hint("remove it: in version 2 the table's name says the trigger type"));
    }
    let default_address = app_trigger
        .address
        .as_deref()
        .map(|a| {
            cx.address(
                app_line
                    .and_then(|l| at.key_after(l, "address"))
                    .or(app_line),
                "application.trigger.redis.address",
                a,
            )
        })
        .transpose()?;
    let settings = cx.settings(&app_trigger, "application.trigger.redis")?;

    let mut components = Vec::new();
    for (id, c) in &m.component {
        let start = at
            .header(&format!("[component.{id}]"), 0)
            .or_else(|| at.header(&format!("[component.\"{id}\"]"), 0));
        let line = |key: &str| start.and_then(|s| at.key_after(s, key)).or(start);
        let field = |key: &str| format!("component.{id}.{key}");
        cx.id(start, &format!("component.{id}"), id)?;
        let source = match &c.source {
            toml::Value::String(s) => cx.source(line("source"), &field("source"), id, s)?,
            _ => return Err(remote_source(at, line("source"), &field("source"), id)),
        };
        let files = cx.files(line("files"), &field("files"), &c.files)?;
        let exclude_files = cx.exclude_files(
            line("exclude_files"),
            &field("exclude_files"),
            &c.exclude_files,
        )?;
        components.push(Draft {
            value: Component {
                id: id.clone(),
                source,
                environment: environment(&c.environment),
                files,
                exclude_files,
            },
            line: start,
            field: format!("component.{id}"),
        });
    }

    let mut triggers = Vec::new();
    for (i, t) in m.trigger.redis.iter().enumerate() {
        let start = at.header("[[trigger.redis]]", i);
        let line = |key: &str| start.and_then(|s| at.key_after(s, key)).or(start);
        let field = |key: &str| format!("trigger.redis[{i}].{key}");
        let component = match &t.component {
            toml::Value::String(s) => s.clone(),
            _ => {
                return Err(at
                    .error(
                        K::BadValue,
                        line("component"),
                        Some(&field("component")),
                        "inline components are not supported",
                    )
                    .hint(
                        "define the component as [component.<id>] and set component = \"<id>\"",
                    ));
            }
        };
        let channel = cx.channel(line("channel"), &field("channel"), &t.channel)?;
        let address = match (&t.address, &default_address) {
            (Some(a), _) => cx.address(line("address"), &field("address"), a)?,
            (None, Some(a)) => a.clone(),
            (None, None) => {
                return Err(at
                    .error(K::BadAddress, start, Some(&field("address")), "this trigger has no address and the application sets none")
                    .hint("set address under [application.trigger.redis], or address = \"redis://host:6379\" on the trigger"));
            }
        };
        let max_concurrency = cx.trigger_concurrency(
            line("max_concurrency"),
            &field("max_concurrency"),
            t.max_concurrency,
        )?;
        triggers.push(Draft {
            value: Trigger {
                address,
                channel,
                component,
                executor: executor(t.executor.as_ref()),
                max_concurrency,
            },
            line: line("component"),
            field: field("component"),
        });
    }
    let name = m.application.name.unwrap_or_else(|| "app".into());
    cx.finish(name, components, triggers, settings)
}
