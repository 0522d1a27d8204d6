//! The once-per-host log line that names the `allowed_outbound_hosts` entry
//! that would allow a refused destination, bounded so that a guest cannot
//! make the host remember every name it can think of.
//!
//! Not owned here: the check itself (`manifest::allowed_hosts`).

use crate::manifest::allowed_hosts::Destination;
use std::collections::HashSet;
use std::sync::Mutex;

/// Refused destinations one component's log names; past them, refusals
/// are counted, not named (a guest could otherwise make the host remember
/// and log every host name it can think of).
pub const MAX_NAMED_REFUSALS: usize = 64;

/// Logs each refused destination once per component: which host was
/// refused and the `allowed_outbound_hosts` entry that would allow it. At
/// most [`MAX_NAMED_REFUSALS`] destinations are remembered and named; every
/// later refusal of another destination is counted, the first with a line
/// saying so and then one line per thousand.
#[derive(Debug, Default)]
pub struct RefusalLog {
    seen: Mutex<HashSet<Destination>>,
    unnamed: std::sync::atomic::AtomicU64,
}

impl RefusalLog {
    pub fn refused(&self, component: &str, d: &Destination) {
        let named = {
            let mut seen = self
                .seen
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if seen.contains(d) {
                return;
            }
            seen.len() < MAX_NAMED_REFUSALS && seen.insert(d.clone())
        };
        if named {
            tracing::warn!(
                component,
                destination = %d,
                "refused an outbound connection to {d}: it is not in the component's allowed_outbound_hosts; to allow it, add \"{d}\" to allowed_outbound_hosts (logged once per host)"
            );
            return;
        }
        let n = self
            .unnamed
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        if n == 1 || n.is_multiple_of(1000) {
            tracing::warn!(
                component,
                refused_unnamed = n,
                "refused an outbound connection to a destination not in the component's allowed_outbound_hosts; {MAX_NAMED_REFUSALS} refused destinations are named above, and further refusals are counted but not named"
            );
        }
    }

    /// Refusals of destinations past the named ones.
    pub fn unnamed(&self) -> u64 {
        self.unnamed.load(std::sync::atomic::Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::allowed_hosts::test_destination;

    #[test]
    fn refused_destinations_are_named_up_to_a_bound_then_counted() {
        let log = RefusalLog::default();
        for i in 0..200 {
            let d = test_destination(&format!("redis://h{i}.example:6379")).unwrap();
            log.refused("c", &d);
            log.refused("c", &d);
        }
        let seen = log.seen.lock().unwrap().len();
        assert_eq!(seen, MAX_NAMED_REFUSALS);
        // Each refusal past the named ones counts, repeats included.
        assert_eq!(log.unnamed(), 2 * (200 - MAX_NAMED_REFUSALS as u64));
    }
}
