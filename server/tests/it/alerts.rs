//! Alerts as months pass: raised, escalated and closed exactly as the stored schedules say,
//! once each, on SQLite and on PostgreSQL, under both presets.

use chrono::{Datelike, NaiveDate, TimeZone, Utc};
use diesel::prelude::*;
use homevisit_server::demo::{Size, ensure_sized};
use homevisit_server::service::alerts::{self, Actor, AlertError, Policy};
use homevisit_server::service::schedules::{Evaluation, evaluate_all_if_due, refresh_ids};
use homevisit_server::service::sync::store_made_here;
use homevisit_server::store::people::Role;
use homevisit_server::store::sync::SqlSyncStore;
use homevisit_server::store::{DatabaseUrl, DbConnection, DbPool, open, write_transaction};
use homevisit_sync_core::file::{Assertion, AttrKind, ChildFile, ChildId, Findings, RecordVersion};
use homevisit_sync_core::rules::RuleSet;
use homevisit_sync_core::sync::Scope;
use homevisit_sync_core::sync::server::ServerStore;
use homevisit_sync_core::vocab::RecordKind;
use std::collections::{BTreeMap, BTreeSet};

use crate::pg::TestDatabase;

const SMALL: Size = Size {
    townships: 1,
    villages: 2,
    children: 10,
};

const ESCALATE: u32 = 14;

fn date(s: &str) -> NaiveDate {
    s.parse().expect("date")
}

fn noon(on: NaiveDate) -> i64 {
    on.and_hms_opt(12, 0, 0)
        .expect("noon")
        .and_utc()
        .timestamp()
}

fn policy() -> Policy {
    Policy {
        escalate_after_days: ESCALATE,
        ..Policy::default()
    }
}

fn evaluation<'a>(rules: &'a RuleSet, policy: &'a Policy, on: NaiveDate) -> Evaluation<'a> {
    Evaluation {
        rules,
        on,
        alerts: policy,
        now: noon(on),
    }
}

fn job(conn: &mut DbConnection, rules: &RuleSet, on: NaiveDate) {
    let policy = policy();
    evaluate_all_if_due(conn, &evaluation(rules, &policy, on)).expect("job");
}

type Key = (String, String, String);

/// Open schedule alerts, as (child, kind, subject).
fn open_schedule_alerts(conn: &mut DbConnection) -> BTreeSet<Key> {
    use homevisit_server::store::schema::alerts;
    alerts::table
        .filter(alerts::status.ne("closed"))
        .filter(alerts::kind.ne("danger"))
        .select((alerts::child_id, alerts::kind, alerts::subject))
        .load::<Key>(conn)
        .expect("alerts")
        .into_iter()
        .collect()
}

/// What the stored schedules call for.
fn called_for(conn: &mut DbConnection) -> BTreeSet<Key> {
    use homevisit_server::store::schema::{children, schedules};
    let rows: Vec<(String, String, String, String, i32)> = schedules::table
        .inner_join(children::table)
        .filter(children::status.ne("not_served"))
        .select((
            schedules::child_id,
            schedules::kind,
            schedules::due,
            schedules::status,
            schedules::days_overdue,
        ))
        .load(conn)
        .expect("schedules");
    let mut out = BTreeSet::new();
    for (child, kind, due, status, days) in rows {
        let subject = format!("{kind}/{due}");
        match status.as_str() {
            "due_soon" => {
                out.insert((child, "due_soon".into(), subject));
            }
            "overdue" => {
                out.insert((child.clone(), "overdue".into(), subject.clone()));
                if days >= ESCALATE as i32 {
                    out.insert((child, "overdue_escalated".into(), subject));
                }
            }
            _ => {}
        }
    }
    out
}

/// Alerts by (child, kind, subject) with their status and close reason.
fn all_alerts(conn: &mut DbConnection) -> BTreeMap<Key, (String, Option<String>, String)> {
    use homevisit_server::store::schema::alerts;
    alerts::table
        .select((
            alerts::child_id,
            alerts::kind,
            alerts::subject,
            alerts::status,
            alerts::outcome,
            alerts::id,
        ))
        .load::<(String, String, String, String, Option<String>, String)>(conn)
        .expect("alerts")
        .into_iter()
        .map(|(c, k, s, st, o, id)| ((c, k, s), (st, o, id)))
        .collect()
}

