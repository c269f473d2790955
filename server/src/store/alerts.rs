//! The rows of alerts, their events and the webhook outbox. (`service::alerts` decides what
//! is raised, closed and delivered; this module only reads and writes.)

use diesel::prelude::*;
use std::collections::BTreeMap;

use super::DbConnection;
use super::schema::{alert_events, alert_seq, alerts, child_records, children, deliveries};
use homevisit_sync_core::sync::Scope;

/// An alert as stored, with the child's name.
#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct AlertRow {
    /// The alert.
    pub id: String,
    /// `due_soon`, `overdue`, `overdue_escalated` or `danger`.
    pub kind: String,
    /// The child.
    pub child_id: String,
    /// The child's village.
    pub village: String,
    /// What it is about: `<schedule kind>/<due>`, or the danger record's id.
    pub subject: String,
    /// For schedule alerts: the record kind that is due.
    pub schedule_kind: Option<String>,
    /// For schedule alerts: when it was due.
    pub due: Option<String>,
    /// The record it is about: for schedule alerts the last qualifying record when it was
    /// raised, for danger alerts the danger record's date.
    pub record_date: Option<String>,
    /// For danger alerts: what was found, comma-separated keys.
    pub danger_kind: Option<String>,
    /// `open`, `acknowledged` or `closed`.
    pub status: String,
    /// When, Unix seconds.
    pub raised_at: i64,
    /// Who acknowledged it.
    pub acknowledged_by: Option<String>,
    /// When, Unix seconds.
    pub acknowledged_at: Option<i64>,
    /// When it was closed, Unix seconds.
    pub closed_at: Option<i64>,
    /// Who closed it; `None` when it closed by itself.
    pub closed_by: Option<String>,
    /// Closed by a person: what came of it (处理结果); closed by itself: why (`visited`,
    /// `not_served`, ...).
    pub outcome: Option<String>,
    /// The child's name.
    pub name: String,
}

// Column names are both types and values: one list serves as the select's type and as the
// select itself.
macro_rules! alert_columns {
    () => {
        (
            (
                alerts::id,
                alerts::kind,
                alerts::child_id,
                alerts::village,
                alerts::subject,
                alerts::schedule_kind,
                alerts::due,
                alerts::record_date,
                alerts::danger_kind,
                alerts::status,
                alerts::raised_at,
                alerts::acknowledged_by,
                alerts::acknowledged_at,
                alerts::closed_at,
                alerts::closed_by,
                alerts::outcome,
            ),
            children::name,
        )
    };
}

const fn columns() -> alert_columns!() {
    alert_columns!()
}

type Flat = (
    (
        String,
        String,
        String,
        String,
        String,
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
        String,
        i64,
        Option<String>,
        Option<i64>,
        Option<i64>,
        Option<String>,
        Option<String>,
    ),
    String,
);

fn unflatten(
    (
        (
            id,
            kind,
            child_id,
            village,
            subject,
            schedule_kind,
            due,
            record_date,
            danger_kind,
            status,
            raised_at,
            acknowledged_by,
            acknowledged_at,
            closed_at,
            closed_by,
            outcome,
        ),
        name,
    ): Flat,
) -> AlertRow {
    AlertRow {
        id,
        kind,
        child_id,
        village,
        subject,
        schedule_kind,
        due,
        record_date,
        danger_kind,
        status,
        raised_at,
        acknowledged_by,
        acknowledged_at,
        closed_at,
        closed_by,
        outcome,
        name,
    }
}

/// An alert to raise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAlert {
    /// A fresh id.
    pub id: String,
    /// The kind.
    pub kind: &'static str,
    /// The child.
    pub child_id: String,
    /// Its village.
    pub village: String,
    /// What it is about (the unique key with child and kind).
    pub subject: String,
    /// For schedule alerts.
    pub schedule_kind: Option<String>,
    /// For schedule alerts.
    pub due: Option<String>,
    /// The record it is about.
    pub record_date: Option<String>,
    /// For danger alerts.
    pub danger_kind: Option<String>,
}

