//! The read APIs: `GET /api/v1/children`, `/children/{id}`, `/children/{id}/history`, and the
//! audit log at `GET /api/v1/audit`.
//!
//! Every answer is limited to the caller's regions: a child outside them is 403, a child that
//! does not exist 404. Each read of child data appends an audit row in the same transaction
//! that reads it, so nothing is shown that is not logged.

use actix_web::{HttpResponse, get, web};
use homevisit_sync_core::file::ChildFile;
use homevisit_sync_core::vocab::SchoolStatus;
use serde::Serialize;

use crate::api::caller::Caller;
use crate::api::error::{ApiError, Body as Error};
use crate::service::children::{
    self, ChildList, HistoryEntry, ListFilter, ListStatus, ReadError, read_file,
};
use crate::state::{AppState, with_db};
use crate::store::audit::{self, AuditFilter};
use crate::store::people::Role;
use crate::store::write_transaction;

/// Roles that read child files.
const READERS: &[Role] = &[Role::Director, Role::Supervisor, Role::County];

impl From<ReadError> for ApiError {
    fn from(e: ReadError) -> Self {
        match e {
            ReadError::NotFound => ApiError::NotFound,
            ReadError::Forbidden(_) => ApiError::forbidden("region_forbidden", e.to_string()),
            ReadError::Damaged(..) => ApiError::internal("stored file damaged", &e),
            ReadError::Store(e) => e.into(),
        }
    }
}

/// A 400 for a list query out of its documented range.
fn out_of_range(what: &str) -> ApiError {
    ApiError::bad_request("invalid_query", format!("{what} is out of range"))
}

/// The children of the caller's regions, with today's schedules (audited).
#[utoipa::path(
    tag = "children",
    security(("bearer" = [])),
    params(ListFilter),
    responses(
        (status = 200, description = "this page, and how many match in all", body = ChildList),
        (status = 400, description = "`invalid_query`: an unknown key, or a value out of range", body = Error),
        (status = 401, description = "`missing_token`, `invalid_token` or `device_revoked`", body = Error),
        (status = 403, description = "`role_forbidden`, or `region_forbidden` for a village outside the caller's regions", body = Error),
    )
)]
#[get("/api/v1/children")]
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    filter: web::Query<ListFilter>,
) -> Result<HttpResponse, ApiError> {
    caller.require(READERS)?;
    let filter = filter.into_inner();
    if let Some(status) = &filter.status
        && !ListStatus::KEYS.contains(&status.as_str())
    {
        return Err(ApiError::bad_request(
            "invalid_query",
            "status is ok, due_soon, overdue or not_served",
        ));
    }
    if let Some(status) = &filter.school_status
        && status.parse::<SchoolStatus>().is_err()
    {
        return Err(ApiError::bad_request(
            "invalid_query",
            "school_status is enrolled, dropped_out or returned",
        ));
    }
    if filter.limit.is_some_and(|l| !(1..=1000).contains(&l)) {
        return Err(out_of_range("limit"));
    }
    if filter.offset.is_some_and(|o| o > i32::MAX as u32) {
        return Err(out_of_range("offset"));
    }
    if let Some(village) = &filter.village
        && !caller.scope.contains(village)
    {
        return Err(ApiError::forbidden(
            "region_forbidden",
            format!("village {village} is outside your regions"),
        ));
    }
    let today = state.clock.today();
    let list = with_db(&state.pool, move |c| {
        write_transaction(c, |c| {
            audit::record(
                c,
                &caller.read("children.list", None, filter.village.as_deref()),
            )?;
            children::list(c, &caller.scope, &filter, today)
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(list))
}

/// One child's file, as JSON (audited).
#[utoipa::path(
    tag = "children",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "the file id",
            example = "5d1c0e6a-3c52-4b0e-9d0f-6a1f2b3c4d5e")),
    responses(
        (status = 200, description = "the file: profile, people, attributes, records", body = Object),
        (status = 400, description = "`invalid_path`: not a UUID", body = Error),
        (status = 401, description = "`missing_token`, `invalid_token` or `device_revoked`", body = Error),
        (status = 403, description = "`role_forbidden` or `region_forbidden`", body = Error),
        (status = 404, description = "`not_found`", body = Error),
    )
)]
#[get("/api/v1/children/{id}")]
pub async fn detail(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<uuid::Uuid>,
) -> Result<HttpResponse, ApiError> {
    caller.require(READERS)?;
    let id = path.into_inner();
    let file = with_db(&state.pool, move |c| {
        write_transaction(c, |c| {
            let doc = read_file(c, &caller.scope, &caller.read("child.read", None, None), id)?;
            Ok::<_, ApiError>(ChildFile::from_doc(doc).map(|f| f.to_json()))
        })
    })
    .await?
    .map_err(|e| ApiError::internal("stored file unreadable", &e))?;
    Ok(HttpResponse::Ok().json(file))
}

