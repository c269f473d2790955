//! A writer killed at random instants: the store always reopens, consistent, with every batch
//! the writer saw committed.
//!
//! The writer is this test binary run again (`current_exe`) with only this test selected and an
//! environment variable naming the store, which turns the test into the writer. It prints a line for each batch
//! once `commit` has returned; the parent kills it with SIGKILL after a random number of lines
//! plus a random delay, so the kill lands anywhere: inside a commit, between two, during open.

use crate::{fresh, key};
use homevisit_sync_core::store::{Batch, DeviceStore, Namespace};
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

const CHILD_ENV: &str = "HOMEVISIT_STORE_CRASH_CHILD";
const CHILD_TEST: &str =
    "store_crash::a_process_killed_while_writing_reopens_at_its_last_committed_batch";
const MARK: &str = "COMMITTED ";
const DOC_KEYS: u8 = 24;
const ROUNDS: usize = 25;

/// The value of document key `k` in batch `n`: the number first, then a filler whose size
/// changes with `n`, so that pages split, merge and spill over from batch to batch.
fn doc_value(n: u64, k: u8) -> Vec<u8> {
    let mut v = n.to_le_bytes().to_vec();
    // Mostly small values, so that a batch spends its time in SQLite rather than sealing, and
    // one that spills over several pages.
    let len = match k {
        0 => 3000 + (n % 5) as usize * 1500,
        _ => 20 + usize::from(k) * 13 + (n % 7) as usize * 60,
    };
    v.resize(len, k ^ (n as u8));
    v
}

fn generation_key(n: u64) -> Vec<u8> {
    format!("generation-{n}").into_bytes()
}

fn counter(store: &DeviceStore) -> u64 {
    store
        .get(Namespace::Meta, b"n")
        .expect("read the counter")
        .map_or(0, |v| {
            u64::from_le_bytes(v.try_into().expect("an 8-byte counter"))
        })
}

/// The writer: commits numbered batches until killed, reporting each once durable.
fn commit_numbered_batches_until_killed(path: &str) -> ! {
    let mut store = DeviceStore::open(Path::new(&path), &key(7)).expect("child: open");
    let mut n = counter(&store);
    let mut out = std::io::stdout().lock();
    loop {
        n += 1;
        let mut batch = Batch::new();
        for k in 0..DOC_KEYS {
            batch.put(Namespace::Doc, &[k], &doc_value(n, k));
        }
        batch
            .delete(Namespace::Outbox, &generation_key(n - 1))
            .put(Namespace::Outbox, &generation_key(n), &n.to_le_bytes())
            .put(Namespace::Meta, b"n", &n.to_le_bytes());
        store.commit(batch).expect("child: commit");
        writeln!(out, "{MARK}{n}").expect("child: report");
        out.flush().expect("child: flush");
    }
}

/// Checks that the store holds one whole batch, numbered at least `at_least`; returns its number.
fn check_consistent(path: &Path, at_least: u64) -> u64 {
    let store = DeviceStore::open(path, &key(7)).expect("the store reopens after a kill");
    let n = counter(&store);
    assert!(
        n >= at_least,
        "lost a reported commit: the store holds {n} < {at_least}"
    );
    for k in 0..DOC_KEYS {
        let v = store
            .get(Namespace::Doc, &[k])
            .expect("read")
            .expect("a value");
        assert!(
            v == doc_value(n, k),
            "document key {k} is not from batch {n}"
        );
    }
    assert_eq!(
        store.keys(Namespace::Doc).expect("keys").len(),
        usize::from(DOC_KEYS)
    );
    assert_eq!(
        store.scan(Namespace::Outbox).expect("scan"),
        vec![(generation_key(n), n.to_le_bytes().to_vec())],
        "the outbox is not from batch {n}"
    );
    n
}

#[test]
fn a_process_killed_while_writing_reopens_at_its_last_committed_batch() {
    if let Ok(path) = std::env::var(CHILD_ENV) {
        commit_numbered_batches_until_killed(&path);
    }
    let (_dir, path) = fresh();
    let exe = std::env::current_exe().expect("the test binary");
    let mut seed = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0x2545_f491, |d| d.subsec_nanos())
        | 1;
    eprintln!("crash test seed {seed}");
    let mut random = move |below: u32| {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        seed % below
    };
    let started = Instant::now();
    let mut stored = 0u64;
    for round in 0..ROUNDS {
        let mut child = Command::new(&exe)
            .args([CHILD_TEST, "--exact", "--nocapture", "--test-threads", "1"])
            .env(CHILD_ENV, &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn the writer");
        // The reader lives until the kill: dropping it would close the pipe, and the writer
        // would die on its next report instead of at a moment of our choosing.
        let mut stdout = BufReader::new(child.stdout.take().expect("the writer's stdout"));
        let wanted = 1 + random(12);
        let mut reported = 0u64;
        let mut seen = 0;
        let mut line = String::new();
        while seen < wanted {
            line.clear();
            if stdout.read_line(&mut line).expect("a line from the writer") == 0 {
                break;
            }
            if let Some(n) = line.split(MARK).nth(1) {
                reported = n.trim().parse().expect("a batch number");
                seen += 1;
            }
        }
        if seen < wanted {
            let mut err = String::new();
            if let Some(mut stderr) = child.stderr.take() {
                let _ = stderr.read_to_string(&mut err);
            }
            panic!("round {round}: the writer stopped by itself: {err}");
        }
        // Up to 15 ms more, longer than a batch takes (some 7 ms in a debug build, most of it
        // sealing before the transaction starts), so the kill lands at any point of one.
        std::thread::sleep(Duration::from_micros(u64::from(random(15_000))));
        child.kill().expect("kill the writer");
        let status = child.wait().expect("reap the writer");
        drop(stdout);
        assert!(
            !status.success(),
            "round {round}: the writer ended by itself before the kill"
        );
        assert!(
            reported > stored,
            "round {round}: the writer made no progress"
        );
        stored = check_consistent(&path, reported.max(stored));
    }
    eprintln!(
        "crash test: {ROUNDS} kills, {stored} batches, {:?}",
        started.elapsed()
    );
}
