//! Version 2's parts and schema evolution, proved on the version-1 files checked in under
//! `sync-core/tests/fixtures/` (written by the code before version 2).

use super::*;
use crate::device::{PLAN_REVIEW, case_of, plan_reviews_due};
use crate::rules::{RuleSet, due_list};
use crate::vocab::*;
use chrono::TimeZone;
use proptest::prelude::*;

const RICH: &[u8] = include_bytes!("../../tests/fixtures/v1-rich.automerge");
const UNASSESSED: &[u8] = include_bytes!("../../tests/fixtures/v1-unassessed.automerge");

fn d(s: &str) -> NaiveDate {
    s.parse().expect("test date")
}

fn at(s: &str) -> DateTime<Utc> {
    let day = d(s);
    Utc.from_utc_datetime(&day.and_hms_opt(2, 0, 0).expect("time"))
}

/// How a phone still on version 1 reads a file: its gate refuses a `schema` above 1, and its
/// view has only version 1's collections (serde ignores the rest). Version 1's code is not
/// linked here; these are its rules, kept as they shipped (commit bd72f3f).
mod v1 {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    pub struct View {
        pub schema: u64,
        pub id: ChildId,
        pub profile: Profile,
        #[serde(default)]
        pub people: std::collections::BTreeMap<Uuid, Person>,
        #[serde(default)]
        pub attributes: std::collections::BTreeMap<Uuid, Assertion>,
        #[serde(default)]
        pub records: std::collections::BTreeMap<Uuid, Record>,
    }

    pub fn open(bytes: &[u8]) -> Result<(ChildFile, View), String> {
        let file = ChildFile::load(bytes, [0x51; 16]).map_err(|e| e.to_string())?;
        let tree = file.to_json();
        match tree.get("schema").and_then(serde_json::Value::as_u64) {
            Some(1) => {}
            other => return Err(format!("version 1 refuses schema {other:?}")),
        }
        let view = View::deserialize(&tree).map_err(|e| e.to_string())?;
        Ok((file, view))
    }
}

fn benefit(kind: BenefitKind, on: &str) -> Benefit {
    Benefit {
        kind,
        status: BenefitStatus::Granted,
        applied_on: None,
        granted_on: Some(d(on)),
        stopped_on: None,
        amount_fen: Some(60_000),
        project: None,
        notes: String::new(),
    }
}

fn parent(parent: Parent, situation: ParentSituation, since: &str) -> Fact {
    Fact {
        effective: d(since),
        about: FactAbout::Parent {
            parent,
            situation,
            place: (situation == ParentSituation::WorkingAway)
                .then_some(WorkPlace::OutsideProvince),
        },
    }
}

fn plan(made_on: &str, review_on: &str) -> HelpPlan {
    HelpPlan {
        needs: "学业辅导".into(),
        measures: "每周两次志愿者辅导".into(),
        responsible: "村儿童主任".into(),
        made_on: d(made_on),
        review_on: d(review_on),
        closed_on: None,
    }
}

fn referral(to: ReferralTarget, on: &str) -> Referral {
    Referral {
        to,
        on: d(on),
        status: ReferralStatus::Made,
        outcome: None,
        notes: String::new(),
    }
}

#[test]
fn version_1_files_open_validate_and_read_as_version_1() {
    for bytes in [RICH, UNASSESSED] {
        let file = ChildFile::load(bytes, [1; 16]).expect("a version-1 file loads");
        assert!(file.validate().is_empty(), "{:?}", file.validate());
        let view = file.view().expect("view");
        assert_eq!((view.schema, view.version), (1, 1));
        assert!(view.facts.is_empty() && view.plans.is_empty());
    }
    let rich = ChildFile::load(RICH, [1; 16])
        .expect("load")
        .view()
        .expect("view");
    // 24 months of a visit and a contact, then a work log, an assistance record (voided), a
    // problem, a danger and a contact.
    assert_eq!(rich.records.len(), 53);
    assert_eq!(
        rich.records.values().filter(|r| r.void.is_some()).count(),
        1
    );
    assert_eq!(rich.people.len(), 2);
}

