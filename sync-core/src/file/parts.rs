//! The parts of the child file that schema version 2 added: the facts eligibility rests on,
//! entrusted care, benefits, help plans and referrals (docs/FILE.md has the table).
//!
//! Each part is a collection keyed by UUID, as records are: two phones adding offline merge
//! without conflict. An entry keeps every version, oldest first; a correction appends one and
//! a withdrawal voids the entry with a reason. Nothing is erased.

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use uuid::Uuid;

use super::model::{Channel, ChildFileView, Void};
use super::validate::Problem;
use crate::vocab::{
    BenefitKind, BenefitStatus, Category, DifficultySubtype, DisabilityKind, Parent,
    ParentSituation, Party, ReferralStatus, ReferralTarget, Residence, SchoolStatus, WorkPlace,
};

/// An entry of a version-2 collection with all its versions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound(deserialize = "T: DeserializeOwned"))]
pub struct Part<T> {
    /// Every version, oldest first; never empty in a valid file.
    pub versions: Vec<Stamped<T>>,
    /// Set when the entry was withdrawn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub void: Option<Void>,
}

impl<T> Part<T> {
    /// The version in force: the last one appended.
    pub fn current(&self) -> &Stamped<T> {
        // Validation guarantees at least one version before a view is built.
        &self.versions[self.versions.len() - 1]
    }

    /// Whether the entry stands (it was not withdrawn).
    pub fn is_live(&self) -> bool {
        self.void.is_none()
    }
}

/// One version of an entry: what it says, who wrote it and when.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stamped<T> {
    /// Who wrote this version.
    pub by: String,
    /// When it was written down.
    pub recorded_at: DateTime<Utc>,
    /// What it says.
    #[serde(flatten)]
    pub value: T,
}

/// A value that lives in one of version 2's collections.
pub trait PartValue: Serialize + DeserializeOwned {
    /// The collection's key in the document.
    const COLLECTION: &'static str;

    /// Checks one version, adding each problem with a path under `path`.
    fn check(&self, path: &str, recorded_at: DateTime<Utc>, problems: &mut Vec<Problem>);
}

/// The version-2 collections, in the order the file lists them.
pub const COLLECTIONS: [&str; 5] = ["facts", "care", "benefits", "plans", "referrals"];

fn fail(problems: &mut Vec<Problem>, path: String, message: impl Into<String>) {
    problems.push(Problem {
        path,
        message: message.into(),
    });
}

/// A date may not lie after the day it was written down (the phone's date in China is at most a
/// day ahead of the UTC date of `recorded_at`).
fn not_future(
    problems: &mut Vec<Problem>,
    path: String,
    date: NaiveDate,
    recorded_at: DateTime<Utc>,
) {
    if date > recorded_at.date_naive() + Duration::days(1) {
        fail(
            problems,
            path,
            format!(
                "{date} is after the day it was recorded ({})",
                recorded_at.date_naive()
            ),
        );
    }
}

fn not_blank(problems: &mut Vec<Problem>, path: String, text: &str) {
    if text.trim().is_empty() {
        fail(problems, path, "must not be empty");
    }
}

// ---------------------------------------------------------------------------------------------
// Facts

/// A fact eligibility rests on, from the date it took effect (like the schedule attributes).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fact {
    /// The date the fact took effect (for a parent working away: since when).
    pub effective: NaiveDate,
    /// What the fact is.
    #[serde(flatten)]
    pub about: FactAbout,
}

/// The kinds of fact.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "fact", rename_all = "snake_case")]
pub enum FactAbout {
    /// A parent's situation.
    Parent {
        /// Which parent.
        parent: Parent,
        /// Their situation.
        situation: ParentSituation,
        /// Where, for a parent working away.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        place: Option<WorkPlace>,
    },
    /// Rural or urban residence.
    Residence {
        /// Which.
        residence: Residence,
    },
    /// A subtype of difficulty starts (`present`) or stops applying.
    Difficulty {
        /// Which subtype.
        subtype: DifficultySubtype,
        /// `true` from the date on, `false` when it stops.
        present: bool,
    },
    /// The disability certificate (残疾人证).
    DisabilityCertificate {
        /// The kind of disability.
        disability: DisabilityKind,
        /// 残疾等级: 1 (一级, the most severe) to 4.
        grade: u8,
    },
    /// School enrolment (学籍).
    Schooling {
        /// The school.
        school: String,
        /// The grade or class (三年级).
        grade: String,
        /// Enrolled, dropped out or returned.
        status: SchoolStatus,
    },
}

