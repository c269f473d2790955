//! Logins, devices and refresh tokens.
//!
//! A login registers (or re-confirms) a device for the user and starts a refresh-token
//! *family*. Each refresh spends the presented token and issues its successor. Presenting a
//! spent token again means it was copied: the whole family is revoked, so the thief and the
//! owner are both logged out and the owner must sign in again. One exception keeps 2G phones
//! working: a retry within [`RETRY_GRACE`] seconds of the spend, while the successor is still
//! unused, is taken for a response lost on the way, and succeeds once.
//!
//! Only the SHA-256 of a refresh token is stored.

use diesel::prelude::*;
use homevisit_sync_core::photo::sha256_hex;
use rand::RngCore;

use super::people::{self, LOCKED, PeopleError, User};
use super::schema::{devices, refresh_tokens, users};
use super::{DbConnection, write_transaction};

/// How long a refresh token lives, seconds: a phone may stay offline this long.
pub const REFRESH_TTL: i64 = 60 * 24 * 3600;
/// How long after a spend a retry of the same token is taken for a lost response, seconds.
pub const RETRY_GRACE: i64 = 120;
/// Failed logins after which each further try must wait.
pub const THROTTLE_AFTER: i32 = 5;
/// Failed logins after which the account is locked until an admin resets the password.
pub const LOCK_AFTER: i32 = 10;

/// Why a login, refresh or device operation was refused.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Unknown user or wrong password (never said which).
    #[error("wrong username or password")]
    InvalidCredentials,
    /// Too many failures: wait this many seconds.
    #[error("too many failed logins: try again in {retry_after} s")]
    Throttled {
        /// Seconds to wait.
        retry_after: i64,
    },
    /// Too many failures: an admin must reset the password.
    #[error("account locked after repeated failed logins: ask an administrator")]
    Locked,
    /// The account was disabled by an administrator.
    #[error("account disabled")]
    Disabled,
    /// The device id is registered to another user.
    #[error("this device is registered to another user")]
    DeviceTaken,
    /// The device was revoked: it must wipe its store.
    #[error("device revoked: wipe local data")]
    DeviceRevoked,
    /// Unknown, expired or revoked refresh token.
    #[error("invalid refresh token")]
    InvalidRefresh,
    /// A spent refresh token was presented again; its family is revoked.
    #[error("refresh token reused: every session of this login is revoked")]
    RefreshReused,
    /// Bad input, in words.
    #[error("{0}")]
    Invalid(String),
    /// The database failed.
    #[error("database: {0}")]
    Database(#[from] diesel::result::Error),
    /// Looking the user up failed.
    #[error("{0}")]
    People(#[from] PeopleError),
}

/// A successful login or refresh.
#[derive(Debug, Clone)]
pub struct Granted {
    /// The user.
    pub user_id: String,
    /// The user's role key.
    pub role: &'static str,
    /// The device.
    pub device_id: String,
    /// The new refresh token (shown to the client once, stored only hashed).
    pub refresh_token: String,
    /// When it expires, Unix seconds.
    pub refresh_expires_at: i64,
}

fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A device id as the phone sends it: a UUID.
pub fn parse_device_id(id: &str) -> Result<uuid::Uuid, AuthError> {
    uuid::Uuid::parse_str(id).map_err(|_| AuthError::Invalid("device_id must be a UUID".into()))
}

/// Checks a password and, if it matches, registers the device and starts a token family.
pub fn login(
    conn: &mut DbConnection,
    username: &str,
    password: &str,
    device_id: &str,
    device_name: &str,
    now: i64,
) -> Result<Granted, AuthError> {
    let device_id = parse_device_id(device_id)?.to_string();
    let device_name = device_name.trim();
    if device_name.is_empty() || device_name.chars().count() > 100 {
        return Err(AuthError::Invalid(
            "device_name must be 1 to 100 characters".into(),
        ));
    }
    let Some(user) = people::find_user(conn, username)? else {
        // Spend the same time as a real check, so timing does not tell which names exist.
        people::verify_password(password, dummy_hash());
        return Err(AuthError::InvalidCredentials);
    };
    match user.locked_until {
        Some(LOCKED) => return Err(AuthError::Locked),
        Some(until) if until > now => {
            return Err(AuthError::Throttled {
                retry_after: until - now,
            });
        }
        _ => {}
    }
    if !user.password_matches(password) {
        record_failure(conn, &user, now)?;
        return Err(AuthError::InvalidCredentials);
    }
    if user.disabled {
        return Err(AuthError::Disabled);
    }
    write_transaction(conn, |c| {
        diesel::update(users::table.filter(users::id.eq(&user.id)))
            .set((
                users::failed_logins.eq(0),
                users::locked_until.eq(None::<i64>),
            ))
            .execute(c)?;
        let existing = devices::table
            .filter(devices::id.eq(&device_id))
            .select((devices::user_id, devices::revoked_at))
            .first::<(String, Option<i64>)>(c)
            .optional()?;
        match existing {
            Some((owner, _)) if owner != user.id => return Err(AuthError::DeviceTaken),
            Some((_, Some(_))) => return Err(AuthError::DeviceRevoked),
            Some(_) => {
                diesel::update(devices::table.filter(devices::id.eq(&device_id)))
                    .set((devices::name.eq(device_name), devices::last_seen_at.eq(now)))
                    .execute(c)?;
            }
            None => {
                diesel::insert_into(devices::table)
                    .values((
                        devices::id.eq(&device_id),
                        devices::user_id.eq(&user.id),
                        devices::name.eq(device_name),
                        devices::created_at.eq(now),
                        devices::last_seen_at.eq(now),
                    ))
                    .execute(c)?;
            }
        }
        let family = uuid::Uuid::new_v4().to_string();
        let token = insert_token(c, &family, &device_id, &user.id, now)?;
        Ok(Granted {
            user_id: user.id.clone(),
            role: user.role.key(),
            device_id: device_id.clone(),
            refresh_token: token,
            refresh_expires_at: now + REFRESH_TTL,
        })
    })
}

/// An argon2 hash of a random password, made once, to verify against for unknown usernames.
fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| people::hash(&people::generate_password()).unwrap_or_default())
}

