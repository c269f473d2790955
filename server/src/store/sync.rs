//! The sync protocol's [`ServerStore`] over diesel, for both backends.
//!
//! A document is stored as a compacted snapshot plus the changes appended since; after
//! [`COMPACT_AFTER`] appended chunks the next write folds them into a fresh snapshot, so a
//! busy file never costs more than one snapshot and a few chunks to load.

use automerge::{AutoCommit, ChangeHash};
use diesel::prelude::*;
use homevisit_sync_core::file::FileSummary;
use homevisit_sync_core::sync::peers;
use homevisit_sync_core::sync::server::{
    Context, DeviceRecord, LoadedDoc, Merge, PeerDoc, ServerStore, StoredDoc,
};
use homevisit_sync_core::sync::wire::Summary;
use homevisit_sync_core::sync::{ChildId, Cursor, DeviceId, Scope};

use super::DbConnection;
use super::cache::DocCache;
use super::schema::{
    change_receipts, children, document_chunks, documents, sync_devices, sync_peer_documents,
    sync_seq,
};

/// When the server received each change of a file, and from whom (username), by change hash.
pub fn receipts(
    conn: &mut DbConnection,
    doc: &str,
) -> QueryResult<std::collections::BTreeMap<String, (i64, String)>> {
    use super::schema::users;
    let rows: Vec<(String, i64, String)> = change_receipts::table
        .inner_join(users::table)
        .filter(change_receipts::document_id.eq(doc))
        .select((
            change_receipts::change_hash,
            change_receipts::received_at,
            users::username,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(hash, at, who)| (hash, (at, who)))
        .collect())
}

/// Chunks appended to a document before the next write compacts it.
pub const COMPACT_AFTER: i32 = 16;

/// The sync store on one connection, inside the caller's transaction.
pub struct SqlSyncStore<'a> {
    conn: &'a mut DbConnection,
    cache: Option<&'a DocCache>,
    /// In [`apply`], the files written so far, whose sequence numbers are issued together at
    /// the end (see [`Numbers`]); `None` issues each on write.
    deferred: Option<Vec<String>>,
    /// Receipts of the changes merged so far (file, change), written together at the end
    /// when numbers are deferred.
    receipts: Vec<(String, String)>,
    /// The schedule digests of the files written, latest last, for their re-evaluation.
    written: Vec<FileSummary>,
    /// The stored heads and chunk count of each file loaded for a merge, read with the row
    /// that is held until commit, so that writing the file back need not read them again.
    stored: std::collections::HashMap<String, Held>,
    /// The placeholder sequence number of deferred writes, read once.
    placeholder: Option<u64>,
    /// When numbers are deferred, the projections of the files written, by file, with their
    /// placeholder numbers, written together at the end.
    projections: std::collections::BTreeMap<String, (super::children::Projection, u64)>,
    /// The syncing device's memory of its files, read with its cursors and written back with
    /// them (see [`homevisit_sync_core::sync::peers`]).
    memory: Option<Memory>,
}

/// One device's memory of its files, as a sync holds it between reading and writing its row.
struct Memory {
    device: DeviceId,
    peers: std::collections::BTreeMap<ChildId, PeerDoc>,
    /// Whether the row was still in the per-file table of before, whose rows the write deletes.
    legacy: bool,
}

/// The files a sync wrote under a placeholder sequence number, to be numbered for real.
///
/// Numbers must become visible in the order they are issued, so the counter's row lock is held
/// from issue to commit, and every sync waits for that lock in turn: [`Numbers::issue`] is
/// meant to be the transaction's last statements. Issued before the schedules, alerts and
/// audit rows of the sync were written, the lock made syncs on PostgreSQL take turns through
/// all of those too.
#[must_use = "the files keep their placeholder numbers until issued"]
pub struct Numbers {
    touched: Vec<String>,
}

