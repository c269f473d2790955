//! Wrong keys, damaged files and tampered rows: a typed error or the true value, never another
//! value, never a panic.

use crate::{fresh, key, raw, store_with};
use homevisit_sync_core::store::{Batch, DeviceStore, Namespace, STORE_VERSION, StoreError};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::path::Path;

type Contents = BTreeMap<(Namespace, Vec<u8>), Vec<u8>>;

/// A closed store with rows of varied sizes in several namespaces, one spilling over pages.
fn sample_store(path: &Path) -> Contents {
    let mut contents = Contents::new();
    let mut batch = Batch::new();
    for i in 0..40u32 {
        let k = format!("child-{i:04}").into_bytes();
        let v: Vec<u8> = (0..(20 + i * 30)).map(|j| (i + j) as u8).collect();
        batch.put(Namespace::Doc, &k, &v);
        contents.insert((Namespace::Doc, k), v);
    }
    for (ns, k, v) in [
        (Namespace::Meta, b"cursor".to_vec(), b"1234".to_vec()),
        (Namespace::PeerState, b"child-0001".to_vec(), vec![9; 100]),
        (Namespace::Outbox, vec![3; 32], vec![4; 6_000]),
    ] {
        batch.put(ns, &k, &v);
        contents.insert((ns, k), v);
    }
    let mut store = DeviceStore::open(path, &key(1)).expect("open");
    store.commit(batch).expect("commit");
    store.close().expect("close");
    contents
}

/// What reading a damaged store gave.
#[derive(Debug, Default)]
struct Outcome {
    refused_at_open: usize,
    read_errors: usize,
    true_values: usize,
    missing: usize,
}

/// Opens the store at `path` and reads everything, asserting that whatever comes back is the
/// true value. `Err` from every call is fine; so is the unchanged value.
fn read_all_checked(path: &Path, truth: &Contents, outcome: &mut Outcome, what: &str) {
    let store = match DeviceStore::open(path, &key(1)) {
        Ok(store) => store,
        Err(_) => {
            outcome.refused_at_open += 1;
            return;
        }
    };
    for ((ns, k), v) in truth {
        match store.get(*ns, k) {
            Ok(Some(got)) => {
                assert_eq!(&got, v, "{what}: get gave another value");
                outcome.true_values += 1;
            }
            Ok(None) => outcome.missing += 1,
            Err(_) => outcome.read_errors += 1,
        }
    }
    for ns in Namespace::ALL {
        if let Ok(rows) = store.scan(ns) {
            for (k, v) in rows {
                assert_eq!(
                    truth.get(&(ns, k)),
                    Some(&v),
                    "{what}: scan gave a row that was never stored"
                );
            }
        }
        if let Ok(keys) = store.keys(ns) {
            for k in keys {
                assert!(
                    truth.contains_key(&(ns, k)),
                    "{what}: keys gave an unknown key"
                );
            }
        }
    }
}

/// Replaces the store's files with one database file holding `bytes`.
fn write_db(path: &Path, bytes: &[u8]) {
    for suffix in ["-wal", "-shm"] {
        let mut side = path.as_os_str().to_owned();
        side.push(suffix);
        let _ = std::fs::remove_file(side);
    }
    std::fs::write(path, bytes).expect("write");
}

#[test]
fn a_wrong_key_is_refused_at_open() {
    let (_dir, path) = fresh();
    sample_store(&path);
    let before = std::fs::read(&path).expect("read");
    assert!(matches!(
        DeviceStore::open(&path, &key(2)),
        Err(StoreError::WrongKey)
    ));
    let store = DeviceStore::open(&path, &key(1)).expect("the right key still opens it");
    drop(store);
    assert_eq!(std::fs::read(&path).expect("read").len(), before.len());
}

#[test]
fn a_damaged_key_check_is_damage_not_a_wrong_key() {
    for column in ["key_check", "fingerprint", "salt"] {
        let (_dir, path) = fresh();
        sample_store(&path);
        raw(&path)
            .execute(
                &format!("UPDATE header SET {column} = CAST(zeroblob(length({column})) AS BLOB)"),
                [],
            )
            .expect("tamper");
        let got = DeviceStore::open(&path, &key(1));
        assert!(
            matches!(got, Err(StoreError::Corrupt { .. })),
            "{column}: {got:?}"
        );
    }
}

