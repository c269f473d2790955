//! Photos: `PUT /api/v1/blobs/{sha256}` (resumable, idempotent), `GET .../status`, and `GET`.
//!
//! An upload may come in pieces, each with `Content-Range: bytes START-END/TOTAL`; a piece
//! that does not start where the last one ended gets 409 with the offset to resume from. When
//! the last piece arrives the server re-decodes the image with `image` limits and checks that
//! it hashes to its name before it is stored, and binds it to the uploader: a record may name
//! only a photo its author uploaded (or one a file the author may see already names).
//! Uploading a photo one has uploaded before is a no-op; uploading a photo someone else
//! stored proves holding its bytes, and binds it to the new uploader too.

use actix_web::{HttpRequest, HttpResponse, get, put, web};
use serde::Serialize;

use crate::api::caller::Caller;
use crate::api::error::{ApiError, Body as Error, read_body};
use crate::service::clock::unix_now;
use crate::service::photos::{self, MAX_PHOTO_BYTES, Piece, SeeError, UploadError};
use crate::state::{AppState, with_db};
use crate::store::blobs::valid_name;
use crate::store::people::Role;

fn checked_name(name: &str) -> Result<&str, ApiError> {
    if valid_name(name) {
        Ok(name)
    } else {
        Err(ApiError::bad_request(
            "invalid_blob_name",
            "a photo is named by its SHA-256 in lowercase hex",
        ))
    }
}

impl From<SeeError> for ApiError {
    fn from(e: SeeError) -> Self {
        match e {
            SeeError::NotFound => ApiError::NotFound,
            SeeError::Forbidden => ApiError::forbidden("region_forbidden", e.to_string()),
            SeeError::Store(e) => e.into(),
        }
    }
}

/// `bytes START-END/TOTAL` (END inclusive).
fn content_range(req: &HttpRequest, len: usize) -> Result<(u64, u64), ApiError> {
    let Some(header) = req.headers().get("Content-Range") else {
        return Ok((0, len as u64));
    };
    let bad = || ApiError::bad_request("invalid_content_range", "expected bytes START-END/TOTAL");
    let text = header.to_str().map_err(|_| bad())?;
    let (range, total) = text
        .strip_prefix("bytes ")
        .and_then(|r| r.split_once('/'))
        .ok_or_else(bad)?;
    let (start, end) = range.split_once('-').ok_or_else(bad)?;
    let (start, end, total): (u64, u64, u64) = (
        start.parse().map_err(|_| bad())?,
        end.parse().map_err(|_| bad())?,
        total.parse().map_err(|_| bad())?,
    );
    if len == 0 || end < start || end - start != len as u64 - 1 || end >= total {
        return Err(bad());
    }
    Ok((start, total))
}

/// Where an upload stands.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct BlobStatus {
    /// The photo's name.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    sha256: String,
    /// The caller's upload of it is complete.
    stored: bool,
    /// Bytes of the caller's unfinished upload the server holds: resume there.
    #[serde(skip_serializing_if = "Option::is_none")]
    offset: Option<u64>,
}

/// A piece that does not start where the upload stands.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct OffsetMismatch {
    /// `upload_offset_mismatch`.
    code: &'static str,
    /// In words.
    message: String,
    /// Resume at this byte.
    offset: u64,
}

/// Receives a photo or a piece of one.
#[utoipa::path(
    tag = "photos",
    security(("bearer" = [])),
    params(
        ("sha256" = String, Path, pattern = "^[0-9a-f]{64}$", description = "the photo's SHA-256, lowercase hex",
         example = "8e82cb924028d244fb2a9cbabdbf1f435bb3305b100de2a0be51e1012a100e13"),
        ("Content-Range" = Option<String>, Header, pattern = "^bytes [0-9]+-[0-9]+/[0-9]+$",
         description = "for a piece: `bytes START-END/TOTAL`, END inclusive"),
    ),
    request_body(content = crate::api::openapi::Binary, content_type = "image/jpeg", description = "the photo, or a piece of it"),
    responses(
        (status = 200, description = "the caller had uploaded it already", body = BlobStatus),
        (status = 201, description = "stored", body = BlobStatus),
        (status = 202, description = "piece kept", body = BlobStatus,
         headers(("Upload-Offset" = u64, description = "bytes held"))),
        (status = 400, description = "`invalid_photo`, `invalid_blob_name`, `invalid_content_range`", body = Error),
        (status = 401, description = "`missing_token`, `invalid_token` or `device_revoked`", body = Error),
        (status = 403, description = "`role_forbidden`", body = Error),
        (status = 408, description = "`body_timeout`", body = Error),
        (status = 409, description = "`upload_offset_mismatch`", body = OffsetMismatch,
         headers(("Upload-Offset" = u64, description = "resume here"))),
        (status = 413, description = "`payload_too_large`, or `upload_quota_exceeded`: too many unfinished uploads on this device", body = Error),
    )
)]
#[put("/api/v1/blobs/{sha256}")]
pub async fn put_blob(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    path: web::Path<String>,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Director, Role::Supervisor])?;
    let sha = checked_name(&path)?.to_owned();
    let body = read_body(payload, MAX_PHOTO_BYTES).await?;
    let (start, total) = content_range(&req, body.len())?;
    if total > MAX_PHOTO_BYTES as u64 {
        return Err(ApiError::PayloadTooLarge {
            limit: MAX_PHOTO_BYTES,
        });
    }
    let blobs = state.blobs.clone();
    let (user, name) = (caller.user.id.clone(), sha.clone());
    let whole = with_db(&state.pool, move |c| {
        photos::stored_for(c, &blobs, &name, &user)
    })
    .await?;
    if whole {
        return Ok(HttpResponse::Ok().json(BlobStatus {
            sha256: sha,
            stored: true,
            offset: None,
        }));
    }
    let blobs = state.blobs.clone();
    let (dev, name) = (caller.device_id.clone(), sha.clone());
    let piece = web::block(move || photos::receive(&blobs, &dev, &name, start, total, &body))
        .await
        .map_err(|e| ApiError::internal("photo upload", &e))?
        .map_err(|e| match e {
            UploadError::Invalid(message) => ApiError::bad_request("invalid_photo", message),
            UploadError::Quota(_) => ApiError::Refused {
                status: actix_web::http::StatusCode::PAYLOAD_TOO_LARGE,
                code: "upload_quota_exceeded",
                message: e.to_string(),
                files: Vec::new(),
            },
            UploadError::Io(e) => ApiError::internal("photo upload", &e),
        })?;
    match piece {
        Piece::Misplaced { offset } => Ok(HttpResponse::Conflict()
            .insert_header(("Upload-Offset", offset.to_string()))
            .json(OffsetMismatch {
                code: "upload_offset_mismatch",
                message: format!("resume at byte {offset}"),
                offset,
            })),
        Piece::Kept { offset } => Ok(HttpResponse::Accepted()
            .insert_header(("Upload-Offset", offset.to_string()))
            .json(BlobStatus {
                sha256: sha,
                stored: false,
                offset: Some(offset),
            })),
        Piece::Whole { size, dims } => {
            let (user, name) = (caller.user.id.clone(), sha.clone());
            with_db(&state.pool, move |c| {
                photos::bind(c, &user, &name, size, dims, unix_now())
            })
            .await?;
            Ok(HttpResponse::Created().json(BlobStatus {
                sha256: sha,
                stored: true,
                offset: None,
            }))
        }
    }
}

