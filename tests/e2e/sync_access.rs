//! The sync access matrix: every kind of message PROTOCOL.md defines, crafted by hand as an
//! attacker would, from a director, a supervisor and a county account, about a file of a
//! region not theirs. Each is refused, nothing of the file comes back, and the denial is
//! audited for the county the file belongs to.

use automerge::sync::SyncDoc;
use homevisit_sync_core::file::{ChildId, Findings, RecordVersion};
use homevisit_sync_core::sync::wire::{DocSync, Item, Upload};
use homevisit_sync_core::sync::{Cursor, Request, Response};
use homevisit_sync_core::vocab::RecordKind;

use crate::harness::{Phone, Server, post_frame};

const XINHUA: &str = "220303100200";
const HONGQI: &str = "220303102200";
const NAME: &str = "赵小刚";

/// A crafted message about the foreign file: what it is called, and its frame.
struct Probe {
    kind: &'static str,
    uploads: Vec<Upload>,
    syncs: Vec<DocSync>,
}

fn probes(foreign: ChildId, heads: Vec<automerge::ChangeHash>, changes: Vec<u8>) -> Vec<Probe> {
    let opening = || {
        automerge::AutoCommit::new()
            .sync()
            .generate_sync_message(&mut automerge::sync::State::new())
            .expect("an opening message")
    };
    let mut asking = opening();
    // "Send me these changes": the heads of the file, as if guessed or once known.
    asking.need = heads.clone();
    let mut claiming = opening();
    claiming.heads = heads;
    vec![
        Probe {
            kind: "upload of changes",
            uploads: vec![Upload {
                doc: foreign,
                base: 0,
                changes: changes.clone(),
            }],
            syncs: vec![],
        },
        Probe {
            kind: "empty upload (an announcement)",
            uploads: vec![Upload {
                doc: foreign,
                base: 1,
                changes: vec![],
            }],
            syncs: vec![],
        },
        Probe {
            kind: "opening sync message",
            uploads: vec![],
            syncs: vec![DocSync {
                doc: foreign,
                message: opening().encode(),
            }],
        },
        Probe {
            kind: "sync message that needs the file's changes",
            uploads: vec![],
            syncs: vec![DocSync {
                doc: foreign,
                message: asking.encode(),
            }],
        },
        Probe {
            kind: "sync message claiming the file's heads",
            uploads: vec![],
            syncs: vec![DocSync {
                doc: foreign,
                message: claiming.encode(),
            }],
        },
    ]
}

/// Nothing about the foreign file in a body: not its id's content, its village or its name.
fn says_nothing_of_the_file(body: &[u8], what: &str) {
    let text = String::from_utf8_lossy(body);
    assert!(!text.contains(HONGQI), "{what}: the body names the village");
    assert!(!text.contains(NAME), "{what}: the body names the child");
}

fn silent_about(response: &Response, foreign: ChildId, what: &str) {
    assert!(
        response.docs.iter().all(|d| d.doc() != foreign),
        "{what}: the file's content came back"
    );
    assert!(
        response.syncs.iter().all(|s| s.doc != foreign),
        "{what}: a sync message about the file came back"
    );
    assert!(
        !response.drops.contains(&foreign),
        "{what}: a drop order for a file never held"
    );
}

