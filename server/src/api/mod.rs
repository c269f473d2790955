//! The HTTP layer: handlers, extractors and the mapping of errors to responses.

pub mod alerts;
pub mod auth;
pub mod blobs;
pub mod body;
pub mod caller;
pub mod children;
pub mod error;
pub mod health;
pub mod openapi;
pub mod reports;
pub mod roster;
pub mod sync;

/// The routes, each describing itself for the OpenAPI document.
pub fn routes(cfg: &mut utoipa_actix_web::service_config::ServiceConfig) {
    cfg.service(health::healthz)
        .service(health::metrics)
        .service(openapi::document_json)
        .service(health::readyz)
        .service(auth::login)
        .service(auth::refresh)
        .service(auth::logout)
        .service(auth::list_devices)
        .service(auth::revoke_device)
        .service(sync::sync)
        .service(children::list)
        .service(children::detail)
        .service(children::history)
        .service(children::transfer)
        .service(children::audit_log)
        .service(blobs::put_blob)
        .service(blobs::blob_status)
        .service(blobs::get_blob)
        // The stream before the `{id}` route, which would take `stream` for an id.
        .service(alerts::stream)
        .service(alerts::list)
        .service(alerts::detail)
        .service(alerts::acknowledge)
        .service(alerts::close)
        .service(roster::import)
        .service(reports::compliance)
        .service(reports::national);
}
