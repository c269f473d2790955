//! The rows of logins, devices and refresh tokens (`service::auth` holds the rules).

use diesel::prelude::*;

use super::DbConnection;
use super::schema::{devices, login_failures, refresh_tokens, users};

/// The `source` of a username's failures from every address.
pub const ANY_SOURCE: &str = "*";

/// Failed logins counted for a username from a source.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failures {
    /// How many.
    pub count: i32,
    /// The latest, Unix seconds.
    pub last: i64,
}

/// The failures counted for `username` from `source`.
pub fn failures(
    conn: &mut DbConnection,
    username: &str,
    source: &str,
) -> QueryResult<Option<Failures>> {
    login_failures::table
        .filter(login_failures::username.eq(username))
        .filter(login_failures::source.eq(source))
        .select((login_failures::failures, login_failures::last_failed_at))
        .first::<(i32, i64)>(conn)
        .optional()
        .map(|row| row.map(|(count, last)| Failures { count, last }))
}

/// Stores the failures counted for `username` from `source` (`known`: a row exists).
pub fn set_failures(
    conn: &mut DbConnection,
    username: &str,
    source: &str,
    count: i32,
    last: i64,
    wait_until: i64,
    known: bool,
) -> QueryResult<()> {
    let values = (
        login_failures::failures.eq(count),
        login_failures::last_failed_at.eq(last),
        login_failures::wait_until.eq(wait_until),
    );
    if known {
        diesel::update(
            login_failures::table
                .filter(login_failures::username.eq(username))
                .filter(login_failures::source.eq(source)),
        )
        .set(values)
        .execute(conn)?;
    } else {
        diesel::insert_into(login_failures::table)
            .values((
                login_failures::username.eq(username),
                login_failures::source.eq(source),
                values,
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// The latest `wait_until` of `username`'s failures from `source` or from anywhere, among
/// failures later than `since`.
pub fn wait_until(
    conn: &mut DbConnection,
    username: &str,
    source: &str,
    since: i64,
) -> QueryResult<Option<i64>> {
    login_failures::table
        .filter(login_failures::username.eq(username))
        .filter(login_failures::source.eq_any([source, ANY_SOURCE]))
        .filter(login_failures::last_failed_at.gt(since))
        .select(diesel::dsl::max(login_failures::wait_until))
        .first(conn)
}

/// Forgets every failure of `username`.
pub fn forget_failures(conn: &mut DbConnection, username: &str) -> QueryResult<()> {
    diesel::delete(login_failures::table.filter(login_failures::username.eq(username)))
        .execute(conn)
        .map(|_| ())
}

/// Whose device `id` is, and when it was revoked, if it is registered.
pub fn device_owner(
    conn: &mut DbConnection,
    id: &str,
) -> QueryResult<Option<(String, Option<i64>)>> {
    devices::table
        .filter(devices::id.eq(id))
        .select((devices::user_id, devices::revoked_at))
        .first(conn)
        .optional()
}

/// When the user's device was revoked (`Some(None)` if it is not), if the user has it.
pub fn users_device(
    conn: &mut DbConnection,
    user_id: &str,
    device_id: &str,
) -> QueryResult<Option<Option<i64>>> {
    devices::table
        .filter(devices::id.eq(device_id))
        .filter(devices::user_id.eq(user_id))
        .select(devices::revoked_at)
        .first(conn)
        .optional()
}

/// Whether the device was revoked.
pub fn device_revoked(conn: &mut DbConnection, id: &str) -> QueryResult<bool> {
    Ok(device_owner(conn, id)?.is_some_and(|(_, revoked)| revoked.is_some()))
}

/// Registers a device.
pub fn insert_device(
    conn: &mut DbConnection,
    id: &str,
    user_id: &str,
    name: &str,
    now: i64,
) -> QueryResult<()> {
    diesel::insert_into(devices::table)
        .values((
            devices::id.eq(id),
            devices::user_id.eq(user_id),
            devices::name.eq(name),
            devices::created_at.eq(now),
            devices::last_seen_at.eq(now),
        ))
        .execute(conn)
        .map(|_| ())
}

/// Renames a device and notes it was heard from.
pub fn rename_device(conn: &mut DbConnection, id: &str, name: &str, now: i64) -> QueryResult<()> {
    diesel::update(devices::table.filter(devices::id.eq(id)))
        .set((devices::name.eq(name), devices::last_seen_at.eq(now)))
        .execute(conn)
        .map(|_| ())
}

/// A stored refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRow {
    /// Its family: the session.
    pub family: String,
    /// The device it was issued to.
    pub device_id: String,
    /// The user.
    pub user_id: String,
    /// When it expires, Unix seconds.
    pub expires_at: i64,
    /// When it was spent.
    pub spent_at: Option<i64>,
    /// The hash of its successor, once spent.
    pub successor: Option<String>,
    /// When it was revoked.
    pub revoked_at: Option<i64>,
}

/// The refresh token whose SHA-256 is `hash`.
pub fn token(conn: &mut DbConnection, hash: &str) -> QueryResult<Option<TokenRow>> {
    type Row = (
        String,
        String,
        String,
        i64,
        Option<i64>,
        Option<String>,
        Option<i64>,
    );
    let row = refresh_tokens::table
        .filter(refresh_tokens::token_hash.eq(hash))
        .select((
            refresh_tokens::family,
            refresh_tokens::device_id,
            refresh_tokens::user_id,
            refresh_tokens::expires_at,
            refresh_tokens::spent_at,
            refresh_tokens::successor,
            refresh_tokens::revoked_at,
        ))
        .first::<Row>(conn)
        .optional()?;
    Ok(row.map(
        |(family, device_id, user_id, expires_at, spent_at, successor, revoked_at)| TokenRow {
            family,
            device_id,
            user_id,
            expires_at,
            spent_at,
            successor,
            revoked_at,
        },
    ))
}

/// Stores a refresh token by its hash.
pub fn insert_token(
    conn: &mut DbConnection,
    hash: &str,
    family: &str,
    device_id: &str,
    user_id: &str,
    now: i64,
    expires_at: i64,
) -> QueryResult<()> {
    diesel::insert_into(refresh_tokens::table)
        .values((
            refresh_tokens::token_hash.eq(hash),
            refresh_tokens::family.eq(family),
            refresh_tokens::device_id.eq(device_id),
            refresh_tokens::user_id.eq(user_id),
            refresh_tokens::issued_at.eq(now),
            refresh_tokens::expires_at.eq(expires_at),
        ))
        .execute(conn)
        .map(|_| ())
}

/// Marks a token spent, naming its successor.
pub fn spend(conn: &mut DbConnection, hash: &str, now: i64, successor: &str) -> QueryResult<()> {
    diesel::update(refresh_tokens::table.filter(refresh_tokens::token_hash.eq(hash)))
        .set((
            refresh_tokens::spent_at.eq(now),
            refresh_tokens::successor.eq(successor),
        ))
        .execute(conn)
        .map(|_| ())
}

/// Revokes every token of a family still live.
pub fn revoke_family(conn: &mut DbConnection, family: &str, now: i64) -> QueryResult<usize> {
    diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::family.eq(family))
            .filter(refresh_tokens::revoked_at.is_null()),
    )
    .set(refresh_tokens::revoked_at.eq(now))
    .execute(conn)
}

/// The user and device a session (refresh-token family) belongs to, live or not: a revoked
/// device still learns, from its token, that it must wipe itself.
pub fn session_owner(
    conn: &mut DbConnection,
    family: &str,
) -> QueryResult<Option<(String, String)>> {
    refresh_tokens::table
        .filter(refresh_tokens::family.eq(family))
        .select((refresh_tokens::user_id, refresh_tokens::device_id))
        .first(conn)
        .optional()
}

/// Whether the session (token family) still has a live token on the device.
pub fn session_live(
    conn: &mut DbConnection,
    family: &str,
    device_id: &str,
    now: i64,
) -> QueryResult<bool> {
    refresh_tokens::table
        .filter(refresh_tokens::family.eq(family))
        .filter(refresh_tokens::device_id.eq(device_id))
        .filter(refresh_tokens::revoked_at.is_null())
        .filter(refresh_tokens::expires_at.gt(now))
        .count()
        .get_result::<i64>(conn)
        .map(|n| n > 0)
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
pub fn devices(conn: &mut DbConnection) -> QueryResult<Vec<DeviceInfo>> {
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

/// Marks a device revoked (keeping an earlier time) and revokes every token it holds.
pub fn revoke_device(conn: &mut DbConnection, id: &str, now: i64) -> QueryResult<()> {
    diesel::update(
        devices::table
            .filter(devices::id.eq(id))
            .filter(devices::revoked_at.is_null()),
    )
    .set(devices::revoked_at.eq(now))
    .execute(conn)?;
    diesel::update(
        refresh_tokens::table
            .filter(refresh_tokens::device_id.eq(id))
            .filter(refresh_tokens::revoked_at.is_null()),
    )
    .set(refresh_tokens::revoked_at.eq(now))
    .execute(conn)?;
    Ok(())
}

/// Notes that a device was heard from.
pub fn touch_device(conn: &mut DbConnection, device_id: &str, now: i64) -> QueryResult<()> {
    diesel::update(devices::table.filter(devices::id.eq(device_id)))
        .set(devices::last_seen_at.eq(now))
        .execute(conn)
        .map(|_| ())
}
