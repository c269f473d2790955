//! Tests that need the store's insides. The behaviour seen from outside is tested in
//! `sync-core/tests/store/`.

use super::*;

fn fresh() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("device.db");
    (dir, path)
}

#[test]
fn a_batch_that_fails_midway_inside_sqlite_leaves_nothing() {
    let (_dir, path) = fresh();
    let key = StoreKey::new([1; 32]);
    let mut store = DeviceStore::open(&path, &key).expect("open");
    let mut before = Batch::new();
    before.put(Namespace::Doc, b"kept", b"before");
    store.commit(before).expect("commit");
    // SQLite itself refuses the batch's third write, after two have gone into the transaction.
    store
        .conn
        .execute_batch(&format!(
            "CREATE TEMP TRIGGER refuse BEFORE INSERT ON main.rows WHEN NEW.ns = {}
             BEGIN SELECT RAISE(ABORT, 'injected failure'); END;",
            Namespace::Outbox.code()
        ))
        .expect("trigger");
    let mut batch = Batch::new();
    batch
        .put(Namespace::Doc, b"kept", b"overwritten")
        .put(Namespace::Doc, b"new", b"value")
        .put(Namespace::Outbox, b"refused", b"value")
        .delete(Namespace::Doc, b"kept");
    let err = store
        .commit(batch)
        .expect_err("the trigger refuses the batch");
    assert!(matches!(err, StoreError::Sqlite { .. }), "{err}");
    assert_eq!(
        store.get(Namespace::Doc, b"kept").expect("get"),
        Some(b"before".to_vec())
    );
    assert_eq!(store.get(Namespace::Doc, b"new").expect("get"), None);
    drop(store);
    let store = DeviceStore::open(&path, &key).expect("reopen: the digest still agrees");
    assert_eq!(
        store.scan(Namespace::Doc).expect("scan"),
        vec![(b"kept".to_vec(), b"before".to_vec())]
    );
}

#[test]
fn two_stores_under_one_key_share_no_row_id_and_no_record() {
    let key = StoreKey::new([5; 32]);
    let a = Keys::derive(&key, &crypto::new_salt());
    let b = Keys::derive(&key, &crypto::new_salt());
    let id = a.row_id(1, b"child-1");
    assert_ne!(id, b.row_id(1, b"child-1"));
    assert_ne!(id, a.row_id(2, b"child-1"), "namespaces hash apart");
    let sealed = a.seal(Role::Value, 1, &id, b"value").expect("seal");
    assert_eq!(
        a.open(Role::Value, 1, &id, &sealed),
        Some(b"value".to_vec())
    );
    assert_eq!(b.open(Role::Value, 1, &id, &sealed), None);
    assert_eq!(a.open(Role::Key, 1, &id, &sealed), None, "roles are bound");
    assert_eq!(
        a.open(Role::Value, 2, &id, &sealed),
        None,
        "namespaces are bound"
    );
}

#[test]
fn sqlite_keeps_the_schema_text_open_compares_against() {
    let (_dir, path) = fresh();
    let store = DeviceStore::open(&path, &StoreKey::new([1; 32])).expect("open");
    let sql: Vec<String> = store
        .conn
        .prepare("SELECT sql FROM sqlite_schema ORDER BY name")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .expect("schema");
    assert_eq!(sql, vec![HEADER_SQL.to_owned(), ROWS_SQL.to_owned()]);
    let mode: String = store
        .conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .expect("journal mode");
    assert_eq!(mode, "wal");
    let sync: i64 = store
        .conn
        .query_row("PRAGMA synchronous", [], |r| r.get(0))
        .expect("synchronous");
    assert_eq!(sync, 2, "synchronous = FULL");
    let secure: i64 = store
        .conn
        .query_row("PRAGMA secure_delete", [], |r| r.get(0))
        .expect("secure_delete");
    assert_eq!(secure, 1);
}
