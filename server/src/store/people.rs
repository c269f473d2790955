//! Places and people: the division tree, and users with a role and a region scope.

use argon2::password_hash::{PasswordHasher, SaltString, rand_core::OsRng};
use argon2::{Argon2, PasswordHash, PasswordVerifier};
use diesel::prelude::*;

use super::DbConnection;
use super::schema::{login_failures, regions, user_regions, users};

/// What a user does, and so what they may see and do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, utoipa::ToSchema)]
#[schema(rename_all = "snake_case")]
pub enum Role {
    /// A village child director: writes files of their villages.
    Director,
    /// A township supervisor: reads the township, receives alerts.
    Supervisor,
    /// County civil-affairs staff.
    County,
    /// Administers users and devices.
    Admin,
}

impl Role {
    /// The stored key.
    pub fn key(self) -> &'static str {
        match self {
            Role::Director => "director",
            Role::Supervisor => "supervisor",
            Role::County => "county",
            Role::Admin => "admin",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = PeopleError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "director" => Ok(Role::Director),
            "supervisor" => Ok(Role::Supervisor),
            "county" => Ok(Role::County),
            "admin" => Ok(Role::Admin),
            other => Err(PeopleError::Invalid(format!(
                "unknown role `{other}`: director, supervisor, county or admin"
            ))),
        }
    }
}

/// Why a region or user operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum PeopleError {
    /// Bad input, said in words.
    #[error("{0}")]
    Invalid(String),
    /// No user by that name.
    #[error("no user `{0}`")]
    NoSuchUser(String),
    /// The database failed.
    #[error("database: {0}")]
    Database(#[from] diesel::result::Error),
    /// Hashing failed.
    #[error("password hashing failed")]
    Hash,
}

/// One row of a division-code import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Region {
    /// The statistical division code (2 to 12 digits).
    pub code: String,
    /// Its name.
    pub name: String,
    /// The code of the region it lies in, if any.
    pub parent: Option<String>,
}

/// Parses `code,name,parent` lines (a header line is skipped; fields may be double-quoted).
pub fn parse_regions(csv: &str) -> Result<Vec<Region>, PeopleError> {
    let mut out = Vec::new();
    for (i, line) in csv.lines().enumerate() {
        if line.trim().is_empty() || (i == 0 && line.trim_start().starts_with("code")) {
            continue;
        }
        let fields = split_csv(line);
        let bad = |what: &str| PeopleError::Invalid(format!("line {}: {what}", i + 1));
        let [code, name, parent] = fields.as_slice() else {
            return Err(bad("expected three fields: code, name, parent"));
        };
        let digits =
            |s: &str| !s.is_empty() && s.len() <= 12 && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(code) {
            return Err(bad("the code must be 1 to 12 digits"));
        }
        if name.trim().is_empty() {
            return Err(bad("the name is empty"));
        }
        let parent = Some(parent.trim().to_owned()).filter(|p| !p.is_empty());
        if parent
            .as_deref()
            .is_some_and(|p| !digits(p) || p == code.trim() || !code.starts_with(region_prefix(p)))
        {
            return Err(bad(
                "the parent must be a shorter code that the code starts with",
            ));
        }
        out.push(Region {
            code: code.trim().to_owned(),
            name: name.trim().to_owned(),
            parent,
        });
    }
    Ok(out)
}

fn split_csv(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            ('"', _) => quoted = !quoted,
            (',', false) => fields.push(std::mem::take(&mut field)),
            (c, _) => field.push(c),
        }
    }
    fields.push(field);
    fields
}

/// Imports regions in one transaction, parents first; existing codes are renamed in place.
pub fn import_regions(
    conn: &mut DbConnection,
    mut list: Vec<Region>,
) -> Result<usize, PeopleError> {
    list.sort_by_key(|r| r.code.len());
    conn.transaction(|c| {
        for r in &list {
            let updated = diesel::update(regions::table.filter(regions::code.eq(&r.code)))
                .set((regions::name.eq(&r.name), regions::parent.eq(&r.parent)))
                .execute(c)?;
            if updated == 0 {
                diesel::insert_into(regions::table)
                    .values((
                        regions::code.eq(&r.code),
                        regions::name.eq(&r.name),
                        regions::parent.eq(&r.parent),
                    ))
                    .execute(c)?;
            }
        }
        Ok(list.len())
    })
}

