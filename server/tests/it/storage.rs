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
                let profile = child_profile();
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

/// Two directors' phones add visits to the same file at the same moments, often enough that
/// the file is compacted along the way: every visit is in the file at the end. Merges that
/// overlap on PostgreSQL must wait for each other, not write one over the other.
fn concurrent_merges_into_one_file(pool: DbPool, cache: Option<DocCache>) {
    use homevisit_sync_core::demo::Generator;
    use homevisit_sync_core::file::ChildId;
    use homevisit_sync_core::sync::device::{Outcome, Replica};
    use homevisit_sync_core::sync::{DeviceId, Scope};
    use std::sync::Arc;
    const VISITS: usize = 24;
    let scope = Arc::new(Scope::new(["220303100200"]));
    let cache = Arc::new(cache);
    let sync = move |pool: &DbPool, cache: &Option<DocCache>, replica: &mut Replica, device| {
        for _ in 0..10 {
            let request = Request::decode(&replica.request()).expect("decode");
            let ctx = Context {
                device,
                user: "d1",
                author: "d1",
                scope: &scope,
                now_ms: 0,
                page_bytes: 1 << 20,
                revoked: false,
            };
            let env = Env {
                cache: cache.as_ref(),
                ..Env::default()
            };
            let mut conn = pool.get().expect("conn");
            let response = apply(&mut conn, &ctx, &request, &env)
                .expect("a merge that overlaps another is applied, not refused");
            if replica.receive(&response.encode(), 0).expect("apply") == Outcome::Done {
                return;
            }
        }
        panic!("the sync did not settle in ten rounds");
    };
    let id = ChildId::new();
    let profile = child_profile();
    let at = chrono::DateTime::from_timestamp(1_790_000_000, 0).expect("time");
    let mut maker = Replica::new([1; 16]);
    maker.create(id, &profile, "d1", at).expect("create");
    sync(&pool, &cache, &mut maker, DeviceId::new());
    let writers: Vec<_> = (2..4u8)
        .map(|n| {
            let (pool, cache, sync) = (pool.clone(), cache.clone(), sync.clone());
            std::thread::spawn(move || {
                let mut replica = Replica::new([n; 16]);
                let device = DeviceId::new();
                sync(&pool, &cache, &mut replica, device);
                let mut g = Generator::new(u64::from(n));
                let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 2).expect("day");
                for _ in 0..VISITS {
                    let file = replica.file_mut(&id).expect("the file reached the phone");
                    g.add_visit(file, day, "d1").expect("visit");
                    sync(&pool, &cache, &mut replica, device);
                }
            })
        })
        .collect();
    for t in writers {
        t.join().expect("writer");
    }
    let mut reader = Replica::new([9; 16]);
    sync(&pool, &cache, &mut reader, DeviceId::new());
    let view = reader.file(&id).expect("the file").view().expect("view");
    assert_eq!(
        view.records.len(),
        2 * VISITS,
        "visits were lost when merges overlapped"
    );
}

#[test]
fn overlapping_merges_into_one_file_on_postgres_lose_no_visit() {
    let db = TestDatabase::create();
    let url = DatabaseUrl::parse(&db.url).expect("url");
    concurrent_merges_into_one_file(open(&url, 8).expect("open postgres"), None);
}

#[test]
fn overlapping_merges_into_one_file_on_postgres_with_the_document_cache_lose_no_visit() {
    let db = TestDatabase::create();
    let url = DatabaseUrl::parse(&db.url).expect("url");
    concurrent_merges_into_one_file(
        open(&url, 8).expect("open postgres"),
        Some(DocCache::new(64)),
    );
}

#[test]
fn overlapping_merges_into_one_file_on_sqlite_lose_no_visit() {
    let dir = tempfile::tempdir().expect("temp dir");
    concurrent_merges_into_one_file(sqlite(&dir), Some(DocCache::new(64)));
}

