//! Manifest version 1, the seed's format: `trigger = { type = "redis",
//! address }` and `[[component]]` entries, each with its own
//! `[component.trigger]` channel (or stream) and executor.

use super::app::{App, Component, Trigger, source_kind};
use super::build::BuildSpec;
use super::error::{Locator, ManifestError, ManifestErrorKind as K};
use super::host_apis::{HostFields, HostPlace};
use super::shared::{AppTrigger, Ctx, Draft, ExecutorSpec, FileEntry, environment, executor};
use super::source::{Owner, Place, SourceFields};
use super::variables::{VariableDecl, Variables};
use crate::settings::DEFAULT_TIMEOUT;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::Path;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // descriptive fields are accepted and not used
struct ManifestV1 {
    spin_manifest_version: Option<toml::Value>,
    spin_version: Option<toml::Value>,
    name: Option<String>,
    version: Option<String>,
    description: Option<String>,
    authors: Option<Vec<String>>,
    trigger: AppTrigger,
    #[serde(default)]
    component: Vec<ComponentV1>,
    #[serde(default)]
    variables: BTreeMap<String, VariableDecl>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)] // Spin fields for host APIs spin-redis does not provide
struct ComponentV1 {
    id: String,
    source: toml::Value,
    description: Option<String>,
    #[serde(default)]
    environment: BTreeMap<String, String>,
    #[serde(default)]
    files: Vec<FileEntry>,
    #[serde(default)]
    exclude_files: Vec<String>,
    allowed_http_hosts: Option<Vec<String>>,
    allowed_outbound_hosts: Option<Vec<String>>,
    key_value_stores: Option<Vec<String>>,
    sqlite_databases: Option<toml::Value>,
    ai_models: Option<toml::Value>,
    config: Option<BTreeMap<String, String>>,
    build: Option<BuildSpec>,
    trigger: ComponentTriggerV1,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ComponentTriggerV1 {
    channel: Option<String>,
    pattern: Option<String>,
    executor: Option<ExecutorSpec>,
    max_concurrency: Option<u64>,
    stream: Option<String>,
    list: Option<String>,
    group: Option<String>,
    consumer: Option<String>,
    field: Option<String>,
    start: Option<String>,
    max_deliveries: Option<u64>,
    dead_letter: Option<String>,
    claim_idle: Option<String>,
    sharded: Option<bool>,
}

pub fn parse(
    at: &Locator<'_>,
    dir: &Path,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
    sources: super::Sources,
) -> Result<App, ManifestError> {
    let de = toml::Deserializer::parse(text).map_err(|e| at.toml_error(None, &e))?;
    let m: ManifestV1 = serde_path_to_error::deserialize(de)
        .map_err(|e| at.toml_error(Some(e.path().to_string()), e.inner()))?;

    let vars = Variables::resolve(&m.variables, env).map_err(|msg| {
        at.error(
            K::Variable,
            at.line_of_key("variables"),
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

    let trigger_line = at.line_of_key("trigger");
    match m.trigger.kind.as_deref() {
        Some("redis") => {}
        other => {
            return Err(at
                .error(
                    K::TriggerType,
                    trigger_line,
                    Some("trigger.type"),
                    format!("trigger type {:?} is not supported", other.unwrap_or("")),
                )
                .hint("spin-redis runs redis triggers: trigger = { type = \"redis\", address = \"redis://host:6379\" }"));
        }
    }
    let address_raw = m.trigger.address.as_deref().ok_or_else(|| {
        at.error(
            K::BadAddress,
            trigger_line,
            Some("trigger.address"),
            "the redis trigger has no address",
        )
        .hint("trigger = { type = \"redis\", address = \"redis://host:6379\" }")
    })?;
    let cluster = m.trigger.cluster.unwrap_or(false);
    let nodes = cx.addresses(
        at.line_of_key("address").or(trigger_line),
        "trigger.address",
        address_raw,
        cluster,
    )?;
    let address = nodes[0].clone();
    let settings = cx.settings(&m.trigger, "trigger")?;
    let name = m.name.clone().unwrap_or_else(|| "app".into());

    let mut components = Vec::new();
    let mut triggers = Vec::new();
    for (i, c) in m.component.iter().enumerate() {
        let start = at.header("[[component]]", i);
        let line = |key: &str| start.and_then(|s| at.key_after(s, key)).or(start);
        let field = |key: &str| format!("component[{i}].{key}");
        cx.id(line("id"), &field("id"), &c.id)?;
        let source = match &c.source {
            toml::Value::String(s) => cx.source(line("source"), &field("source"), &c.id, s)?,
            _ => return Err(remote_source(at, line("source"), &field("source"), &c.id)),
        };
        let files = cx.files(line("files"), &field("files"), &c.files)?;
        let exclude_files = cx.exclude_files(
            line("exclude_files"),
            &field("exclude_files"),
            &c.exclude_files,
        )?;
        let t = &c.trigger;
        let from = cx.trigger_source(
            &Place {
                start,
                line: &line,
                field: &|key| field(&format!("trigger.{key}")),
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
                app: &name,
                component: &c.id,
                timeout: settings.timeout.unwrap_or(DEFAULT_TIMEOUT),
                cluster,
            },
        )?;
        let source_key = source_kind(from.stream.is_some(), from.list.is_some(), from.pattern);
        let max_concurrency = cx.trigger_concurrency(
            line("max_concurrency"),
            &field("trigger.max_concurrency"),
            c.trigger.max_concurrency,
        )?;
        let host_apis = cx.host_apis(
            &HostPlace {
                line: &line,
                variable_line: &|name| start.and_then(|s| at.key_after(s, name)),
                field: &field,
                variables_key: "config",
            },
            &HostFields {
                allowed_outbound_hosts: c.allowed_outbound_hosts.as_deref(),
                allowed_http_hosts: c.allowed_http_hosts.as_deref(),
                key_value_stores: c.key_value_stores.as_deref(),
                variables: c.config.as_ref(),
                v1: true,
            },
        )?;
        let build = c
            .build
            .as_ref()
            .map(|b| cx.build(&line, &|key| field(&format!("build.{key}")), b))
            .transpose()?;
        components.push(Draft {
            value: Component {
                id: c.id.clone(),
                source,
                environment: environment(&c.environment),
                files,
                exclude_files,
                host_apis,
                build,
            },
            line: line("id"),
            field: field("id"),
        });
        triggers.push(Draft {
            value: Trigger {
                address: address.clone(),
                channel: from.name,
                pattern: from.pattern,
                component: c.id.clone(),
                executor: executor(c.trigger.executor.as_ref()),
                max_concurrency,
                stream: from.stream,
                list: from.list,
                cluster: cluster.then(|| nodes.clone()),
                sharded: from.sharded,
            },
            line: line(source_key),
            field: field("trigger"),
        });
    }
    cx.finish(name, components, triggers, settings)
}

pub fn remote_source(
    at: &Locator<'_>,
    line: Option<usize>,
    field: &str,
    id: &str,
) -> ManifestError {
    at.error(
        K::MissingSource,
        line,
        Some(field),
        format!("component {id:?} has a remote source, which spin-redis does not download"),
    )
    .hint("download the .wasm file and set source = \"path/to/file.wasm\"")
}
