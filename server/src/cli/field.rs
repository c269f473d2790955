//! `homevisit field ...`: a field device on the command line, built on sync-core exactly as the
//! phone app is: an encrypted store, offline edits, and batch sync with the server.
//!
//! The phone itself is `homevisit-phone`, the library the phone apps use through
//! `homevisit-ffi`; this module is its arguments and its printing. Everything lives in a state
//! directory (`--state`, default `homevisit-field`): `store` (the encrypted device store, which
//! holds the files, the session and the photos waiting to be sent) and `store.key` (its key; on
//! a phone this is in the Android Keystore or the iOS Keychain). Both are owner-readable only.

use anyhow::{Context, Result, bail};
use chrono::NaiveDate;
use clap::{Args, Subcommand};
use homevisit_phone::{Assessment, DangerReport, NewChild, Phone};
use homevisit_sync_core::file::{Channel, Findings};
use homevisit_sync_core::vocab::RecordKind;
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
        /// A category served under (left_behind, family_difficulty, ...; repeat for several).
        #[arg(long)]
        category: Vec<String>,
        /// The guardianship level (good, average, poor), if already assessed.
        #[arg(long)]
        guardianship: Option<String>,
        /// A risk flag (poor_family, scattered_orphan, ...; repeat for several).
        #[arg(long)]
        risk: Vec<String>,
    },
    /// Record an assessment the visit rules read: a category, the guardianship level or a
    /// risk flag, from a date on. Prints its id.
    Assess {
        /// The child's file id.
        child: String,
        /// category, guardianship or risk_flag.
        #[arg(long)]
        attr: String,
        /// Its key (average, left_behind, poor_family, ...).
        #[arg(long)]
        value: String,
        /// The date it took effect (default: today in China).
        #[arg(long)]
        from: Option<NaiveDate>,
        /// It stops applying from that date instead.
        #[arg(long)]
        stops: bool,
    },
    /// Record a contact, a home visit, a danger found, a work-log entry or assistance given.
    Record {
        /// The child's file id.
        child: String,
        /// home_visit, contact, danger, work_log or assistance (the notes are its summary).
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
    /// Add, correct or withdraw an entry of a part of the file: facts, care, benefits, plans
    /// or referrals (docs/FILE.md). Prints the new entry's id.
    Part {
        /// The child's file id.
        child: String,
        /// facts, care, benefits, plans or referrals.
        collection: String,
        /// The entry as a JSON object, e.g. for benefits
        /// '{"kind":"dibao","status":"granted","granted_on":"2026-11-01"}'.
        #[arg(long, required_unless_present = "void")]
        entry: Option<String>,
        /// Append the entry as a new version of this entry instead of adding one.
        #[arg(long, conflicts_with = "void")]
        correct: Option<String>,
        /// Withdraw this entry (with --reason).
        #[arg(long, requires = "reason")]
        void: Option<String>,
        /// Why the entry is withdrawn.
        #[arg(long)]
        reason: Option<String>,
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

/// The CLI's keystore: a key file beside the store, owner-readable only.
fn key(dir: &Path) -> Result<[u8; 32]> {
    let path = dir.join("store.key");
    if !path.exists() {
        homevisit_server::files::private_dir(dir)?;
        let key: [u8; 32] = rand::random();
        let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
        homevisit_server::files::private_write(&path, hex.as_bytes())
            .with_context(|| format!("writing {}", path.display()))?;
    }
    let hex = std::fs::read_to_string(&path)?;
    let bytes: Vec<u8> = (0..hex.trim().len())
        .step_by(2)
        .filter_map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect();
    bytes
        .try_into()
        .map_err(|_| anyhow::anyhow!("{} is damaged", path.display()))
}

fn open(dir: &Path) -> Result<Phone> {
    Phone::open(dir, key(dir)?).context("opening the device store")
}

/// Deletes the key once the phone has wiped its store.
fn forget_key(dir: &Path) {
    let _ = std::fs::remove_file(dir.join("store.key"));
}

fn today() -> NaiveDate {
    homevisit_server::service::clock::Clock::default().today()
}

/// Runs `homevisit field ...`.
pub fn run(args: FieldArgs) -> Result<()> {
    let dir = args.state;
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
            let ca_pem = ca
                .map(|path| {
                    std::fs::read_to_string(&path)
                        .with_context(|| format!("reading {}", path.display()))
                })
                .transpose()?;
            let mut phone = open(&dir)?;
            let session = phone.login(&server, ca_pem.as_deref(), &user, password, &device_name)?;
            println!(
                "logged in as {user} ({}), device {}",
                session.role, session.device_id
            );
        }
        FieldCommand::Status => {
            let phone = open(&dir)?;
            let status = phone.status()?;
            match (&status.username, &status.server) {
                (Some(user), Some(server)) => println!("user {user} on {server}"),
                _ => println!("not logged in"),
            }
            println!(
                "{} files, {} photos waiting",
                status.files, status.photos_waiting
            );
            if !status.set_aside.is_empty() {
                println!(
                    "{} files set aside: the server refused them; their work stays on this device",
                    status.set_aside.len()
                );
                for id in &status.set_aside {
                    let name = phone.child_summary(id).map_or("", |s| s.name.as_str());
                    println!("  set aside: {id}  {name}");
                }
            }
        }
        FieldCommand::List => {
            for s in open(&dir)?.children()?.values() {
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
            let mut phone = open(&dir)?;
            phone.set_rules(homevisit_server::settings::load_rules(&rules)?);
            for entry in phone.due(on.unwrap_or_else(today))? {
                let name = phone
                    .child_summary(&entry.id)
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
            category,
            guardianship,
            risk,
        } => {
            let id = open(&dir)?.add_child(&NewChild {
                name,
                sex,
                birth_date,
                id_number: None,
                village_code: village,
                address,
                hukou_place: hukou,
                categories: category,
                guardianship,
                risk_flags: risk,
            })?;
            println!("{id}");
        }
        FieldCommand::Assess {
            child,
            attr,
            value,
            from,
            stops,
        } => {
            let id = open(&dir)?.assess(
                &child,
                &Assessment {
                    attr,
                    value,
                    present: !stops,
                    effective: from.unwrap_or_else(today),
                },
            )?;
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
            let date = date.unwrap_or_else(today);
            let mut phone = open(&dir)?;
            let record = match kind.parse::<RecordKind>()? {
                RecordKind::HomeVisit => {
                    let photos = photo
                        .iter()
                        .map(|path| {
                            std::fs::read(path)
                                .with_context(|| format!("reading {}", path.display()))
                        })
                        .collect::<Result<Vec<_>>>()?;
                    phone.record_home_visit(&child, date, Findings::default(), &notes, &photos)?
                }
                RecordKind::Danger => phone.report_danger(
                    &child,
                    date,
                    &DangerReport {
                        kinds: danger,
                        notified: told,
                        notes,
                    },
                )?,
                RecordKind::Contact => {
                    phone.record_contact(&child, date, Channel::Phone, &notes)?
                }
                RecordKind::WorkLog => phone.record_work_log(&child, date, &notes, "")?,
                RecordKind::Assistance => phone.record_assistance(&child, date, &notes, "")?,
                other => bail!("record --kind {} is not offered here", other.key()),
            };
            println!("{record}");
        }
        FieldCommand::Part {
            child,
            collection,
            entry,
            correct,
            void,
            reason,
        } => {
            let mut phone = open(&dir)?;
            if let Some(id) = void {
                phone.void_part(
                    &child,
                    &collection,
                    &id,
                    reason.as_deref().unwrap_or_default(),
                )?;
                println!("{id}");
            } else {
                let entry: serde_json::Value =
                    serde_json::from_str(entry.as_deref().unwrap_or("{}"))
                        .context("--entry is not JSON")?;
                match correct {
                    Some(id) => {
                        phone.correct_part(&child, &collection, &id, &entry)?;
                        println!("{id}");
                    }
                    None => println!("{}", phone.add_part(&child, &collection, &entry)?),
                }
            }
        }
        FieldCommand::Sync => {
            let mut phone = open(&dir)?;
            let report = phone.sync()?;
            if report.wiped {
                forget_key(&dir);
                println!("this device was revoked: its data is wiped");
            } else {
                println!(
                    "synced: {} files, {} round trips, {} photos uploaded",
                    phone.status()?.files,
                    report.round_trips,
                    report.photos_uploaded
                );
            }
        }
        FieldCommand::Alerts { status, follow } => alerts(&mut open(&dir)?, &status, follow)?,
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

fn alerts(phone: &mut Phone, status: &str, follow: bool) -> Result<()> {
    if !follow {
        let list = phone.call(|c| c.get(&format!("/api/v1/alerts?status={status}")))?;
        for alert in list["alerts"].as_array().into_iter().flatten() {
            println!("{}", alert_line(alert));
        }
        println!("{} alerts", list["total"]);
        return Ok(());
    }
    let mut last = None;
    use std::io::Write;
    loop {
        let mut stream = phone.call(|c| c.alert_stream(last))?;
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