#[test]
fn a_version_1_file_shows_in_the_due_list_and_an_unassessed_child_is_due_monthly() {
    let rules = RuleSet::preset("tiedong").expect("preset");
    let on = d("2026-11-28");
    let unassessed = ChildFile::load(UNASSESSED, [1; 16])
        .expect("load")
        .view()
        .expect("view");
    let rich = ChildFile::load(RICH, [1; 16])
        .expect("load")
        .view()
        .expect("view");
    let cases = [
        case_of(&unassessed.summary(), on),
        case_of(&rich.summary(), on),
    ];
    let due = due_list(&rules, &cases, on);
    let home = |id: ChildId| {
        due.iter()
            .find(|e| e.id == id.to_string() && e.kind == "home_visit")
            .cloned()
    };
    // Registered 2026-09-01 and never visited: a month later, it was due on 2026-10-01.
    let entry = home(unassessed.id).expect("the unassessed child is due");
    assert_eq!(entry.due, d("2026-10-01"));
    assert_eq!(entry.every.to_string(), "1 month");
    // The rich file's last home visit was in 2026-11 at the latest: it is in the list, overdue.
    assert!(home(rich.id).is_some(), "{due:?}");
}

#[test]
fn a_version_1_file_merges_with_version_2_edits_made_on_another_phone() {
    let mut old = ChildFile::load(RICH, [1; 16]).expect("load");
    let mut new = ChildFile::load(RICH, [2; 16]).expect("load");
    let b = new
        .add_part(
            &benefit(BenefitKind::Dibao, "2026-11-01"),
            "director11",
            at("2026-11-02"),
        )
        .expect("benefit");
    old.add_record(
        RecordKind::Contact,
        &RecordVersion::contact(
            d("2026-11-03"),
            "director11",
            at("2026-11-03"),
            Channel::Phone,
        ),
        "director11",
        at("2026-11-03"),
    )
    .expect("contact");
    old.doc_mut().merge(new.doc_mut()).expect("merge");
    assert!(old.validate().is_empty(), "{:?}", old.validate());
    let view = old.view().expect("view");
    assert_eq!((view.schema, view.version), (1, 2));
    assert_eq!(view.records.len(), 54);
    assert_eq!(view.benefits[&b].current().value.kind, BenefitKind::Dibao);
}

#[test]
fn a_version_1_reader_keeps_the_parts_it_does_not_know_through_its_own_edits() {
    let mut file = ChildFile::load(RICH, [2; 16]).expect("load");
    let fact = file
        .add_part(
            &parent(Parent::Father, ParentSituation::WorkingAway, "2025-03-01"),
            "director11",
            at("2026-11-01"),
        )
        .expect("fact");
    let plan_id = file
        .add_part(
            &plan("2026-11-01", "2027-02-01"),
            "director11",
            at("2026-11-01"),
        )
        .expect("plan");
    let referral_id = file
        .add_part(
            &referral(ReferralTarget::Psychological, "2026-11-01"),
            "director11",
            at("2026-11-01"),
        )
        .expect("referral");
    let v2 = file.save();

    // The old phone opens it (schema is still 1), sees its own collections, edits and saves.
    let (mut old, view) = v1::open(&v2).expect("version 1 reads a version-2 file");
    assert_eq!(view.schema, 1);
    assert_eq!(view.id, file.id().expect("id"));
    assert_eq!((view.people.len(), view.records.len()), (2, 53));
    assert!(!view.attributes.is_empty());
    assert_eq!(view.profile.name, file.view().expect("view").profile.name);
    old.add_record(
        RecordKind::HomeVisit,
        &RecordVersion::home_visit(
            d("2026-11-20"),
            "director11",
            at("2026-11-20"),
            Findings::default(),
        ),
        "director11",
        at("2026-11-20"),
    )
    .expect("visit");
    let back = ChildFile::load(&old.save(), [3; 16]).expect("load");
    assert!(back.validate().is_empty(), "{:?}", back.validate());
    let view = back.view().expect("view");
    assert_eq!(view.records.len(), 54);
    assert_eq!(view.facts[&fact], file.view().expect("view").facts[&fact]);
    assert!(view.plans.contains_key(&plan_id) && view.referrals.contains_key(&referral_id));
    // And the server merging both keeps everything too.
    let mut server = ChildFile::load(&v2, [4; 16]).expect("load");
    server
        .doc_mut()
        .merge(back.clone().doc_mut())
        .expect("merge");
    assert_eq!(server.view().expect("view"), view);
}

