//! The quarterly update for the national Child Welfare Information System (全国儿童福利信息系统):
//! "每季度更新全国儿童福利信息系统数据" (seed 002 item 8; seed 004 item 8), as an XLSX sheet with
//! one row per child file of the county (docs/REPORTS.md, "The national update").
//!
//! The columns follow what the seeds say a file holds (seed 004 item 8: basic information,
//! visit records, care and assistance, problems found and their solutions; seed 002 item 8:
//! living security, guardianship, medical care and schooling), organised as counties already
//! collect it: the child, the guardians, the visits, help and dangers. The national system's
//! import template is the province's to fix; a mapping file renames or leaves out columns, so
//! a county matches its template without a new release.
//!
//! Every file exported is a read of a child file, and is audited as one.

use chrono::NaiveDate;
use homevisit_sync_core::file::{ChildFileView, PersonRole, view_of};
use homevisit_sync_core::rules::{self, RuleSet, Status};
use homevisit_sync_core::sync::Scope;
use homevisit_sync_core::vocab::{Category, DangerKind, Guardianship, RecordKind, RiskFlag};
use std::collections::BTreeMap;

use crate::service::children::{ReadError, read_file};
use crate::service::reports::{self, Cell, Level, Period};
use crate::store::DbConnection;
use crate::store::audit::Read;

/// The audit action of an exported file.
pub const ACTION: &str = "reports.national";

/// Every column, in order: its key (what a mapping file names) and its standard heading.
pub const COLUMNS: &[(&str, &str)] = &[
    ("file_id", "档案编号"),
    ("name", "姓名"),
    ("sex", "性别"),
    ("birth_date", "出生日期"),
    ("id_number", "公民身份号码"),
    ("hukou_place", "户籍地"),
    ("address", "现住址"),
    ("village_code", "村（社区）区划代码"),
    ("village_name", "村（社区）"),
    ("township_name", "乡镇（街道）"),
    ("registered_on", "建档日期"),
    ("categories", "儿童类别"),
    ("guardianship", "监护状况"),
    ("risk_flags", "重点关注情形"),
    ("guardian_names", "监护人姓名"),
    ("guardian_relations", "监护人与儿童关系"),
    ("guardian_phones", "监护人联系电话"),
    ("caregiver_names", "委托照护人姓名"),
    ("caregiver_relations", "委托照护人与儿童关系"),
    ("caregiver_phones", "委托照护人联系电话"),
    ("home_visits", "本期入户走访次数"),
    ("contacts", "本期联系次数"),
    ("last_home_visit", "最近入户走访日期"),
    ("last_visited_by", "最近走访人"),
    ("visit_status", "走访状态"),
    ("days_overdue", "逾期天数"),
    ("assistance", "本期关爱帮扶次数"),
    ("problems_open", "未解决问题数"),
    ("dangers_open", "未结危险情况数"),
    ("danger_kinds", "未结危险情形"),
    ("police_reported", "已向公安机关报告"),
    ("service_status", "服务状态"),
    ("period", "统计期"),
];

/// The columns an export writes, in order, with their headings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Columns(Vec<(usize, String)>);

impl Default for Columns {
    fn default() -> Self {
        Columns(
            COLUMNS
                .iter()
                .enumerate()
                .map(|(i, (_, heading))| (i, (*heading).to_owned()))
                .collect(),
        )
    }
}

/// Why a mapping file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the column mapping: {0}")]
pub struct MappingError(pub String);

