//! `homevisit field ...`: a field device on the command line, built on sync-core exactly as the
//! phone app is: an encrypted store, offline edits, and batch sync with the server.
//!
//! Everything lives in a state directory (`--state`, default `homevisit-field`): `store/` (the
//! encrypted device store), `store.key` (its key; on a phone this is in the Android Keystore or
//! the iOS Keychain), `session.json` (server, device id and tokens) and `photos/` (processed
//! photos waiting to be uploaded). Secrets are owner-readable only.

use anyhow::{Context, Result, bail};
use chrono::{DateTime, NaiveDate, Utc};
use clap::{Args, Subcommand};
use homevisit_server::client::{Client, ClientError, Session};
use homevisit_sync_core::device::Device;
use homevisit_sync_core::file::{
    ChildId, DangerDetails, Findings, Notified, Profile, RecordVersion,
};
use homevisit_sync_core::photo::{self, PhotoLimits};
use homevisit_sync_core::store::StoreKey;
use homevisit_sync_core::sync::device::Outcome;
use homevisit_sync_core::vocab::{DangerKind, Party, RecordKind, Sex};
use serde::{Deserialize, Serialize};
use std::io::Read;
use std::path::{Path, PathBuf};

/// `homevisit field ...`.
#[derive(Debug, Args)]
pub struct FieldArgs {
    /// The device's state directory.
    #[arg(long, default_value = "homevisit-field")]
    state: PathBuf,
    #[command(subcommand)]
    command: FieldCommand,
}

/// What the field device can do.
#[derive(Debug, Subcommand)]
enum FieldCommand {
    /// Log in (the password is read from standard input) and register this device.
    Login {
        /// The server, `https://host:port`.
        #[arg(long)]
        server: String,
        /// Trust only this PEM certificate (the server's `dev-tls/cert.pem` for a demo).
        #[arg(long)]
        ca: Option<PathBuf>,
        /// Username.
        #[arg(long)]
        user: String,
        /// This device's name, as administrators see it.
        #[arg(long, default_value = "homevisit field")]
        device_name: String,
    },
    /// Files held, last sync, photos waiting.
    Status,
    /// Children held on this device.
    List,
    /// Who is due or overdue for what.
    Due {
        /// A preset (tiedong, chongqing) or a rule file.
        #[arg(long, default_value = "tiedong")]
        rules: String,
        /// The date (default: today in China).
        #[arg(long)]
        on: Option<NaiveDate>,
    },
    /// Register a child; prints the new file's id.
    AddChild {
        /// Name.
        #[arg(long)]
        name: String,
        /// female or male.
        #[arg(long)]
        sex: String,
        /// YYYY-MM-DD.
        #[arg(long)]
        birth_date: NaiveDate,
        /// The 12-digit village code.
        #[arg(long)]
        village: String,
        /// Home address.
        #[arg(long, default_value = "")]
        address: String,
        /// Place of household registration.
        #[arg(long, default_value = "")]
        hukou: String,
    },
    /// Record a contact, a home visit or a danger found.
    Record {
        /// The child's file id.
        child: String,
        /// home_visit, contact or danger.
        #[arg(long)]
        kind: String,
        /// The date (default: today in China).
        #[arg(long)]
        date: Option<NaiveDate>,
        /// Notes.
        #[arg(long, default_value = "")]
        notes: String,
        /// For a danger record: what was found (living_alone, domestic_violence, ...).
        #[arg(long)]
        danger: Vec<String>,
        /// For a danger record: who was told, now (police, supervisor, civil_affairs,
        /// village_committee, school, other). A kind that must go to the police is flagged
        /// until the police are among them.
        #[arg(long)]
        told: Vec<String>,
        /// Attach a photo (processed on the device: resized, metadata stripped).
        #[arg(long)]
        photo: Vec<PathBuf>,
    },
    /// Upload waiting photos, then sync every file with the server.
    Sync,
    /// The alerts this account is told of (supervisors, directors, counties).
    Alerts {
        /// Only alerts of this status (open, acknowledged, closed).
        #[arg(long, default_value = "open")]
        status: String,
        /// Keep printing alerts as they are raised and change, until interrupted.
        #[arg(long)]
        follow: bool,
    },
}

