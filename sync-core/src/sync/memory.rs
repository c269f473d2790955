//! A [`ServerStore`] in memory: the reference the server's diesel store is tested against, and
//! the server peer of the property tests and benchmarks.
//!
//! Transactions are by copy: [`MemoryStore::transaction`] runs a sync on a clone and keeps it
//! only if the sync succeeded, which is exactly the all-or-nothing contract of [`handle`].
//!
//! [`handle`]: super::server::handle

use automerge::AutoCommit;
use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;

use automerge::ChangeHash;

use super::server::{Context, DeviceRecord, Merge, PeerDoc, ServerStore, StoredDoc};
use super::{ChildId, DeviceId, Scope};

/// Server state held in memory.
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    docs: HashMap<ChildId, StoredDoc>,
    by_seq: BTreeMap<u64, ChildId>,
    devices: HashMap<DeviceId, DeviceRecord>,
    peers: HashMap<DeviceId, BTreeMap<ChildId, PeerDoc>>,
    seq: u64,
    receipts: HashMap<ChangeHash, (DeviceId, u64)>,
}

impl MemoryStore {
    /// Runs `f` on a copy and keeps the copy only if `f` succeeds.
    pub fn transaction<T, E>(&mut self, f: impl FnOnce(&mut Self) -> Result<T, E>) -> Result<T, E> {
        let mut copy = self.clone();
        let out = f(&mut copy)?;
        *self = copy;
        Ok(out)
    }

    /// Every stored file, for checks.
    pub fn doc_ids(&self) -> impl Iterator<Item = &ChildId> {
        self.docs.keys()
    }

    /// Loads a stored file, for checks.
    pub fn load(&self, id: &ChildId) -> Option<AutoCommit> {
        self.docs
            .get(id)
            .and_then(|d| AutoCommit::load(&d.bytes).ok())
    }

    /// When the server received a change, and from which device.
    pub fn receipt(&self, change: &ChangeHash) -> Option<(DeviceId, u64)> {
        self.receipts.get(change).copied()
    }

    /// Inserts a file directly, as an import or a test fixture does.
    pub fn insert(&mut self, id: ChildId, village: &str, doc: &mut AutoCommit) -> u64 {
        self.seq += 1;
        if let Some(old) = self.docs.get(&id) {
            self.by_seq.remove(&old.seq);
        }
        self.by_seq.insert(self.seq, id);
        self.docs.insert(
            id,
            StoredDoc {
                bytes: doc.save(),
                village: village.to_owned(),
                seq: self.seq,
            },
        );
        self.seq
    }
}

impl ServerStore for MemoryStore {
    type Error = Infallible;

    fn device(&mut self, device: DeviceId) -> Result<Option<DeviceRecord>, Infallible> {
        Ok(self.devices.get(&device).cloned())
    }

    fn put_device(&mut self, device: DeviceId, record: &DeviceRecord) -> Result<(), Infallible> {
        self.devices.insert(device, record.clone());
        Ok(())
    }

    fn doc(&mut self, id: ChildId) -> Result<Option<StoredDoc>, Infallible> {
        Ok(self.docs.get(&id).cloned())
    }

    fn doc_village(&mut self, id: ChildId) -> Result<Option<String>, Infallible> {
        Ok(self.docs.get(&id).map(|d| d.village.clone()))
    }

    fn put_doc(
        &mut self,
        id: ChildId,
        merge: &Merge<'_>,
        doc: &mut AutoCommit,
    ) -> Result<u64, Infallible> {
        for hash in merge.received {
            self.receipts
                .entry(*hash)
                .or_insert((merge.ctx.device, merge.ctx.now_ms));
        }
        Ok(self.insert(id, &merge.checked.view.profile.village_code, doc))
    }

    /// The memory store keeps no photos: every name is allowed (the server's store checks).
    fn may_name_photo(&mut self, _sha256: &str, _ctx: &Context<'_>) -> Result<bool, Infallible> {
        Ok(true)
    }

    fn head_seq(&mut self) -> Result<u64, Infallible> {
        Ok(self.seq)
    }

    fn changed_since(
        &mut self,
        scope: &Scope,
        since: u64,
        upto: u64,
    ) -> Result<Vec<(ChildId, u64)>, Infallible> {
        if since >= upto {
            return Ok(Vec::new());
        }
        Ok(self
            .by_seq
            .range(since.saturating_add(1)..=upto)
            .filter(|(_, id)| {
                self.docs
                    .get(id)
                    .is_some_and(|d| scope.contains(&d.village))
            })
            .map(|(seq, id)| (*id, *seq))
            .collect())
    }

    fn peer_docs(&mut self, device: DeviceId) -> Result<Vec<(ChildId, PeerDoc)>, Infallible> {
        Ok(self
            .peers
            .get(&device)
            .map(|m| m.iter().map(|(k, v)| (*k, v.clone())).collect())
            .unwrap_or_default())
    }

    fn put_peer_doc(
        &mut self,
        device: DeviceId,
        doc: ChildId,
        peer: &PeerDoc,
    ) -> Result<(), Infallible> {
        self.peers
            .entry(device)
            .or_default()
            .insert(doc, peer.clone());
        Ok(())
    }

    fn delete_peer_doc(&mut self, device: DeviceId, doc: ChildId) -> Result<(), Infallible> {
        if let Some(m) = self.peers.get_mut(&device) {
            m.remove(&doc);
        }
        Ok(())
    }
}
