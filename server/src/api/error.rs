//! One error type for every endpoint: an explicit status per variant and a stable snake_case
//! `code` in a JSON body, `{"code": "...", "message": "..."}`. Messages never carry personal
//! data: they name ids and fields, not what a child file says.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

/// What an API call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No such route or resource.
    #[error("not found")]
    NotFound,
    /// The request body is larger than the endpoint accepts.
    #[error("request body too large: at most {limit} bytes")]
    PayloadTooLarge {
        /// The limit.
        limit: usize,
    },
    /// The request is malformed.
    #[error("{message}")]
    BadRequest {
        /// A stable code naming the problem.
        code: &'static str,
        /// What was wrong.
        message: String,
    },
    /// No valid credentials: a missing, malformed, forged or expired token, or a wrong password.
    #[error("{message}")]
    Unauthorized {
        /// A stable code naming the problem.
        code: &'static str,
        /// What was wrong.
        message: String,
    },
    /// The caller is known but may not do this (another region's child, the wrong role).
    #[error("{message}")]
    Forbidden {
        /// A stable code naming the problem.
        code: &'static str,
        /// What was refused.
        message: String,
    },
    /// The request conflicts with what is stored.
    #[error("{message}")]
    Conflict {
        /// A stable code naming the problem.
        code: &'static str,
        /// What conflicts.
        message: String,
    },
    /// Refused with a status of its own; a sync that refuses files names them, so the phone
    /// sets them aside and syncs the rest.
    #[error("{message}")]
    Refused {
        /// The status: 400 for what a file holds, 403 for who may write it, 408, 413, ...
        status: StatusCode,
        /// A stable code naming the problem.
        code: &'static str,
        /// What was wrong.
        message: String,
        /// The files, as the request named them; empty for anything but a sync.
        files: Vec<String>,
    },
    /// Too many attempts: try again after this many seconds.
    #[error("too many attempts: try again in {retry_after} s")]
    TooManyRequests {
        /// Seconds to wait.
        retry_after: i64,
    },
    /// The server could not do its part; details are logged, not returned.
    #[error("internal error")]
    Internal,
    /// A dependency (the database) is not available.
    #[error("service unavailable")]
    Unavailable,
}

/// Every error answer: a stable code to act on, and words for people.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Error)]
pub struct Body<'a> {
    /// What went wrong, as a stable snake_case code.
    code: &'a str,
    /// The same in words; never personal data.
    message: String,
    /// For a refused sync: the files refused, as the request named them.
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    #[schema(value_type = Option<Vec<String>>)]
    files: &'a [String],
}

impl ApiError {
    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::NotFound => "not_found",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::BadRequest { code, .. }
            | ApiError::Unauthorized { code, .. }
            | ApiError::Forbidden { code, .. }
            | ApiError::Conflict { code, .. }
            | ApiError::Refused { code, .. } => code,
            ApiError::TooManyRequests { .. } => "too_many_attempts",
            ApiError::Internal => "internal_error",
            ApiError::Unavailable => "unavailable",
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized { .. } => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden { .. } => StatusCode::FORBIDDEN,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::Refused { status, .. } => *status,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status_code());
        match self {
            ApiError::Unauthorized { .. } => {
                response.insert_header(("WWW-Authenticate", "Bearer"));
            }
            ApiError::TooManyRequests { retry_after } => {
                response.insert_header(("Retry-After", retry_after.to_string()));
            }
            _ => {}
        }
        let files = match self {
            ApiError::Refused { files, .. } => files.as_slice(),
            _ => &[],
        };
        response.json(Body {
            code: self.code(),
            message: self.to_string(),
            files,
        })
    }
}

impl ApiError {
    /// A 400 with a code.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::BadRequest {
            code,
            message: message.into(),
        }
    }

    /// A 401 with a code.
    pub fn unauthorized(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::Unauthorized {
            code,
            message: message.into(),
        }
    }

    /// A 403 with a code.
    pub fn forbidden(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::Forbidden {
            code,
            message: message.into(),
        }
    }

    /// A 408: the body stopped arriving.
    pub fn body_timeout() -> Self {
        ApiError::Refused {
            status: StatusCode::REQUEST_TIMEOUT,
            code: "body_timeout",
            message: "the request body stopped arriving: send it again".into(),
            files: Vec::new(),
        }
    }

    /// A 500, with the cause logged (never returned to the caller).
    pub fn internal(context: &str, cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(event = "internal_error", context, cause = %cause);
        ApiError::Internal
    }
}