/// How many times each alert was raised, and closed.
fn event_counts(conn: &mut DbConnection) -> BTreeMap<(String, String), i64> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = diesel::sql_types::Text)]
        alert_id: String,
        #[diesel(sql_type = diesel::sql_types::Text)]
        action: String,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    let rows: Vec<Row> = diesel::sql_query(
        "SELECT alert_id, action, COUNT(*) AS n FROM alert_events GROUP BY alert_id, action",
    )
    .load(conn)
    .expect("events");
    rows.into_iter()
        .map(|r| ((r.alert_id, r.action), r.n))
        .collect()
}

fn check_invariants(conn: &mut DbConnection, on: NaiveDate) {
    let open = open_schedule_alerts(conn);
    let wanted = called_for(conn);
    assert_eq!(
        open, wanted,
        "on {on}: open alerts differ from the schedules"
    );
    let counts = event_counts(conn);
    for ((_, _, _), (status, _, id)) in all_alerts(conn) {
        assert_eq!(counts.get(&(id.clone(), "raised".into())), Some(&1), "{id}");
        let closes = counts
            .get(&(id.clone(), "closed".into()))
            .copied()
            .unwrap_or(0);
        assert_eq!(closes, i64::from(status == "closed"), "{id} on {on}");
    }
}

fn county(pool: &DbPool, dir: &tempfile::TempDir, built: NaiveDate) {
    let mut conn = pool.get().expect("conn");
    ensure_sized(&mut conn, dir.path(), built, SMALL).expect("demo");
}

fn months_pass(pool: &DbPool, preset: &str) {
    let dir = tempfile::tempdir().expect("dir");
    let built = date("2026-11-27");
    county(pool, &dir, built);
    let rules = RuleSet::preset(preset).expect("rules");
    let mut conn = pool.get().expect("conn");
    let mut seen_kinds = BTreeSet::new();
    let mut reasons = BTreeSet::new();
    let mut on = built;
    // Every third day for five months, with no sync at all.
    while on < date("2027-04-30") {
        job(&mut conn, &rules, on);
        check_invariants(&mut conn, on);
        for ((_, kind, _), (_, reason, _)) in all_alerts(&mut conn) {
            seen_kinds.insert(kind);
            reasons.extend(reason);
        }
        on += chrono::Duration::days(3);
    }
    for kind in ["due_soon", "overdue", "overdue_escalated", "danger"] {
        assert!(
            seen_kinds.contains(kind),
            "{preset}: no {kind} alert ever: {seen_kinds:?}"
        );
    }
    // A due-soon alert gives way to the overdue one for the same due date.
    assert!(reasons.contains("now_overdue"), "{preset}: {reasons:?}");
}

#[test]
fn as_months_pass_exactly_the_alerts_the_schedules_call_for_are_open_under_both_presets_on_sqlite()
{
    for preset in ["tiedong", "chongqing"] {
        let dir = tempfile::tempdir().expect("dir");
        let url = DatabaseUrl::parse(&format!("sqlite://{}", dir.path().join("db").display()))
            .expect("url");
        months_pass(&open(&url, 2).expect("open"), preset);
    }
}

#[test]
fn as_months_pass_exactly_the_alerts_the_schedules_call_for_are_open_under_both_presets_on_postgres()
 {
    for preset in ["tiedong", "chongqing"] {
        let db = TestDatabase::create();
        months_pass(
            &open(&DatabaseUrl::parse(&db.url).expect("url"), 2).expect("open"),
            preset,
        );
    }
}

