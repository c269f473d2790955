//! `homevisit rules eval`, run as the real binary (docs/RULES.md).

use std::io::Write;
use std::process::{Command, Output, Stdio};

/// Runs `homevisit` with `args`, feeding `stdin`.
pub fn homevisit(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_homevisit"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start homevisit");
    let written = child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes());
    // A command line that clap refuses exits before reading its input.
    if let Err(e) = written {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "write stdin: {e}");
    }
    child.wait_with_output().expect("wait for homevisit")
}

fn stdout(output: &Output) -> &str {
    std::str::from_utf8(&output.stdout).expect("utf-8 stdout")
}

fn stderr(output: &Output) -> &str {
    std::str::from_utf8(&output.stderr).expect("utf-8 stderr")
}

const EXAMPLE: &str = r#"[{"id": "c1", "birth_date": "2015-05-01", "registered_on": "2026-01-10",
  "categories": ["left_behind"], "guardianship": "good", "risk_flags": [],
  "records": [{"kind": "home_visit", "date": "2026-03-01"}, {"kind": "contact", "date": "2026-04-02"}]}]"#;

const EXAMPLE_OUT: &str = r#"[{"id": "c1", "served": true, "schedules": [{"kind": "home_visit", "every": "3 months", "last": "2026-03-01", "due": "2026-06-01", "status": "overdue", "days_overdue": 174}]}]
"#;

/// Evaluates `cases` on stdin and expects failure with exit status 1, nothing on stdout, and
/// every one of `needles` on stderr.
fn refused(args: &[&str], cases: &str, needles: &[&str]) {
    let output = homevisit(args, cases);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert_eq!(stdout(&output), "", "nothing on stdout");
    for needle in needles {
        assert!(
            stderr(&output).contains(needle),
            "stderr {:?} lacks {needle:?}",
            stderr(&output)
        );
    }
}

fn tiedong_on_22_november() -> [&'static str; 6] {
    ["rules", "eval", "--preset", "tiedong", "--on", "2026-11-22"]
}

#[test]
fn the_example_of_rules_md_is_due_on_1_june_and_174_days_overdue_on_22_november() {
    let output = homevisit(&tiedong_on_22_november(), EXAMPLE);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output), EXAMPLE_OUT);
    assert_eq!(stderr(&output), "");
}

#[test]
fn cases_are_read_from_a_file_or_from_stdin_with_a_dash() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("cases.json");
    std::fs::write(&path, EXAMPLE).expect("write cases");
    let path = path.to_str().expect("utf-8 path");
    let [a, b, c, d, e, f] = tiedong_on_22_november();
    let from_file = homevisit(&[a, b, c, d, e, f, path], "");
    assert_eq!(stdout(&from_file), EXAMPLE_OUT, "{}", stderr(&from_file));
    let from_dash = homevisit(&[a, b, c, d, e, f, "-"], EXAMPLE);
    assert_eq!(stdout(&from_dash), EXAMPLE_OUT, "{}", stderr(&from_dash));
}

#[test]
fn the_documented_example_cases_print_one_line_per_case_in_input_order() {
    let cases = include_str!("../../../docs/examples/cases.json");
    let output = homevisit(
        &[
            "rules",
            "eval",
            "--preset",
            "chongqing",
            "--on",
            "2026-11-22",
        ],
        cases,
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        stdout(&output),
        concat!(
            r#"[{"id": "c1", "served": true, "schedules": [{"kind": "home_visit", "every": "3 months", "last": "2026-03-01", "due": "2026-06-01", "status": "overdue", "days_overdue": 174}, {"kind": "contact", "every": "1 month", "last": "2026-04-02", "due": "2026-05-02", "status": "overdue", "days_overdue": 204}]},"#,
            "\n",
            r#" {"id": "c2", "served": true, "schedules": [{"kind": "home_visit", "every": "3 months", "last": "2026-11-01", "due": "2027-02-01", "status": "ok", "days_overdue": 0}, {"kind": "contact", "every": "1 month", "last": "2026-11-01", "due": "2026-12-01", "status": "ok", "days_overdue": 0}]},"#,
            "\n",
            r#" {"id": "c3", "served": false, "schedules": []}]"#,
            "\n",
        )
    );
}

#[test]
fn a_rule_file_replaces_the_preset() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("weekly.toml");
    std::fs::write(
        &path,
        "name = \"weekly\"\ngrace_days = 2\n[[rule]]\nkind = \"contact\"\nevery = \"2 weeks\"\n",
    )
    .expect("write rules");
    let output = homevisit(
        &[
            "rules",
            "eval",
            "--rules",
            path.to_str().expect("utf-8 path"),
            "--on",
            "2026-04-18",
        ],
        EXAMPLE,
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        stdout(&output),
        r#"[{"id": "c1", "served": true, "schedules": [{"kind": "contact", "every": "2 weeks", "last": "2026-04-02", "due": "2026-04-16", "status": "due_soon", "days_overdue": 0}]}]
"#
    );
}

