//! A living demo county: `homevisit serve --demo` (or `homevisit demo`, then `serve`).
//!
//! 铁东区 with three townships of four villages; a director per village, a supervisor per
//! township, a county officer and an administrator; 25 children per village with two years of
//! monthly visits and contacts. Some children are behind on their visits and two have an open
//! danger finding, so every screen has something to show. Files go in through the same storage
//! path as a phone's sync (stored, compacted, projected).
//!
//! Passwords are generated once and kept in `DATA_DIR/demo-credentials.txt` (owner-readable
//! only), so the demo can be printed again on every start without storing a password in the
//! clear anywhere else.

use chrono::{Months, NaiveDate};
use homevisit_sync_core::demo::{FileSpec, Generator, at};
use homevisit_sync_core::file::{
    Agreement, Care, CareArrangement, CaregiverAssessment, Channel, ChildFile, DangerDetails, Fact,
    FactAbout, FileError, Notified, RecordVersion, Referral,
};
use homevisit_sync_core::vocab::{
    DangerKind, Parent, ParentSituation, Party, RecordKind, ReferralStatus, ReferralTarget,
    SchoolStatus, WorkPlace,
};
use std::path::Path;

use diesel::prelude::*;

use crate::service::sync::store_made_here;
use crate::store::people::{self, Region, Role};
use crate::store::{DbConnection, write_transaction};

/// The demo county's code.
pub const COUNTY: &str = "210302000000";
const TOWNSHIPS: &[&str] = &["新华街道", "红旗街道", "光明街道"];
const VILLAGES: &[&str] = &["东村", "西村", "南村", "北村"];
/// Months of history per file.
pub const MONTHS: u32 = 24;

/// How big a county to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size {
    /// Townships (at most 999).
    pub townships: usize,
    /// Villages per township (at most 999).
    pub villages: usize,
    /// Children per village.
    pub children: usize,
}

/// The demo: 3 townships of 4 villages of 25 children.
pub const DEMO: Size = Size {
    townships: 3,
    villages: 4,
    children: 25,
};

