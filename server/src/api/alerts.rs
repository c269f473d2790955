//! Alerts over HTTP: `GET /api/v1/alerts`, `GET /api/v1/alerts/{id}`, `POST .../ack`,
//! `POST .../close`, and the event stream `GET /api/v1/alerts/stream` (docs/ALERTS.md).
//!
//! Every call is limited like the files: an alert of a village outside the caller's regions,
//! or of a kind the caller's role is not told of, is 403; one that does not exist is 404.

use actix_web::{HttpRequest, HttpResponse, get, post, web};
use serde::{Deserialize, Serialize};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use crate::api::caller::Caller;
use crate::api::error::{ApiError, Body as Error, JsonObject};
use crate::service::alerts::{
    self, Actor, AlertError, AlertView, KINDS, Lang, STATUSES, event_view, view,
};
use crate::service::clock::unix_now;
use crate::state::{AppState, with_db};
use crate::store::DbConnection;
use crate::store::alerts::{self as rows, AlertFilter, AlertRow};
use crate::store::people::Role;
use crate::store::write_transaction;

/// Roles that are told of alerts.
const READERS: &[Role] = &[Role::Director, Role::Supervisor, Role::County];

/// The longest note or outcome taken, in characters.
const MAX_TEXT: usize = 2000;

/// How often a quiet stream sends a comment, so proxies and phones keep it open.
pub const HEARTBEAT: Duration = Duration::from_secs(15);

/// How long one stream lasts: the client reconnects with `Last-Event-ID`, and the caller's
/// token, device and regions are checked afresh.
pub const STREAM_LIFETIME: Duration = Duration::from_secs(15 * 60);

/// How often a stream looks for events written by other instances.
pub const STREAM_POLL: Duration = Duration::from_secs(1);

impl From<AlertError> for ApiError {
    fn from(e: AlertError) -> Self {
        match e {
            AlertError::NotFound => ApiError::NotFound,
            AlertError::Forbidden(_) => ApiError::forbidden("region_forbidden", e.to_string()),
            AlertError::Closed(_) => ApiError::Conflict {
                code: "alert_closed",
                message: e.to_string(),
            },
            AlertError::ClosesItself(_) => ApiError::Conflict {
                code: "closes_itself",
                message: e.to_string(),
            },
            AlertError::Store(e) => e.into(),
        }
    }
}

fn lang(req: &HttpRequest) -> Lang {
    Lang::from_accept(
        req.headers()
            .get(actix_web::http::header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok()),
    )
}

fn actor(caller: &Caller) -> Actor<'_> {
    Actor {
        username: &caller.user.username,
        role: caller.user.role,
        scope: &caller.scope,
    }
}

/// What the alert list filters by.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// `due_soon`, `overdue`, `overdue_escalated` or `danger`.
    #[param(inline, value_type = Option<AlertKind>)]
    pub kind: Option<String>,
    /// `open`, `acknowledged` or `closed`.
    #[param(inline, value_type = Option<AlertStatus>)]
    pub status: Option<String>,
    /// One child's alerts.
    pub child_id: Option<uuid::Uuid>,
    /// At most this many (default 200).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
    /// `next_cursor` of the previous page.
    #[param(
        pattern = "^[0-9]{1,18}_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
    )]
    pub cursor: Option<String>,
}

/// The kinds of alert, as the list filters by them.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum AlertKind {
    /// A visit is due within the due-soon window.
    DueSoon,
    /// A visit is past due.
    Overdue,
    /// A visit is past due for longer than the escalation threshold.
    OverdueEscalated,
    /// A danger found on a visit.
    Danger,
}

/// The statuses of an alert.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum AlertStatus {
    /// Raised, nobody has acknowledged it.
    Open,
    /// Someone is on it.
    Acknowledged,
    /// Done.
    Closed,
}

/// A page of alerts.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AlertList {
    /// How many match in all.
    pub total: i64,
    /// This page, newest first.
    pub alerts: Vec<AlertView>,
    /// Where the next page starts; absent on the last page.
    pub next_cursor: Option<String>,
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::bad_request("invalid_query", message)
}

