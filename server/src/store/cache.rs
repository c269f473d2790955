//! Loaded child files kept in memory between syncs.
//!
//! Loading an Automerge document is most of the cost of merging into it, and the same files
//! are synced again and again by the phones of their village. An entry is keyed by the file
//! *and its heads*: it is used only when the database holds exactly that version, so a
//! rolled-back transaction, another server instance writing the same file, or a restored
//! backup can never make the cache serve anything but what the database says. It holds no
//! state that matters: losing it costs only time.

use automerge::AutoCommit;
use homevisit_sync_core::sync::ChildId;
use std::collections::HashMap;
use std::sync::Mutex;

/// A bounded cache of loaded documents, least recently used out first.
#[derive(Debug)]
pub struct DocCache {
    inner: Mutex<Inner>,
    capacity: usize,
}

#[derive(Debug, Default)]
struct Inner {
    entries: HashMap<ChildId, Entry>,
    tick: u64,
}

#[derive(Debug)]
struct Entry {
    heads: Vec<u8>,
    doc: AutoCommit,
    used: u64,
}

impl DocCache {
    /// A cache of at most `capacity` documents (0 disables it).
    pub fn new(capacity: usize) -> Self {
        DocCache {
            inner: Mutex::new(Inner::default()),
            capacity,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A copy of the cached document, if the cache holds exactly the version with `heads`.
    pub fn get(&self, id: ChildId, heads: &[u8]) -> Option<AutoCommit> {
        let mut inner = self.lock();
        inner.tick += 1;
        let tick = inner.tick;
        let entry = inner.entries.get_mut(&id)?;
        if entry.heads != heads {
            return None;
        }
        entry.used = tick;
        Some(entry.doc.clone())
    }

    /// Keeps a copy of a document whose heads are `heads`.
    pub fn put(&self, id: ChildId, heads: Vec<u8>, doc: &AutoCommit) {
        if self.capacity == 0 {
            return;
        }
        let mut inner = self.lock();
        inner.tick += 1;
        let used = inner.tick;
        if inner.entries.len() >= self.capacity && !inner.entries.contains_key(&id) {
            let oldest = inner
                .entries
                .iter()
                .min_by_key(|(_, e)| e.used)
                .map(|(k, _)| *k);
            if let Some(k) = oldest {
                inner.entries.remove(&k);
            }
        }
        inner.entries.insert(
            id,
            Entry {
                heads,
                doc: doc.clone(),
                used,
            },
        );
    }
}
