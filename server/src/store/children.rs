//! The relational projection of child files, and the queries of the read APIs.
//!
//! The Automerge document stays the truth; after every merge the server brings the file's
//! rows in `children`, `child_records`, `child_attributes` and `child_photos` up to date inside
//! the same transaction (the files of one sync together, at its end), so lists and schedules
//! never load a document and are never behind an acknowledged sync.

use chrono::{DateTime, NaiveDate};
use diesel::prelude::*;
use homevisit_sync_core::file::{Amendment, Assertion, AttrKind, ChildFileView, FileSummary};
use homevisit_sync_core::sync::Scope;
use homevisit_sync_core::vocab::RecordKind;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

use super::DbConnection;
use super::schema::{child_attributes, child_photos, child_records, children, documents};

fn key_of<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

/// Replaces the rows `$stored` in `$table` (keyed by `(child_id, $key)`) with `$wanted`, for
/// any number of children at once, writing only what differs: the rows gone are deleted a
/// child at a time (rare: records are voided, not deleted), the rows new or changed are
/// inserted together. `$row` makes a row's insert values from its child, key and columns.
/// Batches stay under SQLite's bound-parameter limit.
macro_rules! write_changed {
    ($conn:expr, $table:ident, $key:ident, $stored:expr, $wanted:expr,
     |$child:ident, $k:ident, $v:pat_param| $row:expr) => {{
        let (gone, new) = changed_rows($stored, $wanted);
        let mut by_child: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (child, key) in gone {
            by_child.entry(child).or_default().push(key);
        }
        for (child, keys) in by_child {
            for batch in keys.chunks(500) {
                diesel::delete(
                    $table::table
                        .filter($table::child_id.eq(&child))
                        .filter($table::$key.eq_any(batch)),
                )
                .execute($conn)?;
            }
        }
        let rows: Vec<_> = new.into_iter().map(|(($child, $k), $v)| $row).collect();
        for batch in rows.chunks(100) {
            let insert = diesel::insert_into($table::table).values(batch);
            on_backend!($conn, |c| insert.execute(c))?;
        }
    }};
}

type RecordRow = (String, String, String, bool, bool, Option<String>);
type AttributeRow = (String, String, bool, String, i64, String);

/// One file's rows in the projection, as its view gives them: made when the file is merged,
/// and written with the other files a sync merged by [`project`].
#[derive(Debug, Clone)]
pub struct Projection {
    id: String,
    village: String,
    name: String,
    sex: &'static str,
    birth_date: String,
    registered_on: String,
    last_home_visit: Option<String>,
    danger_open: bool,
    police_unreported: bool,
    rules_digest: Vec<u8>,
    school_status: Option<&'static str>,
    care_lapses_on: Option<String>,
    plan_review_on: Option<String>,
    photos: BTreeMap<String, ()>,
    records: BTreeMap<String, RecordRow>,
    attributes: BTreeMap<String, AttributeRow>,
    /// The rows a merge touched, when only those need writing (see [`Projection::of`]).
    only: Option<Touched>,
}

/// The keys of a file's rows that its merges added or changed.
#[derive(Debug, Clone, Default)]
struct Touched {
    records: BTreeSet<String>,
    attributes: BTreeSet<String>,
    /// The photos of the touched records.
    photos: BTreeSet<String>,
}