impl PartValue for Fact {
    const COLLECTION: &'static str = "facts";

    fn check(&self, path: &str, recorded_at: DateTime<Utc>, problems: &mut Vec<Problem>) {
        not_future(
            problems,
            format!("{path}/effective"),
            self.effective,
            recorded_at,
        );
        match &self.about {
            FactAbout::Parent {
                situation, place, ..
            } => {
                if *situation == ParentSituation::WorkingAway && place.is_none() {
                    fail(
                        problems,
                        format!("{path}/place"),
                        "a parent working away needs where (in_county, in_province or outside_province)",
                    );
                }
            }
            FactAbout::DisabilityCertificate { grade, .. } => {
                if !(1..=4).contains(grade) {
                    fail(
                        problems,
                        format!("{path}/grade"),
                        format!("grade {grade} is out of range: 1 to 4"),
                    );
                }
            }
            FactAbout::Schooling { school, .. } => {
                not_blank(problems, format!("{path}/school"), school)
            }
            FactAbout::Residence { .. } | FactAbout::Difficulty { .. } => {}
        }
    }
}

/// What one key of the facts says on a date, with the date it took effect.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Dated<T> {
    /// The value.
    pub value: T,
    /// Since when.
    pub since: NaiveDate,
}

/// A parent's situation in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ParentFacts {
    /// The situation.
    pub situation: ParentSituation,
    /// Where, when working away.
    pub place: Option<WorkPlace>,
}

/// The facts in force on a date: for each key, the latest entry effective on or before it
/// (ties by recording time, then id, so every replica agrees).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CurrentFacts {
    /// Each parent's situation, when recorded.
    pub parents: BTreeMap<Parent, Dated<ParentFacts>>,
    /// Rural or urban.
    pub residence: Option<Dated<Residence>>,
    /// The difficulty subtypes that apply.
    pub difficulties: Vec<DifficultySubtype>,
    /// The disability certificate: kind and grade.
    pub disability: Option<Dated<(DisabilityKind, u8)>>,
    /// School, grade and status.
    pub schooling: Option<Dated<(String, String, SchoolStatus)>>,
}

/// Why a child may no longer belong on the rolls (应退未退, seed 002 item 18). Shown to the
/// director and the county, never applied by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Suggestion {
    /// A left-behind child turned 16, or any child 18.
    AgedOut,
    /// The parents' recorded situations no longer make the child left-behind.
    NoLongerLeftBehind,
}

impl Suggestion {
    /// The stable key.
    pub fn key(self) -> &'static str {
        match self {
            Suggestion::AgedOut => "aged_out",
            Suggestion::NoLongerLeftBehind => "no_longer_left_behind",
        }
    }

    /// The Chinese label.
    pub fn label_zh(self) -> &'static str {
        match self {
            Suggestion::AgedOut => "超龄应退",
            Suggestion::NoLongerLeftBehind => "不再符合留守儿童认定条件",
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Entrusted care

/// An entry about entrusted care (委托照护, seed 002 item 5, seed 003, seed 004 item 5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "entry", rename_all = "snake_case")]
pub enum Care {
    /// Who cares for the child, under what written agreement, and how capable they are.
    Arrangement(CareArrangement),
    /// A parent's contact with the child (at least weekly, seed 003).
    ParentContact {
        /// The day of the contact.
        date: NaiveDate,
        /// Which parent.
        parent: Parent,
        /// How.
        channel: Channel,
    },
    /// The caregiver falls short and the director takes it further.
    Escalation {
        /// The day.
        date: NaiveDate,
        /// The village committee or the supervisor.
        to: Party,
        /// Why.
        reason: String,
    },
}

/// An entrusted caregiver and the written care agreement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CareArrangement {
    /// The caregiver's name.
    pub caregiver: String,
    /// Relation to the child.
    pub relation: String,
    /// Phone number, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// Since when they care for the child.
    pub since: NaiveDate,
    /// When the arrangement ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_on: Option<NaiveDate>,
    /// The written care agreement (书面照护协议, 两单两书).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agreement: Option<Agreement>,
    /// The director's assessment of the caregiver's capacity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assessment: Option<CaregiverAssessment>,
}

