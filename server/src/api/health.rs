//! `/healthz` (the process is up) and `/readyz` (it can serve: the database answers).

use actix_web::{HttpResponse, get, web};
use serde::Serialize;

use crate::api::error::ApiError;
use crate::app::AppState;

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
