//! Alerts: what the server tells directors, supervisors and counties, and their lifecycle
//! (docs/ALERTS.md).
//!
//! * Schedule alerts follow the stored schedules: whenever a child is evaluated (by the sync
//!   that wrote its file, or by the job as days pass) [`reconcile`] raises `due_soon`,
//!   `overdue` and, after [`Policy::escalate_after_days`], `overdue_escalated`, and closes
//!   those that no longer hold, saying why (`visited`, `not_served`, ...).
//! * A danger record raises a `danger` alert in the same transaction; only a person closes it,
//!   with the outcome.
//! * One alert per child, kind and subject (schedule kind and due date, or danger record): the
//!   database's unique key keeps replays and racing instances from raising one twice.
//! * Every raise and change is an event numbered in commit order, and each raise is written to
//!   the webhook outbox in the same transaction (`service::webhooks` delivers it).

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

use crate::store::DbConnection;
use crate::store::alerts::{self as rows, AlertRow, NewAlert, NewDelivery, NewEvent, Visible};
use crate::store::people::Role;
use crate::store::schedules::EvaluatedRow;
use homevisit_sync_core::sync::Scope;
use homevisit_sync_core::sync::wire::Item;

/// The kinds of alert.
pub const KINDS: [&str; 4] = ["due_soon", "overdue", "overdue_escalated", "danger"];

/// The statuses of an alert.
pub const STATUSES: [&str; 3] = ["open", "acknowledged", "closed"];

/// The kinds of alert a role is told of.
pub fn kinds_for(role: Role) -> &'static [&'static str] {
    match role {
        Role::Director => &["due_soon", "overdue"],
        Role::Supervisor => &["overdue", "danger"],
        Role::County => &["overdue_escalated", "danger"],
        Role::Admin => &[],
    }
}

/// The format a webhook receiver takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    /// JSON with ids, signed with `X-Homevisit-Signature: sha256=<HMAC>`.
    Generic,
    /// A WeCom (企业微信) group robot: markdown with no personal data.
    Wecom,
    /// A DingTalk (钉钉) group robot: markdown with no personal data, signed when a secret is
    /// set.
    Dingtalk,
}

impl Format {
    /// Group robots post into chats whose members we do not check: they get digests with the
    /// place, the kind and a count, never a child.
    pub fn is_robot(self) -> bool {
        !matches!(self, Format::Generic)
    }
}

/// One webhook receiver, from the settings.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Webhook {
    /// A name of its own, unique among webhooks (the outbox refers to it).
    pub name: String,
    /// Where to POST.
    pub url: String,
    /// `generic`, `wecom` or `dingtalk`.
    pub format: Format,
    /// The alert kinds it receives; empty: all.
    #[serde(default)]
    pub kinds: Vec<String>,
    /// Only alerts of villages under this region code; empty: all.
    #[serde(default)]
    pub region: String,
    /// The HMAC key (generic) or DingTalk's signing secret; empty: unsigned.
    #[serde(default)]
    pub secret: String,
    /// The language of robot messages: `zh` (default) or `en`.
    #[serde(default)]
    pub language: Lang,
}

impl std::fmt::Debug for Webhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Robot URLs carry their access key; the secret is one.
        f.debug_struct("Webhook")
            .field("name", &self.name)
            .field("url", &self.url.split('?').next().unwrap_or_default())
            .field("format", &self.format)
            .field("kinds", &self.kinds)
            .field("region", &self.region)
            .field("secret", &if self.secret.is_empty() { "" } else { "***" })
            .field("language", &self.language)
            .finish()
    }
}

impl Webhook {
    /// Whether this receiver takes alerts of `kind` in `village`.
    pub fn takes(&self, kind: &str, village: &str) -> bool {
        (self.kinds.is_empty() || self.kinds.iter().any(|k| k == kind))
            && village.starts_with(crate::store::people::region_prefix(&self.region))
    }

    /// Why the settings of this webhook cannot work, if they cannot.
    pub fn check(&self) -> Result<(), String> {
        let name = &self.name;
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(format!(
                "webhook name {name:?}: use letters, digits, - and _"
            ));
        }
        if !(self.url.starts_with("https://") || self.url.starts_with("http://")) {
            return Err(format!("webhook {name}: url must be http:// or https://"));
        }
        if let Some(k) = self.kinds.iter().find(|k| !KINDS.contains(&k.as_str())) {
            return Err(format!(
                "webhook {name}: unknown alert kind {k:?} (one of {KINDS:?})"
            ));
        }
        if !self.region.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("webhook {name}: region is a region code (digits)"));
        }
        Ok(())
    }
}

