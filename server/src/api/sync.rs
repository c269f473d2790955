//! `POST /api/v1/sync`: one round trip of the sync protocol (docs/PROTOCOL.md).
//!
//! The body is the binary request frame; the answer is the binary response frame. The whole
//! request is applied in one database transaction and acknowledged only after it commits.

use actix_web::{HttpResponse, post, web};
use homevisit_sync_core::sync::server::{Context, DEFAULT_PAGE_BYTES, HandleError, Reject};
use homevisit_sync_core::sync::{DeviceId, Request};

use crate::api::caller::DeviceCaller;
use crate::api::error::{ApiError, read_body};
use crate::app::{AppState, unix_now, with_db};
use crate::store::people::Role;
use crate::store::sync::apply;

/// The media type of sync frames.
pub const SYNC_MEDIA_TYPE: &str = "application/vnd.homevisit.sync";

impl From<HandleError<diesel::result::Error>> for ApiError {
    fn from(e: HandleError<diesel::result::Error>) -> Self {
        match e {
            HandleError::Rejected { doc, reason } => {
                let message = format!("file {doc} refused: {reason}");
                match reason {
                    Reject::OutOfScope(_) | Reject::MovesOutOfScope(_) => ApiError::Forbidden {
                        code: reason.code(),
                        message,
                    },
                    Reject::Corrupt(_) | Reject::Invalid(_) => ApiError::BadRequest {
                        code: reason.code(),
                        message,
                    },
                }
            }
            HandleError::Store(e) => ApiError::internal("sync storage", &e),
            HandleError::Damaged(id, e) => {
                ApiError::internal("stored file damaged", &format!("{id}: {e}"))
            }
        }
    }
}

/// Applies a device's changes and answers with what it lacks.
#[post("/api/v1/sync")]
pub async fn sync(
    state: web::Data<AppState>,
    who: DeviceCaller,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let DeviceCaller { caller, revoked } = who;
    if !revoked {
        caller.require(&[Role::Director, Role::Supervisor])?;
    }
    let body = read_body(payload, state.max_sync_bytes).await?;
    let request = Request::decode(&body)
        .map_err(|e| ApiError::bad_request("corrupt_request", e.to_string()))?;
    let device = DeviceId(
        uuid::Uuid::parse_str(&caller.device_id)
            .map_err(|_| ApiError::unauthorized("invalid_token", "bad device id"))?,
    );
    let now = unix_now();
    let cache = state.docs.clone();
    let response = with_db(&state.pool, move |c| {
        let ctx = Context {
            device,
            scope: &caller.scope,
            now_ms: (now as u64) * 1000,
            page_bytes: DEFAULT_PAGE_BYTES,
            revoked,
        };
        let reader = caller.read("sync.download", None, None);
        Ok::<_, ApiError>(apply(c, &ctx, &request, Some(&cache), Some(&reader))?)
    })
    .await?;
    Ok(HttpResponse::Ok()
        .content_type(SYNC_MEDIA_TYPE)
        .body(response.encode()))
}
