//! Host memory bounded by settings, not by what a guest asks for or a server
//! sends back: the caps on what one host call may hand a guest, and on what
//! one message may receive through the host APIs in all.
//!
//! | bound | default | flag |
//! |---|---|---|
//! | one outbound-Redis reply (`get`, `smembers`, `execute`, counted as its bytes plus [`ELEMENT_OVERHEAD`] per value), one key-value value, one `fermyon:spin/http` response body | 16 MiB | `--max-host-reply` |
//! | keys in one key-value listing (`get-keys`) | 10 000 | `--max-host-listing` |
//! | all of the above together, per message | 64 MiB | `--max-host-received` |
//!
//! A call past a cap fails with its interface's own error naming the cap
//! (`other(...)` in Redis and key-value, `runtime-error` plus a log line in
//! `fermyon:spin/http`, whose errors carry no text). Where the size can be
//! learnt before the reply is read (a string's `STRLEN`, a collection's
//! length, a database's `DBSIZE`, a SQLite value's `length()`), the call is
//! refused before anything large is read; otherwise (see `redis::probe`) the
//! reply is measured once read and refused if it is too large, so it
//! never reaches the guest, though the host held it for a moment.
//!
//! Not owned here: which probe fits which command (`redis::probe`), the
//! settings themselves and their defaults (`settings::HostLimits`).

pub use crate::settings::HostLimits;
use std::sync::atomic::{AtomicU64, Ordering};

/// What one value of a reply costs the host besides its bytes (its
/// `redis::Value` and the guest-facing copy's header), rounded up.
pub const ELEMENT_OVERHEAD: u64 = 16;

/// `n` bytes as a person reads them.
pub fn show(n: u64) -> String {
    match n {
        n if n >= 1 << 20 && n % (1 << 20) == 0 => format!("{} MiB", n >> 20),
        n if n >= 1 << 10 && n % (1 << 10) == 0 => format!("{} KiB", n >> 10),
        n => format!("{n} bytes"),
    }
}

/// What one message (one instance) has received through the host APIs,
/// and the limits it is held to.
#[derive(Debug, Default)]
pub struct MessageBudget {
    received: AtomicU64,
    limits: HostLimits,
}

impl MessageBudget {
    pub fn new(limits: HostLimits) -> MessageBudget {
        MessageBudget {
            received: AtomicU64::new(0),
            limits,
        }
    }

    pub fn limits(&self) -> &HostLimits {
        &self.limits
    }

    /// Charges `bytes` received; `Err` naming the cap when the message's
    /// total would pass `max_received` (then nothing is charged).
    pub fn charge(&self, bytes: u64) -> Result<(), String> {
        let cap = self.limits.max_received;
        let before = self.received.fetch_add(bytes, Ordering::Relaxed);
        if before + bytes <= cap {
            return Ok(());
        }
        self.received.fetch_sub(bytes, Ordering::Relaxed);
        Err(format!(
            "this message has received {} through the host APIs, and {} more would pass the cap of {} per message (--max-host-received)",
            show(before),
            show(bytes),
            show(cap)
        ))
    }

    /// What is left of the per-message cap.
    pub fn left(&self) -> u64 {
        self.limits
            .max_received
            .saturating_sub(self.received.load(Ordering::Relaxed))
    }

    /// Checks a reply of `bytes` (naming it `what`) against `max_reply`
    /// and charges it to the message.
    pub fn admit(&self, what: &str, bytes: u64) -> Result<(), String> {
        if bytes > self.limits.max_reply {
            return Err(too_large(what, bytes, self.limits.max_reply));
        }
        self.charge(bytes)
    }
}

/// The message for a reply of `bytes` past `cap`.
pub fn too_large(what: &str, bytes: u64, cap: u64) -> String {
    format!(
        "{what} is {}, more than the host's cap of {} per reply (--max-host-reply)",
        show(bytes),
        show(cap)
    )
}

/// The message for a reply that a probe says would be at least `bytes`.
pub fn would_be_too_large(what: &str, bytes: u64, cap: u64) -> String {
    format!(
        "{what} would be at least {}, more than the host's cap of {} per reply (--max-host-reply); it was not sent",
        show(bytes),
        show(cap)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_receives_at_most_its_total() {
        let b = MessageBudget::default();
        for _ in 0..4 {
            b.admit("the reply", crate::settings::DEFAULT_MAX_HOST_REPLY)
                .unwrap();
        }
        let e = b.admit("the reply", 1).unwrap_err();
        assert!(e.contains("64 MiB per message"), "{e}");
        let e = b
            .admit("the reply", crate::settings::DEFAULT_MAX_HOST_REPLY + 1)
            .unwrap_err();
        assert!(e.contains("16 MiB per reply"), "{e}");
        assert_eq!(b.left(), 0);
        let small = MessageBudget::new(HostLimits {
            max_reply: 10,
            ..HostLimits::default()
        });
        assert!(small.admit("the value", 11).is_err());
    }
}
