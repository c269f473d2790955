//! What the files show without the key: nothing but sizes and counts.

use crate::{contains, files_in, fresh, key, raw, store_with};
use homevisit_sync_core::store::{Batch, DeviceStore, Namespace, StoreError};

const CANARY: &str = "王小明CANARY";

/// Asserts no file in `dir` holds `needle`, naming the file that does.
fn assert_nowhere(dir: &std::path::Path, needle: &[u8], when: &str) {
    for (name, bytes) in files_in(dir) {
        assert!(!contains(&bytes, needle), "{when}: found in {name}");
    }
}

#[test]
fn a_canary_childs_name_is_in_no_file_of_the_store_open_closed_or_wiped() {
    let (dir, path) = fresh();
    let canary = CANARY.as_bytes();
    let mut note = b"visit note: ".to_vec();
    note.extend_from_slice(canary);
    let mut store = store_with(&path, &key(1), |b| {
        b.put(Namespace::Doc, canary, &note)
            .put(Namespace::Summary, canary, canary)
            .put(Namespace::Meta, b"last child", canary)
            .put(Namespace::Outbox, &[7; 32], &note.repeat(500));
    });
    let names: Vec<String> = files_in(dir.path()).into_iter().map(|(n, _)| n).collect();
    assert!(
        names.iter().any(|n| n.ends_with("-wal")),
        "the open store has its WAL: {names:?}"
    );
    assert_nowhere(dir.path(), canary, "open store");

    let mut batch = Batch::new();
    batch.put(Namespace::Doc, b"other", &note);
    store.commit(batch).expect("commit");
    assert_nowhere(dir.path(), canary, "open store after a second commit");
    drop(store);
    assert_nowhere(dir.path(), canary, "closed store");

    let mut store = DeviceStore::open(&path, &key(1)).expect("reopen");
    assert_eq!(
        store.get(Namespace::Doc, canary).expect("get"),
        Some(note.clone())
    );
    let mut batch = Batch::new();
    batch
        .delete(Namespace::Doc, canary)
        .delete(Namespace::Summary, canary)
        .delete(Namespace::Meta, b"last child");
    store.commit(batch).expect("delete");
    assert_nowhere(dir.path(), canary, "open store after delete");
    store.wipe().expect("wipe");
    assert_eq!(files_in(dir.path()), Vec::new(), "wipe left files behind");
}

#[test]
fn a_deleted_record_is_overwritten_in_the_file() {
    let (dir, path) = fresh();
    let store = store_with(&path, &key(1), |b| {
        b.put(Namespace::Doc, b"kept", &[1; 3000])
            .put(Namespace::Doc, b"deleted", &[2; 3000]);
    });
    store.close().expect("close");
    // The sealed bytes as they sit in the file.
    let sealed: Vec<Vec<u8>> = raw(&path)
        .prepare("SELECT v FROM rows")
        .and_then(|mut s| s.query_map([], |r| r.get(0))?.collect())
        .expect("sealed values");
    let bytes = std::fs::read(&path).expect("read");
    for v in &sealed {
        assert!(
            contains(&bytes, &v[..64]),
            "the sealed value is in the file"
        );
    }

    let mut store = DeviceStore::open(&path, &key(1)).expect("reopen");
    let mut batch = Batch::new();
    batch.delete(Namespace::Doc, b"deleted");
    store.commit(batch).expect("delete");
    store.close().expect("close");
    let bytes = std::fs::read(&path).expect("read");
    let still = sealed.iter().filter(|v| contains(&bytes, &v[..64])).count();
    assert_eq!(still, 1, "only the kept record's ciphertext remains");
    assert_eq!(files_in(dir.path()).len(), 1);
}

#[test]
fn row_keys_are_not_stored_in_clear_and_equal_values_do_not_look_equal() {
    let (_dir, path) = fresh();
    let store = store_with(&path, &key(1), |b| {
        b.put(Namespace::Doc, b"child-0001", b"same")
            .put(Namespace::Doc, b"child-0002", b"same");
    });
    store.close().expect("close");
    let bytes = std::fs::read(&path).expect("read");
    assert!(!contains(&bytes, b"child-000"));
    let rows: Vec<(Vec<u8>, Vec<u8>)> = raw(&path)
        .prepare("SELECT k, v FROM rows")
        .and_then(|mut s| s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
        .expect("rows");
    assert_eq!(rows.len(), 2);
    assert_ne!(rows[0].1, rows[1].1, "a fresh nonce per write");
}

#[test]
fn wipe_removes_every_file_and_a_new_store_starts_empty() {
    let (dir, path) = fresh();
    let store = store_with(&path, &key(1), |b| {
        b.put(Namespace::Doc, b"a", b"one");
    });
    store.wipe().expect("wipe");
    assert_eq!(files_in(dir.path()), Vec::new());
    let store = DeviceStore::open(&path, &key(1)).expect("a new store");
    assert_eq!(store.get(Namespace::Doc, b"a").expect("get"), None);
}

#[test]
fn delete_files_removes_a_store_whose_key_is_lost() {
    let (dir, path) = fresh();
    let store = store_with(&path, &key(1), |b| {
        b.put(Namespace::Doc, b"a", b"one");
    });
    drop(store);
    assert!(matches!(
        DeviceStore::open(&path, &key(2)),
        Err(StoreError::WrongKey)
    ));
    DeviceStore::delete_files(&path).expect("delete files");
    assert_eq!(files_in(dir.path()), Vec::new());
    DeviceStore::delete_files(&path).expect("nothing left to delete is not an error");
}

#[test]
fn debug_output_shows_no_key_bytes_no_keys_and_no_values() {
    let (_dir, path) = fresh();
    let secret = key(0xab);
    let shown = format!("{secret:?}");
    assert!(!shown.contains("171") && !shown.contains("ab"), "{shown}");
    let mut batch = Batch::new();
    batch.put(Namespace::Doc, CANARY.as_bytes(), CANARY.as_bytes());
    let shown = format!("{batch:?}");
    assert!(
        !shown.contains("CANARY") && !shown.contains("231"),
        "{shown}"
    );
    let mut store = DeviceStore::open(&path, &secret).expect("open");
    store.commit(batch).expect("commit");
    let shown = format!("{store:?}");
    assert!(
        !shown.contains("CANARY") && !shown.contains("171"),
        "{shown}"
    );
}

#[test]
fn a_wipe_cut_short_is_damage_that_delete_files_finishes() {
    let (dir, path) = fresh();
    drop(store_with(&path, &key(1), |b| {
        b.put(Namespace::Doc, b"a", b"one");
    }));
    // What a wipe killed after its overwrite and before removing the files leaves.
    raw(&path)
        .execute_batch("DELETE FROM rows; DELETE FROM header;")
        .expect("half a wipe");
    let got = DeviceStore::open(&path, &key(1));
    assert!(matches!(got, Err(StoreError::Corrupt { .. })), "{got:?}");
    DeviceStore::delete_files(&path).expect("delete files");
    assert_eq!(files_in(dir.path()), Vec::new());
    let store = DeviceStore::open(&path, &key(1)).expect("a new store");
    assert_eq!(
        store.keys(Namespace::Doc).expect("keys"),
        Vec::<Vec<u8>>::new()
    );
}
