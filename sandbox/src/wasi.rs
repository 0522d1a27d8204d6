//! The WASI capabilities one message gets, shared by both executors.
//!
//! A [`Sandbox`] is described once per component from its manifest entry (the
//! `environment`, the `-e` values, the read-only mounts, the argv template)
//! and made a [`PreparedSandbox`] at start-up (mounts opened once); that
//! turns into a fresh WASI context for each message, adding the payload as stdin and the per-message variables
//! (`REDIS_CHANNEL`, `REDIS_ADDRESS`, `SPIN_COMPONENT_ID`, `CONTENT_LENGTH`;
//! `REDIS_PATTERN` too for a message to a pattern subscription; for a stream
//! entry `REDIS_STREAM`, `REDIS_MESSAGE_ID` and `REDIS_DELIVERY` instead of
//! `REDIS_CHANNEL`, for a list item `REDIS_LIST` and `REDIS_DELIVERY`), which
//! win over the user's. Nothing is inherited from the host: no host
//! environment, no host stdio, no network, no files but the mounts.
//!
//! Not owned here: expanding the manifest's `files` globs into mount folders
//! (the `spin-redis` crate does that at start-up).

use crate::output::CappedOutput;
use bytes::Bytes;
use std::path::PathBuf;
use wasmtime_wasi::filesystem::WasiFilesystemCtx;
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::pipe::MemoryInputPipe;
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiView as _};

/// The variables the runtime sets; they replace any user value (a channel
/// message sets the first four, a pattern message `REDIS_PATTERN` too, a
/// stream entry the stream's three and a list item the list's two instead of
/// `REDIS_CHANNEL`).
const RUNTIME_VARS: [&str; 9] = [
    "REDIS_CHANNEL",
    "REDIS_ADDRESS",
    "SPIN_COMPONENT_ID",
    "CONTENT_LENGTH",
    "REDIS_STREAM",
    "REDIS_MESSAGE_ID",
    "REDIS_DELIVERY",
    "REDIS_PATTERN",
    "REDIS_LIST",
];

/// A host directory mounted read-only into the guest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    pub host: PathBuf,
    pub guest: String,
}

/// Everything about a component's sandbox that does not change per message.
#[derive(Clone, Debug, Default)]
pub struct Sandbox {
    /// The component id, `SPIN_COMPONENT_ID` and the default `argv[0]`.
    pub component_id: String,
    /// The manifest's `environment` followed by `-e` values (later wins).
    pub env: Vec<(String, String)>,
    /// Read-only mounts.
    pub mounts: Vec<Mount>,
    /// The argv template, split on whitespace; `${COMPONENT_ID}` and
    /// `${CHANNEL}` are replaced per message. Empty means `[component_id]`.
    pub argv: Vec<String>,
}

/// The per-message part of a sandbox.
#[derive(Clone, Debug)]
pub struct Message<'a> {
    /// Where the message came from: the channel (the one it was published
    /// to, for a pattern subscription), or the stream or list key
    /// (`${CHANNEL}` in argv either way).
    pub channel: &'a str,
    /// The server address without credentials.
    pub address: &'a str,
    pub payload: Bytes,
    /// `Some` for a stream entry: `REDIS_STREAM` (the `channel`),
    /// `REDIS_MESSAGE_ID` and `REDIS_DELIVERY` are set, and `REDIS_CHANNEL`
    /// is not.
    pub stream: Option<StreamEntry<'a>>,
    /// `Some` for a source other than a channel or a stream: see [`Origin`].
    pub origin: Option<Origin<'a>>,
}

/// The other sources a message may come from, with what their handlers
/// see besides the common variables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin<'a> {
    /// A message to a pattern subscription (`PSUBSCRIBE`): `REDIS_PATTERN`
    /// is the pattern, `REDIS_CHANNEL` the channel it was published to.
    Pattern(&'a str),
    /// An item of a list trigger (a reliable queue): `REDIS_LIST` (the
    /// `channel`) and `REDIS_DELIVERY` (the attempt, 1 the first time) are
    /// set, and `REDIS_CHANNEL` is not.
    List { delivery: u32 },
}