impl Projection {
    /// The rows of a file's current view (`summary` is the view's, which the caller has made
    /// already for the file's evaluation). Given the merge's `amendment` (what it added to the
    /// file as stored, and so to its stored rows), [`project`] reads and writes only the rows
    /// of the records and assertions it touched: a daily sync adds one record to a file of
    /// dozens.
    pub fn of(
        view: &ChildFileView,
        summary: &FileSummary,
        amendment: Option<&Amendment>,
    ) -> Projection {
        // Keyed as the rows are, by the ids' canonical form, whatever form the tree used.
        let canonical = |ids: &BTreeSet<String>| -> BTreeSet<uuid::Uuid> {
            ids.iter().filter_map(|id| id.parse().ok()).collect()
        };
        let only = amendment.map(|a| {
            let records = canonical(&a.records);
            Touched {
                photos: records
                    .iter()
                    .filter_map(|id| view.records.get(id))
                    .flat_map(|r| r.versions.iter().flat_map(|v| v.photos.iter().cloned()))
                    .collect(),
                records: records.iter().map(uuid::Uuid::to_string).collect(),
                attributes: canonical(&a.attributes)
                    .iter()
                    .map(uuid::Uuid::to_string)
                    .collect(),
            }
        });
        // As of everything the file records: facts cannot be dated after the day they were
        // written, so the latest is the one in force, and an arrangement counts while not
        // ended.
        let latest = NaiveDate::MAX;
        let live = || view.records.values().filter(|r| r.void.is_none());
        let open_dangers =
            || live().filter_map(|r| r.current().danger.as_ref().filter(|d| d.outcome.is_none()));
        let records = view
            .records
            .iter()
            .map(|(rid, r)| {
                let current = r.current();
                let found = current.danger.as_ref().map(|d| {
                    d.found
                        .iter()
                        .map(|k| k.key())
                        .collect::<Vec<_>>()
                        .join(",")
                });
                (
                    rid.to_string(),
                    (
                        r.kind.key().to_owned(),
                        current.date.to_string(),
                        current.by.clone(),
                        r.void.is_some(),
                        current.danger.is_some(),
                        found,
                    ),
                )
            })
            .collect();
        let attributes = view
            .attributes
            .iter()
            .map(|(aid, a)| {
                (
                    aid.to_string(),
                    (
                        key_of(&a.attr),
                        a.value.clone(),
                        a.present,
                        a.effective.to_string(),
                        a.recorded_at.timestamp(),
                        a.by.clone(),
                    ),
                )
            })
            .collect();
        Projection {
            id: view.id.to_string(),
            village: view.profile.village_code.clone(),
            name: view.profile.name.clone(),
            sex: view.profile.sex.key(),
            birth_date: view.profile.birth_date.to_string(),
            registered_on: view.profile.registered_on.to_string(),
            last_home_visit: live()
                .filter(|r| r.kind == RecordKind::HomeVisit)
                .map(|r| r.current().date)
                .max()
                .map(|d| d.to_string()),
            danger_open: open_dangers().next().is_some(),
            police_unreported: open_dangers().any(|d| d.police_report_missing()),
            rules_digest: summary.rules_digest(),
            school_status: view.school_status(latest).map(|s| s.key()),
            care_lapses_on: view.parent_contact_lapses_on(latest).map(|d| d.to_string()),
            plan_review_on: summary
                .plan_reviews
                .iter()
                .map(|p| p.review_on)
                .min()
                .map(|d| d.to_string()),
            photos: view
                .records
                .values()
                .flat_map(|r| r.versions.iter().flat_map(|v| v.photos.iter()))
                .map(|sha| (sha.clone(), ()))
                .collect(),
            records,
            attributes,
            only,
        }
    }

    /// This projection, made after `earlier` in the same transaction, to be written in its
    /// place: the rows touched by either merge are to be written.
    pub fn absorb(&mut self, earlier: Projection) {
        self.only = match (self.only.take(), earlier.only) {
            (Some(mut now), Some(then)) => {
                now.records.extend(then.records);
                now.attributes.extend(then.attributes);
                now.photos.extend(then.photos);
                Some(now)
            }
            _ => None,
        };
    }
}

/// Rows of several children keyed by child and row key, from `(child, key, columns)` rows.
fn keyed<V>(rows: Vec<(String, String, V)>) -> BTreeMap<(String, String), V> {
    rows.into_iter().map(|(c, k, v)| ((c, k), v)).collect()
}

