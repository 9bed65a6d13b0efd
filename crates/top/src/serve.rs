//! `--listen ADDR`: `/metrics` over HTTP (tiny_http), serving the latest exposition.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// A server thread answering `GET /metrics` with the text last published.
#[derive(Debug)]
pub(crate) struct MetricsServer {
    latest: Arc<Mutex<String>>,
}

impl MetricsServer {
    /// Binds `address` and starts answering (with an empty exposition until the first
    /// publish).
    pub(crate) fn start(address: SocketAddr) -> Result<MetricsServer, String> {
        let server =
            tiny_http::Server::http(address).map_err(|e| format!("bind {address}: {e}"))?;
        let latest = Arc::new(Mutex::new(String::from("# EOF\n")));
        let shared = Arc::clone(&latest);
        std::thread::Builder::new()
            .name("metrics".into())
            .spawn(move || {
                for request in server.incoming_requests() {
                    let path = request.url().split('?').next().unwrap_or("");
                    let response = if path == "/metrics" {
                        let body = shared.lock().unwrap_or_else(|p| p.into_inner()).clone();
                        tiny_http::Response::from_string(body).with_header(
                            "Content-Type: application/openmetrics-text; version=1.0.0; charset=utf-8"
                                .parse::<tiny_http::Header>()
                                .expect("a valid header"),
                        )
                    } else {
                        tiny_http::Response::from_string("tachyon-top serves /metrics\n")
                            .with_status_code(404)
                    };
                    // A client that went away is its own problem.
                    let _ = request.respond(response);
                }
            })
            .map_err(|e| format!("spawn the metrics thread: {e}"))?;
        Ok(MetricsServer { latest })
    }

    /// Replaces what `/metrics` answers.
    pub(crate) fn publish(&self, exposition: String) {
        *self.latest.lock().unwrap_or_else(|p| p.into_inner()) = exposition;
    }
}