/// A language of alert texts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lang {
    /// Chinese, the default.
    #[default]
    Zh,
    /// English.
    En,
}

impl Lang {
    /// The language an `Accept-Language` header prefers among ours; Chinese when it names
    /// neither.
    pub fn from_accept(header: Option<&str>) -> Lang {
        let mut best = (Lang::Zh, -1.0f32);
        for part in header.unwrap_or_default().split(',') {
            let mut pieces = part.split(';');
            let tag = pieces
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase();
            let q = pieces
                .find_map(|p| p.trim().strip_prefix("q=").and_then(|q| q.parse().ok()))
                .unwrap_or(1.0f32);
            let lang = if tag == "en" || tag.starts_with("en-") {
                Lang::En
            } else if tag == "zh" || tag.starts_with("zh-") {
                Lang::Zh
            } else {
                continue;
            };
            if q > best.1 {
                best = (lang, q);
            }
        }
        best.0
    }
}

/// Wakes whoever waits for alert events (the event streams) or outbox rows (the webhook
/// senders). Woken after commit, so a woken reader finds what woke it.
#[derive(Debug, Clone)]
pub struct Bus {
    events: tokio::sync::watch::Sender<u64>,
}

impl Default for Bus {
    fn default() -> Self {
        Bus {
            events: tokio::sync::watch::Sender::new(0),
        }
    }
}

impl Bus {
    /// Tells waiters that events were committed.
    pub fn wake(&self) {
        self.events.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// A receiver that sees every wake after it was made.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.events.subscribe()
    }
}

/// How alerts are raised and delivered.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// Days overdue after which the county is told (`overdue_escalated`).
    pub escalate_after_days: u32,
    /// The webhook receivers.
    pub webhooks: Vec<Webhook>,
    /// Wakes streams and senders after commit.
    pub bus: Bus,
}

/// What a transaction changed of alerts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Changed {
    /// Alerts raised.
    pub raised: usize,
    /// Alerts closed.
    pub closed: usize,
    /// Alerts acknowledged.
    pub acknowledged: usize,
}

impl Changed {
    /// Whether anything happened that a stream or a sender waits for.
    pub fn any(&self) -> bool {
        self.raised + self.closed + self.acknowledged > 0
    }
}

fn subject(schedule_kind: &str, due: &str) -> String {
    format!("{schedule_kind}/{due}")
}

