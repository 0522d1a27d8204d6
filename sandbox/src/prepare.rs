//! What every executor shares around its own guest: why a handler was
//! refused at start-up ([`PrepareError`], one enum for all of them, so that
//! start-up and `check` word a refusal alike), and [`Prepared`], the
//! handler prepared once and run per message through the one run wrapper
//! (`run::run`).
//!
//! Each executor says only how to call its guest ([`Prepared::call`]); the
//! capture, the deadline and the outcome around every call come from here.
//!
//! Not owned here: the executors themselves (compile, check, link), the
//! run wrapper's inside (`run`).

use crate::limits::Limits;
use crate::outcome::{HandlerError, Outcome};
use crate::wasi::{Capture, Message};
use std::future::Future;

/// Why a handler was refused at start-up, whichever executor refused it.
/// Each message reads after the component's name ("component \"x\" ...").
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    /// A component configured as `wagi` that is not a WASI command.
    #[error(
        "is a WebAssembly component, not a core module: use executor = {{ type = \"spin\" }} for it"
    )]
    IsComponent,
    /// A core module configured as `spin` that is neither componentizable
    /// nor seed-era.
    #[error("is a WASI core module, not a component: use executor = {{ type = \"wagi\" }} for it")]
    IsCoreModule,
    #[error("is not a WebAssembly {expected} ({found})")]
    NotWasm {
        expected: &'static str,
        found: &'static str,
    },
    #[error("does not compile: {0}")]
    Compile(String),
    /// One instance would take more of the instance pool than a handler
    /// slot's share.
    #[error("is refused: it {0}")]
    SlotShare(String),
    /// `wagi`: no export of the configured entrypoint.
    #[error("has no exported function {entrypoint:?} to call; it exports: {exports}")]
    MissingEntrypoint { entrypoint: String, exports: String },
    /// `wagi`: the entrypoint is not `() -> ()`.
    #[error(
        "export {entrypoint:?} must be a function taking and returning nothing, like WASI's `_start`, but it is {found}"
    )]
    EntrypointType { entrypoint: String, found: String },
    /// `wagi`: a component without `wasi:cli/run`.
    #[error(
        "is a WebAssembly component that does not export `wasi:cli/run` (it exports: {0}): under the wagi executor a component must be a WASI command; a Redis handler component runs under executor = {{ type = \"spin\" }}"
    )]
    NotCommand(String),
    /// `spin`: no Redis handler export.
    #[error(
        "exports no Redis handler; it exports: {exports}. A handler exports `handle-redis-message` (wit/spin-redis.wit), `fermyon:spin/inbound-redis` or `spin:redis/inbound-redis@3.0.0`"
    )]
    NoHandler { exports: String },
    /// `spin`: more than one Redis handler export.
    #[error("exports more than one Redis handler ({0}); export exactly one")]
    Ambiguous(String),
    /// `spin`: a handler interface of the wrong type.
    #[error("exports {interface} with the wrong type: {detail}")]
    WrongType {
        interface: &'static str,
        detail: String,
    },
    /// `spin`, seed-era: an ABI function of the wrong signature.
    #[error("exports `{name}` with type {found} instead of {expected}")]
    WrongSignature {
        name: &'static str,
        found: String,
        expected: &'static str,
    },
    /// The imports cannot be satisfied; the text ends with what the
    /// executor provides, when that helps.
    #[error("cannot be linked: {0}")]
    Link(String),
    #[error("has a mount that cannot be opened: {0}")]
    Mount(String),
}

impl PrepareError {
    /// A link failure, followed by `provides` (what the executor links,
    /// when the reader needs it; else empty).
    pub fn link(e: impl Into<anyhow::Error>, provides: &str) -> PrepareError {
        PrepareError::Link(format!("{:#}{provides}", e.into()))
    }

    /// A mount of the component's `files` that cannot be opened.
    pub fn mount(e: impl Into<anyhow::Error>) -> PrepareError {
        PrepareError::Mount(format!("{:#}", e.into()))
    }
}

/// A handler prepared once at start-up and run once per message, in a
/// fresh instance: what every executor is.
pub trait Prepared: Sync {
    /// The limits each run gets.
    fn limits(&self) -> &Limits;

    /// Instantiates and calls the guest once on `msg`, its output going to
    /// `capture`; everything around the call is [`Prepared::run`]'s.
    fn call(
        &self,
        msg: &Message<'_>,
        capture: &Capture,
    ) -> impl Future<Output = Result<(), HandlerError>> + Send;

    /// Runs the handler once on one message: the one run wrapper (capture,
    /// deadline, outcome) around [`Prepared::call`].
    fn run(&self, msg: Message<'_>) -> impl Future<Output = Outcome> + Send {
        async move {
            crate::run::run(self.limits(), async |capture| {
                self.call(&msg, capture).await
            })
            .await
        }
    }
}
