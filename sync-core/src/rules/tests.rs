//! One test per sentence of RULES.md, and the rule-file format of docs/RULES.md.

use chrono::NaiveDate;
use proptest::prelude::*;

use super::*;
use crate::vocab::Guardianship;

fn d(s: &str) -> NaiveDate {
    parse_date(s).expect("test input is valid")
}

fn rules(name: &str) -> RuleSet {
    RuleSet::preset(name).expect("test input is valid")
}

fn toml(text: &str) -> RuleSet {
    RuleSet::from_toml(text).expect("test input is valid")
}

fn toml_err(text: &str) -> String {
    RuleSet::from_toml(text)
        .expect_err("test input is refused")
        .to_string()
}

/// A left-behind child born 2015-05-01, registered 2026-01-10, with no record yet.
fn child(guardianship: Option<Guardianship>, flags: &[&str]) -> Case {
    Case {
        id: "c1".into(),
        birth_date: d("2015-05-01"),
        registered_on: d("2026-01-10"),
        categories: vec!["left_behind".into()],
        guardianship,
        risk_flags: flags.iter().map(|f| f.to_string()).collect(),
        records: Vec::new(),
    }
}

fn with(mut case: Case, kind: &str, date: &str) -> Case {
    case.records.push(CaseRecord {
        kind: kind.into(),
        date: d(date),
    });
    case
}

fn born(mut case: Case, birth: &str, categories: &[&str]) -> Case {
    case.birth_date = d(birth);
    case.categories = categories.iter().map(|c| c.to_string()).collect();
    case
}

/// (kind, every, due) of each schedule.
fn plan(rules: &RuleSet, case: &Case, on: &str) -> Vec<(String, String, NaiveDate)> {
    evaluate(rules, case, d(on))
        .schedules
        .into_iter()
        .map(|s| (s.kind, s.every.to_string(), s.due))
        .collect()
}

fn one(kind: &str, every: &str, due: &str) -> (String, String, NaiveDate) {
    (kind.into(), every.into(), d(due))
}

const EXAMPLE: &str = r#"[{"id": "c1", "birth_date": "2015-05-01", "registered_on": "2026-01-10",
  "categories": ["left_behind"], "guardianship": "good", "risk_flags": [],
  "records": [{"kind": "home_visit", "date": "2026-03-01"}, {"kind": "contact", "date": "2026-04-02"}]}]"#;

// RULES.md, `homevisit rules eval`.

#[test]
fn the_example_of_rules_md_is_due_on_1_june_and_174_days_overdue_on_22_november() {
    let tiedong = rules("tiedong");
    let cases = tiedong.read_cases(EXAMPLE).expect("test input is valid");
    let result = evaluate(&tiedong, &cases[0], d("2026-11-22"));
    assert_eq!(
        serde_json::to_string(&result).expect("test input is valid"),
        r#"{"id":"c1","served":true,"schedules":[{"kind":"home_visit","every":"3 months","last":"2026-03-01","due":"2026-06-01","status":"overdue","days_overdue":174}]}"#
    );
}

#[test]
fn last_is_null_when_there_is_no_qualifying_record() {
    let result = evaluate(
        &rules("tiedong"),
        &with(
            child(Some(Guardianship::Good), &[]),
            "contact",
            "2026-02-01",
        ),
        d("2026-02-10"),
    );
    let json = serde_json::to_value(&result.schedules[0]).expect("test input is valid");
    assert_eq!(json["last"], serde_json::Value::Null);
    assert_eq!(json["due"], "2026-04-10");
    assert_eq!(json["status"], "ok");
}

#[test]
fn a_child_not_served_has_served_false_and_an_empty_schedule_list() {
    let case = born(
        child(Some(Guardianship::Good), &[]),
        "2008-01-15",
        &["left_behind"],
    );
    let result = evaluate(&rules("tiedong"), &case, d("2026-11-22"));
    assert_eq!(
        serde_json::to_string(&result).expect("test input is valid"),
        r#"{"id":"c1","served":false,"schedules":[]}"#
    );
}

#[test]
fn a_kind_the_rule_set_does_not_require_for_the_child_is_absent() {
    // Tiedong schedules home visits only: no contact schedule, even for a contact on file.
    let case = with(
        child(Some(Guardianship::Good), &[]),
        "contact",
        "2026-01-20",
    );
    let result = evaluate(&rules("tiedong"), &case, d("2026-02-01"));
    assert!(result.served);
    assert!(result.schedules.iter().all(|s| s.kind == "home_visit"));
    // A rule file with no rule matching the child leaves it with none.
    let only_good = toml(
        "[[rule]]\nkind = \"home_visit\"\nevery = \"3 months\"\nwhen.guardianship = [\"good\"]\n",
    );
    let result = evaluate(&only_good, &child(None, &[]), d("2026-02-01"));
    assert!(result.served);
    assert!(result.schedules.is_empty());
}

#[test]
fn evaluations_serialise_and_read_back() {
    let tiedong = rules("tiedong");
    let cases = tiedong.read_cases(EXAMPLE).expect("test input is valid");
    let result = evaluate(&tiedong, &cases[0], d("2026-11-22"));
    let back: Evaluation =
        serde_json::from_str(&serde_json::to_string(&result).expect("test input is valid"))
            .expect("test input is valid");
    assert_eq!(back, result);
}