/// A fresh password: 16 characters from an alphabet without look-alikes, printed once.
pub fn generate_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    use rand::Rng;
    let mut rng = rand::thread_rng();
    (0..16)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

pub(crate) fn hash(password: &str) -> Result<String, PeopleError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|_| PeopleError::Hash)
}

/// Whether `password` matches a stored argon2 hash.
pub fn verify_password(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored)
        .map(|h| {
            Argon2::default()
                .verify_password(password.as_bytes(), &h)
                .is_ok()
        })
        .unwrap_or(false)
}

/// Adds a user with a role and regions; the regions must exist.
pub fn add_user(
    conn: &mut DbConnection,
    username: &str,
    display_name: &str,
    role: Role,
    region_codes: &[String],
    password: &str,
    now: i64,
) -> Result<String, PeopleError> {
    if username.is_empty()
        || !username
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        return Err(PeopleError::Invalid(
            "a username is letters, digits, dot, dash or underscore".into(),
        ));
    }
    if region_codes.is_empty() && role != Role::Admin {
        return Err(PeopleError::Invalid(format!(
            "a {} needs at least one --region",
            role.key()
        )));
    }
    let password_hash = hash(password)?;
    let id = uuid::Uuid::new_v4().to_string();
    conn.transaction(|c| {
        let taken: i64 = users::table
            .filter(users::username.eq(username))
            .count()
            .get_result(c)?;
        if taken > 0 {
            return Err(PeopleError::Invalid(format!("user `{username}` exists")));
        }
        for code in region_codes {
            let known: i64 = regions::table
                .filter(regions::code.eq(code))
                .count()
                .get_result(c)?;
            if known == 0 {
                return Err(PeopleError::Invalid(format!(
                    "no region {code}: import the division codes first"
                )));
            }
        }
        diesel::insert_into(users::table)
            .values((
                users::id.eq(&id),
                users::username.eq(username),
                users::display_name.eq(display_name),
                users::role.eq(role.key()),
                users::password_hash.eq(&password_hash),
                users::disabled.eq(false),
                users::created_at.eq(now),
            ))
            .execute(c)?;
        for code in region_codes {
            diesel::insert_into(user_regions::table)
                .values((
                    user_regions::user_id.eq(&id),
                    user_regions::region_code.eq(code),
                ))
                .execute(c)?;
        }
        Ok(id.clone())
    })
}

/// Disables (or re-enables) a user.
pub fn set_disabled(
    conn: &mut DbConnection,
    username: &str,
    disabled: bool,
) -> Result<(), PeopleError> {
    let n = diesel::update(users::table.filter(users::username.eq(username)))
        .set(users::disabled.eq(disabled))
        .execute(conn)?;
    if n == 0 {
        return Err(PeopleError::NoSuchUser(username.to_owned()));
    }
    Ok(())
}

/// Sets a new password and forgets the user's failed logins.
pub fn reset_password(
    conn: &mut DbConnection,
    username: &str,
    password: &str,
) -> Result<(), PeopleError> {
    let password_hash = hash(password)?;
    super::write_transaction(conn, |c| {
        let n = diesel::update(users::table.filter(users::username.eq(username)))
            .set(users::password_hash.eq(password_hash))
            .execute(c)?;
        if n == 0 {
            return Err(PeopleError::NoSuchUser(username.to_owned()));
        }
        diesel::delete(login_failures::table.filter(login_failures::username.eq(username)))
            .execute(c)?;
        Ok(())
    })
}

/// A stored user, for checks and login.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Its id.
    pub id: String,
    /// Its login name.
    pub username: String,
    /// Its role.
    pub role: Role,
    /// Disabled users cannot log in.
    pub disabled: bool,
    /// The region codes of its scope.
    pub regions: Vec<String>,
    password_hash: String,
}

impl User {
    /// Whether `password` is this user's.
    pub fn password_matches(&self, password: &str) -> bool {
        verify_password(password, &self.password_hash)
    }

    /// The village-code prefixes the user's regions cover.
    pub fn scope(&self) -> homevisit_sync_core::sync::Scope {
        homevisit_sync_core::sync::Scope::new(self.regions.iter().map(|c| region_prefix(c)))
    }
}