/// A sync reads the head of the sequence, then the files numbered up to it. When another sync
/// renumbers a file in between, the read must still list the file (at its new number): a new
/// phone's first sync used to end without it, and had it only from the next sync.
fn a_file_renumbered_past_the_head_read_is_still_listed(pool: DbPool) {
    use homevisit_server::store::sync::SqlSyncStore;
    use homevisit_sync_core::demo::Generator;
    use homevisit_sync_core::sync::Scope;
    use homevisit_sync_core::sync::server::ServerStore;
    let scope = Scope::new(["220303100200"]);
    let (mut phone, device) = one_synced_phone(&pool, 1);
    let id = phone.file_ids()[0];
    let mut conn = pool.get().expect("conn");
    let head_read = SqlSyncStore::new(&mut conn).head_seq().expect("head");
    drop(conn);

    let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 2).expect("day");
    Generator::new(1)
        .add_visit(phone.file_mut(&id).expect("file"), day, "d1")
        .expect("visit");
    sync_until_done(&pool, &mut phone, device);

    let mut conn = pool.get().expect("conn");
    let mut store = SqlSyncStore::new(&mut conn);
    let now = store.head_seq().expect("head");
    assert!(now > head_read, "the visit's merge renumbered the file");
    assert_eq!(
        store.changed_since(&scope, 0, head_read).expect("read"),
        vec![(id, now)],
        "the renumbered file is listed at its new number"
    );
}

#[test]
fn a_file_renumbered_past_the_head_a_sync_read_is_still_listed_on_sqlite() {
    let dir = tempfile::tempdir().expect("temp dir");
    a_file_renumbered_past_the_head_read_is_still_listed(sqlite(&dir));
}

#[test]
fn a_file_renumbered_past_the_head_a_sync_read_is_still_listed_on_postgres() {
    let db = TestDatabase::create();
    let url = DatabaseUrl::parse(&db.url).expect("url");
    a_file_renumbered_past_the_head_read_is_still_listed(open(&url, 2).expect("open postgres"));
}

/// A phone with `files` new files, synced until the server has nothing more for it.
fn one_synced_phone(
    pool: &DbPool,
    files: usize,
) -> (homevisit_sync_core::sync::device::Replica, DeviceId) {
    use homevisit_sync_core::file::ChildId;
    use homevisit_sync_core::sync::device::Replica;
    let mut phone = Replica::new([1; 16]);
    let device = DeviceId::new();
    for _ in 0..files {
        phone
            .create(
                ChildId::new(),
                &child_profile(),
                "d1",
                chrono::DateTime::from_timestamp(1_790_000_000, 0).expect("time"),
            )
            .expect("create");
    }
    sync_until_done(pool, &mut phone, device);
    (phone, device)
}

fn child_profile() -> homevisit_sync_core::file::Profile {
    serde_json::from_value(serde_json::json!({
        "name": "孩子", "sex": "male", "birth_date": "2015-01-01", "hukou_place": "铁东区",
        "address": "一组", "village_code": "220303100200", "registered_on": "2026-01-01"
    }))
    .expect("profile")
}

use homevisit_sync_core::sync::DeviceId;

/// Syncs the phone until the server has nothing more; returns every response.
fn sync_until_done(
    pool: &DbPool,
    phone: &mut homevisit_sync_core::sync::device::Replica,
    device: DeviceId,
) -> Vec<Response> {
    use homevisit_sync_core::sync::Scope;
    use homevisit_sync_core::sync::device::Outcome;
    let scope = Scope::new(["220303100200"]);
    let mut responses = Vec::new();
    for _ in 0..10 {
        let request = Request::decode(&phone.request()).expect("decode");
        let ctx = Context {
            device,
            user: "d1",
            author: "d1",
            scope: &scope,
            now_ms: 0,
            page_bytes: 1 << 20,
            revoked: false,
        };
        let mut conn = pool.get().expect("conn");
        let response = apply(&mut conn, &ctx, &request, &Env::default()).expect("sync");
        let outcome = phone.receive(&response.encode(), 0).expect("apply");
        responses.push(response);
        if outcome == Outcome::Done {
            return responses;
        }
    }
    panic!("the sync did not settle in ten rounds");
}

