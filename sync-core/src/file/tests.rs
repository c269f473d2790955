use super::*;
use crate::vocab::{Guardianship, Sex};
use chrono::TimeZone;

fn d(s: &str) -> NaiveDate {
    s.parse().expect("test date")
}

fn at(day: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, day, 9, 0, 0)
        .single()
        .expect("test time")
}

pub(crate) fn profile() -> Profile {
    Profile {
        name: "王小明".into(),
        sex: Sex::Male,
        birth_date: d("2015-05-01"),
        id_number: None,
        hukou_place: "铁东区山门镇".into(),
        address: "山门村3组12号".into(),
        village_code: "220303100200".into(),
        registered_on: d("2026-01-10"),
    }
}

fn new_file() -> ChildFile {
    ChildFile::create(ChildId::new(), &profile(), [1; 16], "d1", at(1)).expect("create")
}

fn visit(date: &str) -> RecordVersion {
    RecordVersion::home_visit(
        d(date),
        "d1",
        at(2),
        Findings {
            living_security: "生活有保障".into(),
            ..Findings::default()
        },
    )
}

#[test]
fn a_new_file_is_valid_and_reads_back_after_save() {
    let mut f = new_file();
    assert!(f.validate().is_empty(), "{:?}", f.validate());
    let back = ChildFile::load(&f.save(), [2; 16]).expect("load");
    assert_eq!(back.view().expect("view").profile, profile());
    assert_eq!(back.village_code(), Some("220303100200".into()));
}

#[test]
fn records_added_on_two_phones_offline_both_survive_the_merge() {
    let mut a = new_file();
    let mut b = ChildFile::load(&a.save(), [2; 16]).expect("load");
    let ra = a
        .add_record(RecordKind::HomeVisit, &visit("2026-03-02"), "d1", at(2))
        .expect("add");
    let rb = b
        .add_record(
            RecordKind::Contact,
            &RecordVersion::contact(d("2026-03-03"), "d2", at(3), Channel::Phone),
            "d2",
            at(3),
        )
        .expect("add");
    a.doc_mut().merge(b.doc_mut()).expect("merge");
    let view = a.view().expect("view");
    assert!(view.records.contains_key(&ra) && view.records.contains_key(&rb));
}

#[test]
fn a_corrected_record_keeps_its_earlier_version() {
    let mut f = new_file();
    let id = f
        .add_record(RecordKind::HomeVisit, &visit("2026-03-02"), "d1", at(2))
        .expect("add");
    f.correct_record(id, &visit("2026-03-04"), "d1", at(4))
        .expect("correct");
    let view = f.view().expect("view");
    let record = &view.records[&id];
    assert_eq!(record.versions.len(), 2);
    assert_eq!(record.versions[0].date, d("2026-03-02"));
    assert_eq!(record.current().date, d("2026-03-04"));
}

#[test]
fn a_voided_record_stays_in_the_archive_and_cannot_be_voided_again() {
    let mut f = new_file();
    let id = f
        .add_record(RecordKind::HomeVisit, &visit("2026-03-02"), "d1", at(2))
        .expect("add");
    f.void_record(id, "entered for the wrong child", "d1", at(3))
        .expect("void");
    assert!(matches!(
        f.void_record(id, "again", "d1", at(4)),
        Err(FileError::Voided(_))
    ));
    assert!(matches!(
        f.correct_record(id, &visit("2026-03-05"), "d1", at(5)),
        Err(FileError::Voided(_))
    ));
    let view = f.view().expect("view");
    assert_eq!(
        view.records[&id].void.as_ref().map(|v| v.reason.as_str()),
        Some("entered for the wrong child")
    );
    assert_eq!(view.record_dates().count(), 0);
}

#[test]
fn correcting_a_record_that_does_not_exist_is_an_error() {
    let mut f = new_file();
    let err = f.correct_record(uuid::Uuid::new_v4(), &visit("2026-03-02"), "d1", at(2));
    assert!(matches!(
        err,
        Err(FileError::NotFound { what: "record", .. })
    ));
}