/// Found by the proptest below: a version-1 file has no `referrals` map, so two phones adding
/// the first referral each create one, and Automerge keeps one as a conflict of the other.
#[test]
fn two_phones_adding_the_first_entry_of_a_collection_to_a_version_1_file_both_keep_it() {
    let mut a = ChildFile::load(RICH, [1; 16]).expect("load");
    let mut b = ChildFile::load(RICH, [2; 16]).expect("load");
    let t = at("2026-11-01");
    let ra = a
        .add_part(&referral(ReferralTarget::Police, "2026-11-01"), "d", t)
        .expect("a");
    let rb = b
        .add_part(
            &referral(ReferralTarget::CaseConference, "2026-11-01"),
            "d",
            t,
        )
        .expect("b");
    let heads = a.heads();
    let before = a.to_json();
    a.doc_mut().update_diff_cursor();
    a.doc_mut().merge(b.doc_mut()).expect("merge");
    b.doc_mut().merge(a.doc_mut()).expect("merge");
    for file in [&a, &b] {
        let view = file.view().expect("view");
        assert!(view.referrals.contains_key(&ra) && view.referrals.contains_key(&rb));
    }
    // The server's incremental check reads the same.
    let id = a.id().expect("id");
    let checked = checked_since(a.doc_mut(), id, Some((&heads, before))).expect("valid");
    assert_eq!(checked.view.referrals.len(), 2);
    // A third entry, added after the merge, lands in the winning map and is read with both.
    let rc = a
        .add_part(
            &referral(ReferralTarget::SchoolReturn, "2026-11-02"),
            "d",
            t,
        )
        .expect("c");
    assert!(a.view().expect("view").referrals.contains_key(&rc));
    assert_eq!(a.view().expect("view").referrals.len(), 3);

    // A crafted change into the copy that lost the conflict is read with the winner, so it is
    // checked with it: the server must not miss it for want of a patch.
    let heads = a.heads();
    let before = a.to_json();
    a.doc_mut().update_diff_cursor();
    let (_, winner) = a
        .doc()
        .get(automerge::ROOT, "referrals")
        .expect("get")
        .expect("referrals");
    let loser = a
        .doc()
        .get_all(automerge::ROOT, "referrals")
        .expect("all")
        .into_iter()
        .map(|(_, obj)| obj)
        .find(|obj| *obj != winner)
        .expect("the losing copy");
    a.doc_mut()
        .put(&loser, "not-a-uuid", "smuggled")
        .expect("put");
    a.commit("d", t);
    assert!(
        a.to_json()["referrals"].get("not-a-uuid").is_some(),
        "reading unites the copies"
    );
    let problems = checked_since(a.doc_mut(), id, Some((&heads, before))).expect_err("refused");
    assert!(
        problems.iter().any(|p| p.path.contains("not-a-uuid")),
        "{problems:?}"
    );
}