/// The device's stored memory of its files, as the SQL store keeps it.
fn stored_memory(pool: &DbPool, device: DeviceId) -> Option<Vec<u8>> {
    use diesel::prelude::*;
    use homevisit_server::store::schema::sync_devices;
    let mut conn = pool.get().expect("conn");
    sync_devices::table
        .filter(sync_devices::device_id.eq(device.0.to_string()))
        .select(sync_devices::memory)
        .first::<Option<Vec<u8>>>(&mut *conn)
        .expect("the device's row")
}

/// A server upgraded from per-file rows of device memory reads a device's rows on its next
/// sync, which sends the phone nothing it already holds, and moves them into the device's row.
fn a_devices_memory_in_per_file_rows_moves_into_its_row(pool: DbPool) {
    use diesel::prelude::*;
    use homevisit_server::store::schema::{sync_devices, sync_peer_documents};
    let (mut phone, device) = one_synced_phone(&pool, 3);
    let memory = stored_memory(&pool, device).expect("memory in the device's row");
    let peers = homevisit_sync_core::sync::peers::decode(&memory).expect("decode");
    assert_eq!(
        peers.len(),
        3,
        "the server remembers the phone's three files"
    );
    {
        let mut conn = pool.get().expect("conn");
        let d = device.0.to_string();
        for (id, peer) in &peers {
            let heads =
                |h: &[automerge::ChangeHash]| h.iter().flat_map(|h| h.0).collect::<Vec<u8>>();
            diesel::insert_into(sync_peer_documents::table)
                .values((
                    sync_peer_documents::device_id.eq(&d),
                    sync_peer_documents::document_id.eq(id.0.to_string()),
                    sync_peer_documents::known.eq(heads(&peer.known)),
                    sync_peer_documents::pending_token
                        .eq(peer.pending.as_ref().map(|(t, _)| i64::from(*t))),
                    sync_peer_documents::pending_heads
                        .eq(peer.pending.as_ref().map(|(_, h)| heads(h))),
                    sync_peer_documents::dropping_token.eq(peer.dropping.map(i64::from)),
                    sync_peer_documents::sync_state.eq(peer.sync_state.as_deref()),
                ))
                .execute(&mut *conn)
                .expect("a per-file row as before");
        }
        diesel::update(sync_devices::table.filter(sync_devices::device_id.eq(&d)))
            .set(sync_devices::memory.eq(None::<Vec<u8>>))
            .execute(&mut *conn)
            .expect("memory as before the upgrade");
    }

    let responses = sync_until_done(&pool, &mut phone, device);
    assert!(
        responses.iter().all(|r| r.docs.is_empty() && !r.resync),
        "the phone was sent what it holds, or resynced"
    );
    let moved = stored_memory(&pool, device).expect("memory back in the device's row");
    let mut moved = homevisit_sync_core::sync::peers::decode(&moved).expect("decode");
    let mut before = peers;
    moved.sort_by_key(|(id, _)| *id);
    before.sort_by_key(|(id, _)| *id);
    // The phone presented the cursor of the heads pending in the rows: they are known now.
    assert_eq!(
        moved
            .iter()
            .map(|(id, p)| (*id, &p.known))
            .collect::<Vec<_>>(),
        before
            .iter()
            .map(|(id, p)| (*id, p.pending.as_ref().map_or(&p.known, |(_, h)| h)))
            .collect::<Vec<_>>(),
        "the per-file rows' heads moved into the device's row"
    );
    assert!(moved.iter().all(|(_, p)| !p.known.is_empty()));
    let mut conn = pool.get().expect("conn");
    let left: i64 = sync_peer_documents::table
        .count()
        .get_result(&mut *conn)
        .expect("count");
    assert_eq!(left, 0, "the per-file rows were deleted");
}

