use super::*;
use crate::file::{Assertion, AttrKind, Findings, RecordVersion};
use crate::sync::memory::MemoryStore;
use crate::sync::server::{Context, DEFAULT_PAGE_BYTES, handle};
use crate::sync::{DeviceId, Request, Scope};
use crate::vocab::{RecordKind, Sex};
use chrono::TimeZone;

const VILLAGE: &str = "220303100200";

fn key() -> StoreKey {
    StoreKey::new([9; 32])
}

fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 2, 0, 0)
        .single()
        .expect("time")
}

fn profile(name: &str) -> Profile {
    Profile {
        name: name.into(),
        sex: Sex::Female,
        birth_date: "2015-05-01".parse().expect("date"),
        id_number: None,
        hukou_place: "铁东区".into(),
        address: "山门村".into(),
        village_code: VILLAGE.into(),
        registered_on: "2026-01-10".parse().expect("date"),
    }
}

fn left_behind(file: &mut ChildFile) -> Result<(), FileError> {
    for (attr, value) in [
        (AttrKind::Category, "left_behind"),
        (AttrKind::Guardianship, "good"),
    ] {
        file.assert_attribute(
            &Assertion {
                attr,
                value: value.into(),
                present: true,
                effective: "2026-01-10".parse().expect("date"),
                recorded_at: at(),
                by: "d1".into(),
            },
            "d1",
            at(),
        )?;
    }
    Ok(())
}

fn sync(device: &mut Device, server: &mut MemoryStore, id: DeviceId) -> Outcome {
    let scope = Scope::new([VILLAGE]);
    for _ in 0..4 {
        let request = Request::decode(&device.sync_request().expect("request")).expect("decode");
        let ctx = Context {
            device: id,
            user: "d1",
            author: "d1",
            scope: &scope,
            now_ms: 1_000,
            page_bytes: DEFAULT_PAGE_BYTES,
            revoked: false,
        };
        let response = server
            .transaction(|s| handle(s, &ctx, &request))
            .expect("accepted");
        let outcome = device.sync_receive(&response.encode(), 0).expect("applies");
        if outcome != Outcome::Again {
            return outcome;
        }
    }
    panic!("no convergence");
}

#[test]
fn an_edit_survives_closing_and_the_due_list_needs_no_document() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("phone.db");
    let id = {
        let mut device = Device::open(&path, &key()).expect("open");
        let id = device
            .create(&profile("王小红"), "d1", at())
            .expect("create");
        device.edit(&id, left_behind).expect("attributes");
        device
            .edit(&id, |f| {
                let v = RecordVersion::home_visit(
                    "2026-03-01".parse().expect("date"),
                    "d1",
                    at(),
                    Findings::default(),
                );
                f.add_record(RecordKind::HomeVisit, &v, "d1", at())
            })
            .expect("visit");
        id
    };
    let device = Device::open(&path, &key()).expect("reopen");
    assert_eq!(device.len(), 1);
    let rules = RuleSet::preset("tiedong").expect("preset");
    let due = device.due(&rules, "2026-11-22".parse().expect("date"));
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].id, id.to_string());
    assert_eq!(due[0].due.to_string(), "2026-06-01");
}

#[test]
fn a_phone_syncs_through_its_store_and_a_second_phone_receives_the_file() {
    let dir = tempfile::tempdir().expect("dir");
    let mut server = MemoryStore::default();
    let (da, db) = (DeviceId::new(), DeviceId::new());
    let mut a = Device::open(&dir.path().join("a.db"), &key()).expect("open a");
    let id = a.create(&profile("李明"), "d1", at()).expect("create");
    assert_eq!(sync(&mut a, &mut server, da), Outcome::Done);
    {
        let mut b = Device::open(&dir.path().join("b.db"), &key()).expect("open b");
        sync(&mut b, &mut server, db);
        assert_eq!(
            b.file(&id)
                .expect("file")
                .view()
                .expect("view")
                .profile
                .name,
            "李明"
        );
    }
    // Reopened, the phone remembers its cursor and acknowledged heads: an idle sync uploads nothing.
    drop(a);
    let mut a = Device::open(&dir.path().join("a.db"), &key()).expect("reopen a");
    let idle = Request::decode(&a.sync_request().expect("request")).expect("decode");
    assert!(idle.cursor.is_some());
    assert!(idle.uploads.is_empty(), "{:?}", idle.uploads.len());
}

#[test]
fn a_damaged_response_changes_nothing_on_the_phone() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("phone.db");
    let mut server = MemoryStore::default();
    let mut device = Device::open(&path, &key()).expect("open");
    device.create(&profile("赵一"), "d1", at()).expect("create");
    let request = Request::decode(&device.sync_request().expect("request")).expect("decode");
    let scope = Scope::new([VILLAGE]);
    let ctx = Context {
        device: DeviceId::new(),
        user: "d1",
        author: "d1",
        scope: &scope,
        now_ms: 0,
        page_bytes: DEFAULT_PAGE_BYTES,
        revoked: false,
    };
    let mut response = handle(&mut server, &ctx, &request)
        .expect("accepted")
        .encode();
    let n = response.len();
    response[n / 2] ^= 0xff;
    assert!(device.sync_receive(&response, 0).is_err());
    drop(device);
    let mut device = Device::open(&path, &key()).expect("reopen");
    let again = Request::decode(&device.sync_request().expect("request")).expect("decode");
    assert_eq!(
        again.uploads.len(),
        1,
        "the unacknowledged file is still to be sent"
    );
    assert!(again.cursor.is_none());
}

#[test]
fn a_wipe_order_empties_the_store() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("phone.db");
    let mut server = MemoryStore::default();
    let mut device = Device::open(&path, &key()).expect("open");
    device.create(&profile("钱二"), "d1", at()).expect("create");
    let id = DeviceId::new();
    sync(&mut device, &mut server, id);
    let scope = Scope::new([VILLAGE]);
    let request = Request::decode(&device.sync_request().expect("request")).expect("decode");
    let ctx = Context {
        device: id,
        user: "d1",
        author: "d1",
        scope: &scope,
        now_ms: 0,
        page_bytes: DEFAULT_PAGE_BYTES,
        revoked: true,
    };
    let response = handle(&mut server, &ctx, &request).expect("handled");
    assert_eq!(
        device.sync_receive(&response.encode(), 0).expect("applies"),
        Outcome::Wipe
    );
    assert!(device.is_empty());
    drop(device);
    let device = Device::open(&path, &key()).expect("reopen");
    assert!(device.is_empty());
}

#[test]
fn a_childs_name_written_through_the_device_is_not_in_its_files() {
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("phone.db");
    let canary = "欧阳CANARY娜";
    let mut device = Device::open(&path, &key()).expect("open");
    device.create(&profile(canary), "d1", at()).expect("create");
    let mut all = Vec::new();
    for entry in std::fs::read_dir(dir.path()).expect("dir").flatten() {
        all.extend(std::fs::read(entry.path()).unwrap_or_default());
    }
    assert!(!all.windows(canary.len()).any(|w| w == canary.as_bytes()));
    device.wipe().expect("wipe");
    assert_eq!(std::fs::read_dir(dir.path()).expect("dir").count(), 0);
}