/// A file's history.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct History {
    /// Oldest first.
    changes: Vec<HistoryEntry>,
}

/// Reads of child files.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditList {
    /// Oldest first.
    entries: Vec<audit::AuditEntry>,
}

/// Who changed what in a file, and when, oldest first (audited).
#[utoipa::path(
    tag = "children",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "the file id",
            example = "5d1c0e6a-3c52-4b0e-9d0f-6a1f2b3c4d5e")),
    responses(
        (status = 200, description = "every change", body = History),
        (status = 400, description = "`invalid_path`: not a UUID", body = Error),
        (status = 401, description = "`missing_token`, `invalid_token` or `device_revoked`", body = Error),
        (status = 403, description = "`role_forbidden` or `region_forbidden`", body = Error),
        (status = 404, description = "`not_found`", body = Error),
    )
)]
#[get("/api/v1/children/{id}/history")]
pub async fn history(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<uuid::Uuid>,
) -> Result<HttpResponse, ApiError> {
    caller.require(READERS)?;
    let id = path.into_inner();
    let (mut doc, receipts) = with_db(&state.pool, move |c| {
        write_transaction(c, |c| {
            let reader = caller.read("child.history", None, None);
            let doc = read_file(c, &caller.scope, &reader, id)?;
            let receipts = crate::store::sync::receipts(c, &id.to_string())?;
            Ok::<_, ApiError>((doc, receipts))
        })
    })
    .await?;
    let entries = web::block(move || children::history(&mut doc, &receipts))
        .await
        .map_err(|e| ApiError::internal("history", &e))?;
    Ok(HttpResponse::Ok().json(History { changes: entries }))
}

/// The audit log (county: reads of files in their regions; admin: everything).
#[utoipa::path(
    tag = "children",
    security(("bearer" = [])),
    params(AuditFilter),
    responses(
        (status = 200, description = "entries, oldest first", body = AuditList),
        (status = 400, description = "`invalid_query`: an unknown key, or a value out of range", body = Error),
        (status = 401, description = "`missing_token`, `invalid_token` or `device_revoked`", body = Error),
        (status = 403, description = "`role_forbidden`", body = Error),
    )
)]
#[get("/api/v1/audit")]
pub async fn audit_log(
    state: web::Data<AppState>,
    caller: Caller,
    filter: web::Query<AuditFilter>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::County, Role::Admin])?;
    let filter = filter.into_inner();
    if filter.limit.is_some_and(|l| !(1..=1000).contains(&l)) {
        return Err(out_of_range("limit"));
    }
    if filter.after.is_some_and(|a| a < 0) {
        return Err(out_of_range("after"));
    }
    let prefixes: Option<Vec<String>> = (caller.user.role != Role::Admin)
        .then(|| caller.scope.prefixes().map(str::to_owned).collect());
    let rows = with_db(&state.pool, move |c| {
        audit::list(c, &filter, prefixes.as_deref()).map_err(ApiError::from)
    })
    .await?;
    Ok(HttpResponse::Ok().json(AuditList { entries: rows }))
}