/// What a handler learns of the stream entry it runs on.
#[derive(Clone, Copy, Debug)]
pub struct StreamEntry<'a> {
    /// The entry id, the idempotency key.
    pub id: &'a str,
    /// The attempt: 1 the first time the entry is handed to a handler.
    pub delivery: u32,
}

/// The capture buffers of one run.
#[derive(Clone, Debug)]
pub struct Capture {
    pub stdout: CappedOutput,
    pub stderr: CappedOutput,
}

impl Capture {
    pub fn new(limits: &crate::Limits) -> Self {
        Capture {
            stdout: CappedOutput::new(limits.max_stdout_bytes),
            stderr: CappedOutput::new(limits.max_stderr_bytes),
        }
    }

    /// Packs a finished run's result with what was captured.
    pub fn finish(self, result: Result<(), crate::HandlerError>) -> crate::Outcome {
        let (stdout, stdout_cut) = self.stdout.take();
        let (stderr, stderr_cut) = self.stderr.take();
        crate::Outcome {
            stdout,
            stderr,
            stdout_cut,
            stderr_cut,
            result,
        }
    }
}

impl Sandbox {
    /// The argv one message sees.
    pub fn argv(&self, channel: &str) -> Vec<String> {
        if self.argv.is_empty() {
            return vec![self.component_id.clone()];
        }
        self.argv
            .iter()
            .map(|a| {
                a.replace("${COMPONENT_ID}", &self.component_id)
                    .replace("${CHANNEL}", channel)
            })
            .collect()
    }

    /// Settles the user environment once, at start-up: a later value of a
    /// name (the `-e` flags) replaces an earlier one in place, and the
    /// runtime's own variables are removed, since each message sets them.
    pub fn settle(mut self) -> Self {
        let mut env: Vec<(String, String)> = Vec::with_capacity(self.env.len());
        for (k, v) in self.env.drain(..) {
            if RUNTIME_VARS.contains(&k.as_str()) {
                continue;
            }
            match env.iter_mut().find(|(ek, _)| *ek == k) {
                Some(slot) => slot.1 = v,
                None => env.push((k, v)),
            }
        }
        self.env = env;
        self
    }
}

/// A [`Sandbox`] made ready at start-up: its mounts opened once (the handles
/// are shared by every message's context; a mount that vanishes later does
/// not fail messages, since the open handle still reads it) and its user
/// environment settled.
#[derive(Clone)]
pub struct PreparedSandbox {
    sandbox: Sandbox,
    /// The preopened mounts, cloned (cheap: reference-counted handles) into
    /// every message's context.
    mounts: WasiFilesystemCtx,
    /// The argv, expanded once when its template does not name the channel
    /// (then every message sees the same one).
    argv: Option<Vec<String>>,
}

impl std::fmt::Debug for PreparedSandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedSandbox")
            .field("sandbox", &self.sandbox)
            .finish_non_exhaustive()
    }
}

impl PreparedSandbox {
    /// Settles the environment and opens every mount; fails naming the
    /// mount that cannot be opened.
    pub fn new(sandbox: Sandbox) -> anyhow::Result<Self> {
        let sandbox = sandbox.settle();
        let mut b = WasiCtxBuilder::new();
        // WASI file calls run in place on the handler thread instead of
        // through tokio's blocking pool (a thread hand-off per call: a
        // handler reading one file paid ~0.5 ms): the mounts are read-only
        // files, and sleeps never block a thread either way, since preview1
        // linkers come from `preview1::add_to_linker` (which makes the sleep
        // wasmtime-wasi would serve with `std::thread::sleep` asynchronous)
        // and preview2 sleeps are asynchronous in wasmtime-wasi itself.
        b.allow_blocking_current_thread(true);
        for m in &sandbox.mounts {
            b.preopened_dir(&m.host, &m.guest, FsPerms::ReadOnly)
                .map_err(|e| {
                    anyhow::anyhow!(
                        "cannot open {:?} to mount at {:?}: {e:#}",
                        m.host.display().to_string(),
                        m.guest
                    )
                })?;
        }
        let mounts = b.build().filesystem().clone();
        let argv =
            (!sandbox.argv.iter().any(|a| a.contains("${CHANNEL}"))).then(|| sandbox.argv(""));
        Ok(PreparedSandbox {
            sandbox,
            mounts,
            argv,
        })
    }

