//! The records the surface passes by value, and their conversions from the phone's types.

use homevisit_sync_core::file::{ChildFileView, FileSummary};
use homevisit_sync_core::rules::DueEntry;
use homevisit_sync_core::sync::alerts::Alert;
use homevisit_sync_core::vocab::RecordKind;

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The date the attributes shown are taken on: today where the directors work, the date an
/// assessment made now is dated. (UTC hid an assessment made after midnight in China until
/// 08:00, when UTC's date caught up.)
fn today() -> chrono::NaiveDate {
    homevisit_phone::phone::china_today()
}

/// Who logged in.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Account {
    /// The username.
    pub username: String,
    /// `director`, `supervisor`, `county` or `admin`.
    pub role: String,
    /// The region codes (prefixes of 12-digit village codes) the account may see and write.
    pub scope: Vec<String>,
    /// This phone's installation id, as the server registered it.
    pub device_id: String,
}

/// How a sync went.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SyncReport {
    /// Files whose changes went up.
    pub files_sent: u32,
    /// Files whose changes came down.
    pub files_received: u32,
    /// HTTP round trips of the sync (photo uploads not counted).
    pub round_trips: u32,
    /// Of those, the pages of a long sync (a new phone's first) before the last.
    pub pages: u32,
    /// Photos delivered from the outbox.
    pub photos_uploaded: u32,
    /// The server revoked this device: its data is wiped; delete the key from the keystore.
    pub wiped: bool,
}

impl From<homevisit_phone::SyncReport> for SyncReport {
    fn from(r: homevisit_phone::SyncReport) -> Self {
        SyncReport {
            files_sent: count(r.files_sent),
            files_received: count(r.files_received),
            round_trips: count(r.round_trips),
            pages: count(r.pages),
            photos_uploaded: count(r.photos_uploaded),
            wiped: r.wiped,
        }
    }
}

/// Who is logged in, what the phone holds, what waits to be sent.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PhoneStatus {
    /// The account's username, when logged in.
    pub username: Option<String>,
    /// The server, when logged in.
    pub server: Option<String>,
    /// The account's role, when logged in.
    pub role: Option<String>,
    /// Children listed: files held and files still arriving.
    pub files: u32,
    /// Of those, files still arriving: listed and due, not yet open.
    pub arriving: u32,
    /// Photos waiting to be sent.
    pub photos_waiting: u32,
    /// Alert acknowledgements waiting to be sent.
    pub acks_waiting: u32,
    /// Files the server refused, kept aside with their work (ids).
    pub set_aside: Vec<String>,
}

impl From<homevisit_phone::Status> for PhoneStatus {
    fn from(s: homevisit_phone::Status) -> Self {
        PhoneStatus {
            username: s.username,
            server: s.server,
            role: s.role,
            files: count(s.files),
            arriving: count(s.arriving),
            photos_waiting: count(s.photos_waiting),
            acks_waiting: count(s.acks_waiting),
            set_aside: s.set_aside,
        }
    }
}

/// A child as the list shows it.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ChildSummary {
    /// The file's id.
    pub id: String,
    /// The child's name.
    pub name: String,
    /// The 12-digit village code.
    pub village_code: String,
    /// Date of birth.
    pub birth_date: String,
    /// Guardianship level today (`good`, `average`, `poor`), if assessed.
    pub guardianship: Option<String>,
    /// Categories today (`left_behind`, ...).
    pub categories: Vec<String>,
    /// Risk flags today.
    pub risk_flags: Vec<String>,
    /// The date of the last home visit, if any.
    pub last_home_visit: Option<String>,
    /// Live records in the file.
    pub records: u32,
}

impl From<&FileSummary> for ChildSummary {
    fn from(s: &FileSummary) -> Self {
        let now = s.attributes_on(today());
        ChildSummary {
            id: s.id.to_string(),
            name: s.name.clone(),
            village_code: s.village_code.clone(),
            birth_date: s.birth_date.to_string(),
            guardianship: now.guardianship.map(|g| g.key().to_owned()),
            categories: now.categories,
            risk_flags: now.risk_flags,
            last_home_visit: s
                .records
                .iter()
                .filter(|(k, _)| *k == RecordKind::HomeVisit)
                .map(|(_, d)| *d)
                .max()
                .map(|d| d.to_string()),
            records: count(s.records.len()),
        }
    }
}

