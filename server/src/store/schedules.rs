//! The rows of evaluated schedules: per child and kind, the labels in force, the child's worst
//! status, and when everyone was last evaluated. (`service::schedules` decides what they hold.)

use chrono::NaiveDate;
use diesel::prelude::*;
use std::collections::BTreeMap;

use super::DbConnection;
use super::schema::{child_labels, children, evaluations, schedules};

/// One schedule row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleRow {
    /// The record kind.
    pub kind: String,
    /// The interval, as rule files write it (`1 month`).
    pub every: String,
    /// The latest qualifying record, `YYYY-MM-DD`.
    pub last: Option<String>,
    /// When it is due, `YYYY-MM-DD`.
    pub due: String,
    /// `ok`, `due_soon` or `overdue`.
    pub status: String,
    /// Days past due, when overdue.
    pub days_overdue: i32,
}

/// What one child's evaluation writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvaluatedRow {
    /// The child.
    pub child: String,
    /// Its village.
    pub village: String,
    /// The worst schedule status, or `not_served`.
    pub status: &'static str,
    /// Its schedules.
    pub schedules: Vec<ScheduleRow>,
    /// `(label, value)`: `category` and `risk_flag` values in force.
    pub labels: Vec<(&'static str, String)>,
}

/// Replaces the evaluation of each child in `rows` with what `rows` says, as of `on`.
pub fn replace(conn: &mut DbConnection, rows: &[EvaluatedRow], on: NaiveDate) -> QueryResult<()> {
    let on = on.to_string();
    // Batches stay under SQLite's bound-parameter limit.
    for batch in rows.chunks(100) {
        let ids: Vec<&str> = batch.iter().map(|r| r.child.as_str()).collect();
        // On PostgreSQL, two evaluations of one child (the job and a sync) would each delete the
        // rows they see and insert their own, and the second insert would collide with the
        // first's: the children's rows are locked first, in id order, so the second waits and
        // then sees what the first wrote.
        if let DbConnection::Postgresql(c) = &mut *conn {
            children::table
                .filter(children::id.eq_any(&ids))
                .order(children::id)
                .select(children::id)
                .for_update()
                .load::<String>(c)?;
        }
        diesel::delete(schedules::table.filter(schedules::child_id.eq_any(&ids))).execute(conn)?;
        diesel::delete(child_labels::table.filter(child_labels::child_id.eq_any(&ids)))
            .execute(conn)?;
        let schedule_rows: Vec<_> = batch
            .iter()
            .flat_map(|r| {
                r.schedules.iter().map(|s| {
                    (
                        schedules::child_id.eq(r.child.clone()),
                        schedules::kind.eq(s.kind.clone()),
                        schedules::every.eq(s.every.clone()),
                        schedules::last_date.eq(s.last.clone()),
                        schedules::due.eq(s.due.clone()),
                        schedules::status.eq(s.status.clone()),
                        schedules::days_overdue.eq(s.days_overdue),
                    )
                })
            })
            .collect();
        for chunk in schedule_rows.chunks(100) {
            let insert = diesel::insert_into(schedules::table).values(chunk);
            on_backend!(&mut *conn, |c| insert.execute(c))?;
        }
        let label_rows: Vec<_> = batch
            .iter()
            .flat_map(|r| {
                r.labels.iter().map(|(label, value)| {
                    (
                        child_labels::child_id.eq(r.child.clone()),
                        child_labels::label.eq(*label),
                        child_labels::value.eq(value.clone()),
                    )
                })
            })
            .collect();
        for chunk in label_rows.chunks(200) {
            let insert = diesel::insert_into(child_labels::table).values(chunk);
            on_backend!(&mut *conn, |c| insert.execute(c))?;
        }
        // One statement per status, not per child.
        let mut by_status: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        for r in batch {
            by_status.entry(r.status).or_default().push(&r.child);
        }
        for (status, ids) in by_status {
            diesel::update(children::table.filter(children::id.eq_any(ids)))
                .set((children::status.eq(status), children::evaluated_on.eq(&on)))
                .execute(conn)?;
        }
    }
    Ok(())
}

/// The schedules of `ids`, by child, in kind order.
pub fn of(
    conn: &mut DbConnection,
    ids: &[String],
) -> QueryResult<BTreeMap<String, Vec<ScheduleRow>>> {
    let mut out: BTreeMap<String, Vec<ScheduleRow>> = BTreeMap::new();
    for chunk in ids.chunks(500) {
        type Row = (String, String, String, Option<String>, String, String, i32);
        let rows: Vec<Row> = schedules::table
            .filter(schedules::child_id.eq_any(chunk))
            .order((schedules::child_id, schedules::kind))
            .select((
                schedules::child_id,
                schedules::kind,
                schedules::every,
                schedules::last_date,
                schedules::due,
                schedules::status,
                schedules::days_overdue,
            ))
            .load(conn)?;
        for (child, kind, every, last, due, status, days_overdue) in rows {
            out.entry(child).or_default().push(ScheduleRow {
                kind,
                every,
                last,
                due,
                status,
                days_overdue,
            });
        }
    }
    Ok(out)
}

/// The values of one label (`category`, `risk_flag`) in force for `ids`, by child.
pub fn labels_of(
    conn: &mut DbConnection,
    ids: &[String],
    label: &str,
) -> QueryResult<BTreeMap<String, Vec<String>>> {
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for chunk in ids.chunks(500) {
        let rows: Vec<(String, String)> = child_labels::table
            .filter(child_labels::child_id.eq_any(chunk))
            .filter(child_labels::label.eq(label))
            .order((child_labels::child_id, child_labels::value))
            .select((child_labels::child_id, child_labels::value))
            .load(conn)?;
        for (child, value) in rows {
            out.entry(child).or_default().push(value);
        }
    }
    Ok(out)
}

/// When everyone was last evaluated, and under which rules.
pub fn last_evaluation(conn: &mut DbConnection) -> QueryResult<Option<(String, String)>> {
    evaluations::table
        .filter(evaluations::id.eq(1))
        .select((evaluations::evaluated_on, evaluations::rules))
        .first(conn)
        .optional()
}

/// Notes that everyone was evaluated on `on` under `rules`.
pub fn set_last_evaluation(conn: &mut DbConnection, on: NaiveDate, rules: &str) -> QueryResult<()> {
    let on = on.to_string();
    let updated = diesel::update(evaluations::table.filter(evaluations::id.eq(1)))
        .set((
            evaluations::evaluated_on.eq(&on),
            evaluations::rules.eq(rules),
        ))
        .execute(conn)?;
    if updated == 0 {
        diesel::insert_into(evaluations::table)
            .values((
                evaluations::id.eq(1),
                evaluations::evaluated_on.eq(&on),
                evaluations::rules.eq(rules),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// Up to `limit` child ids after `after`, in id order: the job walks everyone in batches.
pub fn ids_after(conn: &mut DbConnection, after: &str, limit: i64) -> QueryResult<Vec<String>> {
    children::table
        .filter(children::id.gt(after))
        .order(children::id)
        .select(children::id)
        .limit(limit)
        .load(conn)
}
