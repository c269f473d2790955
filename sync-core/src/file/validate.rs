//! Schema validation that reports every problem, not just the first.
//!
//! The server runs this on every merged document before it commits a sync, and the phone runs
//! it before showing a file; each problem carries a path so that an error can name the field.

use chrono::NaiveDate;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::fmt;

use super::SCHEMA_VERSION;
use super::model::{Assertion, AttrKind, Person, RecordVersion};
use crate::vocab::{Category, Guardianship, RecordKind, RiskFlag, Sex};

/// One way a file breaks the schema.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    /// Where: `profile/birth_date`, `records/<uuid>/versions/0/findings`...
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

pub(super) fn summary(problems: &[Problem]) -> String {
    let shown: Vec<String> = problems.iter().take(3).map(Problem::to_string).collect();
    match problems.len() {
        n if n > 3 => format!("{} (and {} more)", shown.join("; "), n - 3),
        _ => shown.join("; "),
    }
}

struct Checker {
    problems: Vec<Problem>,
}

impl Checker {
    fn fail(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem {
            path: path.into(),
            message: message.into(),
        });
    }

    fn parse<T: DeserializeOwned>(&mut self, path: &str, value: &Value) -> Option<T> {
        match T::deserialize(value) {
            Ok(v) => Some(v),
            Err(e) => {
                self.fail(path, e.to_string());
                None
            }
        }
    }

    /// A map whose keys must be UUIDs; yields each entry.
    fn uuid_map<'a>(&mut self, tree: &'a Value, key: &str) -> Vec<(String, &'a Value)> {
        match tree.get(key) {
            None => Vec::new(),
            Some(Value::Object(map)) => map
                .iter()
                .filter_map(|(k, v)| {
                    let path = format!("{key}/{k}");
                    if uuid::Uuid::parse_str(k).is_err() {
                        self.fail(path, "key is not a UUID");
                        None
                    } else {
                        Some((path, v))
                    }
                })
                .collect(),
            Some(_) => {
                self.fail(key, "must be a map");
                Vec::new()
            }
        }
    }
}

fn is_extension_key(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// Checks a file read as a JSON tree.
pub(super) fn check(tree: &Value) -> Vec<Problem> {
    let mut c = Checker {
        problems: Vec::new(),
    };
    if !tree.is_object() {
        c.fail("", "a child file is a map");
        return c.problems;
    }
    match tree.get("schema").and_then(Value::as_u64) {
        Some(v) if (1..=SCHEMA_VERSION).contains(&v) => {}
        Some(v) => c.fail("schema", format!("unsupported schema version {v}")),
        None => c.fail("schema", "missing or not a number"),
    }
    match tree.get("version") {
        None => {}
        Some(v) if v.as_u64().is_some_and(|v| v >= 1) => {}
        Some(_) => c.fail("version", "must be a whole number from 1"),
    }
    match tree.get("id").and_then(Value::as_str) {
        Some(id) if uuid::Uuid::parse_str(id).is_ok() => {}
        _ => c.fail("id", "missing or not a UUID"),
    }
    check_profile(&mut c, tree.get("profile"));
    for (path, v) in c.uuid_map(tree, "people") {
        if let Some(p) = c.parse::<Person>(&path, v)
            && p.name.trim().is_empty()
        {
            c.fail(format!("{path}/name"), "must not be empty");
        }
    }
    for (path, v) in c.uuid_map(tree, "attributes") {
        if let Some(a) = c.parse::<Assertion>(&path, v) {
            check_assertion(&mut c, &path, &a);
        }
    }
    for (path, v) in c.uuid_map(tree, "records") {
        check_record(&mut c, &path, v);
    }
    super::parts::check_tree(tree, &mut c.problems);
    c.problems
}

fn check_profile(c: &mut Checker, profile: Option<&Value>) {
    let Some(profile) = profile.filter(|p| p.is_object()) else {
        c.fail("profile", "missing or not a map");
        return;
    };
    let field = |key: &str| profile.get(key).unwrap_or(&Value::Null);
    for key in ["name", "hukou_place", "address"] {
        match field(key).as_str() {
            Some(s) if key != "name" || !s.trim().is_empty() => {}
            Some(_) => c.fail(format!("profile/{key}"), "must not be empty"),
            None => c.fail(format!("profile/{key}"), "missing or not a string"),
        }
    }
    c.parse::<Sex>("profile/sex", field("sex"));
    let birth = c.parse::<NaiveDate>("profile/birth_date", field("birth_date"));
    let registered = c.parse::<NaiveDate>("profile/registered_on", field("registered_on"));
    if let (Some(b), Some(r)) = (birth, registered)
        && r < b
    {
        c.fail("profile/registered_on", "is before the birth date");
    }
    match field("village_code").as_str() {
        Some(s) if s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit()) => {}
        _ => c.fail("profile/village_code", "must be a 12-digit division code"),
    }
    match profile.get("id_number") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) if is_id_number(s) => {}
        Some(_) => c.fail(
            "profile/id_number",
            "must be 18 characters: 17 digits and a digit or X",
        ),
    }
}

