//! `homevisit rules eval`, run as a user runs it, against the contract of docs/RULES.md.

use std::process::Output;

const EXAMPLE: &str = r#"[{"id": "c1", "birth_date": "2015-05-01", "registered_on": "2026-01-10",
  "categories": ["left_behind"], "guardianship": "good", "risk_flags": [],
  "records": [{"kind": "home_visit", "date": "2026-03-01"}, {"kind": "contact", "date": "2026-04-02"}]}]"#;

fn eval(args: &[&str], stdin: &str) -> Output {
    crate::rules_eval::homevisit(&[&["rules", "eval"], args].concat(), stdin)
}

fn refused(input: &str) -> String {
    let out = eval(&["--preset", "tiedong", "--on", "2026-11-22", "-"], input);
    assert!(!out.status.success(), "accepted: {input}");
    assert!(
        out.stdout.is_empty(),
        "printed on failure: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn the_rules_md_example_prints_the_rules_md_output() {
    let out = eval(&["--preset", "tiedong", "--on", "2026-11-22"], EXAMPLE);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    let expected: serde_json::Value = serde_json::from_str(
        r#"[{"id": "c1", "served": true,
  "schedules": [{"kind": "home_visit", "every": "3 months", "last": "2026-03-01",
                 "due": "2026-06-01", "status": "overdue", "days_overdue": 174}]}]"#,
    )
    .expect("expected");
    assert_eq!(printed, expected);
}

#[test]
fn a_rule_file_can_stand_in_for_a_preset() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("rules.toml");
    std::fs::write(
        &path,
        "[[rule]]\nkind = \"home_visit\"\nevery = \"2 weeks\"\n",
    )
    .expect("write");
    let out = eval(
        &[
            "--rules",
            path.to_str().expect("path"),
            "--on",
            "2026-03-02",
        ],
        EXAMPLE,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(printed[0]["schedules"][0]["every"], "2 weeks");
    assert_eq!(printed[0]["schedules"][0]["due"], "2026-03-15");
}

#[test]
fn an_unknown_key_names_the_case_and_the_field() {
    let err = refused(&EXAMPLE.replace("\"risk_flags\"", "\"colour\": 1, \"risk_flags\""));
    assert!(err.contains("c1") && err.contains("colour"), "{err}");
}

#[test]
fn an_unknown_flag_names_the_case_and_the_field() {
    let err = refused(&EXAMPLE.replace("\"risk_flags\": []", "\"risk_flags\": [\"orphan\"]"));
    assert!(
        err.contains("c1") && err.contains("risk_flags") && err.contains("orphan"),
        "{err}"
    );
}

#[test]
fn a_malformed_date_names_the_case_and_the_field() {
    let err = refused(&EXAMPLE.replace("2026-03-01", "2026-02-30"));
    assert!(
        err.contains("c1") && err.contains("records[0].date"),
        "{err}"
    );
    let err = refused(&EXAMPLE.replace("\"2015-05-01\"", "\"May 2015\""));
    assert!(err.contains("c1") && err.contains("birth_date"), "{err}");
}

#[test]
fn a_missing_field_names_the_case_and_the_field() {
    let err = refused(&EXAMPLE.replace("\"risk_flags\": [],", ""));
    assert!(err.contains("c1") && err.contains("risk_flags"), "{err}");
    let err = refused(r#"[{"birth_date": "2015-05-01"}]"#);
    assert!(err.contains("#1"), "{err}");
}

#[test]
fn a_case_without_guardianship_is_read_as_not_assessed_and_visited_monthly_under_tiedong() {
    let out = eval(
        &["--preset", "tiedong", "--on", "2026-11-22"],
        &EXAMPLE.replace("\"guardianship\": \"good\", ", ""),
    );
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("\"every\": \"1 month\""), "{text}");
}

#[test]
fn a_preset_that_does_not_exist_is_refused() {
    let out = eval(&["--preset", "beijing", "--on", "2026-11-22"], EXAMPLE);
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    assert!(String::from_utf8_lossy(&out.stderr).contains("beijing"));
}