impl<E: Into<ApiError>> From<crate::state::Blocking<E>> for ApiError {
    fn from(e: crate::state::Blocking<E>) -> Self {
        use crate::state::Blocking;
        match e {
            Blocking::Failed(e) => e.into(),
            Blocking::Unavailable(cause) => {
                tracing::error!(event = "database_unavailable", cause = %cause);
                ApiError::Unavailable
            }
            Blocking::Died(cause) => ApiError::internal("blocking task", &cause),
        }
    }
}

impl From<diesel::result::Error> for ApiError {
    fn from(e: diesel::result::Error) -> Self {
        ApiError::internal("database", &e)
    }
}

impl From<crate::service::auth::AuthError> for ApiError {
    fn from(e: crate::service::auth::AuthError) -> Self {
        use crate::service::auth::AuthError as A;
        let message = e.to_string();
        match e {
            A::InvalidCredentials => ApiError::unauthorized("invalid_credentials", message),
            A::Throttled { retry_after } => ApiError::TooManyRequests { retry_after },
            A::Disabled => ApiError::forbidden("account_disabled", message),
            A::DeviceTaken => ApiError::Conflict {
                code: "device_taken",
                message,
            },
            A::DeviceRevoked => ApiError::unauthorized("device_revoked", message),
            A::InvalidRefresh => ApiError::unauthorized("invalid_refresh_token", message),
            A::RefreshReused => ApiError::unauthorized("refresh_token_reused", message),
            A::Invalid(m) => ApiError::bad_request("invalid_request", m),
            A::Database(e) => ApiError::internal("auth storage", &e),
            A::People(e) => ApiError::internal("auth storage", &e),
        }
    }
}

/// Turns actix's JSON body errors into ours: 413 for oversized bodies, 400 otherwise.
pub fn json_error(
    err: actix_web::error::JsonPayloadError,
    _req: &actix_web::HttpRequest,
) -> actix_web::Error {
    use actix_web::error::JsonPayloadError as J;
    match err {
        J::OverflowKnownLength { limit, .. } | J::Overflow { limit } => {
            ApiError::PayloadTooLarge { limit }.into()
        }
        J::ContentType => {
            ApiError::bad_request("unsupported_content_type", "send application/json").into()
        }
        J::Payload(e) if crate::api::body::timed_out(&e) => ApiError::body_timeout().into(),
        other => ApiError::bad_request("invalid_json", other.to_string()).into(),
    }
}

/// A JSON body read as `T`, refused with 400 `invalid_json` unless it is a JSON object: serde
/// would also read a struct from an array of its fields, which the API document does not
/// allow. Limits and the other errors are the `JsonConfig`'s.
#[derive(Debug)]
pub struct JsonObject<T>(pub T);

impl<T: serde::de::DeserializeOwned + 'static> actix_web::FromRequest for JsonObject<T> {
    type Error = actix_web::Error;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(
        req: &actix_web::HttpRequest,
        payload: &mut actix_web::dev::Payload,
    ) -> Self::Future {
        let json = actix_web::web::Json::<serde_json::Value>::from_request(req, payload);
        Box::pin(async move {
            let actix_web::web::Json(value) = json.await?;
            if !value.is_object() {
                return Err(
                    ApiError::bad_request("invalid_json", "the body is a JSON object").into(),
                );
            }
            serde_json::from_value(value)
                .map(JsonObject)
                .map_err(|e| ApiError::bad_request("invalid_json", e.to_string()).into())
        })
    }
}

/// Reads a raw body of at most `limit` bytes: 413 past it, 400 if the upload breaks off.
pub async fn read_body(
    payload: actix_web::web::Payload,
    limit: usize,
) -> Result<actix_web::web::Bytes, ApiError> {
    match payload.to_bytes_limited(limit).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(e))
            if e.as_error::<actix_web::error::PayloadError>()
                .is_some_and(crate::api::body::timed_out) =>
        {
            Err(ApiError::body_timeout())
        }
        Ok(Err(e)) => Err(ApiError::bad_request("invalid_body", e.to_string())),
        Err(_) => Err(ApiError::PayloadTooLarge { limit }),
    }
}
