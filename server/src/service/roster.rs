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

/// The forms a roster comes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// UTF-8 CSV with a header row (a byte-order mark is allowed).
    Csv,
    /// An Excel workbook: the first sheet, its first row the header.
    Xlsx,
}

impl Format {
    /// What the bytes are: an XLSX workbook is a ZIP archive, anything else is read as CSV.
    pub fn sniff(bytes: &[u8]) -> Format {
        if bytes.starts_with(b"PK\x03\x04") {
            Format::Xlsx
        } else {
            Format::Csv
        }
    }
}

/// The most columns read from a sheet; a roster has eleven.
const MAX_COLUMNS: u32 = 64;

/// The most bytes a workbook may declare its parts to hold, once inflated: a few kilobytes of
/// deflated XML can claim gigabytes (a ZIP bomb), and the reader is held to the declared sizes.
pub const MAX_INFLATED_BYTES: u64 = 256 << 20;

/// A roster as text cells: the header with its row number, then each row with its number in
/// the file, or why the row could not be read.
struct Table {
    header_row: usize,
    header: Vec<String>,
    rows: Vec<(usize, Result<Vec<String>, String>)>,
}

fn csv_table(bytes: &[u8]) -> Result<Table, RosterError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|_| RosterError::Unreadable("a CSV roster is UTF-8 text".into()))?;
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let header = reader
        .headers()
        .map_err(|e| RosterError::Unreadable(format!("the header row: {e}")))?
        .iter()
        .map(str::to_owned)
        .collect();
    let mut rows = Vec::new();
    for (n, record) in reader.records().enumerate() {
        if n >= MAX_ROWS {
            return Err(too_many_rows());
        }
        let cells = record
            .map(|r| r.iter().map(str::to_owned).collect())
            .map_err(|e| e.to_string());
        rows.push((n + 2, cells));
    }
    Ok(Table {
        header_row: 1,
        header,
        rows,
    })
}

fn too_many_rows() -> RosterError {
    RosterError::Unreadable(format!("a roster has at most {MAX_ROWS} rows"))
}

fn not_a_workbook(why: impl std::fmt::Display) -> RosterError {
    RosterError::Unreadable(format!("not an XLSX workbook: {why}"))
}

/// The text of a cell as a person typed it: whole numbers without a decimal point (a village
/// code is often stored as a number), dates as YYYY-MM-DD.
fn cell_text(value: &calamine::DataRef<'_>) -> Result<String, String> {
    use calamine::DataRef;
    Ok(match value {
        DataRef::String(s) => s.trim().to_owned(),
        DataRef::SharedString(s) => s.trim().to_owned(),
        DataRef::Int(i) => i.to_string(),
        DataRef::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{f:.0}"),
        DataRef::Float(f) => f.to_string(),
        DataRef::Bool(b) => b.to_string(),
        DataRef::DateTime(d) if d.is_datetime() => {
            let (y, m, day, ..) = d.to_ymd_hms_milli();
            format!("{y:04}-{m:02}-{day:02}")
        }
        DataRef::DateTime(d) => d.as_f64().to_string(),
        DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => {
            s.split('T').next().unwrap_or_default().to_owned()
        }
        DataRef::Error(e) => return Err(format!("a cell holds the spreadsheet error {e}")),
        DataRef::Empty => String::new(),
    })
}

fn xlsx_table(bytes: &[u8]) -> Result<Table, RosterError> {
    use calamine::Reader;
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(not_a_workbook)?;
    let mut inflated: u64 = 0;
    for i in 0..archive.len() {
        let entry = archive.by_index_raw(i).map_err(not_a_workbook)?;
        inflated = inflated.saturating_add(entry.size());
    }
    if inflated > MAX_INFLATED_BYTES {
        return Err(RosterError::Unreadable(format!(
            "the workbook inflates to {inflated} bytes; at most {MAX_INFLATED_BYTES} are read"
        )));
    }
    let mut book: calamine::Xlsx<_> =
        calamine::Xlsx::new(std::io::Cursor::new(bytes)).map_err(not_a_workbook)?;
    let first = book
        .sheet_names()
        .into_iter()
        .next()
        .ok_or_else(|| not_a_workbook("it has no sheet"))?;
    let mut cells = book
        .worksheet_cells_reader(&first)
        .map_err(not_a_workbook)?;
    // Rows by their number in the sheet; cells arrive row by row, but nothing relies on it.
    let mut rows: BTreeMap<u32, Result<Vec<String>, String>> = BTreeMap::new();
    while let Some(cell) = cells.next_cell().map_err(not_a_workbook)? {
        let (r, c) = cell.get_position();
        if c >= MAX_COLUMNS {
            continue;
        }
        if !rows.contains_key(&r) && rows.len() > MAX_ROWS {
            return Err(too_many_rows());
        }
        let row = rows.entry(r).or_insert_with(|| Ok(Vec::new()));
        let Ok(values) = row else { continue };
        match cell_text(cell.get_value()) {
            Ok(text) => {
                let c = c as usize;
                if values.len() <= c {
                    values.resize(c + 1, String::new());
                }
                values[c] = text;
            }
            Err(e) => *row = Err(format!("column {}: {e}", c + 1)),
        }
    }
    let mut rows = rows.into_iter().map(|(r, cells)| (r as usize + 1, cells));
    let Some((header_row, header)) = rows.next() else {
        return Err(RosterError::Unreadable("the first sheet is empty".into()));
    };
    let header = header.map_err(|e| RosterError::Unreadable(format!("the header row: {e}")))?;
    Ok(Table {
        header_row,
        header,
        rows: rows.collect(),
    })
}