/// Brings the projection of files up to their current views, each with its sequence number,
/// writing only the rows that changed: a daily sync adds a record or two to each of a few
/// files of dozens, and deleting and re-inserting them all was a fifth of a sync's work. Of a
/// file whose projection knows what its merges touched, only those rows are read and
/// compared. The rows of all the files are read and written together, a few statements in all.
pub fn project(conn: &mut DbConnection, files: &[(&Projection, u64)]) -> QueryResult<()> {
    let mut new_rows = BTreeSet::new();
    for (p, seq) in files {
        let row = (
            children::village.eq(&p.village),
            children::name.eq(&p.name),
            children::sex.eq(p.sex),
            children::birth_date.eq(&p.birth_date),
            children::registered_on.eq(&p.registered_on),
            children::last_home_visit.eq(&p.last_home_visit),
            children::danger_open.eq(p.danger_open),
            children::police_unreported.eq(p.police_unreported),
            children::seq.eq(*seq as i64),
            children::rules_digest.eq(Some(&p.rules_digest)),
            children::school_status.eq(p.school_status),
            children::care_lapses_on.eq(&p.care_lapses_on),
            children::plan_review_on.eq(&p.plan_review_on),
        );
        let updated = diesel::update(children::table.filter(children::id.eq(&p.id)))
            .set(row)
            .execute(conn)?;
        if updated == 0 {
            diesel::insert_into(children::table)
                .values((children::id.eq(&p.id), row))
                .execute(conn)?;
            new_rows.insert(p.id.clone());
        }
    }
    // A file whose rows were never written (or whose merge is not known) is projected whole;
    // the others only in the rows their merges touched.
    let (whole, partial): (Vec<&Projection>, Vec<&Projection>) = files
        .iter()
        .map(|(p, _)| *p)
        .partition(|p| p.only.is_none() || new_rows.contains(&p.id));
    let whole_ids: Vec<&String> = whole.iter().map(|p| &p.id).collect();
    let mut stored_photos = Vec::new();
    let mut stored_records = Vec::new();
    let mut stored_attributes = Vec::new();
    for batch in whole_ids.chunks(500) {
        stored_photos.extend(photo_rows(conn, batch, None)?);
        stored_records.extend(record_rows(conn, batch, None)?);
        stored_attributes.extend(attribute_rows(conn, batch, None)?);
    }
    let touched = |keys: fn(&Touched) -> &BTreeSet<String>| -> BTreeSet<(String, String)> {
        partial
            .iter()
            .flat_map(|p| {
                let only = p.only.as_ref().map(keys).into_iter().flatten();
                only.map(|k| (p.id.clone(), k.clone()))
            })
            .collect()
    };
    let (photos_touched, records_touched, attributes_touched) = (
        touched(|t| &t.photos),
        touched(|t| &t.records),
        touched(|t| &t.attributes),
    );
    let keys = |set: &BTreeSet<(String, String)>| -> Vec<String> {
        let keys: BTreeSet<&String> = set.iter().map(|(_, k)| k).collect();
        keys.into_iter().cloned().collect()
    };
    let (photo_keys, record_keys, attribute_keys) = (
        keys(&photos_touched),
        keys(&records_touched),
        keys(&attributes_touched),
    );
    let partial_ids: Vec<&String> = partial.iter().map(|p| &p.id).collect();
    for batch in partial_ids.chunks(100) {
        for chunk in photo_keys.chunks(400) {
            stored_photos.extend(photo_rows(conn, batch, Some(chunk))?);
        }
        for chunk in record_keys.chunks(400) {
            stored_records.extend(record_rows(conn, batch, Some(chunk))?);
        }
        for chunk in attribute_keys.chunks(400) {
            stored_attributes.extend(attribute_rows(conn, batch, Some(chunk))?);
        }
    }
    let is_whole: BTreeSet<&String> = whole_ids.iter().copied().collect();
    // A key asked for one file may be another's too (ids come from phones): only the rows
    // asked for are compared, so no other row is ever deleted.
    let asked = |set: &BTreeSet<(String, String)>, child: &String, key: &String| {
        is_whole.contains(child) || set.contains(&(child.clone(), key.clone()))
    };
    stored_photos.retain(|(c, k, ())| asked(&photos_touched, c, k));
    stored_records.retain(|(c, k, _)| asked(&records_touched, c, k));
    stored_attributes.retain(|(c, k, _)| asked(&attributes_touched, c, k));
    let photos = files
        .iter()
        .flat_map(|(p, _)| p.photos.keys().map(|k| ((p.id.clone(), k.clone()), ())))
        .filter(|((c, k), ())| asked(&photos_touched, c, k))
        .collect();
    write_changed!(
        conn,
        child_photos,
        sha256,
        keyed(stored_photos),
        photos,
        |child, sha, ()| {
            (
                child_photos::child_id.eq(child),
                child_photos::sha256.eq(sha),
            )
        }
    );
    let records = files
        .iter()
        .flat_map(|(p, _)| {
            p.records
                .iter()
                .filter(|(k, _)| asked(&records_touched, &p.id, k))
                .map(|(k, v)| ((p.id.clone(), k.clone()), v.clone()))
        })
        .collect();
    write_changed!(
        conn,
        child_records,
        record_id,
        keyed(stored_records),
        records,
        |child, rid, (kind, date, author, voided, danger, found)| {
            (
                child_records::child_id.eq(child),
                child_records::record_id.eq(rid),
                child_records::kind.eq(kind),
                child_records::date.eq(date),
                child_records::author.eq(author),
                child_records::voided.eq(voided),
                child_records::danger.eq(danger),
                child_records::danger_found.eq(found),
            )
        }
    );
    let attributes = files
        .iter()
        .flat_map(|(p, _)| {
            p.attributes
                .iter()
                .filter(|(k, _)| asked(&attributes_touched, &p.id, k))
                .map(|(k, v)| ((p.id.clone(), k.clone()), v.clone()))
        })
        .collect();
    write_changed!(
        conn,
        child_attributes,
        assertion_id,
        keyed(stored_attributes),
        attributes,
        |child, aid, (attr, value, present, effective, recorded_at, author)| {
            (
                child_attributes::child_id.eq(child),
                child_attributes::assertion_id.eq(aid),
                child_attributes::attr.eq(attr),
                child_attributes::value.eq(value),
                child_attributes::present.eq(present),
                child_attributes::effective.eq(effective),
                child_attributes::recorded_at.eq(recorded_at),
                child_attributes::author.eq(author),
            )
        }
    );
    Ok(())
}

