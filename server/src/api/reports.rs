//! `GET /api/v1/reports/compliance`: the compliance report for counties and townships, as
//! JSON, CSV or XLSX (docs/REPORTS.md).

use actix_web::{HttpRequest, HttpResponse, get, web};
use serde::Deserialize;

use crate::api::caller::Caller;
use crate::api::error::{ApiError, Body as Error};
use crate::service::national as national_update;
use crate::service::reports::{self, Level, Period, Report};
use crate::state::{AppState, with_db};
use crate::store::audit;
use crate::store::people::Role;
use crate::store::write_transaction;

/// The XLSX media type.
pub const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// What the report is asked for.
#[derive(Debug, Clone, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ReportQuery {
    /// A month (`2026-11`) or a quarter (`2026-Q4`); one that has not begun has no rows.
    #[param(pattern = "^[0-9]{4}-(0[1-9]|1[0-2]|Q[1-4])$", example = "2026-Q4")]
    pub period: String,
    /// `village`, `township` (default) or `county`.
    #[param(inline, value_type = Option<ReportLevel>)]
    pub level: Option<String>,
    /// `json`, `csv` or `xlsx`; without it, the `Accept` header decides (JSON by default).
    #[param(inline, value_type = Option<ReportFormat>)]
    pub format: Option<String>,
}

/// Levels of the division tree rows are summed at.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum ReportLevel {
    /// Each village.
    Village,
    /// Each township.
    Township,
    /// Each county.
    County,
}

/// The forms a report comes in.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum ReportFormat {
    /// JSON.
    Json,
    /// CSV, UTF-8 with a byte-order mark.
    Csv,
    /// An Excel workbook.
    Xlsx,
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("invalid_query", message)
}

/// The compliance report of the caller's regions (audited).
#[utoipa::path(
    tag = "reports",
    security(("bearer" = [])),
    params(ReportQuery),
    responses(
        (status = 200, description = "the report: JSON, CSV or XLSX", content(
            (Report = "application/json"),
            (String = "text/csv"),
            (crate::api::openapi::Binary = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        )),
        (status = 400, description = "`invalid_query`: a bad period, an unknown level or format, an unknown key", body = Error),
        (status = 401, description = "`missing_token`, `invalid_token` or `device_revoked`", body = Error),
        (status = 403, description = "`role_forbidden`", body = Error),
    )
)]
#[get("/api/v1/reports/compliance")]
pub async fn compliance(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<ReportQuery>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::Supervisor, Role::County])?;
    let q = query.into_inner();
    let period = Period::parse(&q.period)
        .ok_or_else(|| invalid("period is a month (2026-11) or a quarter (2026-Q4)"))?;
    let level = Level::parse(q.level.as_deref().unwrap_or("township"))
        .ok_or_else(|| invalid("level is village, township or county"))?;
    let accept = req
        .headers()
        .get(actix_web::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let format = match q.format.as_deref() {
        Some(f @ ("json" | "csv" | "xlsx")) => f,
        Some(_) => return Err(invalid("format is json, csv or xlsx")),
        None if accept.contains(XLSX) => "xlsx",
        None if accept.contains("text/csv") => "csv",
        None => "json",
    };
    let today = state.clock.today();
    let (rules, zone) = (state.rules.clone(), state.clock.zone());
    let report = with_db(&state.pool, move |c| {
        write_transaction(c, |c| {
            audit::record(c, &caller.read("reports.compliance", None, None))?;
            let asked = reports::Asked {
                label: &q.period,
                period,
                level,
                today,
                zone,
            };
            reports::compliance(c, &caller.scope, &rules, asked)
        })
    })
    .await?;
    let name = format!("compliance-{}-{}", report.period, report.level);
    Ok(match format {
        "csv" => HttpResponse::Ok()
            .content_type("text/csv; charset=utf-8")
            .insert_header((
                "Content-Disposition",
                format!("attachment; filename=\"{name}.csv\""),
            ))
            .body(reports::to_csv(&report)),
        "xlsx" => HttpResponse::Ok()
            .content_type(XLSX)
            .insert_header((
                "Content-Disposition",
                format!("attachment; filename=\"{name}.xlsx\""),
            ))
            .body(reports::to_xlsx(&report).map_err(|e| ApiError::internal("xlsx", &e))?),
        _ => HttpResponse::Ok().json(report),
    })
}

/// What the national update is asked for.
#[derive(Debug, Clone, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct NationalQuery {
    /// A quarter (`2026-Q4`) or a month (`2026-11`); one that has not begun has no rows.
    #[param(pattern = "^[0-9]{4}-(0[1-9]|1[0-2]|Q[1-4])$", example = "2026-Q4")]
    pub period: String,
}

/// The quarterly update for the national Child Welfare Information System: one row per child
/// file of the county's regions, as XLSX. Every file exported is audited as a read.
#[utoipa::path(
    tag = "reports",
    security(("bearer" = [])),
    params(NationalQuery),
    responses(
        (status = 200, description = "the update, one sheet", content(
            (crate::api::openapi::Binary = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        )),
        (status = 400, description = "`invalid_query`: a bad period or an unknown key", body = Error),
        (status = 401, description = "`missing_token`, `invalid_token` or `device_revoked`", body = Error),
        (status = 403, description = "`role_forbidden`: only county staff export", body = Error),
    )
)]
#[get("/api/v1/reports/national")]
pub async fn national(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<NationalQuery>,
) -> Result<HttpResponse, ApiError> {
    caller.require(&[Role::County])?;
    let label = query.into_inner().period;
    let period = Period::parse(&label)
        .ok_or_else(|| invalid("period is a quarter (2026-Q4) or a month (2026-11)"))?;
    let today = state.clock.today();
    let rules = state.rules.clone();
    let columns = state.national_columns.clone();
    let name = format!("national-{label}");
    let national = with_db(&state.pool, move |c| {
        write_transaction(c, |c| {
            let reader = caller.read(national_update::ACTION, None, None);
            national_update::export(c, &caller.scope, &reader, &rules, (&label, period), today)
        })
    })
    .await?;
    let bytes = national_update::to_xlsx(&national, &columns)
        .map_err(|e| ApiError::internal("xlsx", &e))?;
    Ok(HttpResponse::Ok()
        .content_type(XLSX)
        .insert_header((
            "Content-Disposition",
            format!("attachment; filename=\"{name}.xlsx\""),
        ))
        .body(bytes))
}
