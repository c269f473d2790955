use super::*;
use proptest::prelude::*;

fn d(s: &str) -> NaiveDate {
    s.parse().expect("date")
}

fn case(json: &str) -> Case {
    serde_json::from_str(json).expect("case")
}

fn child(
    categories: &[&str],
    guardianship: Option<&str>,
    flags: &[&str],
    records: &[(&str, &str)],
) -> Case {
    Case {
        id: "c".into(),
        birth_date: d("2015-05-01"),
        registered_on: d("2026-01-10"),
        categories: categories.iter().map(|s| s.to_string()).collect(),
        guardianship: guardianship.map(|g| g.parse().expect("guardianship")),
        risk_flags: flags.iter().map(|s| s.to_string()).collect(),
        records: records
            .iter()
            .map(|(k, date)| CaseRecord {
                kind: k.to_string(),
                date: d(date),
            })
            .collect(),
    }
}

fn eval(preset: &str, c: &Case, on: &str) -> Evaluation {
    evaluate(&RuleSet::preset(preset).expect("preset"), c, d(on)).expect("evaluate")
}

#[test]
fn the_rules_md_example_gives_the_rules_md_answer() {
    let c = case(
        r#"{"id": "c1", "birth_date": "2015-05-01", "registered_on": "2026-01-10",
      "categories": ["left_behind"], "guardianship": "good", "risk_flags": [],
      "records": [{"kind": "home_visit", "date": "2026-03-01"}, {"kind": "contact", "date": "2026-04-02"}]}"#,
    );
    let out = serde_json::to_string(&eval("tiedong", &c, "2026-11-22")).expect("json");
    assert_eq!(
        out,
        r#"{"id":"c1","served":true,"schedules":[{"kind":"home_visit","every":"3 months","last":"2026-03-01","due":"2026-06-01","status":"overdue","days_overdue":174}]}"#
    );
}

#[test]
fn a_child_never_visited_is_due_one_interval_after_registration() {
    let e = eval(
        "tiedong",
        &child(&["left_behind"], Some("good"), &[], &[]),
        "2026-02-01",
    );
    assert_eq!(e.schedules[0].last, None);
    assert_eq!(e.schedules[0].due, d("2026-04-10"));
    assert_eq!(e.schedules[0].status, Status::Ok);
}

#[test]
fn left_behind_ends_at_16_and_every_category_at_18() {
    let mut c = child(&["left_behind"], Some("good"), &[], &[]);
    c.birth_date = d("2010-11-22");
    assert!(!eval("tiedong", &c, "2026-11-22").served, "16 today");
    assert!(
        eval("tiedong", &c, "2026-11-21").served,
        "15 until yesterday"
    );
    c.categories = vec!["family_difficulty".into()];
    assert!(eval("tiedong", &c, "2026-11-22").served);
    c.birth_date = d("2008-11-22");
    assert!(!eval("tiedong", &c, "2026-11-22").served, "18 today");
}

#[test]
fn a_child_with_no_category_is_not_served_and_has_no_schedules() {
    let e = eval(
        "tiedong",
        &child(&[], Some("poor"), &["hiv"], &[]),
        "2026-11-22",
    );
    assert!(!e.served);
    assert!(e.schedules.is_empty());
    assert_eq!(
        serde_json::to_string(&e).expect("json"),
        r#"{"id":"c","served":false,"schedules":[]}"#
    );
}

#[test]
fn the_shortest_applicable_interval_wins() {
    let e = eval(
        "tiedong",
        &child(
            &["left_behind"],
            Some("good"),
            &["out_of_school"],
            &[("home_visit", "2026-10-01")],
        ),
        "2026-10-02",
    );
    assert_eq!(e.schedules[0].every.to_string(), "1 month");
    assert_eq!(e.schedules[0].due, d("2026-11-01"));
}

#[test]
fn records_dated_after_the_evaluation_date_are_ignored() {
    let e = eval(
        "tiedong",
        &child(
            &["left_behind"],
            Some("good"),
            &[],
            &[("home_visit", "2026-03-01"), ("home_visit", "2027-01-01")],
        ),
        "2026-05-01",
    );
    assert_eq!(e.schedules[0].last, Some(d("2026-03-01")));
}

#[test]
fn in_chongqing_a_home_visit_counts_as_a_contact_but_not_the_reverse() {
    let e = eval(
        "chongqing",
        &child(
            &["left_behind"],
            None,
            &[],
            &[("home_visit", "2026-03-01"), ("contact", "2026-04-02")],
        ),
        "2026-04-10",
    );
    let visit = e
        .schedules
        .iter()
        .find(|s| s.kind == "home_visit")
        .expect("visit");
    let contact = e
        .schedules
        .iter()
        .find(|s| s.kind == "contact")
        .expect("contact");
    assert_eq!(visit.last, Some(d("2026-03-01")));
    assert_eq!(contact.last, Some(d("2026-04-02")));
    let e = eval(
        "chongqing",
        &child(&["left_behind"], None, &[], &[("home_visit", "2026-04-05")]),
        "2026-04-10",
    );
    assert_eq!(
        e.schedules
            .iter()
            .find(|s| s.kind == "contact")
            .expect("contact")
            .last,
        Some(d("2026-04-05"))
    );
}

