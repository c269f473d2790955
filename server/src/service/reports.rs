//! The compliance report for counties (docs/REPORTS.md): per region and category, for a month
//! or a quarter, how many children were served, how many visits the rules required and how
//! many were made on time or late, who is overdue at the period's end, and the danger reports
//! opened, closed and still open.
//!
//! sync-core's rules engine stays the only implementation of the rules: each child's period is
//! replayed through it (`rules::evaluate` at the period's start, then at each visit), so a
//! visit required and made is counted exactly as the phone and the schedules count it.

use chrono::{Datelike, NaiveDate};
use homevisit_sync_core::file::FileSummary;
use homevisit_sync_core::rules::{self, RuleSet, Status};
use homevisit_sync_core::sync::Scope;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};

use crate::store::DbConnection;
use crate::store::children::summaries;

/// Children read per batch.
pub const BATCH: i64 = 2000;

/// A reporting period: a month (`2026-11`) or a quarter (`2026-Q4`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    /// The first day.
    pub start: NaiveDate,
    /// The last day.
    pub end: NaiveDate,
}

impl Period {
    /// Reads `2026-11` or `2026-Q4`.
    pub fn parse(s: &str) -> Option<Period> {
        let (year, rest) = s.split_once('-')?;
        if year.len() != 4 {
            return None;
        }
        let year: i32 = year.parse().ok()?;
        let (first_month, months) = match rest.strip_prefix('Q') {
            Some(q) if q.len() == 1 => {
                let q: u32 = q.parse().ok().filter(|q| (1..=4).contains(q))?;
                (3 * q - 2, 3)
            }
            Some(_) => return None,
            None if rest.len() == 2 => (rest.parse().ok().filter(|m| (1..=12).contains(m))?, 1),
            None => return None,
        };
        let start = NaiveDate::from_ymd_opt(year, first_month, 1)?;
        let end = start
            .checked_add_months(chrono::Months::new(months))?
            .pred_opt()?;
        Some(Period { start, end })
    }
}

/// How far up the division tree rows are summed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Each village (村/社区).
    Village,
    /// Each township (乡镇/街道).
    Township,
    /// Each county (县/区).
    County,
}

impl Level {
    /// Reads `village`, `township` or `county`.
    pub fn parse(s: &str) -> Option<Level> {
        match s {
            "village" => Some(Level::Village),
            "township" => Some(Level::Township),
            "county" => Some(Level::County),
            _ => None,
        }
    }

    /// The code of the region at this level that holds `village`.
    pub fn region_of(self, village: &str) -> String {
        let keep = match self {
            Level::Village => 12,
            Level::Township => 9,
            Level::County => 6,
        };
        let head: String = village.chars().take(keep).collect();
        format!("{head:0<12}")
    }
}

/// One row of the report: a region and a category (`all` for every child).
#[derive(Debug, Clone, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ReportRow {
    /// The region's 12-digit code.
    pub region: String,
    /// Its name, when the regions table has it.
    pub name: String,
    /// A category key, or `all`.
    pub category: String,
    /// Children served at the period's end (or today, for the current period).
    pub children_served: u64,
    /// Visits the rules required in the period (each due date that fell in it, or was passed
    /// before it and still owed).
    pub visits_required: u64,
    /// Of those, made by their due date (plus the rules' grace days).
    pub visits_on_time: u64,
    /// Of those, made in the period but after their due date.
    pub visits_late: u64,
    /// Children overdue at the period's end.
    pub overdue_now: u64,
    /// The median days overdue of those, if any.
    pub median_days_overdue: Option<f64>,
    /// Danger reports dated in the period.
    pub dangers_opened: u64,
    /// Danger reports closed (with an outcome) in the period.
    pub dangers_closed: u64,
    /// Danger reports made by the period's end and not closed.
    pub dangers_open: u64,
    #[serde(skip)]
    #[schema(ignore)]
    days_overdue: Vec<u32>,
}

