//! The phone SDK: `homevisit-phone` as Kotlin (Android), Swift (iOS) and Python see it, through
//! UniFFI. This layer converts and nothing else: every rule, merge and byte on the wire is
//! decided in `homevisit-phone` and `homevisit-sync-core`.
//!
//! Conventions across the surface:
//! - dates are `YYYY-MM-DD` text, local dates of the jurisdiction;
//! - vocabulary (sex, danger kinds, parties told, channels) is passed by its stable key
//!   (`female`, `living_alone`, `police`, `phone`), as in the server's API;
//! - ids are UUID text;
//! - every method of [`Phone`] that talks to the server **blocks** until done (seconds on 2G):
//!   call it from a background thread (Kotlin `Dispatchers.IO`, a Swift `Task.detached`), or use
//!   [`Phone::sync_async`];
//! - one [`Phone`] may be shared between threads; its calls run one at a time.

use std::sync::{Arc, Mutex, MutexGuard};

use chrono::NaiveDate;
use homevisit_phone::PhoneError;
use homevisit_phone::transport::{self, TransportError};
use homevisit_sync_core::file::Channel;
use homevisit_sync_core::rules::RuleSet;

mod convert;
mod future;

pub use convert::*;

uniffi::setup_scaffolding!("homevisit");

/// What a call can fail with. Kotlin sees `HomevisitException`, Swift `HomevisitError`, Python
/// `HomevisitError`; each variant names what failed and never holds a child's data.
#[derive(Debug, thiserror::Error, uniffi::Error)]
pub enum HomevisitError {
    /// The key does not open this phone's store (it was made under another key).
    #[error("{reason}")]
    WrongKey {
        /// What to do about it.
        reason: String,
    },
    /// The store cannot be read: damaged, or written by a newer app.
    #[error("the phone's store cannot be read: {reason}")]
    Damaged {
        /// What was found.
        reason: String,
    },
    /// The store could not be written (disk full, I/O).
    #[error("the phone's store failed: {reason}")]
    Storage {
        /// What failed.
        reason: String,
    },
    /// The phone was wiped: open a new one (and delete its key from the keystore).
    #[error("{reason}")]
    Wiped {
        /// What to do about it.
        reason: String,
    },
    /// Nobody is logged in on this phone.
    #[error("{reason}")]
    NotLoggedIn {
        /// What to do about it.
        reason: String,
    },
    /// The session ended (logged out elsewhere, refresh token expired): log in again.
    #[error("the session ended: {reason}")]
    SessionEnded {
        /// The server's code.
        reason: String,
    },
    /// No answer from the server, after retrying.
    #[error("no answer from the server: {reason}")]
    Network {
        /// What the network stack said.
        reason: String,
    },
    /// The server refused the request.
    #[error("the server refused: {status} {code}: {detail}")]
    Server {
        /// The HTTP status.
        status: u16,
        /// The server's stable error code.
        code: String,
        /// The server's explanation.
        detail: String,
    },
    /// An argument is not acceptable (an unknown vocabulary key, a malformed date or id).
    #[error("invalid input: {reason}")]
    Invalid {
        /// Which argument and why.
        reason: String,
    },
    /// The phone holds no child file with this id.
    #[error("no child file {id} on this phone")]
    NoSuchChild {
        /// The id asked for.
        id: String,
    },
    /// The phone lists this child, and the file is still arriving (a first sync sends every
    /// child's summary ahead of the files): sync to finish.
    #[error("child file {id} is still arriving")]
    Arriving {
        /// The id asked for.
        id: String,
    },
    /// The phone holds no alert with this id.
    #[error("no alert {id} on this phone")]
    NoSuchAlert {
        /// The id asked for.
        id: String,
    },
    /// The village is outside the account's regions.
    #[error("village {village_code} is outside your regions")]
    OutOfScope {
        /// The village asked for.
        village_code: String,
    },
    /// A photo was refused: not JPEG or PNG, corrupt, or too large to decode safely.
    #[error("photo {index} was refused: {reason}")]
    Photo {
        /// Its position among the photos given, from 0.
        index: u32,
        /// Why.
        reason: String,
    },
}