#[test]
fn a_file_of_a_future_schema_is_refused_by_name() {
    let mut file = ChildFile::load(UNASSESSED, [1; 16]).expect("load");
    file.doc_mut()
        .put(automerge::ROOT, "schema", 3u64)
        .expect("put");
    let bytes = file.save();
    let err = ChildFile::load(&bytes, [1; 16]).expect_err("refused");
    assert!(
        matches!(err, FileError::UnsupportedSchema { found: 3 }),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "child file schema 3 is newer than this build reads (up to 2)"
    );
    // A later version that only adds parts (schema still 1) is read, its parts kept.
    let mut later = ChildFile::load(UNASSESSED, [1; 16]).expect("load");
    later
        .doc_mut()
        .put(automerge::ROOT, "version", 3u64)
        .expect("put");
    let id = later
        .doc_mut()
        .put_object(automerge::ROOT, "sightings", automerge::ObjType::Map)
        .expect("put");
    later.doc_mut().put(&id, "x", "y").expect("put");
    let reread = ChildFile::load(&later.save(), [1; 16]).expect("read");
    assert!(reread.validate().is_empty());
    assert_eq!(reread.view().expect("view").version, 3);
    assert_eq!(reread.to_json()["sightings"]["x"], "y");
}

/// Each bad input is refused with the path of the field, and the file is left as it was.
#[test]
fn bad_parts_are_refused_naming_the_field_and_nothing_is_stored() {
    let mut file = ChildFile::load(UNASSESSED, [1; 16]).expect("load");
    let before = file.heads();
    let problems = |e: FileError| match e {
        FileError::Invalid(p) => p,
        other => panic!("not a schema error: {other}"),
    };

    // An unknown benefit kind, as a crafted client would send it (through JSON).
    let crafted: Result<Benefit, _> = serde_json::from_value(serde_json::json!({
        "kind": "free_money", "status": "granted", "granted_on": "2026-11-01"
    }));
    assert!(crafted.is_err(), "the typed API cannot even hold it");
    let tree = serde_json::json!({
        "by": "d", "recorded_at": "2026-11-02T00:00:00Z",
        "kind": "free_money", "status": "granted", "granted_on": "2026-11-01"
    });
    let p = parts::check_version::<Benefit>("benefits/x/versions/0", &tree);
    assert_eq!(p[0].path, "benefits/x/versions/0/kind");
    assert!(
        p[0].message.contains("unknown benefit kind `free_money`"),
        "{p:?}"
    );

    // A referral with no target.
    let tree = serde_json::json!({
        "by": "d", "recorded_at": "2026-11-02T00:00:00Z", "on": "2026-11-01", "status": "made"
    });
    let p = parts::check_version::<Referral>("referrals/x/versions/0", &tree);
    assert_eq!(p[0].path, "referrals/x/versions/0/to", "{p:?}");

    // A parent's situation dated in the future.
    let p = problems(
        file.add_part(
            &parent(Parent::Mother, ParentSituation::Imprisoned, "2026-12-25"),
            "d",
            at("2026-11-28"),
        )
        .expect_err("future"),
    );
    assert!(
        p[0].path.starts_with("facts/") && p[0].path.ends_with("/versions/0/effective"),
        "{p:?}"
    );

    // A certificate grade out of range.
    let cert = Fact {
        effective: d("2026-01-01"),
        about: FactAbout::DisabilityCertificate {
            disability: DisabilityKind::Physical,
            grade: 5,
        },
    };
    let p = problems(
        file.add_part(&cert, "d", at("2026-11-28"))
            .expect_err("grade"),
    );
    assert!(
        p[0].path.ends_with("/grade") && p[0].message.contains("1 to 4"),
        "{p:?}"
    );

    assert_eq!(file.heads(), before, "nothing was written");
    assert!(file.view().expect("view").facts.is_empty());

    // The same bad values written behind the API's back (a crafted document) fail validation,
    // which is what the server runs on every merged file.
    let facts = file
        .doc_mut()
        .put_object(automerge::ROOT, "facts", automerge::ObjType::Map)
        .expect("put");
    let id = Uuid::new_v4().to_string();
    let entry = serde_json::json!({ "versions": [{
        "by": "d", "recorded_at": "2026-11-28T00:00:00Z", "effective": "2026-01-01",
        "fact": "disability_certificate", "disability": "physical", "grade": 0 }] });
    json::put(file.doc_mut(), &facts, id.as_str(), &entry).expect("put");
    let p = file.validate();
    assert_eq!(p.len(), 1, "{p:?}");
    assert_eq!(p[0].path, format!("facts/{id}/versions/0/grade"));
}

