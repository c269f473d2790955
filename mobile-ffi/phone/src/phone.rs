//! [`Phone`]: one field device, whole. Its files, its session and its photo outbox all live in
//! the encrypted device store; nothing of them is written to disk in clear.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, NaiveDate, Utc};
use homevisit_sync_core::device::{Device, DeviceError};
use homevisit_sync_core::file::{
    Assertion, AttrKind, Channel, ChildFileView, ChildId, DangerDetails, FileSummary, Findings,
    Notified, Profile, RecordVersion,
};
use homevisit_sync_core::photo::{self, PhotoError, PhotoLimits};
use homevisit_sync_core::rules::{DueEntry, RuleSet};
use homevisit_sync_core::store::{StoreError, StoreKey};
use homevisit_sync_core::sync::Scope;
use homevisit_sync_core::sync::alerts::Alert;
use homevisit_sync_core::sync::device::Outcome;
use homevisit_sync_core::vocab::{Category, DangerKind, Guardianship, Party, RecordKind, RiskFlag};
use serde::{Deserialize, Serialize};

use crate::client::{Client, ClientError, MAX_PAGES, MAX_ROUNDS, Session};
use crate::transport::{Https, Transport};

/// The store's file inside the phone's directory.
const STORE_FILE: &str = "store";
/// Settings kept (encrypted) in the store.
const ACCOUNT: &str = "account";
const DEVICE_ID: &str = "device_id";
const OWNER: &str = "owner";
/// A token this close to expiry is refreshed before it is used.
const REFRESH_MARGIN_S: i64 = 60;
/// Photos go up in pieces this size, so a cut 2G connection resumes instead of restarting.
pub const PHOTO_PIECE: usize = 64 * 1024;

/// What a phone call can fail with. Messages name what failed, never a child's data.
#[derive(Debug, thiserror::Error)]
pub enum PhoneError {
    /// The key does not open this phone's store.
    #[error("the key does not open this phone's store: it was created under another key")]
    WrongKey,
    /// The store is damaged, or a newer app wrote it.
    #[error("the phone's store cannot be read: {0}")]
    Damaged(String),
    /// The store could not be written (disk full, I/O).
    #[error("the phone's store failed: {0}")]
    Storage(String),
    /// This phone was wiped; open a new one.
    #[error("this phone was wiped: its data and session are gone")]
    Wiped,
    /// Nobody is logged in on this phone.
    #[error("not logged in: log in first")]
    NotLoggedIn,
    /// The session ended (logged out elsewhere, or the refresh token expired); log in again.
    #[error("the session ended ({0}): log in again")]
    SessionEnded(String),
    /// No answer from the server, after retrying.
    #[error("no answer from the server: {0}")]
    Network(String),
    /// The server refused the request.
    #[error("the server refused: {status} {code}: {message}")]
    Server {
        /// HTTP status.
        status: u16,
        /// Its stable error code.
        code: String,
        /// Its message.
        message: String,
    },
    /// An argument is not acceptable (an unknown vocabulary key, a malformed id).
    #[error("invalid {what}: {why}")]
    Invalid {
        /// Which argument.
        what: &'static str,
        /// Why.
        why: String,
    },
    /// The phone holds no file with this id.
    #[error("no child file {0} on this phone")]
    NoSuchChild(String),
    /// The phone lists this child, and the file is still arriving: sync to finish.
    #[error("child file {0} is still arriving: sync to finish receiving it")]
    Arriving(String),
    /// The phone holds no alert with this id.
    #[error("no alert {0} on this phone")]
    NoSuchAlert(String),
    /// The village lies outside the regions of the account.
    #[error("village {0} is outside your regions: the server would refuse it")]
    OutOfScope(String),
    /// A photo was refused: not an image, corrupt, or too large to decode safely.
    #[error("photo {index}: {why}")]
    Photo {
        /// Its position among the photos given, from 0.
        index: usize,
        /// Why.
        why: String,
    },
}

impl From<StoreError> for PhoneError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::WrongKey => PhoneError::WrongKey,
            StoreError::Corrupt { .. } | StoreError::NewerVersion { .. } => {
                PhoneError::Damaged(e.to_string())
            }
            other => PhoneError::Storage(other.to_string()),
        }
    }
}

impl From<DeviceError> for PhoneError {
    fn from(e: DeviceError) -> Self {
        match e {
            DeviceError::Store(e) => e.into(),
            DeviceError::Damaged { .. } => PhoneError::Damaged(e.to_string()),
            DeviceError::NoSuchFile(id) => PhoneError::NoSuchChild(id.to_string()),
            DeviceError::Arriving(id) => PhoneError::Arriving(id.to_string()),
            DeviceError::File(e) => PhoneError::Invalid {
                what: "edit",
                why: e.to_string(),
            },
            DeviceError::Sync(e) => PhoneError::Server {
                status: 200,
                code: "unreadable_response".into(),
                message: e.to_string(),
            },
        }
    }
}