/// What turns the rows `stored` into the rows `wanted`: the keys to delete (gone, or changed)
/// and the rows to insert (new, or changed).
fn changed_rows<K: Ord + Clone, V: PartialEq>(
    mut stored: BTreeMap<K, V>,
    wanted: BTreeMap<K, V>,
) -> (Vec<K>, Vec<(K, V)>) {
    let mut insert = Vec::new();
    let mut delete = Vec::new();
    for (key, row) in wanted {
        match stored.remove(&key) {
            Some(old) if old == row => {}
            Some(_) => {
                delete.push(key.clone());
                insert.push((key, row));
            }
            None => insert.push((key, row)),
        }
    }
    delete.extend(stored.into_keys());
    (delete, insert)
}

/// The villages of the files that refer to a photo.
pub fn photo_villages(conn: &mut DbConnection, sha256: &str) -> QueryResult<Vec<(String, String)>> {
    child_photos::table
        .inner_join(children::table)
        .filter(child_photos::sha256.eq(sha256))
        .select((children::id, children::village))
        .load(conn)
}

/// How many child files are projected.
pub fn count(conn: &mut DbConnection) -> QueryResult<usize> {
    children::table
        .count()
        .get_result::<i64>(conn)
        .map(|n| n as usize)
}

/// The villages of the files among `ids` that exist, by id.
pub fn villages_of(
    conn: &mut DbConnection,
    ids: &[String],
) -> QueryResult<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    // Batches stay under SQLite's bound-parameter limit.
    for chunk in ids.chunks(500) {
        out.extend(
            documents::table
                .filter(documents::id.eq_any(chunk))
                .select((documents::id, documents::village))
                .load::<(String, String)>(conn)?,
        );
    }
    Ok(out)
}

