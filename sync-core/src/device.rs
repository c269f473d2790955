//! The phone: a [`Replica`] kept in the encrypted [`DeviceStore`].
//!
//! Files are loaded lazily: opening the store reads only each file's small [`FileSummary`], which
//! is all the due list needs, so a phone with 200 files opens in milliseconds. A file's document
//! is loaded when it is opened, edited or synced. Every edit and every applied sync response is
//! one store commit: documents, sync memory, summaries and cursor together, so a phone killed at
//! any instant reopens consistent, and a sync counts as done only once committed.

use chrono::{DateTime, NaiveDate, Utc};
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use automerge::AutoCommit;

use crate::file::{ChildFile, ChildId, FileError, FileSummary, Profile, summary_from_digest};
use crate::rules::{Case, CaseRecord, DueEntry, RuleSet, Status, days_past, due_list};
use crate::store::{Batch, DeviceStore, Namespace, StoreError, StoreKey};
use crate::sync::device::{DeviceError as SyncError, Fallback, Held, Outcome, Replica};
use crate::sync::{Cursor, Response};

const META_ACTOR: &[u8] = b"actor";
const META_CURSOR: &[u8] = b"cursor";
const META_SKEW: &[u8] = b"skew_ms";
const META_ALERTS: &[u8] = b"alerts";
/// Settings the app keeps in the store live under this prefix, apart from the sync's own.
const META_APP: &[u8] = b"app.";

/// What can go wrong on the phone.
#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    /// The store failed, or its key is wrong, or it is damaged.
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// A sync response could not be applied (nothing of it was stored).
    #[error("sync: {0}")]
    Sync(#[from] SyncError),
    /// A file could not be read or edited.
    #[error("file: {0}")]
    File(#[from] FileError),
    /// A stored record does not decode: the store is damaged.
    #[error("stored {what} for file {id} is damaged")]
    Damaged {
        /// What kind of record.
        what: &'static str,
        /// The file.
        id: String,
    },
    /// No file with this id on the phone.
    #[error("no file {0} on this phone")]
    NoSuchFile(ChildId),
    /// The phone lists this file from its summary, and its document has not arrived yet.
    #[error("file {0} is still arriving: sync to finish receiving it")]
    Arriving(ChildId),
}

/// A phone's files, sync memory and due list over its encrypted store.
pub struct Device {
    store: DeviceStore,
    replica: Replica,
    summaries: BTreeMap<ChildId, FileSummary>,
    /// Files listed from the summary a first sync sent ahead of them, whose documents have not
    /// arrived yet.
    arriving: BTreeSet<ChildId>,
    /// Files the last applied response brought changes of.
    received: usize,
}

impl std::fmt::Debug for Device {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Device")
            .field("files", &self.summaries.len())
            .finish_non_exhaustive()
    }
}

impl Device {
    /// Opens (or creates) the phone's store at `path` under `key`.
    pub fn open(path: &Path, key: &StoreKey) -> Result<Self, DeviceError> {
        let mut store = DeviceStore::open(path, key)?;
        let actor = match store.get(Namespace::Meta, META_ACTOR)? {
            Some(bytes) => bytes.try_into().map_err(|_| DeviceError::Damaged {
                what: "actor id",
                id: String::new(),
            })?,
            None => {
                let actor: [u8; 16] = rand::random();
                let mut batch = Batch::new();
                batch.put(Namespace::Meta, META_ACTOR, &actor);
                store.commit(batch)?;
                actor
            }
        };
        let mut replica = Replica::new(actor);
        replica.cursor = store
            .get(Namespace::Meta, META_CURSOR)?
            .map(|b| decode_cursor(&b))
            .transpose()?;
        replica.skew_ms = store
            .get(Namespace::Meta, META_SKEW)?
            .and_then(|b| b.try_into().ok().map(i64::from_le_bytes));
        if let Some(bytes) = store.get(Namespace::Meta, META_ALERTS)? {
            replica.alerts = serde_json::from_slice(&bytes).map_err(|_| DeviceError::Damaged {
                what: "alerts",
                id: String::new(),
            })?;
        }
        let mut summaries = BTreeMap::new();
        for (key, value) in store.scan(Namespace::Summary)? {
            let summary: FileSummary =
                serde_json::from_slice(&value).map_err(|_| DeviceError::Damaged {
                    what: "summary",
                    id: String::from_utf8_lossy(&key).into_owned(),
                })?;
            summaries.insert(summary.id, summary);
        }
        let held: BTreeSet<ChildId> = store
            .keys(Namespace::Doc)?
            .iter()
            .map(|k| id_of(k))
            .collect::<Result<_, _>>()?;
        let arriving = summaries
            .keys()
            .filter(|id| !held.contains(id))
            .copied()
            .collect();
        Ok(Device {
            store,
            replica,
            summaries,
            arriving,
            received: 0,
        })
    }

