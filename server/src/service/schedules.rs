//! Schedules kept in the database: every served child's schedules (per kind: last, due,
//! status, days overdue), its worst status and the categories and risk flags in force, as of a
//! date. sync-core's rules engine is the only implementation of the rules: this module runs
//! it and stores what it says.
//!
//! * A sync re-evaluates the children it touched, in the same transaction ([`refresh`]).
//! * The job re-evaluates everyone when the date has moved on or the rules changed
//!   ([`evaluate_all_if_due`]), so a child becomes overdue with no sync at all. It runs at
//!   start, then every hour and at local midnight; on PostgreSQL it takes an advisory lock, so
//!   of many instances one runs it.

use chrono::NaiveDate;
use homevisit_sync_core::file::FileSummary;
use homevisit_sync_core::photo::sha256_hex;
use homevisit_sync_core::rules::{self, RuleSet, Schedule, Status};

use crate::service::alerts::{self, Changed, Policy};
use crate::store::children::summaries;
use crate::store::schedules::{self as rows, EvaluatedRow, ScheduleRow};
use crate::store::{DbConnection, write_transaction};

/// Children evaluated per transaction by the job.
pub const BATCH: i64 = 2000;

/// The advisory lock the job holds on PostgreSQL (an arbitrary, fixed key).
pub const JOB_LOCK: i64 = 0x686f_6d65_7669_7369;

/// A child's evaluation on a date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluated {
    /// The worst schedule status, or `not_served`.
    pub status: &'static str,
    /// Its schedules.
    pub schedules: Vec<Schedule>,
    /// Categories in force.
    pub categories: Vec<String>,
    /// Risk flags in force.
    pub risk_flags: Vec<String>,
}

/// The worst of several statuses.
pub fn worst(statuses: impl Iterator<Item = Status>) -> Status {
    let rank = |s: Status| match s {
        Status::Ok => 0,
        Status::DueSoon => 1,
        Status::Overdue => 2,
    };
    statuses.max_by_key(|s| rank(*s)).unwrap_or(Status::Ok)
}

/// Runs the rules engine for one child on `on`.
pub fn evaluate(summary: &FileSummary, rules: &RuleSet, on: NaiveDate) -> Evaluated {
    let case = homevisit_sync_core::device::case_of(summary, on);
    let evaluation = rules::evaluate(rules, &case, on);
    let status = if evaluation.served {
        worst(evaluation.schedules.iter().map(|s| s.status)).key()
    } else {
        "not_served"
    };
    Evaluated {
        status,
        schedules: evaluation.schedules,
        categories: case.categories,
        risk_flags: case.risk_flags,
    }
}

fn row_of(summary: &FileSummary, e: Evaluated) -> EvaluatedRow {
    EvaluatedRow {
        child: summary.id.to_string(),
        village: summary.village_code.clone(),
        status: e.status,
        schedules: e
            .schedules
            .into_iter()
            .map(|s| ScheduleRow {
                kind: s.kind,
                every: s.every.to_string(),
                last: s.last.map(|d| d.to_string()),
                due: s.due.to_string(),
                status: s.status.key().to_owned(),
                days_overdue: i32::try_from(s.days_overdue).unwrap_or(i32::MAX),
            })
            .collect(),
        labels: e
            .categories
            .into_iter()
            .map(|c| ("category", c))
            .chain(e.risk_flags.into_iter().map(|f| ("risk_flag", f)))
            .collect(),
    }
}

/// What evaluating schedules runs with.
#[derive(Debug, Clone, Copy)]
pub struct Evaluation<'a> {
    /// The rules.
    pub rules: &'a RuleSet,
    /// The date evaluated for.
    pub on: NaiveDate,
    /// How alerts are raised from what the rules say.
    pub alerts: &'a Policy,
    /// Now, Unix seconds: when alerts are raised and closed.
    pub now: i64,
}

/// Evaluates the children these digests describe and stores what the rules say, raising and
/// closing their alerts to match. Run it inside the transaction that changed them.
pub fn refresh(
    conn: &mut DbConnection,
    children: &[FileSummary],
    e: &Evaluation<'_>,
) -> diesel::QueryResult<Changed> {
    let rows: Vec<EvaluatedRow> = children
        .iter()
        .map(|summary| row_of(summary, evaluate(summary, e.rules, e.on)))
        .collect();
    rows::replace(conn, &rows, e.on)?;
    alerts::reconcile(conn, &rows, e.alerts, e.now)
}

/// [`refresh`] for the children `ids`, read from their projection.
pub fn refresh_ids(
    conn: &mut DbConnection,
    ids: &[String],
    e: &Evaluation<'_>,
) -> diesel::QueryResult<Changed> {
    let children = summaries(conn, ids)?;
    refresh(conn, &children, e)
}

/// A digest of the rules, stored with the last full evaluation: different rules mean everyone
/// is evaluated again.
pub fn fingerprint(rules: &RuleSet, alerts: &Policy) -> String {
    // Alerts are raised in the same pass: a new escalation threshold, or a release that adds
    // alerts (the leading version), is a reason to run again too.
    sha256_hex(format!("alerts-1 {} {rules:?}", alerts.escalate_after_days).as_bytes())
}

/// What a run of the job did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Run {
    /// Everyone was evaluated, this many children.
    Evaluated(usize),
    /// Everyone was evaluated for this date under these rules already.
    UpToDate,
    /// Another instance holds the job (PostgreSQL).
    Busy,
}

/// Evaluates everyone on `on` unless that was done already under the same rules.
pub fn evaluate_all_if_due(
    conn: &mut DbConnection,
    e: &Evaluation<'_>,
) -> diesel::QueryResult<Run> {
    let (on, print) = (e.on, fingerprint(e.rules, e.alerts));
    let due = |conn: &mut DbConnection| -> diesel::QueryResult<bool> {
        Ok(rows::last_evaluation(conn)?
            .is_none_or(|(day, rules)| day != on.to_string() || rules != print))
    };
    if !due(conn)? {
        return Ok(Run::UpToDate);
    }
    if !crate::store::try_job_lock(conn, JOB_LOCK)? {
        return Ok(Run::Busy);
    }
    let outcome = (|| {
        // Another instance may have finished while this one waited for the lock.
        if !due(conn)? {
            return Ok(Run::UpToDate);
        }
        let count = crate::store::with_fresh_plans(conn, |conn| {
            let mut after = String::new();
            let mut count = 0;
            loop {
                let ids = rows::ids_after(conn, &after, BATCH)?;
                let Some(last) = ids.last().cloned() else {
                    break;
                };
                let changed = write_transaction(conn, |c| refresh_ids(c, &ids, e))?;
                if changed.any() {
                    e.alerts.bus.wake();
                }
                count += ids.len();
                after = last;
            }
            Ok::<_, diesel::result::Error>(count)
        })?;
        write_transaction(conn, |c| rows::set_last_evaluation(c, on, &print))?;
        crate::store::analyze(
            conn,
            &[
                "children",
                "schedules",
                "child_labels",
                "alerts",
                "alert_events",
            ],
        )?;
        Ok(Run::Evaluated(count))
    })();
    crate::store::release_job_lock(conn, JOB_LOCK)?;
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worst_status_wins_and_none_is_ok() {
        use Status::*;
        assert_eq!(worst([Ok, Overdue, DueSoon].into_iter()), Overdue);
        assert_eq!(worst([Ok, DueSoon].into_iter()), DueSoon);
        assert_eq!(worst(std::iter::empty()), Ok);
    }
}
