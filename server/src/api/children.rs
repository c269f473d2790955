//! The read APIs: `GET /api/v1/children`, `/children/{id}`, `/children/{id}/history`, and the
//! audit log at `GET /api/v1/audit`.
//!
//! Every answer is limited to the caller's regions: a child outside them is 403, a child that
//! does not exist 404. Each read of child data appends an audit row in the same transaction
//! that reads it, so nothing is shown that is not logged.

use actix_web::{HttpResponse, get, web};
use automerge::AutoCommit;
use homevisit_sync_core::file::ChildFile;
use homevisit_sync_core::sync::ChildId;
use homevisit_sync_core::sync::server::ServerStore;
use serde::Serialize;
use std::collections::BTreeSet;

use crate::api::caller::Caller;
use crate::api::error::{ApiError, Body as Error};
use crate::state::{AppState, with_db};
use crate::store::audit::{self, AuditFilter};
use crate::store::children::{self, ChildList, ListFilter, ListStatus};
use crate::store::people::Role;
use crate::store::sync::SqlSyncStore;
use crate::store::{DbConnection, write_transaction};

/// Roles that read child files.
const READERS: &[Role] = &[Role::Director, Role::Supervisor, Role::County];

fn db_error(e: diesel::result::Error) -> ApiError {
    e.into()
}

fn audit_row(
    conn: &mut DbConnection,
    caller: &Caller,
    action: &str,
    child: Option<&str>,
    village: Option<&str>,
) -> Result<(), ApiError> {
    audit::record(conn, &caller.read(action, child, village)).map_err(db_error)
}

/// Loads a file the caller may see, or says why not: 404 if it does not exist, 403 if it lies
/// outside the caller's regions. The audit row is written before the file is read.
fn load_visible(
    conn: &mut DbConnection,
    caller: &Caller,
    uuid: uuid::Uuid,
    action: &str,
) -> Result<AutoCommit, ApiError> {
    let village = SqlSyncStore::new(conn)
        .doc_village(ChildId(uuid))
        .map_err(db_error)?
        .ok_or(ApiError::NotFound)?;
    if !caller.scope.contains(&village) {
        return Err(ApiError::forbidden(
            "region_forbidden",
            format!("child {uuid} is outside your regions"),
        ));
    }
    audit_row(
        conn,
        caller,
        action,
        Some(&uuid.to_string()),
        Some(&village),
    )?;
    let stored = SqlSyncStore::new(conn)
        .doc(ChildId(uuid))
        .map_err(db_error)?
        .ok_or(ApiError::NotFound)?;
    AutoCommit::load(&stored.bytes)
        .map_err(|e| ApiError::internal("stored file damaged", &format!("{uuid}: {e}")))
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
    let rules = state.rules.clone();
    let today = state.clock.today();
    let list = with_db(&state.pool, move |c| {
        write_transaction(c, |c| {
            audit_row(c, &caller, "children.list", None, filter.village.as_deref())?;
            children::list(c, &caller.scope, &filter, &rules, today).map_err(db_error)
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
            let doc = load_visible(c, &caller, id, "child.read")?;
            Ok::<_, ApiError>(ChildFile::from_doc(doc).map(|f| f.to_json()))
        })
    })
    .await?
    .map_err(|e| ApiError::internal("stored file unreadable", &e))?;
    Ok(HttpResponse::Ok().json(file))
}

/// One change in a file's history.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HistoryEntry {
    /// The change hash.
    pub hash: String,
    /// When it was made on the device, Unix seconds.
    pub at: i64,
    /// Who made it (the author the device wrote, which the server checked when it arrived).
    pub by: Option<String>,
    /// When the server received it, Unix seconds by the server's clock; absent for changes
    /// imported rather than received from a phone.
    pub received_at: Option<i64>,
    /// Whose sync brought it (username).
    pub received_from: Option<String>,
    /// The parts of the file it touched: `profile`, `records/ID`, `attributes/ID`, ...
    pub touched: Vec<String>,
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
            let doc = load_visible(c, &caller, id, "child.history")?;
            let receipts = crate::store::sync::receipts(c, &id.to_string())?;
            Ok::<_, ApiError>((doc, receipts))
        })
    })
    .await?;
    let entries = web::block(move || history_of(&mut doc, &receipts))
        .await
        .map_err(|e| ApiError::internal("history", &e))?;
    Ok(HttpResponse::Ok().json(History { changes: entries }))
}

fn history_of(
    doc: &mut AutoCommit,
    receipts: &std::collections::BTreeMap<String, (i64, String)>,
) -> Vec<HistoryEntry> {
    let changes: Vec<_> = doc
        .get_changes(&[])
        .into_iter()
        .map(|c| {
            (
                c.hash(),
                c.deps().to_vec(),
                c.timestamp(),
                c.message().map(str::to_owned),
            )
        })
        .collect();
    changes
        .into_iter()
        .map(|(hash, deps, at, by)| {
            let mut touched = BTreeSet::new();
            for patch in doc.diff(&deps, &[hash]) {
                let mut parts: Vec<String> = patch
                    .path
                    .iter()
                    .map(|(_, prop)| prop.to_string())
                    .collect();
                if let automerge::PatchAction::PutMap { key, .. }
                | automerge::PatchAction::DeleteMap { key } = &patch.action
                {
                    parts.push(key.clone());
                }
                parts.truncate(2);
                if !parts.is_empty() {
                    touched.insert(parts.join("/"));
                }
            }
            let hash = hash.to_string();
            let receipt = receipts.get(&hash);
            HistoryEntry {
                received_at: receipt.map(|(at, _)| *at),
                received_from: receipt.map(|(_, who)| who.clone()),
                hash,
                at,
                by,
                touched: touched.into_iter().collect(),
            }
        })
        .collect()
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
        audit::list(c, &filter, prefixes.as_deref()).map_err(db_error)
    })
    .await?;
    Ok(HttpResponse::Ok().json(AuditList { entries: rows }))
}
