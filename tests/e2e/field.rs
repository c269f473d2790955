//! `homevisit field` against `homevisit serve --demo`: the newcomer's walk through the system.

use std::io::{BufRead, Write};
use std::path::Path;
use std::process::{Command, Stdio};

use crate::harness::Server;

fn field(state: &Path, args: &[&str], stdin: &str) -> (bool, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_homevisit"))
        .arg("field")
        .arg("--state")
        .arg(state)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run homevisit field");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("stdin");
    let out = child.wait_with_output().expect("wait");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn password_of(server: &Server, user: &str) -> String {
    server.demo_password(user)
}

fn login(server: &Server, state: &Path, user: &str) {
    let url = format!("https://localhost:{}", server.port);
    let ca = server.ca();
    let (ok, out, err) = field(
        state,
        &[
            "login",
            "--server",
            &url,
            "--ca",
            ca.to_str().expect("utf-8"),
            "--user",
            user,
        ],
        &password_of(server, user),
    );
    assert!(ok, "{out}{err}");
}

/// Every byte under `dir`, file by file: no canary text and no JPEG may be found in clear.
fn assert_nothing_personal_in_clear(dir: &Path, canaries: &[&str]) {
    let mut stack = vec![dir.to_owned()];
    let mut files = 0;
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).expect("read dir").flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            files += 1;
            let bytes = std::fs::read(&path).expect("read");
            for canary in canaries {
                assert!(
                    !bytes.windows(canary.len()).any(|w| w == canary.as_bytes()),
                    "{canary} is in clear in {}",
                    path.display()
                );
            }
            // A JPEG's start with its JFIF or Exif segment: eight fixed bytes. The start of
            // image alone (three bytes) turns up by chance in a few megabytes of ciphertext.
            let jpeg = |w: &[u8]| {
                w[..3] == [0xFF, 0xD8, 0xFF]
                    && matches!((w[3], &w[6..11]), (0xE0, b"JFIF\0") | (0xE1, b"Exif\0"))
            };
            assert!(
                !bytes.windows(11).any(jpeg),
                "a JPEG is in clear in {}",
                path.display()
            );
        }
    }
    assert!(files > 0, "the state directory holds the store");
}