// RULES.md, "Eligibility".

#[test]
fn left_behind_applies_only_under_16() {
    let tiedong = rules("tiedong");
    let case = born(
        child(Some(Guardianship::Good), &[]),
        "2010-06-15",
        &["left_behind"],
    );
    assert!(evaluate(&tiedong, &case, d("2026-06-14")).served);
    assert!(!evaluate(&tiedong, &case, d("2026-06-15")).served);
}

#[test]
fn every_category_ends_at_18() {
    let tiedong = rules("tiedong");
    for category in [
        "family_difficulty",
        "own_difficulty",
        "guardianship_difficulty",
        "scattered_orphan",
        "de_facto_unsupported",
    ] {
        let case = born(
            child(Some(Guardianship::Good), &[]),
            "2008-06-15",
            &[category],
        );
        assert!(
            evaluate(&tiedong, &case, d("2026-06-14")).served,
            "{category}"
        );
        assert!(
            !evaluate(&tiedong, &case, d("2026-06-15")).served,
            "{category}"
        );
    }
}

#[test]
fn a_left_behind_child_of_16_is_still_served_under_another_category() {
    let case = born(
        child(Some(Guardianship::Good), &[]),
        "2010-01-01",
        &["left_behind", "own_difficulty"],
    );
    assert!(evaluate(&rules("tiedong"), &case, d("2026-11-22")).served);
}

#[test]
fn a_child_with_no_category_is_not_served() {
    let case = born(
        child(Some(Guardianship::Average), &["hiv"]),
        "2015-01-01",
        &[],
    );
    let result = evaluate(&rules("chongqing"), &case, d("2026-11-22"));
    assert!(!result.served);
    assert!(result.schedules.is_empty());
}

#[test]
fn a_category_condition_ignores_a_category_that_has_ended() {
    let rules = toml(
        r#"
        [[rule]]
        kind = "home_visit"
        every = "3 months"
        [[rule]]
        kind = "home_visit"
        every = "1 week"
        when.categories = ["left_behind"]
        "#,
    );
    let case = born(
        child(None, &[]),
        "2010-01-01",
        &["left_behind", "family_difficulty"],
    );
    assert_eq!(
        plan(&rules, &case, "2025-12-31"),
        [one("home_visit", "1 week", "2026-01-17")]
    );
    assert_eq!(
        plan(&rules, &case, "2026-01-01"),
        [one("home_visit", "3 months", "2026-04-10")]
    );
}

// RULES.md, "Presets".

#[test]
fn tiedong_visits_a_child_in_good_guardianship_every_3_months() {
    let case = child(Some(Guardianship::Good), &[]);
    assert_eq!(
        plan(&rules("tiedong"), &case, "2026-02-01"),
        [one("home_visit", "3 months", "2026-04-10")]
    );
}

#[test]
fn tiedong_visits_a_child_in_average_or_poor_guardianship_every_month() {
    for level in [Guardianship::Average, Guardianship::Poor] {
        assert_eq!(
            plan(&rules("tiedong"), &child(Some(level), &[]), "2026-02-01"),
            [one("home_visit", "1 month", "2026-02-10")]
        );
    }
}

#[test]
fn tiedong_visits_a_child_with_any_risk_flag_every_month() {
    for flag in crate::vocab::RiskFlag::ALL {
        let case = child(Some(Guardianship::Good), &[flag.key()]);
        assert_eq!(
            plan(&rules("tiedong"), &case, "2026-02-01"),
            [one("home_visit", "1 month", "2026-02-10")],
            "{flag}"
        );
    }
}

#[test]
fn tiedong_has_no_contact_schedule() {
    assert_eq!(
        rules("tiedong").scheduled_kinds().collect::<Vec<_>>(),
        ["home_visit"]
    );
}

#[test]
fn chongqing_visits_every_served_child_every_3_months_and_contacts_it_every_month() {
    let case = child(None, &["poor_family"]);
    assert_eq!(
        plan(&rules("chongqing"), &case, "2026-02-01"),
        [
            one("home_visit", "3 months", "2026-04-10"),
            one("contact", "1 month", "2026-02-10"),
        ]
    );
}

#[test]
fn chongqing_visits_every_month_for_severe_parental_disability_disability_or_psychological_needs() {
    for flag in ["parent_severe_disability", "disabled", "psych_behavioural"] {
        assert_eq!(
            plan(&rules("chongqing"), &child(None, &[flag]), "2026-02-01"),
            [
                one("home_visit", "1 month", "2026-02-10"),
                one("contact", "1 month", "2026-02-10"),
            ],
            "{flag}"
        );
    }
}

#[test]
fn a_home_visit_counts_as_a_contact_in_chongqing() {
    let case = with(
        with(child(None, &[]), "contact", "2026-03-01"),
        "home_visit",
        "2026-03-20",
    );
    let result = evaluate(&rules("chongqing"), &case, d("2026-04-01"));
    let contact = &result.schedules[1];
    assert_eq!(contact.kind, "contact");
    assert_eq!(contact.last, Some(d("2026-03-20")));
    assert_eq!(contact.due, d("2026-04-20"));
}