fn record_failure(conn: &mut DbConnection, user: &User, now: i64) -> Result<(), AuthError> {
    write_transaction(conn, |c| {
        // Incrementing in place takes the row lock first, so concurrent failures all count.
        diesel::update(users::table.filter(users::id.eq(&user.id)))
            .set(users::failed_logins.eq(users::failed_logins + 1))
            .execute(c)?;
        let failures: i32 = users::table
            .filter(users::id.eq(&user.id))
            .select(users::failed_logins)
            .first(c)?;
        let locked_until = if failures >= LOCK_AFTER {
            Some(LOCKED)
        } else if failures >= THROTTLE_AFTER {
            // 30 s, doubling with each further failure.
            Some(now + (30 << (failures - THROTTLE_AFTER)))
        } else {
            None
        };
        diesel::update(users::table.filter(users::id.eq(&user.id)))
            .set((
                users::last_failed_at.eq(now),
                users::locked_until.eq(locked_until),
            ))
            .execute(c)?;
        Ok(())
    })
}

fn insert_token(
    c: &mut DbConnection,
    family: &str,
    device_id: &str,
    user_id: &str,
    now: i64,
) -> QueryResult<String> {
    let token = new_token();
    diesel::insert_into(refresh_tokens::table)
        .values((
            refresh_tokens::token_hash.eq(sha256_hex(token.as_bytes())),
            refresh_tokens::family.eq(family),
            refresh_tokens::device_id.eq(device_id),
            refresh_tokens::user_id.eq(user_id),
            refresh_tokens::issued_at.eq(now),
            refresh_tokens::expires_at.eq(now + REFRESH_TTL),
            refresh_tokens::retried.eq(false),
        ))
        .execute(c)?;
    Ok(token)
}

type TokenRow = (
    String,
    String,
    String,
    i64,
    Option<i64>,
    Option<String>,
    bool,
    Option<i64>,
);

