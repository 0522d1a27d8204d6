//! Prometheus metrics: the registry, the metric families named in the
//! operations contract, and pre-made handles per route and per address so
//! that the hot path only bumps atomics (no label lookup, no allocation).
//!
//! | metric | labels |
//! |---|---|
//! | `spin_redis_deliveries_total` | component, source, outcome (ok, failed, timed_out, dropped, skipped, cut_short, dead_lettered) |
//! | `spin_redis_handler_duration_seconds` (histogram) | component |
//! | `spin_redis_queue_depth` | component, source |
//! | `spin_redis_redis_up` | address (never with credentials) |
//! | `spin_redis_reconnects_total` | address |
//! | `spin_redis_stream_pending` | stream, group |
//! | `spin_redis_stream_lag` | stream, group |
//! | `spin_redis_reloads_total` | result (ok, error) |
//!
//! `source` is the channel, pattern, stream or list name. Not owned here: serving the text
//! (see `ops::server`) and deciding readiness (see `ops::health`).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DeliveryLabels {
    component: String,
    source: String,
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ComponentLabels {
    component: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabels {
    component: String,
    source: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AddressLabels {
    address: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReloadLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StreamLabels {
    stream: String,
    group: String,
}

type HistogramFamily = Family<ComponentLabels, Histogram, fn() -> Histogram>;

fn duration_histogram() -> Histogram {
    // 100 µs to about 27 s, doubling.
    Histogram::new(exponential_buckets(0.0001, 2.0, 19))
}

/// Every metric family of the process.
pub struct Metrics {
    registry: Registry,
    deliveries: Family<DeliveryLabels, Counter>,
    duration: HistogramFamily,
    queue_depth: Family<SourceLabels, Gauge>,
    redis_up: Family<AddressLabels, Gauge>,
    reconnects: Family<AddressLabels, Counter>,
    stream_pending: Family<StreamLabels, Gauge>,
    stream_lag: Family<StreamLabels, Gauge>,
    reloads: Family<ReloadLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

/// The counters of one route (component, source), made once.
#[derive(Clone, Debug)]
pub struct RouteMetrics {
    pub ok: Counter,
    pub failed: Counter,
    pub timed_out: Counter,
    pub dropped: Counter,
    pub skipped: Counter,
    pub cut_short: Counter,
    pub dead_lettered: Counter,
    pub duration: Histogram,
    pub queue_depth: Gauge,
}

/// The metrics of one Redis address.
#[derive(Clone, Debug)]
pub struct AddressMetrics {
    pub up: Gauge,
    pub reconnects: Counter,
}

/// The metrics of one stream consumer group.
#[derive(Clone, Debug)]
pub struct StreamMetrics {
    pub pending: Gauge,
    pub lag: Gauge,
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("spin_redis");
        let deliveries = Family::<DeliveryLabels, Counter>::default();
        registry.register(
            "deliveries",
            "Deliveries (one message for one component) by how they ended",
            deliveries.clone(),
        );
        let duration: HistogramFamily = Family::new_with_constructor(duration_histogram);
        registry.register(
            "handler_duration_seconds",
            "Time from a handler's start to its end",
            duration.clone(),
        );
        let queue_depth = Family::<SourceLabels, Gauge>::default();
        registry.register(
            "queue_depth",
            "Deliveries queued for a trigger, not yet started",
            queue_depth.clone(),
        );
        let redis_up = Family::<AddressLabels, Gauge>::default();
        registry.register(
            "redis_up",
            "Whether the connection to a Redis address is up (1) or down (0)",
            redis_up.clone(),
        );
        let reconnects = Family::<AddressLabels, Counter>::default();
        registry.register(
            "reconnects",
            "Connections to a Redis address re-established after a loss",
            reconnects.clone(),
        );
        let stream_pending = Family::<StreamLabels, Gauge>::default();
        registry.register(
            "stream_pending",
            "Entries delivered to the group and not yet acknowledged",
            stream_pending.clone(),
        );
        let stream_lag = Family::<StreamLabels, Gauge>::default();
        registry.register(
            "stream_lag",
            "Entries of the stream not yet delivered to the group",
            stream_lag.clone(),
        );
        let reloads = Family::<ReloadLabels, Counter>::default();
        registry.register(
            "reloads",
            "Reloads of the manifest (SIGHUP, watch) by whether they applied",
            reloads.clone(),
        );
        // Both series exist from the start, at 0.
        for result in ["ok", "error"] {
            reloads.get_or_create_owned(&ReloadLabels { result });
        }
        Metrics {
            registry,
            deliveries,
            duration,
            queue_depth,
            redis_up,
            reconnects,
            stream_pending,
            stream_lag,
            reloads,
        }
    }

    /// Counts one reload: `ok` when it applied, else it changed nothing.
    pub fn reloaded(&self, ok: bool) {
        let result = if ok { "ok" } else { "error" };
        self.reloads.get_or_create(&ReloadLabels { result }).inc();
    }

    /// The handles of one route; every outcome's series exists from the
    /// start (at 0), so a scrape shows the route before its first message.
    pub fn route(&self, component: &str, source: &str) -> RouteMetrics {
        let outcome = |outcome: &'static str| {
            self.deliveries.get_or_create_owned(&DeliveryLabels {
                component: component.to_string(),
                source: source.to_string(),
                outcome,
            })
        };
        RouteMetrics {
            ok: outcome("ok"),
            failed: outcome("failed"),
            timed_out: outcome("timed_out"),
            dropped: outcome("dropped"),
            skipped: outcome("skipped"),
            cut_short: outcome("cut_short"),
            dead_lettered: outcome("dead_lettered"),
            duration: self.duration.get_or_create_owned(&ComponentLabels {
                component: component.to_string(),
            }),
            queue_depth: self.queue_depth.get_or_create_owned(&SourceLabels {
                component: component.to_string(),
                source: source.to_string(),
            }),
        }
    }

    /// The handles of one Redis address; `address` must be the redacted
    /// form (no credentials).
    pub fn address(&self, address: &str) -> AddressMetrics {
        let labels = AddressLabels {
            address: address.to_string(),
        };
        AddressMetrics {
            up: self.redis_up.get_or_create_owned(&labels),
            reconnects: self.reconnects.get_or_create_owned(&labels),
        }
    }

    /// The handles of one stream consumer group.
    pub fn stream(&self, stream: &str, group: &str) -> StreamMetrics {
        let labels = StreamLabels {
            stream: stream.to_string(),
            group: group.to_string(),
        };
        StreamMetrics {
            pending: self.stream_pending.get_or_create_owned(&labels),
            lag: self.stream_lag.get_or_create_owned(&labels),
        }
    }

    /// The exposition text (OpenMetrics, which Prometheus scrapes).
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .expect("invariant: encoding into a String never fails");
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_labels_follow_the_contract() {
        let m = Metrics::new();
        let r = m.route("billing", "orders");
        r.ok.inc();
        r.timed_out.inc();
        r.duration.observe(0.002);
        r.queue_depth.set(3);
        let a = m.address("redis://h:6379");
        a.up.set(1);
        m.reloaded(false);
        let text = m.encode();
        for line in [
            "spin_redis_deliveries_total{component=\"billing\",source=\"orders\",outcome=\"ok\"} 1",
            "spin_redis_deliveries_total{component=\"billing\",source=\"orders\",outcome=\"timed_out\"} 1",
            "spin_redis_deliveries_total{component=\"billing\",source=\"orders\",outcome=\"dropped\"} 0",
            "spin_redis_handler_duration_seconds_count{component=\"billing\"} 1",
            "spin_redis_queue_depth{component=\"billing\",source=\"orders\"} 3",
            "spin_redis_redis_up{address=\"redis://h:6379\"} 1",
            "spin_redis_reconnects_total{address=\"redis://h:6379\"} 0",
            "spin_redis_reloads_total{result=\"ok\"} 0",
            "spin_redis_reloads_total{result=\"error\"} 1",
        ] {
            assert!(text.contains(line), "{line:?} missing from:\n{text}");
        }
    }
}
