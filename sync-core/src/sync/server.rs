//! The server's side of a sync: one request in, one response out, over a [`ServerStore`].
//!
//! [`handle`] does all its reads and writes through the store, and the caller runs it inside
//! one database transaction: on `Err` the caller rolls back, so a request is applied whole or
//! not at all, and on `Ok` the caller commits before sending the response, so nothing is
//! acknowledged that is not durable.

use automerge::sync::{self as am_sync, SyncDoc};
use automerge::{AutoCommit, Change, ChangeHash};
use std::collections::{BTreeMap, BTreeSet};

use super::chunks::{self, Budget, ChunkError};
use super::wire::{DocSync, DocUpdate, Request, Response, Summary};
use super::{ChildId, Cursor, DeviceId, Scope, advance, fingerprint, split_changes};
use crate::file::{self, Amendment, Breach, Checked, ChildFile, Problem};

/// A stored child file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredDoc {
    /// The document, as any mix of saves and changes that Automerge loads.
    pub bytes: Vec<u8>,
    /// The village it belongs to now.
    pub village: String,
    /// Its position in the server's change sequence: raised on every change.
    pub seq: u64,
}

/// A stored file as [`ServerStore::load_doc`] gives it.
#[derive(Debug)]
pub struct LoadedDoc {
    /// The document, or why its stored bytes do not load.
    pub doc: Result<AutoCommit, Box<automerge::AutomergeError>>,
    /// The village it belongs to now.
    pub village: String,
    /// The document as a JSON tree at its current heads, if the store kept one from an earlier
    /// check (it spares reading the whole document to validate a merge).
    pub tree: Option<serde_json::Value>,
}

impl LoadedDoc {
    /// Loads a stored file, without a tree.
    pub fn load(stored: StoredDoc) -> Self {
        LoadedDoc {
            doc: AutoCommit::load(&stored.bytes).map_err(Box::new),
            village: stored.village,
            tree: None,
        }
    }
}

/// What the server remembers of one device.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceRecord {
    /// The last cursor the device proved it stored.
    pub confirmed: Option<Cursor>,
    /// The cursor of the last response, until the device presents it.
    pub pending: Option<Cursor>,
    /// [`Scope::fingerprint`] of the scope the device last synced with.
    pub scope: u32,
}

/// What the server remembers of one file on one device.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PeerDoc {
    /// Heads the device is known to hold.
    pub known: Vec<ChangeHash>,
    /// Heads sent in the response with this cursor token; they become `known` when the device
    /// presents that cursor.
    pub pending: Option<(u32, Vec<ChangeHash>)>,
    /// Token of the response that told the device to drop the file.
    pub dropping: Option<u32>,
    /// Encoded Automerge sync state, while the fallback runs.
    pub sync_state: Option<Vec<u8>>,
}

/// A merged file on its way to storage: what [`ServerStore::put_doc`] gets besides the document.
#[derive(Debug)]
pub struct Merge<'m> {
    /// The merged file, already validated, for stores that project it into tables or keep its
    /// tree.
    pub checked: &'m Checked,
    /// The changes this request added to the file: the store records its own time of receipt
    /// for each, since a phone's clock can be wrong.
    pub received: &'m [ChangeHash],
    /// Who is syncing, and when.
    pub ctx: &'m Context<'m>,
    /// What the merge added to the file as the store held it, for stores that keep rows per
    /// record and rewrite only those; `None` for a file new to the store, whose rows are all
    /// new.
    pub amendment: Option<&'m Amendment>,
}

/// Storage the server session runs on; the server implements it with diesel.
///
/// Sequence numbers must become visible in the order they are issued (a later-committed
/// transaction must not reveal a smaller `seq` than one a reader already saw): the store
/// serialises the issuing of `seq` with the commit.
pub trait ServerStore {
    /// The store's error.
    type Error: std::error::Error + Send + Sync + 'static;

