//! What a phone may not do to a file even in its own village: erase what it holds, sign with
//! someone else's name, or name a photo it did not upload and may not see. Each is refused
//! with a stable code naming the file, nothing of it is stored, and a phone's wrong clock
//! neither hides nor backdates when a change arrived.

use automerge::ReadDoc;
use automerge::transaction::{CommitOptions, Transactable};
use homevisit_sync_core::file::{
    Assertion, AttrKind, ChildFile, ChildId, Findings, Person, PersonRole, RecordVersion,
};
use homevisit_sync_core::vocab::RecordKind;

use crate::harness::{Phone, Server, now, small_photo};

const XINHUA: &str = "220303100200";
const HONGQI: &str = "220303102200";

/// A file with a guardian, an assertion and a corrected record, synced by dir_a.
fn a_full_file(server: &Server) -> ChildId {
    let mut director = Phone::new(server, "dir_a");
    let child = director.register("钱小雨", XINHUA);
    let at = now();
    director
        .device
        .edit(&child, |f| {
            let guardian = Person {
                role: PersonRole::Guardian,
                name: "钱建国".into(),
                relation: "祖父".into(),
                phone: None,
                void: None,
            };
            f.add_person(&guardian, "dir_a", at)?;
            let left_behind = Assertion {
                attr: AttrKind::Category,
                value: "left_behind".into(),
                present: true,
                effective: at.date_naive(),
                recorded_at: at,
                by: "dir_a".into(),
            };
            f.assert_attribute(&left_behind, "dir_a", at)?;
            let v = RecordVersion::home_visit(at.date_naive(), "dir_a", at, Findings::default());
            let record = f.add_record(RecordKind::HomeVisit, &v, "dir_a", at)?;
            f.correct_record(record, &v.with_notes("补记"), "dir_a", at)
        })
        .expect("a full file");
    director.sync();
    child
}

/// Deletes `key` from the map at `path` (from the root), committing as `by`.
fn delete_in(f: &mut ChildFile, path: &[&str], by: &str) {
    let doc = f.doc_mut();
    let mut obj = automerge::ROOT;
    for key in &path[..path.len() - 1] {
        obj = doc.get(&obj, *key).expect("get").expect("present").1;
    }
    doc.delete(&obj, path[path.len() - 1]).expect("delete");
    doc.commit_with(CommitOptions::default().with_message(by.to_owned()));
}

fn first_key(f: &ChildFile, section: &str) -> String {
    let doc = f.doc();
    let (_, obj) = doc
        .get(automerge::ROOT, section)
        .expect("get")
        .expect("present");
    doc.keys(&obj).next().expect("an entry")
}

#[test]
fn erasing_history_or_signing_as_someone_else_is_refused_and_nothing_is_stored() {
    let server = Server::sqlite();
    let child = a_full_file(&server);
    type Forgery = fn(&mut ChildFile);
    let forgeries: [(&str, &str, Forgery); 7] = [
        (
            "a record signed by the supervisor",
            "author_mismatch",
            |f| {
                let at = now();
                let v =
                    RecordVersion::home_visit(at.date_naive(), "sup_a", at, Findings::default());
                f.add_record(RecordKind::HomeVisit, &v, "dir_a", at)
                    .expect("add");
            },
        ),
        (
            "a change whose author is the supervisor",
            "author_mismatch",
            |f| {
                let mut p = f.view().expect("view").profile;
                p.address = "村西头".into();
                f.update_profile(&p, "sup_a", now()).expect("edit");
            },
        ),
        ("a deleted record", "erases_history", |f| {
            let id = first_key(f, "records");
            delete_in(f, &["records", &id], "dir_a");
        }),
        ("a deleted version", "erases_history", |f| {
            let id = first_key(f, "records");
            let doc = f.doc_mut();
            let (_, records) = doc.get(automerge::ROOT, "records").expect("g").expect("p");
            let (_, record) = doc.get(&records, id.as_str()).expect("g").expect("p");
            let (_, versions) = doc.get(&record, "versions").expect("g").expect("p");
            doc.delete(&versions, 0).expect("delete");
            doc.commit_with(CommitOptions::default().with_message("dir_a".to_owned()));
        }),
        ("a deleted guardian", "erases_history", |f| {
            let id = first_key(f, "people");
            delete_in(f, &["people", &id], "dir_a");
        }),
        ("a deleted assertion", "erases_history", |f| {
            let id = first_key(f, "attributes");
            delete_in(f, &["attributes", &id], "dir_a");
        }),
        ("a rewritten assertion", "erases_history", |f| {
            let id = first_key(f, "attributes");
            let doc = f.doc_mut();
            let (_, attrs) = doc
                .get(automerge::ROOT, "attributes")
                .expect("g")
                .expect("p");
            let (_, a) = doc.get(&attrs, id.as_str()).expect("g").expect("p");
            doc.put(&a, "present", false).expect("put");
            doc.commit_with(CommitOptions::default().with_message("dir_a".to_owned()));
        }),
    ];
    for (what, code, forge) in forgeries {
        let mut phone = Phone::new(&server, "dir_a");
        phone.sync();
        phone
            .device
            .edit(&child, |f| {
                forge(f);
                Ok::<_, homevisit_sync_core::file::FileError>(())
            })
            .expect("forge");
        let frame = phone.device.sync_request().expect("request");
        let err = phone.client.sync(&frame).expect_err(what);
        match err {
            homevisit_phone::client::ClientError::Api {
                status,
                code: got,
                files,
                ..
            } => {
                assert_eq!((status, got.as_str()), (403, code), "{what}");
                assert_eq!(
                    files,
                    [child.to_string()],
                    "{what}: the refusal names the file"
                );
            }
            other => panic!("{what}: {other}"),
        }
        // The phone sets the file aside and syncs on.
        phone.sync();
        assert_eq!(phone.device.quarantined().expect("quarantined"), [child]);
    }
    let mut supervisor = Phone::new(&server, "sup_a");
    supervisor.sync();
    let view = supervisor
        .device
        .file(&child)
        .expect("held")
        .view()
        .expect("view");
    assert_eq!(view.records.len(), 1);
    assert_eq!(
        view.records.values().next().map(|r| r.versions.len()),
        Some(2)
    );
    assert_eq!(view.people.len(), 1);
    assert_eq!(view.attributes.len(), 1);
    assert!(view.attributes.values().all(|a| a.present));
    assert_eq!(view.profile.address, "村东头");
}