/// Brings the alerts of freshly evaluated children in line with their schedules, and raises
/// the danger alerts of their danger records. Run it in the transaction that evaluated them.
pub fn reconcile(
    conn: &mut DbConnection,
    evaluated: &[EvaluatedRow],
    policy: &Policy,
    now: i64,
) -> diesel::QueryResult<Changed> {
    if evaluated.is_empty() {
        return Ok(Changed::default());
    }
    let ids: Vec<String> = evaluated.iter().map(|e| e.child.clone()).collect();
    let by_child: BTreeMap<&str, &EvaluatedRow> =
        evaluated.iter().map(|e| (e.child.as_str(), e)).collect();

    // What the schedules call for now.
    let mut wanted: BTreeMap<(String, String, String), NewAlert> = BTreeMap::new();
    for e in evaluated {
        for s in &e.schedules {
            let mut want = |kind: &'static str| {
                let subject = subject(&s.kind, &s.due);
                wanted.insert(
                    (e.child.clone(), kind.to_owned(), subject.clone()),
                    NewAlert {
                        id: uuid::Uuid::new_v4().to_string(),
                        kind,
                        child_id: e.child.clone(),
                        village: e.village.clone(),
                        subject,
                        schedule_kind: Some(s.kind.clone()),
                        due: Some(s.due.clone()),
                        record_date: s.last.clone(),
                        danger_kind: None,
                    },
                );
            };
            match s.status.as_str() {
                "due_soon" => want("due_soon"),
                "overdue" => {
                    want("overdue");
                    if s.days_overdue
                        >= i32::try_from(policy.escalate_after_days).unwrap_or(i32::MAX)
                    {
                        want("overdue_escalated");
                    }
                }
                _ => {}
            }
        }
    }

    // Open schedule alerts that no longer hold close, saying why; those that do are kept.
    let mut closing = Vec::new();
    for open in rows::unclosed_of(conn, &ids)? {
        if open.kind == "danger" {
            continue;
        }
        let key = (
            open.child_id.clone(),
            open.kind.clone(),
            open.subject.clone(),
        );
        if wanted.remove(&key).is_some() {
            continue;
        }
        let child = by_child.get(open.child_id.as_str());
        let schedule = child.and_then(|c| {
            c.schedules
                .iter()
                .find(|s| Some(&s.kind) == open.schedule_kind.as_ref())
        });
        let reason = match (child, schedule) {
            (Some(c), _) if c.status == "not_served" => "not_served",
            (_, None) => "not_required",
            (_, Some(s)) if s.last != open.record_date => "visited",
            (_, Some(s))
                if open.kind == "due_soon"
                    && s.status == "overdue"
                    && subject(&s.kind, &s.due) == open.subject =>
            {
                "now_overdue"
            }
            _ => "rescheduled",
        };
        closing.push((open.id, reason));
    }

    // Danger records not yet told of.
    let told = rows::subjects_of(conn, &ids, "danger")?;
    for (child, record, found, date) in rows::danger_records(conn, &ids)? {
        if told.get(&child).is_some_and(|s| s.contains(&record)) {
            continue;
        }
        let Some(e) = by_child.get(child.as_str()) else {
            continue;
        };
        wanted.insert(
            (child.clone(), "danger".to_owned(), record.clone()),
            NewAlert {
                id: uuid::Uuid::new_v4().to_string(),
                kind: "danger",
                child_id: child,
                village: e.village.clone(),
                subject: record,
                schedule_kind: None,
                due: None,
                record_date: Some(date),
                danger_kind: found,
            },
        );
    }

    let new: Vec<NewAlert> = wanted.into_values().collect();
    let raised: BTreeSet<String> = rows::insert_new(conn, &new, now)?.into_iter().collect();
    let closed = rows::close_by_system(conn, &closing, now)?;
    let reasons: BTreeMap<&str, &str> = closing.iter().map(|(id, r)| (id.as_str(), *r)).collect();
    let raised_alerts: Vec<&NewAlert> = new.iter().filter(|a| raised.contains(&a.id)).collect();
    let mut events: Vec<NewEvent> = raised_alerts
        .iter()
        .map(|a| NewEvent {
            alert_id: a.id.clone(),
            action: "raised",
            actor: None,
            note: None,
        })
        .collect();
    events.extend(closed.iter().map(|id| NewEvent {
        alert_id: id.clone(),
        action: "closed",
        actor: None,
        note: reasons.get(id.as_str()).map(|r| (*r).to_owned()),
    }));
    let seqs = rows::append_events(conn, &events, now)?;
    let deliveries: Vec<NewDelivery> = raised_alerts
        .iter()
        .zip(&seqs)
        .flat_map(|(a, seq)| {
            policy
                .webhooks
                .iter()
                .filter(|w| w.takes(a.kind, &a.village))
                .map(move |w| NewDelivery {
                    id: uuid::Uuid::new_v4().to_string(),
                    webhook: w.name.clone(),
                    event_seq: *seq,
                    alert_id: a.id.clone(),
                    kind: a.kind.to_owned(),
                    village: a.village.clone(),
                })
        })
        .collect();
    rows::enqueue(conn, &deliveries, now)?;
    Ok(Changed {
        raised: raised.len(),
        closed: closed.len(),
        acknowledged: 0,
    })
}

/// Why an alert could not be read or changed.
#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    /// No such alert.
    #[error("no such alert")]
    NotFound,
    /// The alert is outside the caller's regions, or of a kind the role is not told of.
    #[error("alert {0} is not yours to see")]
    Forbidden(String),
    /// The alert is closed.
    #[error("alert {0} is closed")]
    Closed(String),
    /// A schedule alert closes by itself when the visit is recorded.
    #[error("alert {0} closes by itself when the record it waits for arrives")]
    ClosesItself(String),
    /// The database failed.
    #[error("database: {0}")]
    Store(#[from] diesel::result::Error),
}