fn parse_cursor(cursor: &str) -> Option<(i64, String)> {
    let (at, id) = cursor.split_once('_')?;
    let at = at.parse::<i64>().ok()?;
    let id = uuid::Uuid::parse_str(id).ok()?;
    Some((at, id.to_string()))
}

/// The alerts the caller is told of, newest first.
#[utoipa::path(
    tag = "alerts",
    security(("bearer" = [])),
    params(ListQuery),
    responses(
        (status = 200, description = "this page, and how many match in all", body = AlertList),
        (status = 400, description = "`invalid_query`: an unknown key, kind or status, a bad cursor, or a limit out of range", body = Error),
        (status = 401, description = "`missing_token`, `invalid_token` or `device_revoked`", body = Error),
        (status = 403, description = "`role_forbidden`", body = Error),
    )
)]
#[get("/api/v1/alerts")]
pub async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    query: web::Query<ListQuery>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    caller.require(READERS)?;
    let q = query.into_inner();
    if let Some(k) = &q.kind
        && !KINDS.contains(&k.as_str())
    {
        return Err(invalid(format!("kind is one of {}", KINDS.join(", "))));
    }
    if let Some(s) = &q.status
        && !STATUSES.contains(&s.as_str())
    {
        return Err(invalid(format!("status is one of {}", STATUSES.join(", "))));
    }
    let limit = q.limit.unwrap_or(200);
    if !(1..=1000).contains(&limit) {
        return Err(invalid("limit is out of range"));
    }
    let cursor = match &q.cursor {
        Some(c) => Some(parse_cursor(c).ok_or_else(|| invalid("cursor is not one we gave"))?),
        None => None,
    };
    let lang = lang(&req);
    let (total, rows) = with_db(&state.pool, move |c| {
        let child = q.child_id.map(|c| c.to_string());
        let filter = AlertFilter {
            kind: q.kind.as_deref(),
            status: q.status.as_deref(),
            child_id: child.as_deref(),
            before: cursor.as_ref().map(|(at, id)| (*at, id.as_str())),
        };
        rows::page(c, &actor(&caller).visible(), &filter, limit as i64)
    })
    .await?;
    let next_cursor = (rows.len() == limit)
        .then(|| rows.last().map(|r| format!("{}_{}", r.raised_at, r.id)))
        .flatten();
    Ok(HttpResponse::Ok().json(AlertList {
        total,
        alerts: rows.into_iter().map(|r| view(r, lang)).collect(),
        next_cursor,
    }))
}

const ID_PARAM: &str = "the alert id";

/// One alert, with its history.
#[utoipa::path(
    tag = "alerts",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = ID_PARAM)),
    responses(
        (status = 200, description = "the alert and its history", body = AlertView),
        (status = 400, description = "`invalid_path`: not a UUID", body = Error),
        (status = 401, description = "`missing_token`, `invalid_token` or `device_revoked`", body = Error),
        (status = 403, description = "`role_forbidden` or `region_forbidden`", body = Error),
        (status = 404, description = "`not_found`", body = Error),
    )
)]
#[get("/api/v1/alerts/{id}")]
pub async fn detail(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<uuid::Uuid>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    caller.require(READERS)?;
    let id = path.into_inner().to_string();
    let (alert, history) = with_db(&state.pool, move |c| {
        alerts::read(c, &actor(&caller), &id).map_err(ApiError::from)
    })
    .await?;
    let mut alert = view(alert, lang(&req));
    alert.history = Some(history.into_iter().map(event_view).collect());
    Ok(HttpResponse::Ok().json(alert))
}

/// An acknowledgement.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Ack {
    /// What the acknowledger has to say (kept in the alert's history).
    #[serde(default)]
    #[schema(max_length = 2000)]
    pub note: String,
}

/// A close.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Close {
    /// What came of it (处理结果): not blank.
    #[schema(min_length = 1, max_length = 2000, pattern = "\\S")]
    pub outcome: String,
}