enum Rotation {
    Granted(Granted),
    Refused(AuthError),
}

/// Spends a refresh token and issues its successor.
pub fn refresh(conn: &mut DbConnection, token: &str, now: i64) -> Result<Granted, AuthError> {
    let hash = sha256_hex(token.as_bytes());
    // A refusal that revokes a family must still commit, so it is a value here, not an error.
    let outcome = write_transaction(conn, |c| -> Result<Rotation, AuthError> {
        let Some((family, device_id, user_id, expires_at, spent_at, successor, retried, revoked)) =
            refresh_tokens::table
                .filter(refresh_tokens::token_hash.eq(&hash))
                .select((
                    refresh_tokens::family,
                    refresh_tokens::device_id,
                    refresh_tokens::user_id,
                    refresh_tokens::expires_at,
                    refresh_tokens::spent_at,
                    refresh_tokens::successor,
                    refresh_tokens::retried,
                    refresh_tokens::revoked_at,
                ))
                .first::<TokenRow>(c)
                .optional()?
        else {
            return Ok(Rotation::Refused(AuthError::InvalidRefresh));
        };
        let device_revoked = devices::table
            .filter(devices::id.eq(&device_id))
            .select(devices::revoked_at)
            .first::<Option<i64>>(c)?
            .is_some();
        if device_revoked {
            return Ok(Rotation::Refused(AuthError::DeviceRevoked));
        }
        if revoked.is_some() || expires_at <= now {
            return Ok(Rotation::Refused(AuthError::InvalidRefresh));
        }
        let Some(user) = people::find_user_by_id(c, &user_id)? else {
            return Ok(Rotation::Refused(AuthError::InvalidRefresh));
        };
        if user.disabled {
            return Ok(Rotation::Refused(AuthError::Disabled));
        }
        if let Some(spent) = spent_at {
            let successor_unused = match &successor {
                Some(s) => refresh_tokens::table
                    .filter(refresh_tokens::token_hash.eq(s))
                    .select((refresh_tokens::spent_at, refresh_tokens::revoked_at))
                    .first::<(Option<i64>, Option<i64>)>(c)
                    .optional()?
                    .is_some_and(|(spent, revoked)| spent.is_none() && revoked.is_none()),
                None => false,
            };
            if now - spent > RETRY_GRACE || retried || !successor_unused {
                revoke_family(c, &family, now)?;
                return Ok(Rotation::Refused(AuthError::RefreshReused));
            }
            // The response carrying the successor was lost: replace it, once.
            if let Some(s) = &successor {
                diesel::update(refresh_tokens::table.filter(refresh_tokens::token_hash.eq(s)))
                    .set(refresh_tokens::revoked_at.eq(now))
                    .execute(c)?;
            }
        }
        let next = insert_token(c, &family, &device_id, &user_id, now)?;
        diesel::update(refresh_tokens::table.filter(refresh_tokens::token_hash.eq(&hash)))
            .set((
                refresh_tokens::spent_at.eq(spent_at.unwrap_or(now)),
                refresh_tokens::successor.eq(sha256_hex(next.as_bytes())),
                refresh_tokens::retried.eq(spent_at.is_some()),
            ))
            .execute(c)?;
        diesel::update(devices::table.filter(devices::id.eq(&device_id)))
            .set(devices::last_seen_at.eq(now))
            .execute(c)?;
        Ok(Rotation::Granted(Granted {
            user_id,
            role: user.role.key(),
            device_id,
            refresh_token: next,
            refresh_expires_at: now + REFRESH_TTL,
        }))
    })?;
    match outcome {
        Rotation::Granted(g) => Ok(g),
        Rotation::Refused(e) => Err(e),
    }
}

fn revoke_family(c: &mut DbConnection, family: &str, now: i64) -> QueryResult<usize> {
    diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::family.eq(family))
            .filter(refresh_tokens::revoked_at.is_null()),
    )
    .set(refresh_tokens::revoked_at.eq(now))
    .execute(c)
}