#[test]
fn corrections_append_versions_and_a_void_keeps_the_entry() {
    let mut file = ChildFile::load(UNASSESSED, [1; 16]).expect("load");
    let mut b = benefit(BenefitKind::TemporaryAssistance, "2026-10-01");
    b.status = BenefitStatus::Applied;
    b.applied_on = Some(d("2026-10-01"));
    b.granted_on = None;
    let id = file.add_part(&b, "d", at("2026-10-01")).expect("add");
    let mut granted = b.clone();
    granted.status = BenefitStatus::Granted;
    granted.granted_on = Some(d("2026-10-20"));
    file.correct_part(id, &granted, "d", at("2026-10-20"))
        .expect("correct");
    file.void_part("benefits", id, "录入错误", "d", at("2026-10-21"))
        .expect("void");
    let view = file.view().expect("view");
    let entry = &view.benefits[&id];
    assert_eq!(entry.versions.len(), 2);
    assert_eq!(entry.versions[0].value.status, BenefitStatus::Applied);
    assert_eq!(entry.current().value.status, BenefitStatus::Granted);
    assert!(entry.void.is_some());
    assert!(matches!(
        file.correct_part(id, &granted, "d", at("2026-10-22")),
        Err(FileError::Voided(_))
    ));
}

#[test]
fn the_facts_suggest_leaving_the_rolls_but_never_apply_it() {
    let mut file = ChildFile::load(UNASSESSED, [1; 16]).expect("load");
    let on = d("2026-11-28");
    // Born 2016-08-09, left-behind: both parents working away outside the county since 2025.
    for p in [Parent::Father, Parent::Mother] {
        file.add_part(
            &parent(p, ParentSituation::WorkingAway, "2025-01-01"),
            "d",
            at("2026-09-01"),
        )
        .expect("fact");
    }
    assert!(file.view().expect("view").suggestions(on).is_empty());
    // The mother comes home: the child no longer meets the definition.
    file.add_part(
        &parent(Parent::Mother, ParentSituation::AtHome, "2026-11-01"),
        "d",
        at("2026-11-02"),
    )
    .expect("fact");
    let view = file.view().expect("view");
    assert_eq!(view.suggestions(on), vec![Suggestion::NoLongerLeftBehind]);
    assert_eq!(
        view.suggestions(d("2026-10-31")),
        vec![],
        "the facts are dated"
    );
    // The categories are untouched: the child is still served until someone decides.
    assert_eq!(view.attributes_on(on).categories, vec!["left_behind"]);
    // At 16 the left-behind child has aged out.
    assert!(
        view.suggestions(d("2032-08-09"))
            .contains(&Suggestion::AgedOut)
    );
    assert!(
        !view
            .suggestions(d("2032-08-08"))
            .contains(&Suggestion::AgedOut)
    );
}

#[test]
fn a_week_without_a_parents_contact_in_entrusted_care_is_flagged() {
    let mut file = ChildFile::load(UNASSESSED, [1; 16]).expect("load");
    let arrangement = Care::Arrangement(CareArrangement {
        caregiver: "李秀兰".into(),
        relation: "外祖母".into(),
        phone: None,
        since: d("2026-09-01"),
        ended_on: None,
        agreement: Some(Agreement {
            signed_on: d("2026-09-01"),
            covers: "日常生活照料、安全监护、就学".into(),
        }),
        assessment: Some(CaregiverAssessment {
            on: d("2026-09-01"),
            capable: true,
            notes: String::new(),
        }),
    });
    file.add_part(&arrangement, "d", at("2026-09-01"))
        .expect("care");
    let contact = Care::ParentContact {
        date: d("2026-11-20"),
        parent: Parent::Mother,
        channel: Channel::Phone,
    };
    file.add_part(&contact, "d", at("2026-11-20"))
        .expect("contact");
    let view = file.view().expect("view");
    assert!(
        view.entrusted_care_lapsed(d("2026-09-10")),
        "no contact in the first week"
    );
    assert!(!view.entrusted_care_lapsed(d("2026-11-27")));
    assert!(view.entrusted_care_lapsed(d("2026-11-28")));
}

