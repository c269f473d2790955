//! One storage conformance suite, run on SQLite and on PostgreSQL.

use diesel::Connection;
use homevisit_server::store::sync::SqlSyncStore;
use homevisit_server::store::{DatabaseUrl, DbPool, open};
use homevisit_sync_core::sync::conformance::{SyncServer, run_all};
use homevisit_sync_core::sync::server::{Context, HandleError, handle};
use homevisit_sync_core::sync::{Request, Response};

use crate::pg::TestDatabase;

struct SqlServer(DbPool);

impl SyncServer for SqlServer {
    fn sync(&mut self, ctx: &Context<'_>, request: &Request) -> Result<Response, String> {
        let mut conn = self.0.get().map_err(|e| e.to_string())?;
        conn.transaction(|c| handle(&mut SqlSyncStore::new(c), ctx, request))
            .map_err(|e: HandleError<diesel::result::Error>| e.to_string())
    }
}

#[test]
fn sqlite_storage_passes_the_sync_conformance_suite() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("homevisit.sqlite");
    let url = DatabaseUrl::parse(&format!("sqlite://{}", path.display())).expect("url");
    let mut server = SqlServer(open(&url, 4).expect("open sqlite"));
    run_all(&mut server, "210302").expect("conformance on SQLite");
}

#[test]
fn postgres_storage_passes_the_sync_conformance_suite() {
    let db = TestDatabase::create();
    let url = DatabaseUrl::parse(&db.url).expect("url");
    let mut server = SqlServer(open(&url, 4).expect("open postgres"));
    run_all(&mut server, "210302").expect("conformance on PostgreSQL");
}

#[test]
fn migrations_apply_twice_without_harm() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url =
        DatabaseUrl::parse(&format!("sqlite://{}", dir.path().join("db").display())).expect("url");
    drop(open(&url, 1).expect("first open"));
    open(&url, 1).expect("second open");
}
