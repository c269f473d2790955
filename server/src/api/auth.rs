//! `POST /api/v1/auth/login`, `/refresh` and `/logout`; the devices of `/api/v1/devices`.

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use serde::{Deserialize, Serialize};

use crate::api::caller::Caller;
use crate::api::error::ApiError;
use crate::app::{AppState, unix_now, with_db};
use crate::auth::tokens::ACCESS_TTL;
use crate::store::auth::{self, Granted};
use crate::store::people::Role;

/// What a phone sends to log in.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    username: String,
    password: String,
    device_id: String,
    device_name: String,
}

/// A refresh token, to rotate or to end.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RefreshRequest {
    refresh_token: String,
}

/// Tokens for a session.
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    access_token: String,
    token_type: &'static str,
    expires_in: i64,
    refresh_token: String,
    refresh_expires_at: i64,
    user_id: String,
    role: &'static str,
    scope: Vec<String>,
    device_id: String,
}

fn tokens(state: &AppState, granted: Granted, now: i64) -> Result<HttpResponse, ApiError> {
    let access = state
        .keys
        .issue(
            &granted.user_id,
            &granted.device_id,
            granted.role,
            &granted.session,
            now,
        )
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
#[post("/api/v1/auth/login")]
pub async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Json<LoginRequest>,
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
    } = body.into_inner();
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

/// Spends a refresh token for a fresh pair.
#[post("/api/v1/auth/refresh")]
pub async fn refresh(
    state: web::Data<AppState>,
    body: web::Json<RefreshRequest>,
) -> Result<HttpResponse, ApiError> {
    let now = unix_now();
    let token = body.into_inner().refresh_token;
    let keys = state.keys.clone();
    let granted = with_db(&state.pool, move |c| {
        auth::refresh(c, &token, keys.refresh_secret(), now)
    })
    .await?;
    tokens(&state, granted, now)
}

/// Ends the login a refresh token belongs to.
#[post("/api/v1/auth/logout")]
pub async fn logout(
    state: web::Data<AppState>,
    body: web::Json<RefreshRequest>,
) -> Result<HttpResponse, ApiError> {
    let now = unix_now();
    let token = body.into_inner().refresh_token;
    with_db(&state.pool, move |c| auth::logout(c, &token, now)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Every registered device (admin).
#[get("/api/v1/devices")]
pub async fn list_devices(
    state: web::Data<AppState>,
    caller: Caller,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Admin])?;
    let list = with_db(&state.pool, auth::list_devices).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "devices": list })))
}

/// Revokes a device (admin): its tokens stop working and its next sync orders a wipe.
#[post("/api/v1/devices/{id}/revoke")]
pub async fn revoke_device(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Admin])?;
    let id = auth::parse_device_id(&path.into_inner())?.to_string();
    let now = unix_now();
    let found = with_db(&state.pool, move |c| auth::revoke_device(c, &id, now)).await?;
    if found {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::NotFound)
    }
}
