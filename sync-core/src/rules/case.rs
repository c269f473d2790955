//! The input of the rules engine: a child as the rules see it on a date, and its strict JSON
//! reading with errors that name the case and the field.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fmt;

use super::calendar::{date, parse_date};
use super::ruleset::RuleSet;
use crate::vocab::Guardianship;

/// A child as the rules engine sees it: the attributes in force on the evaluation date, and
/// the kind and date of every record.
///
/// The JSON form is RULES.md's: every field is required (`guardianship` may be `null` or
/// absent, `records` may be empty), dates are `YYYY-MM-DD`, unknown fields are refused. Category,
/// risk-flag and record-kind keys are strings because a rule set may add its own; check them
/// against a rule set with [`RuleSet::check`], or read cases with [`RuleSet::read_cases`],
/// which does both.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    /// The case's id, echoed in its evaluation.
    pub id: String,
    /// Date of birth.
    #[serde(with = "date")]
    pub birth_date: NaiveDate,
    /// The date the child was registered: the start of every schedule with no record yet.
    #[serde(with = "date")]
    pub registered_on: NaiveDate,
    /// Category keys (`left_behind`, ...) in force on the evaluation date.
    pub categories: Vec<String>,
    /// The guardianship level in force, if assessed.
    #[serde(default, deserialize_with = "Option::deserialize")]
    pub guardianship: Option<Guardianship>,
    /// Risk-flag keys in force on the evaluation date.
    pub risk_flags: Vec<String>,
    /// Every record of the file (any kind, any date; order does not matter).
    pub records: Vec<CaseRecord>,
}

/// The kind and date of one record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseRecord {
    /// The record kind's key (`home_visit`, `contact`, `work_log`, ...).
    pub kind: String,
    /// The date of the visit or contact.
    #[serde(with = "date")]
    pub date: NaiveDate,
}

const CASE_FIELDS: &str =
    "id, birth_date, registered_on, categories, guardianship, risk_flags and records";
const RECORD_FIELDS: &str = "kind and date";

/// What is wrong with one case.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FieldError {
    /// The case is not a JSON object.
    #[error("not a JSON object")]
    NotAnObject,
    /// A required field is absent.
    #[error("missing field {0}")]
    Missing(String),
    /// A field that a case does not have (a typo, most likely).
    #[error("unknown field {field} (expected {expected})")]
    Unknown {
        /// The field as written, with its path (`records[1].dat`).
        field: String,
        /// The fields that are allowed there.
        expected: &'static str,
    },
    /// A field whose value is wrong.
    #[error("field {field}: {problem}")]
    Invalid {
        /// The field, with its path (`records[1].kind`).
        field: String,
        /// What is wrong with the value.
        problem: String,
    },
}

fn invalid(field: impl Into<String>, problem: impl fmt::Display) -> FieldError {
    FieldError::Invalid {
        field: field.into(),
        problem: problem.to_string(),
    }
}

/// How an error names a case: by its id, or by its place in the array when it has none
/// (`#1` is the first case).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaseRef {
    /// The case's `id`.
    Id(String),
    /// The case's index in the input array, from 0 (displayed from 1: `#1`).
    Index(usize),
}

impl fmt::Display for CaseRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CaseRef::Id(id) => f.write_str(id),
            CaseRef::Index(i) => write!(f, "#{}", i + 1),
        }
    }
}

/// A bad case, named.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("case {case}: {error}")]
pub struct CaseError {
    /// Which case.
    pub case: CaseRef,
    /// What is wrong with it.
    pub error: FieldError,
}

/// How many bad cases [`CasesError`] lists before summing up the rest.
const LISTED: usize = 20;

/// Why a JSON array of cases cannot be read.
#[derive(Debug, thiserror::Error)]
pub enum CasesError {
    /// The text is not JSON.
    #[error("the cases are not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The JSON is not an array.
    #[error("the cases must be a JSON array of objects, not {0}")]
    NotAnArray(&'static str),
    /// Some cases are bad: every one of them, in input order.
    #[error("{}", list(.0))]
    Invalid(Vec<CaseError>),
}

fn list(errors: &[CaseError]) -> String {
    match errors {
        [one] => one.to_string(),
        _ => {
            let mut text = format!("{} cases are invalid:", errors.len());
            for e in errors.iter().take(LISTED) {
                text.push_str("\n  ");
                text.push_str(&e.to_string());
            }
            if errors.len() > LISTED {
                text.push_str(&format!("\n  and {} more", errors.len() - LISTED));
            }
            text
        }
    }
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn field<'v>(object: &'v Map<String, Value>, name: &str) -> Result<&'v Value, FieldError> {
    object
        .get(name)
        .ok_or_else(|| FieldError::Missing(name.to_owned()))
}

fn string(value: &Value, name: &str) -> Result<String, FieldError> {
    match value {
        Value::String(s) => Ok(s.clone()),
        other => Err(invalid(
            name,
            format_args!("expected a string, found {}", kind_of(other)),
        )),
    }
}

fn date_field(value: &Value, name: &str) -> Result<NaiveDate, FieldError> {
    match value {
        Value::String(s) => parse_date(s).map_err(|e| invalid(name, e)),
        other => Err(invalid(
            name,
            format_args!(
                "expected a date written YYYY-MM-DD, found {}",
                kind_of(other)
            ),
        )),
    }
}

