//! Login throttling and the append-only audit log, at the storage layer where the clock can be
//! moved and the database spoken to directly.

use diesel::RunQueryDsl;
use diesel::connection::SimpleConnection;
use homevisit_server::service::auth::{self, AuthError, THROTTLE_AFTER};
use homevisit_server::store::people::{self, Role};
use homevisit_server::store::{DatabaseUrl, DbPool, audit, open};

use crate::pg::TestDatabase;

const PASSWORD: &str = "correct horse battery";

fn sqlite() -> (tempfile::TempDir, DbPool) {
    let dir = tempfile::tempdir().expect("dir");
    let url =
        DatabaseUrl::parse(&format!("sqlite://{}", dir.path().join("db").display())).expect("url");
    let pool = open(&url, 2).expect("open");
    (dir, pool)
}

fn add_director(pool: &DbPool) {
    let mut conn = pool.get().expect("conn");
    people::import_regions(
        &mut conn,
        people::parse_regions("code,name,parent\n220303100200,山门村,\n").expect("csv"),
    )
    .expect("regions");
    people::add_user(
        &mut conn,
        "dir_a",
        "dir_a",
        Role::Director,
        &["220303100200".into()],
        PASSWORD,
        0,
    )
    .expect("user");
}

/// Logs in as `user` from `source` at `now`.
fn try_login(
    conn: &mut homevisit_server::store::DbConnection,
    user: &str,
    password: &str,
    source: &str,
    now: i64,
) -> Result<auth::Granted, AuthError> {
    let device = uuid::Uuid::new_v4().to_string();
    auth::login(conn, user, password, &device, "p", source, now)
}

fn waits(result: Result<auth::Granted, AuthError>) -> Option<i64> {
    match result {
        Err(AuthError::Throttled { retry_after }) => Some(retry_after),
        _ => None,
    }
}

#[test]
fn failures_back_off_per_name_and_address_alike_for_unknown_names_and_never_lock() {
    let (_dir, pool) = sqlite();
    add_director(&pool);
    let mut conn = pool.get().expect("conn");
    let now = 1_000_000;
    for name in ["dir_a", "nobody"] {
        for failure in 1..=THROTTLE_AFTER {
            let err = try_login(&mut conn, name, "wrong", "10.0.0.1", now).expect_err("wrong");
            assert!(
                matches!(err, AuthError::InvalidCredentials),
                "{name} {failure}: {err}"
            );
        }
        // From that address, even the right password waits, for a name that exists or not.
        let wait = waits(try_login(&mut conn, name, PASSWORD, "10.0.0.1", now + 1));
        assert_eq!(wait, Some(auth::FIRST_WAIT - 1), "{name}");
    }
    // Another address is not slowed by the first one's failures.
    assert!(try_login(&mut conn, "dir_a", PASSWORD, "10.0.0.2", now + 1).is_ok());

    // Each further failure doubles the wait, up to a ceiling, and never locks.
    let mut t = now + 10_000;
    let mut last = 0;
    for _ in 0..20 {
        for _ in 0..THROTTLE_AFTER {
            let _ = try_login(&mut conn, "dir_a", "wrong", "10.0.0.3", t);
            t += auth::MAX_WAIT + 1;
        }
        let wait = waits(try_login(
            &mut conn,
            "dir_a",
            "wrong",
            "10.0.0.3",
            t - auth::MAX_WAIT,
        ))
        .unwrap_or(0);
        assert!(
            wait >= last.min(auth::MAX_WAIT) && wait <= auth::MAX_WAIT,
            "{wait}"
        );
        last = wait;
    }
    assert_eq!(last, auth::MAX_WAIT - 1);
    assert!(
        try_login(&mut conn, "dir_a", PASSWORD, "10.0.0.3", t + auth::MAX_WAIT).is_ok(),
        "after the wait the right password works: no lock"
    );
}

#[test]
fn failures_from_many_addresses_slow_the_name_everywhere_until_a_reset() {
    let (_dir, pool) = sqlite();
    add_director(&pool);
    let mut conn = pool.get().expect("conn");
    let now = 2_000_000;
    for i in 0..auth::THROTTLE_USERNAME_AFTER {
        let source = format!("10.1.0.{i}");
        assert!(try_login(&mut conn, "dir_a", "wrong", &source, now).is_err());
    }
    let fresh = waits(try_login(&mut conn, "dir_a", PASSWORD, "10.9.9.9", now));
    assert_eq!(fresh, Some(auth::FIRST_WAIT));
    people::reset_password(&mut conn, "dir_a", PASSWORD).expect("reset");
    assert!(try_login(&mut conn, "dir_a", PASSWORD, "10.9.9.9", now).is_ok());
}

#[test]
fn a_success_before_the_threshold_forgives_earlier_failures() {
    let (_dir, pool) = sqlite();
    add_director(&pool);
    let mut conn = pool.get().expect("conn");
    for round in 0..3 {
        for _ in 1..THROTTLE_AFTER {
            let _ = try_login(&mut conn, "dir_a", "wrong", "10.0.0.1", 100 + round);
        }
        assert!(try_login(&mut conn, "dir_a", PASSWORD, "10.0.0.1", 100 + round).is_ok());
    }
}

fn audit_is_append_only(pool: &DbPool) {
    let mut conn = pool.get().expect("conn");
    audit::record(
        &mut conn,
        &audit::Read {
            at: 1,
            user_id: "u",
            username: "sup_a",
            role: "supervisor",
            device_id: "d",
            action: "child.read",
            child_id: Some("c"),
            village: Some("220303100200"),
            remote: "127.0.0.1",
        },
    )
    .expect("append");
    assert!(
        conn.batch_execute("UPDATE audit_log SET username = 'someone'")
            .is_err()
    );
    assert!(conn.batch_execute("DELETE FROM audit_log").is_err());
    let rows = audit::list(&mut conn, &audit::AuditFilter::default(), None).expect("list");
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].username, "sup_a");
    let count: i64 = diesel::sql_query("SELECT COUNT(*) AS n FROM audit_log")
        .load::<Count>(&mut *conn)
        .expect("count")[0]
        .n;
    assert_eq!(count, 1);
}

#[derive(diesel::QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

#[test]
fn the_audit_log_refuses_updates_and_deletes_on_sqlite() {
    let (_dir, pool) = sqlite();
    audit_is_append_only(&pool);
}

#[test]
fn the_audit_log_refuses_updates_and_deletes_on_postgres() {
    let db = TestDatabase::create();
    let pool = open(&DatabaseUrl::parse(&db.url).expect("url"), 2).expect("open");
    audit_is_append_only(&pool);
}