    /// The device's record, if the server has one.
    fn device(&mut self, device: DeviceId) -> Result<Option<DeviceRecord>, Self::Error>;
    /// Replaces the device's record.
    fn put_device(&mut self, device: DeviceId, record: &DeviceRecord) -> Result<(), Self::Error>;
    /// A stored file.
    fn doc(&mut self, id: ChildId) -> Result<Option<StoredDoc>, Self::Error>;
    /// A stored file, loaded, with its village. Loading is most of the cost of a merge, so a
    /// store that keeps loaded documents in memory overrides this.
    fn load_doc(&mut self, id: ChildId) -> Result<Option<LoadedDoc>, Self::Error> {
        Ok(self.doc(id)?.map(LoadedDoc::load))
    }
    /// A stored file, loaded to be merged into and written back in this transaction. A store
    /// whose transactions can run side by side holds the file against other writers from here
    /// to commit: a merge written over one it never saw would lose the other's changes.
    fn load_doc_for_merge(&mut self, id: ChildId) -> Result<Option<LoadedDoc>, Self::Error> {
        self.load_doc(id)
    }
    /// Hands back a file the session is done with, with its tree if it has one, for a store
    /// that keeps loaded documents in memory. The document may hold changes this session
    /// applied: a store must key what it keeps by the document's heads.
    fn release(&mut self, id: ChildId, doc: AutoCommit, tree: Option<serde_json::Value>) {
        let _ = (id, doc, tree);
    }
    /// The village of a stored file, without loading it.
    fn doc_village(&mut self, id: ChildId) -> Result<Option<String>, Self::Error>;
    /// The villages of those of `ids` that are stored. A store that can look them up at once
    /// overrides this: every sync asks it for every file the request names.
    fn villages(
        &mut self,
        ids: &BTreeSet<ChildId>,
    ) -> Result<BTreeMap<ChildId, String>, Self::Error> {
        let mut out = BTreeMap::new();
        for id in ids {
            if let Some(village) = self.doc_village(*id)? {
                out.insert(*id, village);
            }
        }
        Ok(out)
    }
    /// Stores a file after a merge, with the receipt of each change it added, and returns its
    /// new sequence number.
    fn put_doc(
        &mut self,
        id: ChildId,
        merge: &Merge<'_>,
        doc: &mut AutoCommit,
    ) -> Result<u64, Self::Error>;
    /// Whether the syncing caller may name this photo in a record they add: one they uploaded
    /// themselves, or one a file they may see already names. Naming a photo makes it visible to
    /// whoever sees the file, so naming another file's photo must not be a way to read it.
    fn may_name_photo(&mut self, sha256: &str, ctx: &Context<'_>) -> Result<bool, Self::Error>;
    /// The highest sequence number issued.
    fn head_seq(&mut self) -> Result<u64, Self::Error>;
    /// Files in `scope` with `since < seq <= upto`, ordered by `seq`. A store may add files
    /// numbered past `upto` if it reads them in one snapshot together with every lower number
    /// (see the SQL store): the cursor then moves to the last file sent, and a file renumbered
    /// while the sync reads is sent now rather than by the next sync.
    fn changed_since(
        &mut self,
        scope: &Scope,
        since: u64,
        upto: u64,
    ) -> Result<Vec<(ChildId, u64)>, Self::Error>;
    /// Every file the server remembers on the device.
    fn peer_docs(&mut self, device: DeviceId) -> Result<Vec<(ChildId, PeerDoc)>, Self::Error>;
    /// Replaces what the server remembers of one file on the device.
    fn put_peer_doc(
        &mut self,
        device: DeviceId,
        doc: ChildId,
        peer: &PeerDoc,
    ) -> Result<(), Self::Error>;
    /// Forgets one file on the device.
    fn delete_peer_doc(&mut self, device: DeviceId, doc: ChildId) -> Result<(), Self::Error>;
    /// Writes what the server remembers of several files on the device: `Some` replaces a
    /// file's entry, `None` forgets it. Every sync ends with this for each file it touched, so a
    /// store that can write them in a few statements overrides it. A sync calls
    /// [`ServerStore::put_device`] right after, so a store that keeps a device's memory with its
    /// cursors may hold these until then.
    fn put_peer_docs(
        &mut self,
        device: DeviceId,
        peers: &[(ChildId, Option<&PeerDoc>)],
    ) -> Result<(), Self::Error> {
        for (id, peer) in peers {
            match peer {
                Some(peer) => self.put_peer_doc(device, *id, peer)?,
                None => self.delete_peer_doc(device, *id)?,
            }
        }
        Ok(())
    }
    /// What a due list needs of every stored file in `scope`, for a new phone's first page
    /// (version 4). A store that keeps each file's digest overrides this; this one loads every
    /// file, and leaves out one that does not load (its document, following, says why).
    fn summaries(&mut self, scope: &Scope) -> Result<Vec<Summary>, Self::Error> {
        let head = self.head_seq()?;
        let mut out = Vec::new();
        for (id, _) in self.changed_since(scope, 0, head)? {
            let Some(stored) = self.doc(id)? else {
                continue;
            };
            let view = AutoCommit::load(&stored.bytes)
                .ok()
                .and_then(|doc| ChildFile::wrap(doc).view().ok());
            if let Some(view) = view {
                let summary = view.summary();
                out.push(Summary {
                    doc: id,
                    digest: summary.rules_digest(),
                    name: summary.name,
                    village: summary.village_code,
                });
            }
        }
        Ok(out)
    }
}

/// The default page size of a version 4 response: files are added while the response stays
/// within this many bytes on the wire (a file larger than a page goes alone), and the device
/// syncs again at once for the rest. A cut 2G connection costs at most the page in flight.
/// It leaves room below 64 KiB for the fields that are not files.
pub const DEFAULT_PAGE_BYTES: usize = 60 << 10;

/// The page size of versions 1 to 3, in bytes of files before compression (which shrinks child
/// files about eightfold): those phones take their first sync in about one response.
pub const LEGACY_PAGE_BYTES: usize = 8 << 20;

/// Who is syncing, as the HTTP layer established it.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    /// The device, from its token.
    pub device: DeviceId,
    /// The user's id.
    pub user: &'a str,
    /// The name the user signs with (`by` in a file): everything the request adds must carry it.
    pub author: &'a str,
    /// The villages the user may see and write.
    pub scope: &'a Scope,
    /// The server's clock, Unix milliseconds.
    pub now_ms: u64,
    /// A version 4 response carries files up to this many bytes on the wire (estimated); the
    /// device syncs again at once for the rest. Older versions page at [`LEGACY_PAGE_BYTES`].
    pub page_bytes: usize,
    /// The device was revoked: it is told to wipe itself and gets nothing else.
    pub revoked: bool,
}