/// The stored assertions of `children` (a batch within SQLite's bound-parameter limit), as
/// (child, assertion, columns); only those among `keys` when given.
fn attribute_rows(
    conn: &mut DbConnection,
    children: &[&String],
    keys: Option<&[String]>,
) -> QueryResult<Vec<(String, String, AttributeRow)>> {
    let query = child_attributes::table
        .filter(child_attributes::child_id.eq_any(children))
        .select((
            child_attributes::child_id,
            child_attributes::assertion_id,
            (
                child_attributes::attr,
                child_attributes::value,
                child_attributes::present,
                child_attributes::effective,
                child_attributes::recorded_at,
                child_attributes::author,
            ),
        ));
    match keys {
        None => query.load(conn),
        Some(keys) => query
            .filter(child_attributes::assertion_id.eq_any(keys))
            .load(conn),
    }
}

/// The stored record rows of `children`, as [`attribute_rows`] reads assertions.
fn record_rows(
    conn: &mut DbConnection,
    children: &[&String],
    keys: Option<&[String]>,
) -> QueryResult<Vec<(String, String, RecordRow)>> {
    let query = child_records::table
        .filter(child_records::child_id.eq_any(children))
        .select((
            child_records::child_id,
            child_records::record_id,
            (
                child_records::kind,
                child_records::date,
                child_records::author,
                child_records::voided,
                child_records::danger,
                child_records::danger_found,
            ),
        ));
    match keys {
        None => query.load(conn),
        Some(keys) => query
            .filter(child_records::record_id.eq_any(keys))
            .load(conn),
    }
}

/// The stored photo rows of `children`, as [`attribute_rows`] reads assertions.
fn photo_rows(
    conn: &mut DbConnection,
    children: &[&String],
    keys: Option<&[String]>,
) -> QueryResult<Vec<(String, String, ())>> {
    let query = child_photos::table
        .filter(child_photos::child_id.eq_any(children))
        .select((child_photos::child_id, child_photos::sha256));
    let rows: Vec<(String, String)> = match keys {
        None => query.load(conn)?,
        Some(keys) => query.filter(child_photos::sha256.eq_any(keys)).load(conn)?,
    };
    Ok(rows.into_iter().map(|(c, k)| (c, k, ())).collect())
}

fn parse_date(s: &str) -> NaiveDate {
    s.parse().unwrap_or_default()
}

/// The schedule digests of the children among `ids`, from their projection: what the job
/// that re-evaluates everyone reads.
pub fn summaries(conn: &mut DbConnection, ids: &[String]) -> QueryResult<Vec<FileSummary>> {
    type Base = (String, String, String, String, String);
    let mut base: Vec<Base> = Vec::new();
    for chunk in ids.chunks(500) {
        base.extend(
            children::table
                .filter(children::id.eq_any(chunk))
                .select((
                    children::id,
                    children::name,
                    children::village,
                    children::birth_date,
                    children::registered_on,
                ))
                .load::<Base>(conn)?,
        );
    }
    let ids: Vec<&String> = base.iter().map(|b| &b.0).collect();
    let mut records: BTreeMap<String, Vec<(RecordKind, NaiveDate)>> = BTreeMap::new();
    let mut attributes: BTreeMap<String, BTreeMap<uuid::Uuid, Assertion>> = BTreeMap::new();
    for chunk in ids.chunks(500) {
        let rows: Vec<(String, String, String)> = child_records::table
            .filter(child_records::child_id.eq_any(chunk))
            .filter(child_records::voided.eq(false))
            .select((
                child_records::child_id,
                child_records::kind,
                child_records::date,
            ))
            .load(conn)?;
        for (child, kind, date) in rows {
            if let Ok(kind) = kind.parse::<RecordKind>() {
                records
                    .entry(child)
                    .or_default()
                    .push((kind, parse_date(&date)));
            }
        }
        for (child, aid, (attr, value, present, effective, recorded_at, by)) in
            attribute_rows(conn, chunk, None)?
        {
            let attr = match attr.as_str() {
                "category" => AttrKind::Category,
                "guardianship" => AttrKind::Guardianship,
                "risk_flag" => AttrKind::RiskFlag,
                _ => continue,
            };
            let Ok(aid) = uuid::Uuid::parse_str(&aid) else {
                continue;
            };
            attributes.entry(child).or_default().insert(
                aid,
                Assertion {
                    attr,
                    value,
                    present,
                    effective: parse_date(&effective),
                    recorded_at: DateTime::from_timestamp(recorded_at, 0).unwrap_or_default(),
                    by,
                },
            );
        }
    }
    let mut out = Vec::with_capacity(base.len());
    for (id, name, village, birth, registered) in base {
        let Ok(uuid) = uuid::Uuid::parse_str(&id) else {
            continue;
        };
        out.push(FileSummary {
            id: homevisit_sync_core::file::ChildId(uuid),
            name,
            village_code: village,
            birth_date: parse_date(&birth),
            registered_on: parse_date(&registered),
            attributes: attributes.remove(&id).unwrap_or_default(),
            records: records.remove(&id).unwrap_or_default(),
            plan_reviews: Vec::new(),
        });
    }
    Ok(out)
}

