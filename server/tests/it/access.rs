//! Account locking and the append-only audit log, at the storage layer where the clock can be
//! moved and the database spoken to directly.

use diesel::RunQueryDsl;
use diesel::connection::SimpleConnection;
use homevisit_server::store::auth::{self, AuthError, LOCK_AFTER, THROTTLE_AFTER};
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
        people::parse_regions("code,name,parent\n210302001001,新华村,\n").expect("csv"),
    )
    .expect("regions");
    people::add_user(
        &mut conn,
        "dir_a",
        "dir_a",
        Role::Director,
        &["210302001001".into()],
        PASSWORD,
        0,
    )
    .expect("user");
}

#[test]
fn an_account_is_throttled_then_locked_and_only_a_password_reset_unlocks_it() {
    let (_dir, pool) = sqlite();
    add_director(&pool);
    let mut conn = pool.get().expect("conn");
    let device = uuid::Uuid::new_v4().to_string();
    let mut now = 1_000_000;
    for failure in 1..=LOCK_AFTER {
        let err = auth::login(&mut conn, "dir_a", "wrong", &device, "p", now).expect_err("wrong");
        assert!(
            matches!(err, AuthError::InvalidCredentials),
            "{failure}: {err}"
        );
        if (THROTTLE_AFTER..LOCK_AFTER).contains(&failure) {
            let early = auth::login(&mut conn, "dir_a", PASSWORD, &device, "p", now + 1);
            assert!(
                matches!(early, Err(AuthError::Throttled { .. })),
                "{failure}"
            );
        }
        // Wait out whatever throttle there is.
        now += 1 << 20;
    }
    let locked = auth::login(
        &mut conn,
        "dir_a",
        PASSWORD,
        &device,
        "p",
        now + 1_000_000_000,
    );
    assert!(matches!(locked, Err(AuthError::Locked)), "{locked:?}");
    people::reset_password(&mut conn, "dir_a", PASSWORD).expect("reset");
    assert!(auth::login(&mut conn, "dir_a", PASSWORD, &device, "p", now).is_ok());
}

#[test]
fn a_success_before_the_threshold_forgives_earlier_failures() {
    let (_dir, pool) = sqlite();
    add_director(&pool);
    let mut conn = pool.get().expect("conn");
    let device = uuid::Uuid::new_v4().to_string();
    for round in 0..3 {
        for _ in 1..THROTTLE_AFTER {
            let _ = auth::login(&mut conn, "dir_a", "wrong", &device, "p", 100 + round);
        }
        assert!(auth::login(&mut conn, "dir_a", PASSWORD, &device, "p", 100 + round).is_ok());
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
            village: Some("210302001001"),
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