fn problems(list: &[Problem]) -> String {
    list.iter()
        .map(Problem::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// Why a file in a request was refused. The whole request is refused with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Reject {
    /// The bytes are not Automerge changes or sync messages.
    #[error("corrupt: {0}")]
    Corrupt(String),
    /// The compressed data would inflate past what a request may need.
    #[error("{0}")]
    Inflates(String),
    /// After the merge the file breaks the schema.
    #[error("invalid: {}", problems(.0))]
    Invalid(Vec<Problem>),
    /// The file belongs to a village outside the caller's scope. Which village is not said.
    #[error("the file is outside the caller's scope")]
    OutOfScope,
    /// The change would move the file to a village outside the caller's scope.
    #[error("change moves the file to village {0}, outside the caller's scope")]
    MovesOutOfScope(String),
    /// The change deletes or rewrites what the file already holds.
    #[error("erases history: {}", problems(.0))]
    Erases(Vec<Problem>),
    /// Something the change adds is signed with another name than the caller's.
    #[error("forged author: {}", problems(.0))]
    Author(Vec<Problem>),
    /// A record names a photo the caller neither uploaded nor may see.
    #[error("names photo {0}, which the caller did not upload and may not see")]
    Photo(String),
}

impl Reject {
    /// A stable snake_case code for APIs.
    pub fn code(&self) -> &'static str {
        match self {
            Reject::Corrupt(_) => "corrupt_document",
            Reject::Inflates(_) => "decompression_limit",
            Reject::Invalid(_) => "invalid_document",
            Reject::OutOfScope => "region_forbidden",
            Reject::MovesOutOfScope(_) => "moves_out_of_scope",
            Reject::Erases(_) => "erases_history",
            Reject::Author(_) => "author_mismatch",
            Reject::Photo(_) => "photo_forbidden",
        }
    }
}

impl From<ChunkError> for Reject {
    fn from(e: ChunkError) -> Self {
        match e {
            ChunkError::TooLarge { .. } => Reject::Inflates(e.to_string()),
            ChunkError::Refused { .. } | ChunkError::Malformed { .. } => {
                Reject::Corrupt(e.to_string())
            }
        }
    }
}

/// A sync that could not be applied.
#[derive(Debug, thiserror::Error)]
pub enum HandleError<E: std::error::Error + 'static> {
    /// A file was refused; nothing of the request may be committed.
    #[error("file {doc} refused: {reason}")]
    Rejected {
        /// The file.
        doc: ChildId,
        /// Why.
        reason: Reject,
    },
    /// Files the request names lie outside the caller's scope, and nothing else is left to do:
    /// every file named is one of them, or the device speaks protocol version 1, which cannot
    /// be told about single files. Nothing was read or written; the caller audits the denial.
    #[error("{} file(s) named are outside the caller's scope", .0.len())]
    OutOfScope(Vec<ChildId>),
    /// The store failed.
    #[error("store: {0}")]
    Store(#[source] E),
    /// A stored document no longer loads: the server's own data is damaged.
    #[error("stored file {0} is damaged: {1}")]
    Damaged(ChildId, Box<automerge::AutomergeError>),
}

