//! `POST /api/v1/sync`: one round trip of the sync protocol (docs/PROTOCOL.md).
//!
//! The body is the binary request frame; the answer is the binary response frame. The whole
//! request is applied in one database transaction and acknowledged only after it commits.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, post, web};
use homevisit_sync_core::sync::server::{Context, DEFAULT_PAGE_BYTES, HandleError, Reject};
use homevisit_sync_core::sync::{ChildId, DeviceId, Request, WireError};

use crate::api::caller::DeviceCaller;
use crate::api::error::{ApiError, Body as Error, read_body};
use crate::service::clock::unix_now;
use crate::service::sync::{Env, apply, audit_refusals};
use crate::state::{AppState, with_db};
use crate::store::people::Role;
use crate::store::write_transaction;

/// The media type of sync frames.
pub const SYNC_MEDIA_TYPE: &str = "application/vnd.homevisit.sync";

impl From<HandleError<diesel::result::Error>> for ApiError {
    fn from(e: HandleError<diesel::result::Error>) -> Self {
        match e {
            HandleError::Rejected { doc, reason } => {
                let status = match reason {
                    Reject::Corrupt(_) | Reject::Inflates(_) | Reject::Invalid(_) => {
                        StatusCode::BAD_REQUEST
                    }
                    Reject::OutOfScope
                    | Reject::MovesOutOfScope(_)
                    | Reject::Erases(_)
                    | Reject::Author(_)
                    | Reject::Photo(_) => StatusCode::FORBIDDEN,
                };
                ApiError::Refused {
                    status,
                    code: reason.code(),
                    message: format!("file {doc} refused: {reason}"),
                    files: vec![doc.to_string()],
                }
            }
            HandleError::OutOfScope(docs) => ApiError::Refused {
                status: StatusCode::FORBIDDEN,
                code: "region_forbidden",
                message: "files this request names are outside your regions: set them aside \
                          and sync the rest"
                    .into(),
                files: docs.iter().map(ToString::to_string).collect(),
            },
            HandleError::Store(e) => ApiError::internal("sync storage", &e),
            HandleError::Damaged(id, e) => {
                ApiError::internal("stored file damaged", &format!("{id}: {e}"))
            }
        }
    }
}

/// Applies a device's changes and answers with what it lacks: one round trip of the sync
/// protocol (docs/PROTOCOL.md), all of it committed or none.
///
/// A file outside the caller's regions is refused by itself (named in the response's refusals)
/// and audited; a request naming nothing else is 403 `region_forbidden`.
#[utoipa::path(
    tag = "sync",
    security(("bearer" = [])),
    request_body(content = crate::api::openapi::Binary, content_type = "application/vnd.homevisit.sync",
                 description = "a request frame"),
    responses(
        (status = 200, description = "the response frame", content_type = "application/vnd.homevisit.sync", body = crate::api::openapi::Binary),
        (status = 400, description = "`corrupt_request`, `decompression_limit`, or for a file named in `files`: `corrupt_document`, `invalid_document`", body = Error),
        (status = 401, description = "`missing_token`, `invalid_token`", body = Error),
        (status = 403, description = "`role_forbidden`, or for files named in `files`: `region_forbidden`, `moves_out_of_scope`, `erases_history`, `author_mismatch`, `photo_forbidden`", body = Error),
        (status = 408, description = "`body_timeout`", body = Error),
        (status = 413, description = "`payload_too_large`", body = Error),
    )
)]
#[post("/api/v1/sync")]
pub async fn sync(
    state: web::Data<AppState>,
    who: DeviceCaller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let DeviceCaller { caller, revoked } = who;
    let body = read_body(payload, state.max_sync_bytes).await?;
    let decoded = Request::decode(&body).map_err(|e| match e {
        WireError::Decompress(_) => ApiError::bad_request("decompression_limit", e.to_string()),
        _ => ApiError::bad_request("corrupt_request", e.to_string()),
    });
    if let (false, Err(refused)) = (revoked, caller.require(&[Role::Director, Role::Supervisor])) {
        // County and admin accounts do not sync; a request of theirs that names files is an
        // attempt on those files, and is audited as one.
        if let Ok(request) = decoded {
            let named: Vec<ChildId> = request.named_files().into_iter().collect();
            if !named.is_empty() {
                with_db(&state.pool, move |c| {
                    let reader = caller.read("sync.refused", None, None);
                    write_transaction(c, |c| audit_refusals(c, &reader, &named))
                })
                .await?;
            }
        }
        return Err(refused);
    }
    let request = decoded?;
    // The span names sizes and counts only: never a file, a user or a device.
    let span = tracing::info_span!(
        "sync",
        version = request.version,
        up = body.len(),
        uploads = request.uploads.len(),
        fallback = request.syncs.len(),
        first = request.cursor.is_none(),
    );
    let started = std::time::Instant::now();
    let device = DeviceId(
        uuid::Uuid::parse_str(&caller.device_id)
            .map_err(|_| ApiError::unauthorized("invalid_token", "bad device id"))?,
    );
    let now = unix_now();
    let (cache, evaluating) = (state.docs.clone(), state.evaluation());
    let inside = span.clone();
    let applied = with_db(&state.pool, move |c| {
        let _entered = inside.enter();
        let ctx = Context {
            device,
            user: &caller.user.id,
            author: &caller.user.username,
            scope: &caller.scope,
            now_ms: (now as u64) * 1000,
            page_bytes: DEFAULT_PAGE_BYTES,
            revoked,
        };
        let reader = caller.read("sync.download", None, None);
        let env = Env {
            cache: Some(&cache),
            audit: Some(&reader),
            schedules: Some(evaluating.get()),
            alerts_for: Some(crate::service::alerts::Actor {
                username: &caller.user.username,
                role: caller.user.role,
                scope: &caller.scope,
            }),
        };
        Ok::<_, ApiError>(apply(c, &ctx, &request, &env)?)
    })
    .await;
    let seconds = started.elapsed().as_secs_f64();
    let _entered = span.enter();
    let response = match applied {
        Ok(response) => response,
        Err(e) => {
            let e = ApiError::from(e);
            let code = e.code();
            tracing::info!(event = "sync", outcome = code, ms = seconds * 1000.0);
            metrics::counter!("homevisit_syncs_total", "outcome" => code).increment(1);
            return Err(e);
        }
    };
    let bytes = response.encode();
    let outcome = if response.more { "page" } else { "done" };
    tracing::info!(
        event = "sync",
        outcome,
        down = bytes.len(),
        files = response.docs.len(),
        summaries = response.summaries.len(),
        ms = (seconds * 1000.0 * 10.0).round() / 10.0
    );
    metrics::counter!("homevisit_syncs_total", "outcome" => outcome).increment(1);
    metrics::histogram!("homevisit_sync_duration_seconds").record(seconds);
    Ok(HttpResponse::Ok().content_type(SYNC_MEDIA_TYPE).body(bytes))
}