/// Why the demo could not be built.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// Regions or users could not be added.
    #[error("{0}")]
    People(#[from] people::PeopleError),
    /// The database failed.
    #[error("database: {0}")]
    Database(#[from] diesel::result::Error),
    /// A file could not be generated.
    #[error("generating files: {0}")]
    File(#[from] homevisit_sync_core::file::FileError),
    /// A file could not be stored.
    #[error("storing files: {0}")]
    Store(#[from] crate::service::sync::MadeHereError),
    /// The database already has users of its own: the demo is only built in an empty one.
    #[error("this database already has users: the demo county is only built in an empty database")]
    NotEmpty,
    /// The credentials file could not be written or read.
    #[error("credentials file: {0}")]
    Io(#[from] std::io::Error),
}

/// One demo login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credential {
    /// Username.
    pub username: String,
    /// Role key.
    pub role: String,
    /// Region code.
    pub region: String,
    /// Password.
    pub password: String,
}

/// What the demo holds.
#[derive(Debug, Clone)]
pub struct Demo {
    /// The logins.
    pub credentials: Vec<Credential>,
    /// Child files.
    pub children: usize,
    /// Whether it was built now (false: it was there already).
    pub built: bool,
}

impl Demo {
    /// The text printed for a newcomer.
    pub fn describe(&self) -> String {
        let mut s = format!(
            "demo county 铁东区 ({COUNTY}): {} child files{}\n",
            self.children,
            if self.built { ", just built" } else { "" }
        );
        s.push_str("logins (username, role, region, password):\n");
        for c in &self.credentials {
            s.push_str(&format!(
                "  {:<14} {:<10} {:<12} {}\n",
                c.username, c.role, c.region, c.password
            ));
        }
        s
    }
}

const CREDENTIALS_FILE: &str = "demo-credentials.txt";

fn read_credentials(path: &Path) -> Result<Vec<Credential>, DemoError> {
    let text = std::fs::read_to_string(path)?;
    Ok(text
        .lines()
        .filter_map(|line| {
            let mut f = line.split('\t');
            Some(Credential {
                username: f.next()?.to_owned(),
                role: f.next()?.to_owned(),
                region: f.next()?.to_owned(),
                password: f.next()?.to_owned(),
            })
        })
        .collect())
}

fn write_credentials(path: &Path, list: &[Credential]) -> Result<(), DemoError> {
    let text: String = list
        .iter()
        .map(|c| format!("{}\t{}\t{}\t{}\n", c.username, c.role, c.region, c.password))
        .collect();
    crate::files::private_write(path, text.as_bytes())?;
    Ok(())
}

/// Builds the demo county in the database unless it is there already.
pub fn ensure(
    conn: &mut DbConnection,
    data_dir: &Path,
    today: NaiveDate,
) -> Result<Demo, DemoError> {
    ensure_sized(conn, data_dir, today, DEMO)
}

/// [`ensure`] with another size (the benchmark builds a larger county).
pub fn ensure_sized(
    conn: &mut DbConnection,
    data_dir: &Path,
    today: NaiveDate,
    size: Size,
) -> Result<Demo, DemoError> {
    let credentials_path = data_dir.join(CREDENTIALS_FILE);
    if people::find_user(conn, "county")?.is_some() && credentials_path.exists() {
        let children = crate::store::children::count(conn)?;
        return Ok(Demo {
            credentials: read_credentials(&credentials_path)?,
            children,
            built: false,
        });
    }
    let users: i64 = crate::store::schema::users::table
        .count()
        .get_result(conn)?;
    if users > 0 {
        return Err(DemoError::NotEmpty);
    }
    let mut regions = vec![Region {
        code: COUNTY.into(),
        name: "铁东区".into(),
        parent: None,
    }];
    let mut credentials = Vec::new();
    let add = |username: String, role: Role, region: &str| Credential {
        username,
        role: role.key().into(),
        region: region.into(),
        password: people::generate_password(),
    };
    credentials.push(add("county".into(), Role::County, COUNTY));
    credentials.push(add("admin".into(), Role::Admin, ""));
    let mut villages = Vec::new();
    for t in 0..size.townships {
        let township = format!("{}{:03}000", &COUNTY[..6], t + 1);
        let name = TOWNSHIPS
            .get(t)
            .map_or_else(|| format!("第{}街道", t + 1), |n| (*n).to_owned());
        regions.push(Region {
            code: township.clone(),
            name: name.clone(),
            parent: Some(COUNTY.into()),
        });
        credentials.push(add(
            format!("supervisor{}", t + 1),
            Role::Supervisor,
            &township,
        ));
        for v in 0..size.villages {
            let code = format!("{}{:03}", &township[..9], v + 1);
            let village = VILLAGES
                .get(v)
                .map_or_else(|| format!("{}村", v + 1), |n| (*n).to_owned());
            regions.push(Region {
                code: code.clone(),
                name: format!("{name}{village}"),
                parent: Some(township.clone()),
            });
            let director = if size.townships < 10 && size.villages < 10 {
                format!("director{}{}", t + 1, v + 1)
            } else {
                format!("director{}_{}", t + 1, v + 1)
            };
            credentials.push(add(director.clone(), Role::Director, &code));
            villages.push((code, director));
        }
    }
    people::import_regions(conn, regions)?;
    let now = crate::service::clock::unix_now();
    for c in &credentials {
        let role: Role = c.role.parse()?;
        let scope: Vec<String> = if c.region.is_empty() {
            Vec::new()
        } else {
            vec![c.region.clone()]
        };
        people::add_user(
            conn,
            &c.username,
            &c.username,
            role,
            &scope,
            &c.password,
            now,
        )?;
    }
    let mut generator = Generator::new(20261123);
    let start = today
        .checked_sub_months(Months::new(MONTHS + 1))
        .unwrap_or(today);
    let mut children = 0;
    for (i, (village, director)) in villages.iter().enumerate() {
        // One transaction per village: a file is stored, compacted and projected as a sync
        // would, and a half-built village never shows.
        write_transaction(conn, |c| -> Result<(), DemoError> {
            for n in 0..size.children {
                // Most children are up to date; some a month or three behind.
                let behind = [0, 0, 0, 0, 1, 0, 2, 0, 0, 3][(n + i) % 10];
                let spec = FileSpec {
                    village,
                    director,
                    registered_on: start,
                    months: MONTHS - behind,
                };
                let mut file = generator.file(&spec)?;
                if n == 7 && i % 6 == 0 {
                    let found = today - chrono::Duration::days(2);
                    let danger = DangerDetails {
                        found: vec![DangerKind::LivingAlone],
                        // The police first (seed 002 item 8: 第一时间向公安机关报告).
                        notified: vec![
                            Notified {
                                party: Some(Party::Police),
                                whom: "辖区派出所".into(),
                                at: at(found),
                            },
                            Notified {
                                party: Some(Party::Supervisor),
                                whom: "乡镇儿童督导员".into(),
                                at: at(found),
                            },
                        ],
                        outcome: None,
                    };
                    let record = RecordVersion::danger(found, director, at(found), danger)
                        .with_notes("祖父住院，孩子独自在家，已联系邻居临时照看");
                    file.add_record(RecordKind::Danger, &record, director, at(found))?;
                }
                // Some children in entrusted care, one of them without a parent's call for
                // weeks; now and then a dropout referred back to school.
                if n % 5 == 1 {
                    entrusted_care(&mut file, director, start, today, n % 10 == 1)?;
                }
                if n == 12 && i % 3 == 0 {
                    dropped_out(&mut file, director, today)?;
                }
                // Imported, not received from a phone: there is no receipt to record.
                store_made_here(c, &mut file, director)?;
                children += 1;
            }
            Ok(())
        })?;
    }
    write_credentials(&credentials_path, &credentials)?;
    Ok(Demo {
        credentials,
        children,
        built: true,
    })
}

/// Both parents working outside the province, the grandmother caring under a written
/// agreement, and the parents' weekly calls (stopped three weeks ago when `lapsed`).
fn entrusted_care(
    file: &mut ChildFile,
    director: &str,
    start: NaiveDate,
    today: NaiveDate,
    lapsed: bool,
) -> Result<(), FileError> {
    for parent in [Parent::Father, Parent::Mother] {
        let fact = Fact {
            effective: start,
            about: FactAbout::Parent {
                parent,
                situation: ParentSituation::WorkingAway,
                place: Some(WorkPlace::OutsideProvince),
            },
        };
        file.add_part(&fact, director, at(start))?;
    }
    let arrangement = Care::Arrangement(CareArrangement {
        caregiver: "祖母".into(),
        relation: "祖母".into(),
        phone: None,
        since: start,
        ended_on: None,
        agreement: Some(Agreement {
            signed_on: start,
            covers: "日常生活照料、安全监护、就学接送、与父母每周联系".into(),
        }),
        assessment: Some(CaregiverAssessment {
            on: start,
            capable: true,
            notes: "身体健康，能够履行照护职责".into(),
        }),
    });
    file.add_part(&arrangement, director, at(start))?;
    let last = if lapsed { 21 } else { 3 };
    for days in [last, last + 7, last + 14] {
        let date = today - chrono::Duration::days(days);
        let contact = Care::ParentContact {
            date,
            parent: Parent::Mother,
            channel: Channel::Phone,
        };
        file.add_part(&contact, director, at(date))?;
    }
    Ok(())
}

/// A child who dropped out this autumn, referred to the school for 劝返复学.
fn dropped_out(file: &mut ChildFile, director: &str, today: NaiveDate) -> Result<(), FileError> {
    let since = today - chrono::Duration::days(40);
    let fact = Fact {
        effective: since,
        about: FactAbout::Schooling {
            school: "铁东区实验小学".into(),
            grade: "五年级".into(),
            status: SchoolStatus::DroppedOut,
        },
    };
    file.add_part(&fact, director, at(since))?;
    let on = since + chrono::Duration::days(3);
    let referral = Referral {
        to: ReferralTarget::SchoolReturn,
        on,
        status: ReferralStatus::Accepted,
        outcome: None,
        notes: "学校已安排班主任家访".into(),
    };
    file.add_part(&referral, director, at(on))?;
    Ok(())
}
