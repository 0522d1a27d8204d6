//! OpenTelemetry traces, as Spin emits them: when `OTEL_EXPORTER_OTLP_ENDPOINT`
//! (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set, one span per delivery,
//! named `<source> receive`, kind consumer, with `messaging.system = redis`,
//! `messaging.destination.name`, the component and the outcome, exported
//! over OTLP/HTTP (protobuf) in batches by the SDK's own thread. Unset, there
//! is no exporter and no cost beyond one `Option` check per delivery.
//!
//! Not owned here: the runtime's log lines (see `main`) and metrics (see
//! `ops::metrics`).

use anyhow::Context as _;
use opentelemetry::KeyValue;
use opentelemetry::trace::{Span as _, SpanKind, Status, Tracer as _, TracerProvider as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SdkTracerProvider, Tracer};
use std::time::Duration;

/// The tracer of the process, when traces are on.
pub struct Telemetry {
    provider: SdkTracerProvider,
    tracer: Tracer,
}

/// One delivery's span; ended by [`DeliverySpan::end`].
pub struct DeliverySpan(opentelemetry_sdk::trace::Span);

impl Telemetry {
    /// Traces are on when the standard OTLP endpoint variables are set.
    pub fn from_env() -> anyhow::Result<Option<Telemetry>> {
        let set = |k: &str| std::env::var_os(k).is_some_and(|v| !v.is_empty());
        if !set("OTEL_EXPORTER_OTLP_ENDPOINT") && !set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") {
            return Ok(None);
        }
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .build()
            .context("cannot set up the OTLP trace exporter from OTEL_EXPORTER_OTLP_ENDPOINT")?;
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(Resource::builder().with_service_name("spin-redis").build())
            .build();
        let tracer = provider.tracer("spin-redis");
        Ok(Some(Telemetry { provider, tracer }))
    }

    /// Starts the span of one delivery from `source` to `component`.
    pub fn delivery(&self, source: &str, component: &str) -> DeliverySpan {
        let span = self
            .tracer
            .span_builder(format!("{source} receive"))
            .with_kind(SpanKind::Consumer)
            .with_attributes([
                KeyValue::new("messaging.system", "redis"),
                KeyValue::new("messaging.operation.type", "receive"),
                KeyValue::new("messaging.destination.name", source.to_string()),
                KeyValue::new("spin.component", component.to_string()),
            ])
            .start(&self.tracer);
        DeliverySpan(span)
    }

    /// Exports what is still batched; bounded, so an unreachable collector
    /// cannot hold up the exit.
    pub fn shutdown(&self) {
        if let Err(e) = self.provider.shutdown_with_timeout(Duration::from_secs(5)) {
            tracing::warn!(error = %e, "could not export the last traces");
        }
    }
}

impl DeliverySpan {
    /// Ends the span with the delivery's outcome (`ok`, `failed`, ...).
    pub fn end(mut self, outcome: &'static str, error: Option<String>) {
        self.0
            .set_attribute(KeyValue::new("spin_redis.outcome", outcome));
        if let Some(e) = error {
            self.0.set_status(Status::error(e));
        }
        self.0.end();
    }
}
