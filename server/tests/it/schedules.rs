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

/// What the stored evaluation of every child says: its status, its schedules (days overdue
/// counted to `on`, as readers count them) and its labels.
type Stored = std::collections::BTreeMap<String, (String, Vec<String>, Vec<String>)>;

fn every_id(conn: &mut homevisit_server::store::DbConnection) -> Vec<String> {
    use homevisit_server::store::schema::children;
    children::table
        .order(children::id)
        .select(children::id)
        .load(conn)
        .expect("ids")
}

fn stored(conn: &mut homevisit_server::store::DbConnection, on: NaiveDate) -> Stored {
    use homevisit_server::store::schedules::{labels_of, of};
    use homevisit_server::store::schema::children;
    let ids = every_id(conn);
    let mut schedules = of(conn, &ids).expect("schedules");
    let mut labels: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    let found = labels_of(conn, &ids, &["category", "risk_flag"]).expect("labels");
    for ((child, label), values) in found {
        let lines = values.into_iter().map(|v| format!("{label}={v}"));
        labels.entry(child).or_default().extend(lines);
    }
    children::table
        .select((children::id, children::status))
        .load::<(String, String)>(conn)
        .expect("children")
        .into_iter()
        .map(|(id, status)| {
            let lines = schedules
                .remove(&id)
                .unwrap_or_default()
                .into_iter()
                .map(|s| {
                    let days = match (s.status.as_str(), s.due.parse()) {
                        ("overdue", Ok(d)) => homevisit_sync_core::rules::days_past(d, on),
                        _ => 0,
                    };
                    format!(
                        "{} {} {:?} {} {} {days}",
                        s.kind, s.every, s.last, s.due, s.status
                    )
                })
                .collect();
            let mut labels = labels.remove(&id).unwrap_or_default();
            labels.sort();
            (id, (status, lines, labels))
        })
        .collect()
}

/// What the rules engine says of every child on `on`, from its whole projection.
fn from_scratch(
    conn: &mut homevisit_server::store::DbConnection,
    rules: &RuleSet,
    on: NaiveDate,
) -> Stored {
    use homevisit_server::service::schedules::evaluate;
    let ids = every_id(conn);
    homevisit_server::store::children::summaries(conn, &ids)
        .expect("summaries")
        .iter()
        .map(|s| {
            let e = evaluate(s, rules, on);
            let mut labels: Vec<String> = e
                .categories
                .iter()
                .map(|c| format!("category={c}"))
                .chain(e.risk_flags.iter().map(|f| format!("risk_flag={f}")))
                .collect();
            labels.sort();
            let mut lines: Vec<String> = e
                .schedules
                .iter()
                .map(|x| {
                    format!(
                        "{} {} {:?} {} {} {}",
                        x.kind,
                        x.every,
                        x.last.map(|d| d.to_string()),
                        x.due,
                        x.status.key(),
                        x.days_overdue
                    )
                })
                .collect();
            lines.sort();
            (s.id.to_string(), (e.status.to_owned(), lines, labels))
        })
        .collect()
}

fn children_written_on(pool: &DbPool, on: NaiveDate) -> i64 {
    use homevisit_server::store::schema::children;
    let mut conn = pool.get().expect("conn");
    children::table
        .filter(children::evaluated_on.eq(on.to_string()))
        .count()
        .get_result(&mut *conn)
        .expect("count")
}

fn the_job_from_digests_says_what_the_whole_files_say_and_writes_only_what_changed(pool: &DbPool) {
    use homevisit_server::store::schema::{child_records, children};
    let dir = tempfile::tempdir().expect("dir");
    let built = date("2026-11-27");
    county(pool, &dir, built);
    let mut conn = pool.get().expect("conn");
    let ids = every_id(&mut conn);
    // One file's projection from before digests were kept, and one with a record dated ahead
    // of the days the job runs on (a phone with a wrong clock): both are read whole.
    diesel::update(children::table.filter(children::id.eq(&ids[0])))
        .set(children::rules_digest.eq(None::<Vec<u8>>))
        .execute(&mut *conn)
        .expect("no digest");
    diesel::update(
        child_records::table
            .filter(child_records::child_id.eq(&ids[1]))
            .filter(child_records::kind.eq("home_visit")),
    )
    .set(child_records::date.eq("2027-01-15"))
    .execute(&mut *conn)
    .expect("a record ahead");
    let summary = homevisit_server::store::children::summaries(&mut conn, &ids[1..2])
        .expect("summary")
        .remove(0);
    diesel::update(children::table.filter(children::id.eq(&ids[1])))
        .set(children::rules_digest.eq(Some(summary.rules_digest())))
        .execute(&mut *conn)
        .expect("digest ahead");

    let rules = RuleSet::preset("tiedong").expect("rules");
    let mut on = built;
    let mut quiet_days = 0;
    while on < date("2027-03-31") {
        job(&mut conn, &rules, on).expect("job");
        assert_eq!(
            stored(&mut conn, on),
            from_scratch(&mut conn, &rules, on),
            "on {on}"
        );
        if on > built && children_written_on(pool, on) < 20 {
            quiet_days += 1;
        }
        on += chrono::Duration::days(1);
    }
    // Most days move only some statuses, and only those children are written.
    assert!(
        quiet_days > 60,
        "{quiet_days} days wrote fewer than everyone"
    );
    let digest: Option<Vec<u8>> = children::table
        .filter(children::id.eq(&ids[0]))
        .select(children::rules_digest)
        .first(&mut *conn)
        .expect("digest");
    assert!(digest.is_some(), "the job kept the digest it lacked");
}

#[test]
fn the_job_from_digests_says_what_the_whole_files_say_and_writes_only_what_changed_on_sqlite() {
    let dir = tempfile::tempdir().expect("dir");
    let url =
        DatabaseUrl::parse(&format!("sqlite://{}", dir.path().join("db").display())).expect("url");
    the_job_from_digests_says_what_the_whole_files_say_and_writes_only_what_changed(
        &open(&url, 2).expect("open"),
    );
}

#[test]
fn the_job_from_digests_says_what_the_whole_files_say_and_writes_only_what_changed_on_postgres() {
    let db = TestDatabase::create();
    the_job_from_digests_says_what_the_whole_files_say_and_writes_only_what_changed(
        &open(&DatabaseUrl::parse(&db.url).expect("url"), 2).expect("open"),
    );
}