#[test]
fn every_sync_message_kind_about_a_foreign_file_is_refused_for_every_role_and_audited() {
    let server = Server::sqlite();
    let mut owner = Phone::new(&server, "dir_b");
    let foreign = owner.register(NAME, HONGQI);
    owner.sync();
    let file = owner.device.file(&foreign).expect("held").clone();
    let mut doc = file.into_doc();
    let heads = doc.get_heads();
    let changes = doc.save_after(&[]);

    let mut refusals = 0;
    for user in ["dir_a", "sup_a", "county_x"] {
        let mut phone = Phone::new(&server, user);
        let own = (user != "county_x").then(|| phone.register("王小明", XINHUA));
        let client = &phone.client;
        let post = |frame: Vec<u8>| post_frame(client, &frame);
        for probe in probes(foreign, heads.clone(), changes.clone()) {
            let what = format!("{user} / {}", probe.kind);
            // Alone: refused like any read of the file over REST.
            let alone = Request {
                uploads: probe.uploads.clone(),
                syncs: probe.syncs.clone(),
                ..Request::default()
            };
            let reply = post(alone.encode());
            assert_eq!(reply.status, 403, "{what}");
            let code = reply.code().unwrap_or_default();
            let expected = if user == "county_x" {
                "role_forbidden"
            } else {
                "region_forbidden"
            };
            assert_eq!(code, expected, "{what}");
            says_nothing_of_the_file(&reply.body, &what);
            refusals += 1;
            if own.is_none() {
                continue;
            }
            // Beside the caller's own work: the foreign file is refused by itself, the rest
            // syncs, and the answer says nothing of the foreign file.
            let mine =
                Request::decode(&phone.device.sync_request().expect("request")).expect("decode");
            let mixed = Request {
                uploads: [mine.uploads, probe.uploads].concat(),
                syncs: [mine.syncs, probe.syncs].concat(),
                ..mine
            };
            let reply = post(mixed.encode());
            assert_eq!(reply.status, 200, "{what} beside own work");
            let response = Response::decode(&reply.body).expect("a response");
            assert_eq!(response.refused, [foreign], "{what}");
            silent_about(&response, foreign, &what);
            says_nothing_of_the_file(&reply.body, &what);
            refusals += 1;
        }
        if let Some(own) = own {
            let file = phone.client.get(&format!("/api/v1/children/{own}"));
            assert!(file.is_ok(), "{user}: the caller's own file did not sync");
        }
        if own.is_some() {
            // Cursors: a new install, and a forged cursor that forces the server's fallback,
            // bring back everything in the caller's scope, and only that. Items (tag 4) carry
            // no file the server acts on; one naming the foreign file changes nothing.
            let item = Item {
                kind: 1,
                payload: foreign.as_bytes().to_vec(),
            };
            for cursor in [
                None,
                Some(Cursor {
                    seq: 0,
                    token: 0x5eed,
                }),
            ] {
                let reply = post(
                    Request {
                        cursor,
                        items: vec![item.clone()],
                        ..Request::default()
                    }
                    .encode(),
                );
                assert_eq!(reply.status, 200, "{user} / cursor {cursor:?}");
                let response = Response::decode(&reply.body).expect("a response");
                silent_about(&response, foreign, &format!("{user} / cursor {cursor:?}"));
                says_nothing_of_the_file(&reply.body, "cursor");
            }
        }
    }

    // The owner's file is untouched, and the county it belongs to sees every attempt.
    let mut check = Phone::new(&server, "sup_b");
    check.sync();
    let view = check
        .device
        .file(&foreign)
        .expect("held")
        .view()
        .expect("view");
    assert_eq!(view.profile.name, NAME);
    assert!(view.records.is_empty());
    let county = server.login("county");
    let audit = county
        .get(&format!("/api/v1/audit?child={foreign}&limit=1000"))
        .expect("audit");
    let denials: Vec<_> = audit["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .filter(|e| e["action"] == "sync.refused")
        .collect();
    assert_eq!(denials.len(), refusals, "{audit}");
    for user in ["dir_a", "sup_a", "county_x"] {
        assert!(
            denials.iter().any(|e| e["username"] == user),
            "{user}'s attempts are not audited"
        );
    }
    assert!(denials.iter().all(|e| e["village"] == HONGQI));
}

#[test]
fn a_phone_that_held_a_file_moved_away_keeps_its_work_aside_and_syncs_the_rest() {
    let server = Server::sqlite();
    let mut director = Phone::new(&server, "dir_a");
    let moved = director.register("孙小梅", XINHUA);
    let kept = director.register("周小雨", XINHUA);
    director.sync();
    // The township supervisor moves one child to 东山村, which the director does not serve,
    // while the director, offline, records a visit to each child.
    let mut supervisor = Phone::new(&server, "sup_a");
    supervisor.sync();
    supervisor
        .device
        .edit(&moved, |f| {
            f.update_profile(
                &crate::harness::profile("孙小梅", "220303100201"),
                "sup_a",
                crate::harness::now(),
            )
        })
        .expect("move");
    supervisor.sync();
    let visit = |phone: &mut Phone, id: &ChildId| {
        let at = crate::harness::now();
        let v = RecordVersion::home_visit(at.date_naive(), "dir_a", at, Findings::default());
        phone
            .device
            .edit(id, |f| f.add_record(RecordKind::HomeVisit, &v, "dir_a", at))
            .expect("record")
    };
    visit(&mut director, &moved);
    let record = visit(&mut director, &kept);
    director.sync();
    assert_eq!(
        director.device.quarantined().expect("quarantined"),
        [moved],
        "the moved file's unsent work is kept aside"
    );
    supervisor.sync();
    let view = |phone: &mut Phone, id: &ChildId| {
        phone.device.file(id).expect("held").view().expect("view")
    };
    assert!(view(&mut supervisor, &kept).records.contains_key(&record));
    assert!(
        view(&mut supervisor, &moved).records.is_empty(),
        "no work landed on the moved file"
    );
}
