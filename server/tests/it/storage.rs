//! One storage conformance suite, run on SQLite and on PostgreSQL.

use homevisit_server::service::sync::{Env, apply};
use homevisit_server::store::cache::DocCache;
use homevisit_server::store::{DatabaseUrl, DbPool, open};
use homevisit_sync_core::sync::conformance::{SyncServer, run_all};
use homevisit_sync_core::sync::server::Context;
use homevisit_sync_core::sync::{Request, Response};

use crate::pg::TestDatabase;

/// The storage as the server runs it: with the document cache, unless `cache` is `None`.
struct SqlServer(DbPool, Option<DocCache>);

impl SyncServer for SqlServer {
    fn sync(&mut self, ctx: &Context<'_>, request: &Request) -> Result<Response, String> {
        let mut conn = self.0.get().map_err(|e| e.to_string())?;
        let env = Env {
            cache: self.1.as_ref(),
            ..Env::default()
        };
        apply(&mut conn, ctx, request, &env).map_err(|e| e.to_string())
    }
}

fn sqlite(dir: &tempfile::TempDir) -> DbPool {
    let path = dir.path().join("homevisit.sqlite");
    let url = DatabaseUrl::parse(&format!("sqlite://{}", path.display())).expect("url");
    open(&url, 4).expect("open sqlite")
}

#[test]
fn sqlite_storage_passes_the_sync_conformance_suite() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut server = SqlServer(sqlite(&dir), Some(DocCache::new(64)));
    run_all(&mut server, "220303").expect("conformance on SQLite");
}

#[test]
fn sqlite_storage_passes_the_sync_conformance_suite_without_the_document_cache() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut server = SqlServer(sqlite(&dir), None);
    run_all(&mut server, "220303").expect("conformance on SQLite, no cache");
}

#[test]
fn a_document_cache_of_one_entry_still_passes_the_conformance_suite() {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut server = SqlServer(sqlite(&dir), Some(DocCache::new(1)));
    run_all(&mut server, "220303").expect("conformance with constant eviction");
}

#[test]
fn postgres_storage_passes_the_sync_conformance_suite() {
    let db = TestDatabase::create();
    let url = DatabaseUrl::parse(&db.url).expect("url");
    let mut server = SqlServer(
        open(&url, 4).expect("open postgres"),
        Some(DocCache::new(64)),
    );
    run_all(&mut server, "220303").expect("conformance on PostgreSQL");
}

#[test]
fn migrations_apply_twice_without_harm() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url =
        DatabaseUrl::parse(&format!("sqlite://{}", dir.path().join("db").display())).expect("url");
    drop(open(&url, 1).expect("first open"));
    open(&url, 1).expect("second open");
}

/// Eight phones upload five new files each, all at once, while a ninth phone syncs over and
/// over. Every sync must be applied (none refused as locked), and the reader must end with
/// every file: sequence numbers must become visible in the order they were issued, or a
/// reader's cursor could pass a file still being committed and never see it.
fn concurrent_writers_and_a_reader(pool: DbPool) {
    use homevisit_sync_core::sync::device::{Outcome, Replica};
    use homevisit_sync_core::sync::{DeviceId, Scope};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let scope = Scope::new(["220303100200"]);
    let sync = |pool: &DbPool, replica: &mut Replica, device: DeviceId, scope: &Scope| {
        let request = Request::decode(&replica.request()).expect("decode");
        let ctx = Context {
            device,
            user: "d1",
            author: "d1",
            scope,
            now_ms: 0,
            page_bytes: 1 << 20,
            revoked: false,
        };
        let mut conn = pool.get().expect("conn");
        let response = apply(&mut conn, &ctx, &request, &Env::default())
            .expect("a concurrent sync is applied, not refused as locked");
        replica.receive(&response.encode(), 0).expect("apply")
    };
    let writing = Arc::new(AtomicBool::new(true));
    let reader = {
        let (pool, scope, writing) = (pool.clone(), scope.clone(), writing.clone());
        std::thread::spawn(move || {
            let mut replica = Replica::new([99; 16]);
            let device = DeviceId::new();
            while writing.load(Ordering::SeqCst) {
                sync(&pool, &mut replica, device, &scope);
            }
            for _ in 0..10 {
                if sync(&pool, &mut replica, device, &scope) == Outcome::Done {
                    break;
                }
            }
            replica.file_ids().len()
        })
    };
    let writers: Vec<_> = (0..8u8)
        .map(|n| {
            let (pool, scope) = (pool.clone(), scope.clone());
            std::thread::spawn(move || {
                let mut replica = Replica::new([n + 1; 16]);
                let device = DeviceId::new();
                let profile: homevisit_sync_core::file::Profile =
                    serde_json::from_value(serde_json::json!({
                        "name": "孩子", "sex": "male", "birth_date": "2015-01-01",
                        "hukou_place": "铁东区", "address": "一组", "village_code": "220303100200",
                        "registered_on": "2026-01-01"
                    }))
                    .expect("profile");
                let at = chrono::DateTime::from_timestamp(1_790_000_000, 0).expect("time");
                for _ in 0..5 {
                    replica
                        .create(
                            homevisit_sync_core::file::ChildId::new(),
                            &profile,
                            "d1",
                            at,
                        )
                        .expect("create");
                    sync(&pool, &mut replica, device, &scope);
                }
            })
        })
        .collect();
    for t in writers {
        t.join().expect("writer");
    }
    writing.store(false, Ordering::SeqCst);
    assert_eq!(
        reader.join().expect("reader"),
        40,
        "the reader missed files"
    );
}

#[test]
fn concurrent_syncs_on_sqlite_wait_their_turn_and_a_reader_misses_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let url =
        DatabaseUrl::parse(&format!("sqlite://{}", dir.path().join("db").display())).expect("url");
    concurrent_writers_and_a_reader(open(&url, 8).expect("open"));
}

#[test]
fn concurrent_syncs_on_postgres_overlap_and_a_reader_misses_nothing() {
    let db = TestDatabase::create();
    let url = DatabaseUrl::parse(&db.url).expect("url");
    concurrent_writers_and_a_reader(open(&url, 8).expect("open postgres"));
}