#[derive(Debug, Serialize, Deserialize)]
struct Saved {
    server: String,
    ca: Option<PathBuf>,
    username: String,
    session: Session,
}

struct State {
    dir: PathBuf,
}

fn private_write(path: &Path, bytes: &[u8]) -> Result<()> {
    homevisit_server::files::private_write(path, bytes)
        .with_context(|| format!("writing {}", path.display()))
}

impl State {
    fn key(&self) -> Result<StoreKey> {
        let path = self.dir.join("store.key");
        if !path.exists() {
            homevisit_server::files::private_dir(&self.dir)?;
            let key: [u8; 32] = rand::random();
            let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
            private_write(&path, hex.as_bytes())?;
        }
        let hex = std::fs::read_to_string(&path)?;
        let bytes: Vec<u8> = (0..hex.trim().len())
            .step_by(2)
            .filter_map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
            .collect();
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|_| anyhow::anyhow!("{} is damaged", path.display()))?;
        Ok(StoreKey::new(key))
    }

    fn device(&self) -> Result<Device> {
        let key = self.key()?;
        Device::open(&self.dir.join("store"), &key).context("opening the device store")
    }

    fn saved(&self) -> Result<Saved> {
        let path = self.dir.join("session.json");
        let text = std::fs::read_to_string(&path)
            .context("not logged in: run `homevisit field login` first")?;
        Ok(serde_json::from_str(&text)?)
    }

    fn save(&self, saved: &Saved) -> Result<()> {
        homevisit_server::files::private_dir(&self.dir)?;
        private_write(
            &self.dir.join("session.json"),
            serde_json::to_string_pretty(saved)?.as_bytes(),
        )
    }

    fn client(&self) -> Result<(Client, Saved)> {
        let saved = self.saved()?;
        let mut client = Client::new(&saved.server, saved.ca.as_deref())?;
        client.session = Some(saved.session.clone());
        Ok((client, saved))
    }

    fn photos(&self) -> PathBuf {
        self.dir.join("photos")
    }

    /// Deletes everything: the server revoked this device.
    fn wipe(&self, device: Device) -> Result<()> {
        device.wipe()?;
        for name in ["store.key", "session.json"] {
            let _ = std::fs::remove_file(self.dir.join(name));
        }
        let _ = std::fs::remove_dir_all(self.photos());
        Ok(())
    }
}

fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(homevisit_server::service::clock::unix_now(), 0).unwrap_or_default()
}

fn today() -> NaiveDate {
    homevisit_server::service::clock::Clock::default().today()
}