/// Changes one file as a sync would, and evaluates it in the same transaction.
fn amend(
    pool: &DbPool,
    child: &str,
    on: NaiveDate,
    rules: &RuleSet,
    change: impl FnOnce(&mut ChildFile),
) {
    let mut conn = pool.get().expect("conn");
    let policy = policy();
    write_transaction(&mut conn, |c| -> Result<(), Box<dyn std::error::Error>> {
        let id = ChildId(uuid::Uuid::parse_str(child)?);
        let stored = SqlSyncStore::new(c).doc(id)?.ok_or("no such file")?;
        let mut file = ChildFile::load(&stored.bytes, [7; 16])?;
        change(&mut file);
        store_made_here(c, &mut file, "director")?;
        refresh_ids(c, &[child.to_owned()], &evaluation(rules, &policy, on))?;
        Ok(())
    })
    .expect("amend");
}

fn at(on: NaiveDate) -> chrono::DateTime<Utc> {
    Utc.from_utc_datetime(&on.and_hms_opt(9, 0, 0).expect("time"))
}

fn visit(on: NaiveDate) -> impl FnOnce(&mut ChildFile) {
    move |file: &mut ChildFile| {
        let v = RecordVersion::home_visit(on, "director", at(on), Findings::default());
        file.add_record(RecordKind::HomeVisit, &v, "director", at(on))
            .expect("record");
    }
}

fn sqlite_pool(dir: &tempfile::TempDir) -> DbPool {
    let url =
        DatabaseUrl::parse(&format!("sqlite://{}", dir.path().join("db").display())).expect("url");
    open(&url, 2).expect("open")
}

/// A small demo county on SQLite, built on 2026-11-27, and the `tiedong` rules.
fn tiedong_county() -> (tempfile::TempDir, DbPool, RuleSet) {
    let dir = tempfile::tempdir().expect("dir");
    let pool = sqlite_pool(&dir);
    county(&pool, &dir, date("2026-11-27"));
    (dir, pool, RuleSet::preset("tiedong").expect("rules"))
}

/// The first alert of `kind` that is open, as (child, subject, id).
fn first_open(conn: &mut DbConnection, kind: &str) -> Option<(String, String, String)> {
    all_alerts(conn)
        .into_iter()
        .find(|((_, k, _), (status, _, _))| k == kind && status != "closed")
        .map(|((c, _, s), (_, _, id))| (c, s, id))
}

fn status_of(conn: &mut DbConnection, id: &str) -> (String, Option<String>) {
    all_alerts(conn)
        .into_values()
        .find(|(_, _, i)| i == id)
        .map(|(s, o, _)| (s, o))
        .expect("alert")
}

#[test]
fn a_visit_recorded_on_its_due_date_closes_the_due_soon_alert_and_none_becomes_overdue() {
    let (_dir, pool, rules) = tiedong_county();
    let mut conn = pool.get().expect("conn");
    // Walk forward until some child is due soon.
    let mut on = date("2026-11-27");
    let (child, subject, id) = loop {
        job(&mut conn, &rules, on);
        if let Some(found) = first_open(&mut conn, "due_soon") {
            break found;
        }
        on += chrono::Duration::days(1);
        assert!(on < date("2027-06-01"), "nobody was ever due soon");
    };
    let due = date(subject.split('/').nth(1).expect("due"));
    // The visit happens on the due date itself and reaches the server that day.
    amend(&pool, &child, due, &rules, visit(due));
    assert_eq!(
        status_of(&mut conn, &id),
        ("closed".into(), Some("visited".into()))
    );
    job(&mut conn, &rules, due + chrono::Duration::days(1));
    check_invariants(&mut conn, due);
    let late = all_alerts(&mut conn)
        .into_keys()
        .any(|(c, k, s)| c == child && k == "overdue" && s == subject);
    assert!(!late, "a visit on the due date is on time");
}