#[test]
fn a_contact_does_not_count_as_a_home_visit() {
    let case = with(child(None, &[]), "contact", "2026-03-01");
    let result = evaluate(&rules("chongqing"), &case, d("2026-04-01"));
    assert_eq!(result.schedules[0].kind, "home_visit");
    assert_eq!(result.schedules[0].last, None);
}

#[test]
fn other_records_do_not_count() {
    let mut case = child(Some(Guardianship::Average), &[]);
    for kind in ["work_log", "assistance", "problem", "danger"] {
        case = with(case, kind, "2026-03-01");
    }
    let result = evaluate(&rules("chongqing"), &case, d("2026-04-01"));
    assert!(result.schedules.iter().all(|s| s.last.is_none()));
}

#[test]
fn where_several_rows_apply_the_shortest_interval_wins() {
    // Good guardianship (3 months) and a risk flag (1 month).
    let case = with(
        child(Some(Guardianship::Good), &["out_of_school"]),
        "home_visit",
        "2026-03-01",
    );
    assert_eq!(
        plan(&rules("tiedong"), &case, "2026-03-02"),
        [one("home_visit", "1 month", "2026-04-01")]
    );
}

#[test]
fn the_shortest_interval_is_the_one_with_the_earliest_due_date_from_the_same_last_visit() {
    let rules = toml(
        r#"
        [[rule]]
        kind = "home_visit"
        every = "1 month"
        [[rule]]
        kind = "home_visit"
        every = "30 days"
        [[rule]]
        kind = "home_visit"
        every = "4 weeks"
        "#,
    );
    // From 31 Jan: 1 month is 28 Feb, 30 days is 2 Mar, 4 weeks is 28 Feb: the first wins ties.
    let case = with(child(None, &[]), "home_visit", "2026-01-31");
    assert_eq!(
        plan(&rules, &case, "2026-02-01"),
        [one("home_visit", "1 month", "2026-02-28")]
    );
    // From 1 Mar: 1 month is 1 Apr, 30 days is 31 Mar, 4 weeks is 29 Mar.
    let case = with(child(None, &[]), "home_visit", "2026-03-01");
    assert_eq!(
        plan(&rules, &case, "2026-03-02"),
        [one("home_visit", "4 weeks", "2026-03-29")]
    );
}

#[test]
fn only_the_current_attributes_count() {
    // The case carries the attributes in force on the date: a flag that was lifted is absent.
    let tiedong = rules("tiedong");
    let before = with(
        child(Some(Guardianship::Good), &["hiv"]),
        "home_visit",
        "2026-03-01",
    );
    let after = with(
        child(Some(Guardianship::Good), &[]),
        "home_visit",
        "2026-03-01",
    );
    assert_eq!(plan(&tiedong, &before, "2026-03-02")[0].1, "1 month");
    assert_eq!(plan(&tiedong, &after, "2026-03-02")[0].1, "3 months");
}

// RULES.md, "Semantics".

#[test]
fn records_dated_after_the_evaluation_date_are_ignored() {
    let case = with(
        with(
            child(Some(Guardianship::Good), &[]),
            "home_visit",
            "2026-03-01",
        ),
        "home_visit",
        "2026-12-01",
    );
    let result = evaluate(&rules("tiedong"), &case, d("2026-11-22"));
    assert_eq!(result.schedules[0].last, Some(d("2026-03-01")));
    assert_eq!(result.schedules[0].status, Status::Overdue);
}

#[test]
fn a_record_on_the_evaluation_date_counts() {
    let case = with(
        child(Some(Guardianship::Good), &[]),
        "home_visit",
        "2026-11-22",
    );
    let result = evaluate(&rules("tiedong"), &case, d("2026-11-22"));
    assert_eq!(result.schedules[0].last, Some(d("2026-11-22")));
    assert_eq!(result.schedules[0].status, Status::Ok);
}

#[test]
fn the_latest_record_counts_whatever_the_order() {
    let case = with(
        with(
            child(Some(Guardianship::Good), &[]),
            "home_visit",
            "2026-05-01",
        ),
        "home_visit",
        "2026-02-01",
    );
    assert_eq!(
        evaluate(&rules("tiedong"), &case, d("2026-06-01")).schedules[0].last,
        Some(d("2026-05-01"))
    );
}

#[test]
fn a_child_never_visited_is_due_one_interval_after_registration() {
    let case = child(Some(Guardianship::Good), &[]);
    let result = evaluate(&rules("tiedong"), &case, d("2026-05-01"));
    assert_eq!(result.schedules[0].due, d("2026-04-10"));
    assert_eq!(result.schedules[0].days_overdue, 21);
}

#[test]
fn months_clamp_to_the_end_of_the_month() {
    let case = with(
        child(Some(Guardianship::Good), &[]),
        "home_visit",
        "2026-08-31",
    );
    assert_eq!(
        evaluate(&rules("tiedong"), &case, d("2026-09-01")).schedules[0].due,
        d("2026-11-30")
    );
    let case = with(
        child(Some(Guardianship::Average), &[]),
        "home_visit",
        "2028-01-31",
    );
    assert_eq!(
        evaluate(&rules("tiedong"), &case, d("2028-02-01")).schedules[0].due,
        d("2028-02-29")
    );
}