    /// A WASI preview2 context for one message.
    pub fn p2_ctx(&self, msg: &Message<'_>, capture: &Capture) -> WasiCtx {
        let mut ctx = self.builder(msg, capture).build();
        *ctx.filesystem() = self.mounts.clone();
        ctx
    }

    /// A WASI preview1 context for one message.
    pub fn p1_ctx(&self, msg: &Message<'_>, capture: &Capture) -> WasiP1Ctx {
        let mut ctx = self.builder(msg, capture).build_p1();
        *ctx.ctx().ctx.filesystem() = self.mounts.clone();
        ctx
    }

    /// The one builder of a message's context. (wasmtime-wasi's `build`
    /// leaves a fresh builder behind, with its own random generators; that
    /// replacement is wasmtime-wasi's, and costs well under a microsecond.)
    fn builder(&self, msg: &Message<'_>, capture: &Capture) -> WasiCtxBuilder {
        let sandbox = &self.sandbox;
        let mut b = WasiCtxBuilder::new();
        // The filesystem, with its own setting for blocking, is replaced by
        // the prepared mounts (see `new`).
        // No network, said explicitly (these are also wasmtime-wasi's
        // defaults, and preview1 has no sockets at all).
        b.allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        b.stdin(MemoryInputPipe::new(msg.payload.clone()))
            .stdout(capture.stdout.clone())
            .stderr(capture.stderr.clone());
        match &self.argv {
            Some(argv) => b.args(argv),
            None => b.args(&sandbox.argv(msg.channel)),
        };
        // The user's variables (settled at start-up, see `settle`), then the
        // runtime's, which always win.
        for (k, v) in &sandbox.env {
            b.env(k, v);
        }
        match (&msg.stream, msg.origin) {
            (Some(entry), _) => b
                .env("REDIS_STREAM", msg.channel)
                .env("REDIS_MESSAGE_ID", entry.id)
                .env("REDIS_DELIVERY", entry.delivery.to_string()),
            (None, Some(Origin::List { delivery })) => b
                .env("REDIS_LIST", msg.channel)
                .env("REDIS_DELIVERY", delivery.to_string()),
            (None, Some(Origin::Pattern(pattern))) => b
                .env("REDIS_CHANNEL", msg.channel)
                .env("REDIS_PATTERN", pattern),
            (None, None) => b.env("REDIS_CHANNEL", msg.channel),
        };
        b.env("REDIS_ADDRESS", msg.address)
            .env("SPIN_COMPONENT_ID", &sandbox.component_id)
            .env("CONTENT_LENGTH", msg.payload.len().to_string());
        b
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settling_drops_runtime_variables_and_later_user_values_replace_earlier() {
        let s = Sandbox {
            component_id: "c".into(),
            env: vec![
                ("A".into(), "1".into()),
                ("REDIS_CHANNEL".into(), "spoofed".into()),
                ("REDIS_MESSAGE_ID".into(), "spoofed".into()),
                ("B".into(), "b".into()),
                ("A".into(), "2".into()),
            ],
            ..Default::default()
        }
        .settle();
        assert_eq!(
            s.env,
            vec![("A".to_string(), "2".to_string()), ("B".into(), "b".into())]
        );
    }

    #[test]
    fn argv_template_is_expanded_per_message() {
        let s = Sandbox {
            component_id: "c".into(),
            argv: vec!["${COMPONENT_ID}".into(), "--on".into(), "${CHANNEL}".into()],
            ..Default::default()
        };
        assert_eq!(s.argv("news"), vec!["c", "--on", "news"]);
        let d = Sandbox {
            component_id: "c".into(),
            ..Default::default()
        };
        assert_eq!(d.argv("news"), vec!["c"]);
    }
}