impl Numbers {
    /// Issues one number to each file, in one step, and writes them to the files' rows.
    pub fn issue(self, conn: &mut DbConnection) -> QueryResult<()> {
        let touched = self.touched;
        if touched.is_empty() {
            return Ok(());
        }
        let n = touched.len() as i64;
        diesel::update(sync_seq::table.filter(sync_seq::id.eq(1)))
            .set(sync_seq::value.eq(sync_seq::value + n))
            .execute(conn)?;
        let last = head_seq(conn)?;
        // Each file's number in one statement per table.
        let numbered: Vec<(&String, i64)> = touched
            .iter()
            .enumerate()
            .map(|(i, key)| (key, last - n + 1 + i as i64))
            .collect();
        for batch in numbered.chunks(ROWS_PER_STATEMENT) {
            for table in ["documents", "children"] {
                let sql =
                    |pg| super::update_from_values(table, "seq = v.column2", 0, 2, batch.len(), pg);
                bound_update!(conn, sql, |q| {
                    let mut q = q;
                    for (key, seq) in batch {
                        q = q
                            .bind::<diesel::sql_types::Text, _>(*key)
                            .bind::<diesel::sql_types::BigInt, _>(*seq);
                    }
                    q
                });
            }
        }
        Ok(())
    }
}

/// The last sequence number issued.
fn head_seq(conn: &mut DbConnection) -> QueryResult<i64> {
    sync_seq::table
        .filter(sync_seq::id.eq(1))
        .select(sync_seq::value)
        .first(conn)
}

/// `$query.first(conn).optional()?`, held `FOR UPDATE` to commit on PostgreSQL when `$lock`
/// (SQLite has one writer at a time anyway).
macro_rules! first_row {
    ($conn:expr, $query:expr, $lock:expr) => {
        match &mut *$conn {
            DbConnection::Postgresql(c) if $lock => $query.for_update().first(c).optional()?,
            DbConnection::Postgresql(c) => $query.first(c).optional()?,
            DbConnection::Sqlite(c) => $query.first(c).optional()?,
        }
    };
}

/// A stored file's heads (encoded) and chunk count, as read with its row held.
type Held = (Vec<u8>, i32);

/// Rows of a multi-row statement: under SQLite's default limit of bound parameters.
const ROWS_PER_STATEMENT: usize = 100;

impl<'a> SqlSyncStore<'a> {
    /// Wraps a connection; run [`homevisit_sync_core::sync::server::handle`] inside a
    /// transaction on it.
    pub fn new(conn: &'a mut DbConnection) -> Self {
        SqlSyncStore {
            conn,
            cache: None,
            deferred: None,
            receipts: Vec::new(),
            written: Vec::new(),
            stored: Default::default(),
            placeholder: None,
            projections: Default::default(),
            memory: None,
        }
    }

    /// The store as a sync runs on it: documents kept in `cache` between syncs, receipts and
    /// projections held back to [`SqlSyncStore::finish`], and sequence numbers to the
    /// [`Numbers`] it returns, so that the counter's lock is held for the last few statements
    /// only.
    pub fn for_sync(conn: &'a mut DbConnection, cache: Option<&'a DocCache>) -> Self {
        let mut store = Self::new(conn);
        store.cache = cache;
        store.deferred = Some(Vec::new());
        store
    }

    /// Writes the projections of the files merged and the receipts; returns the schedule
    /// digests of the files the sync wrote, one each, as they now stand, and their held-back
    /// sequence numbers, which the caller issues as the transaction's last statements.
    pub fn finish(&mut self, ctx: &Context<'_>) -> QueryResult<(Vec<FileSummary>, Numbers)> {
        let projections = std::mem::take(&mut self.projections);
        let files: Vec<_> = projections.values().map(|(p, seq)| (p, *seq)).collect();
        super::children::project(self.conn, &files)?;
        self.write_receipts(ctx)?;
        let mut latest = std::collections::BTreeMap::new();
        for summary in std::mem::take(&mut self.written) {
            latest.insert(summary.id, summary);
        }
        let numbers = Numbers {
            touched: self.deferred.take().unwrap_or_default(),
        };
        Ok((latest.into_values().collect(), numbers))
    }

