//! The valid range of every numeric setting, shared by the manifest and the
//! command line, so that a value out of range is refused at start-up in the
//! same words wherever it was given (and never reaches an allocation or a
//! semaphore that would panic on it).
//!
//! | setting | valid range |
//! |---|---|
//! | `timeout` | 1ms to 24h |
//! | `max_memory` | 64KiB to 4GiB (one wasm page to the 32-bit address space) |
//! | `max_output` | 0 to 1GiB |
//! | `max_payload` | 1B to 512MiB (Redis's own largest value) |
//! | `max_concurrency` (app and trigger) | 1 to 1024 |
//! | `queue_capacity` | 1 to 10000000 |
//! | `max_queued_bytes` | 1KiB to 64GiB |
//! | `drain_timeout` | 0s to 1h |
//! | `max_host_reply` | 1KiB to 1GiB |
//! | `max_host_listing` | 1 to 10000000 |
//! | `max_host_received` | 1KiB to 16GiB |
//! | `max_redis_addresses`, `max_redis_dedicated` | 1 to 1024 |
//! | `max_deliveries` (stream triggers) | 1 to 1000 |
//! | `claim_idle` (stream triggers) | 100ms to 48h, and longer than `timeout` |
//!
//! Not owned here: the defaults (see `config`).

use std::time::Duration;

/// The per-message deadline when neither the manifest nor a flag sets one
/// (here, not in `config`, because stream defaults derive from it).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// A closed range of durations.
pub struct DurationRange {
    pub min: Duration,
    pub max: Duration,
}

/// A closed range of byte sizes or counts.
pub struct NumberRange {
    pub min: u64,
    pub max: u64,
    /// Whether the numbers are byte sizes (shown with units).
    pub bytes: bool,
}

pub const TIMEOUT: DurationRange = DurationRange {
    min: Duration::from_millis(1),
    max: Duration::from_secs(24 * 3600),
};
pub const DRAIN_TIMEOUT: DurationRange = DurationRange {
    min: Duration::ZERO,
    max: Duration::from_secs(3600),
};
pub const CLAIM_IDLE: DurationRange = DurationRange {
    min: Duration::from_millis(100),
    max: Duration::from_secs(48 * 3600),
};
pub const MAX_DELIVERIES: NumberRange = NumberRange {
    min: 1,
    max: 1000,
    bytes: false,
};
pub const MAX_MEMORY: NumberRange = NumberRange {
    min: 64 << 10,
    max: 4 << 30,
    bytes: true,
};
pub const MAX_OUTPUT: NumberRange = NumberRange {
    min: 0,
    max: 1 << 30,
    bytes: true,
};
pub const MAX_PAYLOAD: NumberRange = NumberRange {
    min: 1,
    max: 512 << 20,
    bytes: true,
};
pub const MAX_CONCURRENCY: NumberRange = NumberRange {
    min: 1,
    max: 1024,
    bytes: false,
};
pub const QUEUE_CAPACITY: NumberRange = NumberRange {
    min: 1,
    max: 10_000_000,
    bytes: false,
};
pub const MAX_QUEUED_BYTES: NumberRange = NumberRange {
    min: 1 << 10,
    max: 64 << 30,
    bytes: true,
};

pub const MAX_HOST_REPLY: NumberRange = NumberRange {
    min: 1 << 10,
    max: 1 << 30,
    bytes: true,
};
pub const MAX_HOST_LISTING: NumberRange = NumberRange {
    min: 1,
    max: 10_000_000,
    bytes: false,
};
pub const MAX_HOST_RECEIVED: NumberRange = NumberRange {
    min: 1 << 10,
    max: 16 << 30,
    bytes: true,
};
pub const MAX_REDIS_CONNECTIONS: NumberRange = NumberRange {
    min: 1,
    max: 1024,
    bytes: false,
};

impl DurationRange {
    /// `Ok(d)` when `d` is in range; else a message naming `what`.
    pub fn check(&self, what: &str, d: Duration) -> Result<Duration, String> {
        if d >= self.min && d <= self.max {
            return Ok(d);
        }
        Err(format!(
            "{what} {} is out of range: it must be from {} to {}",
            humantime::format_duration(d),
            humantime::format_duration(self.min),
            humantime::format_duration(self.max),
        ))
    }
}

impl NumberRange {
    /// `Ok(n)` when `n` is in range; else a message naming `what`.
    pub fn check(&self, what: &str, n: u64) -> Result<u64, String> {
        if n >= self.min && n <= self.max {
            return Ok(n);
        }
        Err(format!(
            "{what} {} is out of range: it must be from {} to {}",
            self.show(n),
            self.show(self.min),
            self.show(self.max),
        ))
    }

    fn show(&self, n: u64) -> String {
        if !self.bytes {
            return n.to_string();
        }
        for (unit, size) in [("GiB", 1u64 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)] {
            if n >= size && n.is_multiple_of(size) {
                return format!("{}{unit}", n / size);
            }
        }
        format!("{n}B")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_out_of_range_are_refused_with_the_range() {
        assert_eq!(MAX_CONCURRENCY.check("max_concurrency", 64), Ok(64));
        let e = MAX_CONCURRENCY
            .check("max_concurrency", 3_000_000_000_000_000_000)
            .unwrap_err();
        assert!(e.contains("from 1 to 1024"), "{e}");
        assert!(MAX_CONCURRENCY.check("max_concurrency", 0).is_err());
        let e = MAX_MEMORY.check("max_memory", 5 << 30).unwrap_err();
        assert!(e.contains("5GiB") && e.contains("64KiB to 4GiB"), "{e}");
        assert!(TIMEOUT.check("timeout", Duration::ZERO).is_err());
        assert!(DRAIN_TIMEOUT.check("drain_timeout", Duration::ZERO).is_ok());
    }
}
