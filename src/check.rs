//! `spin-redis check`: everything `up` does before it connects, and nothing
//! after. Validates the manifest, compiles every component (filling the
//! compiled-code cache, so a later `up` starts warm) and prints one line per
//! trigger: its source, component, executor, the interface found, and the
//! host APIs the component imports with whether each is provided. Every
//! component is prepared even after one fails, so all problems are listed
//! at once. Never connects to Redis; addresses are shown without
//! credentials.
//!
//! Not owned here: the preparation itself (`prepare`, `executor`).

use crate::cli::CheckArgs;
use crate::executor::{Executor, Handlers};
use crate::failure::Failure;
use crate::prepare::{Setup, setup};
use std::collections::HashSet;

pub fn check(args: CheckArgs) -> Result<u8, Failure> {
    let Setup {
        app,
        config,
        stores,
        runtime,
    } = setup(&args.common, args.common.overrides(), None)?;
    // One pass over the triggers for every component (preparing them one
    // component at a time scanned every trigger per component).
    let checked = Handlers::prepare_each(&runtime, &app, &config, &stores, &args.common.env);
    let failed: HashSet<&str> = checked.failed.iter().map(|(id, _)| id.as_str()).collect();
    let problems: Vec<&String> = checked.failed.iter().map(|(_, p)| p).collect();
    for t in &app.triggers {
        let source = match &t.stream {
            Some(_) => format!("stream {:?}", t.channel),
            None if t.pattern => format!("pattern {:?}", t.channel),
            None if t.list.is_some() => format!("list {:?}", t.channel),
            None => format!("channel {:?}", t.channel),
        };
        let ready = (!failed.contains(t.component.as_str()))
            .then(|| checked.handlers.get(&t.component, &t.executor))
            .flatten();
        let what = match ready {
            Some(h) => format!(
                "{}; host APIs: {}",
                h.executor.describe(),
                host_apis(&h.executor)
            ),
            None => "not ready (see below)".to_string(),
        };
        println!(
            "{source} at {} -> component {:?}: {what}",
            t.address.redacted(),
            t.component
        );
    }
    if problems.is_empty() {
        let ready: HashSet<&str> = app.triggers.iter().map(|t| t.component.as_str()).collect();
        println!(
            "ok: {} trigger(s), {} component(s) ready",
            app.triggers.len(),
            ready.len()
        );
        return Ok(0);
    }
    for p in &problems {
        eprintln!("problem: {p}");
    }
    Err(Failure::usage(anyhow::anyhow!(
        "{} problem(s) found in {:?}",
        problems.len(),
        app.manifest.display().to_string()
    )))
}

/// The non-WASI imports of a component and whether each is provided.
fn host_apis(executor: &Executor) -> String {
    let Executor::Spin(c) = executor else {
        return "none".into();
    };
    let apis: Vec<String> = c
        .imports()
        .iter()
        .filter(|i| !i.name.starts_with("wasi:"))
        .map(|i| {
            format!(
                "{} ({})",
                i.name,
                if i.provided {
                    "provided"
                } else {
                    "not provided: a call fails the message"
                }
            )
        })
        .collect();
    if apis.is_empty() {
        "none".into()
    } else {
        apis.join(", ")
    }
}