/// Someone acting on alerts.
#[derive(Debug, Clone, Copy)]
pub struct Actor<'a> {
    /// Their username.
    pub username: &'a str,
    /// Their role.
    pub role: Role,
    /// Their regions.
    pub scope: &'a Scope,
}

impl Actor<'_> {
    fn sees(&self, alert: &AlertRow) -> bool {
        self.scope.contains(&alert.village) && kinds_for(self.role).contains(&alert.kind.as_str())
    }

    /// What this actor may see.
    pub fn visible(&self) -> Visible<'_> {
        Visible {
            scope: self.scope,
            kinds: kinds_for(self.role),
        }
    }
}

/// One alert the actor may see, with its history.
pub fn read(
    conn: &mut DbConnection,
    actor: &Actor<'_>,
    id: &str,
) -> Result<(AlertRow, Vec<rows::EventRow>), AlertError> {
    let alert = rows::get(conn, id)?.ok_or(AlertError::NotFound)?;
    if !actor.sees(&alert) {
        return Err(AlertError::Forbidden(id.to_owned()));
    }
    let history = rows::history(conn, id)?;
    Ok((alert, history))
}

/// Acknowledges an alert the actor sees. Acknowledging one already acknowledged changes
/// nothing (a phone may send its acknowledgement twice); a closed one is refused.
pub fn acknowledge(
    conn: &mut DbConnection,
    actor: &Actor<'_>,
    id: &str,
    note: &str,
    now: i64,
) -> Result<(AlertRow, bool), AlertError> {
    let alert = rows::get(conn, id)?.ok_or(AlertError::NotFound)?;
    if !actor.sees(&alert) {
        return Err(AlertError::Forbidden(id.to_owned()));
    }
    match alert.status.as_str() {
        "closed" => Err(AlertError::Closed(id.to_owned())),
        "acknowledged" => Ok((alert, false)),
        _ => {
            if rows::acknowledge(conn, id, actor.username, now)? {
                rows::append_events(
                    conn,
                    &[NewEvent {
                        alert_id: id.to_owned(),
                        action: "acknowledged",
                        actor: Some(actor.username.to_owned()),
                        note: Some(note.to_owned()),
                    }],
                    now,
                )?;
            }
            let alert = rows::get(conn, id)?.ok_or(AlertError::NotFound)?;
            Ok((alert, true))
        }
    }
}

/// Closes a danger alert the actor sees, with the outcome (处理结果).
pub fn close(
    conn: &mut DbConnection,
    actor: &Actor<'_>,
    id: &str,
    outcome: &str,
    now: i64,
) -> Result<AlertRow, AlertError> {
    let alert = rows::get(conn, id)?.ok_or(AlertError::NotFound)?;
    if !actor.sees(&alert) {
        return Err(AlertError::Forbidden(id.to_owned()));
    }
    if alert.kind != "danger" {
        return Err(AlertError::ClosesItself(id.to_owned()));
    }
    if !rows::close_by_person(conn, id, actor.username, outcome, now)? {
        return Err(AlertError::Closed(id.to_owned()));
    }
    rows::append_events(
        conn,
        &[NewEvent {
            alert_id: id.to_owned(),
            action: "closed",
            actor: Some(actor.username.to_owned()),
            note: Some(outcome.to_owned()),
        }],
        now,
    )?;
    rows::get(conn, id)?.ok_or(AlertError::NotFound)
}

fn schedule_kind_text(kind: &str, lang: Lang) -> &str {
    match (kind, lang) {
        ("home_visit", Lang::Zh) => "入户走访",
        ("contact", Lang::Zh) => "联系",
        ("home_visit", Lang::En) => "home visit",
        ("contact", Lang::En) => "contact",
        (other, _) => other,
    }
}

fn danger_kind_text(kind: &str, lang: Lang) -> &str {
    let Ok(known) = kind.parse::<homevisit_sync_core::vocab::DangerKind>() else {
        return kind;
    };
    match lang {
        Lang::Zh => known.label_zh(),
        Lang::En => match known.key() {
            "living_alone" => "living alone",
            "guardian_incapable" => "guardian incapable",
            "guardian_neglect" => "guardian neglect",
            "domestic_violence" => "suspected domestic violence",
            "accidental_injury" => "suspected accidental injury",
            "unlawful_harm" => "suspected unlawful harm",
            "other" => "other danger",
            other => other,
        },
    }
}