impl From<ClientError> for PhoneError {
    fn from(e: ClientError) -> Self {
        match e {
            ClientError::Api {
                status,
                code,
                message,
                ..
            } => PhoneError::Server {
                status,
                code,
                message,
            },
            ClientError::Transport(why) => PhoneError::Network(why),
            ClientError::NoSession => PhoneError::NotLoggedIn,
            ClientError::Device(e) => e.into(),
            ClientError::Unsettled(n) => PhoneError::Server {
                status: 200,
                code: "unsettled".into(),
                message: format!("sync did not settle in {n} rounds"),
            },
        }
    }
}

/// The account the phone is logged in with: kept encrypted in the store.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Account {
    server: String,
    ca_pem: Option<String>,
    username: String,
    session: Session,
    /// Unix seconds the access token expires at.
    expires_at: i64,
}

/// How a sync went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// Files whose changes went up.
    pub files_sent: usize,
    /// Files whose changes came down.
    pub files_received: usize,
    /// HTTP round trips of the sync itself (photos not counted).
    pub round_trips: usize,
    /// Of those, the pages of a long sync (a new phone's first) before the last.
    pub pages: usize,
    /// Photos delivered from the outbox.
    pub photos_uploaded: usize,
    /// The server revoked this device and the phone wiped itself: delete the key too.
    pub wiped: bool,
}

/// How often and how patiently to retry when no answer comes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// Tries in all, at least 1.
    pub attempts: u32,
    /// Wait before the second try; doubled before each further one.
    pub first_delay: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            attempts: 3,
            first_delay: Duration::from_secs(2),
        }
    }
}

/// Who is logged in, what the phone holds and what waits to be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// The account's username, if logged in.
    pub username: Option<String>,
    /// The server, if logged in.
    pub server: Option<String>,
    /// The account's role key.
    pub role: Option<String>,
    /// Children listed: files held, and files still arriving.
    pub files: usize,
    /// Of those, the files whose summaries a first sync sent ahead and whose documents are
    /// still to come: they show in the due list, and open once they arrive.
    pub arriving: usize,
    /// Photos waiting in the outbox.
    pub photos_waiting: usize,
    /// Alert acknowledgements not yet sent.
    pub acks_waiting: usize,
    /// Files the server refused, set aside with their work.
    pub set_aside: Vec<String>,
}

/// A child to register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewChild {
    /// Name.
    pub name: String,
    /// `female` or `male`.
    pub sex: String,
    /// Date of birth.
    pub birth_date: NaiveDate,
    /// The 18-character resident identity number, if known.
    pub id_number: Option<String>,
    /// The 12-digit village code.
    pub village_code: String,
    /// Home address.
    pub address: String,
    /// Place of household registration.
    pub hukou_place: String,
    /// The categories the child is served under (`left_behind`, `family_difficulty`, ...),
    /// from today.
    pub categories: Vec<String>,
    /// The guardianship level (`good`, `average`, `poor`) when already assessed; without it
    /// the child is visited as the rules treat an unassessed child (monthly under `tiedong`).
    pub guardianship: Option<String>,
    /// Risk flags (`poor_family`, `scattered_orphan`, ...), from today.
    pub risk_flags: Vec<String>,
}

/// The director's assessment of an attribute the visit rules read: a category, the
/// guardianship level or a risk flag, from a date on (or, with `present` false, no longer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assessment {
    /// `category`, `guardianship` or `risk_flag`.
    pub attr: String,
    /// The key: `left_behind`, `average`, `poor_family`, ... or one the rule set adds.
    pub value: String,
    /// `true` from `effective` on; `false` when it stops applying from then.
    pub present: bool,
    /// The date it took effect: not after today.
    pub effective: NaiveDate,
}

/// A danger found on a visit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DangerReport {
    /// What was found: `living_alone`, `domestic_violence`, ... at least one.
    pub kinds: Vec<String>,
    /// Who was told now: `police`, `supervisor`, `civil_affairs`, ...
    pub notified: Vec<String>,
    /// Notes.
    pub notes: String,
}

/// One field device: an encrypted store, a session, a sync loop and a photo outbox.
///
/// Every method that talks to the server blocks until it is done (seconds on 2G): call it off
/// the UI thread.
pub struct Phone {
    dir: PathBuf,
    device: Option<Device>,
    account: Option<Account>,
    transport: Option<Arc<dyn Transport>>,
    /// The built-in HTTPS stack, with the CA it was made for: made once, so every round trip
    /// of a sync (a first sync's pages) reuses its connection instead of a new TCP and TLS
    /// handshake each, two round trips on 2G.
    https: std::sync::Mutex<Option<(Option<String>, Https)>>,
    rules: RuleSet,
    retry: Retry,
    limits: PhotoLimits,
}