#[test]
fn a_child_who_ages_out_has_its_alerts_closed_as_no_longer_served() {
    let (_dir, pool, rules) = tiedong_county();
    let mut conn = pool.get().expect("conn");
    use homevisit_server::store::schema::children;
    job(&mut conn, &rules, date("2026-11-27"));
    let (child, born): (String, String) = children::table
        .filter(children::status.ne("not_served"))
        .order(children::birth_date)
        .select((children::id, children::birth_date))
        .first(&mut conn)
        .expect("oldest");
    let born = date(&born);
    let status = |conn: &mut DbConnection| -> String {
        children::table
            .filter(children::id.eq(&child))
            .select(children::status)
            .first(conn)
            .expect("status")
    };
    // Month by month from just before the first age a category can end at, until the child
    // is served no more.
    let fifteen = NaiveDate::from_ymd_opt(born.year() + 15, born.month(), 1).expect("date");
    let mut on = fifteen.max(date("2026-11-27"));
    let mut open_before = Vec::new();
    loop {
        job(&mut conn, &rules, on);
        if status(&mut conn) == "not_served" {
            break;
        }
        open_before = all_alerts(&mut conn)
            .into_iter()
            .filter(|((c, k, _), (s, _, _))| *c == child && k != "danger" && s != "closed")
            .collect();
        on += chrono::Duration::days(30);
        assert!(on.year() <= born.year() + 18, "served past 18");
    }
    assert!(
        !open_before.is_empty(),
        "unvisited for long, the child was overdue"
    );
    for ((_, kind, _), (_, _, id)) in open_before {
        assert_eq!(
            status_of(&mut conn, &id),
            ("closed".into(), Some("not_served".into())),
            "{kind}"
        );
    }
    check_invariants(&mut conn, on);
}

#[test]
fn a_better_guardianship_level_reschedules_and_closes_the_overdue_alert() {
    let (_dir, pool, rules) = tiedong_county();
    let mut conn = pool.get().expect("conn");
    // Six weeks on, monthly children are overdue; find one whose schedule is monthly.
    let on = date("2027-01-10");
    job(&mut conn, &rules, on);
    use homevisit_server::store::schema::{child_labels, schedules};
    // Monthly because of guardianship alone, not of a risk flag.
    let flagged: BTreeSet<String> = child_labels::table
        .filter(child_labels::label.eq("risk_flag"))
        .select(child_labels::child_id)
        .load::<String>(&mut conn)
        .expect("labels")
        .into_iter()
        .collect();
    let monthly: BTreeSet<String> = schedules::table
        .filter(schedules::every.eq("1 month"))
        .filter(schedules::status.eq("overdue"))
        .select(schedules::child_id)
        .load::<String>(&mut conn)
        .expect("schedules")
        .into_iter()
        .filter(|c| !flagged.contains(c))
        .collect();
    let (child, _, id) = all_alerts(&mut conn)
        .into_iter()
        .find(|((c, k, _), (s, _, _))| monthly.contains(c) && k == "overdue" && s == "open")
        .map(|((c, _, s), (_, _, id))| (c, s, id))
        .expect("an overdue child, monthly for its guardianship");
    // The assessment improves today: good guardianship, a home visit every 3 months.
    amend(&pool, &child, on, &rules, |file| {
        let a = Assertion {
            attr: AttrKind::Guardianship,
            value: "good".into(),
            present: true,
            effective: on,
            recorded_at: at(on),
            by: "director".into(),
        };
        file.assert_attribute(&a, "director", at(on))
            .expect("assert");
    });
    let every: String = schedules::table
        .filter(schedules::child_id.eq(&child))
        .select(schedules::every)
        .first(&mut conn)
        .expect("schedule");
    assert_eq!(every, "3 months");
    assert_eq!(
        status_of(&mut conn, &id),
        ("closed".into(), Some("rescheduled".into()))
    );
    check_invariants(&mut conn, on);
}