#[test]
fn an_overdue_plan_review_shows_in_the_due_list_as_its_own_kind() {
    let mut file = ChildFile::load(UNASSESSED, [1; 16]).expect("load");
    let id = file
        .add_part(&plan("2026-08-01", "2026-11-01"), "d", at("2026-09-02"))
        .expect("plan");
    let summary = file.view().expect("view").summary();
    let due: Vec<_> = plan_reviews_due(&summary, 7, d("2026-11-28")).collect();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].kind, PLAN_REVIEW);
    assert_eq!(due[0].days_overdue, 27);
    // Reviewed: a new version with the next date; nothing due any more.
    file.correct_part(id, &plan("2026-11-28", "2027-02-28"), "d", at("2026-11-28"))
        .expect("review");
    let summary = file.view().expect("view").summary();
    assert_eq!(plan_reviews_due(&summary, 7, d("2026-11-28")).count(), 0);
}

#[test]
fn the_police_entry_of_a_danger_report_comes_first_where_the_kind_requires_it() {
    let told = |party: Party| Notified {
        party: Some(party),
        whom: String::new(),
        at: at("2026-11-28"),
    };
    let mut danger = DangerDetails {
        found: vec![DangerKind::Other],
        notified: vec![told(Party::Supervisor), told(Party::Police)],
        outcome: None,
    };
    danger.police_first();
    assert_eq!(danger.notified[0].party, Some(Party::Police));
    let mut neglect = DangerDetails {
        found: vec![DangerKind::GuardianNeglect],
        notified: vec![told(Party::VillageCommittee), told(Party::Police)],
        outcome: None,
    };
    neglect.police_first();
    assert_eq!(
        neglect.notified[0].party,
        Some(Party::VillageCommittee),
        "neglect may go to the village first"
    );
}

#[derive(Debug, Clone)]
enum Edit {
    Fact(u8),
    Care(u8),
    Benefit(u8),
    Plan(u8),
    Referral(u8),
    Correct(usize),
    Void(usize),
}

fn any_edit() -> impl Strategy<Value = Edit> {
    prop_oneof![
        (0u8..8).prop_map(Edit::Fact),
        (0u8..3).prop_map(Edit::Care),
        (0u8..11).prop_map(Edit::Benefit),
        (0u8..4).prop_map(Edit::Plan),
        (0u8..5).prop_map(Edit::Referral),
        any::<usize>().prop_map(Edit::Correct),
        any::<usize>().prop_map(Edit::Void),
    ]
}

