//! The compliance report over HTTPS and on the command line, against files synced by a phone.

use chrono::NaiveDate;
use homevisit_sync_core::file::{
    AttrKind, ChildId, DangerDetails, Findings, Person, PersonRole, RecordVersion,
};
use homevisit_sync_core::vocab::{DangerKind, RecordKind};
use serde_json::Value;

use crate::harness::{Phone, Server, now, token};

fn date(s: &str) -> NaiveDate {
    s.parse().expect("date")
}

fn visit(phone: &mut Phone, child: &ChildId, on: &str) {
    let by = phone.user.clone();
    let v = RecordVersion::home_visit(date(on), &by, now(), Findings::default());
    phone
        .device
        .edit(child, |f| {
            f.add_record(RecordKind::HomeVisit, &v, &by, now())
        })
        .expect("visit");
}

fn get(client: &homevisit_phone::client::Client, path: &str) -> homevisit_phone::client::Reply {
    client
        .call("GET", path, Some(&token(client)), "", &[])
        .expect("an answer")
}

/// Each of `queries` on `path` is refused with 400 `invalid_query`.
fn refused_queries(client: &homevisit_phone::client::Client, path: &str, queries: &[&str]) {
    for query in queries {
        let reply = get(client, &format!("{path}?{query}"));
        assert_eq!(
            (reply.status, reply.json()["code"].as_str()),
            (400, Some("invalid_query")),
            "{query}"
        );
    }
}

/// A left-behind child of 山门村 registered on the phone, with `guardianship` since 2026-01-10
/// and home visits on `visits`.
fn left_behind(phone: &mut Phone, name: &str, guardianship: &str, visits: &[&str]) -> ChildId {
    let child = phone.register(name, "220303100200");
    phone.assert_attributes(
        &child,
        &[
            (AttrKind::Category, "left_behind"),
            (AttrKind::Guardianship, guardianship),
        ],
        date("2026-01-10"),
    );
    for on in visits {
        visit(phone, &child, on);
    }
    child
}

/// A server whose today is 2026-12-05, with two children of one village: 李小红 (monthly,
/// visited on 10-05 and late on 11-20, a guardian recorded) and 张小军 (every three months,
/// last visited 08-15 and so overdue since 11-15, living alone since 11-10, the police not yet
/// told).
fn two_children_in_november() -> (Server, ChildId, ChildId) {
    let mut server = Server::sqlite_unstarted();
    server
        .env
        .push(("HOMEVISIT__DEVELOPMENT".into(), "true".into()));
    server.extra = vec!["--today".into(), "2026-12-05".into()];
    let server = server.start();
    let mut director = Phone::new(&server, "dir_a");
    // Monthly (一般): due 11-05 after the October visit, visited late on 11-20.
    let late = left_behind(
        &mut director,
        "李小红",
        "average",
        &["2026-10-05", "2026-11-20"],
    );
    let by = director.user.clone();
    let grandmother = Person {
        role: PersonRole::Guardian,
        name: "李奶奶".into(),
        relation: "祖母".into(),
        phone: Some("13800000000".into()),
        void: None,
    };
    director
        .device
        .edit(&late, |f| {
            f.add_person(&grandmother, &by, now()).map(|_| ())
        })
        .expect("guardian");
    // Every three months (较好): due 11-15, never visited; a danger found on 11-10.
    let owed = left_behind(&mut director, "张小军", "good", &["2026-08-15"]);
    let danger = DangerDetails {
        found: vec![DangerKind::LivingAlone],
        notified: Vec::new(),
        outcome: None,
    };
    let record = RecordVersion::danger(date("2026-11-10"), &by, now(), danger);
    director
        .device
        .edit(&owed, |f| {
            f.add_record(RecordKind::Danger, &record, &by, now())
        })
        .expect("danger");
    director.sync();
    (server, late, owed)
}