    /// The device's memory of its files: as [`ServerStore::device`] read it, or, for a device
    /// whose row predates the one-row memory, from the per-file rows of before.
    fn memory(&mut self, device: DeviceId) -> QueryResult<&mut Memory> {
        if self.memory.as_ref().is_some_and(|m| m.device != device) {
            self.memory = None;
        }
        if self.memory.is_none() {
            let peers = legacy_peer_docs(self.conn, device)?;
            self.memory = Some(Memory::new(device, peers, true));
        }
        Ok(self.memory.as_mut().expect("set above"))
    }

    /// The sequence number a write gets now: the next one, or, when numbers are deferred, the
    /// current head as a placeholder (it is replaced before commit).
    fn seq_for_write(&mut self, key: &str) -> QueryResult<u64> {
        match &mut self.deferred {
            None => self.next_seq(),
            Some(touched) => {
                if !touched.iter().any(|k| k == key) {
                    touched.push(key.to_owned());
                }
                match self.placeholder {
                    Some(seq) => Ok(seq),
                    None => {
                        let seq = self.head_seq()?;
                        self.placeholder = Some(seq);
                        Ok(seq)
                    }
                }
            }
        }
    }

    /// Writes the receipts kept so far, in as few statements as the backend allows.
    fn write_receipts(&mut self, ctx: &Context<'_>) -> QueryResult<()> {
        let received_at = (ctx.now_ms / 1000) as i64;
        let device = ctx.device.0.to_string();
        let rows: Vec<_> = std::mem::take(&mut self.receipts)
            .into_iter()
            .map(|(doc, hash)| {
                (
                    change_receipts::document_id.eq(doc),
                    change_receipts::change_hash.eq(hash),
                    change_receipts::received_at.eq(received_at),
                    change_receipts::user_id.eq(ctx.user),
                    change_receipts::device_id.eq(device.clone()),
                )
            })
            .collect();
        // Batches stay under SQLite's bound-parameter limit.
        for batch in rows.chunks(150) {
            let insert = diesel::insert_into(change_receipts::table).values(batch);
            on_backend!(&mut *self.conn, |c| insert.execute(c))?;
        }
        Ok(())
    }

    /// A stored file with its heads and chunk count; with `lock`, its row is held against
    /// other writers until commit (PostgreSQL; SQLite has one writer at a time anyway).
    fn stored_doc(&mut self, id: ChildId, lock: bool) -> QueryResult<Option<(StoredDoc, Held)>> {
        let key = id.0.to_string();
        let query = documents::table.filter(documents::id.eq(&key)).select((
            documents::village,
            documents::seq,
            documents::snapshot,
            documents::heads,
            documents::chunk_count,
        ));
        type Row = (String, i64, Vec<u8>, Vec<u8>, i32);
        let row: Option<Row> = first_row!(self.conn, query, lock);
        let Some((village, seq, mut bytes, heads, count)) = row else {
            return Ok(None);
        };
        if count > 0 {
            let chunks: Vec<Vec<u8>> = document_chunks::table
                .filter(document_chunks::document_id.eq(&key))
                .order(document_chunks::n)
                .select(document_chunks::bytes)
                .load(self.conn)?;
            for chunk in chunks {
                bytes.extend_from_slice(&chunk);
            }
        }
        let doc = StoredDoc {
            bytes,
            village,
            seq: seq as u64,
        };
        Ok(Some((doc, (heads, count))))
    }