/// An alert not yet closed, as the reconciliation of schedules needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unclosed {
    /// The alert.
    pub id: String,
    /// Its kind.
    pub kind: String,
    /// The child.
    pub child_id: String,
    /// Its subject.
    pub subject: String,
    /// For schedule alerts.
    pub schedule_kind: Option<String>,
    /// The record it is about.
    pub record_date: Option<String>,
}

/// The alerts of `ids` that are not closed.
pub fn unclosed_of(conn: &mut DbConnection, ids: &[String]) -> QueryResult<Vec<Unclosed>> {
    let mut out = Vec::new();
    for chunk in ids.chunks(500) {
        type Row = (
            String,
            String,
            String,
            String,
            Option<String>,
            Option<String>,
        );
        let rows: Vec<Row> = alerts::table
            .filter(alerts::child_id.eq_any(chunk))
            .filter(alerts::status.ne("closed"))
            .select((
                alerts::id,
                alerts::kind,
                alerts::child_id,
                alerts::subject,
                alerts::schedule_kind,
                alerts::record_date,
            ))
            .load(conn)?;
        out.extend(rows.into_iter().map(
            |(id, kind, child_id, subject, schedule_kind, record_date)| Unclosed {
                id,
                kind,
                child_id,
                subject,
                schedule_kind,
                record_date,
            },
        ));
    }
    Ok(out)
}

/// The subjects of every alert of `kind` ever raised for `ids`, by child.
pub fn subjects_of(
    conn: &mut DbConnection,
    ids: &[String],
    kind: &str,
) -> QueryResult<BTreeMap<String, Vec<String>>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for chunk in ids.chunks(500) {
        let rows: Vec<(String, String)> = alerts::table
            .filter(alerts::child_id.eq_any(chunk))
            .filter(alerts::kind.eq(kind))
            .select((alerts::child_id, alerts::subject))
            .load(conn)?;
        for (child, subject) in rows {
            out.entry(child).or_default().push(subject);
        }
    }
    Ok(out)
}

/// A live danger record: child, record id, what was found, its date.
pub type DangerRecord = (String, String, Option<String>, String);

/// The live danger records of `ids`.
pub fn danger_records(conn: &mut DbConnection, ids: &[String]) -> QueryResult<Vec<DangerRecord>> {
    let mut out = Vec::new();
    for chunk in ids.chunks(500) {
        out.extend(
            child_records::table
                .filter(child_records::child_id.eq_any(chunk))
                .filter(child_records::danger.eq(true))
                .filter(child_records::voided.eq(false))
                .select((
                    child_records::child_id,
                    child_records::record_id,
                    child_records::danger_found,
                    child_records::date,
                ))
                .load::<DangerRecord>(conn)?,
        );
    }
    Ok(out)
}

/// Inserts the alerts that do not exist yet (by child, kind and subject) as open, raised at
/// `at`; returns the ids of those this call inserted. One raced in by another transaction is
/// left alone and not returned, so its raise is told once.
pub fn insert_new(conn: &mut DbConnection, rows: &[NewAlert], at: i64) -> QueryResult<Vec<String>> {
    let mut inserted = Vec::new();
    for chunk in rows.chunks(100) {
        let values: Vec<_> = chunk
            .iter()
            .map(|a| {
                (
                    alerts::id.eq(&a.id),
                    alerts::kind.eq(a.kind),
                    alerts::child_id.eq(&a.child_id),
                    alerts::village.eq(&a.village),
                    alerts::subject.eq(&a.subject),
                    alerts::schedule_kind.eq(&a.schedule_kind),
                    alerts::due.eq(&a.due),
                    alerts::record_date.eq(&a.record_date),
                    alerts::danger_kind.eq(&a.danger_kind),
                    alerts::status.eq("open"),
                    alerts::raised_at.eq(at),
                )
            })
            .collect();
        let insert = diesel::insert_into(alerts::table)
            .values(values)
            .on_conflict_do_nothing();
        let n = on_backend!(&mut *conn, |c| insert.execute(c))?;
        let ids: Vec<&str> = chunk.iter().map(|a| a.id.as_str()).collect();
        if n == chunk.len() {
            inserted.extend(ids.iter().map(|s| (*s).to_owned()));
        } else {
            // Fresh ids exist only if this statement wrote them.
            inserted.extend(
                alerts::table
                    .filter(alerts::id.eq_any(&ids))
                    .select(alerts::id)
                    .load::<String>(conn)?,
            );
        }
    }
    Ok(inserted)
}