impl<E: std::error::Error + 'static> From<E> for HandleError<E> {
    fn from(e: E) -> Self {
        HandleError::Store(e)
    }
}

struct Session<'s, 'c, S: ServerStore> {
    store: &'s mut S,
    ctx: &'c Context<'c>,
    /// The token of the cursor this response will carry.
    token: u32,
    docs: BTreeMap<ChildId, (AutoCommit, Option<String>)>,
    /// Trees of loaded or checked files, with the heads they were read at.
    trees: BTreeMap<ChildId, (Vec<ChangeHash>, serde_json::Value)>,
    peers: BTreeMap<ChildId, PeerDoc>,
    dirty: BTreeSet<ChildId>,
    states: BTreeMap<ChildId, am_sync::State>,
}

/// The files a request names that are stored in a village outside the caller's scope, found
/// from the store's village column alone: nothing of such a file is loaded.
fn out_of_scope<S: ServerStore>(
    store: &mut S,
    ctx: &Context<'_>,
    request: &Request,
) -> Result<(BTreeSet<ChildId>, usize), S::Error> {
    let named = request.named_files();
    let refused = store
        .villages(&named)?
        .into_iter()
        .filter(|(_, village)| !ctx.scope.contains(village))
        .map(|(id, _)| id)
        .collect();
    Ok((refused, named.len()))
}

/// Decodes the sync messages of files in scope and checks every chunk the request carries
/// before Automerge parses any of it (see [`chunks`]).
fn admit<E: std::error::Error + 'static>(
    request: &Request,
    refused: &BTreeSet<ChildId>,
) -> Result<BTreeMap<usize, am_sync::Message>, HandleError<E>> {
    let reject = |doc, reason| HandleError::Rejected { doc, reason };
    let mut budget = Budget::default();
    for up in request.uploads.iter().filter(|u| !refused.contains(&u.doc)) {
        chunks::check(&up.changes, &mut budget).map_err(|e| reject(up.doc, e.into()))?;
    }
    let mut messages = BTreeMap::new();
    for (i, msg) in request.syncs.iter().enumerate() {
        if refused.contains(&msg.doc) {
            continue;
        }
        let message = am_sync::Message::decode(&msg.message)
            .map_err(|e| reject(msg.doc, Reject::Corrupt(e.to_string())))?;
        for chunk in message.changes.iter() {
            chunks::check(chunk, &mut budget).map_err(|e| reject(msg.doc, e.into()))?;
        }
        messages.insert(i, message);
    }
    Ok(messages)
}