/// The report.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Report {
    /// The period asked for (`2026-11`, `2026-Q4`).
    pub period: String,
    /// Its first day.
    pub from: String,
    /// Its last day counted: the period's end, or today while it runs (the end, with no rows,
    /// for a period that has not begun).
    pub to: String,
    /// `village`, `township` or `county`.
    pub level: String,
    /// By region, then category (`all` first).
    pub rows: Vec<ReportRow>,
}

/// What one child contributes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChildFigures {
    /// Served at the end.
    pub served: bool,
    /// Categories in force at the end.
    pub categories: Vec<String>,
    /// Visits required in the period.
    pub required: u64,
    /// Made on time.
    pub on_time: u64,
    /// Made late, in the period.
    pub late: u64,
    /// Days overdue at the end (the worst schedule), if overdue.
    pub overdue_days: Option<u32>,
}

/// Replays one child's period through the rules engine: from the state entering the period,
/// each schedule that falls due by `to` is one visit required; the first qualifying record
/// after the last one meets it, on time or late, and the schedule starts again from it.
pub fn child_figures(
    summary: &FileSummary,
    rules: &RuleSet,
    from: NaiveDate,
    to: NaiveDate,
) -> ChildFigures {
    let evaluate = |on: NaiveDate| {
        let case = homevisit_sync_core::device::case_of(summary, on);
        (rules::evaluate(rules, &case, on), case.categories)
    };
    let (end, categories) = evaluate(to);
    let mut out = ChildFigures {
        served: end.served,
        categories,
        overdue_days: end
            .schedules
            .iter()
            .filter(|s| s.status == Status::Overdue)
            .map(|s| s.days_overdue)
            .max(),
        ..ChildFigures::default()
    };
    if summary.registered_on > to {
        return out;
    }
    let grace = chrono::Duration::days(i64::from(rules.grace_days()));
    let entering = from.pred_opt().unwrap_or(from);
    for kind in end.schedules.iter().map(|s| s.kind.clone()) {
        let mut at = entering.max(summary.registered_on);
        // A bound no real file reaches (a visit a day for a quarter), against a bad rule file.
        for _ in 0..400 {
            let (ev, _) = evaluate(at);
            let Some(s) = ev.schedules.into_iter().find(|s| s.kind == kind) else {
                break;
            };
            if !ev.served || s.due > to {
                break;
            }
            out.required += 1;
            let made = summary
                .records
                .iter()
                .filter(|(k, d)| {
                    rules.counts_as(k.key(), &kind) && *d <= to && s.last.is_none_or(|l| *d > l)
                })
                .map(|(_, d)| *d)
                .min();
            let Some(made) = made else {
                break;
            };
            if made <= s.due + grace {
                out.on_time += 1;
            } else {
                out.late += 1;
            }
            at = made;
        }
    }
    out
}

fn median(v: &mut [u32]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_unstable();
    let n = v.len();
    Some(if n % 2 == 1 {
        f64::from(v[n / 2])
    } else {
        (f64::from(v[n / 2 - 1]) + f64::from(v[n / 2])) / 2.0
    })
}

/// What a compliance report is asked for.
#[derive(Debug, Clone, Copy)]
pub struct Asked<'a> {
    /// The period as asked (`2026-Q4`).
    pub label: &'a str,
    /// The period.
    pub period: Period,
    /// How far up the tree rows are summed.
    pub level: Level,
    /// Today: a period still running is counted to it.
    pub today: NaiveDate,
    /// The time zone danger reports are dated in.
    pub zone: chrono_tz::Tz,
}