/// The text an alert reads as, for a reader who sees it (it names the child).
pub fn text(alert: &AlertRow, lang: Lang) -> String {
    let name = &alert.name;
    let what = schedule_kind_text(alert.schedule_kind.as_deref().unwrap_or_default(), lang);
    let due = alert.due.as_deref().unwrap_or_default();
    let found = || {
        let sep = if lang == Lang::Zh { "、" } else { ", " };
        alert
            .danger_kind
            .as_deref()
            .unwrap_or_default()
            .split(',')
            .filter(|k| !k.is_empty())
            .map(|k| danger_kind_text(k, lang))
            .collect::<Vec<_>>()
            .join(sep)
    };
    match (alert.kind.as_str(), lang) {
        ("due_soon", Lang::Zh) => format!("{name}：{what}将于 {due} 到期"),
        ("overdue", Lang::Zh) => format!("{name}：{what}已逾期（应于 {due} 前完成）"),
        ("overdue_escalated", Lang::Zh) => {
            format!("{name}：{what}逾期已久（应于 {due} 前完成），请县级督办")
        }
        ("danger", Lang::Zh) => format!("{name}：走访发现危险情况（{}），请立即处置", found()),
        ("due_soon", Lang::En) => format!("{name}: {what} due by {due}"),
        ("overdue", Lang::En) => format!("{name}: {what} overdue (due {due})"),
        ("overdue_escalated", Lang::En) => {
            format!("{name}: {what} long overdue (due {due}); county follow-up needed")
        }
        ("danger", Lang::En) => format!("{name}: danger found on a visit ({}); act now", found()),
        (other, _) => format!("{name}: {other}"),
    }
}

/// What a kind of alert is called in robot digests.
pub fn kind_title(kind: &str, lang: Lang) -> &str {
    match (kind, lang) {
        ("due_soon", Lang::Zh) => "即将到期的走访",
        ("overdue", Lang::Zh) => "逾期未访",
        ("overdue_escalated", Lang::Zh) => "严重逾期未访（需县级督办）",
        ("danger", Lang::Zh) => "走访发现危险情况，请立即处置",
        ("due_soon", Lang::En) => "visits due soon",
        ("overdue", Lang::En) => "overdue visits",
        ("overdue_escalated", Lang::En) => "long-overdue visits (county follow-up)",
        ("danger", Lang::En) => "danger found on visits: act now",
        (other, _) => other,
    }
}

/// An alert as its readers see it: what they need to act on, nothing of the findings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AlertView {
    /// The alert.
    pub id: String,
    /// `due_soon`, `overdue`, `overdue_escalated` or `danger`.
    #[schema(example = "overdue")]
    pub kind: String,
    /// `open`, `acknowledged` or `closed`.
    #[schema(example = "open")]
    pub status: String,
    /// The child's file.
    pub child_id: String,
    /// The child's name.
    pub name: String,
    /// The village code.
    pub village: String,
    /// When it was raised (RFC 3339).
    pub raised_at: String,
    /// Schedule alerts: the record kind that is due (`home_visit`, `contact`).
    pub schedule_kind: Option<String>,
    /// Schedule alerts: when it is or was due.
    pub due: Option<String>,
    /// Danger alerts: what was found.
    pub danger_kind: Option<Vec<String>>,
    /// Danger alerts: the day of the danger record.
    pub danger_date: Option<String>,
    /// Who acknowledged it.
    pub acknowledged_by: Option<String>,
    /// When (RFC 3339).
    pub acknowledged_at: Option<String>,
    /// When it was closed (RFC 3339).
    pub closed_at: Option<String>,
    /// Who closed it; absent when it closed by itself.
    pub closed_by: Option<String>,
    /// Why it closed by itself: `visited`, `now_overdue`, `not_served`, `not_required` or
    /// `rescheduled`.
    pub close_reason: Option<String>,
    /// What came of it (处理结果), as the person who closed it wrote.
    pub outcome: Option<String>,
    /// What it says, in the language asked for (`Accept-Language`; Chinese by default).
    pub text: String,
    /// Every raise and change, oldest first (one alert's own page only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub history: Option<Vec<EventView>>,
}