    /// How many children the phone lists: files it holds, and files still arriving.
    pub fn len(&self) -> usize {
        self.summaries.len()
    }

    /// Whether the phone lists no child.
    pub fn is_empty(&self) -> bool {
        self.summaries.is_empty()
    }

    /// How many of the children listed are still arriving: the first sync sent their
    /// summaries, and their documents follow.
    pub fn arriving(&self) -> usize {
        self.arriving.len()
    }

    /// Every listed child's summary, by id.
    pub fn summaries(&self) -> &BTreeMap<ChildId, FileSummary> {
        &self.summaries
    }

    /// Who is overdue or due soon on `on`, most overdue first, from summaries alone.
    ///
    /// Help plans whose review is overdue or due soon join the list as the kind
    /// `plan_review`, `last` being the day the plan was made or last reviewed.
    pub fn due(&self, rules: &RuleSet, on: NaiveDate) -> Vec<DueEntry> {
        let cases: Vec<Case> = self.summaries.values().map(|s| case_of(s, on)).collect();
        let mut due = due_list(rules, &cases, on);
        due.extend(
            self.summaries
                .values()
                .flat_map(|s| plan_reviews_due(s, rules.due_soon_days(), on)),
        );
        due.sort_by_key(|e| (e.status != Status::Overdue, e.due));
        due
    }

