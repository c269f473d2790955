//! `POST /api/v1/auth/login`, `/refresh` and `/logout`; the devices of `/api/v1/devices`.

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use serde::{Deserialize, Serialize};

use crate::api::caller::Caller;
use crate::api::error::{ApiError, JsonObject};
use crate::auth::tokens::ACCESS_TTL;
use crate::service::auth::{self, Granted};
use crate::service::clock::unix_now;
use crate::state::{AppState, with_db};
use crate::store::people::Role;

use crate::api::error::Body as Error;

/// What a phone sends to log in.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"username": "director11", "password": "correct horse battery",
    "device_id": "0b6c4f2e-8f43-4d9e-9a53-2f3c1c7e9a10", "device_name": "红米 Note 12"}))]
pub struct LoginRequest {
    username: String,
    password: String,
    /// The phone's installation id, a UUID it keeps.
    #[schema(format = Uuid)]
    device_id: String,
    /// The phone's name as administrators see it: 1 to 64 characters, no control or
    /// text-direction characters, no `<`, `>`, `&` or `"`.
    #[schema(
        min_length = 1,
        max_length = 64,
        pattern = "^[^\\x00-\\x1f\\x7f-\\x9f<>&\"\\u061c\\u200e\\u200f\\u202a-\\u202e\\u2066-\\u2069]{1,64}$"
    )]
    device_name: String,
}

/// A refresh token, to rotate or to end.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"refresh_token": "29fc68679a6aa375a76e2336fe9c0846d626ffaa7ae8a47c8408d49df6e697d7"}))]
pub struct RefreshRequest {
    refresh_token: String,
}

/// Tokens for a session.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TokenResponse {
    /// An access token for `Authorization: Bearer` (opaque, 50 characters), valid
    /// `expires_in` seconds or until the session ends.
    access_token: String,
    #[schema(pattern = "^Bearer$")]
    token_type: &'static str,
    expires_in: i64,
    /// Spend it at `/api/v1/auth/refresh` for the next pair; it works once.
    refresh_token: String,
    /// Unix seconds.
    refresh_expires_at: i64,
    user_id: String,
    #[schema(value_type = Role)]
    role: &'static str,
    /// The village-code prefixes the user may see and write.
    scope: Vec<String>,
    #[schema(format = Uuid)]
    device_id: String,
}

/// Registered devices.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DeviceList {
    devices: Vec<crate::store::auth::DeviceInfo>,
}

fn tokens(state: &AppState, granted: Granted, now: i64) -> Result<HttpResponse, ApiError> {
    let access = state
        .keys
        .issue(&granted.session, now)
        .map_err(|e| ApiError::internal("issuing a token", &e))?;
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(TokenResponse {
            access_token: access,
            token_type: "Bearer",
            expires_in: ACCESS_TTL,
            refresh_token: granted.refresh_token,
            refresh_expires_at: granted.refresh_expires_at,
            user_id: granted.user_id,
            role: granted.role,
            scope: granted.scope,
            device_id: granted.device_id,
        }))
}

/// Checks a password, registers the device, and returns an access and a refresh token.
///
/// Failed logins slow down the next tries for that name from that address, and past a higher
/// count from anywhere, alike for names that exist and names that do not; nothing locks.
#[utoipa::path(
    tag = "auth",
    request_body = LoginRequest,
    responses(
        (status = 200, description = "logged in", body = TokenResponse),
        (status = 400, description = "`invalid_json`, `unsupported_content_type` or `invalid_request` (bad device id or name)", body = Error),
        (status = 401, description = "`invalid_credentials`, or `device_revoked`", body = Error),
        (status = 403, description = "`account_disabled`", body = Error),
        (status = 408, description = "`body_timeout`", body = Error),
        (status = 409, description = "`device_taken`: the device is another user's", body = Error),
        (status = 413, description = "`payload_too_large`", body = Error),
        (status = 429, description = "`too_many_attempts`", body = Error,
         headers(("Retry-After" = i64, description = "seconds to wait"))),
    )
)]
#[post("/api/v1/auth/login")]
pub async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: JsonObject<LoginRequest>,
) -> Result<HttpResponse, ApiError> {
    let now = unix_now();
    let source = req
        .peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_default();
    let LoginRequest {
        username,
        password,
        device_id,
        device_name,
    } = body.0;
    let granted = with_db(&state.pool, move |c| {
        auth::login(
            c,
            &username,
            &password,
            &device_id,
            &device_name,
            &source,
            now,
        )
    })
    .await?;
    tokens(&state, granted, now)
}