#[test]
fn a_row_copied_over_another_is_detected() {
    let (_dir, path) = fresh();
    sample_store(&path);
    let conn = raw(&path);
    let ids: Vec<(i64, Vec<u8>)> = conn
        .prepare("SELECT ns, id FROM rows WHERE ns = 1 ORDER BY id LIMIT 2")
        .and_then(|mut s| s.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect())
        .expect("ids");
    conn.execute(
        "UPDATE rows SET k = (SELECT k FROM rows WHERE ns = 1 AND id = ?1),
                         v = (SELECT v FROM rows WHERE ns = 1 AND id = ?1)
         WHERE ns = 1 AND id = ?2",
        rusqlite::params![ids[0].1, ids[1].1],
    )
    .expect("tamper");
    drop(conn);
    let store = DeviceStore::open(&path, &key(1)).expect("the set of rows is unchanged");
    let results: Vec<_> = (0..40)
        .map(|i| store.get(Namespace::Doc, format!("child-{i:04}").as_bytes()))
        .collect();
    assert_eq!(
        results
            .iter()
            .filter(|r| matches!(r, Err(StoreError::Corrupt { .. })))
            .count(),
        1,
        "exactly the overwritten row fails"
    );
    assert!(matches!(
        store.scan(Namespace::Doc),
        Err(StoreError::Corrupt { .. })
    ));
    assert!(matches!(
        store.keys(Namespace::Doc),
        Err(StoreError::Corrupt { .. })
    ));
}

#[test]
fn a_row_removed_added_or_moved_to_another_namespace_is_detected_at_open() {
    let tampering = [
        "DELETE FROM rows WHERE id = (SELECT min(id) FROM rows)",
        "UPDATE rows SET ns = 5 WHERE id = (SELECT min(id) FROM rows WHERE ns = 1)",
        "INSERT INTO rows SELECT ns, zeroblob(32), k, v FROM rows LIMIT 1",
        "UPDATE rows SET id = zeroblob(32) WHERE id = (SELECT min(id) FROM rows)",
    ];
    for sql in tampering {
        let (_dir, path) = fresh();
        sample_store(&path);
        raw(&path).execute(sql, []).expect("tamper");
        let got = DeviceStore::open(&path, &key(1));
        assert!(
            matches!(got, Err(StoreError::Corrupt { .. })),
            "{sql}: {got:?}"
        );
    }
}

#[test]
fn a_row_from_another_store_under_the_same_key_does_not_open() {
    let (_dir, a) = fresh();
    let (_dir2, b) = fresh();
    for path in [&a, &b] {
        drop(store_with(path, &key(1), |batch| {
            batch.put(Namespace::Doc, b"child", path.to_string_lossy().as_bytes());
        }));
    }
    let foreign: Vec<u8> = raw(&b)
        .query_row("SELECT v FROM rows", [], |r| r.get(0))
        .expect("foreign row");
    raw(&a)
        .execute("UPDATE rows SET v = ?1", [foreign])
        .expect("tamper");
    let store = DeviceStore::open(&a, &key(1)).expect("open");
    assert!(matches!(
        store.get(Namespace::Doc, b"child"),
        Err(StoreError::Corrupt { .. })
    ));
}

#[test]
fn a_column_of_the_wrong_type_is_damage() {
    let (_dir, path) = fresh();
    sample_store(&path);
    raw(&path)
        .execute("UPDATE rows SET v = 42 WHERE ns = 3", [])
        .expect("tamper");
    let store = DeviceStore::open(&path, &key(1)).expect("open");
    let got = store.get(Namespace::Meta, b"cursor");
    assert!(matches!(got, Err(StoreError::Corrupt { .. })), "{got:?}");
}

#[test]
fn a_store_from_a_newer_app_is_refused() {
    let (_dir, path) = fresh();
    sample_store(&path);
    raw(&path)
        .execute("UPDATE header SET version = 99", [])
        .expect("bump");
    let got = DeviceStore::open(&path, &key(1));
    assert!(
        matches!(got, Err(StoreError::NewerVersion { found: 99, supported }) if supported == STORE_VERSION),
        "{got:?}"
    );
    // Also when the newer format changed the rest of the schema.
    raw(&path)
        .execute_batch("ALTER TABLE rows ADD COLUMN extra BLOB; DROP TABLE rows;")
        .expect("reshape");
    assert!(matches!(
        DeviceStore::open(&path, &key(1)),
        Err(StoreError::NewerVersion { found: 99, .. })
    ));
}

#[test]
fn a_foreign_sqlite_database_is_refused_and_left_alone() {
    let (_dir, path) = fresh();
    raw(&path)
        .execute_batch("CREATE TABLE contacts (name TEXT); INSERT INTO contacts VALUES ('x');")
        .expect("foreign db");
    let got = DeviceStore::open(&path, &key(1));
    assert!(matches!(got, Err(StoreError::Corrupt { .. })), "{got:?}");
    let name: String = raw(&path)
        .query_row("SELECT name FROM contacts", [], |r| r.get(0))
        .expect("the foreign table is intact");
    assert_eq!(name, "x");
}

#[test]
fn a_planted_trigger_or_table_is_refused() {
    for sql in [
        "CREATE TRIGGER spy AFTER INSERT ON rows BEGIN DELETE FROM rows; END",
        "CREATE TABLE extra (x)",
        "CREATE INDEX by_value ON rows (v)",
    ] {
        let (_dir, path) = fresh();
        sample_store(&path);
        raw(&path).execute_batch(sql).expect("plant");
        let got = DeviceStore::open(&path, &key(1));
        assert!(
            matches!(got, Err(StoreError::Corrupt { .. })),
            "{sql}: {got:?}"
        );
    }
}