/// Closes, as the system, those of `closing` (`(id, reason)`) not closed yet; returns the ids
/// this call closed.
pub fn close_by_system(
    conn: &mut DbConnection,
    closing: &[(String, &'static str)],
    at: i64,
) -> QueryResult<Vec<String>> {
    let mut by_reason: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (id, reason) in closing {
        by_reason.entry(reason).or_default().push(id);
    }
    let mut closed = Vec::new();
    for (reason, ids) in by_reason {
        for chunk in ids.chunks(500) {
            let open: Vec<String> = alerts::table
                .filter(alerts::id.eq_any(chunk))
                .filter(alerts::status.ne("closed"))
                .select(alerts::id)
                .load(conn)?;
            if open.is_empty() {
                continue;
            }
            // The status test is repeated in the update: only this transaction's closes count.
            let n = diesel::update(
                alerts::table
                    .filter(alerts::id.eq_any(&open))
                    .filter(alerts::status.ne("closed")),
            )
            .set((
                alerts::status.eq("closed"),
                alerts::closed_at.eq(at),
                alerts::outcome.eq(reason),
            ))
            .execute(conn)?;
            if n == open.len() {
                closed.extend(open);
            } else {
                let still: Vec<String> = alerts::table
                    .filter(alerts::id.eq_any(&open))
                    .filter(alerts::closed_at.eq(at))
                    .filter(alerts::closed_by.is_null())
                    .filter(alerts::outcome.eq(reason))
                    .select(alerts::id)
                    .load(conn)?;
                closed.extend(still);
            }
        }
    }
    Ok(closed)
}

/// One raise or change of an alert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// The alert.
    pub alert_id: String,
    /// `raised`, `acknowledged` or `closed`.
    pub action: &'static str,
    /// Who; `None` for the system.
    pub actor: Option<String>,
    /// A note, outcome or reason.
    pub note: Option<String>,
}

/// Appends events, numbered in the order given after every number issued so far, and returns
/// their numbers. Call it last in the transaction: the counter's row lock is held to commit,
/// which is what makes numbers visible in order.
pub fn append_events(
    conn: &mut DbConnection,
    events: &[NewEvent],
    at: i64,
) -> QueryResult<Vec<i64>> {
    if events.is_empty() {
        return Ok(Vec::new());
    }
    let n = events.len() as i64;
    diesel::update(alert_seq::table.filter(alert_seq::id.eq(1)))
        .set(alert_seq::value.eq(alert_seq::value + n))
        .execute(conn)?;
    let last: i64 = alert_seq::table
        .filter(alert_seq::id.eq(1))
        .select(alert_seq::value)
        .first(conn)?;
    let seqs: Vec<i64> = (last - n + 1..=last).collect();
    let rows: Vec<_> = events
        .iter()
        .zip(&seqs)
        .map(|(e, seq)| {
            (
                alert_events::seq.eq(*seq),
                alert_events::alert_id.eq(&e.alert_id),
                alert_events::action.eq(e.action),
                alert_events::at.eq(at),
                alert_events::actor.eq(&e.actor),
                alert_events::note.eq(&e.note),
            )
        })
        .collect();
    for chunk in rows.chunks(200) {
        let insert = diesel::insert_into(alert_events::table).values(chunk);
        on_backend!(&mut *conn, |c| insert.execute(c))?;
    }
    Ok(seqs)
}

/// The last event number issued.
pub fn last_seq(conn: &mut DbConnection) -> QueryResult<i64> {
    alert_seq::table
        .filter(alert_seq::id.eq(1))
        .select(alert_seq::value)
        .first(conn)
}

/// One alert, with its child's name.
pub fn get(conn: &mut DbConnection, id: &str) -> QueryResult<Option<AlertRow>> {
    alerts::table
        .inner_join(children::table)
        .filter(alerts::id.eq(id))
        .select(columns())
        .first::<Flat>(conn)
        .optional()
        .map(|r| r.map(unflatten))
}

/// One event of an alert's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventRow {
    /// Its number.
    pub seq: i64,
    /// `raised`, `acknowledged` or `closed`.
    pub action: String,
    /// When, Unix seconds.
    pub at: i64,
    /// Who; `None` for the system.
    pub actor: Option<String>,
    /// The note, outcome or reason.
    pub note: Option<String>,
}