/// Applies one request and builds the response.
pub fn handle<S: ServerStore>(
    store: &mut S,
    ctx: &Context<'_>,
    request: &Request,
) -> Result<Response, HandleError<S::Error>> {
    let mut response = Response {
        server_time_ms: ctx.now_ms,
        ..Response::default()
    };
    response.version = request.version;
    if ctx.revoked {
        response.wipe = true;
        return Ok(response);
    }
    // Scope before anything else: a file outside it is neither loaded, applied nor answered.
    let (refused, named) = out_of_scope(store, ctx, request)?;
    if !refused.is_empty() && (refused.len() == named || request.version < 2) {
        return Err(HandleError::OutOfScope(refused.into_iter().collect()));
    }
    let mut messages = admit(request, &refused)?;
    let device = store.device(ctx.device)?.unwrap_or_default();
    let peers = store.peer_docs(ctx.device)?.into_iter().collect();
    let token = rand::random::<u32>();
    let mut s = Session {
        store,
        ctx,
        token,
        docs: BTreeMap::new(),
        trees: BTreeMap::new(),
        peers,
        dirty: BTreeSet::new(),
        states: BTreeMap::new(),
    };

    // Which memory can be trusted: see docs/PROTOCOL.md, "Cursors".
    let (lost, confirmed, mut since) = match request.cursor {
        None => {
            // The device says it holds nothing the server sent: forget what we thought it had.
            s.dirty.extend(std::mem::take(&mut s.peers).into_keys());
            (false, None, 0)
        }
        Some(c) if device.pending == Some(c) => {
            s.confirm(c.token);
            (false, Some(c), c.seq)
        }
        Some(c) if device.confirmed == Some(c) => (false, Some(c), c.seq),
        Some(_) => {
            for (id, peer) in &mut s.peers {
                *peer = PeerDoc::default();
                s.dirty.insert(*id);
            }
            (true, None, 0)
        }
    };
    if device.scope != ctx.scope.fingerprint() {
        since = 0;
    }

    let mut fallback = BTreeSet::new();
    for up in request.uploads.iter().filter(|u| !refused.contains(&u.doc)) {
        if s.upload(up, lost)? {
            fallback.insert(up.doc);
        }
    }
    for (i, msg) in request.syncs.iter().enumerate() {
        if let Some(message) = messages.remove(&i)
            && s.receive_sync(msg.doc, message)?
        {
            fallback.insert(msg.doc);
        }
    }
    response.refused = refused.into_iter().collect();

    let head = s.store.head_seq()?;
    if lost {
        response.resync = true;
        for (id, _) in s.store.changed_since(ctx.scope, 0, head)? {
            s.states.insert(id, am_sync::State::new());
            fallback.insert(id);
        }
    }
    s.drops(token, &mut response)?;
    let mut cursor_seq = head;
    // A new phone (version 4) is told first what its due list needs of every file; the files
    // follow from sequence 0 in the next pages.
    if request.version >= 4 && request.cursor.is_none() {
        response.summaries = s
            .store
            .summaries(ctx.scope)?
            .into_iter()
            .filter(|summary| !s.peers.contains_key(&summary.doc))
            .collect();
        if !response.summaries.is_empty() {
            response.more = true;
            cursor_seq = 0;
        }
    }
    if !lost && response.summaries.is_empty() {
        let changed = s.store.changed_since(ctx.scope, since, head)?;
        let mut page = Page::new(request.version, ctx.page_bytes);
        for (id, seq) in changed {
            if fallback.contains(&id) {
                continue;
            }
            if let Some(update) = s.update(id, token)? {
                if !page.admits(&update, &response.docs) {
                    response.more = true;
                    break;
                }
                s.send(id, token, update, &mut response);
            }
            cursor_seq = seq;
        }
    }
    for id in fallback {
        s.send_sync(id, token, &request.syncs, &mut response)?;
    }

    let written: Vec<(ChildId, Option<&PeerDoc>)> =
        s.dirty.iter().map(|id| (*id, s.peers.get(id))).collect();
    s.store.put_peer_docs(ctx.device, &written)?;
    let cursor = Cursor {
        seq: cursor_seq,
        token,
    };
    s.store.put_device(
        ctx.device,
        &DeviceRecord {
            confirmed,
            pending: Some(cursor),
            scope: ctx.scope.fingerprint(),
        },
    )?;
    response.cursor = Some(cursor);
    let Session {
        store,
        docs,
        mut trees,
        ..
    } = s;
    for (id, (mut doc, village)) in docs {
        if village.is_none() {
            continue;
        }
        let tree = trees
            .remove(&id)
            .filter(|(heads, _)| *heads == doc.get_heads())
            .map(|(_, tree)| tree);
        store.release(id, doc, tree);
    }
    Ok(response)
}

/// How much of a response the files may fill.
///
/// A version 4 page is measured as it will travel: compressed. While the files added stay
/// under the limit uncompressed they obviously fit; past that, they are run through a zstd
/// stream, flushed after each file, whose output is a little larger than the whole body
/// compressed at once (the frame's level is higher, and it is not flushed), so the page stays
/// within its limit.
struct Page {
    /// Bytes on the wire (version 4) or before compression (older versions).
    limit: usize,
    wire: bool,
    files: usize,
    raw: usize,
    stream: Option<zstd::stream::write::Encoder<'static, Vec<u8>>>,
}

/// The bytes of a file an update carries.
fn payload(update: &DocUpdate) -> &[u8] {
    match update {
        DocUpdate::Changes { changes, .. } => changes,
        DocUpdate::Snapshot { bytes, .. } => bytes,
    }
}

/// What a field costs besides its payload: tag, length, file id.
const FIELD_OVERHEAD: usize = 24;
/// What a response costs besides its files: frame, check, time, cursor, flags.
const FRAME_OVERHEAD: usize = 48;

impl Page {
    fn new(version: u8, page_bytes: usize) -> Self {
        let wire = version >= 4;
        Page {
            limit: if wire { page_bytes } else { LEGACY_PAGE_BYTES },
            wire,
            files: 0,
            raw: 0,
            stream: None,
        }
    }