impl std::fmt::Debug for Phone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Phone")
            .field("dir", &self.dir)
            .field("open", &self.device.is_some())
            .field("logged_in", &self.account.is_some())
            .finish_non_exhaustive()
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// The phone's clock, to the second: when records are made and tokens expire.
pub fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(unix_now(), 0).unwrap_or_default()
}

/// Today's date where the directors work (UTC+8, no daylight saving).
pub fn china_today() -> NaiveDate {
    (now() + chrono::Duration::hours(8)).date_naive()
}

fn parse<T: std::str::FromStr>(what: &'static str, text: &str) -> Result<T, PhoneError>
where
    T::Err: std::fmt::Display,
{
    text.parse().map_err(|e: T::Err| PhoneError::Invalid {
        what,
        why: e.to_string(),
    })
}

/// A child id as the app passes it.
pub fn child_id(text: &str) -> Result<ChildId, PhoneError> {
    uuid::Uuid::parse_str(text)
        .map(ChildId)
        .map_err(|_| PhoneError::Invalid {
            what: "child id",
            why: "a child file's id is a UUID".into(),
        })
}

fn entry_uuid(text: &str) -> Result<uuid::Uuid, PhoneError> {
    uuid::Uuid::parse_str(text).map_err(|_| PhoneError::Invalid {
        what: "entry id",
        why: "an entry's id is a UUID".into(),
    })
}

impl Phone {
    /// Opens the phone kept in `dir` (created if missing) under `key`, 32 bytes the platform
    /// keystore holds. A wrong key is [`PhoneError::WrongKey`], never garbage.
    pub fn open(dir: &Path, key: [u8; 32]) -> Result<Phone, PhoneError> {
        std::fs::create_dir_all(dir).map_err(|e| PhoneError::Storage(e.to_string()))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
        }
        let device = Device::open(&dir.join(STORE_FILE), &StoreKey::new(key))?;
        let account = match device.setting(ACCOUNT)? {
            Some(bytes) => Some(
                serde_json::from_slice(&bytes)
                    .map_err(|_| PhoneError::Damaged("the stored session".into()))?,
            ),
            None => None,
        };
        let rules = RuleSet::preset("tiedong").map_err(|e| PhoneError::Invalid {
            what: "rules",
            why: e.to_string(),
        })?;
        Ok(Phone {
            dir: dir.to_owned(),
            device: Some(device),
            account,
            transport: None,
            https: Default::default(),
            rules,
            retry: Retry::default(),
            limits: PhotoLimits::default(),
        })
    }

    /// Sends through the app's own transport from now on instead of the built-in HTTPS.
    pub fn set_transport(&mut self, transport: Option<Arc<dyn Transport>>) {
        self.transport = transport;
    }

    /// Sets how the sync retries when no answer comes.
    pub fn set_retry(&mut self, retry: Retry) {
        self.retry = retry;
    }

    /// The rules the due list follows (the `tiedong` preset until set).
    pub fn set_rules(&mut self, rules: RuleSet) {
        self.rules = rules;
    }

    /// Where the phone keeps its store.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn device(&self) -> Result<&Device, PhoneError> {
        self.device.as_ref().ok_or(PhoneError::Wiped)
    }

    fn device_mut(&mut self) -> Result<&mut Device, PhoneError> {
        self.device.as_mut().ok_or(PhoneError::Wiped)
    }

    fn account(&self) -> Result<&Account, PhoneError> {
        self.device()?;
        self.account.as_ref().ok_or(PhoneError::NotLoggedIn)
    }

    fn client_for(&self, server: &str, ca_pem: Option<&str>) -> Result<Client, PhoneError> {
        match &self.transport {
            Some(t) => Ok(Client::with_transport(server, t.clone())),
            None => {
                if !server.starts_with("https://") {
                    return Err(PhoneError::Invalid {
                        what: "server",
                        why: "the built-in transport speaks HTTPS only: https://host:port".into(),
                    });
                }
                let mut made = self.https.lock().unwrap_or_else(|e| e.into_inner());
                if let Some((ca, https)) = made.as_ref()
                    && ca.as_deref() == ca_pem
                {
                    return Ok(Client::with_https(server, https.clone()));
                }
                let https =
                    Https::new(ca_pem.map(str::as_bytes)).map_err(|why| PhoneError::Invalid {
                        what: "CA certificate",
                        why: why.0,
                    })?;
                *made = Some((ca_pem.map(str::to_owned), https.clone()));
                Ok(Client::with_https(server, https))
            }
        }
    }

    fn save_account(&mut self, account: Option<Account>) -> Result<(), PhoneError> {
        let bytes = account
            .as_ref()
            .map(serde_json::to_vec)
            .transpose()
            .map_err(|e| PhoneError::Storage(e.to_string()))?;
        self.device_mut()?.set_setting(ACCOUNT, bytes.as_deref())?;
        self.account = account;
        Ok(())
    }

    /// Logs in and registers this phone with the server. The phone keeps one installation id
    /// for life; a phone holding another user's files refuses until it is wiped.
    pub fn login(
        &mut self,
        server: &str,
        ca_pem: Option<&str>,
        username: &str,
        password: &str,
        device_name: &str,
    ) -> Result<Session, PhoneError> {
        let device = self.device()?;
        if let Some(owner) = device.setting(OWNER)?
            && owner != username.as_bytes()
            && !device.is_empty()
        {
            return Err(PhoneError::Invalid {
                what: "username",
                why: "this phone holds another user's files: wipe it before another user logs in"
                    .into(),
            });
        }
        let device_id = match device.setting(DEVICE_ID)? {
            Some(id) => String::from_utf8_lossy(&id).into_owned(),
            None => uuid::Uuid::new_v4().to_string(),
        };
        let mut client = self.client_for(server, ca_pem)?;
        let session = retrying(self.retry, || {
            client
                .login(username, password, &device_id, device_name)
                .cloned()
        })?;
        let device = self.device_mut()?;
        device.set_setting(DEVICE_ID, Some(device_id.as_bytes()))?;
        device.set_setting(OWNER, Some(username.as_bytes()))?;
        self.save_account(Some(Account {
            server: server.trim_end_matches('/').to_owned(),
            ca_pem: ca_pem.map(str::to_owned),
            username: username.to_owned(),
            expires_at: unix_now() + session.expires_in,
            session: session.clone(),
        }))?;
        Ok(session)
    }

    /// Ends the session on the server and forgets it here; the files stay for the next login.
    /// Returns whether the server confirmed (false when it could not be reached: the session
    /// then ends when its tokens expire).
    pub fn logout(&mut self) -> Result<bool, PhoneError> {
        let account = self.account()?.clone();
        let client = self.client_for(&account.server, account.ca_pem.as_deref())?;
        let confirmed = client
            .post_json(
                "/api/v1/auth/logout",
                None,
                &serde_json::json!({ "refresh_token": account.session.refresh_token }),
            )
            .is_ok_and(|r| r.status < 300);
        self.save_account(None)?;
        Ok(confirmed)
    }

    /// Deletes the store and everything in it: files, session, photos. The app must then
    /// delete the key from the keystore. Every later call is [`PhoneError::Wiped`].
    pub fn wipe(&mut self) -> Result<(), PhoneError> {
        self.account = None;
        match self.device.take() {
            Some(device) => device.wipe()?,
            None => {
                homevisit_sync_core::store::DeviceStore::delete_files(&self.dir.join(STORE_FILE))?
            }
        }
        Ok(())
    }

    /// What the phone holds and what waits to be sent.
    pub fn status(&self) -> Result<Status, PhoneError> {
        let device = self.device()?;
        Ok(Status {
            username: self.account.as_ref().map(|a| a.username.clone()),
            server: self.account.as_ref().map(|a| a.server.clone()),
            role: self.account.as_ref().map(|a| a.session.role.clone()),
            files: device.len(),
            arriving: device.arriving(),
            photos_waiting: device.outbox()?.len(),
            acks_waiting: device.pending_acks(),
            set_aside: device
                .quarantined()?
                .iter()
                .map(ToString::to_string)
                .collect(),
        })
    }

    /// Every file's summary, by id.
    pub fn children(&self) -> Result<&BTreeMap<ChildId, FileSummary>, PhoneError> {
        Ok(self.device()?.summaries())
    }

    /// One file's summary, by the id as text (a due entry's, for one); `None` for an id the
    /// phone does not hold or that is not a UUID.
    pub fn child_summary(&self, id: &str) -> Option<&FileSummary> {
        let id = child_id(id).ok()?;
        self.device.as_ref()?.summaries().get(&id)
    }

    /// Who is overdue or due soon on `on`, most overdue first.
    pub fn due(&self, on: NaiveDate) -> Result<Vec<DueEntry>, PhoneError> {
        Ok(self.device()?.due(&self.rules, on))
    }

    /// One child's whole file.
    pub fn child(&mut self, id: &str) -> Result<ChildFileView, PhoneError> {
        let id = child_id(id)?;
        let file = self.device_mut()?.file(&id)?;
        file.view().map_err(|e| PhoneError::Damaged(e.to_string()))
    }

    /// Registers a child in a village of the account's regions, with the categories, level
    /// and flags given, in one stored change; returns the new file's id. A bad key is refused
    /// naming it and nothing is stored.
    pub fn add_child(&mut self, child: &NewChild) -> Result<String, PhoneError> {
        let account = self.account()?;
        let scope = Scope::new(account.session.scope.iter());
        if !scope.contains(&child.village_code) {
            return Err(PhoneError::OutOfScope(child.village_code.clone()));
        }
        let by = account.username.clone();
        let today = china_today();
        let at = now();
        let profile = Profile {
            name: child.name.clone(),
            sex: parse("sex", &child.sex)?,
            birth_date: child.birth_date,
            id_number: child.id_number.clone(),
            hukou_place: child.hukou_place.clone(),
            address: child.address.clone(),
            village_code: child.village_code.clone(),
            registered_on: today,
        };
        let keyed = |attr: &str, values: &[String]| {
            values
                .iter()
                .map(|value| Assessment {
                    attr: attr.to_owned(),
                    value: value.clone(),
                    present: true,
                    effective: today,
                })
                .collect::<Vec<_>>()
        };
        let mut assessments = keyed("category", &child.categories);
        assessments.extend(keyed("guardianship", child.guardianship.as_slice()));
        assessments.extend(keyed("risk_flag", &child.risk_flags));
        let assertions = assessments
            .iter()
            .map(|a| self.assertion(a, &by, at))
            .collect::<Result<Vec<_>, _>>()?;
        let id = self.device_mut()?.create_with(&profile, &by, at, |file| {
            for assertion in &assertions {
                file.assert_attribute(assertion, &by, at)?;
            }
            Ok(())
        })?;
        Ok(id.to_string())
    }

    /// Records an assessment of a category, the guardianship level or a risk flag; the due
    /// list follows it at once. Returns the assertion's id.
    pub fn assess(&mut self, child: &str, assessment: &Assessment) -> Result<String, PhoneError> {
        let id = child_id(child)?;
        let by = self.account()?.username.clone();
        let at = now();
        let assertion = self.assertion(assessment, &by, at)?;
        let assertion_id = self
            .device_mut()?
            .edit(&id, |f| f.assert_attribute(&assertion, &by, at))?;
        Ok(assertion_id.to_string())
    }

    /// An assessment checked against the vocabulary and the rule set's own keys.
    fn assertion(
        &self,
        a: &Assessment,
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<Assertion, PhoneError> {
        let attr: AttrKind = serde_json::from_value(serde_json::Value::String(a.attr.clone()))
            .map_err(|_| PhoneError::Invalid {
                what: "attribute",
                why: format!("{:?} is not category, guardianship or risk_flag", a.attr),
            })?;
        let value = a.value.as_str();
        let (what, known) = match attr {
            AttrKind::Guardianship => ("guardianship", value.parse::<Guardianship>().is_ok()),
            AttrKind::Category => (
                "category",
                value.parse::<Category>().is_ok()
                    || self.rules.categories().any(|(key, _)| key == value),
            ),
            AttrKind::RiskFlag => (
                "risk flag",
                value.parse::<RiskFlag>().is_ok() || self.rules.risk_flags().any(|k| k == value),
            ),
        };
        if !known {
            return Err(PhoneError::Invalid {
                what,
                why: format!("unknown key {value:?}"),
            });
        }
        if a.effective > china_today() {
            return Err(PhoneError::Invalid {
                what: "effective",
                why: format!("{} is in the future", a.effective),
            });
        }
        Ok(Assertion {
            attr,
            value: value.to_owned(),
            present: a.present,
            effective: a.effective,
            recorded_at: at,
            by: by.to_owned(),
        })
    }

    fn record(
        &mut self,
        child: &str,
        kind: RecordKind,
        version: impl FnOnce(&str, DateTime<Utc>) -> RecordVersion,
        photos: &[Vec<u8>],
    ) -> Result<String, PhoneError> {
        let id = child_id(child)?;
        let by = self.account()?.username.clone();
        let mut processed = Vec::with_capacity(photos.len());
        for (index, bytes) in photos.iter().enumerate() {
            let p =
                photo::process(bytes, &self.limits).map_err(|e: PhotoError| PhoneError::Photo {
                    index,
                    why: e.to_string(),
                })?;
            processed.push(p);
        }
        let at = now();
        let mut version = version(&by, at);
        version
            .photos
            .extend(processed.iter().map(|p| p.sha256.clone()));
        let items: Vec<(&str, &[u8])> = processed
            .iter()
            .map(|p| (p.sha256.as_str(), p.jpeg.as_slice()))
            .collect();
        let record = self.device_mut()?.edit_with_outbox(
            &id,
            |f| f.add_record(kind, &version, &by, at),
            &items,
        )?;
        Ok(record.to_string())
    }

    /// Records a home visit: what the four findings say, notes, and photos as the camera gave
    /// them (each is resized, stripped of metadata and kept encrypted until sent). Returns the
    /// record's id.
    pub fn record_home_visit(
        &mut self,
        child: &str,
        date: NaiveDate,
        findings: Findings,
        notes: &str,
        photos: &[Vec<u8>],
    ) -> Result<String, PhoneError> {
        self.record(
            child,
            RecordKind::HomeVisit,
            |by, at| RecordVersion::home_visit(date, by, at, findings).with_notes(notes),
            photos,
        )
    }

    /// Records a contact by phone, message or meeting.
    pub fn record_contact(
        &mut self,
        child: &str,
        date: NaiveDate,
        channel: Channel,
        notes: &str,
    ) -> Result<String, PhoneError> {
        self.record(
            child,
            RecordKind::Contact,
            |by, at| RecordVersion::contact(date, by, at, channel).with_notes(notes),
            &[],
        )
    }

    /// Reports a danger found (强制报告). A kind that must go to the police is flagged until
    /// the police are among those told.
    pub fn report_danger(
        &mut self,
        child: &str,
        date: NaiveDate,
        report: &DangerReport,
    ) -> Result<String, PhoneError> {
        let found = report
            .kinds
            .iter()
            .map(|k| parse::<DangerKind>("danger kind", k))
            .collect::<Result<Vec<_>, _>>()?;
        if found.is_empty() {
            return Err(PhoneError::Invalid {
                what: "danger kind",
                why: "a danger report names at least one kind".into(),
            });
        }
        let parties = report
            .notified
            .iter()
            .map(|p| parse::<Party>("party", p))
            .collect::<Result<Vec<_>, _>>()?;
        self.record(
            child,
            RecordKind::Danger,
            |by, at| {
                let mut details = DangerDetails {
                    found,
                    notified: parties
                        .into_iter()
                        .map(|party| Notified {
                            party: Some(party),
                            whom: String::new(),
                            at,
                        })
                        .collect(),
                    outcome: None,
                };
                details.police_first();
                RecordVersion::danger(date, by, at, details).with_notes(&report.notes)
            },
            &[],
        )
    }

    /// Adds a work-log entry (工作日志) to a child's file.
    pub fn record_work_log(
        &mut self,
        child: &str,
        date: NaiveDate,
        summary: &str,
        notes: &str,
    ) -> Result<String, PhoneError> {
        self.record(
            child,
            RecordKind::WorkLog,
            |by, at| RecordVersion::summary(date, by, at, summary).with_notes(notes),
            &[],
        )
    }

    /// Records care or assistance given (关爱帮扶).
    pub fn record_assistance(
        &mut self,
        child: &str,
        date: NaiveDate,
        summary: &str,
        notes: &str,
    ) -> Result<String, PhoneError> {
        self.record(
            child,
            RecordKind::Assistance,
            |by, at| RecordVersion::summary(date, by, at, summary).with_notes(notes),
            &[],
        )
    }

    /// Adds an entry to one of the file's version-2 parts (`facts`, `care`, `benefits`,
    /// `plans`, `referrals`), given as JSON in the document's shape (docs/FILE.md) without
    /// `by` and `recorded_at`: the phone stamps them. A bad entry is refused naming its field,
    /// and nothing is stored. Returns the entry's id.
    pub fn add_part(
        &mut self,
        child: &str,
        collection: &str,
        entry: &serde_json::Value,
    ) -> Result<String, PhoneError> {
        let id = child_id(child)?;
        let by = self.account()?.username.clone();
        let at = now();
        let entry_id = self
            .device_mut()?
            .edit(&id, |f| f.add_part_json(collection, entry, &by, at))?;
        Ok(entry_id.to_string())
    }

    /// Corrects an entry of a version-2 part by appending a version (a plan reviewed, a
    /// benefit granted, a referral closed with its outcome).
    pub fn correct_part(
        &mut self,
        child: &str,
        collection: &str,
        entry_id: &str,
        entry: &serde_json::Value,
    ) -> Result<(), PhoneError> {
        let id = child_id(child)?;
        let entry_id = entry_uuid(entry_id)?;
        let by = self.account()?.username.clone();
        let at = now();
        self.device_mut()?.edit(&id, |f| {
            f.correct_part_json(collection, entry_id, entry, &by, at)
        })?;
        Ok(())
    }

    /// Withdraws an entry of a version-2 part, keeping it in the file with the reason.
    pub fn void_part(
        &mut self,
        child: &str,
        collection: &str,
        entry_id: &str,
        reason: &str,
    ) -> Result<(), PhoneError> {
        let id = child_id(child)?;
        let entry_id = entry_uuid(entry_id)?;
        let by = self.account()?.username.clone();
        let at = now();
        self.device_mut()?
            .edit(&id, |f| f.void_part(collection, entry_id, reason, &by, at))?;
        Ok(())
    }

    /// The alerts the server sent this account through sync, not closed, oldest first.
    pub fn alerts(&self) -> Result<Vec<Alert>, PhoneError> {
        Ok(self.device()?.alerts())
    }

    /// Acknowledges an alert offline; the acknowledgement goes with the next sync.
    pub fn acknowledge_alert(&mut self, alert: &str, note: &str) -> Result<(), PhoneError> {
        if self.device_mut()?.acknowledge_alert(alert, note, now())? {
            Ok(())
        } else {
            Err(PhoneError::NoSuchAlert(alert.to_owned()))
        }
    }

    /// A client with a session good for the next minute: refreshed first if it is about to
    /// expire. `Ok(None)`: the server revoked this device.
    fn session_client(&mut self, force_refresh: bool) -> Result<Option<Client>, PhoneError> {
        let account = self.account()?.clone();
        let mut client = self.client_for(&account.server, account.ca_pem.as_deref())?;
        client.session = Some(account.session.clone());
        if !force_refresh && unix_now() < account.expires_at - REFRESH_MARGIN_S {
            return Ok(Some(client));
        }
        match retrying(self.retry, || client.refresh().cloned()) {
            Ok(session) => {
                self.save_account(Some(Account {
                    expires_at: unix_now() + session.expires_in,
                    session,
                    ..account
                }))?;
                Ok(Some(client))
            }
            Err(ClientError::Api { code, .. }) if code == "device_revoked" => Ok(None),
            Err(ClientError::Api {
                status: 401, code, ..
            }) => {
                self.save_account(None)?;
                Err(PhoneError::SessionEnded(code))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Calls the server's API with the session, refreshing it once after a 401. For what the
    /// sync does not carry (the supervisor's alert lists and stream).
    pub fn call<T>(
        &mut self,
        mut f: impl FnMut(&Client) -> Result<T, ClientError>,
    ) -> Result<T, PhoneError> {
        let revoked = || PhoneError::Server {
            status: 401,
            code: "device_revoked".into(),
            message: "this device was revoked: sync to wipe it".into(),
        };
        let client = self.session_client(false)?.ok_or_else(revoked)?;
        match retrying(self.retry, || f(&client)) {
            Err(ClientError::Api { status: 401, .. }) => {
                let client = self.session_client(true)?.ok_or_else(revoked)?;
                Ok(retrying(self.retry, || f(&client))?)
            }
            other => Ok(other?),
        }
    }

    /// Syncs with the server: waiting photos first (so the records that name them are
    /// accepted), then every file, retrying when the connection is cut; sync is idempotent, so
    /// a retry loses and duplicates nothing. A revoked device wipes itself here and says so in
    /// [`SyncReport::wiped`].
    pub fn sync(&mut self) -> Result<SyncReport, PhoneError> {
        let mut report = SyncReport::default();
        while self.sync_step(&mut report)? {}
        Ok(report)
    }

    /// One step of [`Phone::sync`]: the photos waiting, then one round trip, applied and
    /// stored; true while another step follows. An app that lets go of the phone between steps
    /// lets its screens read it meanwhile: after a new phone's first step the due list names
    /// every child, and the files arrive in the steps that follow. A step cut off is retried
    /// as [`Retry`] says; each step keeps what it received, so a cut costs one page at most.
    pub fn sync_step(&mut self, report: &mut SyncReport) -> Result<bool, PhoneError> {
        let Some(mut client) = self.session_client(false)? else {
            *report = self.wiped(*report)?;
            return Ok(false);
        };
        let mut refreshed = false;
        loop {
            let device = self.device.as_mut().ok_or(PhoneError::Wiped)?;
            match step(&client, device, self.retry, report) {
                Ok(Outcome::Wipe) => {
                    *report = self.wiped(*report)?;
                    return Ok(false);
                }
                Ok(Outcome::Done) => return Ok(false),
                Ok(Outcome::Again) => {
                    if device.paging() {
                        report.pages += 1;
                    }
                    let unpaged = report.round_trips - report.pages;
                    if unpaged >= MAX_ROUNDS || report.round_trips >= MAX_PAGES {
                        return Err(ClientError::Unsettled(report.round_trips).into());
                    }
                    return Ok(true);
                }
                Err(ClientError::Api { status: 401, .. }) if !refreshed => {
                    refreshed = true;
                    match self.session_client(true)? {
                        Some(c) => client = c,
                        None => {
                            *report = self.wiped(*report)?;
                            return Ok(false);
                        }
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    fn wiped(&mut self, mut report: SyncReport) -> Result<SyncReport, PhoneError> {
        self.wipe()?;
        report.wiped = true;
        Ok(report)
    }
}

/// Photos first, then one round trip.
fn step(
    client: &Client,
    device: &mut Device,
    retry: Retry,
    report: &mut SyncReport,
) -> Result<Outcome, ClientError> {
    for name in device.outbox()? {
        let Some(bytes) = device.outbox_item(&name)? else {
            continue;
        };
        retrying(retry, || upload_photo(client, &name, &bytes))?;
        device.outbox_remove(&name)?;
        report.photos_uploaded += 1;
    }
    let round = retrying(retry, || client.round(device))?;
    report.files_sent += round.sent;
    report.files_received += round.received;
    report.round_trips += round.rounds;
    Ok(round.outcome)
}

/// Runs `f` until it gets an answer, waiting between tries as `retry` says.
fn retrying<T>(
    retry: Retry,
    mut f: impl FnMut() -> Result<T, ClientError>,
) -> Result<T, ClientError> {
    let mut delay = retry.first_delay;
    let mut tries = 1;
    loop {
        match f() {
            Err(ClientError::Transport(_)) if tries < retry.attempts.max(1) => {
                std::thread::sleep(delay);
                delay *= 2;
                tries += 1;
            }
            other => return other,
        }
    }
}

/// Uploads one photo in pieces, resuming where the server says it stands.
fn upload_photo(client: &Client, name: &str, bytes: &[u8]) -> Result<(), ClientError> {
    let token = client.access()?.to_owned();
    let status = client.call(
        "GET",
        &format!("/api/v1/blobs/{name}/status"),
        Some(&token),
        "",
        &[],
    )?;
    let status = status.into_result()?;
    let answer = status.json();
    if answer["stored"].as_bool() == Some(true) {
        return Ok(());
    }
    let mut offset = answer["offset"].as_u64().unwrap_or(0) as usize;
    let total = bytes.len();
    while offset < total {
        let end = (offset + PHOTO_PIECE).min(total);
        let range = format!("bytes {}-{}/{total}", offset, end - 1);
        let reply = client.call_with(
            "PUT",
            &format!("/api/v1/blobs/{name}"),
            Some(&token),
            "image/jpeg",
            &bytes[offset..end],
            &[("Content-Range", &range)],
        )?;
        match reply.status {
            200 | 201 => return Ok(()),
            202 => offset = end,
            409 => {
                offset = reply.json()["offset"]
                    .as_u64()
                    .map_or(0, |o| o as usize)
                    .min(total)
            }
            _ => {
                reply.into_result()?;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wrong_key_is_refused_and_the_right_one_still_opens() {
        let dir = tempfile::tempdir().expect("dir");
        drop(Phone::open(dir.path(), [7; 32]).expect("create"));
        let e = Phone::open(dir.path(), [8; 32]).expect_err("wrong key");
        assert!(matches!(e, PhoneError::WrongKey), "{e}");
        Phone::open(dir.path(), [7; 32]).expect("the right key still opens");
    }

    #[test]
    fn every_call_after_a_wipe_says_wiped_and_the_store_is_gone() {
        let dir = tempfile::tempdir().expect("dir");
        let mut phone = Phone::open(dir.path(), [1; 32]).expect("open");
        phone.wipe().expect("wipe");
        assert!(matches!(phone.children(), Err(PhoneError::Wiped)));
        assert!(matches!(phone.sync(), Err(PhoneError::Wiped)));
        assert!(matches!(
            phone.record_contact(
                &ChildId::new().to_string(),
                now().date_naive(),
                Channel::Phone,
                ""
            ),
            Err(PhoneError::Wiped)
        ));
        assert!(!dir.path().join(STORE_FILE).exists());
    }

    #[test]
    fn a_phone_never_logged_in_keeps_nothing_and_says_so() {
        let dir = tempfile::tempdir().expect("dir");
        let mut phone = Phone::open(dir.path(), [2; 32]).expect("open");
        assert!(matches!(phone.sync(), Err(PhoneError::NotLoggedIn)));
        let child = NewChild {
            name: "x".into(),
            sex: "female".into(),
            birth_date: now().date_naive(),
            id_number: None,
            village_code: "220303100200".into(),
            address: String::new(),
            hukou_place: String::new(),
            categories: vec!["left_behind".into()],
            guardianship: None,
            risk_flags: Vec::new(),
        };
        assert!(matches!(
            phone.add_child(&child),
            Err(PhoneError::NotLoggedIn)
        ));
        assert!(matches!(
            phone.child("not-a-uuid"),
            Err(PhoneError::Invalid { .. })
        ));
        assert!(matches!(
            phone.child(&ChildId::new().to_string()),
            Err(PhoneError::NoSuchChild(_))
        ));
        assert_eq!(phone.status().expect("status").files, 0);
    }

    #[test]
    fn the_built_in_transport_refuses_plain_http() {
        let dir = tempfile::tempdir().expect("dir");
        let mut phone = Phone::open(dir.path(), [3; 32]).expect("open");
        let e = phone
            .login("http://127.0.0.1:1", None, "u", "p", "d")
            .expect_err("plain http");
        assert!(e.to_string().contains("HTTPS only"), "{e}");
    }
}
