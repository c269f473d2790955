//! A living demo county: `homevisit serve --demo` (or `homevisit demo`, then `serve`).
//!
//! 吉林省四平市铁东区 (220303), the county of seed 002, with three of its townships (山门镇,
//! 叶赫满族镇 and 平东街道) of four villages or communities each; a director per village, a
//! supervisor per township, a county officer and an administrator; 25 children per village with
//! two years of monthly visits and contacts, and in each village a child just found whose
//! guardianship is not assessed yet. Some children are behind on their visits and two have an open
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
    Residence, SchoolStatus, WorkPlace,
};
use std::path::Path;

use diesel::prelude::*;

use crate::service::sync::store_made_here;
use crate::store::people::{self, Region, Role};
use crate::store::{DbConnection, write_transaction};

/// The demo county's code: 四平市铁东区.
pub const COUNTY: &str = "220303000000";
const COUNTY_NAME: &str = "铁东区";
/// Where its children's household registrations are.
const PLACE: &str = "吉林省四平市铁东区";

/// One of the county's twelve townships (seed 002 names them), with its villages (村, under a
/// 镇 or 乡) or communities (社区, under a 街道).
///
/// The three digits follow the ranges of the national statistical division code (街道
/// 001–099, 镇 100–199, 乡 200–399; 社区 001–199 and 村 200–399 below them); the village and
/// community names are illustrative, not the county's register, which a real deployment
/// imports with `homevisit region import`.
struct Township {
    code: u16,
    name: &'static str,
    places: &'static [&'static str],
}

const fn township(code: u16, name: &'static str, places: &'static [&'static str]) -> Township {
    Township { code, name, places }
}

/// A 街道 (its code under 100), whose units are communities (社区), not villages (村).
fn is_street(code: u16) -> bool {
    code < 100
}

/// In the order the demo uses them: the first three make the demo county.
const TOWNSHIPS: &[Township] = &[
    township(
        100,
        "山门镇",
        &["山门村", "东山村", "太平村", "新立村", "前进村", "永安村"],
    ),
    township(
        102,
        "叶赫满族镇",
        &["叶赫村", "营盘村", "转山村", "新发村", "永胜村", "王家村"],
    ),
    township(
        1,
        "平东街道",
        &[
            "平东社区",
            "和平社区",
            "新华社区",
            "园丁社区",
            "北山社区",
            "东丰社区",
        ],
    ),
    township(
        101,
        "石岭镇",
        &["石岭村", "新建村", "腰岭村", "大房身村", "双山村", "红石村"],
    ),
    township(
        200,
        "城东乡",
        &["城东村", "五里坡村", "靠山村", "红光村", "胜利村", "向阳村"],
    ),
    township(2, "北市场街道", &[]),
    township(3, "七马路街道", &[]),
    township(4, "四马路街道", &[]),
    township(5, "解放街道", &[]),
    township(6, "北门街道", &[]),
    township(7, "黄土坑街道", &[]),
    township(8, "平南街道", &[]),
];
/// Months of history per file.
pub const MONTHS: u32 = 24;

/// How big a county to build.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size {
    /// Townships: the county's twelve, then made-up 乡 (at most 100 in all).
    pub townships: usize,
    /// Villages per township (at most 199).
    pub villages: usize,
    /// Children per village.
    pub children: usize,
}

/// A demo village (村) or community (社区) and its director.
struct Village {
    code: String,
    director: String,
    hukou_place: String,
    rural: bool,
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
            "demo county {PLACE} ({COUNTY}): {} child files{}\n",
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
        name: COUNTY_NAME.into(),
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
        let (number, township_name, places) = match TOWNSHIPS.get(t) {
            Some(known) => (known.code, known.name.to_owned(), known.places),
            // A county larger than 铁东区 (the benchmark's) goes on with 乡 numbered 3xx.
            None => (
                300 + (t - TOWNSHIPS.len()) as u16,
                format!("第{}乡", t + 1),
                &[][..],
            ),
        };
        let township_code = format!("{}{:03}000", &COUNTY[..6], number);
        regions.push(Region {
            code: township_code.clone(),
            name: township_name.clone(),
            parent: Some(COUNTY.into()),
        });
        credentials.push(add(
            format!("supervisor{}", t + 1),
            Role::Supervisor,
            &township_code,
        ));
        for v in 0..size.villages {
            let (first, unit) = if is_street(number) {
                (1, "社区")
            } else {
                (200, "村")
            };
            let code = format!("{}{:03}", &township_code[..9], first + v);
            let name = places
                .get(v)
                .map_or_else(|| format!("第{}{unit}", v + 1), |n| (*n).to_owned());
            regions.push(Region {
                code: code.clone(),
                name: name.clone(),
                parent: Some(township_code.clone()),
            });
            let director = if size.townships < 10 && size.villages < 10 {
                format!("director{}{}", t + 1, v + 1)
            } else {
                format!("director{}_{}", t + 1, v + 1)
            };
            credentials.push(add(director.clone(), Role::Director, &code));
            villages.push(Village {
                code,
                director,
                hukou_place: format!("{PLACE}{township_name}{name}"),
                rural: !is_street(number),
            });
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
    for (i, village) in villages.iter().enumerate() {
        let director = village.director.as_str();
        // One transaction per village: a file is stored, compacted and projected as a sync
        // would, and a half-built village never shows.
        write_transaction(conn, |c| -> Result<(), DemoError> {
            for n in 0..size.children {
                // Most children are up to date; some a month or three behind; and in every
                // other village a child found three weeks ago, not assessed yet.
                let behind = [0, 0, 0, 0, 1, 0, 2, 0, 0, 3][(n + i) % 10];
                let just_found = n == 20 && i % 2 == 0;
                let spec = FileSpec {
                    village: &village.code,
                    director,
                    registered_on: if just_found {
                        today - chrono::Duration::days(20)
                    } else {
                        start
                    },
                    months: if just_found { 0 } else { MONTHS - behind },
                    hukou_place: &village.hukou_place,
                    rural: village.rural,
                    assessed: !just_found,
                };
                let mut file = generator.file(&spec)?;
                let residence = Fact {
                    effective: spec.registered_on,
                    about: FactAbout::Residence {
                        residence: if village.rural {
                            Residence::Rural
                        } else {
                            Residence::Urban
                        },
                    },
                };
                file.add_part(&residence, director, at(spec.registered_on))?;
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
                if n % 5 == 1 && village.rural && !just_found {
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
