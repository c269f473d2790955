//! The file's own rule, checked on every merge: corrected by a new version, withdrawn by
//! voiding, never erased; and what is added is signed by whoever adds it.
//!
//! Automerge will merge any change a peer makes, including deleting a record or writing
//! someone else's name as its author. The server holds each merged file to the rule by
//! comparing the file before and after the merge ([`amendment`]), as JSON trees, so a change
//! is judged by what it does to the file and not by how Automerge encoded it.

use serde_json::{Map, Value};
use std::collections::BTreeSet;

use super::Problem;

/// What a merge that keeps the rule added.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Amendment {
    /// Photos that new versions refer to, which the merging caller must be allowed to name.
    pub new_photos: Vec<String>,
    /// The records added or changed (a version or a void), by id: a merge adds to a few
    /// records of a file of hundreds, and a store that keeps rows per record rewrites these
    /// only.
    pub records: BTreeSet<String>,
    /// The attribute assertions added, by id (an assertion is never changed).
    pub attributes: BTreeSet<String>,
}

/// How a merge broke the rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Breach {
    /// Something already in the file was deleted or rewritten.
    Erased(Vec<Problem>),
    /// Something added names an author other than the one merging it.
    Author(Vec<Problem>),
}

/// Checks that `after` only adds to `before` (the file the server held; `None` for a new file)
/// and that everything added is by `author`.
///
/// Kept: every record, person and attribute assertion; every version of a record, unchanged
/// and in order (concurrent corrections may interleave); a record's kind; a void, once set
/// (concurrent voids may replace one another, but the one in force must then be the
/// author's). Added: versions, records, assertions and voids, each with `by` = `author`.
pub fn amendment(before: Option<&Value>, after: &Value, author: &str) -> Result<Amendment, Breach> {
    let mut c = Check {
        author,
        erased: Vec::new(),
        forged: Vec::new(),
        photos: Vec::new(),
    };
    let mut touched = Amendment::default();
    let empty = Map::new();
    let section = |tree, key| section(tree, key, &empty);
    // Most of a file is untouched by a merge: what is equal is skipped before any work.
    let (old, new) = (section(before, "records"), section(Some(after), "records"));
    for (id, record) in new {
        match old.get(id) {
            Some(was) if was == record => continue,
            Some(was) => c.record(&format!("records.{id}"), was, record),
            None => c.new_record(&format!("records.{id}"), record),
        }
        touched.records.insert(id.clone());
    }
    for id in old.keys().filter(|id| !new.contains_key(*id)) {
        c.erase(
            format!("records.{id}"),
            "a record may not be deleted: void it",
        );
    }
    let (old, new) = (section(before, "people"), section(Some(after), "people"));
    for (id, person) in new {
        let was = old.get(id);
        if was != Some(person) {
            let void = was.and_then(|p| p.get("void"));
            c.void(&format!("people.{id}"), void, person.get("void"));
        }
    }
    for id in old.keys().filter(|id| !new.contains_key(*id)) {
        c.erase(
            format!("people.{id}"),
            "a person may not be deleted: void them",
        );
    }
    let (old, new) = (
        section(before, "attributes"),
        section(Some(after), "attributes"),
    );
    for (id, assertion) in new {
        match old.get(id) {
            Some(was) if was == assertion => {}
            Some(_) => c.erase(
                format!("attributes.{id}"),
                "an assertion may not be changed: assert anew",
            ),
            None => {
                c.signed(&format!("attributes.{id}"), assertion);
                touched.attributes.insert(id.clone());
            }
        }
    }
    for id in old.keys().filter(|id| !new.contains_key(*id)) {
        c.erase(
            format!("attributes.{id}"),
            "an assertion may not be deleted: assert the value absent",
        );
    }
    if !c.erased.is_empty() {
        return Err(Breach::Erased(c.erased));
    }
    if !c.forged.is_empty() {
        return Err(Breach::Author(c.forged));
    }
    touched.new_photos = c.photos;
    Ok(touched)
}