#[test]
fn attributes_follow_the_latest_assertion_effective_on_the_date() {
    let mut f = new_file();
    let assert = |f: &mut ChildFile, attr, value: &str, present, effective: &str| {
        let a = Assertion {
            attr,
            value: value.into(),
            present,
            effective: d(effective),
            recorded_at: at(1),
            by: "d1".into(),
        };
        f.assert_attribute(&a, "d1", at(1)).expect("assert");
    };
    assert(&mut f, AttrKind::Guardianship, "good", true, "2026-01-10");
    assert(&mut f, AttrKind::Guardianship, "poor", true, "2026-06-01");
    assert(
        &mut f,
        AttrKind::Category,
        "left_behind",
        true,
        "2026-01-10",
    );
    assert(
        &mut f,
        AttrKind::Category,
        "left_behind",
        false,
        "2026-09-01",
    );
    assert(
        &mut f,
        AttrKind::RiskFlag,
        "out_of_school",
        true,
        "2026-02-01",
    );
    let view = f.view().expect("view");
    let spring = view.attributes_on(d("2026-03-01"));
    assert_eq!(spring.guardianship, Some(Guardianship::Good));
    assert_eq!(spring.categories, vec!["left_behind".to_string()]);
    assert_eq!(spring.risk_flags, vec!["out_of_school".to_string()]);
    let autumn = view.attributes_on(d("2026-10-01"));
    assert_eq!(autumn.guardianship, Some(Guardianship::Poor));
    assert!(autumn.categories.is_empty());
}

#[test]
fn validation_reports_every_problem_with_its_path() {
    let mut f = new_file();
    let doc = f.doc_mut();
    let (_, profile) = doc.get(ROOT, "profile").expect("get").expect("profile");
    doc.put(&profile, "birth_date", "2015-13-01").expect("put");
    doc.put(&profile, "village_code", "12").expect("put");
    doc.put(&profile, "sex", "x").expect("put");
    let (_, records) = doc.get(ROOT, "records").expect("get").expect("records");
    let rec = doc
        .put_object(&records, uuid::Uuid::new_v4().to_string(), ObjType::Map)
        .expect("put");
    doc.put(&rec, "kind", "home_visit").expect("put");
    doc.commit();
    let paths: Vec<String> = f.validate().into_iter().map(|p| p.path).collect();
    assert!(
        paths.contains(&"profile/birth_date".to_string()),
        "{paths:?}"
    );
    assert!(
        paths.contains(&"profile/village_code".to_string()),
        "{paths:?}"
    );
    assert!(paths.contains(&"profile/sex".to_string()), "{paths:?}");
    assert!(paths.iter().any(|p| p.ends_with("/versions")), "{paths:?}");
    assert!(matches!(f.view(), Err(FileError::Invalid(p)) if p.len() == 4));
}

#[test]
fn a_home_visit_without_findings_is_invalid() {
    let mut f = new_file();
    let mut v = visit("2026-03-02");
    v.findings = None;
    f.add_record(RecordKind::HomeVisit, &v, "d1", at(2))
        .expect("add");
    let problems = f.validate();
    assert_eq!(problems.len(), 1);
    assert!(
        problems[0].path.ends_with("/versions/0/findings"),
        "{problems:?}"
    );
}

#[test]
fn a_file_from_a_newer_schema_is_refused_by_name() {
    let mut f = new_file();
    f.doc_mut()
        .put(ROOT, "schema", SCHEMA_VERSION + 1)
        .expect("put");
    f.doc_mut().commit();
    let err = ChildFile::load(&f.save(), [2; 16]).expect_err("newer schema");
    assert!(matches!(err, FileError::UnsupportedSchema { found } if found == SCHEMA_VERSION + 1));
}

#[test]
fn a_reader_ignores_fields_it_does_not_know_and_defaults_fields_it_lacks() {
    let mut f = new_file();
    let id = f
        .add_record(RecordKind::HomeVisit, &visit("2026-03-02"), "d1", at(2))
        .expect("add");
    let doc = f.doc_mut();
    // A later version adding a field, and an earlier one that had no `people` map at all.
    let (_, profile) = doc.get(ROOT, "profile").expect("get").expect("profile");
    doc.put(&profile, "ethnicity", "汉族").expect("put");
    doc.delete(ROOT, "people").expect("delete");
    doc.commit();
    let view = f.view().expect("view");
    assert!(view.people.is_empty());
    assert!(view.records.contains_key(&id));
}

#[test]
fn bytes_that_are_not_a_child_file_are_a_typed_error() {
    assert!(matches!(
        ChildFile::load(b"not automerge", [1; 16]),
        Err(FileError::Automerge(_))
    ));
    let mut empty = automerge::AutoCommit::new();
    let bytes = empty.save();
    assert!(matches!(
        ChildFile::load(&bytes, [1; 16]),
        Err(FileError::NotAChildFile(_))
    ));
}

