//! The device's side of a sync: a [`Replica`] of every file the phone holds, with what it
//! remembers of the server.
//!
//! A round trip is `request()` → (the app sends it over HTTP) → `receive(response)`. The app
//! persists the replica (see [`crate::device`]) after `receive` returns and only then treats the
//! round trip as done: a crash before that replays the old cursor, and the server resends.

use automerge::sync::{self as am_sync, SyncDoc};
use automerge::{ActorId, AutoCommit, ChangeHash};
use chrono::{DateTime, Utc};
use std::collections::{BTreeMap, BTreeSet};

use super::wire::{DocSync, DocUpdate, Item, Request, Response, Summary, Upload, WireError};
use super::{BadChanges, ChildId, Cursor, advance, fingerprint, split_changes};
use crate::file::{ChildFile, FileError, Profile};

/// What can go wrong on the device's side of a sync.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// The response could not be read.
    #[error("response: {0}")]
    Wire(#[from] WireError),
    /// The response carried changes that are not Automerge changes.
    #[error("file {doc}: {source}")]
    BadChanges {
        /// The file.
        doc: ChildId,
        /// What was wrong.
        source: BadChanges,
    },
    /// Automerge refused the server's data for a file.
    #[error("file {doc}: {source}")]
    Automerge {
        /// The file.
        doc: ChildId,
        /// Automerge's error.
        source: Box<automerge::AutomergeError>,
    },
    /// The server's sync message for a file could not be read.
    #[error("file {doc}: bad sync message: {reason}")]
    BadSyncMessage {
        /// The file.
        doc: ChildId,
        /// What was wrong.
        reason: String,
    },
    /// A child file could not be created or edited.
    #[error(transparent)]
    File(#[from] FileError),
}

/// One file on the phone.
#[derive(Debug, Clone)]
pub struct Held {
    /// The file.
    pub file: ChildFile,
    /// Heads the server is known to hold.
    pub acked: Vec<ChangeHash>,
    /// The Automerge sync state while the fallback runs, with the message to send next.
    pub fallback: Option<Fallback>,
    /// The server refused this file's changes: they stay on the phone, out of sync, until
    /// someone with the right access resolves it.
    pub quarantined: bool,
    /// Tell the server, with an empty upload, that this file is exactly at `acked`: after a
    /// fallback that needed no changes, the server has no other way to learn it.
    pub announce: bool,
}

/// A file going through Automerge's sync protocol.
///
/// Automerge's sync state assumes a connection that loses nothing: once it has generated a
/// message it will not put the same changes in the next one. An HTTP request can be lost, so
/// every request generates its message from a copy of the state as it stood after the last
/// message *received*, and only a response moves that state on.
#[derive(Debug, Clone, Default)]
pub struct Fallback {
    /// Automerge's sync state with the server, as of the last message received.
    pub state: am_sync::State,
}

/// What the app should do after a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Up to date: persist, and sync again whenever there is something new.
    Done,
    /// Persist, then sync again at once (a page was cut, or a fallback round follows).
    Again,
    /// The server ordered a wipe: delete the store and the key.
    Wipe,
}

/// Every file a phone holds and what it remembers of the server.
#[derive(Debug, Clone)]
pub struct Replica {
    actor: [u8; 16],
    /// The last cursor the server issued, once its response is applied.
    pub cursor: Option<Cursor>,
    /// The files.
    pub docs: BTreeMap<ChildId, Held>,
    /// Server clock minus device clock at the last response, milliseconds.
    pub skew_ms: Option<i64>,
    /// Items received from the server (alerts, later), oldest first.
    pub inbox: Vec<Item>,
    /// Items to send with the next request.
    pub outbox: Vec<Item>,
    /// Alerts received, and acknowledgements not yet answered (version 3).
    pub alerts: super::alerts::AlertBox,
    /// Files removed since the app last persisted (dropped by order of the server).
    pub removed: BTreeSet<ChildId>,
    /// What the due list needs of files whose documents are still to come (version 4): the
    /// app keeps them, with the cursor, until the documents arrive.
    pub arriving: Vec<Summary>,
    /// The last response was a page with more to follow.
    pub paging: bool,
    sent: BTreeMap<ChildId, Vec<ChangeHash>>,
    sent_states: BTreeMap<ChildId, am_sync::State>,
    touched: BTreeSet<ChildId>,
}