impl Columns {
    /// Reads a mapping file: TOML whose keys are column keys, each set to its new heading, or
    /// to `false` to leave the column out. Columns not named keep their standard heading.
    pub fn from_mapping(text: &str) -> Result<Columns, MappingError> {
        let table: toml::Table = text.parse().map_err(|e| MappingError(format!("{e}")))?;
        let mut chosen = Columns::default().0;
        for (key, value) in &table {
            let Some(i) = COLUMNS.iter().position(|(k, _)| k == key) else {
                return Err(MappingError(format!(
                    "`{key}` is not a column; the columns are {}",
                    COLUMNS
                        .iter()
                        .map(|(k, _)| *k)
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            };
            match value {
                toml::Value::String(heading) if !heading.trim().is_empty() => {
                    chosen[i].1 = heading.trim().to_owned();
                }
                toml::Value::Boolean(false) => chosen.retain(|(c, _)| *c != i),
                _ => {
                    return Err(MappingError(format!(
                        "`{key}` is set to a heading (a string that is not empty) or to false"
                    )));
                }
            }
        }
        if chosen.is_empty() {
            return Err(MappingError("every column is left out".into()));
        }
        Ok(Columns(chosen))
    }

    /// The headings, in order.
    pub fn headings(&self) -> impl Iterator<Item = &str> {
        self.0.iter().map(|(_, h)| h.as_str())
    }
}

/// One file's row: a cell per entry of [`COLUMNS`].
pub type Row = Vec<Cell>;

fn joined<'a>(items: impl IntoIterator<Item = &'a str>) -> Cell {
    let text: Vec<&str> = items.into_iter().filter(|s| !s.is_empty()).collect();
    if text.is_empty() {
        Cell::Empty
    } else {
        Cell::Text(text.join("、"))
    }
}

/// The row of one file, as it stood at `to`, with the period `from..=to` counted.
pub fn row(
    view: &ChildFileView,
    rules: &RuleSet,
    period: &str,
    (from, to): (NaiveDate, NaiveDate),
    places: &BTreeMap<String, String>,
) -> Row {
    let p = &view.profile;
    let summary = view.summary();
    let case = homevisit_sync_core::device::case_of(&summary, to);
    let evaluation = rules::evaluate(rules, &case, to);
    let live = || {
        view.records
            .values()
            .filter(|r| r.void.is_none() && r.current().date <= to)
    };
    let in_period = |kind: RecordKind| {
        live()
            .filter(|r| r.kind == kind && r.current().date >= from)
            .count()
    };
    let last_visit = live()
        .filter(|r| r.kind == RecordKind::HomeVisit)
        .map(|r| r.current())
        .max_by_key(|v| (v.date, v.recorded_at));
    let people = |role: PersonRole| {
        let people: Vec<_> = view
            .people
            .values()
            .filter(|person| person.role == role && person.void.is_none())
            .collect();
        [
            joined(people.iter().map(|person| person.name.as_str())),
            joined(people.iter().map(|person| person.relation.as_str())),
            joined(people.iter().filter_map(|person| person.phone.as_deref())),
        ]
    };
    let [guardian_names, guardian_relations, guardian_phones] = people(PersonRole::Guardian);
    let [caregiver_names, caregiver_relations, caregiver_phones] =
        people(PersonRole::EntrustedCaregiver);
    let problems_open = live()
        .filter_map(|r| r.current().problem.as_ref())
        .filter(|problem| problem.solved_on.is_none_or(|day| day > to))
        .count();
    let dangers: Vec<_> = live()
        .filter_map(|r| r.current().danger.as_ref())
        .filter(|d| d.outcome.is_none())
        .collect();
    let mut danger_kinds: Vec<DangerKind> = dangers.iter().flat_map(|d| d.found.clone()).collect();
    danger_kinds.sort();
    danger_kinds.dedup();
    let police_reported = if dangers
        .iter()
        .any(|d| d.found.iter().any(|k| k.requires_police()))
    {
        Cell::Text(
            if dangers.iter().any(|d| d.police_report_missing()) {
                "否"
            } else {
                "是"
            }
            .into(),
        )
    } else {
        Cell::Empty
    };
    let worst = evaluation
        .schedules
        .iter()
        .max_by_key(|s| (s.status, s.days_overdue));
    let visit_status = match (evaluation.served, worst.map(|s| s.status)) {
        (false, _) | (true, None) => "不在服务范围",
        (true, Some(Status::Ok)) => "正常",
        (true, Some(Status::DueSoon)) => "即将到期",
        (true, Some(Status::Overdue)) => "逾期",
    };
    let days_overdue = worst.map_or(0, |s| s.days_overdue);
    let attributes = summary.attributes_on(to);
    let township = Level::Township.region_of(&p.village_code);
    let text = |s: &str| {
        if s.is_empty() {
            Cell::Empty
        } else {
            Cell::Text(s.to_owned())
        }
    };
    let count = |n: usize| Cell::Number(n as f64);
    vec![
        text(&view.id.to_string()),
        text(&p.name),
        text(p.sex.label_zh()),
        text(&p.birth_date.to_string()),
        text(p.id_number.as_deref().unwrap_or_default()),
        text(&p.hukou_place),
        text(&p.address),
        text(&p.village_code),
        text(places.get(&p.village_code).map_or("", String::as_str)),
        text(places.get(&township).map_or("", String::as_str)),
        text(&p.registered_on.to_string()),
        // A key a rule set added has no label and stays as it is.
        joined(
            attributes
                .categories
                .iter()
                .map(|c| c.parse().map_or(c.as_str(), |k: Category| k.label_zh())),
        ),
        text(
            attributes
                .guardianship
                .map_or("未评估", Guardianship::label_zh),
        ),
        joined(
            attributes
                .risk_flags
                .iter()
                .map(|f| f.parse().map_or(f.as_str(), |k: RiskFlag| k.label_zh())),
        ),
        guardian_names,
        guardian_relations,
        guardian_phones,
        caregiver_names,
        caregiver_relations,
        caregiver_phones,
        count(in_period(RecordKind::HomeVisit)),
        count(in_period(RecordKind::Contact)),
        last_visit.map_or(Cell::Empty, |v| text(&v.date.to_string())),
        last_visit.map_or(Cell::Empty, |v| text(&v.by)),
        text(visit_status),
        if days_overdue > 0 {
            count(days_overdue as usize)
        } else {
            Cell::Empty
        },
        count(in_period(RecordKind::Assistance)),
        count(problems_open),
        count(dangers.len()),
        joined(danger_kinds.iter().map(|k| k.label_zh())),
        police_reported,
        // 应退未退 (seed 002 item 18): a file no rule serves any longer is marked for removal.
        text(if evaluation.served {
            "在册服务"
        } else {
            "应退出"
        }),
        text(period),
    ]
}

/// The export: every file of `scope`, each read audited as `reader` with [`ACTION`].
pub struct National {
    /// The period (`2026-Q4`).
    pub period: String,
    /// Its first day.
    pub from: NaiveDate,
    /// The last day counted: the period's end, or today while it runs.
    pub to: NaiveDate,
    /// A row per file, in file-id order.
    pub rows: Vec<Row>,
}

/// Reads every file of `scope` (auditing each read as `reader`) and builds its row. Run it in
/// a transaction, so the audit rows and the reads stand or fall together.
pub fn export(
    conn: &mut DbConnection,
    scope: &Scope,
    reader: &Read<'_>,
    rules: &RuleSet,
    (label, period): (&str, Period),
    today: NaiveDate,
) -> Result<National, ReadError> {
    let from = period.start;
    let to = period.end.min(today);
    let mut out = National {
        period: label.to_owned(),
        from,
        to,
        rows: Vec::new(),
    };
    if from > today {
        return Ok(out);
    }
    let prefixes: Vec<&str> = scope.prefixes().collect();
    let mut after = String::new();
    loop {
        let ids =
            crate::store::children::ids_in_scope_after(conn, &prefixes, &after, reports::BATCH)?;
        let Some(last) = ids.last().cloned() else {
            break;
        };
        let mut views = Vec::with_capacity(ids.len());
        for id in &ids {
            let uuid = uuid::Uuid::parse_str(id)
                .map_err(|e| ReadError::Damaged(uuid::Uuid::nil(), e.to_string()))?;
            let doc = read_file(conn, scope, reader, uuid)?;
            views.push(view_of(&doc).map_err(|e| ReadError::Damaged(uuid, e.to_string()))?);
        }
        let mut codes: Vec<String> = views
            .iter()
            .flat_map(|v| {
                let village = v.profile.village_code.clone();
                [Level::Township.region_of(&village), village]
            })
            .collect();
        codes.sort();
        codes.dedup();
        let places = crate::store::people::region_names(conn, &codes)?;
        out.rows.extend(
            views
                .iter()
                .map(|v| row(v, rules, label, (from, to), &places)),
        );
        after = last;
    }
    Ok(out)
}

/// The export as an XLSX workbook: one sheet, the chosen columns under their headings.
pub fn to_xlsx(
    national: &National,
    columns: &Columns,
) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    let headings: Vec<&str> = columns.headings().collect();
    let rows = national
        .rows
        .iter()
        .map(|row| columns.0.iter().map(|(i, _)| &row[*i]));
    reports::workbook("儿童信息季度更新", &headings, rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_mapping_renames_and_leaves_out_columns_and_refuses_what_it_does_not_know() {
        let columns = Columns::from_mapping(
            "name = \"儿童姓名\"\nid_number = \"身份证号码\"\naddress = false\n",
        )
        .expect("mapping");
        let headings: Vec<&str> = columns.headings().collect();
        assert_eq!(headings.len(), COLUMNS.len() - 1);
        assert_eq!(
            &headings[..5],
            ["档案编号", "儿童姓名", "性别", "出生日期", "身份证号码"]
        );
        assert!(!headings.contains(&"现住址"));
        for bad in [
            "nmae = \"x\"",
            "name = \"\"",
            "name = 3",
            "name = true",
            "name =",
        ] {
            assert!(Columns::from_mapping(bad).is_err(), "{bad}");
        }
        let all_out: String = COLUMNS
            .iter()
            .map(|(k, _)| format!("{k} = false\n"))
            .collect();
        assert!(Columns::from_mapping(&all_out).is_err());
        assert_eq!(
            Columns::from_mapping("").expect("empty"),
            Columns::default()
        );
    }
}