#[test]
fn a_danger_record_raises_one_alert_that_only_a_person_closes_with_the_outcome() {
    let (_dir, pool, rules) = tiedong_county();
    let mut conn = pool.get().expect("conn");
    job(&mut conn, &rules, date("2026-11-27"));
    let (child, _, id) = first_open(&mut conn, "danger").expect("the demo's danger raises one");
    // Evaluated again and again (syncs, the job), it is not raised twice.
    let policy = policy();
    for day in 0..3 {
        let on = date("2026-11-27") + chrono::Duration::days(day);
        write_transaction(&mut conn, |c| {
            refresh_ids(
                c,
                std::slice::from_ref(&child),
                &evaluation(&rules, &policy, on),
            )
        })
        .expect("refresh");
    }
    let dangers = all_alerts(&mut conn)
        .into_keys()
        .filter(|(c, k, _)| *c == child && k == "danger")
        .count();
    assert_eq!(dangers, 1);
    let village: String = {
        use homevisit_server::store::schema::children;
        children::table
            .filter(children::id.eq(&child))
            .select(children::village)
            .first(&mut conn)
            .expect("village")
    };
    let township = Scope::new([village[..9].to_owned()]);
    let supervisor = Actor {
        username: "supervisor",
        role: Role::Supervisor,
        scope: &township,
    };
    let elsewhere = Scope::new(["999999999".to_owned()]);
    let stranger = Actor {
        scope: &elsewhere,
        ..supervisor
    };
    let now = noon(date("2026-11-28"));
    assert!(matches!(
        alerts::close(&mut conn, &stranger, &id, "done", now),
        Err(AlertError::Forbidden(_))
    ));
    let director = Actor {
        role: Role::Director,
        ..supervisor
    };
    assert!(
        matches!(
            alerts::acknowledge(&mut conn, &director, &id, "", now),
            Err(AlertError::Forbidden(_))
        ),
        "a director is not told of dangers"
    );
    let (acked, changed) =
        alerts::acknowledge(&mut conn, &supervisor, &id, "on my way", now).expect("ack");
    assert!(changed);
    assert_eq!(acked.acknowledged_by.as_deref(), Some("supervisor"));
    let (_, again) =
        alerts::acknowledge(&mut conn, &supervisor, &id, "on my way", now).expect("ack");
    assert!(!again, "a second acknowledgement changes nothing");
    // The job never closes it, however long it runs.
    job(&mut conn, &rules, date("2027-03-01"));
    assert_eq!(status_of(&mut conn, &id).0, "acknowledged");
    let closed =
        alerts::close(&mut conn, &supervisor, &id, "已送至外祖母家照护", now).expect("close");
    assert_eq!(closed.status, "closed");
    assert_eq!(closed.outcome.as_deref(), Some("已送至外祖母家照护"));
    assert_eq!(closed.closed_by.as_deref(), Some("supervisor"));
    assert!(matches!(
        alerts::close(&mut conn, &supervisor, &id, "again", now),
        Err(AlertError::Closed(_))
    ));
    let (_, history) = alerts::read(&mut conn, &supervisor, &id).expect("read");
    let actions: Vec<&str> = history.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["raised", "acknowledged", "closed"]);
    // Schedule alerts close by themselves.
    let (_, _, overdue) = first_open(&mut conn, "overdue").expect("overdue by March");
    assert!(matches!(
        alerts::close(&mut conn, &supervisor, &overdue, "visited", now),
        Err(AlertError::ClosesItself(_)) | Err(AlertError::Forbidden(_))
    ));
}

#[test]
fn racing_evaluations_on_postgres_raise_every_alert_once() {
    let db = TestDatabase::create();
    let pool = open(&DatabaseUrl::parse(&db.url).expect("url"), 8).expect("open");
    let dir = tempfile::tempdir().expect("dir");
    county(&pool, &dir, date("2026-11-27"));
    let rules = RuleSet::preset("tiedong").expect("rules");
    let ids: Vec<String> = {
        use homevisit_server::store::schema::children;
        let mut conn = pool.get().expect("conn");
        children::table
            .select(children::id)
            .load(&mut conn)
            .expect("ids")
    };
    let policy = policy();
    // Six "instances" evaluate everyone at once, past the job's lock, as syncs would: each
    // child in its own transaction, each instance starting at another child.
    for on in [date("2027-01-15"), date("2027-02-20")] {
        std::thread::scope(|s| {
            for start in 0..6 {
                let (pool, rules, policy, ids) = (pool.clone(), &rules, &policy, &ids);
                s.spawn(move || {
                    let mut conn = pool.get().expect("conn");
                    for i in 0..ids.len() {
                        let child = ids[(i + start * 3) % ids.len()].clone();
                        write_transaction(&mut conn, |c| {
                            refresh_ids(c, &[child], &evaluation(rules, policy, on))
                        })
                        .expect("refresh");
                    }
                });
            }
        });
        let mut conn = pool.get().expect("conn");
        check_invariants(&mut conn, on);
    }
}

