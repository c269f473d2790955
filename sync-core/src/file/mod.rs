//! The child file (一人一档): one Automerge document per child.
//!
//! # Layout (schema version 2; docs/FILE.md has every field with its label and seed)
//!
//! ```text
//! { schema: 1, version: 2, id: "<uuid>",
//!   profile:    { name, sex, birth_date, id_number?, hukou_place, address, village_code, registered_on },
//!   people:     { "<uuid>": { role, name, relation, phone?, void? } },
//!   attributes: { "<uuid>": { attr, value, present, effective, recorded_at, by } },
//!   records:    { "<uuid>": { kind, versions: [ {date, by, recorded_at, ...}, ... ], void? } },
//!   facts | care | benefits | plans | referrals:                       (version 2)
//!               { "<uuid>": { versions: [ {by, recorded_at, ...}, ... ], void? } } }
//! ```
//!
//! `schema` is the oldest version that reads the file and `version` the one it was written
//! at. Version 2 only added collections, which a version-1 reader ignores and keeps (Automerge
//! merges what it does not interpret), so version-2 files still say `schema: 1` and phones on
//! version 1 go on syncing them. A change that an older reader would misread raises `schema`,
//! and such a file is refused by name ([`FileError::UnsupportedSchema`]).
//!
//! Every collection that two phones may add to while offline is a map keyed by a fresh UUID, so
//! concurrent additions merge without conflict. The file is an archive: a record is corrected by
//! appending a new version and withdrawn by voiding it with a reason; nothing is ever deleted.
//! Attributes that drive the schedule (categories, guardianship, risk flags) are assertions with
//! the date each took effect, so the history of values is kept and "current" is computed.
//!
//! Readers are tolerant: a field this version does not know is ignored and a field a later
//! version added takes its default, so version N reads files written at version N-1.
//!
//! ```
//! use homevisit_sync_core::file::{ChildFile, ChildId, Profile, RecordVersion, Findings};
//! use homevisit_sync_core::vocab::{RecordKind, Sex};
//! use chrono::{NaiveDate, TimeZone, Utc};
//!
//! let d = |s: &str| s.parse::<NaiveDate>().unwrap();
//! let profile = Profile {
//!     name: "王小明".into(), sex: Sex::Male, birth_date: d("2015-05-01"), id_number: None,
//!     hukou_place: "铁东区".into(), address: "山门村3组".into(),
//!     village_code: "220303100200".into(), registered_on: d("2026-01-10"),
//! };
//! let at = Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap();
//! let mut file = ChildFile::create(ChildId::new(), &profile, [7; 16], "director-1", at).unwrap();
//! let visit = RecordVersion::home_visit(d("2026-03-01"), "director-1", at, Findings::default());
//! let id = file.add_record(RecordKind::HomeVisit, &visit, "director-1", at).unwrap();
//!
//! let reloaded = ChildFile::load(&file.save(), [8; 16]).unwrap();
//! assert_eq!(reloaded.view().unwrap().records[&id].current().date, d("2026-03-01"));
//! assert!(reloaded.validate().is_empty());
//! ```

mod archive;
mod digest;
mod json;
mod model;
mod parts;
mod validate;

pub use archive::{Amendment, Breach, amendment};
pub use digest::summary_from_digest;
pub use model::*;
pub use parts::*;
pub use validate::Problem;

use automerge::transaction::{CommitOptions, Transactable};
use automerge::{ActorId, AutoCommit, ChangeHash, ObjType, ROOT, ReadDoc};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use serde::Serialize;
use uuid::Uuid;

use crate::vocab::RecordKind;

/// The schema version this build writes (the file's `version`). It reads files of every
/// version whose `schema` is at most this one.
pub const SCHEMA_VERSION: u64 = 2;

/// The oldest schema version that reads the files this build writes (the file's `schema`):
/// version 2 only added collections that version 1 ignores and keeps.
pub const COMPATIBLE_SCHEMA: u64 = 1;