#[test]
fn chongqing_visits_a_disabled_child_monthly() {
    let e = eval(
        "chongqing",
        &child(
            &["own_difficulty"],
            None,
            &["disabled"],
            &[("home_visit", "2026-03-01")],
        ),
        "2026-03-02",
    );
    assert_eq!(e.schedules[0].every.to_string(), "1 month");
}

#[test]
fn tiedong_schedules_no_contacts_and_chongqing_both() {
    let c = child(&["left_behind"], Some("average"), &[], &[]);
    let kinds = |e: Evaluation| e.schedules.into_iter().map(|s| s.kind).collect::<Vec<_>>();
    assert_eq!(kinds(eval("tiedong", &c, "2026-02-01")), vec!["home_visit"]);
    assert_eq!(
        kinds(eval("chongqing", &c, "2026-02-01")),
        vec!["home_visit", "contact"]
    );
}

#[test]
fn status_is_overdue_past_due_then_due_soon_within_seven_days() {
    let c = child(
        &["left_behind"],
        Some("average"),
        &[],
        &[("home_visit", "2026-03-31")],
    );
    let at = |on: &str| eval("tiedong", &c, on).schedules[0].clone();
    assert_eq!(
        at("2026-04-30").due,
        d("2026-04-30"),
        "31 Mar + 1 month clamps to 30 Apr"
    );
    assert_eq!(at("2026-04-22").status, Status::Ok);
    assert_eq!(at("2026-04-23").status, Status::DueSoon);
    assert_eq!(at("2026-04-30").status, Status::DueSoon);
    let late = at("2026-05-03");
    assert_eq!((late.status, late.days_overdue), (Status::Overdue, 3));
}

#[test]
fn grace_and_due_soon_windows_come_from_the_rule_file() {
    let rules = RuleSet::from_toml(
        "grace_days = 5\ndue_soon_days = 0\n[[rule]]\nkind = \"home_visit\"\nevery = \"2 weeks\"\n",
    )
    .expect("rules");
    let c = child(&["left_behind"], None, &[], &[("home_visit", "2026-03-01")]);
    let at = |on: &str| evaluate(&rules, &c, d(on)).expect("eval").schedules[0].clone();
    assert_eq!(at("2026-03-14").status, Status::Ok);
    assert_eq!(at("2026-03-15").status, Status::DueSoon);
    assert_eq!(at("2026-03-20").status, Status::DueSoon, "within grace");
    assert_eq!(
        (at("2026-03-21").status, at("2026-03-21").days_overdue),
        (Status::Overdue, 6)
    );
}

#[test]
fn a_rule_file_can_add_a_programme_with_its_own_kind_and_category() {
    let rules = RuleSet::from_toml(
        r#"
        name = "foster care"
        [vocabulary]
        kinds = ["foster_visit"]
        categories = { foster_care = 18 }
        [[rule]]
        kind = "foster_visit"
        every = "10 days"
        when = { categories = ["foster_care"] }
        "#,
    )
    .expect("rules");
    let c = child(
        &["foster_care"],
        None,
        &[],
        &[("foster_visit", "2026-03-01")],
    );
    let e = evaluate(&rules, &c, d("2026-03-05")).expect("eval");
    assert_eq!(e.schedules[0].due, d("2026-03-11"));
}