fn check_text(field: &str, text: &str, required: bool) -> Result<(), ApiError> {
    if required && text.trim().is_empty() {
        return Err(ApiError::bad_request(
            "invalid_body",
            format!("{field} is required"),
        ));
    }
    if text.chars().count() > MAX_TEXT {
        return Err(ApiError::bad_request(
            "invalid_body",
            format!("{field} is longer than {MAX_TEXT} characters"),
        ));
    }
    Ok(())
}

/// Acknowledges an alert: someone has seen it and is on it. Acknowledging it again changes
/// nothing.
#[utoipa::path(
    tag = "alerts",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = ID_PARAM)),
    request_body = Ack,
    responses(
        (status = 200, description = "the alert", body = AlertView),
        (status = 400, description = "`invalid_path`, `invalid_json` or `invalid_body`", body = Error),
        (status = 401, description = "`missing_token`, `invalid_token` or `device_revoked`", body = Error),
        (status = 403, description = "`role_forbidden` or `region_forbidden`", body = Error),
        (status = 404, description = "`not_found`", body = Error),
        (status = 409, description = "`alert_closed`", body = Error),
    )
)]
#[post("/api/v1/alerts/{id}/ack")]
pub async fn acknowledge(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<uuid::Uuid>,
    body: JsonObject<Ack>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    caller.require(READERS)?;
    let note = body.0.note;
    check_text("note", &note, false)?;
    change(&state, caller, path, &req, move |c, actor, id, now| {
        alerts::acknowledge(c, actor, id, &note, now)
    })
    .await
}

/// Changes one alert in a transaction of its own as `f` says, waking the streams when it
/// changed, and answers with the alert.
async fn change(
    state: &AppState,
    caller: Caller,
    path: web::Path<uuid::Uuid>,
    req: &HttpRequest,
    f: impl FnOnce(&mut DbConnection, &Actor<'_>, &str, i64) -> Result<(AlertRow, bool), AlertError>
    + Send
    + 'static,
) -> Result<HttpResponse, ApiError> {
    let id = path.into_inner().to_string();
    let (alert, changed) = with_db(&state.pool, move |c| {
        write_transaction(c, |c| f(c, &actor(&caller), &id, unix_now())).map_err(ApiError::from)
    })
    .await?;
    if changed {
        state.alerts.bus.wake();
    }
    Ok(HttpResponse::Ok().json(view(alert, lang(req))))
}

/// Closes a danger alert with its outcome. Schedule alerts close by themselves when the record
/// they wait for arrives.
#[utoipa::path(
    tag = "alerts",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = ID_PARAM)),
    request_body = Close,
    responses(
        (status = 200, description = "the alert", body = AlertView),
        (status = 400, description = "`invalid_path`, `invalid_json` or `invalid_body`", body = Error),
        (status = 401, description = "`missing_token`, `invalid_token` or `device_revoked`", body = Error),
        (status = 403, description = "`role_forbidden` or `region_forbidden`", body = Error),
        (status = 404, description = "`not_found`", body = Error),
        (status = 409, description = "`alert_closed`, or `closes_itself` for a schedule alert", body = Error),
    )
)]
#[post("/api/v1/alerts/{id}/close")]
pub async fn close(
    state: web::Data<AppState>,
    caller: Caller,
    path: web::Path<uuid::Uuid>,
    body: JsonObject<Close>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    caller.require(READERS)?;
    let outcome = body.0.outcome;
    check_text("outcome", &outcome, true)?;
    change(&state, caller, path, &req, move |c, actor, id, now| {
        alerts::close(c, actor, id, &outcome, now).map(|a| (a, true))
    })
    .await
}

/// The body of an event stream: what the task feeding it sends.
struct Events(tokio::sync::mpsc::Receiver<web::Bytes>);

impl futures_core::Stream for Events {
    type Item = Result<web::Bytes, actix_web::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.0.poll_recv(cx).map(|b| b.map(Ok))
    }
}