    /// Loads a file, from the cache when it holds the stored heads. A file loaded to be merged
    /// is held (see [`SqlSyncStore::stored_doc`]), and its heads and chunk count are kept for
    /// writing it back.
    fn load(&mut self, id: ChildId, lock: bool) -> QueryResult<Option<LoadedDoc>> {
        let key = id.0.to_string();
        if let Some(cache) = self.cache {
            let query = documents::table.filter(documents::id.eq(&key)).select((
                documents::village,
                documents::heads,
                documents::chunk_count,
            ));
            let row: Option<(String, Vec<u8>, i32)> = first_row!(self.conn, query, lock);
            let Some((village, heads, count)) = row else {
                return Ok(None);
            };
            let hit = cache.take(id, &heads);
            if lock {
                self.stored.insert(key, (heads, count));
            }
            if let Some((doc, tree)) = hit {
                return Ok(Some(LoadedDoc {
                    doc: Ok(doc),
                    village,
                    tree,
                }));
            }
            return Ok(self.doc(id)?.map(LoadedDoc::load));
        }
        let Some((doc, stored)) = self.stored_doc(id, lock)? else {
            return Ok(None);
        };
        if lock {
            self.stored.insert(key, stored);
        }
        Ok(Some(LoadedDoc::load(doc)))
    }

    fn next_seq(&mut self) -> QueryResult<u64> {
        // The row lock taken here is held to commit: numbers are issued in commit order.
        diesel::update(sync_seq::table.filter(sync_seq::id.eq(1)))
            .set(sync_seq::value.eq(sync_seq::value + 1))
            .execute(self.conn)?;
        self.head_seq()
    }
}

fn encode_heads(heads: &[ChangeHash]) -> Vec<u8> {
    heads.iter().flat_map(|h| h.0).collect()
}

fn decode_heads(bytes: &[u8]) -> QueryResult<Vec<ChangeHash>> {
    bytes
        .chunks_exact(32)
        .map(|c| {
            ChangeHash::try_from(c)
                .map_err(|e| diesel::result::Error::DeserializationError(Box::new(e)))
        })
        .collect()
}

fn cursor(seq: Option<i64>, token: Option<i64>) -> Option<Cursor> {
    Some(Cursor {
        seq: seq? as u64,
        token: token? as u32,
    })
}