/// One line of the due list.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct DueItem {
    /// The file's id.
    pub child_id: String,
    /// The child's name.
    pub name: String,
    /// What is due: `home_visit` or `contact`.
    pub kind: String,
    /// The due date.
    pub due: String,
    /// The last qualifying record, if any.
    pub last: Option<String>,
    /// `overdue` or `due_soon`.
    pub status: String,
    /// Days past the due date (0 unless overdue).
    pub days_overdue: u32,
    /// The cadence, e.g. `1 month`.
    pub every: String,
}

impl DueItem {
    /// The entry, with the child's name.
    pub(crate) fn new(e: DueEntry, name: String) -> DueItem {
        DueItem {
            name,
            due: e.due.to_string(),
            last: e.last.map(|d| d.to_string()),
            status: e.status.key().to_owned(),
            days_overdue: e.days_overdue,
            every: e.every.to_string(),
            kind: e.kind,
            child_id: e.id,
        }
    }
}

/// A child to register.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct NewChild {
    /// The child's name.
    pub name: String,
    /// `female` or `male`.
    pub sex: String,
    /// `YYYY-MM-DD`.
    pub birth_date: String,
    /// The resident identity number, if known.
    pub id_number: Option<String>,
    /// The 12-digit village code: one of the account's villages.
    pub village_code: String,
    /// Home address.
    pub address: String,
    /// Place of household registration.
    pub hukou_place: String,
    /// The categories served under from today (`left_behind`, `family_difficulty`, ...).
    #[uniffi(default)]
    pub categories: Vec<String>,
    /// The guardianship level (`good`, `average`, `poor`) if already assessed; an unassessed
    /// child is visited monthly under `tiedong` until it is.
    #[uniffi(default)]
    pub guardianship: Option<String>,
    /// Risk flags from today (`poor_family`, `scattered_orphan`, ...).
    #[uniffi(default)]
    pub risk_flags: Vec<String>,
}

/// The four things a home visit looks at (seed 002 item 8); empty text for "nothing noted".
#[derive(Debug, Clone, Default, PartialEq, Eq, uniffi::Record)]
pub struct Findings {
    /// 生活保障: living security.
    pub living_security: String,
    /// 家庭监护: family guardianship.
    pub family_guardianship: String,
    /// 就医就学: medical care and schooling.
    pub medical_schooling: String,
    /// 关爱活动: care activities.
    pub care_activities: String,
}

impl From<&Findings> for homevisit_sync_core::file::Findings {
    fn from(f: &Findings) -> Self {
        homevisit_sync_core::file::Findings {
            living_security: f.living_security.clone(),
            family_guardianship: f.family_guardianship.clone(),
            medical_schooling: f.medical_schooling.clone(),
            care_activities: f.care_activities.clone(),
        }
    }
}

impl From<&homevisit_sync_core::file::Findings> for Findings {
    fn from(f: &homevisit_sync_core::file::Findings) -> Self {
        Findings {
            living_security: f.living_security.clone(),
            family_guardianship: f.family_guardianship.clone(),
            medical_schooling: f.medical_schooling.clone(),
            care_activities: f.care_activities.clone(),
        }
    }
}

/// One record of a file, as its latest version says.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct RecordItem {
    /// The record's id.
    pub id: String,
    /// `home_visit`, `contact`, `work_log`, `assistance`, `problem` or `danger`.
    pub kind: String,
    /// The date it happened.
    pub date: String,
    /// Who recorded it.
    pub by: String,
    /// Notes.
    pub notes: String,
    /// A contact's channel.
    pub channel: Option<String>,
    /// A work-log or assistance summary.
    pub summary: Option<String>,
    /// A home visit's findings.
    pub findings: Option<Findings>,
    /// A danger's kinds.
    pub danger_kinds: Vec<String>,
    /// Who was told of a danger.
    pub notified: Vec<String>,
    /// Photos by SHA-256.
    pub photos: Vec<String>,
    /// Voided (kept in the history, not counted).
    pub voided: bool,
}

