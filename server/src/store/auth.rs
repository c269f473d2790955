//! Logins, devices and refresh tokens.
//!
//! A login registers (or re-confirms) a device for the user and starts a refresh-token
//! *family*, which is also the session access tokens name (`sid`): ending the family ends
//! every access token of it at the next request. Each refresh spends the presented token and
//! issues its successor. Presenting a spent token again means it was copied: the whole family
//! is revoked, so the thief and the owner are both logged out and the owner must sign in again.
//! One exception keeps 2G phones working: a retry within [`RETRY_GRACE`] seconds of the spend,
//! while the successor is still unused, is taken for a response lost on the way and answered
//! with the *same* successor (derived from the token with the server's secret), so a replay in
//! the grace wins nothing the owner does not also hold.
//!
//! Failed logins slow down the next tries for that username from that address, and, past a
//! higher count, for that username from anywhere: the same for names that exist and names
//! that do not, and never a lock that only an administrator can lift.
//!
//! Only the SHA-256 of a refresh token is stored.

use diesel::prelude::*;
use hmac::{Hmac, Mac};
use homevisit_sync_core::photo::sha256_hex;
use rand::RngCore;

use super::people::{self, PeopleError, User};
use super::schema::{devices, login_failures, refresh_tokens, users};
use super::{DbConnection, write_transaction};

/// How long a refresh token lives, seconds: a phone may stay offline this long.
pub const REFRESH_TTL: i64 = 60 * 24 * 3600;
/// How long after a spend a retry of the same token is taken for a lost response, seconds.
pub const RETRY_GRACE: i64 = 120;
/// Failed logins for one username from one address after which each further try waits.
pub const THROTTLE_AFTER: i32 = 5;
/// Failed logins for one username from all addresses after which each further try waits.
pub const THROTTLE_USERNAME_AFTER: i32 = 20;
/// The first wait, seconds; it doubles with each further failure.
pub const FIRST_WAIT: i64 = 30;
/// The longest wait, seconds.
pub const MAX_WAIT: i64 = 15 * 60;
/// Failures older than this are forgotten, seconds.
pub const FORGET_AFTER: i64 = 24 * 3600;
/// The longest device name, in characters.
pub const MAX_DEVICE_NAME: usize = 64;
/// The `source` of a username's failures from every address.
const ANY_SOURCE: &str = "*";

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
    /// The village-code prefixes the user may see and write, so the phone can refuse work
    /// outside them while offline.
    pub scope: Vec<String>,
    /// The device.
    pub device_id: String,
    /// The session: the refresh-token family, named in access tokens.
    pub session: String,
    /// The new refresh token (shown to the client once, stored only hashed).
    pub refresh_token: String,
    /// When it expires, Unix seconds.
    pub refresh_expires_at: i64,
}

fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex(&bytes)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The successor of a refresh token: a keyed digest of it, so a retry gets the same one back
/// without the server keeping it.
fn successor_of(token: &str, secret: &[u8; 32]) -> String {
    let mut mac = <Hmac<sha2::Sha256> as Mac>::new_from_slice(secret)
        .unwrap_or_else(|_| unreachable!("HMAC takes a key of any length"));
    mac.update(b"homevisit refresh successor\0");
    mac.update(token.as_bytes());
    hex(&mac.finalize().into_bytes())
}

/// A device id as the phone sends it: a UUID.
pub fn parse_device_id(id: &str) -> Result<uuid::Uuid, AuthError> {
    uuid::Uuid::parse_str(id).map_err(|_| AuthError::Invalid("device_id must be a UUID".into()))
}

/// What a device name may not hold: control characters, the characters that reorder text
/// around them, and markup. The OpenAPI document states the same rule as a pattern.
pub const DEVICE_NAME_PATTERN: &str =
    "^[^\\x00-\\x1f\\x7f-\\x9f<>&\"\\u061c\\u200e\\u200f\\u202a-\\u202e\\u2066-\\u2069]{1,64}$";

/// A device name as administrators will read it in lists and logs: printable, one line, no
/// markup, no reordering of the text around it.
pub fn check_device_name(name: &str) -> Result<&str, AuthError> {
    let bad = |why: &str| Err(AuthError::Invalid(format!("device_name {why}")));
    if name.is_empty() || name.chars().count() > MAX_DEVICE_NAME {
        return bad(&format!("must be 1 to {MAX_DEVICE_NAME} characters"));
    }
    let bidi = |c: char| matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}');
    if name.chars().any(|c| c.is_control() || bidi(c)) {
        return bad("may not hold control or text-direction characters");
    }
    if name.contains(['<', '>', '&', '"']) {
        return bad("may not hold < > & or \"");
    }
    Ok(name)
}

