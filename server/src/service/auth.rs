//! Logins, refresh tokens and sessions: the rules. (`store::auth` reads and writes the rows.)
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

use hmac::{Hmac, Mac};
use homevisit_sync_core::photo::sha256_hex;
use rand::RngCore;

use crate::store::auth::{self as rows, ANY_SOURCE, Failures};
use crate::store::people::{self, PeopleError, User};
use crate::store::{DbConnection, write_transaction};

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

/// How long the next try must wait after `failures` failures, when waiting starts at
/// `threshold` failures: 30 s, doubling with each further failure, at most [`MAX_WAIT`].
pub fn wait_after(failures: i32, threshold: i32) -> i64 {
    if failures < threshold {
        return 0;
    }
    FIRST_WAIT
        .checked_shl((failures - threshold).min(16) as u32)
        .unwrap_or(MAX_WAIT)
        .min(MAX_WAIT)
}

/// Counts a failure for `username` from `source`, and from anywhere.
fn count_failure(
    conn: &mut DbConnection,
    username: &str,
    source: &str,
    now: i64,
) -> diesel::QueryResult<()> {
    write_transaction(conn, |c| {
        for (key, threshold) in [
            (source, THROTTLE_AFTER),
            (ANY_SOURCE, THROTTLE_USERNAME_AFTER),
        ] {
            let known = rows::failures(c, username, key)?;
            let failures = match known {
                Some(Failures { count, last }) if now - last < FORGET_AFTER => {
                    count.saturating_add(1)
                }
                _ => 1,
            };
            let wait_until = now + wait_after(failures, threshold);
            rows::set_failures(c, username, key, failures, now, wait_until, known.is_some())?;
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
    let until = rows::wait_until(conn, &key, source, now - FORGET_AFTER)?;
    if let Some(until) = until.filter(|u| *u > now) {
        return Err(AuthError::Throttled {
            retry_after: until - now,
        });
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
        count_failure(conn, &key, source, now)?;
        return Err(AuthError::InvalidCredentials);
    };
    if user.disabled {
        return Err(AuthError::Disabled);
    }
    write_transaction(conn, |c| {
        rows::forget_failures(c, &key)?;
        match rows::device_owner(c, &device_id)? {
            Some((owner, _)) if owner != user.id => return Err(AuthError::DeviceTaken),
            Some((_, Some(_))) => return Err(AuthError::DeviceRevoked),
            Some(_) => rows::rename_device(c, &device_id, device_name, now)?,
            None => rows::insert_device(c, &device_id, &user.id, device_name, now)?,
        }
        let family = uuid::Uuid::new_v4().to_string();
        let token = new_token();
        rows::insert_token(
            c,
            &sha256_hex(token.as_bytes()),
            &family,
            &device_id,
            &user.id,
            now,
            now + REFRESH_TTL,
        )?;
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
        let Some(t) = rows::token(c, &hash)? else {
            return Ok(Rotation::Refused(AuthError::InvalidRefresh));
        };
        if rows::device_revoked(c, &t.device_id)? {
            return Ok(Rotation::Refused(AuthError::DeviceRevoked));
        }
        if t.revoked_at.is_some() {
            // A token of an ended session: whoever presents it, the session stays ended, and
            // whatever else of the family may live is ended with it.
            rows::revoke_family(c, &t.family, now)?;
            return Ok(Rotation::Refused(AuthError::InvalidRefresh));
        }
        if t.expires_at <= now {
            return Ok(Rotation::Refused(AuthError::InvalidRefresh));
        }
        let Some(user) = people::find_user_by_id(c, &t.user_id)? else {
            return Ok(Rotation::Refused(AuthError::InvalidRefresh));
        };
        if user.disabled {
            return Ok(Rotation::Refused(AuthError::Disabled));
        }
        let next = successor_of(token, secret);
        let next_hash = sha256_hex(next.as_bytes());
        let mut next_expires = now + REFRESH_TTL;
        if let Some(spent) = t.spent_at {
            let unused = rows::token(c, &next_hash)?
                .filter(|s| s.spent_at.is_none() && s.revoked_at.is_none());
            match unused {
                // The response carrying the successor was lost: the same one again.
                Some(successor)
                    if now - spent <= RETRY_GRACE && t.successor.as_deref() == Some(&next_hash) =>
                {
                    next_expires = successor.expires_at;
                }
                _ => {
                    rows::revoke_family(c, &t.family, now)?;
                    return Ok(Rotation::Refused(AuthError::RefreshReused));
                }
            }
        } else {
            rows::insert_token(
                c,
                &next_hash,
                &t.family,
                &t.device_id,
                &t.user_id,
                now,
                next_expires,
            )?;
            rows::spend(c, &hash, now, &next_hash)?;
        }
        rows::touch_device(c, &t.device_id, now)?;
        Ok(Rotation::Granted(Granted {
            user_id: t.user_id,
            role: user.role.key(),
            scope: prefixes(&user),
            device_id: t.device_id,
            session: t.family,
            refresh_token: next,
            refresh_expires_at: next_expires,
        }))
    })?;
    match outcome {
        Rotation::Granted(g) => Ok(g),
        Rotation::Refused(e) => Err(e),
    }
}

/// Ends the login the refresh token belongs to, and with it every access token of that
/// session. Unknown tokens are ignored: logging out twice is not an error.
pub fn logout(conn: &mut DbConnection, token: &str, now: i64) -> Result<(), AuthError> {
    let hash = sha256_hex(token.as_bytes());
    write_transaction(conn, |c| {
        if let Some(t) = rows::token(c, &hash)? {
            rows::revoke_family(c, &t.family, now)?;
        }
        Ok(())
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

/// Looks up the session of a verified access token, and its user and device. `None` if any is
/// gone, the device is not the user's, the user is disabled, or the session has ended (logged
/// out, or revoked for a reused refresh token). A revoked device is still found, so that its
/// sync can be told to wipe.
pub fn principal(
    conn: &mut DbConnection,
    session: &str,
    now: i64,
) -> Result<Option<Principal>, AuthError> {
    let Some((user_id, device_id)) = rows::session_owner(conn, session)? else {
        return Ok(None);
    };
    let (user_id, device_id) = (user_id.as_str(), device_id.as_str());
    let Some(user) = people::find_user_by_id(conn, user_id)? else {
        return Ok(None);
    };
    if user.disabled {
        return Ok(None);
    }
    let Some(revoked) = rows::users_device(conn, user_id, device_id)? else {
        return Ok(None);
    };
    if revoked.is_none() && !rows::session_live(conn, session, device_id, now)? {
        return Ok(None);
    }
    Ok(Some(Principal {
        user,
        device_id: device_id.to_owned(),
        device_revoked: revoked.is_some(),
    }))
}

/// Every registered device, newest first.
pub fn list_devices(conn: &mut DbConnection) -> Result<Vec<rows::DeviceInfo>, AuthError> {
    Ok(rows::devices(conn)?)
}

/// Revokes a device and every refresh token it holds. Returns false if there is no such
/// device. Revoking twice keeps the first time.
pub fn revoke_device(conn: &mut DbConnection, id: &str, now: i64) -> Result<bool, AuthError> {
    write_transaction(conn, |c| {
        if rows::device_owner(c, id)?.is_none() {
            return Ok(false);
        }
        rows::revoke_device(c, id, now)?;
        Ok(true)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_start_at_the_threshold_double_and_stop_at_the_ceiling() {
        assert_eq!(wait_after(4, THROTTLE_AFTER), 0);
        assert_eq!(wait_after(5, THROTTLE_AFTER), 30);
        assert_eq!(wait_after(6, THROTTLE_AFTER), 60);
        assert_eq!(wait_after(10, THROTTLE_AFTER), MAX_WAIT);
        assert_eq!(wait_after(i32::MAX, THROTTLE_AFTER), MAX_WAIT);
    }

    #[test]
    fn device_names_with_control_direction_or_markup_characters_are_refused() {
        assert!(check_device_name("红米 Note 12").is_ok());
        assert!(check_device_name("Xiaomi's phone").is_ok());
        for bad in [
            "",
            "a\u{0}b",
            "evil\u{202E}txt",
            "<b>",
            "a\nb",
            &"x".repeat(65),
        ] {
            assert!(check_device_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_successor_is_the_same_for_the_same_token_and_secret_only() {
        let (a, b) = ([1u8; 32], [2u8; 32]);
        assert_eq!(successor_of("t", &a), successor_of("t", &a));
        assert_ne!(successor_of("t", &a), successor_of("t", &b));
        assert_ne!(successor_of("t", &a), successor_of("u", &a));
    }
}