impl From<PhoneError> for HomevisitError {
    fn from(e: PhoneError) -> Self {
        let text = e.to_string();
        match e {
            PhoneError::WrongKey => HomevisitError::WrongKey { reason: text },
            PhoneError::Damaged(reason) => HomevisitError::Damaged { reason },
            PhoneError::Storage(reason) => HomevisitError::Storage { reason },
            PhoneError::Wiped => HomevisitError::Wiped { reason: text },
            PhoneError::NotLoggedIn => HomevisitError::NotLoggedIn { reason: text },
            PhoneError::SessionEnded(reason) => HomevisitError::SessionEnded { reason },
            PhoneError::Network(reason) => HomevisitError::Network { reason },
            PhoneError::Server {
                status,
                code,
                message,
            } => HomevisitError::Server {
                status,
                code,
                detail: message,
            },
            PhoneError::Invalid { what, why } => HomevisitError::Invalid {
                reason: format!("{what}: {why}"),
            },
            PhoneError::NoSuchChild(id) => HomevisitError::NoSuchChild { id },
            PhoneError::Arriving(id) => HomevisitError::Arriving { id },
            PhoneError::NoSuchAlert(id) => HomevisitError::NoSuchAlert { id },
            PhoneError::OutOfScope(village_code) => HomevisitError::OutOfScope { village_code },
            PhoneError::Photo { index, why } => HomevisitError::Photo {
                index: u32::try_from(index).unwrap_or(u32::MAX),
                reason: why,
            },
        }
    }
}

/// An exception thrown by the app's [`HttpTransport`] that is not a `HomevisitError` arrives
/// here: it counts as no answer, and the sync retries.
impl From<uniffi::UnexpectedUniFFICallbackError> for HomevisitError {
    fn from(e: uniffi::UnexpectedUniFFICallbackError) -> Self {
        HomevisitError::Network { reason: e.reason }
    }
}

fn invalid(what: &str, why: impl std::fmt::Display) -> HomevisitError {
    HomevisitError::Invalid {
        reason: format!("{what}: {why}"),
    }
}

fn entry_json(text: &str) -> Result<serde_json::Value, HomevisitError> {
    serde_json::from_str(text).map_err(|e| invalid("entry", format!("not JSON: {e}")))
}

fn date(what: &str, text: &str) -> Result<NaiveDate, HomevisitError> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|_| invalid(what, "expected YYYY-MM-DD"))
}

/// One HTTP header.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct Header {
    /// Its name.
    pub name: String,
    /// Its value.
    pub value: String,
}

/// A request for the app's [`HttpTransport`] to send.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct TransportRequest {
    /// `GET`, `POST` or `PUT`.
    pub method: String,
    /// The absolute `https://` URL.
    pub url: String,
    /// Headers to send besides Host and Content-Length.
    pub headers: Vec<Header>,
    /// The body (empty for none).
    pub body: Vec<u8>,
}

/// The server's answer, whatever its status.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct TransportResponse {
    /// The HTTP status.
    pub status: u16,
    /// The headers.
    pub headers: Vec<Header>,
    /// The body.
    pub body: Vec<u8>,
}

/// The app's own HTTP stack (OkHttp, URLSession), for an app that must not use the built-in
/// HTTPS. Called on the thread that called the [`Phone`]; it may block.
#[uniffi::export(foreign)]
pub trait HttpTransport: Send + Sync {
    /// Sends the request and returns the answer, whatever its HTTP status. Throw
    /// `HomevisitError.Network` (any exception does) only when no answer came.
    fn send(&self, request: TransportRequest) -> Result<TransportResponse, HomevisitError>;
}

/// Adapts the app's transport to the phone's.
struct Foreign(Arc<dyn HttpTransport>);

impl transport::Transport for Foreign {
    fn send(
        &self,
        request: transport::HttpRequest,
    ) -> Result<transport::HttpResponse, TransportError> {
        let headers = request
            .headers
            .into_iter()
            .map(|(name, value)| Header { name, value })
            .collect();
        let answer = self
            .0
            .send(TransportRequest {
                method: request.method,
                url: request.url,
                headers,
                body: request.body,
            })
            .map_err(|e| TransportError(e.to_string()))?;
        Ok(transport::HttpResponse {
            status: answer.status,
            headers: answer
                .headers
                .into_iter()
                .map(|h| (h.name, h.value))
                .collect(),
            body: answer.body,
        })
    }
}