#[test]
fn a_director_works_offline_with_the_demo_county_and_the_supervisor_sees_the_danger() {
    let server = Server::demo();
    assert!(
        server.banner.iter().any(|l| l.contains("300 child files")),
        "{:?}",
        server.banner
    );
    let phone = tempfile::tempdir().expect("phone");
    login(&server, phone.path(), "director11");
    let (ok, out, err) = field(phone.path(), &["sync"], "");
    assert!(ok && out.contains("25 files"), "{out}{err}");
    let (ok, due, err) = field(phone.path(), &["due"], "");
    assert!(ok, "{err}");
    assert!(
        due.contains("overdue"),
        "the demo has children behind on visits:\n{due}"
    );

    let (ok, id, err) = field(
        phone.path(),
        &[
            "add-child",
            "--name",
            "周小雨",
            "--sex",
            "female",
            "--birth-date",
            "2017-05-04",
            "--village",
            "220303100200",
            "--address",
            "三组",
        ],
        "",
    );
    assert!(ok, "{err}");
    let id = id.trim().to_owned();
    // The camera's photo lies outside the phone's state directory, as on a phone.
    let camera = tempfile::tempdir().expect("camera");
    let photo = camera.path().join("photo.png");
    image::RgbImage::from_fn(800, 600, |x, y| {
        image::Rgb([(x % 200) as u8, (y % 200) as u8, 90])
    })
    .save(&photo)
    .expect("photo");
    let (ok, _, err) = field(
        phone.path(),
        &[
            "record",
            &id,
            "--kind",
            "home_visit",
            "--notes",
            "家中整洁",
            "--photo",
            photo.to_str().expect("utf-8"),
        ],
        "",
    );
    assert!(ok, "{err}");
    let (ok, _, err) = field(
        phone.path(),
        &[
            "record",
            &id,
            "--kind",
            "danger",
            "--danger",
            "living_alone",
            "--notes",
            "独自在家",
        ],
        "",
    );
    assert!(ok, "{err}");
    assert_nothing_personal_in_clear(phone.path(), &["周小雨", "家中整洁", "独自在家"]);
    let (ok, status, err) = field(phone.path(), &["status"], "");
    assert!(ok && status.contains("1 photos waiting"), "{status}{err}");
    // The supervisor follows alerts live while the director syncs.
    let supervisor = tempfile::tempdir().expect("supervisor phone");
    login(&server, supervisor.path(), "supervisor1");
    let (ok, open, err) = field(supervisor.path(), &["alerts"], "");
    assert!(
        ok && open.contains("\toverdue\topen\t"),
        "the demo opens with overdue alerts: {open}{err}"
    );
    let mut follow = Command::new(env!("CARGO_BIN_EXE_homevisit"))
        .args(["field", "--state"])
        .arg(supervisor.path())
        .args(["alerts", "--follow"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("follow alerts");
    let mut lines = std::io::BufReader::new(follow.stdout.take().expect("stdout")).lines();
    let opened = lines.next().expect("a first line").expect("a line");
    assert!(opened.starts_with("following alerts"), "{opened}");
    let (ok, out, err) = field(phone.path(), &["sync"], "");
    assert!(
        ok && out.contains("26 files") && out.contains("1 photos"),
        "{out}{err}"
    );
    let live = loop {
        let line = lines
            .next()
            .expect("the stream stays open")
            .expect("a line");
        if line.starts_with("raised\t") && line.contains("\tdanger\t") {
            break line;
        }
    };
    let _ = follow.kill();
    let _ = follow.wait();
    assert!(
        live.contains("周小雨") && live.contains("单独居住"),
        "{live}"
    );
    assert!(
        !live.contains("独自在家"),
        "alerts carry no findings: {live}"
    );
    let (ok, out, err) = field(supervisor.path(), &["sync"], "");
    assert!(
        ok && out.contains("101 files"),
        "four villages and the new child: {out}{err}"
    );

    let mut client = server.client();
    client
        .login(
            "supervisor1",
            &password_of(&server, "supervisor1"),
            &uuid::Uuid::new_v4().to_string(),
            "web",
        )
        .expect("login");
    let list = client
        .get("/api/v1/children?village=220303100200")
        .expect("list");
    let new = list["children"]
        .as_array()
        .expect("children")
        .iter()
        .find(|c| c["id"] == id.as_str())
        .expect("the new child is listed")
        .clone();
    assert_eq!(new["danger_open"], true);
    // Living alone must go to the police (seed 002 item 8), and no one was told.
    assert_eq!(new["police_unreported"], true);
    let unreported = client
        .get("/api/v1/children?police_unreported=true")
        .expect("unreported");
    assert!(unreported.to_string().contains(&id), "{unreported}");
    let open = client
        .get("/api/v1/children?danger_open=true")
        .expect("open dangers");
    let open_ids: Vec<&str> = open["children"]
        .as_array()
        .expect("children")
        .iter()
        .filter_map(|c| c["id"].as_str())
        .collect();
    assert!(open_ids.contains(&id.as_str()), "{open}");
    assert!(
        open["children"]
            .as_array()
            .expect("children")
            .iter()
            .all(|c| c["danger_open"] == true),
        "{open}"
    );
    let overdue = client
        .get("/api/v1/children?status=overdue")
        .expect("overdue");
    assert!(overdue["total"].as_u64().unwrap_or(0) > 0, "{overdue}");
}

#[test]
fn the_field_device_refuses_a_foreign_village_offline_and_sets_a_refused_file_aside() {
    let server = Server::demo();
    let phone = tempfile::tempdir().expect("phone");
    login(&server, phone.path(), "director11");
    let (ok, out, err) = field(phone.path(), &["sync"], "");
    assert!(ok, "{out}{err}");
    // Offline, before anything is sent: a village the director does not serve.
    let (ok, out, err) = field(
        phone.path(),
        &[
            "add-child",
            "--name",
            "外村孩子",
            "--sex",
            "male",
            "--birth-date",
            "2016-01-01",
            "--village",
            "220303102200",
        ],
        "",
    );
    assert!(!ok, "{out}");
    assert!(err.contains("outside your regions"), "{err}");

    // The director records a visit offline; meanwhile the supervisor moves that child to a
    // village the director does not serve.
    let (_, list, _) = field(phone.path(), &["list"], "");
    let first = list.split_whitespace().next().expect("a child").to_owned();
    let (village, name) = {
        let fields: Vec<&str> = list
            .lines()
            .next()
            .expect("line")
            .split_whitespace()
            .collect();
        (fields[1].to_owned(), fields[2].to_owned())
    };
    let (ok, _, err) = field(
        phone.path(),
        &["record", &first, "--kind", "home_visit", "--notes", "入户"],
        "",
    );
    assert!(ok, "{err}");
    let mut supervisor = crate::harness::Phone::with_password(
        &server,
        "supervisor1",
        &password_of(&server, "supervisor1"),
    );
    supervisor.sync();
    let child: homevisit_sync_core::file::ChildId = first.parse().expect("id");
    let elsewhere = if village.ends_with('1') {
        format!("{}2", &village[..11])
    } else {
        format!("{}1", &village[..11])
    };
    supervisor
        .device
        .edit(&child, |f| {
            let mut p = f.view()?.profile;
            p.village_code = elsewhere.clone();
            f.update_profile(&p, "supervisor1", crate::harness::now())
        })
        .expect("move");
    supervisor.sync();

    let (ok, out, err) = field(phone.path(), &["sync"], "");
    assert!(ok, "one refused file does not block the sync: {out}{err}");
    let (ok, status, err) = field(phone.path(), &["status"], "");
    assert!(ok, "{err}");
    assert!(
        status.contains("1 files set aside") && status.contains(&first) && status.contains(&name),
        "{status}"
    );
}

#[test]
fn the_demo_is_built_once_and_never_into_a_database_with_users_of_its_own() {
    let demo = Server::demo();
    let again = demo.homevisit(&["demo"], None);
    assert!(again.status.success(), "{again:?}");
    let out = String::from_utf8_lossy(&again.stdout);
    assert!(
        out.contains("300 child files") && !out.contains("just built"),
        "{out}"
    );

    let real = Server::sqlite();
    let refused = real.homevisit(&["demo"], None);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("already has users"),
        "{refused:?}"
    );
}

/// Seed 002's county in its real place: 吉林省四平市铁东区 (220303), 村 under its 镇 and 社区
/// under its 街道, 户籍 places to match, and in every other village a child just found whose
/// guardianship the county can list as still to assess.
#[test]
fn the_demo_county_is_siping_tiedong_and_lists_the_children_still_to_assess() {
    let server = Server::demo();
    let county = server.login_with("county", &password_of(&server, "county"));
    let month = (crate::harness::now() + chrono::Duration::hours(8)).format("%Y-%m");
    let report = county
        .get(&format!(
            "/api/v1/reports/compliance?period={month}&level=township"
        ))
        .expect("report");
    let mut townships: Vec<(String, String)> = report["rows"]
        .as_array()
        .expect("rows")
        .iter()
        .filter(|r| r["category"] == "all")
        .map(|r| {
            (
                r["region"].as_str().expect("code").to_owned(),
                r["name"].as_str().expect("name").to_owned(),
            )
        })
        .collect();
    townships.sort();
    assert_eq!(
        townships,
        [
            ("220303001000".to_owned(), "平东街道".to_owned()),
            ("220303100000".to_owned(), "山门镇".to_owned()),
            ("220303102000".to_owned(), "叶赫满族镇".to_owned()),
        ]
    );

    let list = county
        .get("/api/v1/children?guardianship=unassessed")
        .expect("unassessed");
    let rows = list["children"].as_array().expect("children");
    assert_eq!(list["total"], 6, "{list}");
    for row in rows {
        assert!(row["guardianship"].is_null(), "{row}");
        assert!(row["last_home_visit"].is_null(), "just found: {row}");
        let visit = row["schedules"]
            .as_array()
            .expect("schedules")
            .iter()
            .find(|s| s["kind"] == "home_visit")
            .unwrap_or_else(|| panic!("an unassessed child is due a visit: {row}"));
        assert_eq!(visit["every"], "1 month", "{row}");
    }
    let mut villages: Vec<&str> = rows
        .iter()
        .map(|r| r["village"].as_str().expect("village"))
        .collect();
    villages.sort_unstable();
    villages.dedup();
    assert_eq!(
        villages,
        [
            "220303001001",
            "220303001003",
            "220303100200",
            "220303100202",
            "220303102200",
            "220303102202"
        ]
    );
    let community = rows
        .iter()
        .find(|r| r["village"] == "220303001001")
        .expect("a child of 平东社区");
    let file = county
        .get(&format!(
            "/api/v1/children/{}",
            community["id"].as_str().expect("id")
        ))
        .expect("file");
    assert_eq!(
        file["profile"]["hukou_place"], "吉林省四平市铁东区平东街道平东社区",
        "{file}"
    );
    let assessed = county
        .get("/api/v1/children?guardianship=good&limit=1")
        .expect("good");
    assert_eq!(
        assessed["children"][0]["guardianship"], "good",
        "{assessed}"
    );
    let err = county
        .get("/api/v1/children?guardianship=excellent")
        .expect_err("an unknown level");
    assert!(err.to_string().contains("invalid_query"), "{err}");
}

/// The file's version-2 parts recorded offline in the field, synced, and found by the
/// supervisor's list filters and in the child's file on the server.
#[test]
fn the_new_parts_of_the_file_recorded_in_the_field_reach_the_supervisors_filters() {
    let server = Server::demo();
    let phone = tempfile::tempdir().expect("phone");
    login(&server, phone.path(), "director11");
    let (ok, out, err) = field(phone.path(), &["sync"], "");
    assert!(ok, "{out}{err}");
    let (ok, list, err) = field(phone.path(), &["list"], "");
    assert!(ok, "{err}");
    let child = list
        .split_whitespace()
        .next()
        .expect("the director holds files")
        .to_owned();
    let added = std::cell::RefCell::new(Vec::new());
    let part = |collection: &'static str, entry: &str| {
        let (ok, out, err) = field(
            phone.path(),
            &["part", &child, collection, "--entry", entry],
            "",
        );
        assert!(ok, "{collection} {entry}: {err}");
        let id = out.trim().to_owned();
        added.borrow_mut().push((collection, id.clone()));
        id
    };
    part(
        "facts",
        r#"{"effective":"2026-09-01","fact":"schooling","school":"铁东区第二小学","grade":"四年级","status":"dropped_out"}"#,
    );
    part(
        "care",
        r#"{"entry":"arrangement","caregiver":"李秀兰","relation":"外祖母","since":"2026-01-01","agreement":{"signed_on":"2026-01-01","covers":"日常照料、安全监护"}}"#,
    );
    part(
        "benefits",
        r#"{"kind":"dibao","status":"granted","granted_on":"2026-03-01","amount_fen":60000}"#,
    );
    let plan = part(
        "plans",
        r#"{"needs":"劝返复学","measures":"联系学校，每周家访","responsible":"村儿童主任","made_on":"2026-06-01","review_on":"2026-09-01"}"#,
    );
    part(
        "referrals",
        r#"{"to":"school_return","on":"2026-09-02","status":"made"}"#,
    );
    // Bad entries are refused naming the field, and nothing is stored.
    let (ok, _, err) = field(
        phone.path(),
        &[
            "part",
            &child,
            "benefits",
            "--entry",
            r#"{"kind":"free_money","status":"granted","granted_on":"2026-03-01"}"#,
        ],
        "",
    );
    assert!(!ok && err.contains("benefits/kind"), "{err}");
    let (ok, _, err) = field(
        phone.path(),
        &[
            "part",
            &child,
            "referrals",
            "--entry",
            r#"{"on":"2026-09-02","status":"made"}"#,
        ],
        "",
    );
    assert!(!ok && err.contains("referrals/to"), "{err}");
    let (ok, due, err) = field(phone.path(), &["due"], "");
    assert!(ok, "{err}");
    assert!(
        due.lines()
            .any(|l| l.starts_with(&child) && l.contains("plan_review") && l.contains("overdue")),
        "the plan's review is due:\n{due}"
    );
    let (ok, out, err) = field(phone.path(), &["sync"], "");
    assert!(ok, "{out}{err}");

    let supervisor = server.login_with("supervisor1", &password_of(&server, "supervisor1"));
    let ids = |query: &str| -> Vec<String> {
        let list = supervisor
            .get(&format!("/api/v1/children?{query}"))
            .unwrap_or_else(|e| panic!("{query}: {e}"));
        list["children"]
            .as_array()
            .expect("children")
            .iter()
            .map(|c| c["id"].as_str().expect("id").to_owned())
            .collect()
    };
    for query in [
        "school_status=dropped_out",
        "entrusted_care_lapsed=true",
        "plan_review_overdue=true",
    ] {
        assert!(ids(query).contains(&child), "{query}");
    }
    assert!(!ids("entrusted_care_lapsed=false").contains(&child));
    // The demo county has its own: children in entrusted care whose parents stopped calling,
    // and dropouts referred back to school.
    assert!(ids("entrusted_care_lapsed=true").len() >= 12);
    assert!(ids("school_status=dropped_out").len() >= 3);
    let err = supervisor
        .get("/api/v1/children?school_status=truant")
        .expect_err("an unknown status");
    assert!(err.to_string().contains("invalid_query"), "{err}");
    let file = supervisor
        .get(&format!("/api/v1/children/{child}"))
        .expect("the file");
    for (collection, id) in added.borrow().iter() {
        assert!(file[collection][id].is_object(), "{collection} {id}");
    }
    assert_eq!(file["version"], 2);
    assert!(file["plans"][&plan].is_object());
}