fn status_on(rules: &RuleSet, on: &str) -> (Status, u32) {
    // Due 2026-04-01.
    let case = with(
        child(Some(Guardianship::Average), &[]),
        "home_visit",
        "2026-03-01",
    );
    let s = &evaluate(rules, &case, d(on)).schedules[0];
    (s.status, s.days_overdue)
}

#[test]
fn overdue_starts_the_day_after_the_due_date_and_due_soon_7_days_before_it() {
    let tiedong = rules("tiedong");
    assert_eq!(status_on(&tiedong, "2026-03-24"), (Status::Ok, 0));
    assert_eq!(status_on(&tiedong, "2026-03-25"), (Status::DueSoon, 0));
    assert_eq!(status_on(&tiedong, "2026-04-01"), (Status::DueSoon, 0));
    assert_eq!(status_on(&tiedong, "2026-04-02"), (Status::Overdue, 1));
    assert_eq!(status_on(&tiedong, "2026-05-01"), (Status::Overdue, 30));
}

#[test]
fn grace_days_are_configurable_and_days_overdue_count_from_the_due_date() {
    let rules = toml(
        r#"
        grace_days = 3
        [[rule]]
        kind = "home_visit"
        every = "1 month"
        "#,
    );
    assert_eq!(rules.grace_days(), 3);
    assert_eq!(status_on(&rules, "2026-04-04"), (Status::DueSoon, 0));
    assert_eq!(status_on(&rules, "2026-04-05"), (Status::Overdue, 4));
    let rules = rules.with_grace_days(0);
    assert_eq!(status_on(&rules, "2026-04-02"), (Status::Overdue, 1));
}

#[test]
fn due_soon_days_are_configurable() {
    let rules = toml(
        r#"
        due_soon_days = 14
        [[rule]]
        kind = "home_visit"
        every = "1 month"
        "#,
    );
    assert_eq!(status_on(&rules, "2026-03-18"), (Status::DueSoon, 0));
    assert_eq!(status_on(&rules, "2026-03-17"), (Status::Ok, 0));
    let rules = rules.with_due_soon_days(0);
    assert_eq!(status_on(&rules, "2026-03-31"), (Status::Ok, 0));
    assert_eq!(status_on(&rules, "2026-04-01"), (Status::DueSoon, 0));
}

#[test]
fn settings_default_to_0_grace_days_and_7_due_soon_days() {
    let rules = toml("[[rule]]\nkind = \"contact\"\nevery = \"1 month\"\n");
    assert_eq!((rules.grace_days(), rules.due_soon_days()), (0, 7));
    assert_eq!(rules.name(), None);
}

// The due list.

#[test]
fn the_due_list_puts_the_most_overdue_first_then_the_soonest_due_and_leaves_out_the_rest() {
    let mut a = with(
        child(Some(Guardianship::Average), &[]),
        "home_visit",
        "2026-09-01",
    );
    a.id = "overdue_21".into();
    let mut b = with(
        child(Some(Guardianship::Average), &[]),
        "home_visit",
        "2026-08-01",
    );
    b.id = "overdue_51".into();
    let mut c = with(
        child(Some(Guardianship::Average), &[]),
        "home_visit",
        "2026-09-27",
    );
    c.id = "due_in_5".into();
    let mut e = with(
        child(Some(Guardianship::Average), &[]),
        "home_visit",
        "2026-09-23",
    );
    e.id = "due_in_1".into();
    let mut f = with(
        child(Some(Guardianship::Good), &[]),
        "home_visit",
        "2026-09-01",
    );
    f.id = "ok".into();
    let mut g = born(
        child(Some(Guardianship::Poor), &[]),
        "2000-01-01",
        &["left_behind"],
    );
    g.id = "not_served".into();
    let list = due_list(&rules("tiedong"), &[a, b, c, e, f, g], d("2026-10-22"));
    let got: Vec<(&str, Status, u32)> = list
        .iter()
        .map(|e| (e.id.as_str(), e.status, e.days_overdue))
        .collect();
    assert_eq!(
        got,
        [
            ("overdue_51", Status::Overdue, 51),
            ("overdue_21", Status::Overdue, 21),
            ("due_in_1", Status::DueSoon, 0),
            ("due_in_5", Status::DueSoon, 0),
        ]
    );
}

#[test]
fn the_due_list_agrees_with_each_evaluation() {
    let chongqing = rules("chongqing");
    let cases = vec![
        with(child(None, &["disabled"]), "contact", "2026-09-01"),
        with(child(None, &[]), "home_visit", "2026-08-30"),
    ];
    let on = d("2026-10-02");
    let list = due_list(&chongqing, &cases, on);
    let mut expected = 0;
    for case in &cases {
        for s in evaluate(&chongqing, case, on).schedules {
            if s.status != Status::Ok {
                expected += 1;
                assert!(
                    list.iter()
                        .any(|e| e.id == case.id && e.kind == s.kind && e.due == s.due)
                );
            }
        }
    }
    assert_eq!(list.len(), expected);
}

// Rule files.

const FOSTER: &str = r#"
name = "foster care"
grace_days = 2
due_soon_days = 10
risk_flags = ["placement_unstable"]

[categories.foster_care]
until_age = 18

[categories.left_behind]
until_age = 14

[kinds.foster_visit]
counts_as = ["home_visit", "contact"]