/// One field device: its files, session and waiting photos in an encrypted store.
#[derive(uniffi::Object)]
pub struct Phone {
    inner: Mutex<homevisit_phone::Phone>,
}

impl std::fmt::Debug for Phone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Phone").finish_non_exhaustive()
    }
}

fn key_of(key: &[u8]) -> Result<[u8; 32], HomevisitError> {
    key.try_into()
        .map_err(|_| invalid("key", format!("{} bytes, expected 32", key.len())))
}

impl Phone {
    fn lock(&self) -> MutexGuard<'_, homevisit_phone::Phone> {
        // A panic inside a call leaves the phone as its last commit left it: still usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn record(
        &self,
        f: impl FnOnce(&mut homevisit_phone::Phone) -> Result<String, PhoneError>,
    ) -> Result<String, HomevisitError> {
        Ok(f(&mut self.lock())?)
    }
}

#[uniffi::export]
impl Phone {
    /// Opens the phone kept in the directory `dir` (created if missing), under `key`: 32 random
    /// bytes the app keeps in the Android Keystore or the iOS Keychain. A wrong key is
    /// `WrongKey`, never garbage. Talks to the server over the built-in HTTPS.
    #[uniffi::constructor]
    pub fn open(dir: String, key: Vec<u8>) -> Result<Arc<Phone>, HomevisitError> {
        let phone = homevisit_phone::Phone::open(std::path::Path::new(&dir), key_of(&key)?)?;
        Ok(Arc::new(Phone {
            inner: Mutex::new(phone),
        }))
    }

    /// [`Phone::open`], talking to the server through the app's own `transport`.
    #[uniffi::constructor]
    pub fn open_with_transport(
        dir: String,
        key: Vec<u8>,
        transport: Arc<dyn HttpTransport>,
    ) -> Result<Arc<Phone>, HomevisitError> {
        let mut phone = homevisit_phone::Phone::open(std::path::Path::new(&dir), key_of(&key)?)?;
        phone.set_transport(Some(Arc::new(Foreign(transport))));
        Ok(Arc::new(Phone {
            inner: Mutex::new(phone),
        }))
    }

    /// Logs in and registers this phone. `ca_pem`: trust only these certificates (a county's
    /// own CA); `None` trusts the public web roots. Blocks.
    pub fn login(
        &self,
        server_url: String,
        ca_pem: Option<String>,
        username: String,
        password: String,
        device_name: String,
    ) -> Result<Account, HomevisitError> {
        let session = self.lock().login(
            &server_url,
            ca_pem.as_deref(),
            &username,
            &password,
            &device_name,
        )?;
        Ok(Account {
            username,
            role: session.role,
            scope: session.scope,
            device_id: session.device_id,
        })
    }

    /// Ends the session on the server and forgets it here; files stay for the next login.
    /// Returns whether the server confirmed. Blocks.
    pub fn logout(&self) -> Result<bool, HomevisitError> {
        Ok(self.lock().logout()?)
    }

    /// Deletes the store and all it holds. Delete the key from the keystore afterwards; every
    /// later call is `Wiped`.
    pub fn wipe(&self) -> Result<(), HomevisitError> {
        Ok(self.lock().wipe()?)
    }

    /// Sends waiting photos, then syncs every file; retries a cut connection. When the report
    /// says `wiped`, the server revoked this device and its data is gone: delete the key.
    /// Blocks; other calls may run between its round trips, so a new phone's due list shows
    /// while its files still arrive.
    pub fn sync(&self) -> Result<SyncReport, HomevisitError> {
        let mut report = homevisit_phone::SyncReport::default();
        // The lock is let go between steps: that is what lets the screens read the phone.
        while self.lock().sync_step(&mut report)? {}
        Ok(report.into())
    }

    /// [`Phone::sync`] on a thread of its own, awaited from a coroutine or a Swift task.
    pub async fn sync_async(self: Arc<Self>) -> Result<SyncReport, HomevisitError> {
        future::on_thread(move || self.sync()).await
    }

    /// Who is logged in, files held, what waits to be sent.
    pub fn status(&self) -> Result<PhoneStatus, HomevisitError> {
        Ok(self.lock().status()?.into())
    }

    /// Every child held, sorted by id.
    pub fn children(&self) -> Result<Vec<ChildSummary>, HomevisitError> {
        Ok(self
            .lock()
            .children()?
            .values()
            .map(ChildSummary::from)
            .collect())
    }

