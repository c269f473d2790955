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
    for _ in 0..4 {
        let response = round(device, server, id, DEFAULT_PAGE_BYTES);
        let outcome = device.sync_receive(&response, 0).expect("applies");
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

/// A server holding `n` files of six months each, as the village's first phone left them.
fn server_with_history(n: usize) -> MemoryStore {
    let mut g = crate::demo::Generator::new(4);
    let mut store = MemoryStore::default();
    for _ in 0..n {
        let file = g
            .file(&crate::demo::FileSpec {
                village: VILLAGE,
                director: "d1",
                registered_on: "2026-03-01".parse().expect("date"),
                months: 6,
                hukou_place: "吉林省四平市铁东区山门镇山门村",
                rural: true,
                assessed: true,
            })
            .expect("file");
        let id = file.id().expect("id");
        store.insert(id, VILLAGE, &mut file.into_doc());
    }
    store
}

/// One round trip with the page size given; the response's bytes.
fn round(device: &mut Device, server: &mut MemoryStore, id: DeviceId, page: usize) -> Vec<u8> {
    let scope = Scope::new([VILLAGE]);
    let request = Request::decode(&device.sync_request().expect("request")).expect("decode");
    let ctx = Context {
        device: id,
        user: "d1",
        author: "d1",
        scope: &scope,
        now_ms: 1_000,
        page_bytes: page,
        revoked: false,
    };
    server
        .transaction(|s| handle(s, &ctx, &request))
        .expect("accepted")
        .encode()
}

fn due_ids(device: &Device) -> Vec<(String, String, chrono::NaiveDate)> {
    let rules = RuleSet::preset("tiedong").expect("preset");
    device
        .due(&rules, "2026-11-22".parse().expect("date"))
        .into_iter()
        .map(|e| (e.id, e.kind, e.due))
        .collect()
}

#[test]
fn a_new_phone_lists_who_is_due_before_the_files_arrive_and_after_a_restart() {
    let dir = tempfile::tempdir().expect("dir");
    let mut server = server_with_history(6);
    let reference = {
        let mut old = Device::open(&dir.path().join("old.db"), &key()).expect("open");
        sync(&mut old, &mut server, DeviceId::new());
        due_ids(&old)
    };
    assert!(
        !reference.is_empty(),
        "six months without a visit leave someone due"
    );

    let path = dir.path().join("new.db");
    let id = DeviceId::new();
    let mut device = Device::open(&path, &key()).expect("open");
    let first = round(&mut device, &mut server, id, DEFAULT_PAGE_BYTES);
    assert_eq!(
        device.sync_receive(&first, 0).expect("applies"),
        Outcome::Again
    );
    assert_eq!((device.len(), device.arriving()), (6, 6));
    assert_eq!(due_ids(&device), reference, "the due list before any file");
    let some = *device.summaries().keys().next().expect("listed");
    assert!(matches!(device.file(&some), Err(DeviceError::Arriving(_))));
    drop(device);

    let mut device = Device::open(&path, &key()).expect("reopen");
    assert_eq!(device.arriving(), 6, "the list survives a restart");
    assert_eq!(due_ids(&device), reference);
    assert_eq!(sync(&mut device, &mut server, id), Outcome::Done);
    assert_eq!((device.len(), device.arriving()), (6, 0));
    assert_eq!(
        due_ids(&device),
        reference,
        "the files agree with their summaries"
    );
    assert!(device.file(&some).is_ok());
}

#[test]
fn a_child_moved_away_before_the_file_arrived_leaves_the_list_when_the_sync_ends() {
    let dir = tempfile::tempdir().expect("dir");
    let mut server = server_with_history(3);
    let id = DeviceId::new();
    let mut device = Device::open(&dir.path().join("new.db"), &key()).expect("open");
    let first = round(&mut device, &mut server, id, DEFAULT_PAGE_BYTES);
    device.sync_receive(&first, 0).expect("applies");
    let moved = *device.summaries().keys().next().expect("listed");

    let elsewhere = "220303102200";
    let mut file = ChildFile::wrap(server.load(&moved).expect("stored"));
    let mut profile = file.view().expect("view").profile;
    profile.village_code = elsewhere.into();
    file.update_profile(&profile, "county", at()).expect("move");
    server.insert(moved, elsewhere, file.doc_mut());

    assert_eq!(sync(&mut device, &mut server, id), Outcome::Done);
    assert_eq!((device.len(), device.arriving()), (2, 0));
    assert!(!device.summaries().contains_key(&moved));
}

/// What goes wrong with one round trip of a first sync.
#[derive(Debug, Clone, Copy)]
enum Fault {
    /// Nothing.
    None,
    /// The request is lost, or the server stops before it commits: nothing happened.
    BeforeCommit,
    /// The server committed and the response was lost (cut, or the server stopped after).
    AfterCommit,
    /// The response is cut at this fraction (per mille) of its bytes.
    CutAt(u16),
    /// The phone is killed after storing the response, and reopens.
    PhoneRestart,
}

fn fault() -> impl proptest::strategy::Strategy<Value = Fault> {
    use proptest::prelude::*;
    prop_oneof![
        4 => Just(Fault::None),
        1 => Just(Fault::BeforeCommit),
        1 => Just(Fault::AfterCommit),
        1 => (0u16..1000).prop_map(Fault::CutAt),
        1 => Just(Fault::PhoneRestart),
    ]
}

static TWELVE: std::sync::LazyLock<MemoryStore> =
    std::sync::LazyLock::new(|| server_with_history(12));

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(24))]

    #[test]
    fn a_paged_first_sync_cut_retried_and_restarted_anywhere_ends_as_an_uncut_one(
        faults in proptest::collection::vec(fault(), 0..40),
    ) {
        const PAGE: usize = 8000;
        let dir = tempfile::tempdir().expect("dir");
        let clean: usize = {
            let mut server = TWELVE.clone();
            let mut device = Device::open(&dir.path().join("clean.db"), &key()).expect("open");
            let id = DeviceId::new();
            let mut bytes = 0;
            loop {
                let response = round(&mut device, &mut server, id, PAGE);
                bytes += response.len();
                if device.sync_receive(&response, 0).expect("applies") == Outcome::Done {
                    break bytes;
                }
            }
        };
        let path = dir.path().join("phone.db");
        let mut server = TWELVE.clone();
        let mut kept = 0;
        let id = DeviceId::new();
        let mut device = Device::open(&path, &key()).expect("open");
        let mut applied: Vec<crate::sync::ChildId> = Vec::new();
        let mut pages = 0;
        let (mut lost_bytes, mut lost) = (0, 0);
        let mut faults = faults.into_iter();
        let mut due_before_files = None;
        for _ in 0..200 {
            let fault = faults.next().unwrap_or(Fault::None);
            if matches!(fault, Fault::BeforeCommit) {
                continue;
            }
            let response = round(&mut device, &mut server, id, PAGE);
            proptest::prop_assert!(response.len() <= PAGE, "a page of {} B", response.len());
            match fault {
                Fault::AfterCommit => {
                    lost += 1;
                    lost_bytes += response.len();
                    continue;
                }
                Fault::CutAt(at) => {
                    let cut = response.len() * usize::from(at) / 1000;
                    proptest::prop_assert!(device.sync_receive(&response[..cut], 0).is_err());
                    lost += 1;
                    lost_bytes += cut;
                    continue;
                }
                _ => {}
            }
            let decoded = crate::sync::Response::decode(&response).expect("decode");
            pages += 1;
            kept += response.len();
            applied.extend(decoded.docs.iter().map(|d| d.doc()));
            let outcome = device.sync_receive(&response, 0).expect("applies");
            if due_before_files.is_none() && !decoded.summaries.is_empty() {
                due_before_files = Some(due_ids(&device));
            }
            if matches!(fault, Fault::PhoneRestart) {
                drop(device);
                device = Device::open(&path, &key()).expect("reopen");
            }
            if outcome == Outcome::Done {
                break;
            }
        }
        // Every file arrived exactly once among the responses the phone kept: a cut cost only
        // the page in flight, never what an earlier page delivered.
        let mut once = applied.clone();
        once.sort();
        once.dedup();
        proptest::prop_assert_eq!(once.len(), applied.len(), "a file was delivered twice");
        proptest::prop_assert_eq!(applied.len(), 12);
        proptest::prop_assert!(pages >= 4, "the summaries and at least three pages: {}", pages);
        proptest::prop_assert!(lost_bytes <= lost * PAGE);
        // What a lost page held comes again as it was, not as a longer list of changes.
        proptest::prop_assert!(
            kept <= clean + clean / 50 + 64 * pages,
            "{} B kept against {} B uncut", kept, clean
        );
        proptest::prop_assert_eq!(device.arriving(), 0);
        for stored in server.doc_ids().copied().collect::<Vec<_>>() {
            let mut theirs = server.load(&stored).expect("stored");
            let mine = device.file(&stored).expect("held").doc().clone().get_heads();
            proptest::prop_assert_eq!(mine, theirs.get_heads());
        }
        let due = due_ids(&device);
        proptest::prop_assert_eq!(due_before_files.as_ref(), Some(&due));
    }
}