/// A collection of the file (`records`, `people`, `attributes`), or `empty`.
fn section<'a>(
    tree: Option<&'a Value>,
    key: &str,
    empty: &'a Map<String, Value>,
) -> &'a Map<String, Value> {
    tree.and_then(|t| t.get(key))
        .and_then(Value::as_object)
        .unwrap_or(empty)
}

struct Check<'a> {
    author: &'a str,
    erased: Vec<Problem>,
    forged: Vec<Problem>,
    photos: Vec<String>,
}

impl Check<'_> {
    fn erase(&mut self, path: String, message: &str) {
        self.erased.push(Problem {
            path,
            message: message.to_owned(),
        });
    }

    /// An added object must carry `by` = the author.
    fn signed(&mut self, path: &str, added: &Value) {
        let by = added.get("by").and_then(Value::as_str);
        if by != Some(self.author) {
            self.forged.push(Problem {
                path: format!("{path}.by"),
                message: format!(
                    "added by {} but signed {:?}: only your own name may be written",
                    self.author,
                    by.unwrap_or_default()
                ),
            });
        }
    }

    fn new_version(&mut self, path: &str, version: &Value) {
        self.signed(path, version);
        if let Some(photos) = version.get("photos").and_then(Value::as_array) {
            self.photos
                .extend(photos.iter().filter_map(Value::as_str).map(str::to_owned));
        }
    }

    fn new_record(&mut self, path: &str, record: &Value) {
        for (i, v) in versions(record).iter().enumerate() {
            self.new_version(&format!("{path}.versions[{i}]"), v);
        }
        self.void(path, None, record.get("void"));
    }

    fn record(&mut self, path: &str, was: &Value, now: &Value) {
        if was.get("kind") != now.get("kind") {
            self.erase(format!("{path}.kind"), "a record's kind may not change");
        }
        let (old, new) = (versions(was), versions(now));
        // The old versions must appear, unchanged and in order, among the new ones; whatever
        // else is there was added.
        let mut next = 0;
        for (i, v) in new.iter().enumerate() {
            if next < old.len() && *v == old[next] {
                next += 1;
            } else {
                self.new_version(&format!("{path}.versions[{i}]"), v);
            }
        }
        if next < old.len() {
            self.erase(
                format!("{path}.versions[{next}]"),
                "a version may not be deleted or rewritten: append a correction",
            );
        }
        self.void(path, was.get("void"), now.get("void"));
    }

    fn void(&mut self, path: &str, was: Option<&Value>, now: Option<&Value>) {
        match (was, now) {
            (Some(_), None) => self.erase(format!("{path}.void"), "a void may not be undone"),
            (_, Some(v)) if was != Some(v) => self.signed(&format!("{path}.void"), v),
            _ => {}
        }
    }
}