#[test]
fn a_readers_alerts_and_children_are_read_through_the_village_index_not_in_full_on_postgres() {
    let db = TestDatabase::create();
    let pool = open(&DatabaseUrl::parse(&db.url).expect("url"), 2).expect("open");
    let dir = tempfile::tempdir().expect("dir");
    let twelve = Size {
        townships: 2,
        villages: 6,
        children: 10,
    };
    let mut conn = pool.get().expect("conn");
    ensure_sized(&mut conn, dir.path(), date("2026-11-27"), twelve).expect("demo");
    job(
        &mut conn,
        &RuleSet::preset("tiedong").expect("rules"),
        date("2027-03-01"),
    );
    use homevisit_server::store::schema::{alerts as alert_rows, children as child_rows};
    let village: String = alert_rows::table
        .select(alert_rows::village)
        .first(&mut conn)
        .expect("an alert was raised");
    let alerts_here: i64 = alert_rows::table
        .filter(alert_rows::village.eq(&village))
        .count()
        .get_result(&mut conn)
        .expect("count");
    let children_here: i64 = child_rows::table
        .filter(child_rows::village.eq(&village))
        .count()
        .get_result(&mut conn)
        .expect("count");
    let scope = Scope::new([village.as_str()]);
    let visible = homevisit_server::store::alerts::Visible {
        scope: &scope,
        kinds: &["due_soon", "overdue", "overdue_escalated", "danger"],
    };
    #[derive(QueryableByName)]
    struct Read {
        #[diesel(sql_type = diesel::sql_types::Text)]
        relname: String,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        tuples: i64,
    }
    // Rows this backend has read from each table and not yet reported, which it never does
    // inside a transaction.
    fn read(c: &mut DbConnection) -> QueryResult<BTreeMap<String, i64>> {
        let DbConnection::Postgresql(pg) = c else {
            unreachable!("a PostgreSQL pool")
        };
        let rows = diesel::sql_query(
            "SELECT relname::text AS relname, \
             (coalesce(seq_tup_read, 0) + coalesce(idx_tup_fetch, 0))::bigint AS tuples \
             FROM pg_stat_xact_user_tables WHERE relname IN ('alerts', 'children')",
        )
        .load::<Read>(pg)?;
        Ok(rows.into_iter().map(|r| (r.relname, r.tuples)).collect())
    }
    // Sequential scans priced out, as on a county's large tables: a condition the village index
    // serves reads the village's rows; one it cannot serve (an always-false seed OR-ed in front
    // of the village ranges made every daily sync's alert query one) reads them all.
    let (before, between, after) = write_transaction(&mut conn, |c| {
        diesel::sql_query("SET LOCAL enable_seqscan = off").execute(c)?;
        let before = read(c)?;
        let (total, page) = homevisit_server::store::alerts::page(
            c,
            &visible,
            &homevisit_server::store::alerts::AlertFilter::default(),
            10,
        )?;
        assert!(total > 0 && !page.is_empty(), "the reader sees its alerts");
        let between = read(c)?;
        let (children, _) = homevisit_server::store::children::page(
            c,
            &scope,
            &homevisit_server::store::children::PageFilter::default(),
            10,
            0,
        )?;
        assert_eq!(children, children_here, "the reader sees its children");
        Ok::<_, diesel::result::Error>((before, between, read(c)?))
    })
    .expect("queries");
    let all_alerts: i64 = alert_rows::table
        .count()
        .get_result(&mut conn)
        .expect("count");
    assert!(
        all_alerts > 6 * alerts_here,
        "the county is larger than the village"
    );
    // Two queries each (a count and a page), each reading the village's rows and a few again;
    // reading them all would be many times more. How the alerts' page joins their children is
    // the planner's choice, so children are counted over the children's page alone.
    let alerts_read = between["alerts"] - before["alerts"];
    assert!(
        alerts_read <= 3 * alerts_here,
        "{alerts_read} alert rows read for {alerts_here} in the village, of {all_alerts}"
    );
    let children_read = after["children"] - between["children"];
    assert!(
        children_read <= 3 * children_here,
        "{children_read} children read for {children_here} in the village"
    );
}