/// Spends a refresh token for a fresh pair. A retry within two minutes, while the successor is
/// unused, gets the same successor; any other reuse revokes the whole session.
#[utoipa::path(
    tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = 200, description = "rotated", body = TokenResponse),
        (status = 400, description = "`invalid_json` or `unsupported_content_type`", body = Error),
        (status = 401, description = "`invalid_refresh_token`, `refresh_token_reused` (the session is revoked), or `device_revoked` (wipe local data)", body = Error),
        (status = 403, description = "`account_disabled`", body = Error),
        (status = 408, description = "`body_timeout`", body = Error),
        (status = 413, description = "`payload_too_large`", body = Error),
    )
)]
#[post("/api/v1/auth/refresh")]
pub async fn refresh(
    state: web::Data<AppState>,
    body: JsonObject<RefreshRequest>,
) -> Result<HttpResponse, ApiError> {
    let now = unix_now();
    let token = body.0.refresh_token;
    let keys = state.keys.clone();
    let granted = with_db(&state.pool, move |c| {
        auth::refresh(c, &token, keys.refresh_secret(), now)
    })
    .await?;
    tokens(&state, granted, now)
}

/// Ends the session a refresh token belongs to, with every access token of it.
#[utoipa::path(
    tag = "auth",
    request_body = RefreshRequest,
    responses(
        (status = 204, description = "logged out (also for a token already ended or unknown)"),
        (status = 400, description = "`invalid_json` or `unsupported_content_type`", body = Error),
        (status = 408, description = "`body_timeout`", body = Error),
        (status = 413, description = "`payload_too_large`", body = Error),
    )
)]
#[post("/api/v1/auth/logout")]
pub async fn logout(
    state: web::Data<AppState>,
    body: JsonObject<RefreshRequest>,
) -> Result<HttpResponse, ApiError> {
    let now = unix_now();
    let token = body.0.refresh_token;
    with_db(&state.pool, move |c| auth::logout(c, &token, now)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Every registered device (admin).
#[utoipa::path(
    tag = "devices",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "newest first", body = DeviceList),
        (status = 401, description = "`missing_token`, `invalid_token` or `device_revoked`", body = Error),
        (status = 403, description = "`role_forbidden`", body = Error),
    )
)]
#[get("/api/v1/devices")]
pub async fn list_devices(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Admin])?;
    let devices = with_db(&state.pool, auth::list_devices).await?;
    Ok(HttpResponse::Ok().json(DeviceList { devices }))
}

/// Revokes a device (admin): its tokens stop working and its next sync orders a wipe.
#[utoipa::path(
    tag = "devices",
    security(("bearer" = [])),
    params(("id" = String, Path, format = Uuid, description = "the device id",
            example = "0b6c4f2e-8f43-4d9e-9a53-2f3c1c7e9a10")),
    responses(
        (status = 204, description = "revoked (revoking twice keeps the first time)"),
        (status = 400, description = "`invalid_path`: not a UUID", body = Error),
        (status = 401, description = "`missing_token`, `invalid_token` or `device_revoked`", body = Error),
        (status = 403, description = "`role_forbidden`", body = Error),
        (status = 404, description = "`not_found`: no such device", body = Error),
    )
)]
#[post("/api/v1/devices/{id}/revoke")]
pub async fn revoke_device(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<uuid::Uuid>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Admin])?;
    let id = path.into_inner().to_string();
    let now = unix_now();
    let found = with_db(&state.pool, move |c| auth::revoke_device(c, &id, now)).await?;
    if found {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::NotFound)
    }
}