#[test]
fn a_profile_update_touches_only_changed_fields_so_concurrent_edits_both_land() {
    let mut a = new_file();
    let mut b = ChildFile::load(&a.save(), [2; 16]).expect("load");
    let mut pa = profile();
    pa.address = "山门村5组1号".into();
    a.update_profile(&pa, "d1", at(5)).expect("update");
    let mut pb = profile();
    pb.id_number = Some("22030320150501123X".into());
    b.update_profile(&pb, "d2", at(5)).expect("update");
    a.doc_mut().merge(b.doc_mut()).expect("merge");
    let merged = a.view().expect("view").profile;
    assert_eq!(merged.address, "山门村5组1号");
    assert_eq!(merged.id_number.as_deref(), Some("22030320150501123X"));
}

mod decoding {
    use super::*;
    use proptest::prelude::*;

    fn saved() -> Vec<u8> {
        let mut f = new_file();
        f.add_record(RecordKind::HomeVisit, &visit("2026-03-02"), "d1", at(2))
            .expect("add");
        f.save()
    }

    proptest! {
        #[test]
        fn random_bytes_load_as_a_typed_error_never_a_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            if let Ok(f) = ChildFile::load(&bytes, [1; 16]) {
                let _ = f.validate();
                let _ = f.view();
            }
        }

        #[test]
        fn a_mutated_file_loads_as_a_typed_error_or_a_valid_document(flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8)) {
            let mut bytes = saved();
            for (at, x) in flips {
                let n = bytes.len();
                bytes[at % n] ^= x | 1;
            }
            if let Ok(f) = ChildFile::load(&bytes, [1; 16]) {
                let _ = f.validate();
                let _ = f.view();
            }
        }
    }
}

/// Edits on two phones, merged in every order, then brought up to date by patches: the tree
/// must be exactly what reading the whole document gives.
#[test]
fn a_tree_brought_up_to_date_by_patches_equals_a_fresh_read() {
    let mut a = new_file();
    let mut b = ChildFile::load(&a.save(), [2; 16]).expect("fork");
    let mut doc = a.doc().clone();
    let mut heads = doc.get_heads();
    let mut tree = json::read(&doc, &ROOT);
    let visit = |day: u32, by: &str| {
        RecordVersion::home_visit(d("2026-03-01"), by, at(day), Findings::default())
            .with_notes(&format!("第{day}次"))
    };
    for round in 1..=6u32 {
        let ra = a
            .add_record(RecordKind::HomeVisit, &visit(round, "d1"), "d1", at(round))
            .expect("a visit");
        let call = RecordVersion::contact(d("2026-03-02"), "d2", at(round), Channel::Phone);
        b.add_record(RecordKind::Contact, &call, "d2", at(round))
            .expect("b contact");
        // Both change the address: a conflict whose winner must match.
        let moved = Profile {
            address: format!("{round}组"),
            id_number: (round % 2 == 0).then(|| "220303201505010011".to_owned()),
            ..profile()
        };
        a.update_profile(&moved, "d1", at(round))
            .expect("profile a");
        let moved_b = Profile {
            address: format!("{round}组东"),
            ..profile()
        };
        b.update_profile(&moved_b, "d2", at(round))
            .expect("profile b");
        if round % 2 == 0 {
            a.correct_record(ra, &visit(round + 10, "d1"), "d1", at(round))
                .expect("correct");
        } else {
            a.void_record(ra, "重复录入", "d1", at(round))
                .expect("void");
        }
        for side in [&mut a, &mut b] {
            let changes = side.doc_mut().get_changes(&heads);
            doc.apply_changes(changes).expect("merge");
        }
        let checked = checked_since(&mut doc, a.id().expect("id"), Some((&heads, tree.clone())));
        let fresh = json::read(&doc, &ROOT);
        let patched = checked.map(|c| c.tree).unwrap_or_else(|problems| {
            panic!("round {round}: {problems:?}");
        });
        assert_eq!(patched, fresh, "round {round}");
        // And by the patches themselves, not by the fallback of reading it all again.
        let now = doc.get_heads();
        let patches = doc.diff(&heads, &now);
        let mut by_patches = tree.clone();
        assert!(
            json::apply_patches(&mut by_patches, &patches),
            "round {round}: a patch was not reproduced: {patches:?}"
        );
        assert_eq!(by_patches, fresh, "round {round}");
        tree = fresh;
        heads = doc.get_heads();
        a.doc_mut()
            .merge(&mut b.doc_mut().clone())
            .expect("a gets b");
        b.doc_mut()
            .merge(&mut a.doc_mut().clone())
            .expect("b gets a");
    }
}