/// When the next try for `username` from `source` may come, if it must wait.
fn throttled(
    conn: &mut DbConnection,
    username: &str,
    source: &str,
    now: i64,
) -> QueryResult<Option<i64>> {
    let until: Option<i64> = login_failures::table
        .filter(login_failures::username.eq(username))
        .filter(login_failures::source.eq_any([source, ANY_SOURCE]))
        .filter(login_failures::last_failed_at.gt(now - FORGET_AFTER))
        .select(diesel::dsl::max(login_failures::wait_until))
        .first(conn)?;
    Ok(until.filter(|u| *u > now).map(|u| u - now))
}

/// Counts a failure for `username` from `source`, and from anywhere.
fn record_failure(
    conn: &mut DbConnection,
    username: &str,
    source: &str,
    now: i64,
) -> QueryResult<()> {
    write_transaction(conn, |c| {
        for (key, after) in [
            (source, THROTTLE_AFTER),
            (ANY_SOURCE, THROTTLE_USERNAME_AFTER),
        ] {
            let row = login_failures::table
                .filter(login_failures::username.eq(username))
                .filter(login_failures::source.eq(key))
                .select((login_failures::failures, login_failures::last_failed_at))
                .first::<(i32, i64)>(c)
                .optional()?;
            let failures = match row {
                Some((n, last)) if now - last < FORGET_AFTER => n.saturating_add(1),
                _ => 1,
            };
            let wait = if failures >= after {
                FIRST_WAIT
                    .checked_shl((failures - after).min(16) as u32)
                    .unwrap_or(MAX_WAIT)
                    .min(MAX_WAIT)
            } else {
                0
            };
            let values = (
                login_failures::failures.eq(failures),
                login_failures::last_failed_at.eq(now),
                login_failures::wait_until.eq(now + wait),
            );
            if row.is_some() {
                diesel::update(
                    login_failures::table
                        .filter(login_failures::username.eq(username))
                        .filter(login_failures::source.eq(key)),
                )
                .set(values)
                .execute(c)?;
            } else {
                diesel::insert_into(login_failures::table)
                    .values((
                        login_failures::username.eq(username),
                        login_failures::source.eq(key),
                        values,
                    ))
                    .execute(c)?;
            }
        }
        Ok(())
    })
}

/// Checks a password and, if it matches, registers the device and starts a token family.
/// `source` is the caller's address, for throttling.
pub fn login(
    conn: &mut DbConnection,
    username: &str,
    password: &str,
    device_id: &str,
    device_name: &str,
    source: &str,
    now: i64,
) -> Result<Granted, AuthError> {
    let device_id = parse_device_id(device_id)?.to_string();
    let device_name = check_device_name(device_name)?;
    // Names longer than any username are still throttled, under a bounded key.
    let key: String = username.chars().take(128).collect();
    if let Some(retry_after) = throttled(conn, &key, source, now)? {
        return Err(AuthError::Throttled { retry_after });
    }
    let user = people::find_user(conn, username)?;
    let matches = match &user {
        Some(user) => user.password_matches(password),
        None => {
            // Spend the same time as a real check, so timing does not tell which names exist.
            people::verify_password(password, dummy_hash());
            false
        }
    };
    let Some(user) = user.filter(|_| matches) else {
        record_failure(conn, &key, source, now)?;
        return Err(AuthError::InvalidCredentials);
    };
    if user.disabled {
        return Err(AuthError::Disabled);
    }
    write_transaction(conn, |c| {
        diesel::delete(login_failures::table.filter(login_failures::username.eq(&key)))
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
        let token = new_token();
        insert_token(c, &token, &family, &device_id, &user.id, now)?;
        Ok(Granted {
            user_id: user.id.clone(),
            role: user.role.key(),
            scope: prefixes(&user),
            device_id: device_id.clone(),
            session: family,
            refresh_token: token,
            refresh_expires_at: now + REFRESH_TTL,
        })
    })
}

fn prefixes(user: &User) -> Vec<String> {
    user.scope().prefixes().map(str::to_owned).collect()
}

/// An argon2 hash of a random password, made once, to verify against for unknown usernames.
fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| people::hash(&people::generate_password()).unwrap_or_default())
}

fn insert_token(
    c: &mut DbConnection,
    token: &str,
    family: &str,
    device_id: &str,
    user_id: &str,
    now: i64,
) -> QueryResult<()> {
    diesel::insert_into(refresh_tokens::table)
        .values((
            refresh_tokens::token_hash.eq(sha256_hex(token.as_bytes())),
            refresh_tokens::family.eq(family),
            refresh_tokens::device_id.eq(device_id),
            refresh_tokens::user_id.eq(user_id),
            refresh_tokens::issued_at.eq(now),
            refresh_tokens::expires_at.eq(now + REFRESH_TTL),
        ))
        .execute(c)
        .map(|_| ())
}

