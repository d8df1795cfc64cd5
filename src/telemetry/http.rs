//! A small HTTP endpoint for `/metrics`, `/healthz` and `/readyz`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use super::Metrics;
use crate::error::{Error, Result};

/// Serves metrics and health on its own thread until dropped.
///
/// A synchronous server on one thread is plenty for a scrape every few seconds and keeps
/// the engine's hot path free of any runtime. Bind to loopback unless you mean to expose
/// it.
pub struct MetricsServer {
    server: Arc<tiny_http::Server>,
    address: std::net::SocketAddr,
    ready: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl MetricsServer {
    /// Binds `addr` (e.g. `127.0.0.1:9464`, or port 0 for any free port) and serves.
    pub fn start(addr: &str, metrics: Arc<Metrics>) -> Result<Self> {
        let server = tiny_http::Server::http(addr).map_err(|e| Error::Metrics {
            addr: addr.to_owned(),
            detail: e.to_string(),
        })?;
        let address = server.server_addr().to_ip().ok_or_else(|| Error::Metrics {
            addr: addr.to_owned(),
            detail: "not an IP listener".into(),
        })?;
        let server = Arc::new(server);
        let ready = Arc::new(AtomicBool::new(false));
        let thread = {
            let server = Arc::clone(&server);
            let ready = Arc::clone(&ready);
            std::thread::Builder::new()
                .name("metrics-http".into())
                .spawn(move || serve(&server, &metrics, &ready))
                .map_err(|e| Error::Metrics {
                    addr: addr.to_owned(),
                    detail: e.to_string(),
                })?
        };
        tracing::info!(%address, "metrics endpoint listening");
        Ok(MetricsServer {
            server,
            address,
            ready,
            thread: Some(thread),
        })
    }

    /// The address actually bound.
    pub fn address(&self) -> std::net::SocketAddr {
        self.address
    }

    /// A handle on what `/readyz` answers, for code that learns about readiness elsewhere
    /// (the consumer's rebalance callback).
    pub fn readiness(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.ready)
    }

    /// Sets what `/readyz` answers.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Relaxed);
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        self.server.unblock();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn serve(server: &tiny_http::Server, metrics: &Metrics, ready: &AtomicBool) {
    for request in server.incoming_requests() {
        let (status, body, content_type) = match request.url() {
            "/metrics" => (
                200,
                metrics.render(),
                "text/plain; version=0.0.4; charset=utf-8",
            ),
            "/healthz" => (200, "ok\n".to_owned(), "text/plain"),
            "/readyz" if ready.load(Ordering::Relaxed) => (200, "ready\n".to_owned(), "text/plain"),
            "/readyz" => (503, "not ready\n".to_owned(), "text/plain"),
            _ => (404, "not found\n".to_owned(), "text/plain"),
        };
        let header = tiny_http::Header::from_bytes("Content-Type", content_type)
            .unwrap_or_else(|()| unreachable!("static header"));
        let response = tiny_http::Response::from_string(body)
            .with_status_code(status)
            .with_header(header);
        if let Err(e) = request.respond(response) {
            tracing::debug!(error = %e, "metrics client went away");
        }
    }
}