    /// Who is overdue or due soon on `today` (`YYYY-MM-DD`), most overdue first.
    pub fn due(&self, today: String) -> Result<Vec<DueItem>, HomevisitError> {
        let on = date("today", &today)?;
        let phone = self.lock();
        Ok(phone
            .due(on)?
            .into_iter()
            .map(|e| {
                let name = phone.child_summary(&e.id).map(|s| s.name.clone());
                DueItem::new(e, name.unwrap_or_default())
            })
            .collect())
    }

    /// Replaces the rules the due list follows: a preset name (`tiedong`, `chongqing`) or a
    /// rule set in TOML.
    pub fn set_rules(&self, preset_or_toml: String) -> Result<(), HomevisitError> {
        let rules =
            if homevisit_sync_core::rules::presets::NAMES.contains(&preset_or_toml.as_str()) {
                RuleSet::preset(&preset_or_toml)
            } else {
                RuleSet::from_toml(&preset_or_toml)
            }
            .map_err(|e| invalid("rules", e))?;
        self.lock().set_rules(rules);
        Ok(())
    }

    /// One child's whole file.
    pub fn child(&self, id: String) -> Result<ChildDetail, HomevisitError> {
        Ok(ChildDetail::from(&self.lock().child(&id)?))
    }

    /// Registers a child in one of the account's villages; returns the new file's id.
    pub fn add_child(&self, child: NewChild) -> Result<String, HomevisitError> {
        let child = homevisit_phone::NewChild {
            birth_date: date("birth_date", &child.birth_date)?,
            name: child.name,
            sex: child.sex,
            id_number: child.id_number,
            village_code: child.village_code,
            address: child.address,
            hukou_place: child.hukou_place,
            categories: child.categories,
            guardianship: child.guardianship,
            risk_flags: child.risk_flags,
        };
        Ok(self.lock().add_child(&child)?)
    }

    /// Records the director's assessment of what the visit rules read: `attr` is `category`,
    /// `guardianship` or `risk_flag`, `value` its key (`average`, `left_behind`, ...), from
    /// `effective` (`YYYY-MM-DD`, not after today) on; `present` false when it stops applying.
    /// The due list follows it at once. Returns the assessment's id.
    pub fn assess(
        &self,
        child_id: String,
        attr: String,
        value: String,
        present: bool,
        effective: String,
    ) -> Result<String, HomevisitError> {
        let assessment = homevisit_phone::Assessment {
            attr,
            value,
            present,
            effective: date("effective", &effective)?,
        };
        self.record(|p| p.assess(&child_id, &assessment))
    }

    /// Records a home visit on `date`, with photos as the camera gave them (JPEG or PNG; each
    /// is resized, stripped of location and kept encrypted until sent). Returns the record id.
    pub fn record_home_visit(
        &self,
        child_id: String,
        date: String,
        findings: Findings,
        notes: String,
        photos: Vec<Vec<u8>>,
    ) -> Result<String, HomevisitError> {
        let on = self::date("date", &date)?;
        let findings = (&findings).into();
        self.record(|p| p.record_home_visit(&child_id, on, findings, &notes, &photos))
    }

    /// Records a contact: `channel` is `phone`, `message` or `meeting`.
    pub fn record_contact(
        &self,
        child_id: String,
        date: String,
        channel: String,
        notes: String,
    ) -> Result<String, HomevisitError> {
        let on = self::date("date", &date)?;
        let channel: Channel = serde_json::from_value(serde_json::Value::String(channel))
            .map_err(|_| invalid("channel", "expected phone, message or meeting"))?;
        self.record(|p| p.record_contact(&child_id, on, channel, &notes))
    }

    /// Reports a danger found (强制报告): `kinds` such as `living_alone`, and who was told
    /// now (`police`, `supervisor`, ...). Supervisor and county are alerted at the next sync.
    pub fn report_danger(
        &self,
        child_id: String,
        date: String,
        kinds: Vec<String>,
        notes: String,
        notified: Vec<String>,
    ) -> Result<String, HomevisitError> {
        let on = self::date("date", &date)?;
        let report = homevisit_phone::DangerReport {
            kinds,
            notified,
            notes,
        };
        self.record(|p| p.report_danger(&child_id, on, &report))
    }

