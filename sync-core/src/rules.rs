//! The visit-rules engine of docs/RULES.md: pure functions of a child's current attributes,
//! their records and a date.
//!
//! A [`RuleSet`] is data (a preset or a TOML file): rules map conditions on the child to an
//! interval for a kind of contact. The phone uses it for the offline due list, the server for
//! overdue flags: one implementation, one test suite.
//!
//! ```
//! use homevisit_sync_core::rules::{RuleSet, Case, evaluate};
//! let rules = RuleSet::preset("tiedong").unwrap();
//! let case: Case = serde_json::from_str(r#"{"id": "c1", "birth_date": "2015-05-01",
//!   "registered_on": "2026-01-10", "categories": ["left_behind"], "guardianship": "good",
//!   "risk_flags": [], "records": [{"kind": "home_visit", "date": "2026-03-01"}]}"#).unwrap();
//! let out = evaluate(&rules, &case, "2026-11-22".parse().unwrap()).unwrap();
//! assert_eq!(serde_json::to_string(&out).unwrap(), r#"{"id":"c1","served":true,"schedules":[{"kind":"home_visit","every":"3 months","last":"2026-03-01","due":"2026-06-01","status":"overdue","days_overdue":174}]}"#);
//! ```

use chrono::{Datelike, Months, NaiveDate};
use serde::{Deserialize, Deserializer, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use crate::vocab::{Category, Guardianship, RecordKind, RiskFlag};

/// A length of time between contacts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval {
    /// How many units.
    pub count: u32,
    /// Days, weeks or calendar months.
    pub unit: Unit,
}

/// The unit of an [`Interval`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// Days.
    Days,
    /// Weeks of 7 days.
    Weeks,
    /// Calendar months, the day clamped to the month's end.
    Months,
}

impl Interval {
    /// The date one interval after `from`; `None` past the calendar's end.
    pub fn after(&self, from: NaiveDate) -> Option<NaiveDate> {
        match self.unit {
            Unit::Days => from.checked_add_days(chrono::Days::new(u64::from(self.count))),
            Unit::Weeks => from.checked_add_days(chrono::Days::new(7 * u64::from(self.count))),
            // chrono clamps the day to the month's end: 31 Aug + 3 months = 30 Nov.
            Unit::Months => from.checked_add_months(Months::new(self.count)),
        }
    }
}

impl fmt::Display for Interval {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let unit = match self.unit {
            Unit::Days => "day",
            Unit::Weeks => "week",
            Unit::Months => "month",
        };
        let plural = if self.count == 1 { "" } else { "s" };
        write!(f, "{} {unit}{plural}", self.count)
    }
}

impl FromStr for Interval {
    type Err = RulesError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || RulesError::Interval(s.to_owned());
        let (n, unit) = s.trim().split_once(' ').ok_or_else(bad)?;
        let count: u32 = n.parse().map_err(|_| bad())?;
        let unit = match (unit, count) {
            ("day", 1) | ("days", 2..) => Unit::Days,
            ("week", 1) | ("weeks", 2..) => Unit::Weeks,
            ("month", 1) | ("months", 2..) => Unit::Months,
            _ => return Err(bad()),
        };
        Ok(Interval { count, unit })
    }
}

impl Serialize for Interval {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Interval {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// What can be wrong with a rule set or a case.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RulesError {
    /// Not "N days", "N weeks" or "N months" (singular for 1).
    #[error("`{0}` is not an interval: write `1 month`, `3 months`, `2 weeks` or `10 days`")]
    Interval(String),
    /// No preset by that name.
    #[error("no preset `{0}` (known: tiedong, chongqing)")]
    UnknownPreset(String),
    /// The rule file does not parse.
    #[error("rule file: {0}")]
    File(String),
    /// A key not in the rule set's vocabulary.
    #[error("field {field}: unknown {what} `{value}`")]
    UnknownKey {
        /// Which field of the case or rule.
        field: &'static str,
        /// Which vocabulary.
        what: &'static str,
        /// The word.
        value: String,
    },
}

/// Conditions on a child for a rule to apply; all that are given must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Condition {
    /// The guardianship level is one of these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guardianship: Option<Vec<Guardianship>>,
    /// The child has at least one risk flag (`true`) or none (`false`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub any_risk_flag: Option<bool>,
    /// The child has at least one of these risk flags.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub risk_flags: Option<Vec<String>>,
    /// The child is in at least one of these categories.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub categories: Option<Vec<String>>,
}

/// "A child matching `when` gets a `kind` contact every `every`."
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// The kind of contact scheduled.
    pub kind: String,
    /// How often.
    pub every: Interval,
    /// To whom; empty means every served child.
    #[serde(default)]
    pub when: Condition,
}