/// One raise or change of an alert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct EventView {
    /// Its number in the event stream.
    pub seq: i64,
    /// `raised`, `acknowledged` or `closed`.
    pub action: String,
    /// When (RFC 3339).
    pub at: String,
    /// Who; absent for the server.
    pub actor: Option<String>,
    /// The acknowledgement's note, the outcome, or why it closed by itself.
    pub note: Option<String>,
}

/// A Unix time as RFC 3339, UTC.
pub fn rfc3339(at: i64) -> String {
    chrono::DateTime::from_timestamp(at, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The view of a stored alert.
pub fn view(row: AlertRow, lang: Lang) -> AlertView {
    let text = text(&row, lang);
    let danger = row.kind == "danger";
    let (close_reason, outcome) = match (&row.closed_by, row.outcome) {
        (None, reason) => (reason, None),
        (Some(_), outcome) => (None, outcome),
    };
    AlertView {
        id: row.id,
        kind: row.kind,
        status: row.status,
        child_id: row.child_id,
        name: row.name,
        village: row.village,
        raised_at: rfc3339(row.raised_at),
        schedule_kind: row.schedule_kind,
        due: row.due,
        danger_kind: row.danger_kind.map(|k| {
            k.split(',')
                .filter(|k| !k.is_empty())
                .map(str::to_owned)
                .collect()
        }),
        danger_date: if danger { row.record_date } else { None },
        acknowledged_by: row.acknowledged_by,
        acknowledged_at: row.acknowledged_at.map(rfc3339),
        closed_at: row.closed_at.map(rfc3339),
        closed_by: row.closed_by,
        close_reason,
        outcome,
        text,
        history: None,
    }
}

/// The most acknowledgements one sync applies; the rest wait for the next.
pub const MAX_SYNC_ACKS: usize = 1000;

/// The alert items of a sync (protocol version 3): the device's acknowledgements applied, and
/// the alerts that changed since the event it holds, as they are now. Run it in the sync's
/// transaction. Returns the items, whether more alerts wait, and how many acknowledgements
/// changed an alert.
pub fn sync_items(
    conn: &mut DbConnection,
    actor: &Actor<'_>,
    items: &[Item],
    now: i64,
) -> Result<(Vec<Item>, bool, usize), diesel::result::Error> {
    use homevisit_sync_core::sync::alerts::{
        ACK, ACK_RESULT, AFTER, Ack, AckResult, PAGE, UPTO, json_item, json_of, number_item,
        number_of,
    };
    let mut out = Vec::new();
    let mut acknowledged = 0;
    for item in items.iter().filter(|i| i.kind == ACK).take(MAX_SYNC_ACKS) {
        let Some(ack) = json_of::<Ack>(item) else {
            out.push(json_item(
                ACK_RESULT,
                &AckResult {
                    alert_id: String::new(),
                    ok: false,
                    code: Some("invalid_item".into()),
                },
            ));
            continue;
        };
        let valid =
            uuid::Uuid::parse_str(&ack.alert_id).is_ok() && ack.note.chars().count() <= 2000;
        let outcome = if valid {
            acknowledge(conn, actor, &ack.alert_id, &ack.note, now)
        } else {
            Err(AlertError::NotFound)
        };
        let (ok, code) = match outcome {
            Ok((_, changed)) => {
                acknowledged += usize::from(changed);
                (true, None)
            }
            Err(AlertError::Store(e)) => return Err(e),
            Err(AlertError::NotFound) if !valid => (false, Some("invalid_item")),
            Err(AlertError::NotFound) => (false, Some("not_found")),
            Err(AlertError::Forbidden(_)) => (false, Some("region_forbidden")),
            Err(AlertError::Closed(_)) => (false, Some("alert_closed")),
            Err(AlertError::ClosesItself(_)) => (false, Some("closes_itself")),
        };
        out.push(json_item(
            ACK_RESULT,
            &AckResult {
                alert_id: ack.alert_id,
                ok,
                code: code.map(str::to_owned),
            },
        ));
    }
    let Some(after) = items.iter().find(|i| i.kind == AFTER).and_then(number_of) else {
        return Ok((out, false, acknowledged));
    };
    let after = i64::try_from(after).unwrap_or(i64::MAX);
    let visible = actor.visible();
    let item = |seq: i64, row: AlertRow| {
        let mut value = serde_json::to_value(view(row, Lang::Zh)).unwrap_or_default();
        value["seq"] = seq.into();
        json_item(homevisit_sync_core::sync::alerts::ALERT, &value)
    };
    let mut more = false;
    let upto = if after == 0 {
        // A first sync: what is not closed, newest first, as of the last event. (The number is
        // read first: an alert raised in between is sent now and again next time, never lost.)
        let last = rows::last_seq(conn)?;
        let filter = rows::AlertFilter::default();
        let (_, open) = rows::page(conn, &visible, &filter, (PAGE * 2) as i64)?;
        out.extend(
            open.into_iter()
                .filter(|a| a.status != "closed")
                .take(PAGE)
                .map(|a| item(last, a)),
        );
        last
    } else {
        let events = rows::events_after(conn, &visible, after, PAGE as i64)?;
        more = events.len() >= PAGE;
        let upto = events.last().map_or(after, |(seq, ..)| *seq);
        // Each alert once, as it is now, under its latest event.
        let mut latest: BTreeMap<String, (i64, AlertRow)> = BTreeMap::new();
        for (seq, _, row) in events {
            latest.insert(row.id.clone(), (seq, row));
        }
        let mut changed: Vec<(i64, AlertRow)> = latest.into_values().collect();
        changed.sort_by_key(|(seq, _)| *seq);
        out.extend(changed.into_iter().map(|(seq, row)| item(seq, row)));
        upto
    };
    out.push(number_item(UPTO, u64::try_from(upto).unwrap_or(0)));
    Ok((out, more, acknowledged))
}

/// The view of an event.
pub fn event_view(e: rows::EventRow) -> EventView {
    EventView {
        seq: e.seq,
        action: e.action,
        at: rfc3339(e.at),
        actor: e.actor,
        note: e.note,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_language_picks_english_only_when_preferred_over_chinese() {
        assert_eq!(Lang::from_accept(None), Lang::Zh);
        assert_eq!(Lang::from_accept(Some("en-US,en;q=0.9")), Lang::En);
        assert_eq!(Lang::from_accept(Some("zh-CN,en;q=0.8")), Lang::Zh);
        assert_eq!(Lang::from_accept(Some("en;q=0.5, zh;q=0.9")), Lang::Zh);
        assert_eq!(Lang::from_accept(Some("fr, en;q=0.3")), Lang::En);
        assert_eq!(Lang::from_accept(Some("fr")), Lang::Zh);
    }

    #[test]
    fn each_role_is_told_of_the_kinds_the_seeds_give_it() {
        assert_eq!(kinds_for(Role::Director), ["due_soon", "overdue"]);
        assert_eq!(kinds_for(Role::Supervisor), ["overdue", "danger"]);
        assert_eq!(kinds_for(Role::County), ["overdue_escalated", "danger"]);
        assert!(kinds_for(Role::Admin).is_empty());
    }

    #[test]
    fn a_webhook_takes_only_its_kinds_and_region() {
        let hook = Webhook {
            name: "county".into(),
            url: "https://example.invalid/hook".into(),
            format: Format::Wecom,
            kinds: vec!["danger".into()],
            region: "220303".into(),
            secret: String::new(),
            language: Lang::Zh,
        };
        assert!(hook.takes("danger", "220303001001"));
        assert!(!hook.takes("overdue", "220303001001"));
        assert!(!hook.takes("danger", "220302001001"));
        // A full 12-digit code covers the villages under it.
        let township = Webhook {
            region: "220303001000".into(),
            ..hook.clone()
        };
        assert!(township.takes("danger", "220303001001"));
        assert!(!township.takes("danger", "220303002001"));
        assert!(hook.check().is_ok());
        let bad = Webhook {
            kinds: vec!["fire".into()],
            ..hook.clone()
        };
        assert!(bad.check().is_err());
        let leaky = format!(
            "{:?}",
            Webhook {
                url: "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=SECRETKEY".into(),
                secret: "s3".into(),
                ..hook
            }
        );
        assert!(
            !leaky.contains("SECRETKEY") && !leaky.contains("s3"),
            "{leaky}"
        );
    }
}
