//! Host memory bounded by settings, not by what a guest asks for or a server
//! sends back: the caps on what one host call may hand a guest, and on what
//! one message may receive through the host APIs in all.
//!
//! | bound | default |
//! |---|---|
//! | one outbound-Redis reply (`get`, `smembers`, `execute`), counted as its bytes plus [`ELEMENT_OVERHEAD`] per value | [`MAX_REDIS_REPLY`] = 16 MiB |
//! | one key-value value (`get`) | [`MAX_KV_VALUE`] = 16 MiB |
//! | keys in one key-value listing (`get-keys`) | [`MAX_LISTING_KEYS`] = 10 000 |
//! | one `fermyon:spin/http` response body | [`MAX_HTTP_BODY`] = 16 MiB |
//! | all of the above together, per message | [`MAX_PER_MESSAGE`] = 64 MiB |
//!
//! A call past a cap fails with its interface's own error naming the cap
//! (`other(...)` in Redis and key-value, `runtime-error` plus a log line in
//! `fermyon:spin/http`, whose errors carry no text). Where the size can be
//! learnt before the reply is read (a string's `STRLEN`, a collection's
//! length, a database's `DBSIZE`, a SQLite value's `length()`), the call is
//! refused before anything large is read; otherwise (see `redis_probe`) the
//! reply is measured once read and refused if it is too large, so it
//! never reaches the guest, though the host held it for a moment.
//!
//! Not owned here: which probe fits which command (`redis_probe`).

use std::sync::atomic::{AtomicU64, Ordering};

pub const MAX_REDIS_REPLY: u64 = 16 << 20;
pub const MAX_KV_VALUE: u64 = 16 << 20;
pub const MAX_LISTING_KEYS: u64 = 10_000;
pub const MAX_HTTP_BODY: u64 = 16 << 20;
pub const MAX_PER_MESSAGE: u64 = 64 << 20;
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

/// What one message (one instance) has received through the host APIs.
#[derive(Debug, Default)]
pub struct MessageBudget {
    received: AtomicU64,
}

impl MessageBudget {
    /// Charges `bytes` received; `Err` naming the cap when the message's
    /// total would pass [`MAX_PER_MESSAGE`] (then nothing is charged).
    pub fn charge(&self, bytes: u64) -> Result<(), String> {
        let before = self.received.fetch_add(bytes, Ordering::Relaxed);
        if before + bytes <= MAX_PER_MESSAGE {
            return Ok(());
        }
        self.received.fetch_sub(bytes, Ordering::Relaxed);
        Err(format!(
            "this message has received {} through the host APIs, and {} more would pass the cap of {} per message",
            show(before),
            show(bytes),
            show(MAX_PER_MESSAGE)
        ))
    }

    /// What is left of the per-message cap.
    pub fn left(&self) -> u64 {
        MAX_PER_MESSAGE.saturating_sub(self.received.load(Ordering::Relaxed))
    }
}

/// Checks a reply of `bytes` against `cap` (naming `what`) and charges it
/// to `budget`.
pub fn admit(budget: &MessageBudget, what: &str, bytes: u64, cap: u64) -> Result<(), String> {
    if bytes > cap {
        return Err(too_large(what, bytes, cap));
    }
    budget.charge(bytes)
}

/// The message for a reply of `bytes` past `cap`.
pub fn too_large(what: &str, bytes: u64, cap: u64) -> String {
    format!(
        "{what} is {}, more than the host's cap of {} per reply",
        show(bytes),
        show(cap)
    )
}

/// The message for a reply that a probe says would be at least `bytes`.
pub fn would_be_too_large(what: &str, bytes: u64, cap: u64) -> String {
    format!(
        "{what} would be at least {}, more than the host's cap of {} per reply; it was not sent",
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
            admit(&b, "the reply", MAX_REDIS_REPLY, MAX_REDIS_REPLY).unwrap();
        }
        let e = admit(&b, "the reply", 1, MAX_REDIS_REPLY).unwrap_err();
        assert!(e.contains("64 MiB per message"), "{e}");
        let e = admit(&b, "the reply", MAX_REDIS_REPLY + 1, MAX_REDIS_REPLY).unwrap_err();
        assert!(e.contains("16 MiB per reply"), "{e}");
        assert_eq!(b.left(), 0);
    }
}