#[test]
fn a_danger_that_must_go_to_the_police_is_flagged_until_a_police_report_is_recorded() {
    use crate::file::{DangerDetails, Notified};
    use crate::vocab::{DangerKind, Party};
    let at = chrono::DateTime::parse_from_rfc3339("2026-11-27T08:00:00Z")
        .expect("time")
        .with_timezone(&chrono::Utc);
    let told = |party: Party| Notified {
        party: Some(party),
        whom: String::new(),
        at,
    };
    let mut danger = DangerDetails {
        found: vec![DangerKind::LivingAlone],
        notified: vec![told(Party::Supervisor)],
        outcome: None,
    };
    assert!(danger.police_report_missing());
    danger.notified.push(told(Party::Police));
    assert!(!danger.police_report_missing());
    // Neglect goes to the village committee first (seed 004 item 4).
    let neglect = DangerDetails {
        found: vec![DangerKind::GuardianNeglect],
        notified: vec![told(Party::VillageCommittee)],
        outcome: None,
    };
    assert!(!neglect.police_report_missing());
    // Records written before the party was asked read back without one.
    let old: Notified =
        serde_json::from_str(r#"{"whom": "派出所", "at": "2026-11-01T00:00:00Z"}"#).expect("old");
    assert_eq!(old.party, None);
}

/// A merge into a file of many records is checked in what it touched: the root fields, and
/// of each collection only the entries its changes reached, before and after.
#[test]
fn a_merge_is_checked_in_its_root_fields_and_the_entries_it_touched() {
    let mut f = new_file();
    let mut kept = Vec::new();
    for day in 2..=6 {
        let date = format!("2026-03-{day:02}");
        kept.push(
            f.add_record(RecordKind::HomeVisit, &visit(&date), "d1", at(day))
                .expect("visit"),
        );
    }
    let heads = f.heads();
    let before = f.to_json();
    f.doc_mut().update_diff_cursor();
    let corrected = kept[1];
    f.correct_record(corrected, &visit("2026-03-09"), "d1", at(9))
        .expect("correct");
    let added = f
        .add_record(RecordKind::HomeVisit, &visit("2026-03-10"), "d1", at(10))
        .expect("visit");
    let id = f.id().expect("id");
    let checked = checked_since(f.doc_mut(), id, Some((&heads, before))).expect("valid");
    let (was, now) = checked.touched.expect("checked since a tree");
    let keys = |tree: &serde_json::Value| -> Vec<String> {
        tree["records"]
            .as_object()
            .expect("records")
            .keys()
            .cloned()
            .collect()
    };
    assert_eq!(keys(&was), vec![corrected.to_string()]);
    let mut touched = vec![corrected.to_string(), added.to_string()];
    touched.sort();
    assert_eq!(keys(&now), touched);
    assert_eq!(
        now["profile"], checked.tree["profile"],
        "root fields are whole"
    );
    assert_eq!(checked.view.records.len(), 6, "the view is the whole file");
}

/// A collection put whole at the root counts whole: every entry is judged.
#[test]
fn a_collection_put_at_the_root_is_touched_whole() {
    let mut f = new_file();
    f.add_record(RecordKind::HomeVisit, &visit("2026-03-02"), "d1", at(2))
        .expect("visit");
    let heads = f.heads();
    let before = f.to_json();
    f.doc_mut().update_diff_cursor();
    f.doc_mut()
        .put_object(ROOT, "records", ObjType::Map)
        .expect("put");
    f.commit("d1", at(3));
    let id = f.id().expect("id");
    let checked = checked_since(f.doc_mut(), id, Some((&heads, before.clone()))).expect("valid");
    let (was, now) = checked.touched.expect("checked since a tree");
    assert_eq!(
        was["records"], before["records"],
        "the old collection whole"
    );
    assert_eq!(
        now["records"],
        serde_json::json!({}),
        "replaced by an empty one"
    );
    assert!(matches!(
        amendment(Some(&was), &now, "d1"),
        Err(Breach::Erased(_))
    ));
}