/// The county moves a file from a village of one township to one of another: at their next
/// sync the old director's device drops it and the new one's receives it with its history, and
/// the audit log holds the transfer and the drop.
#[test]
fn a_transferred_file_moves_between_two_directors_devices_and_both_steps_are_audited() {
    let server = Server::demo();
    let old = tempfile::tempdir().expect("old phone");
    let new = tempfile::tempdir().expect("new phone");
    login(&server, old.path(), "director11");
    login(&server, new.path(), "director21");
    for phone in [old.path(), new.path()] {
        let (ok, out, err) = field(phone, &["sync"], "");
        assert!(ok, "{out}{err}");
    }
    let (_, list, _) = field(old.path(), &["list"], "");
    let child = list.split_whitespace().next().expect("a file").to_owned();
    let records = |dir: &Path| -> Option<String> {
        let (_, list, _) = field(dir, &["list"], "");
        list.lines()
            .find(|l| l.starts_with(&child))
            .map(str::to_owned)
    };
    let before = records(old.path()).expect("held by the old director");
    assert!(records(new.path()).is_none());

    let county = server.login_with("county", &password_of(&server, "county"));
    let token = county.access().expect("token").to_owned();
    let path = format!("/api/v1/children/{child}/transfer");
    let to = "220303102200";
    let body = serde_json::json!({ "village_code": to, "reason": "户籍与居住地民政部门协商一致", "address": "叶赫满族镇叶赫村5组" });
    // A director may not move files; an unknown village and the same village are refused.
    let director = server.login_with("director11", &password_of(&server, "director11"));
    let reply = director
        .post_json(&path, Some(director.access().expect("token")), &body)
        .expect("answer");
    assert_eq!(
        (reply.status, reply.code().as_deref()),
        (403, Some("role_forbidden"))
    );
    let bad = serde_json::json!({ "village_code": "999999999999", "reason": "x" });
    let reply = county.post_json(&path, Some(&token), &bad).expect("answer");
    assert_eq!(
        (reply.status, reply.code().as_deref()),
        (404, Some("unknown_village"))
    );
    let reply = county
        .post_json(&path, Some(&token), &body)
        .expect("answer");
    assert_eq!(reply.status, 200, "{:?}", reply.json());
    assert_eq!(reply.json()["to"], to);
    let reply = county
        .post_json(&path, Some(&token), &body)
        .expect("answer");
    assert_eq!(
        (reply.status, reply.code().as_deref()),
        (409, Some("same_village"))
    );

    for phone in [old.path(), new.path()] {
        let (ok, out, err) = field(phone, &["sync"], "");
        assert!(ok, "{out}{err}");
    }
    assert!(
        records(old.path()).is_none(),
        "the old director's device dropped it"
    );
    let after = records(new.path()).expect("the new director's device holds it");
    assert!(after.contains(to), "{after}");
    // Its history came with it: every record, and the transfer's own work-log entry.
    let count = |line: &str| -> usize {
        line.split_whitespace()
            .rev()
            .nth(1)
            .and_then(|n| n.parse().ok())
            .expect("a record count")
    };
    assert_eq!(count(&after), count(&before) + 1, "{before} / {after}");

    let audit = county
        .get(&format!("/api/v1/audit?child={child}"))
        .expect("audit");
    let actions: Vec<(&str, &str)> = audit["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| {
            (
                e["username"].as_str().unwrap_or(""),
                e["action"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert!(
        actions.contains(&("county", "children.transfer")),
        "{actions:?}"
    );
    assert!(
        actions.contains(&("director11", "sync.drop")),
        "{actions:?}"
    );
    assert!(
        actions.contains(&("director21", "sync.download")),
        "{actions:?}"
    );
}