fn versions(record: &Value) -> &[Value] {
    record
        .get("versions")
        .and_then(Value::as_array)
        .map_or(&[], Vec::as_slice)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn version(by: &str, note: &str) -> Value {
        json!({ "date": "2026-11-01", "by": by, "recorded_at": "2026-11-01T08:00:00Z", "notes": note })
    }

    fn file() -> Value {
        json!({
            "schema": 1, "id": "x", "profile": {},
            "people": { "p1": { "role": "guardian", "name": "王芳", "relation": "mother" } },
            "attributes": { "a1": { "attr": "category", "value": "left_behind", "present": true,
                                    "effective": "2026-01-01", "recorded_at": "2026-01-01T00:00:00Z", "by": "dir_a" } },
            "records": { "r1": { "kind": "home_visit", "versions": [version("dir_a", "first")] } }
        })
    }

    #[test]
    fn a_correction_a_void_and_a_new_record_by_the_author_keep_the_rule() {
        let before = file();
        let mut after = before.clone();
        after["records"]["r1"]["versions"]
            .as_array_mut()
            .expect("versions")
            .push(version("dir_b", "corrected"));
        after["records"]["r1"]["void"] =
            json!({ "reason": "duplicate", "by": "dir_b", "at": "2026-11-02T00:00:00Z" });
        let mut visit = version("dir_b", "new");
        visit["photos"] = json!(["ab".repeat(32)]);
        after["records"]["r2"] = json!({ "kind": "home_visit", "versions": [visit] });
        after["attributes"]["a2"] = json!({ "attr": "risk_flag", "value": "living_alone",
            "present": true, "effective": "2026-11-02", "recorded_at": "2026-11-02T00:00:00Z",
            "by": "dir_b" });
        let kept = amendment(Some(&before), &after, "dir_b").expect("an amendment");
        assert_eq!(kept.new_photos, vec!["ab".repeat(32)]);
        assert_eq!(kept.records, BTreeSet::from(["r1".into(), "r2".into()]));
        assert_eq!(kept.attributes, BTreeSet::from(["a2".into()]));
    }

    #[test]
    fn a_new_file_is_all_new_and_all_the_authors() {
        assert!(amendment(None, &file(), "dir_a").is_ok());
        assert!(matches!(
            amendment(None, &file(), "dir_b"),
            Err(Breach::Author(_))
        ));
    }

    #[test]
    fn deleting_a_record_a_version_a_person_or_an_assertion_is_refused() {
        let before = file();
        type Edit = fn(&mut Value);
        let cases: [(&str, Edit); 6] = [
            ("records.r1", |f| {
                f["records"].as_object_mut().map(|m| m.remove("r1"));
            }),
            ("records.r1.versions[0]", |f| {
                f["records"]["r1"]["versions"] = json!([]);
            }),
            ("records.r1.versions[0]", |f| {
                f["records"]["r1"]["versions"][0]["notes"] = json!("rewritten");
            }),
            ("people.p1", |f| {
                f["people"].as_object_mut().map(|m| m.remove("p1"));
            }),
            ("attributes.a1", |f| {
                f["attributes"].as_object_mut().map(|m| m.remove("a1"));
            }),
            ("attributes.a1", |f| {
                f["attributes"]["a1"]["present"] = json!(false);
            }),
        ];
        for (path, edit) in cases {
            let mut after = before.clone();
            edit(&mut after);
            match amendment(Some(&before), &after, "dir_a") {
                Err(Breach::Erased(problems)) => {
                    assert_eq!(problems[0].path, path, "{problems:?}")
                }
                other => panic!("{path}: {other:?}"),
            }
        }
    }

    #[test]
    fn a_version_signed_with_another_name_is_refused() {
        let before = file();
        let mut after = before.clone();
        after["records"]["r1"]["versions"]
            .as_array_mut()
            .expect("versions")
            .push(version("supervisor1", "forged"));
        match amendment(Some(&before), &after, "dir_a") {
            Err(Breach::Author(p)) => assert_eq!(p[0].path, "records.r1.versions[1].by"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn undoing_a_void_is_refused() {
        let mut before = file();
        before["records"]["r1"]["void"] =
            json!({ "reason": "wrong child", "by": "dir_a", "at": "2026-11-02T00:00:00Z" });
        let mut after = before.clone();
        after["records"]["r1"]
            .as_object_mut()
            .map(|m| m.remove("void"));
        assert!(matches!(
            amendment(Some(&before), &after, "dir_a"),
            Err(Breach::Erased(_))
        ));
    }

    #[test]
    fn concurrent_corrections_that_interleave_keep_the_rule() {
        let mut before = file();
        before["records"]["r1"]["versions"]
            .as_array_mut()
            .expect("versions")
            .push(version("dir_a", "second"));
        let mut after = before.clone();
        after["records"]["r1"]["versions"]
            .as_array_mut()
            .expect("versions")
            .insert(1, version("dir_b", "concurrent"));
        assert!(amendment(Some(&before), &after, "dir_b").is_ok());
    }
}
