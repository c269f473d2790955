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
    /// The server could not do its part; details are logged, not returned.
    #[error("internal error")]
    Internal,
    /// A dependency (the database) is not available.
    #[error("service unavailable")]
    Unavailable,
}

#[derive(Serialize)]
struct Body<'a> {
    code: &'a str,
    message: String,
}

impl ApiError {
    /// The stable code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::NotFound => "not_found",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::BadRequest { code, .. } => code,
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
            ApiError::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ApiError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn error_response(&self) -> HttpResponse {
        HttpResponse::build(self.status_code()).json(Body {
            code: self.code(),
            message: self.to_string(),
        })
    }
}

/// The answer for routes that do not exist.
pub async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound)
}