    /// Registers a new child on this phone.
    pub fn create(
        &mut self,
        profile: &Profile,
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<ChildId, DeviceError> {
        self.create_with(profile, by, at, |_| Ok(()))
    }

    /// Registers a new child with its first edits, stored in one commit with the file: if
    /// `first` fails nothing is stored.
    pub fn create_with(
        &mut self,
        profile: &Profile,
        by: &str,
        at: DateTime<Utc>,
        first: impl FnOnce(&mut ChildFile) -> Result<(), FileError>,
    ) -> Result<ChildId, DeviceError> {
        let id = self
            .replica
            .create_with(ChildId::new(), profile, by, at, first)?;
        self.persist()?;
        Ok(id)
    }

    /// A file, loaded from the store if needed.
    pub fn file(&mut self, id: &ChildId) -> Result<&ChildFile, DeviceError> {
        self.load(id)?;
        self.replica.file(id).ok_or(DeviceError::NoSuchFile(*id))
    }

    /// Edits a file and stores the edit before returning.
    pub fn edit<T>(
        &mut self,
        id: &ChildId,
        f: impl FnOnce(&mut ChildFile) -> Result<T, FileError>,
    ) -> Result<T, DeviceError> {
        self.edit_with_outbox(id, f, &[])
    }

    /// Edits a file and puts `items` (name, bytes) in the outbox, in one commit: a record never
    /// names a photo the phone has lost, and no photo waits for a record that was not stored.
    /// If `f` fails, nothing is stored.
    pub fn edit_with_outbox<T>(
        &mut self,
        id: &ChildId,
        f: impl FnOnce(&mut ChildFile) -> Result<T, FileError>,
        items: &[(&str, &[u8])],
    ) -> Result<T, DeviceError> {
        self.load(id)?;
        let file = self
            .replica
            .file_mut(id)
            .ok_or(DeviceError::NoSuchFile(*id))?;
        let out = f(file)?;
        let mut batch = Batch::new();
        for (name, bytes) in items {
            batch.put(Namespace::Outbox, name.as_bytes(), bytes);
        }
        let mut touched = self.replica.take_touched();
        touched.insert(*id);
        self.commit_with(touched, batch)?;
        Ok(out)
    }

    /// The names of the items waiting in the outbox, sorted.
    pub fn outbox(&self) -> Result<Vec<String>, DeviceError> {
        Ok(self
            .store
            .keys(Namespace::Outbox)?
            .into_iter()
            .map(|k| String::from_utf8_lossy(&k).into_owned())
            .collect())
    }

    /// One outbox item's bytes.
    pub fn outbox_item(&self, name: &str) -> Result<Option<Vec<u8>>, DeviceError> {
        Ok(self.store.get(Namespace::Outbox, name.as_bytes())?)
    }

    /// Removes an item from the outbox once it is delivered.
    pub fn outbox_remove(&mut self, name: &str) -> Result<(), DeviceError> {
        let mut batch = Batch::new();
        batch.delete(Namespace::Outbox, name.as_bytes());
        Ok(self.store.commit(batch)?)
    }

    /// A setting the app keeps encrypted in the store (its session, for one).
    pub fn setting(&self, name: &str) -> Result<Option<Vec<u8>>, DeviceError> {
        Ok(self.store.get(Namespace::Meta, &app_key(name))?)
    }

    /// Stores a setting, or deletes it with `None`.
    pub fn set_setting(&mut self, name: &str, value: Option<&[u8]>) -> Result<(), DeviceError> {
        let mut batch = Batch::new();
        match value {
            Some(v) => batch.put(Namespace::Meta, &app_key(name), v),
            None => batch.delete(Namespace::Meta, &app_key(name)),
        };
        Ok(self.store.commit(batch)?)
    }

    /// How many files the last response [`Device::sync_receive`] applied brought changes of.
    pub fn files_in_last_response(&self) -> usize {
        self.received
    }

    /// Whether the last response applied was a page with more to follow.
    pub fn paging(&self) -> bool {
        self.replica.paging
    }

    /// How many files the last [`Device::sync_request`] carries changes of.
    pub fn files_in_request(&self) -> usize {
        self.replica.in_flight()
    }

    /// The next sync request. Loads every file with work the server has not acknowledged.
    pub fn sync_request(&mut self) -> Result<Vec<u8>, DeviceError> {
        for (key, value) in self.store.scan(Namespace::PeerState)? {
            let id = id_of(&key)?;
            if PeerRecord::decode(&value)?.dirty {
                self.load(&id)?;
            }
        }
        Ok(self.replica.request())
    }

    /// Applies a sync response and commits it. Returns what to do next.
    pub fn sync_receive(&mut self, bytes: &[u8], now_ms: i64) -> Result<Outcome, DeviceError> {
        let response = Response::decode(bytes).map_err(SyncError::from)?;
        let mut ids: Vec<ChildId> = response.docs.iter().map(|d| d.doc()).collect();
        ids.extend(response.syncs.iter().map(|s| s.doc));
        let received = ids.iter().collect::<std::collections::BTreeSet<_>>().len();
        ids.extend(response.drops.iter().copied());
        if response.resync {
            ids.extend(self.summaries.keys().copied());
        }
        for id in ids {
            self.load_if_stored(&id)?;
        }
        let before = self.replica.clone();
        match self.replica.apply(response, now_ms) {
            Ok(Outcome::Wipe) => {
                self.wipe_in_place()?;
                Ok(Outcome::Wipe)
            }
            Ok(outcome) => {
                let (batch, listed, gone) = self.arrivals(outcome);
                let touched = self.replica.take_touched();
                if let Err(e) = self.commit_with(touched, batch) {
                    self.replica = before;
                    return Err(e);
                }
                for summary in listed {
                    self.arriving.insert(summary.id);
                    self.summaries.insert(summary.id, summary);
                }
                for id in gone {
                    self.arriving.remove(&id);
                    self.summaries.remove(&id);
                }
                self.received = received;
                Ok(outcome)
            }
            Err(e) => {
                // Nothing of a response that fails half way is kept, in memory or on disk.
                self.replica = before;
                Err(e.into())
            }
        }
    }

    /// The summaries a response sent ahead of their files, to keep in the commit that applies
    /// it; and once the sync is done, the arriving files that never came (moved out of the
    /// phone's villages before their turn), to forget.
    fn arrivals(&mut self, outcome: Outcome) -> (Batch, Vec<FileSummary>, Vec<ChildId>) {
        let mut batch = Batch::new();
        let mut listed = Vec::new();
        for s in std::mem::take(&mut self.replica.arriving) {
            let held = self.replica.docs.contains_key(&s.doc)
                || (self.summaries.contains_key(&s.doc) && !self.arriving.contains(&s.doc));
            if held {
                continue;
            }
            // A digest that does not read lists nothing; the file itself follows.
            let Some(summary) =
                summary_from_digest(s.doc, s.name, s.village, &s.digest, NaiveDate::MAX)
            else {
                continue;
            };
            let json = serde_json::to_vec(&summary).unwrap_or_default();
            batch.put(Namespace::Summary, s.doc.as_bytes(), &json);
            listed.push(summary);
        }
        let mut gone = Vec::new();
        if outcome == Outcome::Done {
            for id in self.arriving.iter().chain(listed.iter().map(|s| &s.id)) {
                if !self.replica.docs.contains_key(id) {
                    batch.delete(Namespace::Summary, id.as_bytes());
                    gone.push(*id);
                }
            }
            listed.retain(|s| !gone.contains(&s.id));
        }
        (batch, listed, gone)
    }

    /// Sets a file aside after the server refused it, so the rest can sync. Returns whether a
    /// held file was newly set aside (false for a file not held or already aside).
    pub fn quarantine(&mut self, id: &ChildId) -> Result<bool, DeviceError> {
        self.load_if_stored(id)?;
        if !self.replica.quarantine(id) {
            return Ok(false);
        }
        self.persist_one(id)?;
        Ok(true)
    }

    /// The files set aside because the server refused them, with the work they hold.
    pub fn quarantined(&self) -> Result<Vec<ChildId>, DeviceError> {
        let mut out = Vec::new();
        for (key, value) in self.store.scan(Namespace::PeerState)? {
            let id = <[u8; 16]>::try_from(key.as_slice())
                .map(|b| ChildId(uuid::Uuid::from_bytes(b)))
                .map_err(|_| DeviceError::Damaged {
                    what: "sync memory key",
                    id: String::new(),
                })?;
            let quarantined = match self.replica.docs.get(&id) {
                Some(held) => held.quarantined,
                None => PeerRecord::decode(&value)?.quarantined,
            };
            if quarantined {
                out.push(id);
            }
        }
        Ok(out)
    }

    /// The alerts the server sent, not closed, newest event last.
    pub fn alerts(&self) -> Vec<crate::sync::alerts::Alert> {
        let mut list: Vec<_> = self.replica.alerts.alerts.values().cloned().collect();
        list.sort_by_key(|a| a.seq);
        list
    }

    /// Acknowledges an alert offline; the acknowledgement is stored now and sent with the next
    /// sync. False for an alert this phone does not hold.
    pub fn acknowledge_alert(
        &mut self,
        alert_id: &str,
        note: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, DeviceError> {
        if !self
            .replica
            .alerts
            .acknowledge(alert_id, note, at.timestamp_millis())
        {
            return Ok(false);
        }
        self.commit(Default::default())?;
        Ok(true)
    }

    /// Acknowledgements made on this phone that the server has not answered yet.
    pub fn pending_acks(&self) -> usize {
        self.replica.alerts.acks.len()
    }

    /// Deletes the store and everything in it. The app must also delete the key.
    pub fn wipe(self) -> Result<(), DeviceError> {
        Ok(self.store.wipe()?)
    }

    fn wipe_in_place(&mut self) -> Result<(), DeviceError> {
        let mut batch = Batch::new();
        for ns in Namespace::ALL {
            for key in self.store.keys(ns)? {
                batch.delete(ns, &key);
            }
        }
        self.store.commit(batch)?;
        self.summaries.clear();
        self.arriving.clear();
        Ok(())
    }

    fn load_if_stored(&mut self, id: &ChildId) -> Result<(), DeviceError> {
        if self.replica.docs.contains_key(id) {
            return Ok(());
        }
        let Some(bytes) = self.store.get(Namespace::Doc, id.as_bytes())? else {
            return Ok(());
        };
        let doc = AutoCommit::load(&bytes).map_err(|_| DeviceError::Damaged {
            what: "document",
            id: id.to_string(),
        })?;
        let peer = match self.store.get(Namespace::PeerState, id.as_bytes())? {
            Some(b) => PeerRecord::decode(&b)?,
            None => PeerRecord::default(),
        };
        let actor = self.replica.actor();
        self.replica.restore(
            *id,
            Held {
                file: ChildFile::wrap(doc.with_actor(automerge::ActorId::from(actor.as_slice()))),
                acked: peer.acked,
                fallback: peer.fallback.map(|state| Fallback { state }),
                quarantined: peer.quarantined,
                announce: peer.announce,
            },
        );
        Ok(())
    }

    fn load(&mut self, id: &ChildId) -> Result<(), DeviceError> {
        self.load_if_stored(id)?;
        if self.replica.docs.contains_key(id) {
            Ok(())
        } else if self.arriving.contains(id) {
            Err(DeviceError::Arriving(*id))
        } else {
            Err(DeviceError::NoSuchFile(*id))
        }
    }

    fn persist_one(&mut self, id: &ChildId) -> Result<(), DeviceError> {
        let mut touched = self.replica.take_touched();
        touched.insert(*id);
        self.commit(touched)
    }

    fn persist(&mut self) -> Result<(), DeviceError> {
        let touched = self.replica.take_touched();
        self.commit(touched)
    }

    fn commit(&mut self, touched: std::collections::BTreeSet<ChildId>) -> Result<(), DeviceError> {
        self.commit_with(touched, Batch::new())
    }

    fn commit_with(
        &mut self,
        touched: std::collections::BTreeSet<ChildId>,
        mut batch: Batch,
    ) -> Result<(), DeviceError> {
        let mut summaries = Vec::new();
        for id in &touched {
            let key = id.as_bytes();
            match self.replica.docs.get_mut(id) {
                None => {
                    batch.delete(Namespace::Doc, key);
                    batch.delete(Namespace::PeerState, key);
                    batch.delete(Namespace::Summary, key);
                    summaries.push((*id, None));
                }
                Some(held) => {
                    batch.put(Namespace::Doc, key, &held.file.save());
                    let dirty = held.file.heads() != held.acked || held.announce;
                    let peer = PeerRecord {
                        acked: held.acked.clone(),
                        fallback: held.fallback.as_ref().map(|f| f.state.clone()),
                        quarantined: held.quarantined,
                        announce: held.announce,
                        dirty: dirty || held.fallback.is_some(),
                    };
                    batch.put(Namespace::PeerState, key, &peer.encode());
                    if let Ok(view) = held.file.view() {
                        let summary = view.summary();
                        let json = serde_json::to_vec(&summary).unwrap_or_default();
                        batch.put(Namespace::Summary, key, &json);
                        summaries.push((*id, Some(summary)));
                    }
                }
            }
        }
        if let Some(c) = self.replica.cursor {
            batch.put(Namespace::Meta, META_CURSOR, &encode_cursor(&c));
        }
        if let Some(skew) = self.replica.skew_ms {
            batch.put(Namespace::Meta, META_SKEW, &skew.to_le_bytes());
        }
        let alerts = serde_json::to_vec(&self.replica.alerts).unwrap_or_default();
        batch.put(Namespace::Meta, META_ALERTS, &alerts);
        self.store.commit(batch)?;
        for (id, summary) in summaries {
            self.arriving.remove(&id);
            match summary {
                Some(s) => self.summaries.insert(id, s),
                None => self.summaries.remove(&id),
            };
        }
        Ok(())
    }
}

fn app_key(name: &str) -> Vec<u8> {
    [META_APP, name.as_bytes()].concat()
}

/// The rules engine's view of a file on a date.
pub fn case_of(summary: &FileSummary, on: NaiveDate) -> Case {
    let current = summary.attributes_on(on);
    Case {
        id: summary.id.to_string(),
        birth_date: summary.birth_date,
        registered_on: summary.registered_on,
        categories: current.categories,
        guardianship: current.guardianship,
        risk_flags: current.risk_flags,
        records: summary
            .records
            .iter()
            .map(|(kind, date)| CaseRecord {
                kind: kind.key().to_owned(),
                date: *date,
            })
            .collect(),
    }
}

/// The due-list entries of a file's help plans on `on`: overdue when `on` is past the review
/// date, due soon within `due_soon_days` of it.
pub fn plan_reviews_due(
    summary: &FileSummary,
    due_soon_days: u32,
    on: NaiveDate,
) -> impl Iterator<Item = DueEntry> + '_ {
    summary.plan_reviews.iter().filter_map(move |p| {
        let status = if on > p.review_on {
            Status::Overdue
        } else if (p.review_on - on).num_days() <= i64::from(due_soon_days) {
            Status::DueSoon
        } else {
            return None;
        };
        let days = (p.review_on - p.made_on).num_days().clamp(1, 3650);
        Some(DueEntry {
            id: summary.id.to_string(),
            kind: PLAN_REVIEW.to_owned(),
            every: format!("{days} days").parse().ok()?,
            last: Some(p.made_on),
            due: p.review_on,
            status,
            days_overdue: days_past(p.review_on, on),
        })
    })
}

/// The due-list kind of a help plan's review.
pub const PLAN_REVIEW: &str = "plan_review";

/// What the phone remembers of the server for one file.
#[derive(Debug, Clone, Default)]
struct PeerRecord {
    acked: Vec<automerge::ChangeHash>,
    fallback: Option<automerge::sync::State>,
    quarantined: bool,
    announce: bool,
    /// Holds work the server has not acknowledged: load it for the next sync.
    dirty: bool,
}

impl PeerRecord {
    fn encode(&self) -> Vec<u8> {
        let flags = u8::from(self.quarantined)
            | (u8::from(self.announce) << 1)
            | (u8::from(self.dirty) << 2)
            | (u8::from(self.fallback.is_some()) << 3);
        let mut out = vec![flags];
        out.extend_from_slice(&(self.acked.len() as u16).to_le_bytes());
        for h in &self.acked {
            out.extend_from_slice(&h.0);
        }
        if let Some(state) = &self.fallback {
            out.extend_from_slice(&state.encode());
        }
        out
    }