/// How much of the caller's upload the server holds: `stored` once the caller's upload of it
/// is complete (whether others stored it says nothing to this caller).
#[utoipa::path(
    tag = "photos",
    security(("bearer" = [])),
    params(("sha256" = String, Path, pattern = "^[0-9a-f]{64}$", description = "the photo's SHA-256, lowercase hex",
         example = "8e82cb924028d244fb2a9cbabdbf1f435bb3305b100de2a0be51e1012a100e13")),
    responses(
        (status = 200, description = "where the upload stands", body = BlobStatus),
        (status = 400, description = "`invalid_blob_name`", body = Error),
        (status = 401, description = "`missing_token`, `invalid_token` or `device_revoked`", body = Error),
        (status = 403, description = "`role_forbidden`", body = Error),
    )
)]
#[get("/api/v1/blobs/{sha256}/status")]
pub async fn blob_status(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Director, Role::Supervisor])?;
    let sha = checked_name(&path)?;
    let (blobs, name, user) = (state.blobs.clone(), sha.to_owned(), caller.user.id.clone());
    let stored = with_db(&state.pool, move |c| {
        photos::stored_for(c, &blobs, &name, &user)
    })
    .await?;
    let offset = if stored {
        0
    } else {
        state.blobs.offset(&caller.device_id, sha)
    };
    Ok(HttpResponse::Ok().json(BlobStatus {
        sha256: sha.to_owned(),
        stored,
        offset: Some(offset),
    }))
}

/// A photo, to those who may see a file that refers to it (audited).
#[utoipa::path(
    tag = "photos",
    security(("bearer" = [])),
    params(("sha256" = String, Path, pattern = "^[0-9a-f]{64}$", description = "the photo's SHA-256, lowercase hex",
         example = "8e82cb924028d244fb2a9cbabdbf1f435bb3305b100de2a0be51e1012a100e13")),
    responses(
        (status = 200, description = "the image", content(
            (crate::api::openapi::Binary = "image/jpeg"),
            (crate::api::openapi::Binary = "image/png"),
        )),
        (status = 400, description = "`invalid_blob_name`", body = Error),
        (status = 401, description = "`missing_token`, `invalid_token` or `device_revoked`", body = Error),
        (status = 403, description = "`role_forbidden` or `region_forbidden`", body = Error),
        (status = 404, description = "`not_found`: no file the caller may see names it", body = Error),
    )
)]
#[get("/api/v1/blobs/{sha256}")]
pub async fn get_blob(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Director, Role::Supervisor, Role::County])?;
    let sha = checked_name(&path)?.to_owned();
    let name = sha.clone();
    let who = caller.clone();
    with_db(&state.pool, move |c| {
        photos::may_see(c, &who.scope, &who.read("photo.read", None, None), &name)
    })
    .await?;
    let store = state.blobs.clone();
    let bytes = web::block(move || store.read(&sha))
        .await
        .map_err(|e| ApiError::internal("photo read", &e))?
        .map_err(|_| ApiError::NotFound)?;
    let kind = if bytes.starts_with(b"\x89PNG") {
        "image/png"
    } else {
        "image/jpeg"
    };
    Ok(HttpResponse::Ok()
        .content_type(kind)
        .insert_header(("Cache-Control", "private, no-store"))
        .body(bytes))
}