/// The caller's alerts as server-sent events, from `Last-Event-ID` on (or from now).
#[utoipa::path(
    tag = "alerts",
    security(("bearer" = [])),
    params(("Last-Event-ID" = Option<i64>, Header, description = "the `id:` of the last event received; the stream resumes after it")),
    responses(
        (status = 200, description = "`text/event-stream`: one `event: alert` per raise or change, `id:` its number, `data:` the alert as JSON with `change` (`raised`, `acknowledged`, `closed`); a comment every 15 s; the stream ends after 15 minutes and the client resumes", content_type = "text/event-stream", body = String),
        (status = 400, description = "`invalid_header`: Last-Event-ID is not a number", body = Error),
        (status = 401, description = "`missing_token`, `invalid_token` or `device_revoked`", body = Error),
        (status = 403, description = "`role_forbidden`", body = Error),
    )
)]
#[get("/api/v1/alerts/stream")]
pub async fn stream(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    caller.require(READERS)?;
    let resume = match req.headers().get("Last-Event-ID") {
        None => None,
        Some(v) => Some(
            v.to_str()
                .ok()
                .and_then(|s| s.trim().parse::<i64>().ok())
                .filter(|n| *n >= 0)
                .ok_or_else(|| {
                    ApiError::bad_request("invalid_header", "Last-Event-ID is an event number")
                })?,
        ),
    };
    let after = match resume {
        Some(n) => n,
        None => with_db(&state.pool, rows::last_seq).await?,
    };
    let lang = lang(&req);
    let (tx, rx) = tokio::sync::mpsc::channel::<web::Bytes>(64);
    let woken = state.alerts.bus.subscribe();
    let pool = state.pool.clone();
    actix_web::rt::spawn(feed(pool, caller, lang, after, woken, tx));
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(Events(rx)))
}

/// Feeds one stream until the client goes or its lifetime ends.
async fn feed(
    pool: crate::store::DbPool,
    caller: Caller,
    lang: Lang,
    mut after: i64,
    mut woken: tokio::sync::watch::Receiver<u64>,
    tx: tokio::sync::mpsc::Sender<web::Bytes>,
) {
    const PAGE: i64 = 200;
    let ends = tokio::time::Instant::now() + STREAM_LIFETIME;
    let mut quiet_since = tokio::time::Instant::now();
    if tx
        .send(web::Bytes::from_static(
            b"retry: 1000\n: homevisit alerts\n\n",
        ))
        .await
        .is_err()
    {
        return;
    }
    let caller = std::sync::Arc::new(caller);
    loop {
        woken.borrow_and_update();
        let (c2, from) = (caller.clone(), after);
        let page = with_db(&pool, move |c| {
            rows::events_after(c, &actor(&c2).visible(), from, PAGE)
        })
        .await;
        let events = match page {
            Ok(events) => events,
            Err(e) => {
                tracing::error!(event = "alert_stream_failed", cause = %e);
                return;
            }
        };
        let full = events.len() as i64 >= PAGE;
        for (seq, action, row) in events {
            let mut data = match serde_json::to_value(view(row, lang)) {
                Ok(v) => v,
                Err(_) => continue,
            };
            data["change"] = action.into();
            let frame = format!("id: {seq}\nevent: alert\ndata: {data}\n\n");
            if tx.send(web::Bytes::from(frame)).await.is_err() {
                return;
            }
            after = seq;
            quiet_since = tokio::time::Instant::now();
        }
        if tokio::time::Instant::now() >= ends {
            return;
        }
        if full {
            continue;
        }
        let heartbeat = quiet_since + HEARTBEAT;
        tokio::select! {
            _ = woken.changed() => {}
            _ = tokio::time::sleep(STREAM_POLL) => {}
            _ = tokio::time::sleep_until(heartbeat) => {
                if tx.send(web::Bytes::from_static(b": heartbeat\n\n")).await.is_err() {
                    return;
                }
                quiet_since = tokio::time::Instant::now();
            }
            _ = tx.closed() => return,
        }
    }
}