/// Additions to the built-in vocabulary, for programmes the presets do not know.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Vocabulary {
    /// Extra record kinds (`foster_visit`...).
    #[serde(default)]
    pub kinds: Vec<String>,
    /// Extra categories, or new ages for built-in ones: the age at which service ends.
    #[serde(default)]
    pub categories: BTreeMap<String, u32>,
    /// Extra risk flags.
    #[serde(default)]
    pub risk_flags: Vec<String>,
    /// Which record kinds also count as which others (default: `home_visit` = [`contact`]).
    #[serde(default)]
    pub counts_as: BTreeMap<String, Vec<String>>,
}

/// A rule set as written in a TOML file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleFile {
    /// A name for messages.
    #[serde(default)]
    pub name: String,
    /// Days past due before a child counts as overdue (default 0).
    #[serde(default)]
    pub grace_days: u32,
    /// Days before due that count as "due soon" (default 7).
    #[serde(default = "seven")]
    pub due_soon_days: u32,
    /// Vocabulary additions.
    #[serde(default)]
    pub vocabulary: Vocabulary,
    /// The rules.
    #[serde(rename = "rule")]
    pub rules: Vec<Rule>,
}

fn seven() -> u32 {
    7
}

/// A checked rule set, ready to evaluate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSet {
    file: RuleFile,
    kinds: BTreeSet<String>,
    max_age: BTreeMap<String, u32>,
    risk_flags: BTreeSet<String>,
    counts_as: BTreeMap<String, Vec<String>>,
    /// Kinds scheduled, in the order their first rule appears.
    order: Vec<String>,
}

const TIEDONG: &str = include_str!("rules/tiedong.toml");
const CHONGQING: &str = include_str!("rules/chongqing.toml");

impl RuleSet {
    /// A preset: `tiedong` (seed 002 item 8) or `chongqing` (seed 004 item 8).
    pub fn preset(name: &str) -> Result<Self, RulesError> {
        match name {
            "tiedong" => Self::from_toml(TIEDONG),
            "chongqing" => Self::from_toml(CHONGQING),
            other => Err(RulesError::UnknownPreset(other.to_owned())),
        }
    }

    /// Parses and checks a rule file.
    pub fn from_toml(text: &str) -> Result<Self, RulesError> {
        let file: RuleFile = toml::from_str(text).map_err(|e| RulesError::File(e.to_string()))?;
        Self::new(file)
    }

    /// Checks a rule file against its vocabulary.
    pub fn new(file: RuleFile) -> Result<Self, RulesError> {
        let mut kinds: BTreeSet<String> =
            RecordKind::ALL.iter().map(|k| k.key().to_owned()).collect();
        kinds.extend(file.vocabulary.kinds.iter().cloned());
        let mut max_age: BTreeMap<String, u32> = Category::ALL
            .iter()
            .map(|c| {
                (
                    c.key().to_owned(),
                    if *c == Category::LeftBehind { 16 } else { 18 },
                )
            })
            .collect();
        max_age.extend(file.vocabulary.categories.clone());
        let mut risk_flags: BTreeSet<String> =
            RiskFlag::ALL.iter().map(|f| f.key().to_owned()).collect();
        risk_flags.extend(file.vocabulary.risk_flags.iter().cloned());
        let mut counts_as = file.vocabulary.counts_as.clone();
        counts_as
            .entry(RecordKind::HomeVisit.key().to_owned())
            .or_insert_with(|| vec![RecordKind::Contact.key().to_owned()]);
        let unknown = |field, what, value: &str| RulesError::UnknownKey {
            field,
            what,
            value: value.to_owned(),
        };
        for (from, tos) in &counts_as {
            for k in std::iter::once(from).chain(tos) {
                if !kinds.contains(k) {
                    return Err(unknown("counts_as", "record kind", k));
                }
            }
        }
        let mut order: Vec<String> = Vec::new();
        for rule in &file.rules {
            if !kinds.contains(&rule.kind) {
                return Err(unknown("rule.kind", "record kind", &rule.kind));
            }
            for f in rule.when.risk_flags.iter().flatten() {
                if !risk_flags.contains(f) {
                    return Err(unknown("rule.when.risk_flags", "risk flag", f));
                }
            }
            for c in rule.when.categories.iter().flatten() {
                if !max_age.contains_key(c) {
                    return Err(unknown("rule.when.categories", "category", c));
                }
            }
            if !order.contains(&rule.kind) {
                order.push(rule.kind.clone());
            }
        }
        Ok(RuleSet {
            file,
            kinds,
            max_age,
            risk_flags,
            counts_as,
            order,
        })
    }

    /// The rule set's name.
    pub fn name(&self) -> &str {
        &self.file.name
    }