/// A written care agreement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Agreement {
    /// The day it was signed.
    pub signed_on: NaiveDate,
    /// What it covers (daily care, schooling, safety, contact with the parents...).
    pub covers: String,
}

/// The caregiver's capacity as assessed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CaregiverAssessment {
    /// The day of the assessment.
    pub on: NaiveDate,
    /// Whether the caregiver can care for the child.
    pub capable: bool,
    /// What was seen.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub notes: String,
}

impl PartValue for Care {
    const COLLECTION: &'static str = "care";

    fn check(&self, path: &str, recorded_at: DateTime<Utc>, problems: &mut Vec<Problem>) {
        match self {
            Care::Arrangement(a) => {
                not_blank(problems, format!("{path}/caregiver"), &a.caregiver);
                not_future(problems, format!("{path}/since"), a.since, recorded_at);
                if a.ended_on.is_some_and(|e| e < a.since) {
                    fail(problems, format!("{path}/ended_on"), "is before since");
                }
                if let Some(agreement) = &a.agreement {
                    not_future(
                        problems,
                        format!("{path}/agreement/signed_on"),
                        agreement.signed_on,
                        recorded_at,
                    );
                    not_blank(
                        problems,
                        format!("{path}/agreement/covers"),
                        &agreement.covers,
                    );
                }
                if let Some(assessment) = &a.assessment {
                    not_future(
                        problems,
                        format!("{path}/assessment/on"),
                        assessment.on,
                        recorded_at,
                    );
                }
            }
            Care::ParentContact { date, .. } => {
                not_future(problems, format!("{path}/date"), *date, recorded_at)
            }
            Care::Escalation { date, to, reason } => {
                not_future(problems, format!("{path}/date"), *date, recorded_at);
                if !matches!(to, Party::VillageCommittee | Party::Supervisor) {
                    fail(
                        problems,
                        format!("{path}/to"),
                        "escalations go to village_committee or supervisor",
                    );
                }
                not_blank(problems, format!("{path}/reason"), reason);
            }
        }
    }
}

/// Parents' contact with a child in entrusted care must be at least weekly (seed 003).
pub const PARENT_CONTACT_DAYS: i64 = 7;

// ---------------------------------------------------------------------------------------------
// Benefits

/// A benefit applied for, granted or stopped, or a charity project applied for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Benefit {
    /// Which benefit.
    pub kind: BenefitKind,
    /// Where it stands.
    pub status: BenefitStatus,
    /// When it was applied for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied_on: Option<NaiveDate>,
    /// When it was granted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub granted_on: Option<NaiveDate>,
    /// When it stopped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stopped_on: Option<NaiveDate>,
    /// The amount in fen (分), monthly for allowances, once for one-off help.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amount_fen: Option<u64>,
    /// The charity project, for `charity_project`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// Free notes.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub notes: String,
}

impl PartValue for Benefit {
    const COLLECTION: &'static str = "benefits";