/// A child's whole file.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ChildDetail {
    /// The file's id.
    pub id: String,
    /// The child's name.
    pub name: String,
    /// `female` or `male`.
    pub sex: String,
    /// Date of birth.
    pub birth_date: String,
    /// The resident identity number, if known.
    pub id_number: Option<String>,
    /// The village.
    pub village_code: String,
    /// Home address.
    pub address: String,
    /// Place of household registration.
    pub hukou_place: String,
    /// When the file was opened.
    pub registered_on: String,
    /// Guardianship level today, if assessed.
    pub guardianship: Option<String>,
    /// Categories today.
    pub categories: Vec<String>,
    /// Risk flags today.
    pub risk_flags: Vec<String>,
    /// Every record, by date.
    pub records: Vec<RecordItem>,
    /// The parts of version 2 (`facts`, `care`, `benefits`, `plans`, `referrals`) as one
    /// JSON object in the document's shape (docs/FILE.md), every version kept.
    pub parts_json: String,
    /// What the facts suggest today (`aged_out`, `no_longer_left_behind`); never applied.
    pub suggestions: Vec<String>,
    /// Whether a child in entrusted care has gone more than a week without a parent's contact.
    pub entrusted_care_lapsed: bool,
}

impl From<&ChildFileView> for ChildDetail {
    fn from(v: &ChildFileView) -> Self {
        let now = homevisit_sync_core::file::attributes_on(v.attributes.iter(), today());
        let mut records: Vec<RecordItem> = v
            .records
            .iter()
            .map(|(id, r)| {
                let c = r.current();
                let danger = c.danger.as_ref();
                RecordItem {
                    id: id.to_string(),
                    kind: r.kind.key().to_owned(),
                    date: c.date.to_string(),
                    by: c.by.clone(),
                    notes: c.notes.clone(),
                    channel: c.channel.and_then(|ch| {
                        serde_json::to_value(ch)
                            .ok()
                            .and_then(|v| v.as_str().map(str::to_owned))
                    }),
                    summary: c.summary.clone(),
                    findings: c.findings.as_ref().map(Findings::from),
                    danger_kinds: danger
                        .map(|d| d.found.iter().map(|k| k.key().to_owned()).collect())
                        .unwrap_or_default(),
                    notified: danger
                        .map(|d| {
                            d.notified
                                .iter()
                                .filter_map(|n| n.party.map(|p| p.key().to_owned()))
                                .collect()
                        })
                        .unwrap_or_default(),
                    photos: c.photos.clone(),
                    voided: r.void.is_some(),
                }
            })
            .collect();
        records.sort_by(|a, b| (&a.date, &a.id).cmp(&(&b.date, &b.id)));
        let p = &v.profile;
        ChildDetail {
            id: v.id.to_string(),
            name: p.name.clone(),
            sex: p.sex.key().to_owned(),
            birth_date: p.birth_date.to_string(),
            id_number: p.id_number.clone(),
            village_code: p.village_code.clone(),
            address: p.address.clone(),
            hukou_place: p.hukou_place.clone(),
            registered_on: p.registered_on.to_string(),
            guardianship: now.guardianship.map(|g| g.key().to_owned()),
            categories: now.categories,
            risk_flags: now.risk_flags,
            records,
            parts_json: serde_json::json!({
                "facts": v.facts,
                "care": v.care,
                "benefits": v.benefits,
                "plans": v.plans,
                "referrals": v.referrals,
            })
            .to_string(),
            suggestions: v
                .suggestions(today())
                .into_iter()
                .map(|s| s.key().to_owned())
                .collect(),
            entrusted_care_lapsed: v.entrusted_care_lapsed(today()),
        }
    }
}

/// An alert the server sent this account.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct AlertItem {
    /// The alert's id.
    pub id: String,
    /// `due_soon`, `overdue`, `overdue_escalated` or `danger`.
    pub kind: String,
    /// `open` or `acknowledged`.
    pub status: String,
    /// The child's file.
    pub child_id: String,
    /// What it says, in Chinese.
    pub text: String,
    /// When it was raised (RFC 3339), if the server said.
    pub raised_at: Option<String>,
}

impl From<Alert> for AlertItem {
    fn from(a: Alert) -> Self {
        AlertItem {
            raised_at: a
                .rest
                .get("raised_at")
                .and_then(|v| v.as_str())
                .map(str::to_owned),
            id: a.id,
            kind: a.kind,
            status: a.status,
            child_id: a.child_id,
            text: a.text,
        }
    }
}