/// Builds the report for `scope`: every child read in batches, its period replayed, and the
/// figures summed by region at the level asked and by category.
pub fn compliance(
    conn: &mut DbConnection,
    scope: &Scope,
    rules: &RuleSet,
    asked: Asked<'_>,
) -> diesel::QueryResult<Report> {
    let Asked {
        label,
        period,
        level,
        today,
        zone,
    } = asked;
    let to = period.end.min(today);
    let from = period.start;
    let level_key = match level {
        Level::Village => "village",
        Level::Township => "township",
        Level::County => "county",
    };
    if from > today {
        // Nothing has happened in a period that has not begun.
        return Ok(Report {
            period: label.to_owned(),
            from: from.to_string(),
            to: period.end.to_string(),
            level: level_key.to_owned(),
            rows: Vec::new(),
        });
    }
    let prefixes: Vec<&str> = scope.prefixes().collect();
    let dangers = crate::store::alerts::danger_facts(conn, &prefixes, zone)?;
    let with_danger: BTreeSet<&str> = dangers.iter().map(|d| d.child.as_str()).collect();
    let mut categories_of: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut rows: BTreeMap<(String, String), ReportRow> = BTreeMap::new();
    fn row<'a>(
        rows: &'a mut BTreeMap<(String, String), ReportRow>,
        region: &str,
        category: &str,
    ) -> &'a mut ReportRow {
        rows.entry((region.to_owned(), category.to_owned()))
            .or_insert_with(|| ReportRow {
                region: region.to_owned(),
                category: category.to_owned(),
                ..ReportRow::default()
            })
    }
    let mut after = String::new();
    loop {
        let ids = crate::store::children::ids_in_scope_after(conn, &prefixes, &after, BATCH)?;
        let Some(last) = ids.last().cloned() else {
            break;
        };
        for summary in summaries(conn, &ids)? {
            let f = child_figures(&summary, rules, from, to);
            let region = level.region_of(&summary.village_code);
            let child = summary.id.to_string();
            if with_danger.contains(child.as_str()) {
                categories_of.insert(child, f.categories.clone());
            }
            if !f.served && f.required == 0 {
                continue;
            }
            for category in std::iter::once("all").chain(f.categories.iter().map(String::as_str)) {
                let r = row(&mut rows, &region, category);
                r.children_served += u64::from(f.served);
                r.visits_required += f.required;
                r.visits_on_time += f.on_time;
                r.visits_late += f.late;
                if let Some(days) = f.overdue_days {
                    r.overdue_now += 1;
                    r.days_overdue.push(days);
                }
            }
        }
        after = last;
    }
    for d in &dangers {
        let region = level.region_of(&d.village);
        let cats = categories_of.get(&d.child).cloned().unwrap_or_default();
        for category in std::iter::once("all").chain(cats.iter().map(String::as_str)) {
            let r = row(&mut rows, &region, category);
            let dated_in = d.dated.is_some_and(|day| day >= from && day <= to);
            let made_by_end = d.dated.is_some_and(|day| day <= to);
            let closed_in = d.closed_on.is_some_and(|day| day >= from && day <= to);
            let closed_by_end = d.closed_on.is_some_and(|day| day <= to);
            r.dangers_opened += u64::from(dated_in);
            r.dangers_closed += u64::from(closed_in);
            r.dangers_open += u64::from(made_by_end && !closed_by_end);
        }
    }
    let names = crate::store::people::region_names(
        conn,
        &rows.keys().map(|k| k.0.clone()).collect::<Vec<_>>(),
    )?;
    let mut out: Vec<ReportRow> = rows
        .into_values()
        .map(|mut r| {
            r.median_days_overdue = median(&mut r.days_overdue);
            r.name = names.get(&r.region).cloned().unwrap_or_default();
            r
        })
        .collect();
    out.sort_by(|a, b| {
        (&a.region, a.category != "all", &a.category).cmp(&(
            &b.region,
            b.category != "all",
            &b.category,
        ))
    });
    Ok(Report {
        period: label.to_owned(),
        from: from.to_string(),
        to: to.to_string(),
        level: level_key.to_owned(),
        rows: out,
    })
}

/// The columns of the CSV and XLSX forms, in order, with their Chinese headings.
pub const COLUMNS: [(&str, &str); 13] = [
    ("region", "区划代码"),
    ("name", "区划名称"),
    ("category", "儿童类别"),
    ("children_served", "服务儿童数"),
    ("visits_required", "应走访次数"),
    ("visits_on_time", "按时走访次数"),
    ("visits_late", "逾期后走访次数"),
    ("overdue_now", "当前逾期人数"),
    ("median_days_overdue", "逾期天数中位数"),
    ("dangers_opened", "新发现危险情况"),
    ("dangers_closed", "已处置危险情况"),
    ("dangers_open", "未结危险情况"),
    ("period", "统计期"),
];