    fn check(&self, path: &str, recorded_at: DateTime<Utc>, problems: &mut Vec<Problem>) {
        for (key, date) in [
            ("applied_on", self.applied_on),
            ("granted_on", self.granted_on),
            ("stopped_on", self.stopped_on),
        ] {
            if let Some(date) = date {
                not_future(problems, format!("{path}/{key}"), date, recorded_at);
            }
        }
        let needed = match self.status {
            BenefitStatus::Applied => ("applied_on", self.applied_on),
            BenefitStatus::Granted => ("granted_on", self.granted_on),
            BenefitStatus::Stopped => ("stopped_on", self.stopped_on),
        };
        if needed.1.is_none() {
            fail(
                problems,
                format!("{path}/{}", needed.0),
                format!("a benefit {} needs its date", self.status),
            );
        }
        if self.kind == BenefitKind::CharityProject
            && self.project.as_deref().is_none_or(|p| p.trim().is_empty())
        {
            fail(
                problems,
                format!("{path}/project"),
                "a charity_project benefit names its project",
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Help plans

/// A help plan for a priority child (精准帮扶, "制定有针对性的帮扶措施"). A review appends a
/// version with the next review date.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HelpPlan {
    /// What the child needs.
    pub needs: String,
    /// What will be done.
    pub measures: String,
    /// Who is responsible.
    pub responsible: String,
    /// The day the plan was made or last reviewed.
    pub made_on: NaiveDate,
    /// The day it is to be reviewed.
    pub review_on: NaiveDate,
    /// The day the plan closed; a closed plan has no review due.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub closed_on: Option<NaiveDate>,
}

impl PartValue for HelpPlan {
    const COLLECTION: &'static str = "plans";

    fn check(&self, path: &str, recorded_at: DateTime<Utc>, problems: &mut Vec<Problem>) {
        not_blank(problems, format!("{path}/needs"), &self.needs);
        not_blank(problems, format!("{path}/measures"), &self.measures);
        not_blank(problems, format!("{path}/responsible"), &self.responsible);
        not_future(
            problems,
            format!("{path}/made_on"),
            self.made_on,
            recorded_at,
        );
        if self.review_on <= self.made_on {
            fail(
                problems,
                format!("{path}/review_on"),
                "must be after made_on",
            );
        }
    }
}

/// A help plan's next review, for the due list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanReview {
    /// The plan.
    pub plan: Uuid,
    /// When it was made or last reviewed.
    pub made_on: NaiveDate,
    /// When the next review is due.
    pub review_on: NaiveDate,
}

// ---------------------------------------------------------------------------------------------
// Referrals

/// A referral with its follow-up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Referral {
    /// To whom.
    pub to: ReferralTarget,
    /// The day of the referral.
    pub on: NaiveDate,
    /// Where it stands.
    pub status: ReferralStatus,
    /// What came of it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
    /// Free notes.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub notes: String,
}

impl PartValue for Referral {
    const COLLECTION: &'static str = "referrals";