    /// Whether the update fits, counting it in if so. A page always takes its first file,
    /// however large, or a file larger than a page would never be sent.
    /// `admitted` are the files the page took so far: the stream starts from them when it is
    /// first needed, so a daily sync, which never needs it, copies nothing.
    fn admits(&mut self, update: &DocUpdate, admitted: &[DocUpdate]) -> bool {
        let bytes = payload(update);
        if !self.wire {
            // Versions 1 to 3 cut a page once it has passed the limit.
            if self.raw > self.limit {
                return false;
            }
            self.raw += bytes.len();
            return true;
        }
        let overhead = FRAME_OVERHEAD + FIELD_OVERHEAD * (self.files + 1);
        if self.stream.is_none() && self.raw + bytes.len() + overhead <= self.limit {
            self.raw += bytes.len();
            self.files += 1;
            return true;
        }
        let size = self
            .compressed(bytes, admitted)
            .unwrap_or(self.raw + bytes.len())
            + overhead;
        if self.files > 0 && size > self.limit {
            return false;
        }
        self.raw += bytes.len();
        self.files += 1;
        true
    }

    /// What the files so far and `bytes` compress to, flushed.
    fn compressed(&mut self, bytes: &[u8], admitted: &[DocUpdate]) -> Option<usize> {
        use std::io::Write;
        if self.stream.is_none() {
            let mut stream = zstd::stream::write::Encoder::new(Vec::new(), 9).ok()?;
            for update in admitted {
                stream.write_all(payload(update)).ok()?;
            }
            self.stream = Some(stream);
        }
        let stream = self.stream.as_mut()?;
        stream.write_all(bytes).ok()?;
        stream.flush().ok()?;
        Some(stream.get_ref().len())
    }
}

impl PeerDoc {
    /// What the device holds if it applies the response with this token: what it uploaded in
    /// this request on top of what it is known to hold.
    fn believed(&self, token: u32) -> &[ChangeHash] {
        match &self.pending {
            Some((t, heads)) if *t == token => heads,
            _ => &self.known,
        }
    }
}

impl<S: ServerStore> Session<'_, '_, S> {
    fn confirm(&mut self, token: u32) {
        let mut gone = Vec::new();
        for (id, peer) in &mut self.peers {
            if peer.dropping == Some(token) {
                gone.push(*id);
            } else if let Some((t, heads)) = peer.pending.take() {
                if t == token {
                    peer.known = heads;
                    self.dirty.insert(*id);
                } else {
                    peer.pending = Some((t, heads));
                }
            }
        }
        for id in gone {
            // Forgotten with the other entries the sync writes, at its end.
            self.peers.remove(&id);
            self.dirty.insert(id);
        }
    }

    fn load(&mut self, id: ChildId) -> Result<(), HandleError<S::Error>> {
        self.load_as(id, false)
    }

    fn load_as(&mut self, id: ChildId, for_merge: bool) -> Result<(), HandleError<S::Error>> {
        if !self.docs.contains_key(&id) {
            let loaded = match for_merge {
                true => self.store.load_doc_for_merge(id)?,
                false => self.store.load_doc(id)?,
            };
            let entry = match loaded {
                Some(loaded) => {
                    let mut doc = loaded.doc.map_err(|e| HandleError::Damaged(id, e))?;
                    if let Some(tree) = loaded.tree {
                        // Index what the request applies, for `checked_since`.
                        doc.update_diff_cursor();
                        self.trees.insert(id, (doc.get_heads(), tree));
                    }
                    (doc, Some(loaded.village))
                }
                None => (AutoCommit::new(), None),
            };
            self.docs.insert(id, entry);
        }
        Ok(())
    }

    /// Loads a file about to be merged into, with its tree as stored: the merge is judged
    /// against it (see [`file::amendment`]).
    fn load_for_merge(&mut self, id: ChildId) -> Result<(), HandleError<S::Error>> {
        // Merges come first in a session, so a file merged into is loaded here, as such.
        self.load_as(id, true)?;
        if let Some((doc, Some(_))) = self.docs.get_mut(&id) {
            let heads = doc.get_heads();
            if self.trees.get(&id).is_none_or(|(h, _)| *h != heads) {
                let tree = file::tree_of(doc);
                doc.update_diff_cursor();
                self.trees.insert(id, (heads, tree));
            }
        }
        Ok(())
    }

    fn reject(doc: ChildId, reason: Reject) -> HandleError<S::Error> {
        HandleError::Rejected { doc, reason }
    }

