//! Phones syncing through a real server.

use homevisit_sync_core::file::{Findings, RecordVersion};
use homevisit_sync_core::vocab::RecordKind;

use crate::harness::{Phone, Server, now};

const XINHUA: &str = "220303100200";
const HONGQI: &str = "220303102200";

fn two_phones_share_a_file_and_the_supervisor_sees_it(server: &Server) {
    let mut first = Phone::new(server, "dir_a");
    let mut second = Phone::new(server, "dir_a");
    let mut supervisor = Phone::new(server, "sup_a");
    let mut stranger = Phone::new(server, "dir_b");

    let child = first.register("李小红", XINHUA);
    assert_eq!(first.sync(), 1, "a daily sync is one round trip");
    second.sync();
    let findings = Findings {
        living_security: "吃住正常".into(),
        family_guardianship: "祖母照料".into(),
        medical_schooling: "按时上学".into(),
        care_activities: "参加暑期活动".into(),
    };
    let visit = RecordVersion::home_visit(now().date_naive(), "dir_a", now(), findings);
    second
        .device
        .edit(&child, |f| {
            f.add_record(RecordKind::HomeVisit, &visit, "dir_a", now())
        })
        .expect("record a visit");
    second.sync();
    first.sync();
    supervisor.sync();
    stranger.sync();

    for phone in [&mut first, &mut supervisor] {
        let view = phone
            .device
            .file(&child)
            .expect("file")
            .view()
            .expect("view");
        assert_eq!(view.profile.name, "李小红");
        assert_eq!(view.records.len(), 1, "{} sees the visit", phone.user);
    }
    assert!(
        stranger.device.is_empty(),
        "another township's director sees nothing"
    );

    let list = supervisor.client.get("/api/v1/children").expect("list");
    assert_eq!(list["total"], 1, "{list}");
    assert_eq!(list["children"][0]["id"], child.to_string());
    assert_eq!(
        list["children"][0]["last_home_visit"],
        now().date_naive().to_string()
    );
    let none = stranger.client.get("/api/v1/children").expect("list");
    assert_eq!(none["total"], 0, "{none}");
}

#[test]
fn two_phones_of_one_director_and_the_supervisor_converge_on_sqlite() {
    two_phones_share_a_file_and_the_supervisor_sees_it(&Server::sqlite());
}

#[test]
fn two_phones_of_one_director_and_the_supervisor_converge_on_postgres() {
    two_phones_share_a_file_and_the_supervisor_sees_it(&Server::postgres());
}

#[test]
fn a_director_cannot_upload_a_file_of_another_village_and_nothing_of_the_request_lands() {
    let server = Server::sqlite();
    let mut director = Phone::new(&server, "dir_a");
    let own = director.register("王小明", XINHUA);
    let foreign = director.register("赵小刚", HONGQI);
    let frame = director.device.sync_request().expect("request");
    let err = director.client.sync(&frame).expect_err("refused");
    let message = err.to_string();
    assert!(
        message.contains("403") && message.contains("region_forbidden"),
        "{message}"
    );
    assert!(
        message.contains(&foreign.to_string()),
        "the error names the file: {message}"
    );

    // All or nothing: the director's own file did not land either.
    let mut supervisor = Phone::new(&server, "sup_a");
    supervisor.sync();
    assert!(supervisor.device.is_empty(), "half a request was applied");

    // Set aside, the rest syncs.
    director.device.quarantine(&foreign).expect("quarantine");
    director.sync();
    supervisor.sync();
    assert!(supervisor.device.file(&own).is_ok());
}

#[test]
fn corrupt_and_oversized_sync_bodies_get_stable_codes_and_the_server_stays_up() {
    let server = Server::sqlite();
    let phone = Phone::new(&server, "dir_a");
    let post = |body: &[u8]| crate::harness::post_frame(&phone.client, body);
    let garbage = post(b"HV\x01\x00not a frame at all");
    assert_eq!(garbage.status, 400);
    assert_eq!(garbage.code().as_deref(), Some("corrupt_request"));
    let empty = post(b"");
    assert_eq!(empty.status, 400);
    let huge = post(&vec![0u8; 17 << 20]);
    assert_eq!(huge.status, 413);
    assert_eq!(huge.code().as_deref(), Some("payload_too_large"));
    let health = phone
        .client
        .call("GET", "/healthz", None, "", &[])
        .expect("up");
    assert_eq!(health.status, 200);
}