    fn check(&self, path: &str, recorded_at: DateTime<Utc>, problems: &mut Vec<Problem>) {
        not_future(problems, format!("{path}/on"), self.on, recorded_at);
        if self.status == ReferralStatus::Closed
            && self.outcome.as_deref().is_none_or(|o| o.trim().is_empty())
        {
            fail(
                problems,
                format!("{path}/outcome"),
                "a closed referral records its outcome",
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Validation of a tree

/// The vocabulary fields of each collection, checked one by one first so that an unknown key
/// names its field (`benefits/<id>/versions/0/kind`), not only its entry.
fn vocabulary_fields(collection: &str, v: &serde_json::Value) -> Vec<(&'static str, String)> {
    use serde_json::Value;
    let mut out = Vec::new();
    let mut key = |field: &'static str, check: fn(&str) -> Result<(), String>| match v.get(field) {
        Some(Value::String(s)) => {
            if let Err(e) = check(s) {
                out.push((field, e));
            }
        }
        Some(Value::Null) | None => {}
        Some(_) => out.push((field, "must be a string".into())),
    };
    fn is<T: std::str::FromStr<Err = crate::vocab::UnknownKey>>(s: &str) -> Result<(), String> {
        s.parse::<T>().map(|_| ()).map_err(|e| e.to_string())
    }
    match collection {
        "facts" => {
            key("parent", is::<Parent>);
            key("situation", is::<ParentSituation>);
            key("place", is::<WorkPlace>);
            key("residence", is::<Residence>);
            key("subtype", is::<DifficultySubtype>);
            key("disability", is::<DisabilityKind>);
            key("status", is::<SchoolStatus>);
        }
        "care" => {
            key("parent", is::<Parent>);
            key("to", is::<Party>);
        }
        "benefits" => {
            key("kind", is::<BenefitKind>);
            key("status", is::<BenefitStatus>);
        }
        "referrals" => {
            key("to", is::<ReferralTarget>);
            key("status", is::<ReferralStatus>);
        }
        _ => {}
    }
    out
}

/// Checks one version of an entry of `T`'s collection, given as JSON.
pub(super) fn check_version<T: PartValue>(path: &str, v: &serde_json::Value) -> Vec<Problem> {
    let mut problems = Vec::new();
    for (field, message) in vocabulary_fields(T::COLLECTION, v) {
        fail(&mut problems, format!("{path}/{field}"), message);
    }
    if !problems.is_empty() {
        return problems;
    }
    match Stamped::<T>::deserialize(v) {
        Ok(s) => s.value.check(path, s.recorded_at, &mut problems),
        Err(e) => {
            let message = e.to_string();
            // serde names a missing field in its message: put it in the path as well.
            let path = match message.strip_prefix("missing field `") {
                Some(rest) => format!("{path}/{}", rest.split('`').next().unwrap_or_default()),
                None => path.to_owned(),
            };
            fail(&mut problems, path, message);
        }
    }
    problems
}

/// Checks every version-2 collection of a file's tree.
pub(super) fn check_tree(tree: &serde_json::Value, problems: &mut Vec<Problem>) {
    for collection in COLLECTIONS {
        match collection {
            "facts" => check_collection::<Fact>(tree, problems),
            "care" => check_collection::<Care>(tree, problems),
            "benefits" => check_collection::<Benefit>(tree, problems),
            "plans" => check_collection::<HelpPlan>(tree, problems),
            _ => check_collection::<Referral>(tree, problems),
        }
    }
}

fn check_collection<T: PartValue>(tree: &serde_json::Value, problems: &mut Vec<Problem>) {
    use serde_json::Value;
    let key = T::COLLECTION;
    let entries = match tree.get(key) {
        None => return,
        Some(Value::Object(map)) => map,
        Some(_) => return fail(problems, key.into(), "must be a map"),
    };
    for (id, entry) in entries {
        let path = format!("{key}/{id}");
        if Uuid::parse_str(id).is_err() {
            fail(problems, path, "key is not a UUID");
            continue;
        }
        match entry.get("versions") {
            Some(Value::Array(versions)) if !versions.is_empty() => {
                for (i, v) in versions.iter().enumerate() {
                    problems.extend(check_version::<T>(&format!("{path}/versions/{i}"), v));
                }
            }
            _ => fail(
                problems,
                format!("{path}/versions"),
                "must be a non-empty list",
            ),
        }
        if let Some(void) = entry.get("void")
            && let Err(e) = Void::deserialize(void)
        {
            fail(problems, format!("{path}/void"), e.to_string());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// What follows from the parts

fn live<T>(parts: &BTreeMap<Uuid, Part<T>>) -> impl Iterator<Item = (&Uuid, &Stamped<T>)> {
    parts
        .iter()
        .filter(|(_, p)| p.is_live())
        .map(|(id, p)| (id, p.current()))
}

impl ChildFileView {
    /// The facts in force on `on`.
    pub fn facts_on(&self, on: NaiveDate) -> CurrentFacts {
        // For each key, the latest (effective, recorded_at, id) on or before `on`.
        let mut latest: BTreeMap<String, (NaiveDate, DateTime<Utc>, &Uuid, &Fact)> =
            BTreeMap::new();
        for (id, s) in live(&self.facts).filter(|(_, s)| s.value.effective <= on) {
            let key = match &s.value.about {
                FactAbout::Parent { parent, .. } => format!("parent/{parent}"),
                FactAbout::Residence { .. } => "residence".into(),
                FactAbout::Difficulty { subtype, .. } => format!("difficulty/{subtype}"),
                FactAbout::DisabilityCertificate { .. } => "disability".into(),
                FactAbout::Schooling { .. } => "schooling".into(),
            };
            let candidate = (s.value.effective, s.recorded_at, id, &s.value);
            if latest
                .get(&key)
                .is_none_or(|old| (old.0, old.1, old.2) < (candidate.0, candidate.1, candidate.2))
            {
                latest.insert(key, candidate);
            }
        }
        let mut facts = CurrentFacts::default();
        for (since, _, _, fact) in latest.into_values() {
            match &fact.about {
                FactAbout::Parent {
                    parent,
                    situation,
                    place,
                } => {
                    facts.parents.insert(
                        *parent,
                        Dated {
                            value: ParentFacts {
                                situation: *situation,
                                place: *place,
                            },
                            since,
                        },
                    );
                }
                FactAbout::Residence { residence } => {
                    facts.residence = Some(Dated {
                        value: *residence,
                        since,
                    })
                }
                FactAbout::Difficulty { subtype, present } => {
                    if *present {
                        facts.difficulties.push(*subtype);
                    }
                }
                FactAbout::DisabilityCertificate { disability, grade } => {
                    facts.disability = Some(Dated {
                        value: (*disability, *grade),
                        since,
                    })
                }
                FactAbout::Schooling {
                    school,
                    grade,
                    status,
                } => {
                    facts.schooling = Some(Dated {
                        value: (school.clone(), grade.clone(), *status),
                        since,
                    })
                }
            }
        }
        facts.difficulties.sort();
        facts
    }

    /// What the recorded facts suggest about the child's place on the rolls on `on` (应退未退).
    ///
    /// - Aged out: a left-behind child from their 16th birthday, any child from their 18th.
    /// - No longer left-behind: both parents' situations are recorded and neither "both away"
    ///   nor "one away, the other unable to act as guardian" holds (seed 002 section 二: away
    ///   means outside the county for 6 months in a row). Nothing is suggested while a parent's
    ///   situation is unknown.
    pub fn suggestions(&self, on: NaiveDate) -> Vec<Suggestion> {
        let categories = self.attributes_on(on).categories;
        let left_behind = categories.iter().any(|c| c == Category::LeftBehind.key());
        let age = age_on(self.profile.birth_date, on);
        let mut out = Vec::new();
        if (left_behind && age >= 16) || (!categories.is_empty() && age >= 18) {
            out.push(Suggestion::AgedOut);
        }
        if left_behind && age < 16 {
            let facts = self.facts_on(on);
            if let (Some(f), Some(m)) = (
                facts.parents.get(&Parent::Father),
                facts.parents.get(&Parent::Mother),
            ) {
                let away = |p: &Dated<ParentFacts>| {
                    p.value.situation == ParentSituation::WorkingAway
                        && p.value.place.is_some_and(|w| w != WorkPlace::InCounty)
                        && p.since
                            .checked_add_months(chrono::Months::new(6))
                            .is_some_and(|six| six <= on)
                };
                let unable = |p: &Dated<ParentFacts>| {
                    !matches!(
                        p.value.situation,
                        ParentSituation::WorkingAway | ParentSituation::AtHome
                    )
                };
                let qualifies =
                    (away(f) && away(m)) || (away(f) && unable(m)) || (away(m) && unable(f));
                if !qualifies {
                    out.push(Suggestion::NoLongerLeftBehind);
                }
            }
        }
        out
    }

    /// Whether a child in entrusted care on `on` has gone more than a week without a contact
    /// from a parent (seed 003: 每周不少于1次). The week counts from the last contact, or from
    /// the start of the arrangement when there has been none.
    pub fn entrusted_care_lapsed(&self, on: NaiveDate) -> bool {
        self.parent_contact_lapses_on(on)
            .is_some_and(|lapses| lapses <= on)
    }

    /// For a child in entrusted care on `on`: the first day without a parent's contact in the
    /// past week, counted from the latest contact on or before `on` (or the arrangement's start).
    /// `None` when no arrangement stands on `on`.
    pub fn parent_contact_lapses_on(&self, on: NaiveDate) -> Option<NaiveDate> {
        let mut start = None;
        let mut last_contact = None;
        for (_, s) in live(&self.care) {
            match &s.value {
                Care::Arrangement(a) if a.since <= on && a.ended_on.is_none_or(|e| e > on) => {
                    start = start.max(Some(a.since));
                }
                Care::ParentContact { date, .. } if *date <= on => {
                    last_contact = last_contact.max(Some(*date));
                }
                _ => {}
            }
        }
        let start = start?;
        let from = last_contact.map_or(start, |c| c.max(start));
        from.checked_add_signed(Duration::days(PARENT_CONTACT_DAYS + 1))
    }

    /// The next review of every open help plan.
    pub fn plan_reviews(&self) -> Vec<PlanReview> {
        live(&self.plans)
            .filter(|(_, s)| s.value.closed_on.is_none())
            .map(|(id, s)| PlanReview {
                plan: *id,
                made_on: s.value.made_on,
                review_on: s.value.review_on,
            })
            .collect()
    }

    /// The school status in force on `on`, if recorded.
    pub fn school_status(&self, on: NaiveDate) -> Option<SchoolStatus> {
        self.facts_on(on).schooling.map(|s| s.value.2)
    }
}

/// Whole years of age on `on`.
fn age_on(birth: NaiveDate, on: NaiveDate) -> i32 {
    let mut age = on.year() - birth.year();
    if (on.month(), on.day()) < (birth.month(), birth.day()) {
        age -= 1;
    }
    age
}