    /// Applies an upload; returns whether the file needs the fallback.
    fn upload(
        &mut self,
        up: &super::wire::Upload,
        lost: bool,
    ) -> Result<bool, HandleError<S::Error>> {
        let changes = split_changes(&up.changes)
            .map_err(|e| Self::reject(up.doc, Reject::Corrupt(e.to_string())))?;
        self.load_for_merge(up.doc)?;
        let Some((doc, _)) = self.docs.get_mut(&up.doc) else {
            return Ok(true);
        };
        let peer = self.peers.entry(up.doc).or_default();
        let ours = doc.get_heads();
        let mut disagree = lost || fingerprint(&peer.known) != up.base;
        if disagree && fingerprint(&ours) == up.base {
            // The device's base is exactly what we hold now: nothing to reconcile.
            peer.known = ours;
            disagree = false;
        }
        let hashes: BTreeSet<ChangeHash> = changes.iter().map(Change::hash).collect();
        let missing_dep = changes
            .iter()
            .flat_map(|c| c.deps().iter())
            .any(|d| !hashes.contains(d) && doc.get_change_by_hash(d).is_none());
        if missing_dep {
            return Ok(true);
        }
        let new: Vec<Change> = changes
            .iter()
            .filter(|c| doc.get_change_by_hash(&c.hash()).is_none())
            .cloned()
            .collect();
        if !new.is_empty() {
            doc.apply_changes(new)
                .map_err(|e| Self::reject(up.doc, Reject::Corrupt(e.to_string())))?;
            self.commit_doc(up.doc)?;
        }
        if let Some(peer) = self.peers.get_mut(&up.doc) {
            // Not `known` yet: a phone restored from a backup taken before this request would
            // present the same cursor without these changes. They become known with the cursor.
            let base = peer.believed(self.token).to_vec();
            peer.pending = Some((self.token, advance(&base, &changes)));
        }
        self.dirty.insert(up.doc);
        Ok(disagree)
    }

    /// Validates a merged file, holds it to the file's rule, and writes it.
    fn commit_doc(&mut self, id: ChildId) -> Result<(), HandleError<S::Error>> {
        let ctx = self.ctx;
        let Some((doc, before)) = self.docs.get_mut(&id) else {
            return Ok(());
        };
        if before.as_deref().is_some_and(|b| !ctx.scope.contains(b)) {
            return Err(Self::reject(id, Reject::OutOfScope));
        }
        // The tree as stored is patched in place: a rejected merge ends the whole session.
        let (since, prior) = match self.trees.remove(&id) {
            Some((heads, tree)) => (heads, Some(tree)),
            None => (Vec::new(), None),
        };
        #[cfg(debug_assertions)]
        let whole_before = prior.clone();
        let checked = file::checked_since(doc, id, prior.map(|tree| (since.as_slice(), tree)))
            .map_err(|problems| Self::reject(id, Reject::Invalid(problems)))?;
        let village = checked.view.profile.village_code.clone();
        if !ctx.scope.contains(&village) {
            let reason = match before {
                Some(_) => Reject::MovesOutOfScope(village),
                None => Reject::OutOfScope,
            };
            return Err(Self::reject(id, reason));
        }
        let (before_merge, after_merge) = match &checked.touched {
            Some((before, after)) => (Some(before), after),
            None => (None, &checked.tree),
        };
        let judged = file::amendment(before_merge, after_merge, ctx.author);
        // Every debug build checks the judgement of what the merge touched against the
        // judgement of the whole file.
        #[cfg(debug_assertions)]
        debug_assert_eq!(
            judged,
            file::amendment(whole_before.as_ref(), &checked.tree, ctx.author),
            "the touched entries were judged otherwise than the whole file"
        );
        let amendment = judged.map_err(|breach| match breach {
            Breach::Erased(p) => Self::reject(id, Reject::Erases(p)),
            Breach::Author(p) => Self::reject(id, Reject::Author(p)),
        })?;
        let mut received = Vec::new();
        for change in doc.get_changes(&since) {
            // The history shows each change's message as its author: it is signed too.
            if let Some(by) = change.message()
                && by != ctx.author
            {
                return Err(Self::reject(
                    id,
                    Reject::Author(vec![Problem {
                        path: format!("change {}", change.hash()),
                        message: format!("made by {} but signed {by:?}", ctx.author),
                    }]),
                ));
            }
            received.push(change.hash());
        }
        for photo in &amendment.new_photos {
            if !self.store.may_name_photo(photo, ctx)? {
                return Err(Self::reject(id, Reject::Photo(photo.clone())));
            }
        }
        let merge = Merge {
            checked: &checked,
            received: &received,
            ctx,
            amendment: checked.touched.as_ref().map(|_| &amendment),
        };
        self.store.put_doc(id, &merge, doc)?;
        *before = Some(village);
        self.trees.insert(id, (doc.get_heads(), checked.tree));
        Ok(())
    }

