//! `spin-redis invoke`: run one component once on one payload without Redis,
//! as `up` would run it for a message on its channel. Prints the handler's
//! stdout to stdout and its stderr to stderr as they are (no prefix), then
//! the result on stderr. Exit 0 when the handler succeeded, 1 when it failed.
//! Only the invoked component is prepared.

use crate::cli::InvokeArgs;
use crate::failure::Failure;
use crate::prepare::prepare;
use anyhow::{Context as _, anyhow};
use bytes::Bytes;
use spin_redis_sandbox::wasi::{Message, Origin, StreamEntry};
use std::io::{Read as _, Write as _};

/// Returns the exit code.
pub fn invoke(args: InvokeArgs) -> Result<u8, Failure> {
    if args.build {
        let only = [args.component.clone()];
        crate::build::build_manifest(&args.common.from, &only, crate::build::Echo::Stderr)?;
    }
    let payload: Bytes = match (&args.payload, &args.payload_file) {
        (Some(text), _) => Bytes::from(text.clone().into_bytes()),
        (None, Some(path)) if path.as_os_str() == "-" => {
            let mut buf = Vec::new();
            std::io::stdin()
                .read_to_end(&mut buf)
                .context("cannot read the payload from stdin")
                .map_err(Failure::usage)?;
            buf.into()
        }
        (None, Some(path)) => std::fs::read(path)
            .with_context(|| {
                format!(
                    "cannot read the payload file {:?}",
                    path.display().to_string()
                )
            })
            .map_err(Failure::usage)?
            .into(),
        (None, None) => Bytes::new(),
    };
    // Only the invoked component is prepared: another one's broken file
    // should not stop a quick test of this one.
    let p = prepare(&args.common, args.common.overrides(), Some(&args.component))?;
    let Some(trigger) = p
        .app
        .triggers
        .iter()
        .find(|t| t.component == args.component)
    else {
        let known: Vec<&str> = p.app.components.iter().map(|c| c.id.as_str()).collect();
        return Err(Failure::usage(anyhow!(
            "no component {:?} in {:?}; the components are: {}",
            args.component,
            p.app.manifest.display().to_string(),
            known.join(", ")
        )));
    };
    let handler = p
        .handlers
        .get(&trigger.component, &trigger.executor)
        .expect("invariant: every trigger's handler was prepared");
    let channel = args
        .channel
        .clone()
        .unwrap_or_else(|| trigger.channel.clone());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")
        .map_err(Failure::runtime)?;
    // A stream trigger's handler sees a stream entry: a first delivery of
    // entry `0-0` (no entry has that id).
    let stream = (trigger.stream.is_some() && args.channel.is_none()).then_some(StreamEntry {
        id: "0-0",
        delivery: 1,
    });
    // A pattern trigger's handler sees the pattern, and the channel given
    // (the pattern itself when none is); a list trigger's a first delivery.
    let origin = match (&trigger.list, args.channel.is_none()) {
        _ if trigger.pattern => Some(Origin::Pattern(&trigger.channel)),
        (Some(_), true) => Some(Origin::List { delivery: 1 }),
        _ => None,
    };
    let outcome = rt.block_on(handler.executor.run(Message {
        channel: &channel,
        address: trigger.address.redacted(),
        payload,
        stream,
        origin,
    }));
    // A closed stdout/stderr is not the handler's failure.
    let _ = std::io::stdout().lock().write_all(&outcome.stdout);
    let _ = std::io::stderr().lock().write_all(&outcome.stderr);
    for (cut, stream) in [
        (outcome.stdout_cut, "stdout"),
        (outcome.stderr_cut, "stderr"),
    ] {
        if cut > 0 {
            eprintln!("spin-redis: {cut} more bytes of {stream} were cut at the output cap");
        }
    }
    Ok(match outcome.result {
        Ok(()) => {
            eprintln!("spin-redis: {}: ok", args.component);
            0
        }
        Err(e) => {
            eprintln!("spin-redis: {}: {e}", args.component);
            crate::failure::RUNTIME
        }
    })
}