[[rule]]
kind = "foster_visit"
every = "2 weeks"
when.categories = ["foster_care"]
when.risk_flags = ["placement_unstable"]

[[rule]]
kind = "foster_visit"
every = "1 month"
when.categories = ["foster_care"]

[[rule]]
kind = "home_visit"
every = "3 months"
"#;

#[test]
fn a_rule_file_can_add_a_programme_with_its_own_kind_category_and_flag() {
    let rules = toml(FOSTER);
    assert_eq!(rules.name(), Some("foster care"));
    assert_eq!(
        rules.scheduled_kinds().collect::<Vec<_>>(),
        ["foster_visit", "home_visit"]
    );
    let mut case = born(child(None, &[]), "2012-01-01", &["foster_care"]);
    case.records.push(CaseRecord {
        kind: "foster_visit".into(),
        date: d("2026-03-01"),
    });
    rules.check(&case).expect("test input is valid");
    assert_eq!(
        plan(&rules, &case, "2026-03-05"),
        [
            one("foster_visit", "1 month", "2026-04-01"),
            one("home_visit", "3 months", "2026-06-01"),
        ]
    );
    case.risk_flags = vec!["placement_unstable".into()];
    assert_eq!(
        plan(&rules, &case, "2026-03-05")[0],
        one("foster_visit", "2 weeks", "2026-03-15")
    );
}

#[test]
fn a_rule_file_can_change_when_a_category_ends() {
    let rules = toml(FOSTER);
    assert!(rules.categories().any(|c| c == ("left_behind", 14)));
    assert!(rules.categories().any(|c| c == ("family_difficulty", 18)));
    let case = born(child(None, &[]), "2012-01-01", &["left_behind"]);
    assert!(evaluate(&rules, &case, d("2025-12-31")).served);
    assert!(!evaluate(&rules, &case, d("2026-01-01")).served);
}

#[test]
fn a_rule_file_says_which_kinds_count_as_which() {
    let rules = toml(FOSTER);
    assert!(rules.counts_as("foster_visit", "home_visit"));
    assert!(rules.counts_as("home_visit", "contact"));
    assert!(!rules.counts_as("contact", "home_visit"));
    let no_contact_from_visits = toml(
        r#"
        [kinds.home_visit]
        counts_as = []
        [[rule]]
        kind = "contact"
        every = "1 month"
        "#,
    );
    let case = with(child(None, &[]), "home_visit", "2026-03-01");
    assert_eq!(
        evaluate(&no_contact_from_visits, &case, d("2026-03-02")).schedules[0].last,
        None
    );
}

#[test]
fn conditions_in_one_rule_must_all_hold_and_any_value_of_a_list_will_do() {
    let rules = toml(
        r#"
        [[rule]]
        kind = "home_visit"
        every = "1 week"
        when.guardianship = ["average", "poor"]
        when.risk_flags = ["hiv", "disabled"]
        "#,
    );
    let due = |g, flags: &[&str]| plan(&rules, &child(g, flags), "2026-01-11").len();
    assert_eq!(due(Some(Guardianship::Poor), &["disabled"]), 1);
    assert_eq!(due(Some(Guardianship::Average), &["hiv", "poor_family"]), 1);
    assert_eq!(due(Some(Guardianship::Good), &["hiv"]), 0);
    assert_eq!(due(Some(Guardianship::Poor), &["poor_family"]), 0);
    assert_eq!(due(None, &["hiv"]), 0);
}

#[test]
fn any_risk_flag_false_means_no_risk_flag() {
    let rules = toml(
        r#"
        [[rule]]
        kind = "home_visit"
        every = "6 months"
        when.any_risk_flag = false
        "#,
    );
    assert_eq!(plan(&rules, &child(None, &[]), "2026-01-11").len(), 1);
    assert_eq!(plan(&rules, &child(None, &["hiv"]), "2026-01-11").len(), 0);
}

#[test]
fn a_misspelt_setting_in_a_rule_file_is_an_error_that_names_it() {
    let err = toml_err("grace_day = 3\n[[rule]]\nkind = \"contact\"\nevery = \"1 month\"\n");
    assert!(err.contains("unknown field `grace_day`"), "{err}");
    let err = toml_err("[[rule]]\nkind = \"contact\"\nevry = \"1 month\"\n");
    assert!(err.contains("unknown field `evry`"), "{err}");
    let err =
        toml_err("[[rule]]\nkind = \"contact\"\nevery = \"1 month\"\nwhen.risk_flag = [\"hiv\"]\n");
    assert!(err.contains("unknown field `risk_flag`"), "{err}");
}

#[test]
fn an_unknown_key_in_a_rule_is_an_error_that_says_where() {
    let err = toml_err(
        "[[rule]]\nkind = \"contact\"\nevery = \"1 month\"\n\
         [[rule]]\nkind = \"home_visit\"\nevery = \"1 month\"\nwhen.risk_flags = [\"orphan\"]\n",
    );
    assert_eq!(
        err,
        "rule 2 (home_visit): when.risk_flags: unknown risk flag \"orphan\""
    );
    let err = toml_err("[[rule]]\nkind = \"visit\"\nevery = \"1 month\"\n");
    assert_eq!(err, "rule 1: kind: unknown record kind \"visit\"");
    let err = toml_err(
        "[[rule]]\nkind = \"contact\"\nevery = \"1 month\"\nwhen.categories = [\"foster\"]\n",
    );
    assert_eq!(
        err,
        "rule 1 (contact): when.categories: unknown category \"foster\""
    );
    let err = toml_err(
        "[[rule]]\nkind = \"contact\"\nevery = \"1 month\"\nwhen.guardianship = [\"great\"]\n",
    );
    assert!(err.contains("unknown variant `great`"), "{err}");
    let err =
        toml_err("[kinds.a]\ncounts_as = [\"b\"]\n[[rule]]\nkind = \"a\"\nevery = \"1 day\"\n");
    assert_eq!(err, "kinds.a.counts_as: unknown record kind \"b\"");
}