/// What can go wrong reading or changing a child file.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// The bytes are not an Automerge document, or an edit was refused by Automerge.
    #[error("automerge: {0}")]
    Automerge(Box<automerge::AutomergeError>),
    /// A newer app wrote this file; this build cannot know what it means.
    #[error("child file schema {found} is newer than this build reads (up to {SCHEMA_VERSION})")]
    UnsupportedSchema {
        /// The version found in the file.
        found: u64,
    },
    /// The document holds no child file at all (no schema or id).
    #[error("not a child file: {0}")]
    NotAChildFile(&'static str),
    /// The document breaks the schema; every problem found is listed.
    #[error("child file breaks the schema: {}", validate::summary(.0))]
    Invalid(Vec<Problem>),
    /// An edit named a record, person or assertion the file does not hold.
    #[error("no {what} {id} in this file")]
    NotFound {
        /// `record`, `person` or (of a version-2 collection) `entry`.
        what: &'static str,
        /// The id that was asked for.
        id: Uuid,
    },
    /// A voided record cannot be corrected or voided again.
    #[error("record {0} is voided")]
    Voided(Uuid),
}

impl From<automerge::AutomergeError> for FileError {
    fn from(e: automerge::AutomergeError) -> Self {
        // Boxed: Automerge's error is large and every file operation returns this type.
        FileError::Automerge(Box::new(e))
    }
}

/// One child's file, wrapping the Automerge document.
///
/// Every edit is one Automerge change, stamped with its author and time, so the document's
/// history says who changed what and when.
#[derive(Debug, Clone)]
pub struct ChildFile {
    doc: AutoCommit,
}