/// What a page of the children list filters by, in SQL.
#[derive(Debug, Clone, Default)]
pub struct PageFilter<'a> {
    /// One village.
    pub village: Option<&'a str>,
    /// The worst status, or `not_served`.
    pub status: Option<&'a str>,
    /// A category in force.
    pub category: Option<&'a str>,
    /// A risk flag in force.
    pub risk_flag: Option<&'a str>,
    /// A guardianship level in force, or `unassessed`.
    pub guardianship: Option<&'a str>,
    /// Whether a danger report is open.
    pub danger_open: Option<bool>,
    /// Whether an open danger report lacks the police report it requires.
    pub police_unreported: Option<bool>,
    /// The school status in force (`dropped_out`...).
    pub school_status: Option<&'a str>,
    /// Whether a child in entrusted care is past a week without a parent's contact, on `today`.
    pub entrusted_care_lapsed: Option<bool>,
    /// Whether an open help plan's review is past, on `today`.
    pub plan_review_overdue: Option<bool>,
    /// The day the two above are judged on.
    pub today: NaiveDate,
}

/// One child of a page, as projected and evaluated (in the order the page selects).
#[derive(Debug, Clone, PartialEq, Eq, Queryable)]
pub struct PageRow {
    /// The file id.
    pub id: String,
    /// The child's name.
    pub name: String,
    /// The village code.
    pub village: String,
    /// The worst schedule status, or `not_served`.
    pub status: String,
    /// The latest home visit.
    pub last_home_visit: Option<String>,
    /// A danger record without an outcome.
    pub danger_open: bool,
    /// An open danger report without the police report it requires.
    pub police_unreported: bool,
    /// The school status in force.
    pub school_status: Option<String>,
    /// From when a child in entrusted care lacks a parent's weekly contact.
    pub care_lapses_on: Option<String>,
    /// The earliest review date of an open help plan.
    pub plan_review_on: Option<String>,
}

type Condition = Box<
    dyn BoxableExpression<
            children::table,
            super::connection::MultiBackend,
            SqlType = diesel::sql_types::Bool,
        >,
>;

/// Children of villages under any of `prefixes`; no prefix matches nothing.
fn under<'a>(prefixes: impl Iterator<Item = &'a str>) -> Condition {
    super::any_village!(children::village, prefixes)
}