    fn counts(&self, record: &str, kind: &str) -> bool {
        record == kind
            || self
                .counts_as
                .get(record)
                .is_some_and(|tos| tos.iter().any(|t| t == kind))
    }

    /// Checks a case's keys against this rule set's vocabulary.
    pub fn check(&self, case: &Case) -> Result<(), RulesError> {
        let unknown = |field, what, value: &str| RulesError::UnknownKey {
            field,
            what,
            value: value.to_owned(),
        };
        for c in &case.categories {
            if !self.max_age.contains_key(c) {
                return Err(unknown("categories", "category", c));
            }
        }
        for f in &case.risk_flags {
            if !self.risk_flags.contains(f) {
                return Err(unknown("risk_flags", "risk flag", f));
            }
        }
        for r in &case.records {
            if !self.kinds.contains(&r.kind) {
                return Err(unknown("records", "record kind", &r.kind));
            }
        }
        Ok(())
    }
}

fn matches(when: &Condition, case: &Case) -> bool {
    when.guardianship
        .as_ref()
        .is_none_or(|g| case.guardianship.is_some_and(|cg| g.contains(&cg)))
        && when
            .any_risk_flag
            .is_none_or(|any| any == !case.risk_flags.is_empty())
        && when
            .risk_flags
            .as_ref()
            .is_none_or(|fs| fs.iter().any(|f| case.risk_flags.contains(f)))
        && when
            .categories
            .as_ref()
            .is_none_or(|cs| cs.iter().any(|c| case.categories.contains(c)))
}

/// A record as the rules engine sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseRecord {
    /// Its kind.
    pub kind: String,
    /// The day it happened.
    pub date: NaiveDate,
}

/// One child, as `homevisit rules eval` reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// The caller's id for the child, echoed back.
    pub id: String,
    /// Date of birth.
    pub birth_date: NaiveDate,
    /// Registration date: the schedule starts here.
    pub registered_on: NaiveDate,
    /// Current categories.
    pub categories: Vec<String>,
    /// Current guardianship level; `null` if not assessed (but the key must be there).
    #[serde(deserialize_with = "nullable")]
    pub guardianship: Option<Guardianship>,
    /// Current risk flags.
    pub risk_flags: Vec<String>,
    /// Records of any kind.
    pub records: Vec<CaseRecord>,
}

/// Why a case could not be read; names the field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("field {field}: {message}")]
pub struct CaseError {
    /// The field, with its index inside `records` (`records[2].date`).
    pub field: String,
    /// What was wrong.
    pub message: String,
}

const CASE_FIELDS: [&str; 7] = [
    "id",
    "birth_date",
    "registered_on",
    "categories",
    "guardianship",
    "risk_flags",
    "records",
];

fn object<'a>(
    v: &'a serde_json::Value,
    field: &str,
    fields: &[&str],
) -> Result<&'a serde_json::Map<String, serde_json::Value>, CaseError> {
    let err = |field: &str, message: &str| CaseError {
        field: field.to_owned(),
        message: message.to_owned(),
    };
    let obj = v
        .as_object()
        .ok_or_else(|| err(field, "must be a JSON object"))?;
    let prefix = if field.is_empty() {
        String::new()
    } else {
        format!("{field}.")
    };
    if let Some(k) = obj.keys().find(|k| !fields.contains(&k.as_str())) {
        return Err(err(&format!("{prefix}{k}"), "unknown field"));
    }
    if let Some(f) = fields.iter().find(|f| !obj.contains_key(**f)) {
        return Err(err(&format!("{prefix}{f}"), "missing field"));
    }
    Ok(obj)
}

fn field<T: serde::de::DeserializeOwned>(
    obj: &serde_json::Map<String, serde_json::Value>,
    name: &str,
    path: String,
) -> Result<T, CaseError> {
    T::deserialize(&obj[name]).map_err(|e| CaseError {
        field: path,
        message: e.to_string(),
    })
}

impl Case {
    /// Reads a case from JSON, naming the field of the first problem found.
    pub fn from_json(v: &serde_json::Value) -> Result<Case, CaseError> {
        let obj = object(v, "", &CASE_FIELDS)?;
        let records = match &obj["records"] {
            serde_json::Value::Array(items) => items
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    let path = format!("records[{i}]");
                    let o = object(r, &path, &["kind", "date"])?;
                    Ok(CaseRecord {
                        kind: field(o, "kind", format!("{path}.kind"))?,
                        date: field(o, "date", format!("{path}.date"))?,
                    })
                })
                .collect::<Result<Vec<_>, CaseError>>()?,
            _ => {
                return Err(CaseError {
                    field: "records".into(),
                    message: "must be a list".into(),
                });
            }
        };
        Ok(Case {
            id: field(obj, "id", "id".into())?,
            birth_date: field(obj, "birth_date", "birth_date".into())?,
            registered_on: field(obj, "registered_on", "registered_on".into())?,
            categories: field(obj, "categories", "categories".into())?,
            guardianship: field(obj, "guardianship", "guardianship".into())?,
            risk_flags: field(obj, "risk_flags", "risk_flags".into())?,
            records,
        })
    }
}

