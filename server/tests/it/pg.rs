//! A real PostgreSQL for tests: a fresh database per test process on the server named by
//! `HOMEVISIT_TEST_POSTGRES` (`scripts/test` starts one and sets it). Never skipped: without
//! it the tests fail and say how to get one.

use diesel::{Connection, PgConnection, RunQueryDsl};

/// A database created for this test process, dropped when the value is.
pub struct TestDatabase {
    admin_url: String,
    name: String,
    /// The URL of the fresh database.
    pub url: String,
}

impl TestDatabase {
    pub fn create() -> Self {
        let admin_url = std::env::var("HOMEVISIT_TEST_POSTGRES").unwrap_or_else(|_| {
            panic!(
                "HOMEVISIT_TEST_POSTGRES is not set: run the tests with `bash scripts/test`, \
                 which starts PostgreSQL, or point it at a server where the user may create databases"
            )
        });
        let name = format!("homevisit_test_{}", uuid::Uuid::new_v4().simple());
        let mut admin = PgConnection::establish(&admin_url)
            .unwrap_or_else(|e| panic!("cannot reach the test PostgreSQL: {e}"));
        diesel::sql_query(format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .expect("create test database");
        let base = admin_url
            .rsplit_once('/')
            .map_or(admin_url.as_str(), |(b, _)| b);
        let url = format!("{base}/{name}");
        TestDatabase {
            admin_url,
            name,
            url,
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if let Ok(mut admin) = PgConnection::establish(&self.admin_url) {
            let _ = diesel::sql_query(format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .execute(&mut admin);
        }
    }
}