/// Applies an edit on a phone; returns the (collection, id) added, if any.
fn apply(
    file: &mut ChildFile,
    edit: &Edit,
    by: &str,
    added: &[(&'static str, Uuid)],
) -> Option<(&'static str, Uuid)> {
    let t = at("2026-11-01");
    let result = match edit {
        Edit::Fact(n) => file
            .add_part(
                &parent(
                    if n % 2 == 0 {
                        Parent::Father
                    } else {
                        Parent::Mother
                    },
                    ParentSituation::ALL[usize::from(*n) % ParentSituation::ALL.len()],
                    "2026-01-01",
                ),
                by,
                t,
            )
            .map(|id| ("facts", id)),
        Edit::Care(n) => file
            .add_part(
                &Care::ParentContact {
                    date: d("2026-10-01") + chrono::Duration::days(i64::from(*n)),
                    parent: Parent::Father,
                    channel: Channel::Message,
                },
                by,
                t,
            )
            .map(|id| ("care", id)),
        Edit::Benefit(n) => file
            .add_part(
                &benefit(BenefitKind::ALL[usize::from(*n) % 10], "2026-10-01"),
                by,
                t,
            )
            .map(|id| ("benefits", id)),
        Edit::Plan(n) => file
            .add_part(&plan("2026-10-01", &format!("2027-0{}-01", n + 1)), by, t)
            .map(|id| ("plans", id)),
        Edit::Referral(n) => file
            .add_part(
                &referral(ReferralTarget::ALL[usize::from(*n)], "2026-10-01"),
                by,
                t,
            )
            .map(|id| ("referrals", id)),
        Edit::Correct(i) if !added.is_empty() => {
            let (collection, id) = added[i % added.len()];
            let r = match collection {
                "benefits" => {
                    file.correct_part(id, &benefit(BenefitKind::MedicalAid, "2026-10-02"), by, t)
                }
                "plans" => file.correct_part(id, &plan("2026-10-02", "2027-06-01"), by, t),
                _ => Ok(()),
            };
            // A voided entry cannot be corrected: that is the one refusal allowed here.
            assert!(matches!(r, Ok(()) | Err(FileError::Voided(_))), "{r:?}");
            return None;
        }
        Edit::Void(i) if !added.is_empty() => {
            let (collection, id) = added[i % added.len()];
            let r = file.void_part(collection, id, "重复", by, t);
            assert!(matches!(r, Ok(()) | Err(FileError::Voided(_))), "{r:?}");
            return None;
        }
        Edit::Correct(_) | Edit::Void(_) => return None,
    };
    Some(result.expect("a valid edit is accepted"))
}

fn count(view: &ChildFileView) -> usize {
    view.facts.len()
        + view.care.len()
        + view.benefits.len()
        + view.plans.len()
        + view.referrals.len()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Three phones edit every new collection offline, then sync pairwise in any order: all
    /// converge to the same file, and every entry any of them added is in it.
    #[test]
    fn concurrent_offline_edits_to_every_new_collection_converge_and_none_is_lost(
        edits in proptest::collection::vec(proptest::collection::vec(any_edit(), 0..10), 3),
        order in Just(vec![(0usize, 1usize), (1, 2), (2, 0), (0, 1), (1, 2)]).prop_shuffle(),
    ) {
        let mut phones: Vec<ChildFile> = (0..3u8)
            .map(|i| ChildFile::load(RICH, [i + 10; 16]).expect("load"))
            .collect();
        let mut added = Vec::new();
        for (phone, edits) in phones.iter_mut().zip(&edits) {
            let mut mine = Vec::new();
            for edit in edits {
                if let Some(a) = apply(phone, edit, "d", &mine) {
                    mine.push(a);
                }
            }
            added.extend(mine);
        }
        // Every pair meets at least once more, so all three end with everything.
        for (a, b) in order.iter().chain(&[(0, 1), (1, 2), (0, 2), (0, 1)]) {
            let (x, y) = (*a.min(b), *a.max(b));
            let (left, right) = phones.split_at_mut(y);
            left[x].doc_mut().merge(right[0].doc_mut()).expect("merge");
            right[0].doc_mut().merge(left[x].doc_mut()).expect("merge");
        }
        let views: Vec<ChildFileView> = phones.iter().map(|p| p.view().expect("valid")).collect();
        prop_assert_eq!(&views[0], &views[1]);
        prop_assert_eq!(&views[1], &views[2]);
        prop_assert_eq!(count(&views[0]), added.len());
        for (collection, id) in &added {
            let present = match *collection {
                "facts" => views[0].facts.contains_key(id),
                "care" => views[0].care.contains_key(id),
                "benefits" => views[0].benefits.contains_key(id),
                "plans" => views[0].plans.contains_key(id),
                _ => views[0].referrals.contains_key(id),
            };
            prop_assert!(present, "{} {} lost", collection, id);
        }
        prop_assert_eq!(views[0].records.len(), 53);
    }
}