impl Replica {
    /// An empty replica whose edits are signed with `actor` (random per installation).
    pub fn new(actor: [u8; 16]) -> Self {
        Replica {
            actor,
            cursor: None,
            docs: BTreeMap::new(),
            skew_ms: None,
            inbox: Vec::new(),
            outbox: Vec::new(),
            alerts: Default::default(),
            removed: BTreeSet::new(),
            arriving: Vec::new(),
            paging: false,
            sent: BTreeMap::new(),
            sent_states: BTreeMap::new(),
            touched: BTreeSet::new(),
        }
    }

    /// The actor id this replica edits as.
    pub fn actor(&self) -> [u8; 16] {
        self.actor
    }

    /// Registers a new child on this phone.
    pub fn create(
        &mut self,
        id: ChildId,
        profile: &Profile,
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<ChildId, DeviceError> {
        self.create_with(id, profile, by, at, |_| Ok(()))
    }

    /// Registers a new child with its first edits (its categories, say): if `first` fails
    /// the replica holds no trace of the child.
    pub fn create_with(
        &mut self,
        id: ChildId,
        profile: &Profile,
        by: &str,
        at: DateTime<Utc>,
        first: impl FnOnce(&mut ChildFile) -> Result<(), FileError>,
    ) -> Result<ChildId, DeviceError> {
        let mut file = ChildFile::create(id, profile, self.actor, by, at)?;
        first(&mut file)?;
        self.touched.insert(id);
        self.docs.insert(
            id,
            Held {
                file,
                acked: Vec::new(),
                fallback: None,
                quarantined: false,
                announce: false,
            },
        );
        Ok(id)
    }

    /// A file, for reading. `None` also while a file is still arriving by the fallback and
    /// holds no child file yet.
    pub fn file(&self, id: &ChildId) -> Option<&ChildFile> {
        self.docs
            .get(id)
            .map(|h| &h.file)
            .filter(|f| f.is_child_file())
    }

    /// A file, for editing; `None` while it is still arriving. Editing a file before its first
    /// change has arrived would create a second, competing root in it.
    pub fn file_mut(&mut self, id: &ChildId) -> Option<&mut ChildFile> {
        self.docs
            .get_mut(id)
            .map(|h| &mut h.file)
            .filter(|f| f.is_child_file())
    }

    /// The ids of the files that can be read and edited.
    pub fn file_ids(&self) -> Vec<ChildId> {
        self.docs
            .iter()
            .filter(|(_, h)| h.file.is_child_file())
            .map(|(id, _)| *id)
            .collect()
    }

    /// Adds a file restored from storage.
    pub fn restore(&mut self, id: ChildId, held: Held) {
        self.docs.insert(id, held);
    }

    /// Files with changes the server has not acknowledged.
    pub fn pending(&mut self) -> usize {
        let mut n = 0;
        for held in self.docs.values_mut() {
            if !held.quarantined && held.file.heads() != held.acked {
                n += 1;
            }
        }
        n
    }

    /// How many files the last request carried changes or sync messages of.
    pub fn in_flight(&self) -> usize {
        self.sent.len() + self.sent_states.len()
    }

    /// Builds the next request. Calling it again before `receive` builds it afresh (a retry).
    pub fn request(&mut self) -> Vec<u8> {
        let mut req = Request {
            cursor: self.cursor,
            items: self
                .outbox
                .iter()
                .cloned()
                .chain(self.alerts.items())
                .collect(),
            ..Request::default()
        };
        self.sent.clear();
        self.sent_states.clear();
        for (id, held) in &mut self.docs {
            if held.quarantined {
                continue;
            }
            if let Some(fb) = &held.fallback {
                let mut state = fb.state.clone();
                if let Some(message) = held.file.doc_mut().sync().generate_sync_message(&mut state)
                {
                    req.syncs.push(DocSync {
                        doc: *id,
                        message: message.encode(),
                    });
                }
                self.sent_states.insert(*id, state);
                continue;
            }
            let heads = held.file.heads();
            if heads != held.acked || held.announce {
                req.uploads.push(Upload {
                    doc: *id,
                    base: fingerprint(&held.acked),
                    changes: held.file.doc_mut().save_after(&held.acked),
                });
                self.sent.insert(*id, heads);
            }
        }
        req.encode()
    }

    /// Applies a response; `now_ms` is the device clock, to record skew.
    pub fn receive(&mut self, bytes: &[u8], now_ms: i64) -> Result<Outcome, DeviceError> {
        self.apply(Response::decode(bytes)?, now_ms)
    }

    /// Files whose content or sync memory changed since the last call: what to persist.
    pub fn take_touched(&mut self) -> BTreeSet<ChildId> {
        std::mem::take(&mut self.touched)
    }

    /// Applies a decoded response; `now_ms` is the device clock, to record skew.
    pub fn apply(&mut self, resp: Response, now_ms: i64) -> Result<Outcome, DeviceError> {
        self.touched.extend(resp.docs.iter().map(DocUpdate::doc));
        self.touched.extend(resp.syncs.iter().map(|s| s.doc));
        self.touched.extend(resp.drops.iter().copied());
        self.touched.extend(self.sent.keys().copied());
        self.skew_ms = i64::try_from(resp.server_time_ms)
            .ok()
            .map(|t| t.saturating_sub(now_ms));
        if resp.wipe {
            self.docs.clear();
            self.cursor = None;
            return Ok(Outcome::Wipe);
        }
        let mut again = resp.more;
        self.paging = resp.more;
        self.arriving.extend(
            resp.summaries
                .into_iter()
                .filter(|s| !self.docs.contains_key(&s.doc)),
        );
        let in_sync: BTreeSet<ChildId> = resp.syncs.iter().map(|s| s.doc).collect();
        // A file the server refused is kept aside, with its work: the server has none of it.
        for id in &resp.refused {
            self.sent.remove(id);
            self.quarantine(id);
            self.touched.insert(*id);
        }
        // The server holds what we uploaded, unless it is answering that file by the fallback.
        for (id, heads) in std::mem::take(&mut self.sent) {
            if let Some(held) = self.docs.get_mut(&id)
                && !in_sync.contains(&id)
            {
                held.acked = heads;
                held.announce = false;
            }
        }
        for update in resp.docs {
            self.apply_update(update)?;
        }
        for msg in resp.syncs {
            again |= self.apply_sync(msg)?;
        }
        for id in resp.drops {
            let Some(held) = self.docs.get_mut(&id) else {
                continue;
            };
            if held.file.heads() == held.acked {
                self.docs.remove(&id);
                self.removed.insert(id);
            } else {
                // Work recorded here that the server never got must not vanish with the file.
                held.quarantined = true;
            }
        }
        if resp.resync {
            // The server lost track of us: files it did not open a fallback for are sent whole.
            for (id, held) in &mut self.docs {
                if !in_sync.contains(id) && held.fallback.is_none() {
                    held.acked.clear();
                    self.touched.insert(*id);
                    again = true;
                }
            }
        }
        self.outbox.clear();
        let other = self.alerts.take(resp.items);
        self.inbox.extend(other);
        self.cursor = resp.cursor.or(self.cursor);
        Ok(if again { Outcome::Again } else { Outcome::Done })
    }

    /// Marks a file the server refused, so the rest can sync. Returns whether a held file was
    /// newly set aside.
    pub fn quarantine(&mut self, id: &ChildId) -> bool {
        match self.docs.get_mut(id) {
            Some(held) if !held.quarantined => {
                held.quarantined = true;
                true
            }
            _ => false,
        }
    }

    fn held_or_new(&mut self, id: ChildId) -> &mut Held {
        let actor = self.actor;
        self.docs.entry(id).or_insert_with(|| Held {
            file: ChildFile::wrap(AutoCommit::new().with_actor(ActorId::from(actor.as_slice()))),
            acked: Vec::new(),
            fallback: None,
            quarantined: false,
            announce: false,
        })
    }

    fn apply_update(&mut self, update: DocUpdate) -> Result<(), DeviceError> {
        let actor = self.actor;
        match update {
            DocUpdate::Changes { doc: id, changes } => {
                let changes = split_changes(&changes)
                    .map_err(|source| DeviceError::BadChanges { doc: id, source })?;
                let held = self.held_or_new(id);
                let doc = held.file.doc_mut();
                let missing = changes.iter().flat_map(|c| c.deps().iter()).any(|d| {
                    doc.get_change_by_hash(d).is_none() && !changes.iter().any(|c| c.hash() == *d)
                });
                if missing {
                    // The server thought we hold history we do not: ask by the fallback.
                    held.fallback = Some(Fallback::default());
                    return Ok(());
                }
                doc.apply_changes(changes.clone())
                    .map_err(|source| DeviceError::Automerge {
                        doc: id,
                        source: Box::new(source),
                    })?;
                held.acked = advance(&held.acked, &changes);
            }
            DocUpdate::Snapshot { doc: id, bytes } => {
                let mut snap = AutoCommit::load(&bytes)
                    .map_err(|source| DeviceError::Automerge {
                        doc: id,
                        source: Box::new(source),
                    })?
                    .with_actor(ActorId::from(actor.as_slice()));
                let heads = snap.get_heads();
                match self.docs.get_mut(&id) {
                    Some(held) => {
                        held.file.doc_mut().merge(&mut snap).map_err(|source| {
                            DeviceError::Automerge {
                                doc: id,
                                source: Box::new(source),
                            }
                        })?;
                        held.acked = heads;
                    }
                    None => {
                        self.docs.insert(
                            id,
                            Held {
                                file: ChildFile::wrap(snap),
                                acked: heads,
                                fallback: None,
                                quarantined: false,
                                announce: false,
                            },
                        );
                    }
                }
            }
        }
        Ok(())
    }

    /// Applies a server sync message; returns whether another round is needed.
    fn apply_sync(&mut self, msg: DocSync) -> Result<bool, DeviceError> {
        let id = msg.doc;
        let message =
            am_sync::Message::decode(&msg.message).map_err(|e| DeviceError::BadSyncMessage {
                doc: id,
                reason: e.to_string(),
            })?;
        let sent = self.sent_states.remove(&id);
        // Whether the server has heard from us in this fallback: if not, it cannot know where
        // we stand, even when we stand exactly where it does.
        let answered = sent.is_some();
        let held = self.held_or_new(id);
        let mut state = sent
            .or_else(|| held.fallback.take().map(|fb| fb.state))
            .unwrap_or_default();
        let doc = held.file.doc_mut();
        doc.sync()
            .receive_sync_message(&mut state, message)
            .map_err(|source| DeviceError::Automerge {
                doc: id,
                source: Box::new(source),
            })?;
        // Automerge never resends a change it sent in this session; over HTTP a request can be
        // lost after it was generated, so what the server still asks for is sent again.
        if let Some(need) = &state.their_need {
            for h in need {
                state.sent_hashes.remove(h);
            }
        }
        let mut heads = doc.get_heads();
        heads.sort();
        let mut theirs = state.their_heads.clone().unwrap_or_default();
        theirs.sort();
        if heads == theirs && !heads.is_empty() {
            // Both ends hold the same heads: an acknowledgement would only cost a round trip.
            held.acked = heads;
            held.fallback = None;
            held.announce = !answered;
            return Ok(!answered);
        }
        let more = doc
            .sync()
            .generate_sync_message(&mut state.clone())
            .is_some();
        if more {
            held.fallback = Some(Fallback { state });
            return Ok(true);
        }
        // Converged as far as the server said: it holds its heads, and all of ours it has seen.
        held.acked = if theirs.iter().all(|h| doc.get_change_by_hash(h).is_some()) {
            theirs
        } else {
            state.shared_heads
        };
        held.fallback = None;
        Ok(false)
    }
}
