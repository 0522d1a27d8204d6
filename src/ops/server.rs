//! The operations HTTP server of `up --metrics ADDR`: `/metrics`
//! (Prometheus text, OpenMetrics flavour), `/healthz` (200 while the process
//! runs) and `/readyz` (200 once every subscription and group read is live,
//! 503 naming what is down). Served by axum on the I/O runtime; it only
//! reads atomics, so it never slows the handlers.
//!
//! Not owned here: what the metrics count (see `ops::metrics`) and what
//! readiness means (see `ops::health`).

use crate::ops::health::Health;
use crate::ops::metrics::Metrics;
use anyhow::Context as _;
use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// Binds `addr` now (so a bad address fails start-up) and returns the
/// server, to be run with [`Server::run`].
pub struct Server {
    listener: tokio::net::TcpListener,
    router: Router,
}

impl Server {
    pub async fn bind(
        addr: SocketAddr,
        metrics: Arc<Metrics>,
        health: Arc<Health>,
    ) -> anyhow::Result<Server> {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("cannot listen on \"{addr}\" for --metrics"))?;
        let router = Router::new()
            .route(
                "/metrics",
                get(move || {
                    let m = metrics.clone();
                    async move {
                        (
                            [(
                                header::CONTENT_TYPE,
                                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                            )],
                            m.encode(),
                        )
                    }
                }),
            )
            .route("/healthz", get(|| async { "ok\n" }))
            .route(
                "/readyz",
                get(move || {
                    let h = health.clone();
                    async move {
                        match h.ready() {
                            Ok(()) => (StatusCode::OK, "ready\n".to_string()).into_response(),
                            Err(down) => (
                                StatusCode::SERVICE_UNAVAILABLE,
                                format!("not ready: {}\n", down.join(", ")),
                            )
                                .into_response(),
                        }
                    }
                }),
            );
        Ok(Server { listener, router })
    }

    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    /// Serves until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        let served = axum::serve(self.listener, self.router)
            .with_graceful_shutdown(async move { shutdown.cancelled().await })
            .await;
        if let Err(e) = served {
            tracing::error!(error = %e, "the metrics server stopped");
        }
    }
}
