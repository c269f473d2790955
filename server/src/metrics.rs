//! Prometheus metrics at `/metrics`, and one structured log line per request.
//!
//! Requests are counted by route *pattern* (`/api/v1/children/{id}`), method and status, never
//! by concrete path, so neither a child's id nor anything else personal reaches the metrics or
//! the logs. Every label takes a bounded set of values (routes that do not match are
//! `unmatched`, methods HTTP does not define are `other`), so no request can add series.
//!
//! `/metrics` (in `api/health.rs`) is served only when a token is set (`metrics_token`), and
//! only to a caller that presents it.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::web;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Instant;

/// Latency buckets, seconds.
const BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

#[derive(Debug, Default, Clone)]
struct Series {
    count: u64,
    sum: f64,
    buckets: [u64; BUCKETS.len()],
}

/// The process's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), Series>>,
}

impl Metrics {
    fn observe(&self, route: String, method: String, status: u16, seconds: f64) {
        let mut map = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        let s = map.entry((route, method, status)).or_default();
        s.count += 1;
        s.sum += seconds;
        for (i, le) in BUCKETS.iter().enumerate() {
            if seconds <= *le {
                s.buckets[i] += 1;
            }
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let map = self
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mut out = String::new();
        out.push_str(
            "# HELP homevisit_http_requests_total HTTP requests by route, method and status.\n",
        );
        out.push_str("# TYPE homevisit_http_requests_total counter\n");
        for ((route, method, status), s) in &map {
            let _ = writeln!(
                out,
                "homevisit_http_requests_total{{route=\"{route}\",method=\"{method}\",status=\"{status}\"}} {}",
                s.count
            );
        }
        out.push_str("# HELP homevisit_http_request_duration_seconds Time to answer, by route.\n");
        out.push_str("# TYPE homevisit_http_request_duration_seconds histogram\n");
        let mut by_route: BTreeMap<(&str, &str), Series> = BTreeMap::new();
        for ((route, method, _), s) in &map {
            let t = by_route.entry((route, method)).or_default();
            t.count += s.count;
            t.sum += s.sum;
            for i in 0..BUCKETS.len() {
                t.buckets[i] += s.buckets[i];
            }
        }
        for ((route, method), s) in by_route {
            let labels = format!("route=\"{route}\",method=\"{method}\"");
            for (le, n) in BUCKETS.iter().zip(s.buckets) {
                let _ = writeln!(
                    out,
                    "homevisit_http_request_duration_seconds_bucket{{{labels},le=\"{le}\"}} {n}"
                );
            }
            let _ = writeln!(
                out,
                "homevisit_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                s.count
            );
            let _ = writeln!(
                out,
                "homevisit_http_request_duration_seconds_sum{{{labels}}} {}",
                s.sum
            );
            let _ = writeln!(
                out,
                "homevisit_http_request_duration_seconds_count{{{labels}}} {}",
                s.count
            );
        }
        out
    }
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
    let method = method_label(req.method()).to_owned();
    let counters = req.app_data::<web::Data<Metrics>>().cloned();
    let response = next.call(req).await?;
    let status = response.status().as_u16();
    let seconds = start.elapsed().as_secs_f64();
    if let Some(m) = counters {
        m.observe(route.clone(), method.clone(), status, seconds);
    }
    crate::log::info(
        "http_request",
        &[
            ("route", route.into()),
            ("method", method.into()),
            ("status", status.into()),
            ("ms", ((seconds * 1000.0 * 10.0).round() / 10.0).into()),
        ],
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