#[test]
fn a_bad_interval_in_a_rule_file_is_an_error_with_the_right_spelling() {
    let err = toml_err("[[rule]]\nkind = \"contact\"\nevery = \"3 month\"\n");
    assert!(err.contains("write \"3 months\""), "{err}");
    assert!(err.contains("line 3"), "{err}");
}

#[test]
fn rule_files_that_could_not_mean_what_they_say_are_refused() {
    assert_eq!(
        toml_err("grace_days = 1\n"),
        "the rule set has no [[rule]], so it would schedule nothing"
    );
    assert_eq!(
        toml_err("[[rule]]\nkind = \"contact\"\nevery = \"1 month\"\nwhen.risk_flags = []\n"),
        "rule 1 (contact): when.risk_flags: the list is empty, so the rule would never apply"
    );
    assert_eq!(
        toml_err("[categories.Foster]\n[[rule]]\nkind = \"contact\"\nevery = \"1 month\"\n"),
        "categories.Foster: \"Foster\" is not a snake_case key (a-z, 0-9 and _, starting with a letter)"
    );
    assert_eq!(
        toml_err(
            "[categories.foster]\nuntil_age = 0\n[[rule]]\nkind = \"contact\"\nevery = \"1 month\"\n"
        ),
        "categories.foster: until_age 0 is not an age from 1 to 100"
    );
    assert_eq!(
        toml_err("[kinds.a]\ncounts_as = [\"a\"]\n[[rule]]\nkind = \"a\"\nevery = \"1 day\"\n"),
        "kinds.a.counts_as: a kind always counts for its own schedule; remove \"a\""
    );
    assert!(toml_err("grace_days = -1\n").contains("grace_days"));
}

// Reading cases.

fn read_err(rules: &RuleSet, json: &str) -> String {
    rules
        .read_cases(json)
        .expect_err("test input is refused")
        .to_string()
}

const GOOD: &str = r#""birth_date": "2015-05-01", "registered_on": "2026-01-10",
    "categories": ["left_behind"], "guardianship": null, "risk_flags": [], "records": []"#;

