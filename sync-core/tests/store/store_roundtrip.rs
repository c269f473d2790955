//! Puts, deletes, batches and reopening.

use crate::{dump, fresh, key, store_with};
use homevisit_sync_core::store::{
    Batch, DeviceStore, MAX_KEY_LEN, Namespace, StoreError, StoreKey,
};

#[test]
fn puts_and_deletes_read_back_after_reopening() {
    let (_dir, path) = fresh();
    let mut store = store_with(&path, &key(1), |b| {
        b.put(Namespace::Doc, b"a", b"one")
            .put(Namespace::Doc, b"b", b"two")
            .put(Namespace::Meta, b"a", b"meta");
    });
    let mut batch = Batch::new();
    batch
        .delete(Namespace::Doc, b"b")
        .put(Namespace::Doc, b"c", b"three");
    store.commit(batch).expect("commit");
    drop(store);

    let store = DeviceStore::open(&path, &key(1)).expect("reopen");
    assert_eq!(
        store.get(Namespace::Doc, b"a").expect("get"),
        Some(b"one".to_vec())
    );
    assert_eq!(store.get(Namespace::Doc, b"b").expect("get"), None);
    assert_eq!(
        store.get(Namespace::Meta, b"a").expect("get"),
        Some(b"meta".to_vec())
    );
    assert_eq!(
        store.keys(Namespace::Doc).expect("keys"),
        vec![b"a".to_vec(), b"c".to_vec()]
    );
    assert_eq!(
        store.scan(Namespace::Doc).expect("scan"),
        vec![
            (b"a".to_vec(), b"one".to_vec()),
            (b"c".to_vec(), b"three".to_vec())
        ]
    );
}

#[test]
fn namespaces_are_separate_key_spaces() {
    let (_dir, path) = fresh();
    let mut store = store_with(&path, &key(1), |b| {
        for ns in Namespace::ALL {
            b.put(ns, b"same key", format!("{ns:?}").as_bytes());
        }
    });
    for ns in Namespace::ALL {
        assert_eq!(
            store.get(ns, b"same key").expect("get"),
            Some(format!("{ns:?}").into_bytes())
        );
    }
    let mut batch = Batch::new();
    batch.delete(Namespace::Outbox, b"same key");
    store.commit(batch).expect("commit");
    assert_eq!(
        store.get(Namespace::Outbox, b"same key").expect("get"),
        None
    );
    assert!(
        store
            .get(Namespace::Doc, b"same key")
            .expect("get")
            .is_some()
    );
}

#[test]
fn later_operations_in_a_batch_win_over_earlier_ones() {
    let (_dir, path) = fresh();
    let store = store_with(&path, &key(1), |b| {
        b.put(Namespace::Doc, b"k", b"first")
            .put(Namespace::Doc, b"k", b"second")
            .put(Namespace::Doc, b"gone", b"x")
            .delete(Namespace::Doc, b"gone")
            .delete(Namespace::Doc, b"never there")
            .delete(Namespace::Doc, b"back")
            .put(Namespace::Doc, b"back", b"again");
    });
    assert_eq!(
        store.scan(Namespace::Doc).expect("scan"),
        vec![
            (b"back".to_vec(), b"again".to_vec()),
            (b"k".to_vec(), b"second".to_vec())
        ]
    );
    drop(store);
    DeviceStore::open(&path, &key(1)).expect("the digest agrees after a mixed batch");
}

#[test]
fn empty_keys_and_values_and_large_values_round_trip() {
    let (_dir, path) = fresh();
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let store = store_with(&path, &key(1), |b| {
        b.put(Namespace::Meta, b"", b"empty key")
            .put(Namespace::Meta, b"empty value", b"")
            .put(Namespace::Outbox, &[0xff; 32], &big);
    });
    drop(store);
    let store = DeviceStore::open(&path, &key(1)).expect("reopen");
    assert_eq!(
        store.get(Namespace::Meta, b"").expect("get"),
        Some(b"empty key".to_vec())
    );
    assert_eq!(
        store.get(Namespace::Meta, b"empty value").expect("get"),
        Some(Vec::new())
    );
    assert_eq!(
        store.get(Namespace::Outbox, &[0xff; 32]).expect("get"),
        Some(big)
    );
}

