//! Prometheus metrics at `/metrics`, through the `metrics` crate and its Prometheus exporter,
//! and one structured log event per request.
//!
//! Requests are counted by route *pattern* (`/api/v1/children/{id}`), method and status, never
//! by concrete path, so neither a child's id nor anything else personal reaches the metrics or
//! the logs. Every label takes a bounded set of values (routes that do not match are
//! `unmatched`, methods HTTP does not define are `other`), so no request can add series.
//! Besides requests: syncs by outcome with their time, schedule-evaluation runs and webhook
//! deliveries by outcome.
//!
//! `/metrics` (in `api/health.rs`) is served only when a token is set (`metrics_token`), and
//! only to a caller that presents it.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use std::time::Instant;

/// Latency buckets, seconds, for every `_seconds` histogram.
const BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The process's recorder, installed on first use. Every server in one process (the tests run
/// several) records into it and renders it.
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &BUCKETS)
            // Only an empty list of buckets is refused; ours is not.
            .unwrap_or_else(|_| PrometheusBuilder::new());
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        // A program embedding the server may have installed its own recorder first; it keeps
        // its place, and this one then renders only its descriptions.
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

/// Folds the histograms' recent samples into their buckets, as the exporter asks its owner to
/// do now and then; the server does it every few seconds.
pub fn upkeep() {
    handle().run_upkeep();
}

/// The Prometheus text exposition.
pub fn render() -> String {
    handle().render()
}

/// Times each request, counts it, and logs it without its path's ids.
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let start = Instant::now();
    let route = req
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    let method = method_label(req.method());
    let response = next.call(req).await?;
    let status = response.status().as_u16();
    let seconds = start.elapsed().as_secs_f64();
    metrics::counter!(
        "homevisit_http_requests_total",
        "route" => route.clone(),
        "method" => method,
        "status" => status.to_string()
    )
    .increment(1);
    metrics::histogram!(
        "homevisit_http_request_duration_seconds",
        "route" => route.clone(),
        "method" => method
    )
    .record(seconds);
    tracing::info!(
        event = "http_request",
        route = route.as_str(),
        method,
        status,
        ms = (seconds * 1000.0 * 10.0).round() / 10.0
    );
    Ok(response)
}

/// The method as a label: one of HTTP's own, or `other`.
fn method_label(method: &actix_web::http::Method) -> &'static str {
    use actix_web::http::Method as M;
    match *method {
        M::GET => "GET",
        M::HEAD => "HEAD",
        M::POST => "POST",
        M::PUT => "PUT",
        M::DELETE => "DELETE",
        M::PATCH => "PATCH",
        M::OPTIONS => "OPTIONS",
        _ => "other",
    }
}
