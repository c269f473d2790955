//! `POST /api/v1/roster`: a county (or an administrator) uploads its list of children, and
//! their files are created (docs/OPERATIONS.md, "Roster import").

use actix_web::{HttpResponse, post, web};
use serde::Serialize;

use crate::api::caller::Caller;
use crate::api::error::{ApiError, Body as Error, read_body};
use crate::service::roster::{self, Imported, RosterError, RowError};
use crate::state::{AppState, with_db};
use crate::store::people::{self, Role};
use crate::store::write_transaction;

/// The largest roster accepted, bytes.
pub const MAX_ROSTER_BYTES: usize = 16 << 20;

/// A roster refused: every bad row, with its field.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RosterRefused {
    /// `invalid_roster`.
    pub code: &'static str,
    /// How many rows are wrong; nothing was imported.
    pub message: String,
    /// Every problem, by row and field.
    pub errors: Vec<RowError>,
}

/// Creates a file for each child of the roster who has none. A roster with any bad row changes
/// nothing; the same roster again changes nothing.
#[utoipa::path(
    tag = "roster",
    security(("bearer" = [])),
    request_body(content(
        (String = "text/csv"),
        (crate::api::openapi::Binary = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    ), description = "UTF-8 CSV, or an XLSX workbook (its first sheet), with a header row: name, sex, birth_date, village, categories, and optionally id_number, address, hukou, guardianship, risk_flags, registered_on (or their Chinese headings)"),
    responses(
        (status = 200, description = "files created, and rows whose child already had one", body = Imported),
        (status = 400, description = "`invalid_roster`: rows are wrong (each named with its field), nothing was imported", body = RosterRefused),
        (status = 401, description = "`missing_token`, `invalid_token` or `device_revoked`", body = Error),
        (status = 403, description = "`role_forbidden`", body = Error),
        (status = 408, description = "`body_timeout`", body = Error),
        (status = 413, description = "`payload_too_large`", body = Error),
        (status = 422, description = "`unreadable_roster`: not UTF-8 CSV with a header, not an XLSX workbook (or one that inflates past 256 MiB), or over 100,000 rows", body = Error),
    )
)]
#[post("/api/v1/roster")]
pub async fn import(
    state: web::Data<AppState>,
    caller: Caller,
    req: actix_web::HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::County, Role::Admin])?;
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let body = read_body(payload, MAX_ROSTER_BYTES).await?;
    // The declared type is believed when it names one of the two forms, so an upload that
    // claims to be a workbook and is not one is refused as such.
    let format = if declared.starts_with(crate::api::reports::XLSX) {
        roster::Format::Xlsx
    } else if declared.starts_with("text/csv") {
        roster::Format::Csv
    } else {
        roster::Format::sniff(&body)
    };
    let evaluating = state.evaluation();
    let today = evaluating.get().on;
    let outcome = with_db(&state.pool, move |c| {
        let villages = people::village_codes(c)?;
        let scope = (caller.user.role != Role::Admin).then_some(&caller.scope);
        let children = roster::parse(&body, format, &villages, scope, today)?;
        let e = evaluating.get();
        let at = chrono::DateTime::from_timestamp(e.now, 0).unwrap_or_default();
        write_transaction(c, |c| {
            roster::import(c, &children, roster::AUTHOR, &e, at, &mut |_| {})
        })
    })
    .await;
    match outcome {
        Ok(done) => {
            if done.created > 0 {
                state.alerts.bus.wake();
            }
            Ok(HttpResponse::Ok().json(done))
        }
        Err(crate::state::Blocking::Failed(RosterError::Invalid(errors))) => {
            Ok(HttpResponse::BadRequest().json(RosterRefused {
                code: "invalid_roster",
                message: format!("{} errors; nothing was imported", errors.len()),
                errors,
            }))
        }
        Err(crate::state::Blocking::Failed(RosterError::Unreadable(message))) => {
            Err(ApiError::Refused {
                status: actix_web::http::StatusCode::UNPROCESSABLE_ENTITY,
                code: "unreadable_roster",
                message,
                files: Vec::new(),
            })
        }
        Err(crate::state::Blocking::Failed(RosterError::Database(e))) => Err(e.into()),
        Err(crate::state::Blocking::Failed(e @ RosterError::Store(_))) => {
            Err(ApiError::internal("roster import", &e))
        }
        Err(crate::state::Blocking::Unavailable(_)) => Err(ApiError::Unavailable),
        Err(crate::state::Blocking::Died(e)) => Err(ApiError::internal("roster import", &e)),
    }
}
