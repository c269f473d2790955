//! Schedules kept in the database: the job that re-evaluates everyone, alone and racing.

use chrono::NaiveDate;
use diesel::prelude::*;
use homevisit_server::demo::{Size, ensure_sized};
use homevisit_server::service::alerts::Policy;
use homevisit_server::service::schedules::{Evaluation, JOB_LOCK, Run, evaluate_all_if_due};
use homevisit_server::store::{DatabaseUrl, DbPool, open};
use homevisit_sync_core::rules::RuleSet;

use crate::pg::TestDatabase;

const SMALL: Size = Size {
    townships: 1,
    villages: 2,
    children: 10,
};

/// The job as an instance runs it on `on`, with the default alert policy.
pub fn job(
    conn: &mut homevisit_server::store::DbConnection,
    rules: &RuleSet,
    on: NaiveDate,
) -> diesel::QueryResult<Run> {
    let policy = Policy {
        escalate_after_days: 14,
        ..Policy::default()
    };
    let now = on
        .and_hms_opt(12, 0, 0)
        .expect("noon")
        .and_utc()
        .timestamp();
    evaluate_all_if_due(
        conn,
        &Evaluation {
            rules,
            on,
            alerts: &policy,
            now,
        },
    )
}

fn date(s: &str) -> NaiveDate {
    s.parse().expect("date")
}

/// A small demo county, built as of `built`.
fn county(pool: &DbPool, dir: &tempfile::TempDir, built: NaiveDate) {
    let mut conn = pool.get().expect("conn");
    ensure_sized(&mut conn, dir.path(), built, SMALL).expect("demo");
}

fn statuses(pool: &DbPool) -> Vec<(String, i64)> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        status: String,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let mut conn = pool.get().expect("conn");
    let rows: Vec<Row> = diesel::sql_query(
        "SELECT status, COUNT(*) AS n FROM children GROUP BY status ORDER BY status",
    )
    .load(&mut *conn)
    .expect("statuses");
    rows.into_iter().map(|r| (r.status, r.n)).collect()
}

fn the_job_evaluates_once_a_day_and_again_for_new_rules(pool: &DbPool) {
    let dir = tempfile::tempdir().expect("dir");
    county(pool, &dir, date("2026-11-27"));
    let tiedong = RuleSet::preset("tiedong").expect("rules");
    let mut conn = pool.get().expect("conn");
    let on = date("2026-11-27");
    assert_eq!(
        job(&mut conn, &tiedong, on).expect("run"),
        Run::Evaluated(20)
    );
    assert_eq!(job(&mut conn, &tiedong, on).expect("run"), Run::UpToDate);
    let today = statuses(pool);
    assert!(today.iter().any(|(s, _)| s == "ok"), "{today:?}");
    // A year on, with no sync at all, everyone served is overdue.
    let later = date("2027-11-27");
    assert_eq!(
        job(&mut conn, &tiedong, later).expect("run"),
        Run::Evaluated(20)
    );
    let later_statuses = statuses(pool);
    assert!(
        later_statuses
            .iter()
            .all(|(s, _)| s == "overdue" || s == "not_served")
            && later_statuses.iter().any(|(s, _)| s == "overdue"),
        "{later_statuses:?}"
    );
    // Other rules on the same day: evaluated again.
    let chongqing = RuleSet::preset("chongqing").expect("rules");
    assert_eq!(
        job(&mut conn, &chongqing, later).expect("run"),
        Run::Evaluated(20)
    );
}

#[test]
fn the_job_evaluates_once_a_day_and_again_for_new_rules_on_sqlite() {
    let dir = tempfile::tempdir().expect("dir");
    let url =
        DatabaseUrl::parse(&format!("sqlite://{}", dir.path().join("db").display())).expect("url");
    the_job_evaluates_once_a_day_and_again_for_new_rules(&open(&url, 2).expect("open"));
}

#[test]
fn the_job_evaluates_once_a_day_and_again_for_new_rules_on_postgres() {
    let db = TestDatabase::create();
    let pool = open(&DatabaseUrl::parse(&db.url).expect("url"), 2).expect("open");
    the_job_evaluates_once_a_day_and_again_for_new_rules(&pool);
}

#[test]
fn of_many_racing_instances_one_evaluates_on_postgres() {
    let db = TestDatabase::create();
    let pool = open(&DatabaseUrl::parse(&db.url).expect("url"), 8).expect("open");
    let dir = tempfile::tempdir().expect("dir");
    county(&pool, &dir, date("2026-11-27"));
    let rules = RuleSet::preset("tiedong").expect("rules");
    let runs: Vec<Run> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..6)
            .map(|_| {
                let (pool, rules) = (pool.clone(), &rules);
                s.spawn(move || {
                    let mut conn = pool.get().expect("conn");
                    job(&mut conn, rules, date("2027-03-01")).expect("run")
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("thread"))
            .collect()
    });
    let evaluated = runs
        .iter()
        .filter(|r| matches!(r, Run::Evaluated(_)))
        .count();
    assert_eq!(evaluated, 1, "{runs:?}");
    assert!(runs.contains(&Run::Evaluated(20)), "{runs:?}");

    // While another instance holds the job, this one does not run it.
    let (mut holder, mut other) = (pool.get().expect("conn"), pool.get().expect("conn"));
    assert!(homevisit_server::store::try_job_lock(&mut holder, JOB_LOCK).expect("lock"));
    let next = date("2027-03-02");
    assert_eq!(job(&mut other, &rules, next).expect("run"), Run::Busy);
    homevisit_server::store::release_job_lock(&mut holder, JOB_LOCK).expect("unlock");
    assert_eq!(
        job(&mut other, &rules, next).expect("run"),
        Run::Evaluated(20)
    );
}
