//! Roster import: a county's list of children becomes files that directors' phones receive;
//! a roster with a bad row changes nothing, and the same roster again changes nothing.

use serde_json::Value;

use crate::harness::{Phone, Server, token};

const ROSTER: &str = "姓名,性别,出生日期,村（社区）代码,类别,监护状况,风险因素,住址\n\
李小红,女,2016-02-29,210302001001,left_behind,一般,,三组\n\
张小军,男,2014-07-01,210302001001,left_behind,较差,poor_family,五组\n\
王小花,女,2019-10-10,210302001001,family_difficulty,较好,,一组\n\
赵小明,男,2015-03-03,210302002001,left_behind,一般,,二组\n";

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
        .get("/api/v1/children?village=210302001001")
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
    let bad = format!("{ROSTER}钱小雨,女,2016-02-30,210302001001,left_behind,一般,,\n");
    let out = import(&server, &bad);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("row 6: birth_date:"), "{err}");
    assert!(err.contains("nothing was imported"), "{err}");
    let server = server.start();
    let mut director = Phone::new(&server, "dir_a");
    assert!(held_names(&mut director).is_empty());
}

fn upload(client: &homevisit_server::client::Client, body: &[u8]) -> (u16, Value) {
    let reply = client
        .call(
            "POST",
            "/api/v1/roster",
            Some(&token(client)),
            "text/csv",
            body,
        )
        .expect("an answer");
    (reply.status, reply.json())
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
