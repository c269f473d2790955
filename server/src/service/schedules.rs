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
//! * The job reads each child's rules digest (sync-core's `FileSummary::rules_digest`, kept
//!   with the projection), not its records, and writes only the children whose evaluation
//!   hashes differently from the stored one: on a new day, those whose status moved.

use chrono::NaiveDate;
use homevisit_sync_core::file::{ChildId, FileSummary, summary_from_digest};
use homevisit_sync_core::photo::sha256_hex;
use homevisit_sync_core::rules::{self, RuleSet, Schedule, Status};

use crate::service::alerts::{self, Changed, Policy};
use crate::store::children::summaries;
use crate::store::schedules::{self as rows, EvaluatedRow, ScheduleRow};
use crate::store::{DbConnection, write_transaction};

/// Children the job reads at a time (and writes, of those that changed, in one transaction).
pub const BATCH: i64 = 20_000;

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
    /// The guardianship level in force, or [`UNASSESSED`].
    pub guardianship: &'static str,
}

/// The guardianship label of a child with no level yet, so a county can list whom to assess.
pub const UNASSESSED: &str = "unassessed";

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
        guardianship: case.guardianship.map_or(UNASSESSED, |g| g.key()),
    }
}

fn row_of(summary: &FileSummary, e: Evaluated, policy: &Policy) -> EvaluatedRow {
    let mut row = EvaluatedRow {
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
            .chain([("guardianship", e.guardianship.to_owned())])
            .collect(),
        hash: 0,
        labels_hash: 0,
        keep_labels: false,
    };
    row.hash = evaluation_hash(&row, policy);
    row.labels_hash = hash_of(&labels_text(&row));
    row
}

fn labels_text(row: &EvaluatedRow) -> String {
    use std::fmt::Write;
    let mut text = String::new();
    for (label, value) in &row.labels {
        let _ = write!(text, "{label}={value};");
    }
    text
}

fn hash_of(text: &str) -> i64 {
    let digest = <sha2::Sha256 as sha2::Digest>::digest(text.as_bytes());
    let mut head = [0u8; 8];
    head.copy_from_slice(&digest[..8]);
    i64::from_le_bytes(head)
}