    fn decode(bytes: &[u8]) -> Result<Self, DeviceError> {
        let damaged = || DeviceError::Damaged {
            what: "sync memory",
            id: String::new(),
        };
        let [flags, n0, n1, rest @ ..] = bytes else {
            return Err(damaged());
        };
        let n = usize::from(u16::from_le_bytes([*n0, *n1]));
        if rest.len() < n * 32 {
            return Err(damaged());
        }
        let acked = rest[..n * 32]
            .chunks_exact(32)
            .map(|c| automerge::ChangeHash::try_from(c).map_err(|_| damaged()))
            .collect::<Result<Vec<_>, _>>()?;
        let fallback = if flags & 8 != 0 {
            Some(automerge::sync::State::decode(&rest[n * 32..]).map_err(|_| damaged())?)
        } else {
            None
        };
        Ok(PeerRecord {
            acked,
            fallback,
            quarantined: flags & 1 != 0,
            announce: flags & 2 != 0,
            dirty: flags & 4 != 0,
        })
    }
}

fn encode_cursor(c: &Cursor) -> Vec<u8> {
    let mut out = c.seq.to_le_bytes().to_vec();
    out.extend_from_slice(&c.token.to_le_bytes());
    out
}

fn decode_cursor(b: &[u8]) -> Result<Cursor, DeviceError> {
    match b {
        [s @ .., t0, t1, t2, t3] if s.len() == 8 => Ok(Cursor {
            seq: u64::from_le_bytes(s.try_into().unwrap_or_default()),
            token: u32::from_le_bytes([*t0, *t1, *t2, *t3]),
        }),
        _ => Err(DeviceError::Damaged {
            what: "cursor",
            id: String::new(),
        }),
    }
}

fn id_of(key: &[u8]) -> Result<ChildId, DeviceError> {
    let bytes: [u8; 16] = key.try_into().map_err(|_| DeviceError::Damaged {
        what: "file key",
        id: String::new(),
    })?;
    Ok(ChildId(uuid::Uuid::from_bytes(bytes)))
}

#[cfg(test)]
mod tests;
