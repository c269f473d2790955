//! Reading child files: who may, what is audited, and the list of a scope with the schedules
//! stored for it (see `service::schedules`).

use automerge::AutoCommit;
use homevisit_sync_core::sync::server::ServerStore;
use homevisit_sync_core::sync::{ChildId, Scope};
use serde::Serialize;
use std::collections::BTreeSet;

use crate::store::DbConnection;
use crate::store::audit::{self, Read};
use crate::store::children::{PageFilter, page};
use crate::store::schedules;
use crate::store::sync::SqlSyncStore;

/// Why a file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// No such file.
    #[error("no such child file")]
    NotFound,
    /// The file lies outside the reader's regions.
    #[error("child {0} is outside your regions")]
    Forbidden(uuid::Uuid),
    /// The stored file does not load: the server's own data is damaged.
    #[error("stored file {0} is damaged: {1}")]
    Damaged(uuid::Uuid, String),
    /// The database failed.
    #[error("database: {0}")]
    Store(#[from] diesel::result::Error),
}

/// Loads a file for a reader who may see it, writing the audit row (`reader`, with its action)
/// before the file is read. Run it inside the transaction the answer is read in.
pub fn read_file(
    conn: &mut DbConnection,
    scope: &Scope,
    reader: &Read<'_>,
    id: uuid::Uuid,
) -> Result<AutoCommit, ReadError> {
    let village = SqlSyncStore::new(conn)
        .doc_village(ChildId(id))?
        .ok_or(ReadError::NotFound)?;
    if !scope.contains(&village) {
        return Err(ReadError::Forbidden(id));
    }
    let child = id.to_string();
    audit::record(
        conn,
        &Read {
            child_id: Some(&child),
            village: Some(&village),
            ..reader.clone()
        },
    )?;
    let stored = SqlSyncStore::new(conn)
        .doc(ChildId(id))?
        .ok_or(ReadError::NotFound)?;
    AutoCommit::load(&stored.bytes).map_err(|e| ReadError::Damaged(id, e.to_string()))
}

/// Where a file moves (seed 002 item 8: served where the residence and 户籍 offices agree).
#[derive(Debug, Clone, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Transfer {
    /// The 12-digit code of the village or community that will serve the child.
    #[schema(pattern = "^[0-9]{12}$", example = "220303101201")]
    pub village_code: String,
    /// The new home address, when it changes.
    #[schema(max_length = 200)]
    pub address: Option<String>,
    /// The place of household registration, when it changes.
    #[schema(max_length = 200)]
    pub hukou_place: Option<String>,
    /// Why (the agreement of the two offices).
    #[schema(min_length = 1, max_length = 500, pattern = "\\S")]
    pub reason: String,
}

/// A transfer done.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Transferred {
    /// The file.
    pub id: String,
    /// Where it was.
    pub from: String,
    /// Where it is now.
    pub to: String,
}

