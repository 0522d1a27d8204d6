//! The operations surface: Prometheus [`metrics`], [`health`] (liveness and
//! readiness), the HTTP [`server`] that serves both, and OpenTelemetry
//! [`telemetry`]. The hot path only bumps pre-made counters and, when traces
//! are on, starts and ends one span per delivery.

pub mod health;
pub mod metrics;
pub mod server;
pub mod telemetry;