/// A device's stored memory that does not decode costs that phone a resync, not a failed sync.
fn a_damaged_device_memory_is_answered_with_a_resync(pool: DbPool) {
    use diesel::prelude::*;
    use homevisit_server::store::schema::sync_devices;
    let (mut phone, device) = one_synced_phone(&pool, 3);
    {
        let mut conn = pool.get().expect("conn");
        diesel::update(
            sync_devices::table.filter(sync_devices::device_id.eq(device.0.to_string())),
        )
        .set(sync_devices::memory.eq(Some(vec![1u8, 5, 0xff])))
        .execute(&mut *conn)
        .expect("damage the memory");
    }
    let responses = sync_until_done(&pool, &mut phone, device);
    assert!(responses[0].resync, "the first answer is a resync");
    assert_eq!(phone.file_ids().len(), 3, "the phone keeps its three files");
    let memory = stored_memory(&pool, device).expect("memory rewritten");
    assert_eq!(
        homevisit_sync_core::sync::peers::decode(&memory)
            .expect("it decodes again")
            .len(),
        3
    );
}

#[test]
fn a_devices_memory_in_per_file_rows_moves_into_its_row_on_sqlite() {
    let dir = tempfile::tempdir().expect("temp dir");
    a_devices_memory_in_per_file_rows_moves_into_its_row(sqlite(&dir));
}

#[test]
fn a_devices_memory_in_per_file_rows_moves_into_its_row_on_postgres() {
    let db = TestDatabase::create();
    let url = DatabaseUrl::parse(&db.url).expect("url");
    a_devices_memory_in_per_file_rows_moves_into_its_row(open(&url, 2).expect("open postgres"));
}

#[test]
fn a_damaged_device_memory_is_answered_with_a_resync_on_sqlite() {
    let dir = tempfile::tempdir().expect("temp dir");
    a_damaged_device_memory_is_answered_with_a_resync(sqlite(&dir));
}

#[test]
fn a_damaged_device_memory_is_answered_with_a_resync_on_postgres() {
    let db = TestDatabase::create();
    let url = DatabaseUrl::parse(&db.url).expect("url");
    a_damaged_device_memory_is_answered_with_a_resync(open(&url, 2).expect("open postgres"));
}

/// A projected child row: id, name, last visit, open danger, police unreported, number, digest.
type ChildRow = (
    String,
    String,
    Option<String>,
    bool,
    bool,
    i64,
    Option<Vec<u8>>,
);
/// A projected record row: child, record, kind, date, author, voided, danger, danger found.
type RecordRow = (
    String,
    String,
    String,
    String,
    String,
    bool,
    bool,
    Option<String>,
);
/// A projected assertion row: child, assertion, attribute, value, present, effective,
/// recorded at, author.
type AttributeRow = (String, String, String, String, bool, String, i64, String);

/// Every projected row of the county, in key order: the file's rows as queries see them.
#[derive(Debug, PartialEq)]
struct Rows {
    children: Vec<ChildRow>,
    records: Vec<RecordRow>,
    attributes: Vec<AttributeRow>,
    photos: Vec<(String, String)>,
}

fn projected_rows(conn: &mut homevisit_server::store::DbConnection) -> Rows {
    use diesel::prelude::*;
    use homevisit_server::store::schema::{
        child_attributes as a, child_photos as p, child_records as r, children as c,
    };
    Rows {
        children: c::table
            .order(c::id)
            .select((
                c::id,
                c::name,
                c::last_home_visit,
                c::danger_open,
                c::police_unreported,
                c::seq,
                c::rules_digest,
            ))
            .load(conn)
            .expect("children"),
        records: r::table
            .order((r::child_id, r::record_id))
            .select((
                r::child_id,
                r::record_id,
                r::kind,
                r::date,
                r::author,
                r::voided,
                r::danger,
                r::danger_found,
            ))
            .load(conn)
            .expect("records"),
        attributes: a::table
            .order((a::child_id, a::assertion_id))
            .select((
                a::child_id,
                a::assertion_id,
                a::attr,
                a::value,
                a::present,
                a::effective,
                a::recorded_at,
                a::author,
            ))
            .load(conn)
            .expect("attributes"),
        photos: p::table
            .order((p::child_id, p::sha256))
            .select((p::child_id, p::sha256))
            .load(conn)
            .expect("photos"),
    }
}

