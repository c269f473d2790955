//! Roster import: a county's list of children becomes files that directors' phones receive;
//! a roster with a bad row changes nothing, and the same roster again changes nothing.

use serde_json::Value;

use crate::harness::{Phone, Server, token};

const ROSTER: &str = "姓名,性别,出生日期,村（社区）代码,类别,监护状况,风险因素,住址\n\
李小红,女,2016-02-29,220303100200,left_behind,一般,,三组\n\
张小军,男,2014-07-01,220303100200,left_behind,较差,poor_family,五组\n\
王小花,女,2019-10-10,220303100200,family_difficulty,较好,,一组\n\
赵小明,男,2015-03-03,220303102200,left_behind,一般,,二组\n";

fn import(server: &Server, roster: &str) -> std::process::Output {
    let path = server.dir.path().join("roster.csv");
    std::fs::write(&path, roster).expect("roster");
    server.homevisit(&["roster", "import", path.to_str().expect("utf-8")], None)
}

fn held_names(phone: &mut Phone) -> Vec<String> {
    phone.sync();
    let mut names: Vec<String> = phone
        .device
        .summaries()
        .values()
        .map(|s| s.name.clone())
        .collect();
    names.sort();
    names
}

#[test]
fn a_roster_becomes_files_that_directors_phones_receive_and_importing_it_again_changes_nothing() {
    let mut server = Server::sqlite();
    server.kill();
    let out = import(&server, ROSTER);
    assert!(out.status.success(), "{out:?}");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("4 files created, 0 children"), "{said}");
    let again = import(&server, ROSTER);
    assert!(again.status.success(), "{again:?}");
    let said = String::from_utf8_lossy(&again.stdout);
    assert!(
        said.contains("0 files created, 4 children already had one"),
        "{said}"
    );

    let server = server.start();
    let mut director = Phone::new(&server, "dir_a");
    assert_eq!(held_names(&mut director), ["张小军", "李小红", "王小花"]);
    let mut other = Phone::new(&server, "dir_b");
    assert_eq!(held_names(&mut other), ["赵小明"]);
    // Their schedules are kept like any file's.
    let list = server
        .login("sup_a")
        .get("/api/v1/children?village=220303100200")
        .expect("list");
    assert_eq!(list["total"], 3);
    assert!(
        list["children"]
            .as_array()
            .expect("children")
            .iter()
            .all(|c| c["status"] != "not_served"),
        "{list}"
    );
}

#[test]
fn a_roster_with_one_bad_row_changes_nothing_and_names_the_row_and_field() {
    let mut server = Server::sqlite();
    server.kill();
    let bad = format!("{ROSTER}钱小雨,女,2016-02-30,220303100200,left_behind,一般,,\n");
    let out = import(&server, &bad);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("row 6: birth_date:"), "{err}");
    assert!(err.contains("nothing was imported"), "{err}");
    let server = server.start();
    let mut director = Phone::new(&server, "dir_a");
    assert!(held_names(&mut director).is_empty());
}

fn upload(client: &homevisit_phone::client::Client, body: &[u8]) -> (u16, Value) {
    upload_as(client, "text/csv", body)
}

fn upload_as(
    client: &homevisit_phone::client::Client,
    content_type: &str,
    body: &[u8],
) -> (u16, Value) {
    let reply = client
        .call(
            "POST",
            "/api/v1/roster",
            Some(&token(client)),
            content_type,
            body,
        )
        .expect("an answer");
    (reply.status, reply.json())
}

const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// [`ROSTER`] as a county keeps it in Excel: dates as date cells, village codes as numbers.
fn roster_workbook() -> Vec<u8> {
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet();
    let date = rust_xlsxwriter::Format::new().set_num_format("yyyy年m月d日");
    for (r, line) in ROSTER.lines().enumerate() {
        for (c, cell) in line.split(',').enumerate() {
            let (r, c) = (r as u32, c as u16);
            let written = match (r, c) {
                (1.., 2) => {
                    let d: chrono::NaiveDate = cell.parse().expect("date");
                    let d = rust_xlsxwriter::ExcelDateTime::parse_from_str(&d.to_string())
                        .expect("excel date");
                    sheet.write_datetime_with_format(r, c, &d, &date)
                }
                (1.., 3) => sheet.write_number(r, c, cell.parse::<f64>().expect("code")),
                _ => sheet.write_string(r, c, cell),
            };
            written.expect("cell");
        }
    }
    book.save_to_buffer().expect("xlsx")
}

#[test]
fn an_xlsx_roster_imports_as_its_csv_would_and_a_workbook_that_is_not_one_is_refused() {
    let mut server = Server::sqlite();
    server.kill();
    let path = server.dir.path().join("花名册.xlsx");
    std::fs::write(&path, roster_workbook()).expect("workbook");
    let out = server.homevisit(&["roster", "import", path.to_str().expect("utf-8")], None);
    assert!(out.status.success(), "{out:?}");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains("4 files created, 0 children"), "{said}");
    // The CSV twin finds every child already there.
    let again = import(&server, ROSTER);
    let said = String::from_utf8_lossy(&again.stdout);
    assert!(
        said.contains("0 files created, 4 children already had one"),
        "{said}"
    );

    let server = server.start();
    let county = server.login("county");
    let (status, body) = upload_as(&county, XLSX, &roster_workbook());
    assert_eq!(
        (status, body["created"].as_u64(), body["unchanged"].as_u64()),
        (200, Some(0), Some(4)),
        "{body}"
    );
    let mut torn = roster_workbook();
    torn.truncate(torn.len() / 2);
    for not_one in [ROSTER.as_bytes(), &torn, b"PK\x03\x04\x00\x00"] {
        let (status, body) = upload_as(&county, XLSX, not_one);
        assert_eq!(
            (status, body["code"].as_str()),
            (422, Some("unreadable_roster")),
            "{body}"
        );
        assert!(
            body["message"].as_str().is_some_and(|m| m.contains("XLSX")),
            "{body}"
        );
    }
    let mut director = Phone::new(&server, "dir_a");
    assert_eq!(held_names(&mut director), ["张小军", "李小红", "王小花"]);
}

#[test]
fn a_county_uploads_its_roster_and_no_other_county_or_role_can() {
    let server = Server::sqlite();
    let (status, body) = upload(&server.login("county"), ROSTER.as_bytes());
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        (body["created"].as_u64(), body["unchanged"].as_u64()),
        (Some(4), Some(0))
    );
    let (status, body) = upload(&server.login("county"), ROSTER.as_bytes());
    assert_eq!((status, body["created"].as_u64()), (200, Some(0)));

    // Another county's villages: every row refused, by field.
    let (status, body) = upload(&server.login("county_x"), ROSTER.as_bytes());
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_roster"))
    );
    let errors = body["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 4, "{body}");
    assert!(errors.iter().all(|e| e["field"] == "village"), "{body}");
    assert_eq!(errors[0]["row"], 2);

    let (status, body) = upload(&server.login("sup_a"), ROSTER.as_bytes());
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("role_forbidden"))
    );
    let (status, body) = upload(&server.login("admin"), &[0xff, 0xfe, 0x00, 0x41]);
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("unreadable_roster"))
    );
    let huge = vec![b'a'; (16 << 20) + 1];
    let (status, body) = upload(&server.login("admin"), &huge);
    assert_eq!(
        (status, body["code"].as_str()),
        (413, Some("payload_too_large"))
    );
    let (status, body) = upload(&server.login("admin"), b"just,some,words\n1,2,3\n");
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("invalid_roster"))
    );
}