#[test]
fn unknown_keys_in_cases_and_rule_files_are_errors_that_name_the_field() {
    let rules = RuleSet::preset("tiedong").expect("preset");
    let err = evaluate(
        &rules,
        &child(&["left_behind"], None, &["orphan"], &[]),
        d("2026-01-01"),
    )
    .expect_err("unknown flag");
    assert_eq!(
        err.to_string(),
        "field risk_flags: unknown risk flag `orphan`"
    );
    assert!(RuleSet::from_toml("[[rule]]\nkind = \"home_visit\"\nevery = \"3 months\"\nwhen = { guardianship = [\"good\"], colour = 1 }\n").is_err());
    assert!(RuleSet::from_toml("[[rule]]\nkind = \"visit\"\nevery = \"3 months\"\n").is_err());
    assert!(RuleSet::from_toml("[[rule]]\nkind = \"home_visit\"\nevery = \"3 month\"\n").is_err());
    assert!(serde_json::from_str::<Case>(r#"{"id": "x", "birth_date": "2015-05-01", "registered_on": "2026-01-10", "categories": [], "risk_flags": [], "records": []}"#).is_err(), "guardianship is required");
}

#[test]
fn intervals_print_and_parse_in_rules_md_words() {
    for s in [
        "1 month", "3 months", "1 week", "2 weeks", "1 day", "10 days",
    ] {
        assert_eq!(s.parse::<Interval>().expect("parse").to_string(), s);
    }
    for bad in ["3 month", "1 months", "0", "month", "-1 days", "3  months"] {
        assert!(bad.parse::<Interval>().is_err(), "{bad}");
    }
}

#[test]
fn month_arithmetic_clamps_to_the_month_end() {
    let m = |n| Interval {
        count: n,
        unit: Unit::Months,
    };
    assert_eq!(m(3).after(d("2026-08-31")), Some(d("2026-11-30")));
    assert_eq!(m(1).after(d("2026-01-31")), Some(d("2026-02-28")));
    assert_eq!(m(1).after(d("2028-01-31")), Some(d("2028-02-29")));
    assert_eq!(m(12).after(d("2024-02-29")), Some(d("2025-02-28")));
}

#[test]
fn the_due_list_puts_the_most_overdue_first() {
    let rules = RuleSet::preset("tiedong").expect("preset");
    let mut a = child(
        &["left_behind"],
        Some("good"),
        &[],
        &[("home_visit", "2026-01-01")],
    );
    a.id = "a".into();
    let mut b = child(
        &["left_behind"],
        Some("average"),
        &[],
        &[("home_visit", "2026-01-01")],
    );
    b.id = "b".into();
    let mut ok = child(
        &["left_behind"],
        Some("good"),
        &[],
        &[("home_visit", "2026-04-20")],
    );
    ok.id = "ok".into();
    let list = due_list(&rules, &[a, b, ok], d("2026-05-01"));
    let ids: Vec<&str> = list.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, vec!["b", "a"]);
}

fn date() -> impl Strategy<Value = NaiveDate> {
    (1900i32..2200, 1u32..=12, 1u32..=31)
        .prop_filter_map("valid date", |(y, m, dd)| NaiveDate::from_ymd_opt(y, m, dd))
}

fn is_leap(y: i32) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn month_len(y: i32, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

proptest! {
    #[test]
    fn adding_months_keeps_the_day_or_clamps_it_to_the_month_end(start in date(), n in 0u32..400) {
        let due = Interval { count: n, unit: Unit::Months }.after(start).expect("in range");
        let months = start.year() * 12 + start.month0() as i32 + n as i32;
        prop_assert_eq!(due.year(), months.div_euclid(12));
        prop_assert_eq!(due.month0() as i32, months.rem_euclid(12));
        prop_assert_eq!(due.day(), start.day().min(month_len(due.year(), due.month())));
    }

    #[test]
    fn adding_months_never_goes_back_in_time(a in date(), b in date(), n in 0u32..60) {
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        let m = Interval { count: n, unit: Unit::Months };
        prop_assert!(m.after(lo) <= m.after(hi));
    }

    #[test]
    fn twelve_months_are_a_year_with_29_february_clamped(start in date()) {
        let due = Interval { count: 12, unit: Unit::Months }.after(start).expect("in range");
        prop_assert_eq!(due.year(), start.year() + 1);
        let expect_day = if start.month() == 2 && start.day() == 29 && !is_leap(start.year() + 1) { 28 } else { start.day() };
        prop_assert_eq!((due.month(), due.day()), (start.month(), expect_day));
    }

    #[test]
    fn weeks_are_seven_days(start in date(), n in 0u32..200) {
        let w = Interval { count: n, unit: Unit::Weeks }.after(start).expect("in range");
        prop_assert_eq!((w - start).num_days(), 7 * i64::from(n));
    }

    #[test]
    fn an_overdue_child_is_overdue_by_exactly_the_days_past_due(last in date(), late in 1i64..2000) {
        let rules = RuleSet::preset("tiedong").expect("preset");
        let mut c = child(&["family_difficulty"], Some("good"), &[], &[]);
        c.birth_date = last - chrono::Days::new(3650);
        c.registered_on = last;
        c.records = vec![CaseRecord { kind: "home_visit".into(), date: last }];
        let due = Interval { count: 3, unit: Unit::Months }.after(last).expect("in range");
        let on = due + chrono::Duration::days(late);
        if age_on(c.birth_date, on) < 18 {
            let e = evaluate(&rules, &c, on).expect("eval");
            prop_assert_eq!(e.schedules[0].status, Status::Overdue);
            prop_assert_eq!(e.schedules[0].days_overdue, late);
        }
    }
}

#[test]
fn leap_years_follow_the_gregorian_rule() {
    assert!(is_leap(2000) && is_leap(2024) && !is_leap(1900) && !is_leap(2100));
    let feb = |y| {
        Interval {
            count: 1,
            unit: Unit::Months,
        }
        .after(NaiveDate::from_ymd_opt(y, 1, 31).expect("date"))
    };
    assert_eq!(feb(2000), NaiveDate::from_ymd_opt(2000, 2, 29));
    assert_eq!(feb(2100), NaiveDate::from_ymd_opt(2100, 2, 28));
}