/// Ends the login the refresh token belongs to. Unknown tokens are ignored: logging out twice
/// is not an error.
pub fn logout(conn: &mut DbConnection, token: &str, now: i64) -> Result<(), AuthError> {
    let hash = sha256_hex(token.as_bytes());
    write_transaction(conn, |c| {
        let family = refresh_tokens::table
            .filter(refresh_tokens::token_hash.eq(&hash))
            .select(refresh_tokens::family)
            .first::<String>(c)
            .optional()?;
        if let Some(family) = family {
            revoke_family(c, &family, now)?;
        }
        Ok(())
    })
}

/// A registered device, for administrators.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeviceInfo {
    /// Its id.
    pub id: String,
    /// Whose it is (username).
    pub username: String,
    /// The name the phone gave.
    pub name: String,
    /// First login, Unix seconds.
    pub created_at: i64,
    /// Last login, refresh or sync, Unix seconds.
    pub last_seen_at: i64,
    /// When it was revoked, if it was.
    pub revoked_at: Option<i64>,
}

/// Every registered device, newest first.
pub fn list_devices(conn: &mut DbConnection) -> Result<Vec<DeviceInfo>, AuthError> {
    let rows = devices::table
        .inner_join(users::table)
        .order(devices::created_at.desc())
        .select((
            devices::id,
            users::username,
            devices::name,
            devices::created_at,
            devices::last_seen_at,
            devices::revoked_at,
        ))
        .load::<(String, String, String, i64, i64, Option<i64>)>(conn)?;
    Ok(rows
        .into_iter()
        .map(
            |(id, username, name, created_at, last_seen_at, revoked_at)| DeviceInfo {
                id,
                username,
                name,
                created_at,
                last_seen_at,
                revoked_at,
            },
        )
        .collect())
}

/// Revokes a device and every refresh token it holds. Returns false if there is no such
/// device. Revoking twice keeps the first time.
pub fn revoke_device(conn: &mut DbConnection, id: &str, now: i64) -> Result<bool, AuthError> {
    write_transaction(conn, |c| {
        let known = devices::table
            .filter(devices::id.eq(id))
            .count()
            .get_result::<i64>(c)?;
        if known == 0 {
            return Ok(false);
        }
        diesel::update(
            devices::table
                .filter(devices::id.eq(id))
                .filter(devices::revoked_at.is_null()),
        )
        .set(devices::revoked_at.eq(now))
        .execute(c)?;
        diesel::update(
            refresh_tokens::table
                .filter(refresh_tokens::device_id.eq(id))
                .filter(refresh_tokens::revoked_at.is_null()),
        )
        .set(refresh_tokens::revoked_at.eq(now))
        .execute(c)?;
        Ok(true)
    })
}

/// Who an access token speaks for, as the database says now.
#[derive(Debug, Clone)]
pub struct Principal {
    /// The user.
    pub user: User,
    /// The device.
    pub device_id: String,
    /// The device was revoked.
    pub device_revoked: bool,
}

/// Looks up the user and device of a verified access token. `None` if either is gone, the
/// device is not the user's, or the user is disabled.
pub fn principal(
    conn: &mut DbConnection,
    user_id: &str,
    device_id: &str,
) -> Result<Option<Principal>, AuthError> {
    let Some(user) = people::find_user_by_id(conn, user_id)? else {
        return Ok(None);
    };
    if user.disabled {
        return Ok(None);
    }
    let device = devices::table
        .filter(devices::id.eq(device_id))
        .filter(devices::user_id.eq(user_id))
        .select(devices::revoked_at)
        .first::<Option<i64>>(conn)
        .optional()?;
    Ok(device.map(|revoked| Principal {
        user,
        device_id: device_id.to_owned(),
        device_revoked: revoked.is_some(),
    }))
}

/// Notes that a device was heard from.
pub fn touch_device(conn: &mut DbConnection, device_id: &str, now: i64) -> QueryResult<()> {
    diesel::update(devices::table.filter(devices::id.eq(device_id)))
        .set(devices::last_seen_at.eq(now))
        .execute(conn)
        .map(|_| ())
}