fn is_id_number(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 18
        && b[..17].iter().all(u8::is_ascii_digit)
        && (b[17].is_ascii_digit() || b[17] == b'X')
}

fn check_assertion(c: &mut Checker, path: &str, a: &Assertion) {
    let ok = match a.attr {
        AttrKind::Guardianship => a.value.parse::<Guardianship>().is_ok(),
        AttrKind::Category => a.value.parse::<Category>().is_ok() || is_extension_key(&a.value),
        AttrKind::RiskFlag => a.value.parse::<RiskFlag>().is_ok() || is_extension_key(&a.value),
    };
    if !ok {
        c.fail(
            format!("{path}/value"),
            format!("`{}` is not a valid key", a.value),
        );
    }
}

fn check_record(c: &mut Checker, path: &str, record: &Value) {
    let Some(kind) = c.parse::<RecordKind>(
        &format!("{path}/kind"),
        record.get("kind").unwrap_or(&Value::Null),
    ) else {
        return;
    };
    let versions = match record.get("versions") {
        Some(Value::Array(v)) if !v.is_empty() => v,
        _ => {
            c.fail(format!("{path}/versions"), "must be a non-empty list");
            return;
        }
    };
    for (i, v) in versions.iter().enumerate() {
        let vpath = format!("{path}/versions/{i}");
        let Some(version) = c.parse::<RecordVersion>(&vpath, v) else {
            continue;
        };
        let missing = match kind {
            RecordKind::HomeVisit if version.findings.is_none() => Some("findings"),
            RecordKind::Contact if version.channel.is_none() => Some("channel"),
            RecordKind::WorkLog | RecordKind::Assistance if version.summary.is_none() => {
                Some("summary")
            }
            RecordKind::Problem if version.problem.is_none() => Some("problem"),
            RecordKind::Danger if version.danger.as_ref().is_none_or(|d| d.found.is_empty()) => {
                Some("danger")
            }
            _ => None,
        };
        if let Some(field) = missing {
            c.fail(
                format!("{vpath}/{field}"),
                format!("a {kind} record needs {field}"),
            );
        }
        for (j, photo) in version.photos.iter().enumerate() {
            if photo.len() != 64
                || !photo
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            {
                c.fail(
                    format!("{vpath}/photos/{j}"),
                    "must be a lowercase hex SHA-256",
                );
            }
        }
        if let Some(loc) = version.location
            && (!(-90.0..=90.0).contains(&loc.lat) || !(-180.0..=180.0).contains(&loc.lon))
        {
            c.fail(
                format!("{vpath}/location"),
                "latitude or longitude out of range",
            );
        }
    }
    if let Some(void) = record.get("void") {
        c.parse::<super::model::Void>(&format!("{path}/void"), void);
    }
}