#[test]
fn a_case_may_have_no_guardianship_and_no_records() {
    let cases = rules("tiedong")
        .read_cases(&format!(r#"[{{"id": "c1", {GOOD}}}]"#))
        .expect("test input is valid");
    assert_eq!(cases[0].guardianship, None);
    assert!(cases[0].records.is_empty());
}

#[test]
fn the_derived_deserialiser_reads_the_example_as_the_checked_reader_does() {
    let derived: Vec<Case> = serde_json::from_str(EXAMPLE).expect("test input is valid");
    assert_eq!(
        derived,
        rules("tiedong")
            .read_cases(EXAMPLE)
            .expect("test input is valid")
    );
    // RULES.md version 2: guardianship left out reads as not assessed, in both readers.
    let absent = r#"[{"id": "c1", "birth_date": "2015-05-01", "registered_on": "2026-01-10",
        "categories": ["left_behind"], "risk_flags": [], "records": []}]"#;
    let derived: Vec<Case> = serde_json::from_str(absent).expect("test input is valid");
    assert_eq!(derived[0].guardianship, None);
    assert_eq!(
        derived,
        rules("tiedong")
            .read_cases(absent)
            .expect("test input is valid")
    );
    let missing = absent.replace(r#""risk_flags": [], "#, "");
    let err = serde_json::from_str::<Vec<Case>>(&missing).expect_err("test input is refused");
    assert!(
        err.to_string().contains("missing field `risk_flags`"),
        "{err}"
    );
}

#[test]
fn a_bad_case_is_named_by_its_id_with_the_field() {
    let tiedong = rules("tiedong");
    let with_flag = GOOD.replace(r#""risk_flags": []"#, r#""risk_flags": ["orphan"]"#);
    assert_eq!(
        read_err(&tiedong, &format!(r#"[{{"id": "c1", {with_flag}}}]"#)),
        "case c1: field risk_flags: unknown risk flag \"orphan\""
    );
    let no_birth = GOOD.replace(r#""birth_date": "2015-05-01", "#, "");
    assert_eq!(
        read_err(&tiedong, &format!(r#"[{{"id": "c3", {no_birth}}}]"#)),
        "case c3: missing field birth_date"
    );
    let bad_date = GOOD.replace("2026-01-10", "2026-02-30");
    assert_eq!(
        read_err(&tiedong, &format!(r#"[{{"id": "c2", {bad_date}}}]"#)),
        "case c2: field registered_on: invalid date \"2026-02-30\": expected a real date written YYYY-MM-DD"
    );
    assert_eq!(
        read_err(
            &tiedong,
            &format!(r#"[{{"id": "c4", "nickname": "x", {GOOD}}}]"#)
        ),
        "case c4: unknown field nickname (expected id, birth_date, registered_on, categories, guardianship, risk_flags and records)"
    );
    let bad_level = GOOD.replace("null", "\"great\"");
    assert_eq!(
        read_err(&tiedong, &format!(r#"[{{"id": "c5", {bad_level}}}]"#)),
        "case c5: field guardianship: unknown guardianship \"great\" (expected good, average, poor or null)"
    );
    let bad_category = GOOD.replace("left_behind", "foster_care");
    assert_eq!(
        read_err(&tiedong, &format!(r#"[{{"id": "c6", {bad_category}}}]"#)),
        "case c6: field categories: unknown category \"foster_care\""
    );
}

#[test]
fn a_bad_record_is_named_by_its_index() {
    let tiedong = rules("tiedong");
    let records = |r: &str| GOOD.replace(r#""records": []"#, &format!(r#""records": {r}"#));
    let cases = [
        (
            r#"[{"kind": "home_visit", "date": "2026-03-01"}, {"kind": "visit", "date": "2026-03-02"}]"#,
            "case c1: field records[1].kind: unknown record kind \"visit\"",
        ),
        (
            r#"[{"kind": "home_visit", "date": "2026-3-1"}]"#,
            "case c1: field records[0].date: invalid date \"2026-3-1\": expected a real date written YYYY-MM-DD",
        ),
        (
            r#"[{"kind": "home_visit"}]"#,
            "case c1: missing field records[0].date",
        ),
        (
            r#"[{"kind": "home_visit", "date": "2026-03-01", "by": "x"}]"#,
            "case c1: unknown field records[0].by (expected kind and date)",
        ),
        (
            r#"{"kind": "home_visit"}"#,
            "case c1: field records: expected an array of records, found an object",
        ),
    ];
    for (r, expected) in cases {
        assert_eq!(
            read_err(&tiedong, &format!(r#"[{{"id": "c1", {}}}]"#, records(r))),
            expected
        );
    }
}

#[test]
fn a_case_without_an_id_is_named_by_its_place_from_1() {
    let tiedong = rules("tiedong");
    assert_eq!(
        read_err(
            &tiedong,
            &format!(r#"[{{"id": "c1", {GOOD}}}, {{{GOOD}}}]"#)
        ),
        "case #2: missing field id"
    );
    assert_eq!(
        read_err(&tiedong, &format!(r#"[{{"id": 7, {GOOD}}}]"#)),
        "case #1: field id: expected a string, found a number"
    );
    assert_eq!(read_err(&tiedong, "[3]"), "case #1: not a JSON object");
}

#[test]
fn every_bad_case_is_listed() {
    let tiedong = rules("tiedong");
    let no_birth = GOOD.replace(r#""birth_date": "2015-05-01", "#, "");
    let err = read_err(
        &tiedong,
        &format!(
            r#"[{{"id": "a", {no_birth}}}, {{"id": "b", {GOOD}}}, {{"id": "c", {no_birth}}}]"#
        ),
    );
    assert_eq!(
        err,
        "2 cases are invalid:\n  case a: missing field birth_date\n  case c: missing field birth_date"
    );
}

#[test]
fn input_that_is_not_an_array_of_cases_is_refused() {
    let tiedong = rules("tiedong");
    assert_eq!(
        read_err(&tiedong, r#"{"id": "c1"}"#),
        "the cases must be a JSON array of objects, not an object"
    );
    assert!(read_err(&tiedong, "[{").starts_with("the cases are not valid JSON: "));
}

#[test]
fn a_case_built_in_code_with_a_category_the_rules_do_not_know_is_served_until_18() {
    let case = born(child(None, &[]), "2010-01-01", &["foster_care"]);
    assert!(rules("chongqing").check(&case).is_err());
    assert!(evaluate(&rules("chongqing"), &case, d("2027-12-31")).served);
    assert!(!evaluate(&rules("chongqing"), &case, d("2028-01-01")).served);
}

// Properties of the engine.

fn any_case() -> impl Strategy<Value = Case> {
    let day = |lo: u64, hi: u64| {
        (lo..hi).prop_map(|n| {
            calendar::add_days(
                NaiveDate::from_ymd_opt(2000, 1, 1).expect("test input is valid"),
                n,
            )
        })
    };
    let kinds = prop_oneof![Just("home_visit"), Just("contact"), Just("work_log")];
    let flags = prop::sample::subsequence(
        vec!["hiv", "disabled", "poor_family", "psych_behavioural"],
        0..3,
    );
    let levels = prop_oneof![
        Just(None),
        Just(Some(Guardianship::Good)),
        Just(Some(Guardianship::Average)),
        Just(Some(Guardianship::Poor)),
    ];
    (
        day(0, 6000),
        day(6000, 9000),
        levels,
        flags,
        prop::collection::vec((kinds, day(6000, 10000)), 0..12),
    )
        .prop_map(|(birth, registered, guardianship, flags, records)| Case {
            id: "p".into(),
            birth_date: birth,
            registered_on: registered,
            categories: vec!["family_difficulty".into()],
            guardianship,
            risk_flags: flags.into_iter().map(String::from).collect(),
            records: records
                .into_iter()
                .map(|(kind, date)| CaseRecord {
                    kind: kind.into(),
                    date,
                })
                .collect(),
        })
}

fn any_on() -> impl Strategy<Value = NaiveDate> {
    (6000u64..10000).prop_map(|n| {
        calendar::add_days(
            NaiveDate::from_ymd_opt(2000, 1, 1).expect("test input is valid"),
            n,
        )
    })
}

proptest! {
    #[test]
    fn records_after_the_date_never_change_the_evaluation(case in any_case(), on in any_on()) {
        for name in presets::NAMES {
            let rules = rules(name);
            let mut past = case.clone();
            past.records.retain(|r| r.date <= on);
            prop_assert_eq!(evaluate(&rules, &case, on), evaluate(&rules, &past, on));
        }
    }

    #[test]
    fn a_new_record_never_brings_a_due_date_forward(
        case in any_case(), on in any_on(), back in 0u64..400,
    ) {
        let rules = rules("chongqing");
        let before = evaluate(&rules, &case, on);
        let date = on.checked_sub_days(chrono::Days::new(back)).expect("test input is valid");
        if date < case.registered_on {
            // A record from before registration may well bring the due date forward.
            return Ok(());
        }
        let after = evaluate(&rules, &with(case, "home_visit", &date.to_string()), on);
        for (b, a) in before.schedules.iter().zip(&after.schedules) {
            prop_assert!(a.due >= b.due);
        }
    }

    #[test]
    fn the_winning_rule_is_due_no_later_than_any_other_that_applies(
        case in any_case(), on in any_on(),
    ) {
        let rules = rules("tiedong");
        for s in evaluate(&rules, &case, on).schedules {
            let base = s.last.unwrap_or(case.registered_on);
            prop_assert_eq!(s.due, s.every.after(base));
            if case.guardianship == Some(Guardianship::Good) {
                prop_assert!(s.due <= calendar::add_months(base, 3));
            }
            if case.guardianship.is_some_and(|g| g != Guardianship::Good) || !case.risk_flags.is_empty() {
                prop_assert_eq!(s.every.to_string(), "1 month");
            }
        }
    }

    #[test]
    fn status_and_days_overdue_agree_with_the_due_date(case in any_case(), on in any_on()) {
        for s in evaluate(&rules("chongqing"), &case, on).schedules {
            let late = (on - s.due).num_days();
            match s.status {
                Status::Overdue => prop_assert!(late > 0 && i64::from(s.days_overdue) == late),
                Status::DueSoon => prop_assert!((-7..=0).contains(&late) && s.days_overdue == 0),
                Status::Ok => prop_assert!(late < -7 && s.days_overdue == 0),
            }
        }
    }
}

// RULES.md version 2.

#[test]
fn under_tiedong_an_unassessed_child_is_due_a_home_visit_a_month_after_registration() {
    let case = child(None, &[]);
    assert_eq!(
        plan(&rules("tiedong"), &case, "2026-01-20"),
        vec![one("home_visit", "1 month", "2026-02-10")]
    );
    let result = evaluate(&rules("tiedong"), &case, d("2026-03-01"));
    assert_eq!(result.schedules[0].status, Status::Overdue);
}

#[test]
fn under_tiedong_an_assessed_child_no_longer_follows_the_unassessed_row() {
    let case = with(
        child(Some(Guardianship::Good), &[]),
        "home_visit",
        "2026-02-01",
    );
    assert_eq!(
        plan(&rules("tiedong"), &case, "2026-02-10"),
        vec![one("home_visit", "3 months", "2026-05-01")]
    );
}

#[test]
fn under_tiedong_orphan_and_unsupported_categories_count_like_their_risk_flags() {
    for category in ["scattered_orphan", "de_facto_unsupported"] {
        let case = born(
            child(Some(Guardianship::Good), &[]),
            "2015-05-01",
            &[category],
        );
        let by_flag = child(Some(Guardianship::Good), &[category]);
        assert_eq!(
            plan(&rules("tiedong"), &case, "2026-01-20"),
            plan(&rules("tiedong"), &by_flag, "2026-01-20"),
            "{category}"
        );
        assert_eq!(
            plan(&rules("tiedong"), &case, "2026-01-20"),
            vec![one("home_visit", "1 month", "2026-02-10")]
        );
    }
}

#[test]
fn under_chongqing_a_rural_single_parent_child_is_visited_monthly() {
    assert_eq!(
        plan(
            &rules("chongqing"),
            &child(None, &["rural_single_parent"]),
            "2026-01-20"
        ),
        vec![
            one("home_visit", "1 month", "2026-02-10"),
            one("contact", "1 month", "2026-02-10"),
        ]
    );
}

#[test]
fn guardianship_assessed_true_holds_only_for_an_assessed_child() {
    let set = toml(
        "[[rule]]\nkind = \"home_visit\"\nevery = \"2 months\"\nwhen.guardianship_assessed = true\n",
    );
    assert!(plan(&set, &child(None, &[]), "2026-01-20").is_empty());
    assert_eq!(
        plan(&set, &child(Some(Guardianship::Poor), &[]), "2026-01-20"),
        vec![one("home_visit", "2 months", "2026-03-10")]
    );
}