#[test]
fn the_compliance_report_counts_visits_required_made_late_and_owed_and_dangers_by_region() {
    let (server, ..) = two_children_in_november();

    let county = server.login("county");
    let reply = get(
        &county,
        "/api/v1/reports/compliance?period=2026-11&level=township",
    );
    assert_eq!(reply.status, 200);
    let report: Value = reply.json();
    assert_eq!(
        (report["from"].as_str(), report["to"].as_str()),
        (Some("2026-11-01"), Some("2026-11-30"))
    );
    let row = |category: &str| {
        report["rows"]
            .as_array()
            .expect("rows")
            .iter()
            .find(|r| r["region"] == "220303100000" && r["category"] == category)
            .cloned()
            .unwrap_or_else(|| panic!("no {category} row: {report}"))
    };
    for category in ["all", "left_behind"] {
        let r = row(category);
        assert_eq!(r["name"], "山门镇");
        let figures: Vec<u64> = [
            "children_served",
            "visits_required",
            "visits_on_time",
            "visits_late",
            "overdue_now",
            "dangers_opened",
            "dangers_closed",
            "dangers_open",
        ]
        .iter()
        .map(|k| r[*k].as_u64().unwrap_or(99))
        .collect();
        assert_eq!(figures, [2, 2, 0, 1, 1, 1, 0, 1], "{category}: {r}");
        assert_eq!(r["median_days_overdue"], 15.0);
    }
    assert!(
        !report.to_string().contains("李小红"),
        "a report names no child"
    );

    // The same as CSV (chosen by Accept) and as XLSX.
    let csv = county
        .call_with(
            "GET",
            "/api/v1/reports/compliance?period=2026-Q4&level=village",
            Some(&token(&county)),
            "",
            &[],
            &[("Accept", "text/csv")],
        )
        .expect("csv");
    assert_eq!(csv.status, 200);
    assert!(csv.content_type.starts_with("text/csv"));
    let text = String::from_utf8(csv.body).expect("utf-8");
    assert!(
        text.starts_with("\u{feff}region,name,category,children_served"),
        "{text}"
    );
    assert!(text.contains("220303100200,山门村,all,2,"), "{text}");
    let xlsx = get(
        &county,
        "/api/v1/reports/compliance?period=2026-Q4&format=xlsx",
    );
    assert_eq!(xlsx.status, 200);
    assert!(xlsx.body.starts_with(b"PK\x03\x04"), "an XLSX is a zip");

    // Another township's supervisor sees none of it; directors and admins get no reports.
    let other: Value = get(
        &server.login("sup_b"),
        "/api/v1/reports/compliance?period=2026-11",
    )
    .json();
    assert!(!other.to_string().contains("220303100000"), "{other}");
    for user in ["dir_a", "admin"] {
        let reply = get(
            &server.login(user),
            "/api/v1/reports/compliance?period=2026-11",
        );
        assert_eq!(
            (reply.status, reply.json()["code"].as_str()),
            (403, Some("role_forbidden"))
        );
    }
    refused_queries(
        &county,
        "/api/v1/reports/compliance",
        &[
            "period=2026-13",
            "period=2026-Q5",
            "period=2026-11&level=province",
            "period=2026-11&format=pdf",
            "period=2026-11&colour=red",
            "level=county",
        ],
    );

    // A period that has not begun has nothing in it yet.
    let ahead: Value = get(&county, "/api/v1/reports/compliance?period=2027-01").json();
    assert_eq!(ahead["rows"].as_array().map(Vec::len), Some(0), "{ahead}");

    // On the command line.
    let out = server.homevisit(
        &[
            "report",
            "compliance",
            "--period",
            "2026-11",
            "--region",
            "220303000000",
            "--level",
            "county",
        ],
        None,
    );
    assert!(out.status.success(), "{out:?}");
    let csv = String::from_utf8_lossy(&out.stdout);
    assert!(csv.contains("220303000000,铁东区,all,2,2,"), "{csv}");
}

/// The first sheet of a workbook, as text.
fn sheet(xlsx: &[u8]) -> Vec<Vec<String>> {
    use calamine::Reader;
    let mut book: calamine::Xlsx<_> =
        calamine::Xlsx::new(std::io::Cursor::new(xlsx)).expect("a workbook");
    let first = book.sheet_names()[0].clone();
    let range = book.worksheet_range(&first).expect("a sheet");
    range
        .rows()
        .map(|r| r.iter().map(|c| c.to_string()).collect())
        .collect()
}

