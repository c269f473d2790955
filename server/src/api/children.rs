//! The read APIs: `GET /api/v1/children`, `/children/{id}`, `/children/{id}/history`, and the
//! audit log at `GET /api/v1/audit`.
//!
//! Every answer is limited to the caller's regions: a child outside them is 403, a child that
//! does not exist 404. Each read of child data appends an audit row in the same transaction
//! that reads it, so nothing is shown that is not logged.

use actix_web::{HttpResponse, get, post, web};
use homevisit_sync_core::file::ChildFile;
use homevisit_sync_core::vocab::{Guardianship, SchoolStatus};
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
    if let Some(level) = &filter.guardianship
        && level != crate::service::schedules::UNASSESSED
        && level.parse::<Guardianship>().is_err()
    {
        return Err(ApiError::bad_request(
            "invalid_query",
            "guardianship is good, average, poor or unassessed",
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

/// Moves a child's file to another village, township or county (seed 002 item 8: served where
/// the residence and 户籍 offices agree). At their next sync the old village's phones drop it
/// and the new village's receive it with its history. The read, the transfer and each drop are
/// audited.
#[utoipa::path(
    tag = "children",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "the file id",
            example = "5d1c0e6a-3c52-4b0e-9d0f-6a1f2b3c4d5e")),
    request_body = children::Transfer,
    responses(
        (status = 200, description = "moved", body = children::Transferred),
        (status = 400, description = "`invalid_body` or `invalid_path`", body = Error),
        (status = 401, description = "`missing_token`, `invalid_token` or `device_revoked`", body = Error),
        (status = 403, description = "`role_forbidden` (county and admin only) or `region_forbidden`", body = Error),
        (status = 404, description = "`not_found`: no such file, or `unknown_village`: no village with that code", body = Error),
        (status = 409, description = "`same_village`: the file is served there already", body = Error),
    )
)]
#[post("/api/v1/children/{id}/transfer")]
pub async fn transfer(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<uuid::Uuid>,
    body: web::Json<children::Transfer>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::County, Role::Admin])?;
    let id = path.into_inner();
    let to = body.into_inner();
    let valid_code =
        to.village_code.len() == 12 && to.village_code.bytes().all(|b| b.is_ascii_digit());
    if !valid_code
        || to.reason.trim().is_empty()
        || to.reason.chars().count() > 500
        || [&to.address, &to.hukou_place]
            .iter()
            .any(|t| t.as_ref().is_some_and(|t| t.chars().count() > 200))
    {
        return Err(ApiError::bad_request(
            "invalid_body",
            "village_code is 12 digits, reason 1 to 500 characters and not blank, address and hukou_place at most 200",
        ));
    }
    let evaluating = state.evaluation();
    let moved = with_db(&state.pool, move |c| {
        let e = evaluating.get();
        let at = chrono::DateTime::from_timestamp(e.now, 0).unwrap_or_default();
        // Admins act everywhere; a county moves files of its own regions (to anywhere).
        let everywhere = homevisit_sync_core::sync::Scope::new([""]);
        let scope = if caller.user.role == Role::Admin {
            &everywhere
        } else {
            &caller.scope
        };
        write_transaction(c, |c| {
            let reader = caller.read("child.transfer.read", None, None);
            let moved = children::transfer(c, scope, &reader, id, &to, at, e.on)?;
            crate::service::schedules::refresh_ids(c, std::slice::from_ref(&moved.id), &e)
                .map_err(|e| children::TransferError::Read(ReadError::Store(e)))?;
            Ok::<_, children::TransferError>(moved)
        })
    })
    .await;
    match moved {
        Ok(moved) => {
            state.alerts.bus.wake();
            Ok(HttpResponse::Ok().json(moved))
        }
        Err(crate::state::Blocking::Failed(e)) => Err(match e {
            children::TransferError::Read(e) => e.into(),
            e @ children::TransferError::UnknownVillage(_) => ApiError::Refused {
                status: actix_web::http::StatusCode::NOT_FOUND,
                code: "unknown_village",
                message: e.to_string(),
                files: Vec::new(),
            },
            e @ children::TransferError::SameVillage(_) => ApiError::Refused {
                status: actix_web::http::StatusCode::CONFLICT,
                code: "same_village",
                message: e.to_string(),
                files: Vec::new(),
            },
            e => ApiError::internal("transfer", &e),
        }),
        Err(crate::state::Blocking::Unavailable(_)) => Err(ApiError::Unavailable),
        Err(crate::state::Blocking::Died(e)) => Err(ApiError::internal("transfer", &e)),
    }
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