/// Why a transfer was refused.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    /// Reading the file failed (not found, outside the regions, damaged, database).
    #[error(transparent)]
    Read(#[from] ReadError),
    /// The target village is not a village the server knows.
    #[error("village {0} is not a known village")]
    UnknownVillage(String),
    /// The file is already served there.
    #[error("the file is already served by village {0}")]
    SameVillage(String),
    /// The stored file does not read, or the change was refused.
    #[error("the file could not be changed: {0}")]
    File(#[from] homevisit_sync_core::file::FileError),
    /// Storing failed.
    #[error("storing: {0}")]
    Stored(#[from] crate::service::sync::MadeHereError),
}

impl From<diesel::result::Error> for TransferError {
    fn from(e: diesel::result::Error) -> Self {
        TransferError::Read(ReadError::Store(e))
    }
}

/// Moves a file to another village, signed by the reader (a county or admin user): the profile's village (and
/// address and 户籍, when given) change in one change of the document, which is stored and
/// numbered as any merge, so the old village's phones are told to drop it and the new one's
/// receive it with its whole history at their next sync. The read is audited by `reader` and
/// the transfer itself as `children.transfer` under the new village. The caller's `scope`
/// must hold the file; the target may be any village the server knows (moves cross counties).
pub fn transfer(
    conn: &mut DbConnection,
    scope: &Scope,
    reader: &Read<'_>,
    id: uuid::Uuid,
    to: &Transfer,
    at: chrono::DateTime<chrono::Utc>,
    today: chrono::NaiveDate,
) -> Result<Transferred, TransferError> {
    // The reader is the county or admin user, who signs the change.
    let by = reader.username;
    if !crate::store::people::village_codes(conn)?.contains(&to.village_code) {
        return Err(TransferError::UnknownVillage(to.village_code.clone()));
    }
    let doc = read_file(conn, scope, reader, id)?;
    let mut file = homevisit_sync_core::file::ChildFile::from_doc(doc)?;
    // A fresh actor: the server never edits twice under one, as a phone would not.
    file.doc_mut().set_actor(automerge::ActorId::random());
    let mut profile = file.view()?.profile;
    let from = profile.village_code.clone();
    if from == to.village_code {
        return Err(TransferError::SameVillage(from));
    }
    profile.village_code = to.village_code.clone();
    if let Some(address) = &to.address {
        profile.address = address.clone();
    }
    if let Some(hukou) = &to.hukou_place {
        profile.hukou_place = hukou.clone();
    }
    file.update_profile(&profile, by, at)?;
    // The move and its reason stay in the file's own history, which goes with it.
    let note = homevisit_sync_core::file::RecordVersion::summary(
        today,
        by,
        at,
        &format!("档案由 {from} 转至 {}：{}", to.village_code, to.reason),
    );
    file.add_record(
        homevisit_sync_core::vocab::RecordKind::WorkLog,
        &note,
        by,
        at,
    )?;
    crate::service::sync::store_made_here(conn, &mut file, by)?;
    let child = id.to_string();
    crate::store::audit::record(
        conn,
        &Read {
            action: "children.transfer",
            child_id: Some(&child),
            village: Some(&to.village_code),
            ..reader.clone()
        },
    )?;
    Ok(Transferred {
        id: child,
        from,
        to: to.village_code.clone(),
    })
}

/// What the list filters by.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListFilter {
    /// One village code (in the caller's regions).
    #[param(pattern = "^[0-9]{12}$", example = "220303100200")]
    pub village: Option<String>,
    /// A category key in force today.
    #[param(example = "left_behind")]
    pub category: Option<String>,
    /// The worst schedule status today.
    #[param(inline, value_type = Option<ListStatus>)]
    pub status: Option<String>,
    /// A risk flag in force today.
    #[param(example = "living_alone")]
    pub risk_flag: Option<String>,
    /// Only children with (or without) an open danger report.
    pub danger_open: Option<bool>,
    /// Only children with an open danger report that must go to the police and records no
    /// police report (seed 002 item 8).
    pub police_unreported: Option<bool>,
    /// The guardianship level in force, or `unassessed` for the children still to assess.
    #[param(inline, value_type = Option<ListGuardianship>)]
    pub guardianship: Option<String>,
    /// The school status in force.
    #[param(inline, value_type = Option<ListSchoolStatus>)]
    pub school_status: Option<String>,
    /// Only children in entrusted care past a week without a parent's contact (seed 003), or
    /// only those not.
    pub entrusted_care_lapsed: Option<bool>,
    /// Only children with (or without) an open help plan whose review date is past.
    pub plan_review_overdue: Option<bool>,
    /// At most this many (default 200).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<usize>,
    /// Skip this many.
    #[param(minimum = 0, maximum = 2147483647)]
    pub offset: Option<u32>,
}

/// The statuses the list filters by.
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum ListStatus {
    /// Nothing due within the due-soon window.
    Ok,
    /// Due within the window.
    DueSoon,
    /// Past due.
    Overdue,
    /// No schedule applies.
    NotServed,
}

impl ListStatus {
    /// The keys, as the query takes them.
    pub const KEYS: [&str; 4] = ["ok", "due_soon", "overdue", "not_served"];
}

/// The guardianship levels the list filters by (sync-core's `Guardianship`, and `unassessed`).
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum ListGuardianship {
    /// 较好.
    Good,
    /// 一般.
    Average,
    /// 较差 (a local extension).
    Poor,
    /// Not assessed yet.
    Unassessed,
}

/// The school statuses the list filters by (sync-core's `SchoolStatus`).
#[derive(utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum ListSchoolStatus {
    /// 在读.
    Enrolled,
    /// 辍学.
    DroppedOut,
    /// 劝返复学.
    Returned,
}

/// One row of the children list.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ChildRow {
    /// The file id.
    pub id: String,
    /// The child's name.
    pub name: String,
    /// The village code.
    pub village: String,
    /// Categories in force today.
    pub categories: Vec<String>,
    /// The guardianship level in force; absent while not assessed.
    pub guardianship: Option<String>,
    /// The worst schedule status today, or `not_served`.
    #[schema(value_type = ListStatus)]
    pub status: String,
    /// The schedules today, one per kind of record the rules require.
    pub schedules: Vec<ScheduleView>,
    /// The latest home visit.
    pub last_home_visit: Option<String>,
    /// A danger record without an outcome.
    pub danger_open: bool,
    /// An open danger report of a kind that must go to the police, with no police report
    /// recorded.
    pub police_unreported: bool,
    /// The school status in force, if recorded.
    pub school_status: Option<String>,
    /// In entrusted care and past a week without a parent's contact (seed 003).
    pub entrusted_care_lapsed: bool,
    /// The earliest review date of an open help plan (`YYYY-MM-DD`).
    pub plan_review_on: Option<String>,
}

/// When one kind of record is next due for a child.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ScheduleView {
    /// The record kind (`home_visit`, `contact`, ...).
    pub kind: String,
    /// The interval of the rule that applies, as rule files write it (`1 month`).
    pub every: String,
    /// The latest qualifying record, if any (`YYYY-MM-DD`).
    pub last: Option<String>,
    /// When it is due (`YYYY-MM-DD`).
    pub due: String,
    /// `ok`, `due_soon` or `overdue`.
    pub status: String,
    /// Days past due when overdue, else 0.
    pub days_overdue: i32,
}

