//! The audit log: one row for every read of a child file. Rows are only ever inserted; the
//! database refuses updates and deletes (triggers in the migration), so the application could
//! not rewrite the log even if it tried.

use diesel::prelude::*;
use serde::Serialize;

use super::DbConnection;
use super::schema::audit_log;

/// One read, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Queryable, utoipa::ToSchema)]
pub struct AuditEntry {
    /// Its place in the log.
    pub id: i64,
    /// When, Unix seconds.
    pub at: i64,
    /// The reader's user id.
    pub user_id: String,
    /// The reader's username.
    pub username: String,
    /// The reader's role.
    pub role: String,
    /// The device the reader used.
    pub device_id: String,
    /// What was read: `child.read`, `child.history`, `children.list`.
    pub action: String,
    /// The child file, for reads of one file.
    pub child_id: Option<String>,
    /// The file's village (or the listed village filter).
    pub village: Option<String>,
    /// The reader's network address.
    pub remote: String,
}

/// What is recorded of a read.
#[derive(Debug, Clone)]
pub struct Read<'a> {
    /// When, Unix seconds.
    pub at: i64,
    /// The reader's user id.
    pub user_id: &'a str,
    /// The reader's username.
    pub username: &'a str,
    /// The reader's role.
    pub role: &'a str,
    /// The reader's device.
    pub device_id: &'a str,
    /// What was read.
    pub action: &'a str,
    /// The child file.
    pub child_id: Option<&'a str>,
    /// Its village.
    pub village: Option<&'a str>,
    /// The reader's address.
    pub remote: &'a str,
}

/// Appends one row.
pub fn record(conn: &mut DbConnection, read: &Read<'_>) -> QueryResult<()> {
    diesel::insert_into(audit_log::table)
        .values((
            audit_log::at.eq(read.at),
            audit_log::user_id.eq(read.user_id),
            audit_log::username.eq(read.username),
            audit_log::role.eq(read.role),
            audit_log::device_id.eq(read.device_id),
            audit_log::action.eq(read.action),
            audit_log::child_id.eq(read.child_id),
            audit_log::village.eq(read.village),
            audit_log::remote.eq(read.remote),
        ))
        .execute(conn)
        .map(|_| ())
}

/// What the audit listing filters by.
#[derive(Debug, Clone, Default, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditFilter {
    /// One child file.
    pub child: Option<String>,
    /// One reader (username).
    pub user: Option<String>,
    /// Rows after this id, for paging forward.
    #[param(minimum = 0)]
    pub after: Option<i64>,
    /// At most this many (default 200).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

/// Rows matching `filter`, oldest first; restricted to files whose village starts with one of
/// `prefixes` unless `prefixes` is `None` (an administrator sees everything).
pub fn list(
    conn: &mut DbConnection,
    filter: &AuditFilter,
    prefixes: Option<&[String]>,
) -> QueryResult<Vec<AuditEntry>> {
    let mut query = audit_log::table.into_boxed();
    if let Some(child) = &filter.child {
        query = query.filter(audit_log::child_id.eq(child.clone()));
    }
    if let Some(user) = &filter.user {
        query = query.filter(audit_log::username.eq(user.clone()));
    }
    if let Some(after) = filter.after {
        query = query.filter(audit_log::id.gt(after));
    }
    if let Some(prefixes) = prefixes {
        let mut any: Box<
            dyn BoxableExpression<
                    audit_log::table,
                    super::connection::MultiBackend,
                    SqlType = diesel::sql_types::Nullable<diesel::sql_types::Bool>,
                >,
        > = Box::new(
            audit_log::village
                .eq(None::<String>)
                .and(audit_log::id.ne(audit_log::id)),
        );
        for (first, last) in super::village_bounds(prefixes.iter().map(String::as_str)) {
            any = Box::new(any.or(audit_log::village.between(first, last)));
        }
        query = query.filter(any.assume_not_null());
    }
    query
        .order(audit_log::id)
        .limit(filter.limit.unwrap_or(200).clamp(1, 1000))
        .load(conn)
}
