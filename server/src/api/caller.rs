//! Who is calling: the bearer token checked, then the user and device looked up afresh, so a
//! disabled user, a revoked device or a changed region scope takes effect at the next request
//! rather than when the token expires.

use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use homevisit_sync_core::sync::Scope;
use std::future::Future;
use std::pin::Pin;

use crate::api::error::ApiError;
use crate::service::auth;
use crate::service::clock::unix_now;
use crate::state::{AppState, with_db};
use crate::store::audit::Read;
use crate::store::people::{Role, User};

/// An authenticated caller on a device that is not revoked.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The user, with role and regions.
    pub user: User,
    /// The device the token was issued to.
    pub device_id: String,
    /// The village-code prefixes the user's regions cover.
    pub scope: Scope,
    /// The peer address, for the audit log.
    pub remote: String,
}

/// An authenticated caller whose device may have been revoked: only the sync endpoint takes
/// it, to send the wipe order.
#[derive(Debug, Clone)]
pub struct DeviceCaller {
    /// The caller.
    pub caller: Caller,
    /// The device was revoked.
    pub revoked: bool,
}

impl Caller {
    /// The audit row of this caller reading `child` (in `village`) now.
    pub fn read<'a>(
        &'a self,
        action: &'a str,
        child: Option<&'a str>,
        village: Option<&'a str>,
    ) -> Read<'a> {
        Read {
            at: unix_now(),
            user_id: &self.user.id,
            username: &self.user.username,
            role: self.user.role.key(),
            device_id: &self.device_id,
            action,
            child_id: child,
            village,
            remote: &self.remote,
        }
    }

    /// Refuses callers whose role is not among `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        if roles.contains(&self.user.role) {
            Ok(())
        } else {
            Err(ApiError::forbidden(
                "role_forbidden",
                format!("a {} may not do this", self.user.role.key()),
            ))
        }
    }
}

fn bearer(req: &HttpRequest) -> Result<String, ApiError> {
    let header = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .ok_or_else(|| ApiError::unauthorized("missing_token", "send Authorization: Bearer"))?;
    header
        .to_str()
        .ok()
        .and_then(|h| h.strip_prefix("Bearer "))
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
        .ok_or_else(|| ApiError::unauthorized("invalid_token", "malformed Authorization header"))
}

async fn authenticate(req: HttpRequest) -> Result<DeviceCaller, ApiError> {
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or(ApiError::Internal)?
        .clone();
    let token = bearer(&req)?;
    let now = unix_now();
    let claims = state
        .keys
        .verify(&token, now)
        .map_err(|e| ApiError::unauthorized("invalid_token", e.to_string()))?;
    let found = with_db(&state.pool, move |c| auth::principal(c, &claims.sid, now)).await?;
    let principal =
        found.ok_or_else(|| ApiError::unauthorized("invalid_token", "session ended"))?;
    let remote = req
        .peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_default();
    Ok(DeviceCaller {
        revoked: principal.device_revoked,
        caller: Caller {
            scope: principal.user.scope(),
            user: principal.user,
            device_id: principal.device_id,
            remote,
        },
    })
}

impl FromRequest for DeviceCaller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        Box::pin(authenticate(req.clone()))
    }
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let found = authenticate(req).await?;
            if found.revoked {
                return Err(ApiError::unauthorized(
                    "device_revoked",
                    "device revoked: wipe local data",
                ));
            }
            Ok(found.caller)
        })
    }
}
