//! Roster import: a county's existing list of children becomes their files on the server, and
//! directors' phones receive them at their next sync (docs/OPERATIONS.md, "Roster import").
//!
//! * Every row is checked before anything is written; a file with any bad row changes nothing,
//!   and every error names its row (the line in the file, the header being row 1) and field.
//! * The natural key of a child is the village, the name, the date of birth and the sex: a row
//!   whose child already has a file (imported before, or registered on a phone) is left alone,
//!   so importing the same file again changes nothing. Two rows of one file with the same key
//!   are an error.
//! * All new files are written in one transaction, with their schedules and alerts.

use chrono::{DateTime, NaiveDate, Utc};
use homevisit_sync_core::file::{Assertion, AttrKind, ChildFile, ChildId, Profile};
use homevisit_sync_core::sync::Scope;
use homevisit_sync_core::vocab::{Category, Guardianship, RiskFlag, Sex};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

use crate::service::schedules::{Evaluation, refresh_ids};
use crate::service::sync::{MadeHereError, store_made_here};
use crate::store::DbConnection;

/// The author the history shows for files made from a roster.
pub const AUTHOR: &str = "roster-import";

/// The most rows one import takes.
pub const MAX_ROWS: usize = 100_000;

/// One problem with one row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RowError {
    /// The row in the file: the header is row 1, the first child row 2.
    pub row: usize,
    /// The column (as the roster names it: `name`, `birth_date`, ...), or `row` for the row as
    /// a whole.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

/// Why an import changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum RosterError {
    /// Rows are wrong; nothing was written.
    #[error("{} rows have errors; nothing was imported", .0.len())]
    Invalid(Vec<RowError>),
    /// The file is not a roster at all (no header, not UTF-8 CSV, too many rows).
    #[error("{0}")]
    Unreadable(String),
    /// A file could not be made or stored.
    #[error("{0}")]
    Store(#[from] MadeHereError),
    /// The database failed.
    #[error("database: {0}")]
    Database(#[from] diesel::result::Error),
}

impl From<homevisit_sync_core::file::FileError> for RosterError {
    fn from(e: homevisit_sync_core::file::FileError) -> Self {
        RosterError::Store(MadeHereError::File(e))
    }
}

/// One child of the roster, checked.
#[derive(Debug, Clone, PartialEq)]
pub struct RosterChild {
    /// The row it came from.
    pub row: usize,
    /// The profile.
    pub profile: Profile,
    /// Categories, from the registration date.
    pub categories: Vec<Category>,
    /// The guardianship level, if assessed.
    pub guardianship: Option<Guardianship>,
    /// Risk flags.
    pub risk_flags: Vec<RiskFlag>,
}

impl RosterChild {
    /// The natural key: village, name, date of birth, sex.
    pub fn key(&self) -> (String, String, NaiveDate, &'static str) {
        (
            self.profile.village_code.clone(),
            self.profile.name.clone(),
            self.profile.birth_date,
            self.profile.sex.key(),
        )
    }
}

/// The columns a roster has, by their English keys; each may also be headed in Chinese.
const COLUMNS: &[(&str, &[&str], bool)] = &[
    ("name", &["姓名"], true),
    ("sex", &["性别"], true),
    ("birth_date", &["出生日期"], true),
    ("village", &["村（社区）代码", "村代码", "社区代码"], true),
    ("id_number", &["身份证号"], false),
    ("address", &["住址", "现住址"], false),
    ("hukou", &["户籍地"], false),
    ("categories", &["类别", "儿童类别"], true),
    ("guardianship", &["监护状况"], false),
    ("risk_flags", &["风险", "风险因素"], false),
    ("registered_on", &["建档日期", "登记日期"], false),
];

fn sex_of(value: &str) -> Option<Sex> {
    match value {
        "男" => Some(Sex::Male),
        "女" => Some(Sex::Female),
        other => other.parse().ok(),
    }
}

fn guardianship_of(value: &str) -> Option<Guardianship> {
    match value {
        "较好" => Some(Guardianship::Good),
        "一般" => Some(Guardianship::Average),
        "较差" => Some(Guardianship::Poor),
        other => other.parse().ok(),
    }
}

/// Reads a roster in CSV (UTF-8, a header row; a byte-order mark is allowed), checking every
/// row. `villages` are the village codes the regions table knows; `scope`, when given, the
/// regions the importer may write in.
pub fn parse_csv(
    bytes: &[u8],
    villages: &BTreeSet<String>,
    scope: Option<&Scope>,
    today: NaiveDate,
) -> Result<Vec<RosterChild>, RosterError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| RosterError::Unreadable("a roster is UTF-8 text (CSV)".into()))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let header = reader
        .headers()
        .map_err(|e| RosterError::Unreadable(format!("the header row: {e}")))?
        .clone();
    let mut index: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, cell) in header.iter().enumerate() {
        if let Some((key, ..)) = COLUMNS
            .iter()
            .find(|(key, names, _)| *key == cell || names.contains(&cell))
        {
            index.insert(key, i);
        }
    }
    let mut errors = Vec::new();
    for (key, _, required) in COLUMNS {
        if *required && !index.contains_key(key) {
            errors.push(RowError {
                row: 1,
                field: (*key).to_owned(),
                message: "this column is missing".into(),
            });
        }
    }
    if !errors.is_empty() {
        return Err(RosterError::Invalid(errors));
    }
    let mut children = Vec::new();
    let mut seen: BTreeMap<(String, String, NaiveDate, &'static str), usize> = BTreeMap::new();
    for (n, record) in reader.records().enumerate() {
        let row = n + 2;
        if n >= MAX_ROWS {
            return Err(RosterError::Unreadable(format!(
                "a roster has at most {MAX_ROWS} rows"
            )));
        }
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                errors.push(RowError {
                    row,
                    field: "row".into(),
                    message: e.to_string(),
                });
                continue;
            }
        };
        if record.iter().all(str::is_empty) {
            continue;
        }
        let cell = |key: &str| {
            index
                .get(key)
                .and_then(|i| record.get(*i))
                .unwrap_or_default()
                .to_owned()
        };
        match child_of(row, &cell, villages, scope, today) {
            Ok(child) => {
                if let Some(first) = seen.insert(child.key(), row) {
                    errors.push(RowError {
                        row,
                        field: "row".into(),
                        message: format!(
                            "the same child (village, name, birth date, sex) as row {first}"
                        ),
                    });
                } else {
                    children.push(child);
                }
            }
            Err(mut e) => errors.append(&mut e),
        }
    }
    if !errors.is_empty() {
        return Err(RosterError::Invalid(errors));
    }
    Ok(children)
}

