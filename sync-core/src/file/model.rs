//! The typed contents of a child file. Field names here are the keys stored in documents and
//! shown by the read APIs: renaming one is a schema change.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use uuid::Uuid;

use super::parts::{Benefit, Care, Fact, HelpPlan, Part, Referral};
use crate::vocab::{DangerKind, Guardianship, Party, RecordKind, Sex};

/// The id of a child file, a random UUID minted on the phone that registers the child.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ChildId(pub Uuid);

impl ChildId {
    /// A fresh random id.
    pub fn new() -> Self {
        ChildId(Uuid::new_v4())
    }

    /// The 16 bytes used on the wire.
    pub fn as_bytes(&self) -> &[u8; 16] {
        self.0.as_bytes()
    }
}

impl Default for ChildId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for ChildId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for ChildId {
    type Err = uuid::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(ChildId)
    }
}

/// Identity and basic information (基本信息).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Profile {
    /// Full name.
    pub name: String,
    /// Sex.
    pub sex: Sex,
    /// Date of birth.
    pub birth_date: NaiveDate,
    /// Resident identity card number, when the child has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id_number: Option<String>,
    /// Place of household registration (户籍地).
    pub hukou_place: String,
    /// Where the child lives.
    pub address: String,
    /// The 12-digit statistical code of the village or community that serves the child.
    pub village_code: String,
    /// The date the child was registered for service: the schedule starts here.
    pub registered_on: NaiveDate,
}

/// How a person stands to the child.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PersonRole {
    /// A parent or other legal guardian (监护人).
    Guardian,
    /// Someone the parents entrusted with day-to-day care (委托照护人).
    EntrustedCaregiver,
}

/// A guardian or entrusted caregiver with contact details.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Person {
    /// Guardian or entrusted caregiver.
    pub role: PersonRole,
    /// Full name.
    pub name: String,
    /// Relation to the child (father, grandmother, ...).
    pub relation: String,
    /// Phone number, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// Set when this person no longer holds the role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub void: Option<Void>,
}

/// Which schedule-driving attribute an assertion is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttrKind {
    /// A category of service (`left_behind`, ...).
    Category,
    /// The guardianship level (`good`, `average`, `poor`).
    Guardianship,
    /// A risk flag (`poor_family`, ...).
    RiskFlag,
}

/// "From `effective`, the child has (or no longer has) this attribute value."
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Assertion {
    /// The attribute.
    pub attr: AttrKind,
    /// The value's vocabulary key. Categories and risk flags may also be keys that a rule set
    /// adds (a foster-care programme, say).
    pub value: String,
    /// `true` when the value starts to apply, `false` when it stops.
    pub present: bool,
    /// The date the value took effect.
    pub effective: NaiveDate,
    /// When it was recorded.
    pub recorded_at: DateTime<Utc>,
    /// Who recorded it.
    pub by: String,
}

/// The attributes in force on a date.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CurrentAttributes {
    /// Category keys, sorted.
    pub categories: Vec<String>,
    /// The guardianship level, if assessed.
    pub guardianship: Option<Guardianship>,
    /// Risk flag keys, sorted.
    pub risk_flags: Vec<String>,
}

/// How a contact was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// A phone call.
    Phone,
    /// A text or chat message.
    Message,
    /// Meeting in person outside the home.
    Meeting,
}

/// The four things a home visit looks at (seed 002 item 8).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Findings {
    /// 生活保障.
    pub living_security: String,
    /// 家庭监护.
    pub family_guardianship: String,
    /// 就医就学.
    pub medical_schooling: String,
    /// 关爱活动.
    pub care_activities: String,
}

/// Where a record was made.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Location {
    /// Latitude, degrees.
    pub lat: f64,
    /// Longitude, degrees.
    pub lon: f64,
}

/// A problem found and, once found, its solution (发现问题和解决方案).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ProblemDetails {
    /// What the problem is.
    pub description: String,
    /// What was done about it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub solution: Option<String>,
    /// When it was solved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub solved_on: Option<NaiveDate>,
}

/// Someone told of a danger.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Notified {
    /// Which party: police, supervisor, civil affairs, village committee, school, other.
    /// Absent in records written before it was asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub party: Option<Party>,
    /// Who, in words (the station, the person).
    #[serde(default)]
    pub whom: String,
    /// When they were told.
    pub at: DateTime<Utc>,
}

/// A danger found on a visit (强制报告).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DangerDetails {
    /// What was found; at least one.
    pub found: Vec<DangerKind>,
    /// Who was told, and when.
    #[serde(default)]
    pub notified: Vec<Notified>,
    /// What came of it, once known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outcome: Option<String>,
}

impl DangerDetails {
    /// Whether what was found must be reported to the police and no police report is recorded
    /// (seed 002 item 8).
    pub fn police_report_missing(&self) -> bool {
        self.found.iter().any(|k| k.requires_police())
            && !self.notified.iter().any(|n| n.party == Some(Party::Police))
    }

    /// Puts the police first among those told when what was found requires the police
    /// (seed 002 item 8: "第一时间向公安机关报告"); the others keep their order.
    pub fn police_first(&mut self) {
        if self.found.iter().any(|k| k.requires_police()) {
            self.notified
                .sort_by_key(|n| n.party != Some(Party::Police));
        }
    }
}

