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
    /// A hash of all of the above but the days overdue: the job compares it with the stored
    /// one and leaves alone a child whose evaluation did not change.
    pub hash: i64,
    /// A hash of the labels alone.
    pub labels_hash: i64,
    /// The stored labels are these already (the job knows from `labels_hash`): they are not
    /// rewritten.
    pub keep_labels: bool,
}

/// Replaces the evaluation of each child in `rows` with what `rows` says, as of `on`.
pub fn replace(conn: &mut DbConnection, rows: &[EvaluatedRow], on: NaiveDate) -> QueryResult<()> {
    let on = on.to_string();
    // Batches stay under SQLite's bound-parameter limit.
    for batch in rows.chunks(1000) {
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
        let relabelled: Vec<&str> = batch
            .iter()
            .filter(|r| !r.keep_labels)
            .map(|r| r.child.as_str())
            .collect();
        diesel::delete(child_labels::table.filter(child_labels::child_id.eq_any(&relabelled)))
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
        for chunk in schedule_rows.chunks(1000) {
            let insert = diesel::insert_into(schedules::table).values(chunk);
            on_backend!(&mut *conn, |c| insert.execute(c))?;
        }
        let label_rows: Vec<_> = batch
            .iter()
            .filter(|r| !r.keep_labels)
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
        for chunk in label_rows.chunks(2000) {
            let insert = diesel::insert_into(child_labels::table).values(chunk);
            on_backend!(&mut *conn, |c| insert.execute(c))?;
        }
        set_evaluated(conn, batch, &on)?;
    }
    Ok(())
}

/// Each child's worst status and evaluation hashes, as evaluated on `on`: one statement per
/// thousand children (the hashes differ, so they cannot be grouped like the statuses).
fn set_evaluated(conn: &mut DbConnection, rows: &[EvaluatedRow], on: &str) -> QueryResult<()> {
    use diesel::sql_types::{BigInt, Text};
    const SET: &str = "status = v.column2, evaluation_hash = v.column3, \
                       labels_hash = v.column4, evaluated_on = {0}";
    for chunk in rows.chunks(1000) {
        let sql = |pg| super::update_from_values("children", SET, 1, 4, chunk.len(), pg);
        bound_update!(conn, sql, |q| {
            let mut q = q.bind::<Text, _>(on);
            for r in chunk {
                q = q
                    .bind::<Text, _>(&r.child)
                    .bind::<Text, _>(r.status)
                    .bind::<BigInt, _>(r.hash)
                    .bind::<BigInt, _>(r.labels_hash);
            }
            q
        });
    }
    Ok(())
}

/// Stores the rules digests of children whose projection was written before digests were
/// kept: one statement per few hundred.
pub fn set_digests(conn: &mut DbConnection, digests: &[(String, Vec<u8>)]) -> QueryResult<()> {
    use diesel::sql_types::{Binary, Text};
    const SET: &str = "rules_digest = v.column2";
    for chunk in digests.chunks(300) {
        let sql = |pg| super::update_from_values("children", SET, 0, 2, chunk.len(), pg);
        bound_update!(conn, sql, |q| {
            let mut q = q;
            for (id, digest) in chunk {
                q = q.bind::<Text, _>(id).bind::<Binary, _>(digest);
            }
            q
        });
    }
    Ok(())
}

/// What the job reads of a child: enough to evaluate it without its records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DigestRow {
    /// The child.
    pub id: String,
    /// Its village.
    pub village: String,
    /// Its sequence number: a sync that merges into the file changes it.
    pub seq: i64,
    /// Its rules digest, unless the projection predates them.
    pub digest: Option<Vec<u8>>,
    /// The hash of its stored evaluation, if any.
    pub hash: Option<i64>,
    /// The hash of its stored labels, if any.
    pub labels_hash: Option<i64>,
}

/// Up to `limit` children after `after`, in id order, with their digests.
pub fn digests_after(
    conn: &mut DbConnection,
    after: &str,
    limit: i64,
) -> QueryResult<Vec<DigestRow>> {
    type Row = (
        String,
        String,
        i64,
        Option<Vec<u8>>,
        Option<i64>,
        Option<i64>,
    );
    let rows: Vec<Row> = children::table
        .filter(children::id.gt(after))
        .order(children::id)
        .select((
            children::id,
            children::village,
            children::seq,
            children::rules_digest,
            children::evaluation_hash,
            children::labels_hash,
        ))
        .limit(limit)
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(id, village, seq, digest, hash, labels_hash)| DigestRow {
            id,
            village,
            seq,
            digest,
            hash,
            labels_hash,
        })
        .collect())
}

/// The sequence numbers of `ids` as they stand, their rows locked until commit on PostgreSQL
/// (in id order, as every writer locks them), so no sync merges into them meanwhile.
pub fn lock_seqs(conn: &mut DbConnection, ids: &[&str]) -> QueryResult<BTreeMap<String, i64>> {
    let mut out = BTreeMap::new();
    for chunk in ids.chunks(1000) {
        let query = children::table
            .filter(children::id.eq_any(chunk))
            .order(children::id)
            .select((children::id, children::seq));
        let rows: Vec<(String, i64)> = match &mut *conn {
            DbConnection::Postgresql(c) => query.for_update().load(c)?,
            DbConnection::Sqlite(c) => query.load(c)?,
        };
        out.extend(rows);
    }
    Ok(out)
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

/// The values of `labels` (`category`, `risk_flag`, `guardianship`) in force for `ids`, by
/// child and label, in one query per 500 children.
pub fn labels_of(
    conn: &mut DbConnection,
    ids: &[String],
    labels: &[&str],
) -> QueryResult<BTreeMap<(String, String), Vec<String>>> {
    let mut out: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for chunk in ids.chunks(500) {
        let rows: Vec<(String, String, String)> = child_labels::table
            .filter(child_labels::child_id.eq_any(chunk))
            .filter(child_labels::label.eq_any(labels))
            .order((child_labels::child_id, child_labels::value))
            .select((
                child_labels::child_id,
                child_labels::label,
                child_labels::value,
            ))
            .load(conn)?;
        for (child, label, value) in rows {
            out.entry((child, label)).or_default().push(value);
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
