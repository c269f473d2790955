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
    /// The document as a JSON tree, when it was validated: the next merge is checked by
    /// patching it rather than reading the whole document again.
    tree: Option<serde_json::Value>,
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

    /// Takes the cached document (and its tree, if kept) out of the cache, if it holds exactly
    /// the version with `heads`. The session that takes it hands it back when done
    /// ([`DocCache::put`]): moving instead of copying costs nothing, and a concurrent sync of
    /// the same file simply loads it from the database.
    pub fn take(
        &self,
        id: ChildId,
        heads: &[u8],
    ) -> Option<(AutoCommit, Option<serde_json::Value>)> {
        let mut inner = self.lock();
        if inner.entries.get(&id)?.heads != heads {
            inner.entries.remove(&id);
            return None;
        }
        inner.entries.remove(&id).map(|e| (e.doc, e.tree))
    }

    /// Keeps a document whose heads are `heads`, with its tree if there is one.
    pub fn put(
        &self,
        id: ChildId,
        heads: Vec<u8>,
        doc: AutoCommit,
        tree: Option<serde_json::Value>,
    ) {
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
                doc,
                tree,
                used,
            },
        );
    }
}
