//! Every run setting in one place: its default, its valid range
//! ([`ranges`]) and how the value in force is settled, a flag over the
//! manifest over the default ([`RunConfig::resolve`]).
//!
//! | setting | default | range | manifest key | flag |
//! |---|---|---|---|---|
//! | per-message timeout | 30 s | 1ms to 24h | `timeout = "30s"` | `--timeout` |
//! | linear memory per instance | 256 MiB | 64KiB to 4GiB | `max_memory = "256MiB"` | `--max-memory` |
//! | stdout / stderr kept per message | 4 MiB each | 0 to 1GiB | `max_output = "4MiB"` | `--max-output` |
//! | largest payload run | 16 MiB | 1B to 512MiB | `max_payload = "16MiB"` | `--max-payload` |
//! | handlers running at once (app, and per trigger) | 64 | 1 to 1024 | `max_concurrency = 64` | `--max-concurrency` |
//! | queued messages per trigger | no count limit | 1 to 10000000 | | `--queue-capacity` |
//! | memory of queued messages, all triggers | 128 MiB | 1KiB to 64GiB | | `--max-queued-bytes` |
//! | shutdown drain deadline | 10 s | 0s to 1h | | `--drain-timeout` |
//! | one reply, value or body a host call hands a guest | 16 MiB | 1KiB to 1GiB | | `--max-host-reply` |
//! | keys in one key-value listing | 10 000 | 1 to 10000000 | | `--max-host-listing` |
//! | all one message receives through the host APIs | 64 MiB | 1KiB to 16GiB | | `--max-host-received` |
//! | pooled outbound Redis addresses per component | 16 | 1 to 1024 | | `--max-redis-addresses` |
//! | dedicated outbound Redis connections per component | 16 | 1 to 1024 | | `--max-redis-dedicated` |
//! | `max_deliveries` (stream and list triggers) | 5 | 1 to 1000 | `max_deliveries = 5` | |
//! | `claim_idle` (stream triggers) | 60 s or twice the timeout | 100ms to 48h, and longer than `timeout` | `claim_idle = "60s"` | |
//!
//! Settings sit below everything but the sandbox: they import nothing of
//! the manifest, the host APIs or the commands (the manifest reads its
//! values into [`AppSettings`]; the command line into [`Overrides`]).
//!
//! Not owned here: parsing the manifest (`manifest`) and the flags (`cli`),
//! the trigger-level defaults of streams and lists (`manifest::source`).

mod app;
mod defaults;
pub mod ranges;
mod run_config;

pub use app::AppSettings;
pub use defaults::*;
pub use run_config::{HostLimits, Overrides, RunConfig};