/// The prefix every village code inside a region starts with.
///
/// Division codes are 12 digits: province 2, city 2, county 2, township 3, village 3; a region
/// above village level is padded with zeros (township 220303100000 covers the villages
/// 220303100xxx). Shorter codes are taken as the prefix they already are.
pub fn region_prefix(code: &str) -> &str {
    if code.len() != 12 {
        return code;
    }
    let mut end = 12;
    for width in [3, 3, 2, 2] {
        if code[end - width..end].bytes().all(|b| b == b'0') {
            end -= width;
        } else {
            break;
        }
    }
    &code[..end]
}

/// Looks a user up by name.
pub fn find_user(conn: &mut DbConnection, username: &str) -> Result<Option<User>, PeopleError> {
    let query = users::table
        .filter(users::username.eq(username))
        .into_boxed();
    load_user(conn, query)
}

/// Looks a user up by id.
pub fn find_user_by_id(conn: &mut DbConnection, id: &str) -> Result<Option<User>, PeopleError> {
    let query = users::table.filter(users::id.eq(id)).into_boxed();
    load_user(conn, query)
}

type UserRow = (String, String, String, bool, String);

fn load_user(
    conn: &mut DbConnection,
    query: users::BoxedQuery<'_, super::connection::MultiBackend>,
) -> Result<Option<User>, PeopleError> {
    let Some((id, username, role, disabled, password_hash)) = query
        .select((
            users::id,
            users::username,
            users::role,
            users::disabled,
            users::password_hash,
        ))
        .first::<UserRow>(conn)
        .optional()?
    else {
        return Ok(None);
    };
    let regions = user_regions::table
        .filter(user_regions::user_id.eq(&id))
        .select(user_regions::region_code)
        .order(user_regions::region_code)
        .load(conn)?;
    Ok(Some(User {
        id,
        username,
        role: role.parse()?,
        disabled,
        regions,
        password_hash,
    }))
}

/// The codes of the villages (and communities) among the regions: 12 digits, not ending in a
/// zero village part.
pub fn village_codes(conn: &mut DbConnection) -> QueryResult<std::collections::BTreeSet<String>> {
    Ok(regions::table
        .select(regions::code)
        .load::<String>(conn)?
        .into_iter()
        .filter(|c| c.len() == 12 && !c.ends_with("000"))
        .collect())
}

/// For each village code that has a region row: `"<parent name> <village name>"` (or the
/// village name alone).
pub fn place_names(
    conn: &mut DbConnection,
    villages: &[String],
) -> QueryResult<std::collections::BTreeMap<String, String>> {
    let codes: std::collections::BTreeSet<&String> = villages.iter().collect();
    let codes: Vec<&String> = codes.into_iter().collect();
    let mut rows: Vec<(String, String, Option<String>)> = Vec::new();
    for chunk in codes.chunks(500) {
        rows.extend(
            regions::table
                .filter(regions::code.eq_any(chunk))
                .select((regions::code, regions::name, regions::parent))
                .load::<(String, String, Option<String>)>(conn)?,
        );
    }
    let parents: Vec<String> = rows.iter().filter_map(|r| r.2.clone()).collect();
    let parent_names = region_names(conn, &parents)?;
    Ok(rows
        .into_iter()
        .map(|(code, name, parent)| {
            let place = match parent.and_then(|p| parent_names.get(&p)) {
                Some(p) => format!("{p} {name}"),
                None => name,
            };
            (code, place)
        })
        .collect())
}

/// The names of the regions `codes`, where the regions table has them.
pub fn region_names(
    conn: &mut DbConnection,
    codes: &[String],
) -> QueryResult<std::collections::BTreeMap<String, String>> {
    let mut out = std::collections::BTreeMap::new();
    for chunk in codes.chunks(500) {
        out.extend(
            regions::table
                .filter(regions::code.eq_any(chunk))
                .select((regions::code, regions::name))
                .load::<(String, String)>(conn)?,
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_region_covers_the_villages_whose_codes_start_with_its_significant_digits() {
        assert_eq!(region_prefix("220303100200"), "220303100200");
        assert_eq!(region_prefix("220303100000"), "220303100");
        assert_eq!(region_prefix("220303000000"), "220303");
        assert_eq!(region_prefix("210300000000"), "2103");
        assert_eq!(region_prefix("210000000000"), "21");
        assert_eq!(region_prefix("2103"), "2103");
    }

    #[test]
    fn a_parent_must_contain_its_child_region() {
        assert!(parse_regions("220303100200,山门村,220303100000\n").is_ok());
        assert!(parse_regions("220303100200,山门村,220302001000\n").is_err());
        assert!(parse_regions("220303100200,山门村,220303100200\n").is_err());
    }
}