    /// Applies a device's sync message; returns whether to answer it.
    fn receive_sync(
        &mut self,
        id: ChildId,
        message: am_sync::Message,
    ) -> Result<bool, HandleError<S::Error>> {
        self.load_for_merge(id)?;
        let peer = self.peers.entry(id).or_default();
        let mut state = self.states.remove(&id).unwrap_or_else(|| {
            peer.sync_state
                .as_deref()
                .and_then(|b| am_sync::State::decode(b).ok())
                .unwrap_or_default()
        });
        self.dirty.insert(id);
        let Some((doc, _)) = self.docs.get_mut(&id) else {
            return Ok(false);
        };
        let before = doc.get_heads();
        doc.sync()
            .receive_sync_message(&mut state, message)
            .map_err(|e| Self::reject(id, Reject::Corrupt(e.to_string())))?;
        let changed = doc.get_heads() != before;
        self.states.insert(id, state);
        if changed {
            self.commit_doc(id)?;
        }
        Ok(true)
    }

    fn drops(&mut self, token: u32, response: &mut Response) -> Result<(), S::Error> {
        let ids: Vec<ChildId> = self.peers.keys().copied().collect();
        for id in ids {
            let village = match self.docs.get(&id) {
                Some((_, v)) => v.clone(),
                None => self.store.doc_village(id)?,
            };
            // A file the server does not hold is never dropped: it may be one the server lost
            // in a restore, and the phone's copy is all that is left of it.
            if village.is_some_and(|v| !self.ctx.scope.contains(&v))
                && let Some(peer) = self.peers.get_mut(&id)
            {
                response.drops.push(id);
                *peer = PeerDoc {
                    dropping: Some(token),
                    ..PeerDoc::default()
                };
                self.dirty.insert(id);
            }
        }
        Ok(())
    }

    /// What the device lacks of one changed file, if anything.
    fn update(
        &mut self,
        id: ChildId,
        token: u32,
    ) -> Result<Option<DocUpdate>, HandleError<S::Error>> {
        self.load(id)?;
        let Some((doc, _)) = self.docs.get_mut(&id) else {
            return Ok(None);
        };
        Ok(match self.peers.get(&id) {
            Some(peer) if peer.dropping.is_some() => None,
            // Nothing of it is known to be on the device (a new file, or one whose page was
            // lost on the way): the whole file is smaller than all its changes.
            None => Some(DocUpdate::Snapshot {
                doc: id,
                bytes: doc.save_nocompress(),
            }),
            Some(peer) if peer.believed(token).is_empty() => Some(DocUpdate::Snapshot {
                doc: id,
                bytes: doc.save_nocompress(),
            }),
            Some(peer) => {
                let changes = doc.save_after(peer.believed(token));
                (!changes.is_empty()).then_some(DocUpdate::Changes { doc: id, changes })
            }
        })
    }

    /// Adds an update to the response; what it carries counts as the device's once the device
    /// presents this response's cursor.
    fn send(&mut self, id: ChildId, token: u32, update: DocUpdate, response: &mut Response) {
        let Some((doc, _)) = self.docs.get_mut(&id) else {
            return;
        };
        response.docs.push(update);
        let peer = self.peers.entry(id).or_default();
        peer.pending = Some((token, doc.get_heads()));
        self.dirty.insert(id);
    }

    fn send_sync(
        &mut self,
        id: ChildId,
        token: u32,
        received: &[DocSync],
        response: &mut Response,
    ) -> Result<(), HandleError<S::Error>> {
        self.load(id)?;
        let peer = self.peers.entry(id).or_default();
        let mut state = self.states.remove(&id).unwrap_or_else(|| {
            peer.sync_state
                .as_deref()
                .and_then(|b| am_sync::State::decode(b).ok())
                .unwrap_or_default()
        });
        let Some((doc, _)) = self.docs.get_mut(&id) else {
            return Ok(());
        };
        if let Some(message) = doc.sync().generate_sync_message(&mut state) {
            response.syncs.push(DocSync {
                doc: id,
                message: message.encode(),
            });
        }
        // Only an answer to the device's own message carries everything it lacks; the opening
        // message of a fallback carries nothing, so it must not raise what we think it holds.
        if received.iter().any(|m| m.doc == id) {
            peer.pending = Some((token, doc.get_heads()));
        }
        peer.sync_state = Some(state.encode());
        self.dirty.insert(id);
        Ok(())
    }
}