/// A cell of a row, as text or a number.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// Text.
    Text(String),
    /// A number.
    Number(f64),
    /// Nothing.
    Empty,
}

/// The cells of one row, in [`COLUMNS`] order.
pub fn cells(report: &Report, r: &ReportRow) -> Vec<Cell> {
    let n = |v: u64| Cell::Number(v as f64);
    vec![
        Cell::Text(r.region.clone()),
        Cell::Text(r.name.clone()),
        Cell::Text(r.category.clone()),
        n(r.children_served),
        n(r.visits_required),
        n(r.visits_on_time),
        n(r.visits_late),
        n(r.overdue_now),
        r.median_days_overdue.map_or(Cell::Empty, Cell::Number),
        n(r.dangers_opened),
        n(r.dangers_closed),
        n(r.dangers_open),
        Cell::Text(report.period.clone()),
    ]
}

/// The report as CSV (UTF-8 with a byte-order mark, so Excel reads the Chinese headings).
pub fn to_csv(report: &Report) -> Vec<u8> {
    let mut out = "\u{feff}".as_bytes().to_vec();
    let mut w = csv::Writer::from_writer(&mut out);
    let _ = w.write_record(COLUMNS.iter().map(|(key, _)| *key));
    for r in &report.rows {
        let row: Vec<String> = cells(report, r)
            .into_iter()
            .map(|c| match c {
                Cell::Text(t) => t,
                Cell::Number(v) if v.fract() == 0.0 => format!("{v:.0}"),
                Cell::Number(v) => format!("{v:.1}"),
                Cell::Empty => String::new(),
            })
            .collect();
        let _ = w.write_record(&row);
    }
    drop(w);
    out
}

/// The report as an XLSX workbook: one sheet, Chinese headings.
pub fn to_xlsx(report: &Report) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    let headings: Vec<&str> = COLUMNS.iter().map(|(_, heading)| *heading).collect();
    let rows: Vec<Vec<Cell>> = report.rows.iter().map(|r| cells(report, r)).collect();
    workbook("走访合规", &headings, rows.iter().map(|r| r.iter()))
}

/// A workbook of one sheet: a row of headings, then the rows.
pub fn workbook<'a, R: Iterator<Item = &'a Cell>>(
    sheet_name: &str,
    headings: &[&str],
    rows: impl Iterator<Item = R>,
) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    sheet.set_name(sheet_name)?;
    for (col, heading) in headings.iter().enumerate() {
        sheet.write_string(0, col as u16, *heading)?;
    }
    for (i, cells) in rows.enumerate() {
        let row = (i + 1) as u32;
        for (col, cell) in cells.enumerate() {
            match cell {
                Cell::Text(t) => sheet.write_string(row, col as u16, t)?,
                Cell::Number(v) => sheet.write_number(row, col as u16, *v)?,
                Cell::Empty => sheet,
            };
        }
    }
    book.save_to_buffer()
}

/// The month of `today`, as a period (the default of the command line).
pub fn current_month(today: NaiveDate) -> String {
    format!("{}-{:02}", today.year(), today.month())
}