/// Reads a roster in CSV or XLSX, checking every row. `villages` are the village codes the
/// regions table knows; `scope`, when given, the regions the importer may write in.
pub fn parse(
    bytes: &[u8],
    format: Format,
    villages: &BTreeSet<String>,
    scope: Option<&Scope>,
    today: NaiveDate,
) -> Result<Vec<RosterChild>, RosterError> {
    let table = match format {
        Format::Csv => csv_table(bytes)?,
        Format::Xlsx => xlsx_table(bytes)?,
    };
    let mut index: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, cell) in table.header.iter().enumerate() {
        let cell = cell.trim();
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
                row: table.header_row,
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
    for (row, record) in table.rows {
        let record = match record {
            Ok(r) => r,
            Err(message) => {
                errors.push(RowError {
                    row,
                    field: "row".into(),
                    message,
                });
                continue;
            }
        };
        if record.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        let cell = |key: &str| {
            index
                .get(key)
                .and_then(|i| record.get(*i))
                .map(|c| c.trim())
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
    let sex = Sex::from_key_or_label(&cell("sex")).ok();
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
        match Category::from_key_or_label(&c) {
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
            let g = Guardianship::from_key_or_label(raw).ok();
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
        match RiskFlag::from_key_or_label(&f) {
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
        ["220303100200".to_owned()].into()
    }

    fn today() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, 27).expect("date")
    }

    #[test]
    fn a_roster_in_chinese_or_english_headings_reads_the_same() {
        let zh = "姓名,性别,出生日期,村（社区）代码,类别,监护状况\n李小红,女,2016-02-29,220303100200,left_behind,一般\n";
        let en = "name,sex,birth_date,village,categories,guardianship\n李小红,female,2016/02/29,220303100200,left_behind,average\n";
        let a = parse(zh.as_bytes(), Format::Csv, &villages(), None, today()).expect("zh");
        let b = parse(en.as_bytes(), Format::Csv, &villages(), None, today()).expect("en");
        assert_eq!(a, b);
        assert_eq!(a[0].guardianship, Some(Guardianship::Average));
        assert_eq!(a[0].profile.registered_on, today());
    }

    #[test]
    fn every_bad_row_is_named_with_its_field_and_nothing_is_kept() {
        let csv = "name,sex,birth_date,village,categories\n\
                   李小红,女,2016-02-29,220303100200,left_behind\n\
                   王小明,x,2016-13-01,999999999999,nonsense\n\
                   李小红,女,2016-02-29,220303100200,left_behind\n";
        let Err(RosterError::Invalid(errors)) =
            parse(csv.as_bytes(), Format::Csv, &villages(), None, today())
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
            parse(b"name,sex\n", Format::Csv, &villages(), None, today())
        else {
            panic!("refused");
        };
        assert!(errors.iter().all(|e| e.row == 1), "{errors:?}");
        let csv = "name,sex,birth_date,village,categories\n李小红,女,2016-02-29,220303100200,left_behind\n";
        let elsewhere = Scope::new(["220302"]);
        assert!(matches!(
            parse(csv.as_bytes(), Format::Csv, &villages(), Some(&elsewhere), today()),
            Err(RosterError::Invalid(e)) if e[0].field == "village"
        ));
        assert!(matches!(
            parse(&[0xff, 0xfe, 0x00], Format::Csv, &villages(), None, today()),
            Err(RosterError::Unreadable(_))
        ));
    }

    /// A workbook as Excel writes one: a header in Chinese, the village code as a number, the
    /// birth date as a date cell.
    /// Name, sex, birth date (year, month, day), village code, categories.
    type SheetRow<'a> = (&'a str, &'a str, Option<(u16, u8, u8)>, f64, &'a str);

    fn workbook(rows: &[SheetRow<'_>]) -> Vec<u8> {
        let mut book = rust_xlsxwriter::Workbook::new();
        let sheet = book.add_worksheet();
        let date = rust_xlsxwriter::Format::new().set_num_format("yyyy-mm-dd");
        for (col, heading) in ["姓名", "性别", "出生日期", "村（社区）代码", "类别"]
            .into_iter()
            .enumerate()
        {
            sheet.write_string(0, col as u16, heading).expect("heading");
        }
        for (i, (name, sex, born, village, categories)) in rows.iter().enumerate() {
            let r = i as u32 + 1;
            sheet.write_string(r, 0, *name).expect("name");
            sheet.write_string(r, 1, *sex).expect("sex");
            if let Some((y, m, d)) = born {
                let born = rust_xlsxwriter::ExcelDateTime::from_ymd(*y, *m, *d).expect("date");
                sheet
                    .write_datetime_with_format(r, 2, &born, &date)
                    .expect("born");
            }
            sheet.write_number(r, 3, *village).expect("village");
            sheet.write_string(r, 4, *categories).expect("categories");
        }
        book.save_to_buffer().expect("xlsx")
    }

    #[test]
    fn an_xlsx_roster_reads_as_its_csv_twin_with_dates_and_numeric_codes() {
        let xlsx = workbook(&[(
            "李小红",
            "女",
            Some((2016, 2, 29)),
            220303100200.0,
            "留守儿童",
        )]);
        assert_eq!(Format::sniff(&xlsx), Format::Xlsx);
        let csv = "name,sex,birth_date,village,categories\n李小红,女,2016-02-29,220303100200,left_behind\n";
        assert_eq!(Format::sniff(csv.as_bytes()), Format::Csv);
        let from_xlsx = parse(&xlsx, Format::Xlsx, &villages(), None, today()).expect("xlsx");
        let from_csv = parse(csv.as_bytes(), Format::Csv, &villages(), None, today()).expect("csv");
        assert_eq!(from_xlsx, from_csv);
    }

    #[test]
    fn a_bad_xlsx_row_is_named_by_its_row_in_the_sheet() {
        let xlsx = workbook(&[
            (
                "李小红",
                "女",
                Some((2016, 2, 29)),
                220303100200.0,
                "留守儿童",
            ),
            ("王小明", "女", None, 999.0, "left_behind"),
        ]);
        let Err(RosterError::Invalid(errors)) =
            parse(&xlsx, Format::Xlsx, &villages(), None, today())
        else {
            panic!("refused");
        };
        let fields: Vec<(usize, &str)> = errors.iter().map(|e| (e.row, e.field.as_str())).collect();
        assert_eq!(fields, [(3, "birth_date"), (3, "village")]);
    }

    #[test]
    fn an_xlsx_that_is_not_one_is_unreadable() {
        let csv = b"name,sex,birth_date,village,categories\n";
        let mut torn = workbook(&[]);
        torn.truncate(torn.len() / 2);
        let mut not_a_book = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        not_a_book
            .start_file("hello.txt", zip::write::SimpleFileOptions::default())
            .expect("entry");
        std::io::Write::write_all(&mut not_a_book, b"hello").expect("write");
        let not_a_book = not_a_book.finish().expect("zip").into_inner();
        for bytes in [&csv[..], &torn, &not_a_book, b"PK\x03\x04 and then nothing"] {
            match parse(bytes, Format::Xlsx, &villages(), None, today()) {
                Err(RosterError::Unreadable(m)) => assert!(m.contains("XLSX"), "{m}"),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn a_workbook_that_inflates_past_the_bound_is_refused_before_it_is_read() {
        let mut bomb = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        bomb.start_file(
            "xl/sharedStrings.xml",
            zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Deflated)
                .large_file(true),
        )
        .expect("entry");
        let zeros = vec![b' '; 1 << 20];
        for _ in 0..=(MAX_INFLATED_BYTES >> 20) {
            std::io::Write::write_all(&mut bomb, &zeros).expect("write");
        }
        let bomb = bomb.finish().expect("zip").into_inner();
        assert!(bomb.len() < 1 << 20, "{} bytes", bomb.len());
        match parse(&bomb, Format::Xlsx, &villages(), None, today()) {
            Err(RosterError::Unreadable(m)) => assert!(m.contains("inflates"), "{m}"),
            other => panic!("{other:?}"),
        }
    }
}