/// Required but nullable: serde treats a field with `deserialize_with` and no default as
/// required, so a missing `guardianship` is an error while `null` is accepted.
fn nullable<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    Option::<T>::deserialize(d)
}

/// Where a child stands for one kind of contact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Past due (and grace).
    Overdue,
    /// Due within the due-soon window.
    DueSoon,
    /// Not due yet.
    Ok,
}

/// One kind of contact's schedule for a child.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Schedule {
    /// The kind of contact.
    pub kind: String,
    /// The interval that applies.
    pub every: Interval,
    /// The latest qualifying record on or before the date.
    pub last: Option<NaiveDate>,
    /// When the next one is due.
    pub due: NaiveDate,
    /// Overdue, due soon or ok.
    pub status: Status,
    /// Days past due, when overdue; else 0.
    pub days_overdue: i64,
}

/// A child's evaluation, as `homevisit rules eval` prints it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Evaluation {
    /// The case id.
    pub id: String,
    /// Whether some category applies on the date.
    pub served: bool,
    /// One per kind the rule set requires for this child.
    pub schedules: Vec<Schedule>,
}

/// Whole years from `birth` to `on`. Someone born on 29 February turns a year older on
/// 1 March in years without one.
pub fn age_on(birth: NaiveDate, on: NaiveDate) -> i32 {
    let before_birthday = (on.month(), on.day()) < (birth.month(), birth.day());
    on.year() - birth.year() - i32::from(before_birthday)
}

/// Evaluates one case on a date.
pub fn evaluate(rules: &RuleSet, case: &Case, on: NaiveDate) -> Result<Evaluation, RulesError> {
    rules.check(case)?;
    let age = age_on(case.birth_date, on);
    let served = case.categories.iter().any(|c| {
        rules
            .max_age
            .get(c)
            .is_some_and(|max| age >= 0 && age < *max as i32)
    });
    let mut schedules = Vec::new();
    if served {
        for kind in &rules.order {
            if let Some(s) = schedule(rules, case, kind, on) {
                schedules.push(s);
            }
        }
    }
    Ok(Evaluation {
        id: case.id.clone(),
        served,
        schedules,
    })
}

fn schedule(rules: &RuleSet, case: &Case, kind: &str, on: NaiveDate) -> Option<Schedule> {
    let last = case
        .records
        .iter()
        .filter(|r| r.date <= on && rules.counts(&r.kind, kind))
        .map(|r| r.date)
        .max();
    let base = last.unwrap_or(case.registered_on);
    // The most frequent applicable rule wins: the one whose due date from the same start is
    // earliest, which compares months with weeks and days on the calendar, not by a guess.
    let (every, due) = rules
        .file
        .rules
        .iter()
        .filter(|r| r.kind == kind && matches(&r.when, case))
        .filter_map(|r| r.every.after(base).map(|due| (r.every, due)))
        .min_by_key(|(_, due)| *due)?;
    let late = (on - due).num_days();
    let status = if late > i64::from(rules.file.grace_days) {
        Status::Overdue
    } else if -late <= i64::from(rules.file.due_soon_days) {
        Status::DueSoon
    } else {
        Status::Ok
    };
    Some(Schedule {
        kind: kind.to_owned(),
        every,
        last,
        due,
        status,
        days_overdue: if status == Status::Overdue { late } else { 0 },
    })
}

/// A child's entry on the due list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DueEntry {
    /// The case id.
    pub id: String,
    /// The schedule that is overdue or due soon.
    pub schedule: Schedule,
}

/// Every overdue or due-soon schedule over many cases: most overdue first, then soonest due.
/// Cases that do not fit the rule set's vocabulary are left out.
pub fn due_list(rules: &RuleSet, cases: &[Case], on: NaiveDate) -> Vec<DueEntry> {
    let mut out: Vec<DueEntry> = cases
        .iter()
        .filter_map(|c| evaluate(rules, c, on).ok())
        .flat_map(|e| {
            let id = e.id;
            e.schedules
                .into_iter()
                .filter(|s| s.status != Status::Ok)
                .map(move |schedule| DueEntry {
                    id: id.clone(),
                    schedule,
                })
        })
        .collect();
    out.sort_by(|a, b| {
        b.schedule
            .days_overdue
            .cmp(&a.schedule.days_overdue)
            .then(a.schedule.due.cmp(&b.schedule.due))
            .then(a.id.cmp(&b.id))
    });
    out
}

#[cfg(test)]
mod tests;
