//! The valid range of every numeric setting, shared by the manifest and the
//! command line, so that a value out of range is refused at start-up in the
//! same words wherever it was given (and never reaches an allocation or a
//! semaphore that would panic on it), and [`parse_size`], how a size is
//! written in both. The table of settings with their ranges is
//! `settings`'s.
//!
//! Not owned here: the defaults and resolving them (`settings`).

use std::time::Duration;

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
pub const MAX_DELIVERIES: NumberRange = NumberRange::count(1, 1000);
pub const MAX_MEMORY: NumberRange = NumberRange::bytes(64 << 10, 4 << 30);
pub const MAX_OUTPUT: NumberRange = NumberRange::bytes(0, 1 << 30);
pub const MAX_PAYLOAD: NumberRange = NumberRange::bytes(1, 512 << 20);
pub const MAX_CONCURRENCY: NumberRange = NumberRange::count(1, 1024);
pub const QUEUE_CAPACITY: NumberRange = NumberRange::count(1, 10_000_000);
pub const MAX_QUEUED_BYTES: NumberRange = NumberRange::bytes(1 << 10, 64 << 30);
pub const MAX_HOST_REPLY: NumberRange = NumberRange::bytes(1 << 10, 1 << 30);
pub const MAX_HOST_LISTING: NumberRange = NumberRange::count(1, 10_000_000);
pub const MAX_HOST_RECEIVED: NumberRange = NumberRange::bytes(1 << 10, 16 << 30);
pub const MAX_REDIS_CONNECTIONS: NumberRange = NumberRange::count(1, 1024);

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
    /// A range of byte sizes (shown with units).
    const fn bytes(min: u64, max: u64) -> NumberRange {
        NumberRange {
            min,
            max,
            bytes: true,
        }
    }

    /// A range of counts.
    const fn count(min: u64, max: u64) -> NumberRange {
        NumberRange {
            min,
            max,
            bytes: false,
        }
    }

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

/// Parses a byte size: an integer, or a string like "256MiB", "4 MB", "512k".
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| {
        format!("{text:?} is not a size; write it as \"256MiB\", \"4MB\" or a number of bytes")
    })?;
    let mult: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1000,
        "kib" => 1 << 10,
        "m" | "mb" => 1000 * 1000,
        "mib" => 1 << 20,
        "g" | "gb" => 1000 * 1000 * 1000,
        "gib" => 1 << 30,
        other => {
            return Err(format!(
                "unknown size unit {other:?} in {text:?}; use B, KiB, MiB, GiB, KB, MB or GB"
            ));
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| format!("{text:?} is too large"))
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

    #[test]
    fn sizes_parse_with_binary_and_decimal_units() {
        assert_eq!(parse_size("256MiB"), Ok(256 << 20));
        assert_eq!(parse_size("4 MB"), Ok(4_000_000));
        assert_eq!(parse_size("17"), Ok(17));
        assert!(parse_size("12 parsecs").unwrap_err().contains("unit"));
        assert!(parse_size("lots").is_err());
    }
}