/// A sync rewrites only the rows of the records and assertions its merges touched; what it
/// leaves must be what projecting the whole file writes: new visits, a correction, a void and
/// a new assertion, over two syncs, against the files' projection made from scratch.
fn the_rows_a_merge_writes_are_those_of_the_whole_file(pool: DbPool) {
    use diesel::prelude::*;
    use homevisit_server::store::children::{Projection, project};
    use homevisit_server::store::schema::{child_attributes, child_photos, child_records};
    use homevisit_sync_core::demo::{Generator, at};
    use homevisit_sync_core::file::{Assertion, AttrKind, RecordVersion};
    let (mut phone, device) = one_synced_phone(&pool, 2);
    let ids = phone.file_ids();
    let mut g = Generator::new(3);
    let day = chrono::NaiveDate::from_ymd_opt(2026, 11, 2).expect("date");
    let file = phone.file_mut(&ids[0]).expect("file");
    let first = g.add_visit(file, day, "d1").expect("visit");
    let second = g.add_visit(file, day, "d1").expect("visit");
    sync_until_done(&pool, &mut phone, device);

    let next = day.succ_opt().expect("date");
    let file = phone.file_mut(&ids[0]).expect("file");
    let corrected =
        RecordVersion::home_visit(next, "d1", at(next), g.findings()).with_notes("改正：日期有误");
    file.correct_record(first, &corrected, "d1", at(next))
        .expect("correct");
    file.void_record(second, "duplicate", "d1", at(next))
        .expect("void");
    let assertion = Assertion {
        attr: AttrKind::RiskFlag,
        value: "living_alone".into(),
        present: true,
        effective: next,
        recorded_at: at(next),
        by: "d1".into(),
    };
    file.assert_attribute(&assertion, "d1", at(next))
        .expect("assert");
    g.add_visit(file, next, "d1").expect("visit");
    let other = phone.file_mut(&ids[1]).expect("file");
    g.add_visit(other, next, "d1").expect("visit");
    sync_until_done(&pool, &mut phone, device);

    let mut conn = pool.get().expect("conn");
    let merged = projected_rows(&mut conn);
    assert!(
        merged
            .records
            .iter()
            .any(|r| r.1 == second.to_string() && r.5),
        "the void is projected"
    );
    assert_eq!(merged.attributes.len(), 1, "the new assertion is projected");
    diesel::delete(child_records::table)
        .execute(&mut *conn)
        .expect("clear");
    diesel::delete(child_attributes::table)
        .execute(&mut *conn)
        .expect("clear");
    diesel::delete(child_photos::table)
        .execute(&mut *conn)
        .expect("clear");
    for (id, seq) in merged.children.iter().map(|c| (&c.0, c.5)) {
        let id: homevisit_sync_core::file::ChildId =
            homevisit_sync_core::file::ChildId(id.parse().expect("uuid"));
        let view = phone.file(&id).expect("file").view().expect("view");
        let whole = Projection::of(&view, &view.summary(), None);
        project(&mut conn, &[(&whole, seq as u64)]).expect("project whole");
    }
    assert_eq!(
        projected_rows(&mut conn),
        merged,
        "the merges left the rows of the whole files"
    );
}

#[test]
fn the_rows_a_merge_writes_are_those_of_the_whole_file_on_sqlite() {
    let dir = tempfile::tempdir().expect("temp dir");
    the_rows_a_merge_writes_are_those_of_the_whole_file(sqlite(&dir));
}

#[test]
fn the_rows_a_merge_writes_are_those_of_the_whole_file_on_postgres() {
    let db = TestDatabase::create();
    let url = DatabaseUrl::parse(&db.url).expect("url");
    the_rows_a_merge_writes_are_those_of_the_whole_file(open(&url, 2).expect("open postgres"));
}