/// Runs `homevisit field ...`.
pub fn run(args: FieldArgs) -> Result<()> {
    let state = State { dir: args.state };
    match args.command {
        FieldCommand::Login {
            server,
            ca,
            user,
            device_name,
        } => {
            let mut password = String::new();
            std::io::stdin().read_to_string(&mut password)?;
            let password = password.trim_end_matches(['\r', '\n']);
            let device_id = match state.saved() {
                Ok(saved) => saved.session.device_id,
                Err(_) => uuid::Uuid::new_v4().to_string(),
            };
            let mut client = Client::new(&server, ca.as_deref())?;
            let session = client
                .login(&user, password, &device_id, &device_name)?
                .clone();
            state.device()?;
            println!("logged in as {user} ({}), device {device_id}", session.role);
            state.save(&Saved {
                server,
                ca,
                username: user,
                session,
            })?;
        }
        FieldCommand::Status => {
            let device = state.device()?;
            let waiting = std::fs::read_dir(state.photos()).map_or(0, |d| d.count());
            match state.saved() {
                Ok(s) => println!("user {} on {}", s.username, s.server),
                Err(_) => println!("not logged in"),
            }
            println!("{} files, {waiting} photos waiting", device.len());
            let aside = device.quarantined()?;
            if !aside.is_empty() {
                println!(
                    "{} files set aside: the server refused them; their work stays on this device",
                    aside.len()
                );
                for id in aside {
                    let name = device.summaries().get(&id).map_or("", |s| s.name.as_str());
                    println!("  set aside: {id}  {name}");
                }
            }
        }
        FieldCommand::List => {
            let device = state.device()?;
            for s in device.summaries().values() {
                println!(
                    "{}  {}  {}  {} records",
                    s.id,
                    s.village_code,
                    s.name,
                    s.records.len()
                );
            }
        }
        FieldCommand::Due { rules, on } => {
            let set = homevisit_server::settings::load_rules(&rules)?;
            let device = state.device()?;
            let on = on.unwrap_or_else(today);
            for entry in device.due(&set, on) {
                let name = uuid::Uuid::parse_str(&entry.id)
                    .ok()
                    .and_then(|u| device.summaries().get(&ChildId(u)))
                    .map_or("?", |s| s.name.as_str());
                println!(
                    "{}  {}  {}  due {}  {}{}",
                    entry.id,
                    name,
                    entry.kind,
                    entry.due,
                    entry.status.key(),
                    if entry.days_overdue > 0 {
                        format!(" ({} days)", entry.days_overdue)
                    } else {
                        String::new()
                    }
                );
            }
        }
        FieldCommand::AddChild {
            name,
            sex,
            birth_date,
            village,
            address,
            hukou,
        } => {
            let saved = state.saved()?;
            let scope = homevisit_sync_core::sync::Scope::new(saved.session.scope.iter());
            if !scope.contains(&village) {
                bail!(
                    "village {village} is outside your regions ({}): the server would refuse it",
                    saved.session.scope.join(", ")
                );
            }
            let by = saved.username;
            let sex: Sex = sex.parse()?;
            let mut device = state.device()?;
            let profile = Profile {
                name,
                sex,
                birth_date,
                id_number: None,
                hukou_place: hukou,
                address,
                village_code: village,
                registered_on: today(),
            };
            let id = device.create(&profile, &by, now())?;
            println!("{id}");
        }
        FieldCommand::Record {
            child,
            kind,
            date,
            notes,
            danger,
            told,
            photo,
        } => {
            let by = state.saved()?.username;
            let id = ChildId(uuid::Uuid::parse_str(&child).context("the child id is a UUID")?);
            let kind: RecordKind = kind.parse()?;
            let date = date.unwrap_or_else(today);
            let at = now();
            let mut version = match kind {
                RecordKind::HomeVisit => {
                    RecordVersion::home_visit(date, &by, at, Findings::default())
                }
                RecordKind::Danger => {
                    let found = danger
                        .iter()
                        .map(|d| d.parse::<DangerKind>())
                        .collect::<Result<Vec<_>, _>>()?;
                    if found.is_empty() {
                        bail!("a danger record needs at least one --danger");
                    }
                    let notified = told
                        .iter()
                        .map(|t| {
                            Ok(Notified {
                                party: Some(t.parse::<Party>()?),
                                whom: String::new(),
                                at,
                            })
                        })
                        .collect::<Result<Vec<_>, homevisit_sync_core::vocab::UnknownKey>>()?;
                    let details = DangerDetails {
                        found,
                        notified,
                        outcome: None,
                    };
                    RecordVersion::danger(date, &by, at, details)
                }
                RecordKind::Contact => {
                    RecordVersion::contact(date, &by, at, homevisit_sync_core::file::Channel::Phone)
                }
                other => bail!("record --kind {} is not offered here", other.key()),
            }
            .with_notes(&notes);
            homevisit_server::files::private_dir(&state.photos())?;
            for path in photo {
                let bytes =
                    std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
                let processed = photo::process(&bytes, &PhotoLimits::default())?;
                let keep = state.photos().join(format!("{}.jpg", processed.sha256));
                std::fs::write(&keep, &processed.jpeg)?;
                version.photos.push(processed.sha256);
            }
            let mut device = state.device()?;
            let record = device.edit(&id, |f| f.add_record(kind, &version, &by, at))?;
            println!("{record}");
        }
        FieldCommand::Sync => sync(&state)?,
        FieldCommand::Alerts { status, follow } => alerts(&state, &status, follow)?,
    }
    Ok(())
}