/// The history of one alert, oldest first.
pub fn history(conn: &mut DbConnection, id: &str) -> QueryResult<Vec<EventRow>> {
    type Row = (i64, String, i64, Option<String>, Option<String>);
    let rows: Vec<Row> = alert_events::table
        .filter(alert_events::alert_id.eq(id))
        .order(alert_events::seq)
        .select((
            alert_events::seq,
            alert_events::action,
            alert_events::at,
            alert_events::actor,
            alert_events::note,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(seq, action, at, actor, note)| EventRow {
            seq,
            action,
            at,
            actor,
            note,
        })
        .collect())
}

/// What a reader may see: villages under its prefixes, alerts of its kinds.
#[derive(Debug, Clone, Copy)]
pub struct Visible<'a> {
    /// The reader's regions.
    pub scope: &'a Scope,
    /// The kinds its role is told of.
    pub kinds: &'a [&'a str],
}

/// What a page of alerts filters by.
#[derive(Debug, Clone, Default)]
pub struct AlertFilter<'a> {
    /// One kind.
    pub kind: Option<&'a str>,
    /// One status.
    pub status: Option<&'a str>,
    /// One child.
    pub child_id: Option<&'a str>,
    /// Only alerts raised before this `(raised_at, id)`: the cursor of the previous page.
    pub before: Option<(i64, &'a str)>,
}

type AlertCondition = Box<
    dyn BoxableExpression<
            diesel::helper_types::InnerJoinQuerySource<alerts::table, children::table>,
            super::connection::MultiBackend,
            SqlType = diesel::sql_types::Bool,
        >,
>;

fn visible_condition(visible: &Visible<'_>) -> AlertCondition {
    let any: AlertCondition = super::any_village!(alerts::village, visible.scope.prefixes());
    let kinds: Vec<String> = visible.kinds.iter().map(|k| (*k).to_owned()).collect();
    Box::new(any.and(alerts::kind.eq_any(kinds)))
}

/// The alerts a reader sees that match `filter`, newest first: how many in all (without the
/// cursor), and up to `limit` of them.
pub fn page(
    conn: &mut DbConnection,
    visible: &Visible<'_>,
    filter: &AlertFilter<'_>,
    limit: i64,
) -> QueryResult<(i64, Vec<AlertRow>)> {
    let condition = |with_cursor: bool| -> AlertCondition {
        let mut all = visible_condition(visible);
        if let Some(k) = filter.kind {
            all = Box::new(all.and(alerts::kind.eq(k.to_owned())));
        }
        if let Some(s) = filter.status {
            all = Box::new(all.and(alerts::status.eq(s.to_owned())));
        }
        if let Some(c) = filter.child_id {
            all = Box::new(all.and(alerts::child_id.eq(c.to_owned())));
        }
        if let (true, Some((at, id))) = (with_cursor, filter.before) {
            all = Box::new(
                all.and(
                    alerts::raised_at
                        .lt(at)
                        .or(alerts::raised_at.eq(at).and(alerts::id.lt(id.to_owned()))),
                ),
            );
        }
        all
    };
    let total = alerts::table
        .inner_join(children::table)
        .filter(condition(false))
        .count()
        .get_result::<i64>(conn)?;
    let rows = alerts::table
        .inner_join(children::table)
        .filter(condition(true))
        .order((alerts::raised_at.desc(), alerts::id.desc()))
        .limit(limit)
        .select(columns())
        .load::<Flat>(conn)?;
    Ok((total, rows.into_iter().map(unflatten).collect()))
}

