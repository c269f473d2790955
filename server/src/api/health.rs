//! `/healthz` (the process is up) and `/readyz` (it can serve: the database answers).

use actix_web::{HttpResponse, get, web};
use serde::Serialize;

use crate::api::error::ApiError;
use crate::state::AppState;

/// How the process is.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Health {
    /// `ok`, or `ready` once the database answers.
    status: &'static str,
}

/// The process is up.
#[utoipa::path(tag = "operations", responses((status = 200, description = "up", body = Health)))]
#[get("/healthz")]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok" })
}

/// The process can serve: its database answers.
#[utoipa::path(
    tag = "operations",
    responses(
        (status = 200, description = "ready", body = Health),
        (status = 503, description = "`unavailable`: the database does not answer", body = crate::api::error::Body),
    )
)]
#[get("/readyz")]
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let pool = state.pool.clone();
    let ready = web::block(move || -> bool {
        pool.get()
            .map(|mut c| {
                use diesel::connection::SimpleConnection;
                c.batch_execute("SELECT 1").is_ok()
            })
            .unwrap_or(false)
    })
    .await
    .unwrap_or(false);
    if ready {
        Ok(HttpResponse::Ok().json(Health { status: "ready" }))
    } else {
        Err(ApiError::Unavailable)
    }
}

/// Who may scrape: the token Prometheus is configured with.
#[derive(Clone)]
pub struct MetricsToken(pub String);

/// The metrics, for Prometheus: 404 unless a token is configured, 401 without it.
#[utoipa::path(
    tag = "operations",
    security(("metrics_token" = [])),
    responses(
        (status = 200, description = "Prometheus text exposition: counts by route pattern, never ids", content_type = "text/plain", body = String),
        (status = 401, description = "`invalid_token`: not the metrics token", body = crate::api::error::Body),
        (status = 404, description = "`not_found`: no metrics token is configured", body = crate::api::error::Body),
    )
)]
#[get("/metrics")]
pub async fn metrics(
    token: web::Data<MetricsToken>,
    req: actix_web::HttpRequest,
) -> Result<HttpResponse, crate::api::error::ApiError> {
    if token.0.is_empty() {
        return Err(ApiError::NotFound);
    }
    let presented = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|h| h.to_str().ok())
        .and_then(|h| h.strip_prefix("Bearer "))
        .unwrap_or_default();
    // Digests of equal length compared: the time taken says nothing of the token.
    let digest = |t: &str| homevisit_sync_core::photo::sha256_hex(t.as_bytes());
    if digest(presented) != digest(&token.0) {
        return Err(ApiError::unauthorized(
            "invalid_token",
            "send Authorization: Bearer METRICS_TOKEN",
        ));
    }
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(crate::metrics::render()))
}
