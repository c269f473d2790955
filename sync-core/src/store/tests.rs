use super::*;
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn key(n: u8) -> StoreKey {
    StoreKey::new([n; 32])
}

fn fresh() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("device.db");
    (dir, path)
}

fn all_bytes_in(dir: &Path) -> Vec<u8> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read dir").flatten() {
        all.extend(std::fs::read(entry.path()).unwrap_or_default());
    }
    all
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

#[test]
fn puts_and_deletes_read_back_after_reopening() {
    let (_dir, path) = fresh();
    let mut s = DeviceStore::open(&path, &key(1)).expect("open");
    let mut b = Batch::new();
    b.put(Namespace::Doc, b"a", b"one")
        .put(Namespace::Doc, b"b", b"two")
        .put(Namespace::Meta, b"a", b"meta");
    s.commit(b).expect("commit");
    let mut b = Batch::new();
    b.delete(Namespace::Doc, b"b");
    s.commit(b).expect("commit");
    drop(s);
    let s = DeviceStore::open(&path, &key(1)).expect("reopen");
    assert_eq!(
        s.get(Namespace::Doc, b"a").expect("get"),
        Some(b"one".to_vec())
    );
    assert_eq!(s.get(Namespace::Doc, b"b").expect("get"), None);
    assert_eq!(
        s.get(Namespace::Meta, b"a").expect("get"),
        Some(b"meta".to_vec())
    );
    assert_eq!(s.keys(Namespace::Doc).expect("keys"), vec![b"a".to_vec()]);
}

#[test]
fn a_wrong_key_is_refused_at_open() {
    let (_dir, path) = fresh();
    DeviceStore::open(&path, &key(1)).expect("create");
    assert!(matches!(
        DeviceStore::open(&path, &key(2)),
        Err(StoreError::WrongKey)
    ));
}

#[test]
fn a_canary_childs_name_is_not_in_any_file_of_the_store() {
    let (dir, path) = fresh();
    let canary = "王小明CANARY".as_bytes();
    let mut s = DeviceStore::open(&path, &key(1)).expect("open");
    let mut b = Batch::new();
    b.put(Namespace::Doc, canary, canary)
        .put(Namespace::Summary, b"x", canary);
    s.commit(b).expect("commit");
    assert!(
        !contains(&all_bytes_in(dir.path()), canary),
        "canary in the open store's files"
    );
    drop(s);
    assert!(
        !contains(&all_bytes_in(dir.path()), canary),
        "canary in the closed store's files"
    );
    let s = DeviceStore::open(&path, &key(1)).expect("reopen");
    assert_eq!(
        s.get(Namespace::Doc, canary).expect("get"),
        Some(canary.to_vec())
    );
    s.wipe().expect("wipe");
    assert_eq!(
        std::fs::read_dir(dir.path()).expect("dir").count(),
        0,
        "wipe left files behind"
    );
}

#[test]
fn a_row_copied_over_another_is_detected() {
    let (_dir, path) = fresh();
    let mut s = DeviceStore::open(&path, &key(1)).expect("open");
    let mut b = Batch::new();
    b.put(Namespace::Doc, b"a", b"alpha")
        .put(Namespace::Doc, b"b", b"beta");
    s.commit(b).expect("commit");
    s.conn
        .execute_batch(
            "UPDATE rows SET value = (SELECT value FROM rows ORDER BY id LIMIT 1)
             WHERE id = (SELECT id FROM rows ORDER BY id DESC LIMIT 1)",
        )
        .expect("tamper");
    let a = s.get(Namespace::Doc, b"a");
    let b = s.get(Namespace::Doc, b"b");
    assert!(a.is_err() || b.is_err(), "a swapped row read back as data");
}

#[test]
fn flipped_bytes_in_the_file_are_an_error_or_the_true_value_never_another() {
    let (_dir, path) = fresh();
    let mut s = DeviceStore::open(&path, &key(1)).expect("open");
    let mut b = Batch::new();
    for i in 0..20u8 {
        b.put(Namespace::Doc, &[i], &[i; 300]);
    }
    s.commit(b).expect("commit");
    s.conn
        .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
        .expect("checkpoint");
    drop(s);
    let clean = std::fs::read(&path).expect("read");
    for at in (0..clean.len()).step_by(97) {
        let mut bytes = clean.clone();
        bytes[at] ^= 0x5a;
        std::fs::write(&path, &bytes).expect("write");
        let _ = std::fs::remove_file(path.with_extension("db-wal"));
        let Ok(s) = DeviceStore::open(&path, &key(1)) else {
            continue;
        };
        for i in 0..20u8 {
            if let Ok(Some(v)) = s.get(Namespace::Doc, &[i]) {
                assert_eq!(v, vec![i; 300], "byte {at} flipped gave a different value");
            }
        }
        let _ = s.scan(Namespace::Doc);
    }
}

#[test]
fn random_bytes_as_a_store_file_are_a_typed_error() {
    let (_dir, path) = fresh();
    let mut state = 0x1234_5678u32;
    let bytes: Vec<u8> = (0..8192)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state as u8
        })
        .collect();
    std::fs::write(&path, bytes).expect("write");
    assert!(DeviceStore::open(&path, &key(1)).is_err());
}