type TokenRow = (
    String,
    String,
    String,
    i64,
    Option<i64>,
    Option<String>,
    Option<i64>,
);

enum Rotation {
    Granted(Granted),
    Refused(AuthError),
}

/// Spends a refresh token and issues its successor; `secret` keys the successor's derivation.
pub fn refresh(
    conn: &mut DbConnection,
    token: &str,
    secret: &[u8; 32],
    now: i64,
) -> Result<Granted, AuthError> {
    let hash = sha256_hex(token.as_bytes());
    // A refusal that revokes a family must still commit, so it is a value here, not an error.
    let outcome = write_transaction(conn, |c| -> Result<Rotation, AuthError> {
        let Some((family, device_id, user_id, expires_at, spent_at, successor, revoked)) =
            refresh_tokens::table
                .filter(refresh_tokens::token_hash.eq(&hash))
                .select((
                    refresh_tokens::family,
                    refresh_tokens::device_id,
                    refresh_tokens::user_id,
                    refresh_tokens::expires_at,
                    refresh_tokens::spent_at,
                    refresh_tokens::successor,
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
        if revoked.is_some() {
            // A token of an ended session: whoever presents it, the session stays ended, and
            // whatever else of the family may live is ended with it.
            revoke_family(c, &family, now)?;
            return Ok(Rotation::Refused(AuthError::InvalidRefresh));
        }
        if expires_at <= now {
            return Ok(Rotation::Refused(AuthError::InvalidRefresh));
        }
        let Some(user) = people::find_user_by_id(c, &user_id)? else {
            return Ok(Rotation::Refused(AuthError::InvalidRefresh));
        };
        if user.disabled {
            return Ok(Rotation::Refused(AuthError::Disabled));
        }
        let next = successor_of(token, secret);
        let next_hash = sha256_hex(next.as_bytes());
        let mut next_expires = now + REFRESH_TTL;
        if let Some(spent) = spent_at {
            let successor_unused = refresh_tokens::table
                .filter(refresh_tokens::token_hash.eq(&next_hash))
                .select((
                    refresh_tokens::spent_at,
                    refresh_tokens::revoked_at,
                    refresh_tokens::expires_at,
                ))
                .first::<(Option<i64>, Option<i64>, i64)>(c)
                .optional()?
                .filter(|(spent, revoked, _)| spent.is_none() && revoked.is_none());
            match successor_unused {
                // The response carrying the successor was lost: the same one again.
                Some((_, _, expires))
                    if now - spent <= RETRY_GRACE && successor.as_deref() == Some(&next_hash) =>
                {
                    next_expires = expires;
                }
                _ => {
                    revoke_family(c, &family, now)?;
                    return Ok(Rotation::Refused(AuthError::RefreshReused));
                }
            }
        } else {
            insert_token(c, &next, &family, &device_id, &user_id, now)?;
            diesel::update(refresh_tokens::table.filter(refresh_tokens::token_hash.eq(&hash)))
                .set((
                    refresh_tokens::spent_at.eq(now),
                    refresh_tokens::successor.eq(&next_hash),
                ))
                .execute(c)?;
        }
        diesel::update(devices::table.filter(devices::id.eq(&device_id)))
            .set(devices::last_seen_at.eq(now))
            .execute(c)?;
        Ok(Rotation::Granted(Granted {
            user_id,
            role: user.role.key(),
            scope: prefixes(&user),
            device_id,
            session: family,
            refresh_token: next,
            refresh_expires_at: next_expires,
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

/// Ends the login the refresh token belongs to, and with it every access token of that
/// session. Unknown tokens are ignored: logging out twice is not an error.
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
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
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

/// Looks up the user, device and session of a verified access token. `None` if either is
/// gone, the device is not the user's, the user is disabled, or the session has ended (logged
/// out, or revoked for a reused refresh token). A revoked device is still found, so that its
/// sync can be told to wipe.
pub fn principal(
    conn: &mut DbConnection,
    user_id: &str,
    device_id: &str,
    session: &str,
    now: i64,
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
    let Some(revoked) = device else {
        return Ok(None);
    };
    if revoked.is_none() {
        let live = refresh_tokens::table
            .filter(refresh_tokens::family.eq(session))
            .filter(refresh_tokens::device_id.eq(device_id))
            .filter(refresh_tokens::revoked_at.is_null())
            .filter(refresh_tokens::expires_at.gt(now))
            .count()
            .get_result::<i64>(conn)?;
        if live == 0 {
            return Ok(None);
        }
    }
    Ok(Some(Principal {
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