#[test]
fn a_batch_with_a_refused_operation_leaves_nothing() {
    let (_dir, path) = fresh();
    let mut store = store_with(&path, &key(1), |b| {
        b.put(Namespace::Doc, b"kept", b"before");
    });
    let before = dump(&store);
    let mut batch = Batch::new();
    batch
        .put(Namespace::Doc, b"kept", b"after")
        .put(Namespace::Doc, b"new", b"value")
        .put(
            Namespace::Doc,
            &vec![b'k'; MAX_KEY_LEN + 1],
            b"too long a key",
        )
        .delete(Namespace::Doc, b"kept");
    let err = store.commit(batch).expect_err("a key too long");
    assert!(
        matches!(err, StoreError::TooLarge { what: "key", len, .. } if len == MAX_KEY_LEN + 1),
        "{err}"
    );
    assert_eq!(dump(&store), before);
    drop(store);
    let store = DeviceStore::open(&path, &key(1)).expect("reopen");
    assert_eq!(dump(&store), before);
}

#[test]
fn an_empty_batch_changes_nothing() {
    let (_dir, path) = fresh();
    let mut store = DeviceStore::open(&path, &key(1)).expect("open");
    let batch = Batch::new();
    assert!(batch.is_empty());
    store.commit(batch).expect("commit");
    assert!(dump(&store).iter().all(|(_, rows)| rows.is_empty()));
}

#[test]
fn close_reports_success_and_the_store_reopens() {
    let (dir, path) = fresh();
    let store = store_with(&path, &key(1), |b| {
        b.put(Namespace::Doc, b"a", b"one");
    });
    store.close().expect("close");
    let names: Vec<String> = crate::files_in(dir.path())
        .into_iter()
        .map(|(n, _)| n)
        .collect();
    assert_eq!(
        names,
        vec!["device.db".to_owned()],
        "close folds the WAL back"
    );
    let store = DeviceStore::open(&path, &key(1)).expect("reopen");
    assert_eq!(
        store.get(Namespace::Doc, b"a").expect("get"),
        Some(b"one".to_vec())
    );
}

#[test]
fn the_store_can_move_to_another_thread() {
    fn assert_send<T: Send>() {}
    assert_send::<DeviceStore>();
    assert_send::<StoreKey>();
    assert_send::<Batch>();
}

#[test]
fn two_handles_on_one_file_both_commit_and_the_store_stays_whole() {
    // One handle per process is the rule, but a second one (another process of the app) must
    // not damage the store: each commit reads the current digest inside its transaction.
    let (_dir, path) = fresh();
    let mut a = DeviceStore::open(&path, &key(1)).expect("open a");
    let mut b = DeviceStore::open(&path, &key(1)).expect("open b");
    for i in 0..5u8 {
        let mut batch = Batch::new();
        batch.put(Namespace::Doc, &[b'a', i], &[i]);
        a.commit(batch).expect("commit a");
        let mut batch = Batch::new();
        batch
            .put(Namespace::Doc, &[b'b', i], &[i])
            .delete(Namespace::Doc, &[b'a', i]);
        b.commit(batch).expect("commit b");
    }
    assert_eq!(a.keys(Namespace::Doc).expect("keys").len(), 5);
    drop((a, b));
    let store = DeviceStore::open(&path, &key(1)).expect("reopen");
    assert_eq!(
        store.keys(Namespace::Doc).expect("keys"),
        (0..5u8).map(|i| vec![b'b', i]).collect::<Vec<_>>()
    );
}