impl ChildFile {
    /// Starts a new file for a newly registered child.
    pub fn create(
        id: ChildId,
        profile: &Profile,
        actor: [u8; 16],
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<Self, FileError> {
        let mut doc = AutoCommit::new().with_actor(ActorId::from(actor.as_slice()));
        doc.put(ROOT, "schema", COMPATIBLE_SCHEMA)?;
        doc.put(ROOT, "version", SCHEMA_VERSION)?;
        doc.put(ROOT, "id", id.to_string())?;
        json::put(&mut doc, &ROOT, "profile", &to_json(profile))?;
        // Every collection from the start: two phones adding the first entry of a collection
        // that does not exist yet would each create it (see json::union_collections).
        for key in FIRST_COLLECTIONS.into_iter().chain(parts::COLLECTIONS) {
            doc.put_object(ROOT, key, ObjType::Map)?;
        }
        let mut file = ChildFile { doc };
        file.commit(by, at);
        Ok(file)
    }

    /// Loads a saved file (a full save or any concatenation of changes), editing as `actor`.
    pub fn load(bytes: &[u8], actor: [u8; 16]) -> Result<Self, FileError> {
        let doc = AutoCommit::load(bytes)?.with_actor(ActorId::from(actor.as_slice()));
        Self::from_doc(doc)
    }

    /// Wraps a document without checking it, for replicas that hold a file while it syncs.
    pub(crate) fn wrap(doc: AutoCommit) -> Self {
        ChildFile { doc }
    }

    /// Wraps a document received from a peer, checking that it is a child file this build reads.
    pub fn from_doc(doc: AutoCommit) -> Result<Self, FileError> {
        match doc.get(ROOT, "schema")? {
            Some((v, _)) => match v.as_u64().or_else(|| v.as_i64().map(|i| i as u64)) {
                Some(found) if found > SCHEMA_VERSION => {
                    Err(FileError::UnsupportedSchema { found })
                }
                Some(_) => Ok(ChildFile { doc }),
                None => Err(FileError::NotAChildFile("schema is not a number")),
            },
            None => Err(FileError::NotAChildFile("no schema version")),
        }
    }

    /// Whether the document holds a child file at all (it does not while its first changes
    /// are still on the way).
    pub fn is_child_file(&self) -> bool {
        matches!(self.doc.get(ROOT, "schema"), Ok(Some(_)))
    }

    /// The underlying document, for the sync protocol.
    pub fn doc(&self) -> &AutoCommit {
        &self.doc
    }

    /// The underlying document, mutably, for the sync protocol.
    pub fn doc_mut(&mut self) -> &mut AutoCommit {
        &mut self.doc
    }

    /// Gives up the wrapper.
    pub fn into_doc(self) -> AutoCommit {
        self.doc
    }

    /// The compact full encoding of the file.
    pub fn save(&mut self) -> Vec<u8> {
        self.doc.save()
    }

    /// The current heads of the document's change graph.
    pub fn heads(&mut self) -> Vec<ChangeHash> {
        self.doc.get_heads()
    }

    /// The file's id as written in it.
    pub fn id(&self) -> Result<ChildId, FileError> {
        self.root_str("id")?
            .and_then(|s| s.parse().ok())
            .ok_or(FileError::NotAChildFile("no valid id"))
    }

    /// The village the file belongs to: the key of all access control, read without
    /// materialising the rest of the file.
    pub fn village_code(&self) -> Option<String> {
        village_of(&self.doc)
    }

    /// Replaces the profile fields that differ from `profile`; unchanged fields are not
    /// touched, so two phones correcting different fields both keep their edit.
    pub fn update_profile(
        &mut self,
        profile: &Profile,
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<(), FileError> {
        let obj = match self.doc.get(ROOT, "profile")? {
            Some((_, obj)) => obj,
            None => self.doc.put_object(ROOT, "profile", ObjType::Map)?,
        };
        let old = json::read(&self.doc, &obj);
        if let serde_json::Value::Object(new) = to_json(profile) {
            for (k, v) in &new {
                if old.get(k) != Some(v) {
                    json::put(&mut self.doc, &obj, k.as_str(), v)?;
                }
            }
            if let serde_json::Value::Object(old) = old {
                for k in old.keys().filter(|k| !new.contains_key(*k)) {
                    self.doc.delete(&obj, k.as_str())?;
                }
            }
        }
        self.commit(by, at);
        Ok(())
    }

    /// Adds a guardian or entrusted caregiver.
    pub fn add_person(
        &mut self,
        person: &Person,
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<Uuid, FileError> {
        let id = Uuid::new_v4();
        let people = self.collection("people")?;
        json::put(&mut self.doc, &people, id.to_string(), &to_json(person))?;
        self.commit(by, at);
        Ok(id)
    }

    /// Records that an attribute took (or lost) a value on a date.
    pub fn assert_attribute(
        &mut self,
        assertion: &Assertion,
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<Uuid, FileError> {
        let id = Uuid::new_v4();
        let attrs = self.collection("attributes")?;
        json::put(&mut self.doc, &attrs, id.to_string(), &to_json(assertion))?;
        self.commit(by, at);
        Ok(id)
    }

    /// Adds a record (contact, home visit, work log, ...). Returns its id.
    pub fn add_record(
        &mut self,
        kind: RecordKind,
        version: &RecordVersion,
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<Uuid, FileError> {
        let id = Uuid::new_v4();
        let records = self.collection("records")?;
        let record = serde_json::json!({ "kind": kind, "versions": [to_json(version)] });
        json::put(&mut self.doc, &records, id.to_string(), &record)?;
        self.commit(by, at);
        Ok(id)
    }

    /// Corrects a record by appending a new version; the earlier versions stay in the file.
    pub fn correct_record(
        &mut self,
        id: Uuid,
        version: &RecordVersion,
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<(), FileError> {
        let record = self.live_entry("records", "record", id)?;
        let versions = self.versions_of(&record)?;
        let len = self.doc.length(&versions);
        json::insert(&mut self.doc, &versions, len, &to_json(version))?;
        self.commit(by, at);
        Ok(())
    }

    /// Adds an entry to one of version 2's collections (facts, care, benefits, plans,
    /// referrals). The entry is checked first: on any problem nothing is written and the error
    /// names the field (`benefits/<id>/versions/0/kind`).
    pub fn add_part<T: PartValue>(
        &mut self,
        value: &T,
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<Uuid, FileError> {
        let id = Uuid::new_v4();
        let version =
            Self::checked_part(value, &format!("{}/{id}/versions/0", T::COLLECTION), by, at)?;
        let parts = self.collection(T::COLLECTION)?;
        let entry = serde_json::json!({ "versions": [version] });
        json::put(&mut self.doc, &parts, id.to_string(), &entry)?;
        self.mark_version()?;
        self.commit(by, at);
        Ok(id)
    }

    /// Corrects an entry of a version-2 collection by appending a version (a help plan's
    /// review, a benefit granted after it was applied for...).
    pub fn correct_part<T: PartValue>(
        &mut self,
        id: Uuid,
        value: &T,
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<(), FileError> {
        let entry = self.live_entry(T::COLLECTION, "entry", id)?;
        let versions = self.versions_of(&entry)?;
        let len = self.doc.length(&versions);
        let path = format!("{}/{id}/versions/{len}", T::COLLECTION);
        let version = Self::checked_part(value, &path, by, at)?;
        json::insert(&mut self.doc, &versions, len, &version)?;
        self.mark_version()?;
        self.commit(by, at);
        Ok(())
    }

    /// Withdraws an entry of a version-2 collection, keeping it with the reason.
    pub fn void_part(
        &mut self,
        collection: &str,
        id: Uuid,
        reason: &str,
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<(), FileError> {
        if !parts::COLLECTIONS.contains(&collection) {
            return Err(unknown_collection(collection));
        }
        let entry = self.live_entry(collection, "entry", id)?;
        self.void(&entry, reason, by, at)
    }

    /// [`ChildFile::add_part`] for an entry given as JSON in the document's shape (docs/FILE.md),
    /// without `by` and `recorded_at`, which are stamped here: what the phone SDK and the field
    /// tool take. An unknown collection, an unknown key or a bad value is refused by path
    /// (`benefits/kind`), and nothing is written.
    pub fn add_part_json(
        &mut self,
        collection: &str,
        entry: &serde_json::Value,
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<Uuid, FileError> {
        match collection {
            "facts" => self.add_part(&parse_part::<Fact>(entry, by, at)?, by, at),
            "care" => self.add_part(&parse_part::<Care>(entry, by, at)?, by, at),
            "benefits" => self.add_part(&parse_part::<Benefit>(entry, by, at)?, by, at),
            "plans" => self.add_part(&parse_part::<HelpPlan>(entry, by, at)?, by, at),
            "referrals" => self.add_part(&parse_part::<Referral>(entry, by, at)?, by, at),
            other => Err(unknown_collection(other)),
        }
    }

    /// [`ChildFile::correct_part`] for an entry given as JSON, as [`ChildFile::add_part_json`].
    pub fn correct_part_json(
        &mut self,
        collection: &str,
        id: Uuid,
        entry: &serde_json::Value,
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<(), FileError> {
        match collection {
            "facts" => self.correct_part(id, &parse_part::<Fact>(entry, by, at)?, by, at),
            "care" => self.correct_part(id, &parse_part::<Care>(entry, by, at)?, by, at),
            "benefits" => self.correct_part(id, &parse_part::<Benefit>(entry, by, at)?, by, at),
            "plans" => self.correct_part(id, &parse_part::<HelpPlan>(entry, by, at)?, by, at),
            "referrals" => self.correct_part(id, &parse_part::<Referral>(entry, by, at)?, by, at),
            other => Err(unknown_collection(other)),
        }
    }

    fn checked_part<T: PartValue>(
        value: &T,
        path: &str,
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<serde_json::Value, FileError> {
        let version = to_json(&Stamped {
            by: by.to_owned(),
            recorded_at: at,
            value,
        });
        let problems = parts::check_version::<T>(path, &version);
        if problems.is_empty() {
            Ok(version)
        } else {
            Err(FileError::Invalid(problems))
        }
    }

    /// A file that gains a version-2 part says so (older files have no `version`).
    fn mark_version(&mut self) -> Result<(), FileError> {
        let current = self.doc.get(ROOT, "version")?.and_then(|(v, _)| v.as_u64());
        if current.is_none_or(|v| v < SCHEMA_VERSION) {
            self.doc.put(ROOT, "version", SCHEMA_VERSION)?;
        }
        Ok(())
    }

    /// A record's or an entry's object, if it exists and is not voided (`what` names it in
    /// the error).
    fn live_entry(
        &mut self,
        collection: &str,
        what: &'static str,
        id: Uuid,
    ) -> Result<automerge::ObjId, FileError> {
        let parts = self.collection(collection)?;
        let Some((_, entry)) = self.doc.get(&parts, id.to_string())? else {
            return Err(FileError::NotFound { what, id });
        };
        if self.doc.get(&entry, "void")?.is_some() {
            return Err(FileError::Voided(id));
        }
        Ok(entry)
    }

    fn versions_of(&mut self, entry: &automerge::ObjId) -> Result<automerge::ObjId, FileError> {
        Ok(match self.doc.get(entry, "versions")? {
            Some((_, obj)) => obj,
            None => self.doc.put_object(entry, "versions", ObjType::List)?,
        })
    }

    /// Withdraws a record or an entry, keeping it with the reason.
    fn void(
        &mut self,
        entry: &automerge::ObjId,
        reason: &str,
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<(), FileError> {
        let void = Void {
            reason: reason.to_owned(),
            by: by.to_owned(),
            at,
        };
        json::put(&mut self.doc, entry, "void", &to_json(&void))?;
        self.commit(by, at);
        Ok(())
    }

    /// Withdraws a record, keeping it in the archive with the reason.
    pub fn void_record(
        &mut self,
        id: Uuid,
        reason: &str,
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<(), FileError> {
        let record = self.live_entry("records", "record", id)?;
        self.void(&record, reason, by, at)
    }

    /// The whole file as typed values. Fails with every schema problem if the file is invalid.
    pub fn view(&self) -> Result<ChildFileView, FileError> {
        view_of(&self.doc)
    }

    /// Every way the file breaks the schema; empty when it is valid.
    pub fn validate(&self) -> Vec<Problem> {
        validate::check(&json::read(&self.doc, &ROOT))
    }

    /// The file as a JSON tree, as the read APIs show it.
    pub fn to_json(&self) -> serde_json::Value {
        json::read(&self.doc, &ROOT)
    }

    fn root_str(&self, key: &str) -> Result<Option<String>, FileError> {
        Ok(self
            .doc
            .get(ROOT, key)?
            .and_then(|(v, _)| v.as_str().map(str::to_owned)))
    }

    fn collection(&mut self, key: &str) -> Result<automerge::ObjId, FileError> {
        Ok(match self.doc.get(ROOT, key)? {
            Some((_, obj)) => obj,
            None => self.doc.put_object(ROOT, key, ObjType::Map)?,
        })
    }

    fn commit(&mut self, by: &str, at: DateTime<Utc>) {
        self.doc.commit_with(
            CommitOptions::default()
                .with_message(by.to_owned())
                .with_time(at.timestamp()),
        );
    }
}

fn unknown_collection(name: &str) -> FileError {
    FileError::Invalid(vec![Problem {
        path: name.to_owned(),
        message: format!(
            "not a part of the file: one of {}",
            parts::COLLECTIONS.join(", ")
        ),
    }])
}

/// Reads an entry given as JSON, stamped with `by` and `at`, naming the field of any problem.
fn parse_part<T: PartValue>(
    entry: &serde_json::Value,
    by: &str,
    at: DateTime<Utc>,
) -> Result<T, FileError> {
    let serde_json::Value::Object(fields) = entry else {
        return Err(FileError::Invalid(vec![Problem {
            path: T::COLLECTION.into(),
            message: "an entry is a JSON object".into(),
        }]));
    };
    let mut stamped = fields.clone();
    stamped.insert("by".into(), by.into());
    stamped.insert("recorded_at".into(), to_json(&at));
    let stamped = serde_json::Value::Object(stamped);
    let problems = parts::check_version::<T>(T::COLLECTION, &stamped);
    if !problems.is_empty() {
        return Err(FileError::Invalid(problems));
    }
    Stamped::<T>::deserialize(&stamped)
        .map(|s| s.value)
        .map_err(|e| {
            FileError::Invalid(vec![Problem {
                path: T::COLLECTION.into(),
                message: e.to_string(),
            }])
        })
}

/// Every way a document breaks the schema, including carrying an id other than `id`.
///
/// The server runs this on each merged document before committing a sync.
pub fn validate_doc<D: ReadDoc>(doc: &D, id: ChildId) -> Vec<Problem> {
    checked_view(doc, id).err().unwrap_or_default()
}

/// Validates a document as [`validate_doc`] does and returns its typed view, reading the
/// document once: the server validates and projects every merged file, and reading a
/// document's tree is most of the cost of either.
pub fn checked_view<D: ReadDoc>(doc: &D, id: ChildId) -> Result<ChildFileView, Vec<Problem>> {
    check_tree(json::read(doc, &ROOT), id).map(|c| c.view)
}

/// A file that passed validation: its typed view, and the JSON tree it was read as (kept to
/// check the same file again cheaply, see [`checked_since`]).
#[derive(Debug, Clone)]
pub struct Checked {
    /// The file.
    pub view: ChildFileView,
    /// The document as [`ChildFile::to_json`] shows it.
    pub tree: serde_json::Value,
    /// When checked since an earlier tree: the file before and after, each as its root fields
    /// and only the entries of its collections that the changes touched. That is all a merge
    /// can have done, so [`amendment`] judges the merge on these.
    pub touched: Option<(serde_json::Value, serde_json::Value)>,
}

/// [`checked_view`] for a document that was read before: `prior` is its tree at `heads`, and
/// only Automerge's patches from those heads to the current ones are applied to it (falling
/// back to reading the whole document if a patch cannot be reproduced). On the server, where a
/// merge adds a record or two to a file of hundreds of objects, this is tens of microseconds
/// instead of a millisecond, provided the document's diff cursor was set at `heads` (see
/// [`AutoCommit::update_diff_cursor`]) before the changes were applied; otherwise the patches
/// come from a scan of the document, which is correct but hardly cheaper than reading it.
///
/// Only the root fields and the entries the patches touched are validated: the others are as
/// they were when the earlier tree was checked.
pub fn checked_since(
    doc: &mut AutoCommit,
    id: ChildId,
    prior: Option<(&[ChangeHash], serde_json::Value)>,
) -> Result<Checked, Vec<Problem>> {
    let Some((heads, mut tree)) = prior else {
        doc.update_diff_cursor();
        return check_tree(json::read(doc, &ROOT), id);
    };
    let now = doc.get_heads();
    let patches = doc.diff(heads, &now);
    let mut touched = touched_by(&patches);
    // A version-2 collection that two phones each created is two maps, read as one; Automerge
    // sends no patch for a change to the one that lost, so such a collection is read and
    // judged whole.
    let conflicted: Vec<&str> = parts::COLLECTIONS
        .into_iter()
        .filter(|key| doc.get_all(ROOT, *key).is_ok_and(|all| all.len() > 1))
        .collect();
    for key in &conflicted {
        touched.insert((*key).to_owned(), None);
    }
    let before = only_touched(&tree, &touched);
    if !conflicted.is_empty() || !json::apply_patches(&mut tree, &patches) {
        tree = json::read(doc, &ROOT);
    }
    // Every debug build (so every test run) checks the shortcut against the long way.
    debug_assert_eq!(tree, json::read(doc, &ROOT), "a patched tree differs");
    // From here Automerge indexes the changes applied, so the next check's patches come from
    // that index instead of a scan of the whole document.
    doc.update_diff_cursor();
    let after = only_touched(&tree, &touched);
    problems_of(&after, id)?;
    let mut checked = view_checked(tree)?;
    checked.touched = Some((before, after));
    Ok(checked)
}

/// Per collection of the file, the entries a merge's patches touched; `None` for a collection
/// put at the root, all of whose entries count.
type Touched = std::collections::BTreeMap<String, Option<std::collections::BTreeSet<String>>>;

/// The collections of version 1 of the file; version 2 added [`parts::COLLECTIONS`].
const FIRST_COLLECTIONS: [&str; 3] = ["people", "attributes", "records"];

/// The root keys whose values are maps of entries by id.
fn is_collection(key: &str) -> bool {
    FIRST_COLLECTIONS.contains(&key) || parts::COLLECTIONS.contains(&key)
}

fn touched_by(patches: &[automerge::Patch]) -> Touched {
    use automerge::{PatchAction, Prop};
    let mut touched = Touched::new();
    for patch in patches {
        let key_of = |action: &PatchAction| match action {
            PatchAction::PutMap { key, .. }
            | PatchAction::DeleteMap { key }
            | PatchAction::Conflict {
                prop: Prop::Map(key),
            } => Some(key.clone()),
            _ => None,
        };
        let mut path = patch.path.iter().map(|(_, prop)| prop);
        let (collection, entry) = match (path.next(), path.next()) {
            (Some(Prop::Map(c)), Some(Prop::Map(e))) => (c.clone(), Some(e.clone())),
            (Some(Prop::Map(c)), Some(Prop::Seq(_))) => (c.clone(), None),
            (Some(Prop::Map(c)), None) => (c.clone(), key_of(&patch.action)),
            // At the root: a collection put or deleted whole, or a root field.
            (None, _) => match key_of(&patch.action) {
                Some(c) => (c, None),
                None => continue,
            },
            (Some(Prop::Seq(_)), _) => continue,
        };
        if !is_collection(&collection) {
            // A root field (the profile, say): every tree of touched entries has them all.
            continue;
        }
        match (
            touched
                .entry(collection)
                .or_insert_with(|| Some(Default::default())),
            entry,
        ) {
            (Some(entries), Some(e)) => {
                entries.insert(e);
            }
            (all, None) => *all = None,
            (None, Some(_)) => {}
        }
    }
    touched
}

/// `tree` with its collections cut down to the entries in `touched`.
fn only_touched(tree: &serde_json::Value, touched: &Touched) -> serde_json::Value {
    use serde_json::Value;
    let Value::Object(root) = tree else {
        return tree.clone();
    };
    let fields = root.iter().map(|(k, v)| {
        let kept = match (is_collection(k), touched.get(k), v) {
            (true, Some(Some(keys)), Value::Object(entries)) => Value::Object(
                keys.iter()
                    .filter_map(|e| Some((e.clone(), entries.get(e)?.clone())))
                    .collect(),
            ),
            (true, None, Value::Object(_)) => Value::Object(Default::default()),
            // A root field, a collection touched whole, or one that is not a map (which
            // validation then names).
            _ => v.clone(),
        };
        (k.clone(), kept)
    });
    Value::Object(fields.collect())
}

fn check_tree(tree: serde_json::Value, id: ChildId) -> Result<Checked, Vec<Problem>> {
    problems_of(&tree, id)?;
    view_checked(tree)
}

/// Every schema problem of `tree`, including carrying an id other than `id`.
fn problems_of(tree: &serde_json::Value, id: ChildId) -> Result<(), Vec<Problem>> {
    let mut problems = validate::check(tree);
    let written = tree.get("id").and_then(serde_json::Value::as_str);
    if written.is_some_and(|w| w != id.to_string()) {
        problems.push(Problem {
            path: "id".into(),
            message: format!(
                "file says it is {} but was sent as {id}",
                written.unwrap_or_default()
            ),
        });
    }
    match problems.is_empty() {
        true => Ok(()),
        false => Err(problems),
    }
}

/// The typed view of a tree that passed validation.
fn view_checked(tree: serde_json::Value) -> Result<Checked, Vec<Problem>> {
    match ChildFileView::deserialize(&tree) {
        Ok(view) => Ok(Checked {
            view,
            tree,
            touched: None,
        }),
        Err(e) => Err(vec![Problem {
            path: String::new(),
            message: e.to_string(),
        }]),
    }
}

/// A document's file as typed values (as [`ChildFile::view`]), without taking the document.
pub fn view_of<D: ReadDoc>(doc: &D) -> Result<ChildFileView, FileError> {
    let tree = json::read(doc, &ROOT);
    let problems = validate::check(&tree);
    if !problems.is_empty() {
        return Err(FileError::Invalid(problems));
    }
    serde_json::from_value(tree).map_err(|e| {
        FileError::Invalid(vec![Problem {
            path: String::new(),
            message: e.to_string(),
        }])
    })
}

/// A document as a JSON tree, as [`ChildFile::to_json`] shows it, without wrapping it.
pub fn tree_of<D: ReadDoc>(doc: &D) -> serde_json::Value {
    json::read(doc, &ROOT)
}

/// The village code written in a document's profile, if any.
pub fn village_of<D: ReadDoc>(doc: &D) -> Option<String> {
    let (_, profile) = doc.get(ROOT, "profile").ok()??;
    let (v, _) = doc.get(&profile, "village_code").ok()??;
    v.as_str().map(str::to_owned)
}

fn to_json<T: Serialize>(value: &T) -> serde_json::Value {
    // The model types are plain structs of strings, numbers and dates: serialising them to a
    // JSON tree cannot fail.
    serde_json::to_value(value).unwrap_or(serde_json::Value::Null)
}

impl ChildFileView {
    /// The child's attributes in force on `on` (see [`attributes_on`]).
    pub fn attributes_on(&self, on: NaiveDate) -> CurrentAttributes {
        attributes_on(self.attributes.iter(), on)
    }

    /// The dates of the live (not voided) records, as the rules engine counts them.
    pub fn record_dates(&self) -> impl Iterator<Item = (RecordKind, NaiveDate)> + '_ {
        self.records
            .values()
            .filter(|r| r.void.is_none())
            .map(|r| (r.kind, r.current().date))
    }

    /// What the due list needs of this file, small enough to keep for every file on a phone.
    pub fn summary(&self) -> FileSummary {
        FileSummary {
            id: self.id,
            name: self.profile.name.clone(),
            village_code: self.profile.village_code.clone(),
            birth_date: self.profile.birth_date,
            registered_on: self.profile.registered_on,
            attributes: self.attributes.clone(),
            records: self.record_dates().collect(),
            plan_reviews: self.plan_reviews(),
        }
    }
}

/// The schedule-relevant digest of a file: the phone keeps one per file so that listing who is
/// due never loads a document.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct FileSummary {
    /// The file.
    pub id: ChildId,
    /// The child's name, for the list.
    pub name: String,
    /// The village.
    pub village_code: String,
    /// Date of birth.
    pub birth_date: NaiveDate,
    /// Registration date.
    pub registered_on: NaiveDate,
    /// Every attribute assertion.
    pub attributes: std::collections::BTreeMap<Uuid, Assertion>,
    /// Kind and date of every live record.
    pub records: Vec<(RecordKind, NaiveDate)>,
    /// The next review of every open help plan (absent in summaries kept before version 2).
    #[serde(default)]
    pub plan_reviews: Vec<PlanReview>,
}

impl FileSummary {
    /// The child's attributes in force on `on`.
    pub fn attributes_on(&self, on: NaiveDate) -> CurrentAttributes {
        attributes_on(self.attributes.iter(), on)
    }
}

/// The attributes in force on `on`: for each value, the latest assertion effective on or
/// before that date decides (ties broken by recording time, then id, so every replica computes
/// the same answer).
pub fn attributes_on<'a>(
    assertions: impl Iterator<Item = (&'a Uuid, &'a Assertion)>,
    on: NaiveDate,
) -> CurrentAttributes {
    use std::collections::btree_map::Entry;
    let mut latest: std::collections::BTreeMap<(AttrKind, &str), (&Assertion, &Uuid)> =
        Default::default();
    let newer = |a: &Assertion, id: &Uuid, old: &(&Assertion, &Uuid)| {
        (a.effective, a.recorded_at, id) > (old.0.effective, old.0.recorded_at, old.1)
    };
    for (id, a) in assertions.filter(|(_, a)| a.effective <= on) {
        // Guardianship has one value at a time; the others are sets of values.
        let value = if a.attr == AttrKind::Guardianship {
            ""
        } else {
            a.value.as_str()
        };
        match latest.entry((a.attr, value)) {
            Entry::Vacant(v) => {
                v.insert((a, id));
            }
            Entry::Occupied(mut o) => {
                if newer(a, id, o.get()) {
                    o.insert((a, id));
                }
            }
        }
    }
    let mut current = CurrentAttributes::default();
    for ((attr, _), (a, _)) in latest {
        if !a.present {
            continue;
        }
        match attr {
            AttrKind::Category => current.categories.push(a.value.clone()),
            AttrKind::RiskFlag => current.risk_flags.push(a.value.clone()),
            AttrKind::Guardianship => current.guardianship = a.value.parse().ok(),
        }
    }
    current
}

#[cfg(test)]
mod compat;
#[cfg(test)]
mod tests;