fn alert_line(alert: &serde_json::Value) -> String {
    let field = |k: &str| alert[k].as_str().unwrap_or_default().to_owned();
    format!(
        "{}\t{}\t{}\t{}\t{}",
        field("raised_at"),
        field("kind"),
        field("status"),
        field("id"),
        field("text")
    )
}

/// Runs `f` with a client, refreshing the session once if the access token has expired.
fn with_session<T>(
    state: &State,
    mut f: impl FnMut(&Client) -> Result<T, ClientError>,
) -> Result<T> {
    let (mut client, mut saved) = state.client()?;
    match f(&client) {
        Err(ClientError::Api { status: 401, .. }) => {
            if !refreshed(state, &mut client, &mut saved)? {
                bail!("this device was revoked: sync to wipe it");
            }
            Ok(f(&client)?)
        }
        other => Ok(other?),
    }
}

fn alerts(state: &State, status: &str, follow: bool) -> Result<()> {
    if !follow {
        let list = with_session(state, |c| c.get(&format!("/api/v1/alerts?status={status}")))?;
        for alert in list["alerts"].as_array().into_iter().flatten() {
            println!("{}", alert_line(alert));
        }
        println!("{} alerts", list["total"]);
        return Ok(());
    }
    let mut last = None;
    use std::io::Write;
    loop {
        let mut stream = with_session(state, |c| c.alert_stream(last))?;
        if last.is_none() {
            println!("following alerts as they come (Ctrl-C to stop)");
            std::io::stdout().flush()?;
        }
        // The server ends a stream after a while; resume where it stopped.
        while let Some(event) = stream.next_event()? {
            let change = event.alert["change"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            println!("{change}\t{}", alert_line(&event.alert));
            std::io::stdout().flush()?;
            last = Some(event.id);
        }
    }
}

fn refreshed(state: &State, client: &mut Client, saved: &mut Saved) -> Result<bool> {
    match client.refresh() {
        Ok(session) => {
            saved.session = session.clone();
            state.save(saved)?;
            Ok(true)
        }
        Err(ClientError::Api { code, .. }) if code == "device_revoked" => Ok(false),
        Err(e) => Err(e.into()),
    }
}

fn sync(state: &State) -> Result<()> {
    let (mut client, mut saved) = state.client()?;
    let mut device = state.device()?;
    for attempt in 0..2 {
        match upload_photos(state, &client).and_then(|n| {
            client
                .sync_device(&mut device)
                .map(|(outcome, rounds)| (outcome, rounds, n))
        }) {
            Ok((Outcome::Wipe, _, _)) => {
                state.wipe(device)?;
                println!("this device was revoked: its data is wiped");
                return Ok(());
            }
            Ok((_, rounds, photos)) => {
                println!(
                    "synced: {} files, {rounds} round trips, {photos} photos uploaded",
                    device.len()
                );
                return Ok(());
            }
            Err(ClientError::Api { status: 401, .. }) if attempt == 0 => {
                if !refreshed(state, &mut client, &mut saved)? {
                    state.wipe(device)?;
                    println!("this device was revoked: its data is wiped");
                    return Ok(());
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    bail!("the server refused the refreshed session")
}

fn upload_photos(state: &State, client: &Client) -> Result<usize, ClientError> {
    let Ok(dir) = std::fs::read_dir(state.photos()) else {
        return Ok(0);
    };
    let token = client
        .session
        .as_ref()
        .map(|s| s.access_token.clone())
        .ok_or(ClientError::NoSession)?;
    let mut sent = 0;
    for entry in dir.flatten() {
        let path = entry.path();
        let Some(sha) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        let bytes = std::fs::read(&path).map_err(|e| ClientError::Transport(e.to_string()))?;
        let reply = client.call(
            "PUT",
            &format!("/api/v1/blobs/{sha}"),
            Some(&token),
            "image/jpeg",
            &bytes,
        )?;
        match reply.status {
            200 | 201 => {
                let _ = std::fs::remove_file(&path);
                sent += 1;
            }
            status => {
                return Err(ClientError::Api {
                    status,
                    code: reply.code().unwrap_or_default(),
                    message: String::new(),
                    files: Vec::new(),
                });
            }
        }
    }
    Ok(sent)
}