#[test]
fn flipped_bytes_in_the_database_file_give_an_error_or_the_true_value() {
    let (_dir, path) = fresh();
    let truth = sample_store(&path);
    let clean = std::fs::read(&path).expect("read");
    let mut outcome = Outcome::default();
    // Every byte of SQLite's file header, then some 300 bytes spread over the file.
    let step = (clean.len() / 300).max(1);
    let offsets = (0..100).chain((100..clean.len()).step_by(step));
    let started = std::time::Instant::now();
    for (i, at) in offsets.enumerate() {
        let mask = [0x01, 0x80, 0xff][i % 3];
        let mut bytes = clean.clone();
        bytes[at] ^= mask;
        write_db(&path, &bytes);
        read_all_checked(
            &path,
            &truth,
            &mut outcome,
            &format!("byte {at} ^ {mask:#x}"),
        );
    }
    eprintln!("{} bytes, {:?}", clean.len(), started.elapsed());
    eprintln!("flipped bytes: {outcome:?}");
    assert!(outcome.refused_at_open + outcome.read_errors > 0);
    // The digest checked at open catches a row that a damaged page hides from a scan.
    assert_eq!(
        outcome.missing, 0,
        "a flipped byte hid a row without an error"
    );
}

#[test]
fn random_bytes_as_a_database_file_are_a_typed_error() {
    let (_dir, path) = fresh();
    let mut state = 0x1234_5678u32;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        state
    };
    for len in [0usize, 1, 100, 512, 4096, 8192, 65536] {
        let mut bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        write_db(&path, &bytes);
        let got = DeviceStore::open(&path, &key(1));
        if len == 0 {
            // An empty file is a new store.
            assert!(got.is_ok(), "{got:?}");
            continue;
        }
        assert!(got.is_err(), "{len} random bytes opened");
        // Random pages behind a valid SQLite file header.
        if len >= 100 {
            bytes[..16].copy_from_slice(b"SQLite format 3\0");
            write_db(&path, &bytes);
            let mut outcome = Outcome::default();
            read_all_checked(&path, &Contents::new(), &mut outcome, "random pages");
        }
    }
}

/// A mutation of a database file.
#[derive(Debug, Clone)]
enum Mutation {
    Flip { at: usize, mask: u8 },
    Overwrite { at: usize, bytes: Vec<u8> },
    Truncate { to: usize },
    ZeroPage { page: usize },
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        4 => (any::<usize>(), 1u8..).prop_map(|(at, mask)| Mutation::Flip { at, mask }),
        2 => (any::<usize>(), proptest::collection::vec(any::<u8>(), 1..64))
            .prop_map(|(at, bytes)| Mutation::Overwrite { at, bytes }),
        1 => any::<usize>().prop_map(|to| Mutation::Truncate { to }),
        1 => any::<usize>().prop_map(|page| Mutation::ZeroPage { page }),
    ]
}

fn apply(bytes: &mut Vec<u8>, mutation: &Mutation) {
    if bytes.is_empty() {
        return;
    }
    match mutation {
        Mutation::Flip { at, mask } => {
            let at = at % bytes.len();
            bytes[at] ^= mask;
        }
        Mutation::Overwrite { at, bytes: new } => {
            let at = at % bytes.len();
            let end = (at + new.len()).min(bytes.len());
            bytes[at..end].copy_from_slice(&new[..end - at]);
        }
        Mutation::Truncate { to } => bytes.truncate(to % bytes.len()),
        Mutation::ZeroPage { page } => {
            let pages = bytes.len().div_ceil(4096);
            let start = (page % pages) * 4096;
            let end = (start + 4096).min(bytes.len());
            bytes[start..end].fill(0);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn mutated_database_files_give_a_typed_error_or_true_values(
        mutations in proptest::collection::vec(mutation(), 1..6)
    ) {
        let (_dir, path) = fresh();
        let truth = sample_store(&path);
        let mut bytes = std::fs::read(&path).expect("read");
        for m in &mutations {
            apply(&mut bytes, m);
        }
        write_db(&path, &bytes);
        let mut outcome = Outcome::default();
        read_all_checked(&path, &truth, &mut outcome, &format!("{mutations:?}"));
    }
}

#[test]
fn opening_a_damaged_store_leaves_the_others_contents_alone() {
    // A store that refuses to open must not be "repaired" into an empty one on the next try.
    let (_dir, path) = fresh();
    let truth = sample_store(&path);
    raw(&path)
        .execute("UPDATE header SET digest = zeroblob(72)", [])
        .expect("tamper");
    assert!(DeviceStore::open(&path, &key(1)).is_err());
    assert!(DeviceStore::open(&path, &key(1)).is_err(), "still refused");
    let rows: i64 = raw(&path)
        .query_row("SELECT count(*) FROM rows", [], |r| r.get(0))
        .expect("count");
    assert_eq!(rows as usize, truth.len());
}
