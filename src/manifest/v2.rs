//! Manifest version 2: `[application.trigger.redis]` with the default
//! address, `[[trigger.redis]]` entries binding a channel or a stream to a
//! component (with an optional address override and executor), and
//! `[component.<id>]` tables.
//! Other trigger types in the same file are ignored with a warning, so one
//! Spin app can run its redis part here.

use super::app::{App, Component, Trigger};
use super::build::BuildSpec;
use super::error::{Locator, ManifestError, ManifestErrorKind as K};
use super::host_apis::{HostFields, HostPlace};
use super::shared::{AppTrigger, Ctx, Draft, ExecutorSpec, FileEntry, environment, executor};
use super::source::{Owner, Place, SourceFields};
use super::v1::remote_source;
use super::variables::{VariableDecl, Variables};
use crate::settings::DEFAULT_TIMEOUT;
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
    channel: Option<String>,
    pattern: Option<String>,
    component: toml::Value,
    address: Option<String>,
    executor: Option<ExecutorSpec>,
    max_concurrency: Option<u64>,
    cluster: Option<bool>,
    sharded: Option<bool>,
    stream: Option<String>,
    list: Option<String>,
    group: Option<String>,
    consumer: Option<String>,
    field: Option<String>,
    start: Option<String>,
    max_deliveries: Option<u64>,
    dead_letter: Option<String>,
    claim_idle: Option<String>,
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
    allowed_outbound_hosts: Option<Vec<String>>,
    key_value_stores: Option<Vec<String>>,
    sqlite_databases: Option<toml::Value>,
    ai_models: Option<toml::Value>,
    variables: Option<BTreeMap<String, String>>,
    build: Option<BuildSpec>,
    dependencies: Option<toml::Value>,
    dependencies_inherit_configuration: Option<toml::Value>,
}

pub fn parse(
    at: &Locator<'_>,
    dir: &Path,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
    sources: super::Sources,
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
    let cx = Ctx {
        at,
        dir,
        vars,
        sources,
    };

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
    let app_cluster = app_trigger.cluster.unwrap_or(false);
    let app_address_line = app_line
        .and_then(|l| at.key_after(l, "address"))
        .or(app_line);
    let app_address_field = "application.trigger.redis.address";
    // Checked here even if every trigger has its own address.
    if let Some(a) = &app_trigger.address {
        cx.addresses(app_address_line, app_address_field, a, app_cluster)?;
    }
    let settings = cx.settings(&app_trigger, "application.trigger.redis")?;
    let app_name = m.application.name.clone().unwrap_or_else(|| "app".into());

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
        let variables_header = at
            .header(&format!("[component.{id}.variables]"), 0)
            .or_else(|| at.header(&format!("[component.\"{id}\".variables]"), 0));
        let host_apis = cx.host_apis(
            &HostPlace {
                line: &line,
                variable_line: &|name| {
                    variables_header
                        .or(start)
                        .and_then(|s| at.key_after(s, name))
                },
                field: &field,
                variables_key: "variables",
            },
            &HostFields {
                allowed_outbound_hosts: c.allowed_outbound_hosts.as_deref(),
                allowed_http_hosts: None,
                key_value_stores: c.key_value_stores.as_deref(),
                variables: c.variables.as_ref(),
                v1: false,
            },
        )?;
        let build_header = at
            .header(&format!("[component.{id}.build]"), 0)
            .or_else(|| at.header(&format!("[component.\"{id}\".build]"), 0))
            .or(start);
        let build = c
            .build
            .as_ref()
            .map(|b| {
                cx.build(
                    &|key| {
                        build_header
                            .and_then(|s| at.key_after(s, key))
                            .or(build_header)
                    },
                    &|key| field(&format!("build.{key}")),
                    b,
                )
            })
            .transpose()?;
        components.push(Draft {
            value: Component {
                id: id.clone(),
                source,
                environment: environment(&c.environment),
                files,
                exclude_files,
                host_apis,
                build,
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
        let cluster = t.cluster.unwrap_or(app_cluster);
        let nodes = match (&t.address, &app_trigger.address) {
            (Some(a), _) => cx.addresses(line("address"), &field("address"), a, cluster)?,
            (None, Some(a)) => cx.addresses(app_address_line, app_address_field, a, cluster)?,
            (None, None) => {
                return Err(at
                    .error(K::BadAddress, start, Some(&field("address")), "this trigger has no address and the application sets none")
                    .hint("set address under [application.trigger.redis], or address = \"redis://host:6379\" on the trigger"));
            }
        };
        let address = nodes[0].clone();
        let from = cx.trigger_source(
            &Place {
                start,
                line: &line,
                field: &field,
            },
            &SourceFields {
                channel: t.channel.as_deref(),
                pattern: t.pattern.as_deref(),
                stream: t.stream.as_deref(),
                list: t.list.as_deref(),
                group: t.group.as_deref(),
                consumer: t.consumer.as_deref(),
                field: t.field.as_deref(),
                start: t.start.as_deref(),
                max_deliveries: t.max_deliveries,
                dead_letter: t.dead_letter.as_deref(),
                claim_idle: t.claim_idle.as_deref(),
                sharded: t.sharded,
            },
            &Owner {
                app: &app_name,
                component: &component,
                timeout: settings.timeout.unwrap_or(DEFAULT_TIMEOUT),
                cluster,
            },
        )?;
        let max_concurrency = cx.trigger_concurrency(
            line("max_concurrency"),
            &field("max_concurrency"),
            t.max_concurrency,
        )?;
        triggers.push(Draft {
            value: Trigger {
                address,
                channel: from.name,
                pattern: from.pattern,
                component,
                executor: executor(t.executor.as_ref()),
                max_concurrency,
                stream: from.stream,
                list: from.list,
                cluster: cluster.then_some(nodes),
                sharded: from.sharded,
            },
            line: line("component"),
            field: field("component"),
        });
    }
    cx.finish(app_name, components, triggers, settings)
}