impl ServerStore for SqlSyncStore<'_> {
    type Error = diesel::result::Error;

    /// Reads the device's memory of its files too, for [`ServerStore::peer_docs`]. Memory
    /// that does not decode (a damaged row) makes the device unknown, which the protocol
    /// answers with a resync: the phone then tells the server again what it holds.
    fn device(&mut self, device: DeviceId) -> QueryResult<Option<DeviceRecord>> {
        type Row = (
            Option<i64>,
            Option<i64>,
            Option<i64>,
            Option<i64>,
            i64,
            Option<Vec<u8>>,
        );
        let row = sync_devices::table
            .filter(sync_devices::device_id.eq(device.0.to_string()))
            .select((
                sync_devices::confirmed_seq,
                sync_devices::confirmed_token,
                sync_devices::pending_seq,
                sync_devices::pending_token,
                sync_devices::scope_fingerprint,
                sync_devices::memory,
            ))
            .first::<Row>(self.conn)
            .optional()?;
        let Some((cs, ct, ps, pt, scope, memory)) = row else {
            self.memory = Some(Memory::new(device, Vec::new(), false));
            return Ok(None);
        };
        // No memory in the row: it is still in the per-file rows, read when first asked for.
        self.memory = match memory.map(|bytes| peers::decode(&bytes)) {
            None => None,
            Some(Ok(peers)) => Some(Memory::new(device, peers, false)),
            Some(Err(e)) => {
                tracing::warn!(event = "device_memory_damaged", cause = %e);
                self.memory = Some(Memory::new(device, Vec::new(), false));
                return Ok(None);
            }
        };
        Ok(Some(DeviceRecord {
            confirmed: cursor(cs, ct),
            pending: cursor(ps, pt),
            scope: scope as u32,
        }))
    }

    /// Writes the cursors and the memory of files in one statement (two for a new device).
    fn put_device(&mut self, device: DeviceId, record: &DeviceRecord) -> QueryResult<()> {
        let id = device.0.to_string();
        let memory = self.memory(device)?;
        let legacy = std::mem::replace(&mut memory.legacy, false);
        let peers: Vec<(ChildId, &PeerDoc)> = memory.peers.iter().map(|(k, v)| (*k, v)).collect();
        let bytes = peers::encode(&peers);
        let values = (
            sync_devices::confirmed_seq.eq(record.confirmed.map(|c| c.seq as i64)),
            sync_devices::confirmed_token.eq(record.confirmed.map(|c| i64::from(c.token))),
            sync_devices::pending_seq.eq(record.pending.map(|c| c.seq as i64)),
            sync_devices::pending_token.eq(record.pending.map(|c| i64::from(c.token))),
            sync_devices::scope_fingerprint.eq(i64::from(record.scope)),
            sync_devices::memory.eq(Some(bytes)),
        );
        let updated = diesel::update(sync_devices::table.filter(sync_devices::device_id.eq(&id)))
            .set(values.clone())
            .execute(self.conn)?;
        if updated == 0 {
            diesel::insert_into(sync_devices::table)
                .values((sync_devices::device_id.eq(&id), values))
                .execute(self.conn)?;
        }
        if legacy {
            diesel::delete(
                sync_peer_documents::table.filter(sync_peer_documents::device_id.eq(&id)),
            )
            .execute(self.conn)?;
        }
        Ok(())
    }

    fn doc(&mut self, id: ChildId) -> QueryResult<Option<StoredDoc>> {
        Ok(self.stored_doc(id, false)?.map(|(doc, _)| doc))
    }

    fn load_doc(&mut self, id: ChildId) -> QueryResult<Option<LoadedDoc>> {
        self.load(id, false)
    }

    fn load_doc_for_merge(&mut self, id: ChildId) -> QueryResult<Option<LoadedDoc>> {
        self.load(id, true)
    }

    fn release(&mut self, id: ChildId, mut doc: AutoCommit, tree: Option<serde_json::Value>) {
        if let Some(cache) = self.cache {
            let heads = encode_heads(&doc.get_heads());
            cache.put(id, heads, doc, tree);
        }
    }

    fn villages(
        &mut self,
        ids: &std::collections::BTreeSet<ChildId>,
    ) -> QueryResult<std::collections::BTreeMap<ChildId, String>> {
        if ids.is_empty() {
            return Ok(Default::default());
        }
        let keys: Vec<String> = ids.iter().map(|id| id.0.to_string()).collect();
        Ok(super::children::villages_of(self.conn, &keys)?
            .into_iter()
            .filter_map(|(id, village)| Some((ChildId(uuid::Uuid::parse_str(&id).ok()?), village)))
            .collect())
    }

    fn doc_village(&mut self, id: ChildId) -> QueryResult<Option<String>> {
        documents::table
            .filter(documents::id.eq(id.0.to_string()))
            .select(documents::village)
            .first(self.conn)
            .optional()
    }

    fn put_doc(
        &mut self,
        id: ChildId,
        merge: &Merge<'_>,
        doc: &mut AutoCommit,
    ) -> QueryResult<u64> {
        let view = &merge.checked.view;
        let village = view.profile.village_code.as_str();
        let key = id.0.to_string();
        let seq = self.seq_for_write(&key)?;
        let heads = doc.get_heads();
        let existing = match self.stored.remove(&key) {
            Some(held) => Some(held),
            None => documents::table
                .filter(documents::id.eq(&key))
                .select((documents::heads, documents::chunk_count))
                .first::<(Vec<u8>, i32)>(self.conn)
                .optional()?,
        };
        match existing {
            None => {
                diesel::insert_into(documents::table)
                    .values((
                        documents::id.eq(&key),
                        documents::village.eq(village),
                        documents::seq.eq(seq as i64),
                        documents::snapshot.eq(doc.save()),
                        documents::heads.eq(encode_heads(&heads)),
                        documents::chunk_count.eq(0),
                    ))
                    .execute(self.conn)?;
            }
            Some((_, count)) if count >= COMPACT_AFTER => {
                diesel::delete(
                    document_chunks::table.filter(document_chunks::document_id.eq(&key)),
                )
                .execute(self.conn)?;
                diesel::update(documents::table.filter(documents::id.eq(&key)))
                    .set((
                        documents::village.eq(village),
                        documents::seq.eq(seq as i64),
                        documents::snapshot.eq(doc.save()),
                        documents::heads.eq(encode_heads(&heads)),
                        documents::chunk_count.eq(0),
                    ))
                    .execute(self.conn)?;
            }
            Some((stored_heads, count)) => {
                let chunk = doc.save_after(&decode_heads(&stored_heads)?);
                diesel::insert_into(document_chunks::table)
                    .values((
                        document_chunks::document_id.eq(&key),
                        document_chunks::n.eq(count),
                        document_chunks::bytes.eq(chunk),
                    ))
                    .execute(self.conn)?;
                diesel::update(documents::table.filter(documents::id.eq(&key)))
                    .set((
                        documents::village.eq(village),
                        documents::seq.eq(seq as i64),
                        documents::heads.eq(encode_heads(&heads)),
                        documents::chunk_count.eq(count + 1),
                    ))
                    .execute(self.conn)?;
            }
        }
        let summary = view.summary();
        let mut projection = super::children::Projection::of(view, &summary, merge.amendment);
        match self.deferred {
            Some(_) => {
                if let Some((earlier, _)) = self.projections.remove(&key) {
                    projection.absorb(earlier);
                }
                self.projections.insert(key.clone(), (projection, seq));
            }
            None => super::children::project(self.conn, &[(&projection, seq)])?,
        }
        self.written.push(summary);
        self.receipts.extend(
            merge
                .received
                .iter()
                .map(|hash| (key.clone(), hash.to_string())),
        );
        if self.deferred.is_none() {
            self.write_receipts(merge.ctx)?;
        }
        Ok(seq)
    }

    fn may_name_photo(&mut self, sha256: &str, ctx: &Context<'_>) -> QueryResult<bool> {
        if super::blobs::uploaded_by(self.conn, sha256, ctx.user)? {
            return Ok(true);
        }
        let files = super::children::photo_villages(self.conn, sha256)?;
        Ok(files.iter().any(|(_, village)| ctx.scope.contains(village)))
    }

    fn head_seq(&mut self) -> QueryResult<u64> {
        head_seq(self.conn).map(|v| v as u64)
    }

    /// One statement for every village range, bounded by the head of its own snapshot, which is
    /// never below `upto`: a file another sync renumbers past `upto` while this one reads is seen
    /// at its new number, not missed until the next sync (a new phone's first sync ended without
    /// it). Every number up to that head was committed before the snapshot was taken, since
    /// numbers are issued under the counter's row lock, held to commit.
    fn changed_since(
        &mut self,
        scope: &Scope,
        since: u64,
        _upto: u64,
    ) -> QueryResult<Vec<(ChildId, u64)>> {
        let head = diesel::dsl::sql::<diesel::sql_types::BigInt>(
            "(SELECT value FROM sync_seq WHERE id = 1)",
        );
        let rows: Vec<(String, i64)> = documents::table
            .filter(super::any_village!(documents::village, scope.prefixes()))
            .filter(documents::seq.gt(since as i64))
            .filter(documents::seq.le(head))
            .order(documents::seq)
            .select((documents::id, documents::seq))
            .load(self.conn)?;
        Ok(rows
            .into_iter()
            .filter_map(|(id, seq)| Some((ChildId(uuid::Uuid::parse_str(&id).ok()?), seq as u64)))
            .collect())
    }

    /// From the digests the projection keeps, without loading a document. A file whose row
    /// has no digest yet (one the nightly job has not reached since an upgrade) is left out:
    /// its document follows all the same.
    fn summaries(&mut self, scope: &Scope) -> QueryResult<Vec<Summary>> {
        let mut out = Vec::new();
        for (first, last) in super::village_bounds(scope.prefixes()) {
            let rows: Vec<(String, String, String, Option<Vec<u8>>)> = children::table
                .filter(children::village.between(first, last))
                .filter(children::rules_digest.is_not_null())
                .select((
                    children::id,
                    children::name,
                    children::village,
                    children::rules_digest,
                ))
                .load(self.conn)?;
            out.extend(rows.into_iter().filter_map(|(id, name, village, digest)| {
                Some(Summary {
                    doc: ChildId(uuid::Uuid::parse_str(&id).ok()?),
                    name,
                    village,
                    digest: digest?,
                })
            }));
        }
        out.sort_by_key(|s| s.doc);
        out.dedup_by_key(|s| s.doc);
        Ok(out)
    }

    fn peer_docs(&mut self, device: DeviceId) -> QueryResult<Vec<(ChildId, PeerDoc)>> {
        Ok(self
            .memory(device)?
            .peers
            .iter()
            .map(|(id, peer)| (*id, peer.clone()))
            .collect())
    }

    fn put_peer_doc(&mut self, device: DeviceId, doc: ChildId, peer: &PeerDoc) -> QueryResult<()> {
        self.put_peer_docs(device, &[(doc, Some(peer))])
    }

    /// Held in memory until [`ServerStore::put_device`], which every sync calls last and which
    /// writes them with the cursors.
    fn put_peer_docs(
        &mut self,
        device: DeviceId,
        peers: &[(ChildId, Option<&PeerDoc>)],
    ) -> QueryResult<()> {
        let memory = self.memory(device)?;
        for (id, peer) in peers {
            match peer {
                Some(peer) => memory.peers.insert(*id, (*peer).clone()),
                None => memory.peers.remove(id),
            };
        }
        Ok(())
    }

    fn delete_peer_doc(&mut self, device: DeviceId, doc: ChildId) -> QueryResult<()> {
        self.put_peer_docs(device, &[(doc, None)])
    }
}