fn child_of(
    row: usize,
    cell: &dyn Fn(&str) -> String,
    villages: &BTreeSet<String>,
    scope: Option<&Scope>,
    today: NaiveDate,
) -> Result<RosterChild, Vec<RowError>> {
    let mut errors = Vec::new();
    let mut bad = |field: &str, message: String| {
        errors.push(RowError {
            row,
            field: field.to_owned(),
            message,
        })
    };
    let name = cell("name");
    if name.is_empty() || name.chars().count() > 50 {
        bad("name", "a name of 1 to 50 characters".into());
    }
    let sex = sex_of(&cell("sex"));
    if sex.is_none() {
        bad(
            "sex",
            format!("{:?} is not 男, 女, male or female", cell("sex")),
        );
    }
    let date = |field: &str, bad: &mut dyn FnMut(&str, String)| {
        let raw = cell(field);
        match NaiveDate::parse_from_str(&raw.replace('/', "-"), "%Y-%m-%d") {
            Ok(d) if d <= today => Some(d),
            Ok(_) => {
                bad(field, format!("{raw} is in the future"));
                None
            }
            Err(_) => {
                bad(field, format!("{raw:?} is not a date (YYYY-MM-DD)"));
                None
            }
        }
    };
    let birth_date = date("birth_date", &mut bad);
    let registered_on = if cell("registered_on").is_empty() {
        Some(today)
    } else {
        date("registered_on", &mut bad)
    };
    let village = cell("village");
    if !villages.contains(&village) {
        bad(
            "village",
            format!("{village:?} is not a village code of the regions imported"),
        );
    } else if scope.is_some_and(|s| !s.contains(&village)) {
        bad("village", format!("{village} is outside your regions"));
    }
    let id_number = cell("id_number");
    let b = id_number.as_bytes();
    let well_formed = b.len() == 18
        && b[..17].iter().all(u8::is_ascii_digit)
        && matches!(b[17], b'0'..=b'9' | b'X' | b'x');
    if !(id_number.is_empty() || well_formed) {
        bad(
            "id_number",
            "an 18-character resident identity number".into(),
        );
    }
    let list = |field: &str| -> Vec<String> {
        cell(field)
            .split(['、', ',', ';', '，', '；'])
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let mut categories = Vec::new();
    for c in list("categories") {
        match c.parse::<Category>() {
            Ok(c) => categories.push(c),
            Err(e) => bad("categories", e.to_string()),
        }
    }
    if categories.is_empty() && cell("categories").is_empty() {
        bad("categories", "at least one category".into());
    }
    let guardianship = match cell("guardianship").as_str() {
        "" => None,
        raw => {
            let g = guardianship_of(raw);
            if g.is_none() {
                bad(
                    "guardianship",
                    format!("{raw:?} is not 较好, 一般, 较差 or good, average, poor"),
                );
            }
            g
        }
    };
    let mut risk_flags = Vec::new();
    for f in list("risk_flags") {
        match f.parse::<RiskFlag>() {
            Ok(f) => risk_flags.push(f),
            Err(e) => bad("risk_flags", e.to_string()),
        }
    }
    let (Some(sex), Some(birth_date), Some(registered_on), true) =
        (sex, birth_date, registered_on, errors.is_empty())
    else {
        return Err(errors);
    };
    Ok(RosterChild {
        row,
        profile: Profile {
            name,
            sex,
            birth_date,
            id_number: (!id_number.is_empty()).then(|| id_number.to_ascii_uppercase()),
            hukou_place: cell("hukou"),
            address: cell("address"),
            village_code: village,
            registered_on,
        },
        categories,
        guardianship,
        risk_flags,
    })
}

/// What an import did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Imported {
    /// Files created.
    pub created: usize,
    /// Rows whose child already had a file: left as they were.
    pub unchanged: usize,
}