/// The quarter of `today`, as a period.
pub fn current_quarter(today: NaiveDate) -> String {
    format!("{}-Q{}", today.year(), today.month0() / 3 + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> NaiveDate {
        s.parse().expect("date")
    }

    #[test]
    fn months_and_quarters_read_and_nothing_else_does() {
        assert_eq!(
            Period::parse("2026-11"),
            Some(Period {
                start: date("2026-11-01"),
                end: date("2026-11-30")
            })
        );
        assert_eq!(
            Period::parse("2026-Q4"),
            Some(Period {
                start: date("2026-10-01"),
                end: date("2026-12-31")
            })
        );
        assert_eq!(
            Period::parse("2024-02").map(|p| p.end),
            Some(date("2024-02-29"))
        );
        for bad in [
            "2026-13",
            "2026-Q5",
            "2026-Q0",
            "26-11",
            "2026-1",
            "2026",
            "2026-11-01",
            "",
        ] {
            assert_eq!(Period::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn regions_are_the_village_codes_cut_to_their_level() {
        assert_eq!(Level::Township.region_of("220303100203"), "220303100000");
        assert_eq!(Level::County.region_of("220303100203"), "220303000000");
        assert_eq!(Level::Village.region_of("220303100203"), "220303100203");
    }

    fn child(guardianship: &str, visits: &[&str]) -> FileSummary {
        use homevisit_sync_core::file::{Assertion, AttrKind, ChildId};
        use homevisit_sync_core::vocab::RecordKind;
        let at = chrono::DateTime::from_timestamp(1_767_225_600, 0).expect("time");
        let assertion = |attr, value: &str| Assertion {
            attr,
            value: value.into(),
            present: true,
            effective: date("2026-01-10"),
            recorded_at: at,
            by: "d".into(),
        };
        FileSummary {
            id: ChildId::new(),
            name: "x".into(),
            village_code: "220303100200".into(),
            birth_date: date("2016-02-29"),
            registered_on: date("2026-01-10"),
            attributes: [
                (
                    uuid::Uuid::new_v4(),
                    assertion(AttrKind::Category, "left_behind"),
                ),
                (
                    uuid::Uuid::new_v4(),
                    assertion(AttrKind::Guardianship, guardianship),
                ),
            ]
            .into(),
            records: visits
                .iter()
                .map(|d| (RecordKind::HomeVisit, date(d)))
                .collect(),
            plan_reviews: Vec::new(),
        }
    }

    #[test]
    fn a_period_is_replayed_through_the_rules_visit_by_visit() {
        let rules = RuleSet::preset("tiedong").expect("rules");
        let (from, to) = (date("2026-11-01"), date("2026-11-30"));
        // Monthly: due 11-05 after the October visit, visited on 11-20: required and late;
        // due again 12-20, after the period.
        let late = child_figures(
            &child("average", &["2026-10-05", "2026-11-20"]),
            &rules,
            from,
            to,
        );
        assert_eq!((late.required, late.on_time, late.late), (1, 0, 1));
        assert_eq!(late.overdue_days, None);
        assert!(late.served && late.categories == ["left_behind"]);
        // Monthly, visited on 11-03 and 11-28: the second visit was due 12-03, not in November.
        let twice = child_figures(
            &child("average", &["2026-10-05", "2026-11-03", "2026-11-28"]),
            &rules,
            from,
            to,
        );
        assert_eq!((twice.required, twice.on_time, twice.late), (1, 1, 0));
        // Every three months: due 11-15 after the August visit, never visited.
        let owed = child_figures(&child("good", &["2026-08-15"]), &rules, from, to);
        assert_eq!((owed.required, owed.on_time, owed.late), (1, 0, 0));
        assert_eq!(owed.overdue_days, Some(15));
        // Nothing due in the period: nothing required.
        let quiet = child_figures(&child("good", &["2026-10-20"]), &rules, from, to);
        assert_eq!(quiet.required, 0);
        // A quarter of a monthly child visited each month on time: three required, three made.
        let quarter = child_figures(
            &child(
                "average",
                &["2026-09-30", "2026-10-28", "2026-11-25", "2026-12-20"],
            ),
            &rules,
            date("2026-10-01"),
            date("2026-12-31"),
        );
        assert_eq!((quarter.required, quarter.on_time, quarter.late), (3, 3, 0));
    }

    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        assert_eq!(median(&mut [5, 1, 3]), Some(3.0));
        assert_eq!(median(&mut [4, 1, 3, 10]), Some(3.5));
        assert_eq!(median(&mut []), None);
    }
}
