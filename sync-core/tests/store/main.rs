//! The encrypted device store seen from outside, in one binary so it links once. Every test
//! module's name starts with `store_`, so `cargo test -p homevisit-sync-core store` runs them.

mod store_crash;
mod store_damage;
mod store_model;
mod store_roundtrip;
mod store_secrecy;

use homevisit_sync_core::store::{Batch, DeviceStore, Entry, Namespace, StoreKey};
use std::path::{Path, PathBuf};

/// A store key made of one repeated byte.
pub fn key(n: u8) -> StoreKey {
    StoreKey::new([n; 32])
}

/// A new empty directory and the path of a store inside it.
pub fn fresh() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("device.db");
    (dir, path)
}

/// The names and bytes of every file in `dir`.
pub fn files_in(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .expect("read dir")
        .map(|entry| {
            let entry = entry.expect("dir entry");
            let name = entry.file_name().to_string_lossy().into_owned();
            (name, std::fs::read(entry.path()).expect("read file"))
        })
        .collect();
    files.sort();
    files
}

/// Whether `needle` occurs in `haystack`.
pub fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Opens a store and commits one batch built by `fill`.
pub fn store_with(path: &Path, key: &StoreKey, fill: impl FnOnce(&mut Batch)) -> DeviceStore {
    let mut store = DeviceStore::open(path, key).expect("open");
    let mut batch = Batch::new();
    fill(&mut batch);
    store.commit(batch).expect("commit");
    store
}

/// A plain SQLite connection to a closed store's file, to tamper with it.
pub fn raw(path: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open(path).expect("open raw sqlite")
}

/// Every namespace's contents.
pub fn dump(store: &DeviceStore) -> Vec<(Namespace, Vec<Entry>)> {
    Namespace::ALL
        .into_iter()
        .map(|ns| (ns, store.scan(ns).expect("scan")))
        .collect()
}