#[test]
fn a_store_from_a_newer_app_is_refused() {
    let (_dir, path) = fresh();
    let s = DeviceStore::open(&path, &key(1)).expect("open");
    s.conn
        .execute("UPDATE meta SET v = 99 WHERE k = 'version'", [])
        .expect("bump");
    drop(s);
    assert!(matches!(
        DeviceStore::open(&path, &key(1)),
        Err(StoreError::NewerVersion { found: 99 })
    ));
}

const CHILD: &str = "HOMEVISIT_STORE_CRASH_CHILD";
const KEYS: u8 = 6;

/// In the child process: commit numbered batches forever, reporting each once durable.
fn crash_writer(path: &Path) -> ! {
    let mut s = DeviceStore::open(path, &key(7)).expect("child open");
    let mut n: u64 = s
        .get(Namespace::Meta, b"n")
        .expect("child read")
        .map_or(0, |v| u64::from_le_bytes(v.try_into().expect("counter")));
    let out = std::io::stdout();
    loop {
        n += 1;
        let mut b = Batch::new();
        for k in 0..KEYS {
            // A large value per key so that a kill often lands inside a commit.
            let mut v = n.to_le_bytes().to_vec();
            v.resize(4096 + usize::from(k) * 512, k);
            b.put(Namespace::Doc, &[k], &v);
        }
        b.put(Namespace::Meta, b"n", &n.to_le_bytes());
        s.commit(b).expect("child commit");
        use std::io::Write;
        let mut lock = out.lock();
        let _ = writeln!(lock, "{n}");
        let _ = lock.flush();
    }
}

#[test]
fn a_process_killed_while_writing_reopens_at_its_last_committed_batch() {
    if let Ok(path) = std::env::var(CHILD) {
        crash_writer(Path::new(&path));
    }
    let (_dir, path) = fresh();
    let mut rounds = 0;
    let mut last_seen = 0u64;
    let mut seed = 0x2545_F491u32;
    while rounds < 25 {
        rounds += 1;
        let mut child = Command::new(std::env::current_exe().expect("exe"))
            .args([
                "--exact",
                "store::tests::a_process_killed_while_writing_reopens_at_its_last_committed_batch",
                "--nocapture",
                "--test-threads",
                "1",
            ])
            .env(CHILD, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn writer");
        let stdout = child.stdout.take().expect("stdout");
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        // Kill after a varying number of durable commits: the kill lands at an arbitrary point
        // of the next one.
        let stop_after = 1 + (seed % 12) as usize;
        let mut reported = 0u64;
        for line in BufReader::new(stdout).lines().take(stop_after) {
            if let Ok(n) = line.expect("line").trim().parse() {
                reported = n;
            }
        }
        child.kill().expect("kill");
        child.wait().expect("wait");
        let s = DeviceStore::open(&path, &key(7)).expect("reopens after a kill");
        let n = u64::from_le_bytes(
            s.get(Namespace::Meta, b"n")
                .expect("read")
                .expect("counter")
                .try_into()
                .expect("8 bytes"),
        );
        assert!(n >= reported, "lost a reported commit: {n} < {reported}");
        assert!(n >= last_seen, "went back in time");
        for k in 0..KEYS {
            let v = s.get(Namespace::Doc, &[k]).expect("read").expect("value");
            assert_eq!(
                u64::from_le_bytes(v[..8].try_into().expect("8")),
                n,
                "key {k} is from another batch"
            );
        }
        last_seen = n;
    }
    assert!(last_seen > 25, "the writer barely ran: {last_seen}");
}

#[derive(Debug, Clone)]
enum Op {
    Put(u8, u8, Vec<u8>),
    Delete(u8, u8),
}

fn ns(n: u8) -> Namespace {
    [Namespace::Doc, Namespace::PeerState, Namespace::Meta][usize::from(n % 3)]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]
    #[test]
    fn random_batches_match_a_model_after_reopening(
        batches in proptest::collection::vec(
            proptest::collection::vec(prop_oneof![
                (0u8..3, 0u8..8, proptest::collection::vec(any::<u8>(), 0..64)).prop_map(|(n, k, v)| Op::Put(n, k, v)),
                (0u8..3, 0u8..8).prop_map(|(n, k)| Op::Delete(n, k)),
            ], 0..6),
            1..8)
    ) {
        let (_dir, path) = fresh();
        let mut model: BTreeMap<(Namespace, u8), Vec<u8>> = BTreeMap::new();
        {
            let mut s = DeviceStore::open(&path, &key(3)).expect("open");
            for ops in batches {
                let mut b = Batch::new();
                for op in ops {
                    match op {
                        Op::Put(n, k, v) => { b.put(ns(n), &[k], &v); model.insert((ns(n), k), v); }
                        Op::Delete(n, k) => { b.delete(ns(n), &[k]); model.remove(&(ns(n), k)); }
                    }
                }
                s.commit(b).expect("commit");
            }
        }
        let s = DeviceStore::open(&path, &key(3)).expect("reopen");
        for n in 0..3u8 {
            let mut scanned: Vec<(Vec<u8>, Vec<u8>)> = s.scan(ns(n)).expect("scan");
            scanned.sort();
            let expected: Vec<(Vec<u8>, Vec<u8>)> = model.iter().filter(|((m, _), _)| *m == ns(n)).map(|((_, k), v)| (vec![*k], v.clone())).collect();
            prop_assert_eq!(scanned, expected);
        }
    }
}