#[test]
fn the_national_update_has_a_row_per_child_with_its_quarter_and_each_file_read_is_audited() {
    let (server, late, owed) = two_children_in_november();
    let county = server.login("county");
    let reply = get(&county, "/api/v1/reports/national?period=2026-Q4");
    assert_eq!(reply.status, 200);
    assert!(
        reply
            .content_type
            .starts_with("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    );
    let rows = sheet(&reply.body);
    let header = &rows[0];
    let standard: Vec<&str> = homevisit_server::service::national::COLUMNS
        .iter()
        .map(|(_, h)| *h)
        .collect();
    assert_eq!(header, &standard);
    assert_eq!(rows.len(), 3, "{rows:?}");
    let of = |id: &ChildId| -> std::collections::BTreeMap<&str, &str> {
        let row = rows
            .iter()
            .find(|r| r[0] == id.to_string())
            .unwrap_or_else(|| panic!("no row for {id}: {rows:?}"));
        standard
            .iter()
            .copied()
            .zip(row.iter().map(String::as_str))
            .collect()
    };
    let li = of(&late);
    for (column, value) in [
        ("姓名", "李小红"),
        ("村（社区）区划代码", "220303100200"),
        ("村（社区）", "山门村"),
        ("乡镇（街道）", "山门镇"),
        ("儿童类别", "留守儿童"),
        ("监护状况", "一般"),
        ("监护人姓名", "李奶奶"),
        ("监护人与儿童关系", "祖母"),
        ("本期入户走访次数", "2"),
        ("最近入户走访日期", "2026-11-20"),
        ("最近走访人", "dir_a"),
        ("走访状态", "正常"),
        ("未结危险情况数", "0"),
        ("已向公安机关报告", ""),
        ("服务状态", "在册服务"),
        ("统计期", "2026-Q4"),
    ] {
        assert_eq!(li[column], value, "{column}: {li:?}");
    }
    let zhang = of(&owed);
    for (column, value) in [
        ("姓名", "张小军"),
        ("本期入户走访次数", "0"),
        ("最近入户走访日期", "2026-08-15"),
        ("走访状态", "逾期"),
        ("逾期天数", "20"),
        ("未结危险情况数", "1"),
        ("未结危险情形", "脱离监护单独居住"),
        ("已向公安机关报告", "否"),
    ] {
        assert_eq!(zhang[column], value, "{column}: {zhang:?}");
    }

    // Each file exported is a read of it, in the audit log.
    let audit: Value = get(&server.login("admin"), "/api/v1/audit?user=county").json();
    let mut exported: Vec<&str> = audit["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["action"] == "reports.national")
        .filter_map(|e| e["child_id"].as_str())
        .collect();
    exported.sort();
    let mut expected = [late.to_string(), owed.to_string()];
    expected.sort();
    assert_eq!(exported, expected, "{audit}");

    // Only county staff export, only their county, and only a real period.
    for user in ["sup_a", "dir_a", "admin"] {
        let reply = get(
            &server.login(user),
            "/api/v1/reports/national?period=2026-Q4",
        );
        assert_eq!(
            (reply.status, reply.json()["code"].as_str()),
            (403, Some("role_forbidden")),
            "{user}"
        );
    }
    let elsewhere = get(
        &server.login("county_x"),
        "/api/v1/reports/national?period=2026-Q4",
    );
    assert_eq!(sheet(&elsewhere.body).len(), 1, "only the header");
    refused_queries(
        &county,
        "/api/v1/reports/national",
        &[
            "period=2026-Q5",
            "period=Q4",
            "period=2026-Q4&format=csv",
            "",
        ],
    );

    // On the command line, with the province's headings.
    let mapping = server.dir.path().join("columns.toml");
    std::fs::write(&mapping, "name = \"儿童姓名\"\nid_number = false\n").expect("mapping");
    let out_path = server.dir.path().join("national.xlsx");
    let out = server.homevisit(
        &[
            "report",
            "national",
            "--period",
            "2026-Q4",
            "--region",
            "220303000000",
            "--columns",
            mapping.to_str().expect("utf-8"),
            "--out",
            out_path.to_str().expect("utf-8"),
        ],
        None,
    );
    assert!(out.status.success(), "{out:?}");
    let rows = sheet(&std::fs::read(&out_path).expect("written"));
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[0][1], "儿童姓名");
    assert!(
        !rows[0].iter().any(|h| h == "公民身份号码"),
        "{:?}",
        rows[0]
    );
    let bad = std::fs::write(&mapping, "nmae = \"x\"\n");
    bad.expect("mapping");
    let out = server.homevisit(
        &[
            "report",
            "national",
            "--region",
            "220303000000",
            "--columns",
            mapping.to_str().expect("utf-8"),
            "--out",
            out_path.to_str().expect("utf-8"),
        ],
        None,
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("`nmae` is not a column"),
        "{out:?}"
    );
}