fn strings(value: &Value, name: &str) -> Result<Vec<String>, FieldError> {
    let Value::Array(items) = value else {
        return Err(invalid(
            name,
            format_args!("expected an array of strings, found {}", kind_of(value)),
        ));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| string(item, &format!("{name}[{i}]")))
        .collect()
}

/// Every key of `object` is in `allowed`, and every allowed key but those in `optional` is
/// there.
fn check_fields(
    object: &Map<String, Value>,
    allowed: &[&str],
    optional: &[&str],
    expected: &'static str,
    path: &str,
) -> Result<(), FieldError> {
    if let Some(key) = object.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(FieldError::Unknown {
            field: format!("{path}{key}"),
            expected,
        });
    }
    if let Some(name) = allowed
        .iter()
        .find(|name| !optional.contains(name) && !object.contains_key(**name))
    {
        return Err(FieldError::Missing(format!("{path}{name}")));
    }
    Ok(())
}

fn guardianship(value: &Value) -> Result<Option<Guardianship>, FieldError> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => s.parse().map(Some).map_err(|_| {
            invalid(
                "guardianship",
                format_args!("unknown guardianship \"{s}\" (expected good, average, poor or null)"),
            )
        }),
        other => Err(invalid(
            "guardianship",
            format_args!("expected a string or null, found {}", kind_of(other)),
        )),
    }
}

fn records(value: &Value) -> Result<Vec<CaseRecord>, FieldError> {
    let Value::Array(items) = value else {
        return Err(invalid(
            "records",
            format_args!("expected an array of records, found {}", kind_of(value)),
        ));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let path = format!("records[{i}]");
            let Value::Object(record) = item else {
                return Err(invalid(
                    path,
                    format_args!("expected an object, found {}", kind_of(item)),
                ));
            };
            check_fields(
                record,
                &["kind", "date"],
                &[],
                RECORD_FIELDS,
                &format!("{path}."),
            )?;
            Ok(CaseRecord {
                kind: string(field(record, "kind")?, &format!("{path}.kind"))?,
                date: date_field(field(record, "date")?, &format!("{path}.date"))?,
            })
        })
        .collect()
}

impl Case {
    /// Reads one case from JSON, naming the field in any error (`serde` alone names it only
    /// for missing and unknown fields). Vocabulary keys are not checked here: see
    /// [`RuleSet::check`].
    pub fn from_json_value(value: &Value) -> Result<Case, FieldError> {
        let Value::Object(object) = value else {
            return Err(FieldError::NotAnObject);
        };
        check_fields(
            object,
            &[
                "id",
                "birth_date",
                "registered_on",
                "categories",
                "guardianship",
                "risk_flags",
                "records",
            ],
            // RULES.md version 2: not assessed yet may be written `null` or left out.
            &["guardianship"],
            CASE_FIELDS,
            "",
        )?;
        Ok(Case {
            id: string(field(object, "id")?, "id")?,
            birth_date: date_field(field(object, "birth_date")?, "birth_date")?,
            registered_on: date_field(field(object, "registered_on")?, "registered_on")?,
            categories: strings(field(object, "categories")?, "categories")?,
            guardianship: object.get("guardianship").map_or(Ok(None), guardianship)?,
            risk_flags: strings(field(object, "risk_flags")?, "risk_flags")?,
            records: records(field(object, "records")?)?,
        })
    }
}

impl RuleSet {
    /// Checks that every category, risk flag and record kind of `case` is one this rule set
    /// knows (built in or added by its file).
    pub fn check(&self, case: &Case) -> Result<(), FieldError> {
        // The value names the entry well enough in these two lists; records need the index.
        for c in &case.categories {
            if !self.knows_category(c) {
                return Err(invalid(
                    "categories",
                    format_args!("unknown category \"{c}\""),
                ));
            }
        }
        for f in &case.risk_flags {
            if !self.knows_risk_flag(f) {
                return Err(invalid(
                    "risk_flags",
                    format_args!("unknown risk flag \"{f}\""),
                ));
            }
        }
        for (i, r) in case.records.iter().enumerate() {
            if self.kind(&r.kind).is_none() {
                return Err(invalid(
                    format!("records[{i}].kind"),
                    format_args!("unknown record kind \"{}\"", r.kind),
                ));
            }
        }
        Ok(())
    }

    /// Reads a JSON array of cases and checks each against this rule set.
    ///
    /// On error, every bad case is reported (by id, or by index when it has no string id),
    /// with the field and what is wrong with it; no case is returned.
    pub fn read_cases(&self, json: &str) -> Result<Vec<Case>, CasesError> {
        let value: Value = serde_json::from_str(json)?;
        let Value::Array(items) = value else {
            return Err(CasesError::NotAnArray(kind_of(&value)));
        };
        let mut cases = Vec::with_capacity(items.len());
        let mut errors = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let checked =
                Case::from_json_value(item).and_then(|case| self.check(&case).map(|()| case));
            match checked {
                Ok(case) => cases.push(case),
                Err(error) => errors.push(CaseError {
                    case: match item.get("id") {
                        Some(Value::String(id)) => CaseRef::Id(id.clone()),
                        _ => CaseRef::Index(i),
                    },
                    error,
                }),
            }
        }
        if errors.is_empty() {
            Ok(cases)
        } else {
            Err(CasesError::Invalid(errors))
        }
    }
}