#[test]
fn an_empty_array_of_cases_prints_an_empty_array() {
    let output = homevisit(&tiedong_on_22_november(), "[]");
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output), "[]\n");
}

#[test]
fn an_unknown_key_is_refused_naming_the_case_and_the_field() {
    let cases = EXAMPLE.replace(r#""risk_flags": []"#, r#""risk_flags": [], "notes": "x""#);
    refused(&tiedong_on_22_november(), &cases, &["case c1", "notes"]);
}

#[test]
fn an_unknown_risk_flag_is_refused_naming_the_case_and_the_field() {
    let cases = EXAMPLE.replace(r#""risk_flags": []"#, r#""risk_flags": ["orphan"]"#);
    refused(
        &tiedong_on_22_november(),
        &cases,
        &["case c1: field risk_flags: unknown risk flag \"orphan\""],
    );
}

#[test]
fn a_malformed_date_is_refused_naming_the_case_and_the_field() {
    let cases = EXAMPLE.replace("2015-05-01", "2015-5-1");
    refused(
        &tiedong_on_22_november(),
        &cases,
        &["case c1: field birth_date: invalid date \"2015-5-1\""],
    );
    let cases = EXAMPLE.replace("2026-04-02", "2026-04-31");
    refused(
        &tiedong_on_22_november(),
        &cases,
        &["case c1: field records[1].date"],
    );
}

#[test]
fn a_missing_field_is_refused_naming_the_case_and_the_field() {
    let cases = EXAMPLE
        .replace(r#""id": "c1""#, r#""id": "c3""#)
        .replace(r#""birth_date": "2015-05-01", "#, "");
    refused(
        &tiedong_on_22_november(),
        &cases,
        &["case c3: missing field birth_date"],
    );
}

#[test]
fn a_case_without_an_id_is_named_by_its_place_from_1() {
    let cases = EXAMPLE.replace(r#""id": "c1", "#, "");
    refused(
        &tiedong_on_22_november(),
        &format!(
            "[{}, {}]",
            &EXAMPLE[1..EXAMPLE.len() - 1],
            &cases[1..cases.len() - 1]
        ),
        &["case #2: missing field id"],
    );
}

#[test]
fn one_bad_case_among_good_ones_prints_nothing_on_stdout() {
    let bad = EXAMPLE
        .replace(r#""id": "c1""#, r#""id": "c2""#)
        .replace(r#""guardianship": "good""#, r#""guardianship": "fine""#);
    refused(
        &tiedong_on_22_november(),
        &format!(
            "[{}, {}]",
            &EXAMPLE[1..EXAMPLE.len() - 1],
            &bad[1..bad.len() - 1]
        ),
        &["case c2: field guardianship"],
    );
}

#[test]
fn input_that_is_not_json_is_refused() {
    refused(
        &tiedong_on_22_november(),
        "[{",
        &["stdin: the cases are not valid JSON"],
    );
}

#[test]
fn a_missing_cases_file_is_refused() {
    let [a, b, c, d, e, f] = tiedong_on_22_november();
    refused(
        &[a, b, c, d, e, f, "/nonexistent/cases.json"],
        "",
        &["cannot read cases from /nonexistent/cases.json"],
    );
}

#[test]
fn a_rule_file_with_a_typo_is_refused_with_its_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("typo.toml");
    std::fs::write(&path, "[[rule]]\nkind = \"contact\"\nevry = \"1 month\"\n").expect("write");
    refused(
        &[
            "rules",
            "eval",
            "--rules",
            path.to_str().expect("utf-8 path"),
            "--on",
            "2026-11-22",
        ],
        EXAMPLE,
        &["typo.toml", "line 3", "unknown field `evry`"],
    );
}

#[test]
fn a_bad_command_line_exits_with_status_2_and_prints_nothing_on_stdout() {
    for args in [
        &["rules", "eval", "--on", "2026-11-22"][..],
        &[
            "rules",
            "eval",
            "--preset",
            "tiedong",
            "--rules",
            "x.toml",
            "--on",
            "2026-11-22",
        ],
        &["rules", "eval", "--preset", "beijing", "--on", "2026-11-22"],
        &["rules", "eval", "--preset", "tiedong", "--on", "2026-1-22"],
        &["rules", "eval", "--preset", "tiedong"],
    ] {
        let output = homevisit(args, EXAMPLE);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            stderr(&output)
        );
        assert_eq!(stdout(&output), "", "{args:?}");
    }
}