/// The children of `scope` matching `filter`, ordered by village, name and id: how many in
/// all, and `limit` of them after `offset`. Filtering and paging happen in the database.
pub fn page(
    conn: &mut DbConnection,
    scope: &Scope,
    filter: &PageFilter<'_>,
    limit: i64,
    offset: i64,
) -> QueryResult<(i64, Vec<PageRow>)> {
    use super::schema::child_labels;
    let condition = || -> Condition {
        let mut all = under(scope.prefixes());
        if let Some(v) = filter.village {
            all = Box::new(all.and(children::village.eq(v.to_owned())));
        }
        if let Some(s) = filter.status {
            all = Box::new(all.and(children::status.eq(s.to_owned())));
        }
        if let Some(d) = filter.danger_open {
            all = Box::new(all.and(children::danger_open.eq(d)));
        }
        if let Some(p) = filter.police_unreported {
            all = Box::new(all.and(children::police_unreported.eq(p)));
        }
        if let Some(s) = filter.school_status {
            all = Box::new(all.and(children::school_status.eq(s.to_owned()).assume_not_null()));
        }
        let today = filter.today.to_string();
        // Lapsed from `care_lapses_on`; overdue from the day after `plan_review_on`.
        if let Some(lapsed) = filter.entrusted_care_lapsed {
            let is = children::care_lapses_on.le(today.clone());
            all = if lapsed {
                Box::new(all.and(is.assume_not_null()))
            } else {
                Box::new(
                    all.and(
                        children::care_lapses_on
                            .is_null()
                            .or(children::care_lapses_on.gt(today.clone()).assume_not_null()),
                    ),
                )
            };
        }
        if let Some(overdue) = filter.plan_review_overdue {
            all = if overdue {
                Box::new(all.and(children::plan_review_on.lt(today.clone()).assume_not_null()))
            } else {
                Box::new(
                    all.and(
                        children::plan_review_on
                            .is_null()
                            .or(children::plan_review_on.ge(today.clone()).assume_not_null()),
                    ),
                )
            };
        }
        for (label, value) in [
            ("category", filter.category),
            ("risk_flag", filter.risk_flag),
            ("guardianship", filter.guardianship),
        ] {
            if let Some(value) = value {
                let with = child_labels::table
                    .filter(child_labels::label.eq(label))
                    .filter(child_labels::value.eq(value.to_owned()))
                    .select(child_labels::child_id);
                all = Box::new(all.and(children::id.eq_any(with)));
            }
        }
        all
    };
    let total = children::table
        .filter(condition())
        .count()
        .get_result::<i64>(conn)?;
    let rows = children::table
        .filter(condition())
        .order((children::village, children::name, children::id))
        .limit(limit)
        .offset(offset)
        .select((
            children::id,
            children::name,
            children::village,
            children::status,
            children::last_home_visit,
            children::danger_open,
            children::police_unreported,
            children::school_status,
            children::care_lapses_on,
            children::plan_review_on,
        ))
        .load::<PageRow>(conn)?;
    Ok((total, rows))
}

/// The natural keys of the children of `villages`: (village, name, birth date, sex).
pub fn natural_keys(
    conn: &mut DbConnection,
    villages: &[String],
) -> QueryResult<std::collections::BTreeSet<(String, String, String, String)>> {
    let mut out = std::collections::BTreeSet::new();
    for chunk in villages.chunks(500) {
        out.extend(
            children::table
                .filter(children::village.eq_any(chunk))
                .select((
                    children::village,
                    children::name,
                    children::birth_date,
                    children::sex,
                ))
                .load::<(String, String, String, String)>(conn)?,
        );
    }
    Ok(out)
}

/// Up to `limit` ids of children in villages under `prefixes`, after `after`, in id order.
pub fn ids_in_scope_after(
    conn: &mut DbConnection,
    prefixes: &[&str],
    after: &str,
    limit: i64,
) -> QueryResult<Vec<String>> {
    children::table
        .filter(under(prefixes.iter().copied()))
        .filter(children::id.gt(after))
        .order(children::id)
        .select(children::id)
        .limit(limit)
        .load(conn)
}

#[cfg(test)]
mod tests {
    use super::changed_rows;
    use std::collections::BTreeMap;

    #[test]
    fn only_rows_that_are_new_changed_or_gone_are_written() {
        let stored = BTreeMap::from([(1, "a"), (2, "b"), (3, "c")]);
        let wanted = BTreeMap::from([(1, "a"), (2, "B"), (4, "d")]);
        let (delete, insert) = changed_rows(stored, wanted);
        assert_eq!(delete, vec![2, 3]);
        assert_eq!(insert, vec![(2, "B"), (4, "d")]);
    }
}