/// A hash of what a child's stored evaluation says and the alerts it calls for: its village,
/// status, labels and schedules, and whether each overdue schedule is past the escalation
/// threshold. Days overdue are left out (they grow every day; readers count them to today), so
/// the hash changes only when something stored or an alert must change.
fn evaluation_hash(row: &EvaluatedRow, policy: &Policy) -> i64 {
    use std::fmt::Write;
    let threshold = i32::try_from(policy.escalate_after_days).unwrap_or(i32::MAX);
    let mut text = format!("v1|{}|{}|{}", row.village, row.status, labels_text(row));
    for s in &row.schedules {
        let escalated = s.status == "overdue" && s.days_overdue >= threshold;
        let _ = write!(
            text,
            "|{},{},{:?},{},{},{escalated}",
            s.kind, s.every, s.last, s.due, s.status
        );
    }
    hash_of(&text)
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
        .map(|summary| row_of(summary, evaluate(summary, e.rules, e.on), e.alerts))
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

/// What the job concluded of one batch before writing it: the children whose evaluation
/// changed, with the sequence number they were read at, and those it must read whole (no
/// digest yet, or a record dated after the day), with theirs and whether a digest is missing.
struct Verdicts {
    changed: Vec<(EvaluatedRow, i64)>,
    whole: Vec<(String, i64, bool)>,
}

/// Evaluates a batch from its digests. It touches no database, so it runs beside the reads
/// and writes of the batches around it.
fn judge(batch: Vec<rows::DigestRow>, e: &Evaluation<'_>) -> Verdicts {
    let mut verdicts = Verdicts {
        changed: Vec::new(),
        whole: Vec::new(),
    };
    for b in batch {
        let summary = b
            .digest
            .as_deref()
            .zip(uuid::Uuid::parse_str(&b.id).ok())
            .and_then(|(digest, id)| {
                summary_from_digest(ChildId(id), String::new(), b.village.clone(), digest, e.on)
            });
        match summary {
            Some(summary) => {
                let mut row = row_of(&summary, evaluate(&summary, e.rules, e.on), e.alerts);
                if b.hash != Some(row.hash) {
                    row.keep_labels = b.labels_hash == Some(row.labels_hash);
                    verdicts.changed.push((row, b.seq));
                }
            }
            None => verdicts.whole.push((b.id, b.seq, b.digest.is_none())),
        }
    }
    verdicts
}

/// Writes what [`judge`] concluded, in one transaction: only children no sync has merged into
/// since they were read. Returns how many children were written.
fn write_verdicts(
    conn: &mut DbConnection,
    verdicts: Verdicts,
    e: &Evaluation<'_>,
) -> diesel::QueryResult<usize> {
    let Verdicts { changed, whole } = verdicts;
    if changed.is_empty() && whole.is_empty() {
        return Ok(0);
    }
    let (written, alerted) = write_transaction(conn, |c| {
        let mut ids: Vec<&str> = changed
            .iter()
            .map(|(r, _)| r.child.as_str())
            .chain(whole.iter().map(|w| w.0.as_str()))
            .collect();
        ids.sort_unstable();
        let now = rows::lock_seqs(c, &ids)?;
        // A child a sync merged into since it was read was evaluated by that sync.
        let unmoved = |id: &str, seq: i64| now.get(id) == Some(&seq);
        let mut write: Vec<EvaluatedRow> = changed
            .into_iter()
            .filter(|(r, seq)| unmoved(&r.child, *seq))
            .map(|(r, _)| r)
            .collect();
        let whole_ids: Vec<String> = whole
            .iter()
            .filter(|(id, seq, _)| unmoved(id, *seq))
            .map(|(id, ..)| id.clone())
            .collect();
        let summaries = summaries(c, &whole_ids)?;
        let without: std::collections::BTreeSet<&str> = whole
            .iter()
            .filter(|(.., missing)| *missing)
            .map(|(id, ..)| id.as_str())
            .collect();
        let digests: Vec<(String, Vec<u8>)> = summaries
            .iter()
            .map(|s| (s.id.to_string(), s))
            .filter(|(id, _)| without.contains(id.as_str()))
            .map(|(id, s)| (id, s.rules_digest()))
            .collect();
        rows::set_digests(c, &digests)?;
        write.extend(
            summaries
                .iter()
                .map(|s| row_of(s, evaluate(s, e.rules, e.on), e.alerts)),
        );
        rows::replace(c, &write, e.on)?;
        let alerted = alerts::reconcile(c, &write, e.alerts, e.now)?;
        Ok::<_, diesel::result::Error>((write.len(), alerted))
    })?;
    if alerted.any() {
        e.alerts.bus.wake();
    }
    Ok(written)
}

/// Walks everyone in batches: each batch is read, then judged on a second thread while the
/// next is read and the one before is written, so the rules engine's work hides behind the
/// database's. Returns how many children were evaluated, and how many written.
fn evaluate_everyone(
    conn: &mut DbConnection,
    e: &Evaluation<'_>,
) -> diesel::QueryResult<(usize, usize)> {
    std::thread::scope(|scope| {
        let (to_judge, judging) = std::sync::mpsc::sync_channel::<Vec<rows::DigestRow>>(1);
        let (to_write, judged) = std::sync::mpsc::sync_channel::<Verdicts>(1);
        scope.spawn(move || {
            for batch in judging {
                if to_write.send(judge(batch, e)).is_err() {
                    break;
                }
            }
        });
        let (mut count, mut written, mut pending) = (0, 0, 0);
        let mut after = String::new();
        loop {
            let batch = rows::digests_after(conn, &after, BATCH)?;
            let done = match batch.last() {
                Some(last) => {
                    after = last.id.clone();
                    count += batch.len();
                    if to_judge.send(batch).is_err() {
                        // The judge is gone: it panicked, and the scope says so on return.
                        break;
                    }
                    pending += 1;
                    false
                }
                None => true,
            };
            while pending > usize::from(!done) {
                let Ok(verdicts) = judged.recv() else { break };
                pending -= 1;
                written += write_verdicts(conn, verdicts, e)?;
            }
            if done {
                break;
            }
        }
        Ok((count, written))
    })
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
        let (count, changed) =
            crate::store::with_fresh_plans(conn, |conn| evaluate_everyone(conn, e))?;
        write_transaction(conn, |c| rows::set_last_evaluation(c, on, &print))?;
        // The planner's statistics follow the data when much of it changed (the first run, new
        // rules); a day that moved a few statuses leaves them standing.
        if changed * 10 > count {
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
        }
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