impl Memory {
    fn new(device: DeviceId, peers: Vec<(ChildId, PeerDoc)>, legacy: bool) -> Self {
        Memory {
            device,
            peers: peers.into_iter().collect(),
            legacy,
        }
    }
}

/// A device's memory as it was kept before it moved into the device's row: a row per file.
fn legacy_peer_docs(
    conn: &mut DbConnection,
    device: DeviceId,
) -> QueryResult<Vec<(ChildId, PeerDoc)>> {
    type Row = (
        String,
        Vec<u8>,
        Option<i64>,
        Option<Vec<u8>>,
        Option<i64>,
        Option<Vec<u8>>,
    );
    let rows: Vec<Row> = sync_peer_documents::table
        .filter(sync_peer_documents::device_id.eq(device.0.to_string()))
        .select((
            sync_peer_documents::document_id,
            sync_peer_documents::known,
            sync_peer_documents::pending_token,
            sync_peer_documents::pending_heads,
            sync_peer_documents::dropping_token,
            sync_peer_documents::sync_state,
        ))
        .load(conn)?;
    let mut out = Vec::with_capacity(rows.len());
    for (doc, known, pending_token, pending_heads, dropping, sync_state) in rows {
        let Ok(uuid) = uuid::Uuid::parse_str(&doc) else {
            continue;
        };
        let pending = match (pending_token, pending_heads) {
            (Some(t), Some(h)) => Some((t as u32, decode_heads(&h)?)),
            _ => None,
        };
        out.push((
            ChildId(uuid),
            PeerDoc {
                known: decode_heads(&known)?,
                pending,
                dropping: dropping.map(|t| t as u32),
                sync_state,
            },
        ));
    }
    Ok(out)
}