/// The list answer.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ChildList {
    /// Matching children in the caller's scope, before paging.
    pub total: usize,
    /// This page.
    pub children: Vec<ChildRow>,
}

/// The children of `scope` matching `filter`, as last evaluated (by the sync that touched
/// them, or the daily job): filtered and paged in the database. Days overdue are counted to
/// `today`.
pub fn list(
    conn: &mut DbConnection,
    scope: &Scope,
    filter: &ListFilter,
    today: chrono::NaiveDate,
) -> diesel::QueryResult<ChildList> {
    let page_filter = PageFilter {
        village: filter.village.as_deref(),
        status: filter.status.as_deref(),
        category: filter.category.as_deref(),
        risk_flag: filter.risk_flag.as_deref(),
        guardianship: filter.guardianship.as_deref(),
        danger_open: filter.danger_open,
        police_unreported: filter.police_unreported,
        school_status: filter.school_status.as_deref(),
        entrusted_care_lapsed: filter.entrusted_care_lapsed,
        plan_review_overdue: filter.plan_review_overdue,
        today,
    };
    let limit = filter.limit.unwrap_or(200).min(1000) as i64;
    let offset = i64::from(filter.offset.unwrap_or(0));
    let (total, rows) = page(conn, scope, &page_filter, limit, offset)?;
    let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
    let mut schedules = schedules::of(conn, &ids)?;
    let mut labels = schedules::labels_of(conn, &ids, &["category", "guardianship"])?;
    let mut label = |id: &str, name: &str| {
        labels
            .remove(&(id.to_owned(), name.to_owned()))
            .unwrap_or_default()
    };
    let children = rows
        .into_iter()
        .map(|row| ChildRow {
            categories: label(&row.id, "category"),
            guardianship: label(&row.id, "guardianship")
                .pop()
                .filter(|l| l != crate::service::schedules::UNASSESSED),
            schedules: schedules
                .remove(&row.id)
                .unwrap_or_default()
                .into_iter()
                .map(|s| ScheduleView {
                    // The job rewrites a child's rows when its status changes, not every day
                    // it stays overdue.
                    days_overdue: match (s.status.as_str(), s.due.parse()) {
                        ("overdue", Ok(due)) => {
                            i32::try_from(homevisit_sync_core::rules::days_past(due, today))
                                .unwrap_or(i32::MAX)
                        }
                        _ => s.days_overdue,
                    },
                    kind: s.kind,
                    every: s.every,
                    last: s.last,
                    due: s.due,
                    status: s.status,
                })
                .collect(),
            id: row.id,
            name: row.name,
            village: row.village,
            status: row.status,
            last_home_visit: row.last_home_visit,
            danger_open: row.danger_open,
            police_unreported: row.police_unreported,
            school_status: row.school_status,
            entrusted_care_lapsed: row.care_lapses_on.is_some_and(|d| d <= today.to_string()),
            plan_review_on: row.plan_review_on,
        })
        .collect();
    Ok(ChildList {
        total: total as usize,
        children,
    })
}

/// One change in a file's history.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct HistoryEntry {
    /// The change hash.
    pub hash: String,
    /// When it was made on the device, Unix seconds.
    pub at: i64,
    /// Who made it (the author the device wrote, which the server checked when it arrived).
    pub by: Option<String>,
    /// When the server received it, Unix seconds by the server's clock; absent for changes
    /// imported rather than received from a phone.
    pub received_at: Option<i64>,
    /// Whose sync brought it (username).
    pub received_from: Option<String>,
    /// The parts of the file it touched: `profile`, `records/ID`, `attributes/ID`, ...
    pub touched: Vec<String>,
}

/// Who changed what in a file, and when, oldest first: each change with the parts of the file
/// it touched and, where the server received it from a phone, when and from whom.
pub fn history(
    doc: &mut AutoCommit,
    receipts: &std::collections::BTreeMap<String, (i64, String)>,
) -> Vec<HistoryEntry> {
    let changes: Vec<_> = doc
        .get_changes(&[])
        .into_iter()
        .map(|c| {
            (
                c.hash(),
                c.deps().to_vec(),
                c.timestamp(),
                c.message().map(str::to_owned),
            )
        })
        .collect();
    changes
        .into_iter()
        .map(|(hash, deps, at, by)| {
            let mut touched = BTreeSet::new();
            for patch in doc.diff(&deps, &[hash]) {
                let mut parts: Vec<String> = patch
                    .path
                    .iter()
                    .map(|(_, prop)| prop.to_string())
                    .collect();
                if let automerge::PatchAction::PutMap { key, .. }
                | automerge::PatchAction::DeleteMap { key } = &patch.action
                {
                    parts.push(key.clone());
                }
                parts.truncate(2);
                if !parts.is_empty() {
                    touched.insert(parts.join("/"));
                }
            }
            let hash = hash.to_string();
            let receipt = receipts.get(&hash);
            HistoryEntry {
                received_at: receipt.map(|(at, _)| *at),
                received_from: receipt.map(|(_, who)| who.clone()),
                hash,
                at,
                by,
                touched: touched.into_iter().collect(),
            }
        })
        .collect()
}
