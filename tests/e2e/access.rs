//! The access matrix: every endpoint, every role, a child of a region not theirs: denied. And
//! the same reads by the right people: allowed, and audited.

use crate::harness::{Phone, Server};
use homevisit_sync_core::file::Profile;

const HONGQI: &str = "220303102200";

struct Probe {
    status: u16,
    code: Option<String>,
}

#[test]
fn every_endpoint_denies_every_role_a_child_of_a_foreign_region() {
    let server = Server::sqlite();
    let mut owner = Phone::new(&server, "dir_b");
    let child = owner.register("赵小刚", HONGQI);
    // A photo of the child's home, uploaded and referred to by a record.
    let photo = crate::harness::small_photo(7);
    assert_eq!(owner.upload(&photo).status, 201);
    let mut note = homevisit_sync_core::file::RecordVersion::summary(
        crate::harness::now().date_naive(),
        "dir_b",
        crate::harness::now(),
        "入户照片",
    );
    note.photos.push(photo.sha256.clone());
    owner
        .device
        .edit(&child, |f| {
            f.add_record(
                homevisit_sync_core::vocab::RecordKind::WorkLog,
                &note,
                "dir_b",
                crate::harness::now(),
            )
        })
        .expect("record");
    owner.sync();
    owner
        .device
        .edit(&child, |f| {
            let moved = Profile {
                address: "村西头".into(),
                ..crate::harness::profile("赵小刚", HONGQI)
            };
            f.update_profile(&moved, "dir_b", crate::harness::now())
        })
        .expect("edit");
    let upload = owner.device.sync_request().expect("a frame with an upload");

    // Allowed to the owner's supervisor: the denials below are about regions, not the child.
    let sup_b = server.login("sup_b");
    assert!(sup_b.get(&format!("/api/v1/children/{child}")).is_ok());
    let sup_b_token = crate::harness::token(&sup_b);
    let seen = sup_b
        .call(
            "GET",
            &format!("/api/v1/blobs/{}", photo.sha256),
            Some(&sup_b_token),
            "",
            &[],
        )
        .expect("photo");
    assert_eq!(seen.status, 200);

    for user in ["dir_a", "sup_a", "county_x", "admin"] {
        let client = server.login(user);
        let token = crate::harness::token(&client);
        let probe = |method: &str, path: &str, body: &[u8]| {
            let reply = client
                .call(
                    method,
                    path,
                    Some(&token),
                    "application/vnd.homevisit.sync",
                    body,
                )
                .expect("an answer");
            Probe {
                status: reply.status,
                code: reply.code(),
            }
        };
        let checks = [
            (
                "file",
                probe("GET", &format!("/api/v1/children/{child}"), b""),
            ),
            (
                "history",
                probe("GET", &format!("/api/v1/children/{child}/history"), b""),
            ),
            (
                "list of the village",
                probe("GET", &format!("/api/v1/children?village={HONGQI}"), b""),
            ),
            ("sync upload", probe("POST", "/api/v1/sync", &upload)),
            (
                "photo",
                probe("GET", &format!("/api/v1/blobs/{}", photo.sha256), b""),
            ),
        ];
        for (what, p) in checks {
            assert_eq!(p.status, 403, "{user} / {what}");
            let code = p.code.unwrap_or_default();
            assert!(
                code == "region_forbidden" || code == "role_forbidden",
                "{user} / {what}: {code}"
            );
        }
        if user != "admin" {
            let list = client.get("/api/v1/children").expect("own list");
            let ids: Vec<_> = list["children"]
                .as_array()
                .expect("array")
                .iter()
                .map(|c| c["id"].clone())
                .collect();
            assert!(
                !ids.contains(&child.to_string().into()),
                "{user} lists the foreign child"
            );
        }
        if user == "admin" {
            // The administrator audits everything; audit rows name ids, not what files say.
        } else if user == "county_x" {
            let audit = client
                .get(&format!("/api/v1/audit?child={child}"))
                .expect("audit of own county");
            assert_eq!(
                audit["entries"].as_array().map(Vec::len),
                Some(0),
                "{audit}"
            );
        } else {
            assert_eq!(
                probe("GET", "/api/v1/audit", b"").status,
                403,
                "{user} / audit"
            );
        }
        if user != "admin" {
            assert_eq!(
                probe("GET", "/api/v1/devices", b"").status,
                403,
                "{user} / devices"
            );
        }
    }
    let missing = sup_b
        .get(&format!("/api/v1/children/{}", uuid::Uuid::new_v4()))
        .expect_err("no such child");
    assert!(missing.to_string().contains("404"), "{missing}");
}

#[test]
fn every_read_of_a_child_file_is_audited_for_the_county() {
    let server = Server::sqlite();
    let mut director = Phone::new(&server, "dir_a");
    let child = director.register("李小红", "220303100200");
    director.sync();
    let supervisor = server.login("sup_a");
    let file = supervisor
        .get(&format!("/api/v1/children/{child}"))
        .expect("file");
    assert_eq!(file["profile"]["name"], "李小红");
    let history = supervisor
        .get(&format!("/api/v1/children/{child}/history"))
        .expect("history");
    let changes = history["changes"].as_array().expect("changes");
    assert_eq!(changes[0]["by"], "dir_a");
    assert!(
        changes[0]["touched"]
            .as_array()
            .expect("touched")
            .iter()
            .any(|t| t == "profile"),
        "{history}"
    );

    let county = server.login("county");
    let audit = county
        .get(&format!("/api/v1/audit?child={child}"))
        .expect("audit");
    let entries = audit["entries"].as_array().expect("entries");
    let actions: Vec<_> = entries
        .iter()
        .filter(|e| e["username"] == "sup_a")
        .map(|e| (e["username"].as_str(), e["action"].as_str()))
        .collect();
    assert_eq!(
        actions,
        [
            (Some("sup_a"), Some("child.read")),
            (Some("sup_a"), Some("child.history"))
        ]
    );
    assert!(entries.iter().all(|e| e["remote"] == "127.0.0.1"));
    let admin = server.login("admin");
    let all = admin.get("/api/v1/audit").expect("admin audit");
    assert!(all["entries"].as_array().map_or(0, Vec::len) >= 2);
}