/// The events after `after` of alerts the reader sees, oldest first, with each alert as it is
/// now.
pub fn events_after(
    conn: &mut DbConnection,
    visible: &Visible<'_>,
    after: i64,
    limit: i64,
) -> QueryResult<Vec<(i64, String, AlertRow)>> {
    let mut condition = visible_condition(visible);
    condition = Box::new(
        condition.and(
            alerts::id.eq_any(
                alert_events::table
                    .filter(alert_events::seq.gt(after))
                    .select(alert_events::alert_id),
            ),
        ),
    );
    // Two steps: the matching alerts, then their events in order.
    let rows: Vec<AlertRow> = alerts::table
        .inner_join(children::table)
        .filter(condition)
        .select(columns())
        .load::<Flat>(conn)?
        .into_iter()
        .map(unflatten)
        .collect();
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let by_id: BTreeMap<String, AlertRow> = rows.into_iter().map(|r| (r.id.clone(), r)).collect();
    let mut out = Vec::new();
    let ids: Vec<&String> = by_id.keys().collect();
    for chunk in ids.chunks(500) {
        let events: Vec<(i64, String, String)> = alert_events::table
            .filter(alert_events::seq.gt(after))
            .filter(alert_events::alert_id.eq_any(chunk))
            .order(alert_events::seq)
            .limit(limit)
            .select((
                alert_events::seq,
                alert_events::action,
                alert_events::alert_id,
            ))
            .load(conn)?;
        for (seq, action, id) in events {
            if let Some(row) = by_id.get(&id) {
                out.push((seq, action, row.clone()));
            }
        }
    }
    out.sort_by_key(|(seq, ..)| *seq);
    out.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    Ok(out)
}