    /// Adds a work-log entry (工作日志).
    pub fn record_work_log(
        &self,
        child_id: String,
        date: String,
        summary: String,
        notes: String,
    ) -> Result<String, HomevisitError> {
        let on = self::date("date", &date)?;
        self.record(|p| p.record_work_log(&child_id, on, &summary, &notes))
    }

    /// Records care or assistance given (关爱帮扶).
    pub fn record_assistance(
        &self,
        child_id: String,
        date: String,
        summary: String,
        notes: String,
    ) -> Result<String, HomevisitError> {
        let on = self::date("date", &date)?;
        self.record(|p| p.record_assistance(&child_id, on, &summary, &notes))
    }

    /// Adds an entry to one of the file's parts of version 2: `collection` is `facts`,
    /// `care`, `benefits`, `plans` or `referrals`, and `entry` a JSON object in the document's
    /// shape (docs/FILE.md) without `by` and `recorded_at`, for example
    /// `{"kind":"dibao","status":"granted","granted_on":"2026-11-01","amount_fen":60000}`.
    /// A bad entry is refused naming its field (`benefits/kind`) and nothing is stored.
    /// Returns the entry's id.
    pub fn add_part(
        &self,
        child_id: String,
        collection: String,
        entry: String,
    ) -> Result<String, HomevisitError> {
        let entry = entry_json(&entry)?;
        self.record(|p| p.add_part(&child_id, &collection, &entry))
    }

    /// Corrects an entry of a version-2 part by appending a version (a plan reviewed, a
    /// benefit granted, a referral closed with its outcome); earlier versions stay.
    pub fn correct_part(
        &self,
        child_id: String,
        collection: String,
        entry_id: String,
        entry: String,
    ) -> Result<(), HomevisitError> {
        let entry = entry_json(&entry)?;
        Ok(self
            .lock()
            .correct_part(&child_id, &collection, &entry_id, &entry)?)
    }

    /// Withdraws an entry of a version-2 part, keeping it in the file with the reason.
    pub fn void_part(
        &self,
        child_id: String,
        collection: String,
        entry_id: String,
        reason: String,
    ) -> Result<(), HomevisitError> {
        Ok(self
            .lock()
            .void_part(&child_id, &collection, &entry_id, &reason)?)
    }

    /// The alerts sync brought this account (supervisors, directors), not closed, oldest first.
    pub fn alerts(&self) -> Result<Vec<AlertItem>, HomevisitError> {
        Ok(self
            .lock()
            .alerts()?
            .into_iter()
            .map(AlertItem::from)
            .collect())
    }

    /// Acknowledges an alert offline; it reaches the server with the next sync.
    pub fn acknowledge_alert(&self, id: String, note: String) -> Result<(), HomevisitError> {
        Ok(self.lock().acknowledge_alert(&id, &note)?)
    }
}

/// A photo as the phone keeps and sends it: what `record_home_visit` does to each photo, for
/// an app that shows the result first.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct ProcessedPhoto {
    /// The JPEG, at most 1600 px on its long edge, without metadata (no location).
    pub jpeg: Vec<u8>,
    /// Its SHA-256, lowercase hex: the name records use.
    pub sha256: String,
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// A thumbnail JPEG for lists.
    pub thumbnail: Vec<u8>,
}

/// Resizes, orients and re-encodes a camera photo (JPEG or PNG) as the phone keeps it, within
/// decoding limits that refuse image bombs. Takes a few hundred milliseconds for 12 megapixels:
/// call it off the UI thread.
#[uniffi::export]
pub fn process_photo(bytes: Vec<u8>) -> Result<ProcessedPhoto, HomevisitError> {
    let p = homevisit_sync_core::photo::process(
        &bytes,
        &homevisit_sync_core::photo::PhotoLimits::default(),
    )
    .map_err(|e| HomevisitError::Photo {
        index: 0,
        reason: e.to_string(),
    })?;
    Ok(ProcessedPhoto {
        jpeg: p.jpeg,
        sha256: p.sha256,
        width: p.width,
        height: p.height,
        thumbnail: p.thumbnail,
    })
}

/// The version of this SDK.
#[uniffi::export]
pub fn sdk_version() -> String {
    env!("CARGO_PKG_VERSION").to_owned()
}