/// One version of a record. The fields a kind needs are checked by validation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordVersion {
    /// The day it happened (local date).
    pub date: NaiveDate,
    /// Who made the record.
    pub by: String,
    /// When it was written down.
    pub recorded_at: DateTime<Utc>,
    /// For contacts: how.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channel: Option<Channel>,
    /// For home visits: the four findings.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub findings: Option<Findings>,
    /// For work-log and assistance entries: what was done.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<String>,
    /// For problems.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub problem: Option<ProblemDetails>,
    /// For danger reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub danger: Option<DangerDetails>,
    /// Free notes.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub notes: String,
    /// Where it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    /// Photos, by the lowercase hex SHA-256 of the stored JPEG.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub photos: Vec<String>,
}

impl RecordVersion {
    fn bare(date: NaiveDate, by: &str, recorded_at: DateTime<Utc>) -> Self {
        RecordVersion {
            date,
            by: by.to_owned(),
            recorded_at,
            channel: None,
            findings: None,
            summary: None,
            problem: None,
            danger: None,
            notes: String::new(),
            location: None,
            photos: Vec::new(),
        }
    }

    /// A home visit with its findings.
    pub fn home_visit(
        date: NaiveDate,
        by: &str,
        recorded_at: DateTime<Utc>,
        findings: Findings,
    ) -> Self {
        RecordVersion {
            findings: Some(findings),
            ..Self::bare(date, by, recorded_at)
        }
    }

    /// A contact by phone, message or meeting.
    pub fn contact(
        date: NaiveDate,
        by: &str,
        recorded_at: DateTime<Utc>,
        channel: Channel,
    ) -> Self {
        RecordVersion {
            channel: Some(channel),
            ..Self::bare(date, by, recorded_at)
        }
    }

    /// A work-log or assistance entry.
    pub fn summary(date: NaiveDate, by: &str, recorded_at: DateTime<Utc>, summary: &str) -> Self {
        RecordVersion {
            summary: Some(summary.to_owned()),
            ..Self::bare(date, by, recorded_at)
        }
    }

    /// A problem found.
    pub fn problem(
        date: NaiveDate,
        by: &str,
        recorded_at: DateTime<Utc>,
        problem: ProblemDetails,
    ) -> Self {
        RecordVersion {
            problem: Some(problem),
            ..Self::bare(date, by, recorded_at)
        }
    }

    /// A danger found and reported.
    pub fn danger(
        date: NaiveDate,
        by: &str,
        recorded_at: DateTime<Utc>,
        danger: DangerDetails,
    ) -> Self {
        RecordVersion {
            danger: Some(danger),
            ..Self::bare(date, by, recorded_at)
        }
    }

    /// Adds notes.
    pub fn with_notes(mut self, notes: &str) -> Self {
        self.notes = notes.to_owned();
        self
    }
}

/// Why and by whom something was withdrawn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Void {
    /// Why.
    pub reason: String,
    /// Who.
    pub by: String,
    /// When.
    pub at: DateTime<Utc>,
}

/// A record with all its versions.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// What kind of record.
    pub kind: RecordKind,
    /// Every version, oldest first; never empty in a valid file.
    pub versions: Vec<RecordVersion>,
    /// Set when the record was withdrawn.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub void: Option<Void>,
}

impl Record {
    /// The version in force: the last one appended. Concurrent corrections are both kept, in
    /// the order Automerge gives every replica.
    pub fn current(&self) -> &RecordVersion {
        // Validation guarantees at least one version before a view is built.
        &self.versions[self.versions.len() - 1]
    }
}

/// A whole child file as typed values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChildFileView {
    /// The oldest schema version that reads the file (see [`super::COMPATIBLE_SCHEMA`]).
    pub schema: u64,
    /// The schema version whose parts the file may hold; 1 when absent.
    #[serde(default = "version_1")]
    pub version: u64,
    /// The file's id.
    pub id: ChildId,
    /// Identity and basic information.
    pub profile: Profile,
    /// Guardians and caregivers.
    #[serde(default)]
    pub people: BTreeMap<Uuid, Person>,
    /// Attribute assertions.
    #[serde(default)]
    pub attributes: BTreeMap<Uuid, Assertion>,
    /// Records.
    #[serde(default)]
    pub records: BTreeMap<Uuid, Record>,
    /// Facts eligibility rests on (version 2).
    #[serde(default)]
    pub facts: BTreeMap<Uuid, Part<Fact>>,
    /// Entrusted care: arrangements, parents' contacts, escalations (version 2).
    #[serde(default)]
    pub care: BTreeMap<Uuid, Part<Care>>,
    /// Benefits and charity projects (version 2).
    #[serde(default)]
    pub benefits: BTreeMap<Uuid, Part<Benefit>>,
    /// Help plans (version 2).
    #[serde(default)]
    pub plans: BTreeMap<Uuid, Part<HelpPlan>>,
    /// Referrals (version 2).
    #[serde(default)]
    pub referrals: BTreeMap<Uuid, Part<Referral>>,
}

fn version_1() -> u64 {
    1
}