#[test]
fn a_phone_with_a_wrong_clock_is_accepted_and_the_server_records_when_it_arrived() {
    let server = Server::postgres();
    let mut director = Phone::new(&server, "dir_a");
    let long_ago = chrono::DateTime::from_timestamp(1_000_000_000, 0).expect("2001");
    let child = director
        .device
        .create(
            &crate::harness::profile("吴小军", XINHUA),
            "dir_a",
            long_ago,
        )
        .expect("create");
    let before = homevisit_server::service::clock::unix_now();
    director.sync();
    let after = homevisit_server::service::clock::unix_now();
    let history = director
        .client
        .get(&format!("/api/v1/children/{child}/history"))
        .expect("history");
    let changes = history["changes"].as_array().expect("changes");
    assert!(!changes.is_empty());
    for change in changes {
        assert_eq!(change["at"], 1_000_000_000, "the phone's own time is kept");
        let received = change["received_at"].as_i64().expect("received_at");
        assert!((before..=after).contains(&received), "{change}");
        assert_eq!(change["received_from"], "dir_a");
    }
}

#[test]
fn a_record_may_name_only_a_photo_its_author_uploaded_or_may_see() {
    let server = Server::sqlite();
    // dir_b photographs a child's home in 叶赫村.
    let mut owner = Phone::new(&server, "dir_b");
    let theirs = owner.register("郑小花", HONGQI);
    let photo = small_photo(21);
    assert_eq!(owner.upload(&photo).status, 201);
    let at = now();
    let mut v = RecordVersion::summary(at.date_naive(), "dir_b", at, "入户照片");
    v.photos.push(photo.sha256.clone());
    owner
        .device
        .edit(&theirs, |f| {
            f.add_record(RecordKind::WorkLog, &v, "dir_b", at)
        })
        .expect("record");
    owner.sync();

    // dir_a, in another township, learns the photo's hash and names it in a file of their own.
    let mut prober = Phone::new(&server, "dir_a");
    let mine = prober.register("冯小宝", XINHUA);
    prober.sync();
    let mut stolen = RecordVersion::summary(at.date_naive(), "dir_a", at, "照片");
    stolen.photos.push(photo.sha256.clone());
    prober
        .device
        .edit(&mine, |f| {
            f.add_record(RecordKind::WorkLog, &stolen, "dir_a", at)
        })
        .expect("record");
    let frame = prober.device.sync_request().expect("request");
    let refused = prober.client.sync(&frame).expect_err("refused");
    assert!(refused.to_string().contains("photo_forbidden"), "{refused}");
    let bearer = crate::harness::token(&prober.client);
    let get = prober
        .client
        .call(
            "GET",
            &format!("/api/v1/blobs/{}", photo.sha256),
            Some(&bearer),
            "",
            &[],
        )
        .expect("an answer");
    assert_eq!(get.status, 403, "the photo stays out of reach");

    // A photo of their own, uploaded first, is theirs to name.
    let mut other = Phone::new(&server, "dir_a");
    other.sync();
    let own = small_photo(22);
    assert_eq!(other.upload(&own).status, 201);
    let mut fine = RecordVersion::summary(at.date_naive(), "dir_a", at, "照片");
    fine.photos.push(own.sha256.clone());
    other
        .device
        .edit(&mine, |f| {
            f.add_record(RecordKind::WorkLog, &fine, "dir_a", at)
        })
        .expect("record");
    other.sync();
    // And the township supervisor, who sees dir_b's file, may name dir_b's photo.
    let mut supervisor = Phone::new(&server, "sup_b");
    supervisor.sync();
    let mut copy = RecordVersion::summary(at.date_naive(), "sup_b", at, "复核");
    copy.photos.push(photo.sha256.clone());
    supervisor
        .device
        .edit(&theirs, |f| {
            f.add_record(RecordKind::WorkLog, &copy, "sup_b", at)
        })
        .expect("record");
    supervisor.sync();
}