/// Acknowledges an open alert (the note goes in its history); false if it was not open.
pub fn acknowledge(conn: &mut DbConnection, id: &str, by: &str, at: i64) -> QueryResult<bool> {
    let n = diesel::update(
        alerts::table
            .filter(alerts::id.eq(id))
            .filter(alerts::status.eq("open")),
    )
    .set((
        alerts::status.eq("acknowledged"),
        alerts::acknowledged_by.eq(by),
        alerts::acknowledged_at.eq(at),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

/// Closes an alert as a person, with the outcome; false if it was closed already.
pub fn close_by_person(
    conn: &mut DbConnection,
    id: &str,
    by: &str,
    outcome: &str,
    at: i64,
) -> QueryResult<bool> {
    let n = diesel::update(
        alerts::table
            .filter(alerts::id.eq(id))
            .filter(alerts::status.ne("closed")),
    )
    .set((
        alerts::status.eq("closed"),
        alerts::closed_at.eq(at),
        alerts::closed_by.eq(by),
        alerts::outcome.eq(outcome),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

/// One row of the outbox to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewDelivery {
    /// The delivery id (for generic receivers, the one they see).
    pub id: String,
    /// The webhook's name.
    pub webhook: String,
    /// The event it tells of.
    pub event_seq: i64,
    /// The alert.
    pub alert_id: String,
    /// The alert's kind.
    pub kind: String,
    /// The alert's village.
    pub village: String,
}

/// Writes outbox rows, due at once.
pub fn enqueue(conn: &mut DbConnection, rows: &[NewDelivery], at: i64) -> QueryResult<()> {
    let values: Vec<_> = rows
        .iter()
        .map(|d| {
            (
                deliveries::id.eq(&d.id),
                deliveries::webhook.eq(&d.webhook),
                deliveries::event_seq.eq(d.event_seq),
                deliveries::alert_id.eq(&d.alert_id),
                deliveries::kind.eq(&d.kind),
                deliveries::village.eq(&d.village),
                deliveries::created_at.eq(at),
                deliveries::next_at.eq(at),
            )
        })
        .collect();
    for chunk in values.chunks(100) {
        let insert = diesel::insert_into(deliveries::table).values(chunk);
        on_backend!(&mut *conn, |c| insert.execute(c))?;
    }
    Ok(())
}

/// One pending delivery: one message to one receiver, made of one or more outbox rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pending {
    /// The delivery id receivers see.
    pub id: String,
    /// The webhook's name.
    pub webhook: String,
    /// How many attempts were made before this one.
    pub attempts: i32,
    /// When the first row was written, Unix seconds.
    pub created_at: i64,
    /// The rows: `(event seq, alert id, kind, village)`.
    pub rows: Vec<(i64, String, String, String)>,
}

/// Gathers the undelivered rows of a digest webhook that are in no digest yet into one, named
/// `digest`; returns how many it took.
pub fn gather_digest(
    conn: &mut DbConnection,
    webhook: &str,
    digest: &str,
    most: i64,
) -> QueryResult<usize> {
    let ids: Vec<String> = deliveries::table
        .filter(deliveries::webhook.eq(webhook))
        .filter(deliveries::digest.is_null())
        .filter(deliveries::delivered_at.is_null())
        .filter(deliveries::failed_at.is_null())
        .order(deliveries::event_seq)
        .limit(most)
        .select(deliveries::id)
        .load(conn)?;
    if ids.is_empty() {
        return Ok(0);
    }
    diesel::update(
        deliveries::table
            .filter(deliveries::id.eq_any(&ids))
            .filter(deliveries::digest.is_null()),
    )
    .set(deliveries::digest.eq(digest))
    .execute(conn)
}

/// Takes up to `most` deliveries of `webhook` due at `now`, leasing them until `lease_until` so
/// that another instance does not send them meanwhile. A digest webhook's rows go by digest,
/// the others one by one (the row id is the delivery id). Run it in a write transaction.
pub fn claim(
    conn: &mut DbConnection,
    webhook: &str,
    digests: bool,
    now: i64,
    lease_until: i64,
    most: i64,
) -> QueryResult<Vec<Pending>> {
    let due = || {
        deliveries::table
            .filter(deliveries::webhook.eq(webhook.to_owned()))
            .filter(deliveries::delivered_at.is_null())
            .filter(deliveries::failed_at.is_null())
            .filter(deliveries::next_at.le(now))
    };
    let keys: Vec<String> = if digests {
        due()
            .filter(deliveries::digest.is_not_null())
            .select(deliveries::digest)
            .distinct()
            .limit(most)
            .load::<Option<String>>(conn)?
            .into_iter()
            .flatten()
            .collect()
    } else {
        due()
            .filter(deliveries::digest.is_null())
            .order(deliveries::next_at)
            .limit(most)
            .select(deliveries::id)
            .load(conn)?
    };
    let mut out = Vec::new();
    for key in keys {
        // The lease is taken only where the rows are still due: of two instances, one gets it.
        let n = diesel::update(
            deliveries::table
                .filter(of_delivery(&key))
                .filter(deliveries::next_at.le(now))
                .filter(deliveries::delivered_at.is_null())
                .filter(deliveries::failed_at.is_null()),
        )
        .set(deliveries::next_at.eq(lease_until))
        .execute(conn)?;
        if n == 0 {
            continue;
        }
        type Row = (i32, i64, i64, String, String, String);
        let rows: Vec<Row> = deliveries::table
            .filter(of_delivery(&key))
            .filter(deliveries::delivered_at.is_null())
            .order(deliveries::event_seq)
            .select((
                deliveries::attempts,
                deliveries::created_at,
                deliveries::event_seq,
                deliveries::alert_id,
                deliveries::kind,
                deliveries::village,
            ))
            .load(conn)?;
        out.push(Pending {
            id: key,
            webhook: webhook.to_owned(),
            attempts: rows.iter().map(|r| r.0).max().unwrap_or(0),
            created_at: rows.iter().map(|r| r.1).min().unwrap_or(now),
            rows: rows
                .into_iter()
                .map(|(_, _, seq, alert, kind, village)| (seq, alert, kind, village))
                .collect(),
        });
    }
    Ok(out)
}

type DeliveryCondition = Box<
    dyn BoxableExpression<
            deliveries::table,
            super::connection::MultiBackend,
            SqlType = diesel::sql_types::Bool,
        >,
>;

/// The rows of one delivery: the row of that id, or every row of that digest.
fn of_delivery(id: &str) -> DeliveryCondition {
    Box::new(
        deliveries::id
            .eq(id.to_owned())
            .or(deliveries::digest.eq(id.to_owned()).assume_not_null()),
    )
}

/// Notes a delivery (a row, or every row of a digest) as delivered.
pub fn delivered(conn: &mut DbConnection, id: &str, at: i64) -> QueryResult<()> {
    diesel::update(deliveries::table.filter(of_delivery(id)))
        .set((
            deliveries::delivered_at.eq(at),
            deliveries::attempts.eq(deliveries::attempts + 1),
            deliveries::last_error.eq(None::<String>),
        ))
        .execute(conn)?;
    Ok(())
}

/// Notes a failed attempt: tried again at `next_at`, or given up when `next_at` is `None`.
pub fn attempt_failed(
    conn: &mut DbConnection,
    id: &str,
    error: &str,
    next_at: Option<i64>,
    at: i64,
) -> QueryResult<()> {
    let target = deliveries::table.filter(of_delivery(id));
    match next_at {
        Some(next) => diesel::update(target)
            .set((
                deliveries::next_at.eq(next),
                deliveries::attempts.eq(deliveries::attempts + 1),
                deliveries::last_error.eq(error),
            ))
            .execute(conn)?,
        None => diesel::update(target)
            .set((
                deliveries::failed_at.eq(at),
                deliveries::attempts.eq(deliveries::attempts + 1),
                deliveries::last_error.eq(error),
            ))
            .execute(conn)?,
    };
    Ok(())
}

/// How many deliveries wait (undelivered, not given up), by webhook.
pub fn backlog(conn: &mut DbConnection) -> QueryResult<BTreeMap<String, i64>> {
    let rows: Vec<(String, i64)> = deliveries::table
        .filter(deliveries::delivered_at.is_null())
        .filter(deliveries::failed_at.is_null())
        .group_by(deliveries::webhook)
        .select((deliveries::webhook, diesel::dsl::count_star()))
        .load(conn)?;
    Ok(rows.into_iter().collect())
}

/// A danger alert as the report counts it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DangerFact {
    /// The child.
    pub child: String,
    /// The village.
    pub village: String,
    /// The danger record's date.
    pub dated: Option<chrono::NaiveDate>,
    /// When it was closed, as a local date.
    pub closed_on: Option<chrono::NaiveDate>,
}

/// The danger alerts of villages under `prefixes`, as the compliance report counts them.
pub fn danger_facts(
    conn: &mut DbConnection,
    prefixes: &[&str],
    zone: chrono_tz::Tz,
) -> QueryResult<Vec<DangerFact>> {
    let mut out = Vec::new();
    for (first, last) in super::village_bounds(prefixes.iter().copied()) {
        let rows: Vec<(String, String, Option<String>, Option<i64>)> = alerts::table
            .filter(alerts::kind.eq("danger"))
            .filter(alerts::village.between(first, last))
            .select((
                alerts::child_id,
                alerts::village,
                alerts::record_date,
                alerts::closed_at,
            ))
            .load(conn)?;
        out.extend(
            rows.into_iter()
                .map(|(child, village, dated, closed_at)| DangerFact {
                    child,
                    village,
                    dated: dated.and_then(|d| d.parse().ok()),
                    closed_on: closed_at.and_then(|t| {
                        chrono::DateTime::from_timestamp(t, 0)
                            .map(|t| t.with_timezone(&zone).date_naive())
                    }),
                }),
        );
    }
    Ok(out)
}