/// Creates the files of the children that have none yet, with their schedules and alerts, in
/// the caller's transaction. `progress` is told how many rows are done.
pub fn import(
    conn: &mut DbConnection,
    children: &[RosterChild],
    by: &str,
    e: &Evaluation<'_>,
    at: DateTime<Utc>,
    progress: &mut dyn FnMut(usize),
) -> Result<Imported, RosterError> {
    let villages: Vec<String> = children
        .iter()
        .map(|c| c.profile.village_code.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let existing = crate::store::children::natural_keys(conn, &villages)?;
    let mut done = Imported::default();
    let mut created = Vec::new();
    for (n, child) in children.iter().enumerate() {
        let (village, name, born, sex) = child.key();
        if existing.contains(&(village, name, born.to_string(), sex.to_owned())) {
            done.unchanged += 1;
        } else {
            let id = ChildId::new();
            let mut file = ChildFile::create(id, &child.profile, rand::random(), by, at)?;
            let assert = |file: &mut ChildFile, attr: AttrKind, value: &str| {
                let a = Assertion {
                    attr,
                    value: value.to_owned(),
                    present: true,
                    effective: child.profile.registered_on,
                    recorded_at: at,
                    by: by.to_owned(),
                };
                file.assert_attribute(&a, by, at).map(|_| ())
            };
            for c in &child.categories {
                assert(&mut file, AttrKind::Category, c.key())?;
            }
            if let Some(g) = child.guardianship {
                assert(&mut file, AttrKind::Guardianship, g.key())?;
            }
            for f in &child.risk_flags {
                assert(&mut file, AttrKind::RiskFlag, f.key())?;
            }
            store_made_here(conn, &mut file, by)?;
            created.push(id.to_string());
            done.created += 1;
        }
        progress(n + 1);
    }
    for batch in created.chunks(500) {
        refresh_ids(conn, batch, e)?;
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn villages() -> BTreeSet<String> {
        ["210302001001".to_owned()].into()
    }

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 27).expect("date")
    }

    #[test]
    fn a_roster_in_chinese_or_english_headings_reads_the_same() {
        let zh = "姓名,性别,出生日期,村（社区）代码,类别,监护状况\n李小红,女,2016-02-29,210302001001,left_behind,一般\n";
        let en = "name,sex,birth_date,village,categories,guardianship\n李小红,female,2016/02/29,210302001001,left_behind,average\n";
        let a = parse_csv(zh.as_bytes(), &villages(), None, today()).expect("zh");
        let b = parse_csv(en.as_bytes(), &villages(), None, today()).expect("en");
        assert_eq!(a, b);
        assert_eq!(a[0].guardianship, Some(Guardianship::Average));
        assert_eq!(a[0].profile.registered_on, today());
    }

    #[test]
    fn every_bad_row_is_named_with_its_field_and_nothing_is_kept() {
        let csv = "name,sex,birth_date,village,categories\n\
                   李小红,女,2016-02-29,210302001001,left_behind\n\
                   王小明,x,2016-13-01,999999999999,nonsense\n\
                   李小红,女,2016-02-29,210302001001,left_behind\n";
        let Err(RosterError::Invalid(errors)) =
            parse_csv(csv.as_bytes(), &villages(), None, today())
        else {
            panic!("refused");
        };
        let fields: Vec<(usize, &str)> = errors.iter().map(|e| (e.row, e.field.as_str())).collect();
        assert_eq!(
            fields,
            [
                (3, "sex"),
                (3, "birth_date"),
                (3, "village"),
                (3, "categories"),
                (4, "row")
            ]
        );
    }

    #[test]
    fn a_roster_without_its_required_columns_or_outside_the_scope_is_refused() {
        let Err(RosterError::Invalid(errors)) =
            parse_csv(b"name,sex\n", &villages(), None, today())
        else {
            panic!("refused");
        };
        assert!(errors.iter().all(|e| e.row == 1), "{errors:?}");
        let csv = "name,sex,birth_date,village,categories\n李小红,女,2016-02-29,210302001001,left_behind\n";
        let elsewhere = Scope::new(["210303"]);
        assert!(matches!(
            parse_csv(csv.as_bytes(), &villages(), Some(&elsewhere), today()),
            Err(RosterError::Invalid(e)) if e[0].field == "village"
        ));
        assert!(matches!(
            parse_csv(&[0xff, 0xfe, 0x00], &villages(), None, today()),
            Err(RosterError::Unreadable(_))
        ));
    }
}
