//! Storage through diesel: embedded SQLite by default, PostgreSQL for a province.
//!
//! The backend is chosen from the database URL's scheme, never guessed: `sqlite://PATH` (or
//! `sqlite::memory:`) and `postgres://` / `postgresql://`. Anything else is refused, so a typo
//! cannot silently create a SQLite file named after it. Migrations for both backends are
//! embedded and applied when a pool is opened.

/// Runs the same diesel expression on whichever backend the connection is, for the few
/// statements (multi-row inserts) that diesel only builds for a concrete backend.
macro_rules! on_backend {
    ($conn:expr, |$c:ident| $body:expr) => {
        match $conn {
            $crate::store::DbConnection::Sqlite($c) => $body,
            $crate::store::DbConnection::Postgresql($c) => $body,
        }
    };
}

/// `UPDATE table SET ... FROM (VALUES ...)`, one statement for many rows keyed by `id`, with the
/// placeholders of the backend (`$n` or `?`): `head` binds first, then each row's `columns`,
/// named `column1` (the id), `column2`, ... as both backends name the columns of a VALUES list.
pub(crate) fn update_from_values(
    table: &str,
    set: &str,
    head: usize,
    columns: usize,
    rows: usize,
    pg: bool,
) -> String {
    let mut n = 0;
    let mut next = || {
        n += 1;
        if pg { format!("${n}") } else { "?".to_owned() }
    };
    let head: Vec<String> = (0..head).map(|_| next()).collect();
    let values: Vec<String> = (0..rows)
        .map(|_| {
            let cells: Vec<String> = (0..columns).map(|_| next()).collect();
            format!("({})", cells.join(", "))
        })
        .collect();
    let mut set = set.to_owned();
    for (i, placeholder) in head.iter().enumerate() {
        set = set.replace(&format!("{{{i}}}"), placeholder);
    }
    format!(
        "UPDATE {table} SET {set} FROM (VALUES {}) AS v WHERE {table}.id = v.column1",
        values.join(", ")
    )
}

/// Runs one `update_from_values` statement on whichever backend `conn` is: `$sql` builds the
/// text given whether the placeholders are PostgreSQL's, `$bind` adds the binds to the boxed
/// query `$q` and gives it back.
macro_rules! bound_update {
    ($conn:expr, $sql:expr, |$q:ident| $bind:expr) => {
        match &mut *$conn {
            $crate::store::DbConnection::Postgresql(c) => {
                let $q = diesel::sql_query($sql(true)).into_boxed::<diesel::pg::Pg>();
                $bind.execute(c)?
            }
            $crate::store::DbConnection::Sqlite(c) => {
                let $q = diesel::sql_query($sql(false)).into_boxed::<diesel::sqlite::Sqlite>();
                $bind.execute(c)?
            }
        }
    };
}

pub mod alerts;
pub mod audit;
pub mod auth;
pub mod blobs;
pub mod cache;
pub mod children;
pub mod people;
pub mod schedules;
// diesel's table macros generate undocumented items; tests query the tables directly.
#[doc(hidden)]
#[allow(missing_docs)]
pub mod schema;
pub mod sync;

use diesel::connection::SimpleConnection;
use diesel::r2d2::{CustomizeConnection, ManageConnection, Pool, PooledConnection};
use diesel::{Connection, PgConnection, SqliteConnection};
use diesel_migrations::{EmbeddedMigrations, MigrationHarness, embed_migrations};

const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations/sqlite");
const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("../migrations/postgres");

// diesel's derive generates undocumented public items; they are diesel's, not ours.
#[allow(missing_docs)]
mod connection {
    use diesel::{PgConnection, SqliteConnection};

    /// A connection to either backend.
    #[derive(diesel::MultiConnection)]
    pub enum DbConnection {
        /// PostgreSQL, for production.
        Postgresql(PgConnection),
        /// Embedded SQLite, the default.
        Sqlite(SqliteConnection),
    }
}

pub use connection::DbConnection;

/// Which database a URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    /// A SQLite file (or `:memory:`).
    Sqlite(String),
    /// A PostgreSQL connection URL.
    Postgres(String),
}

/// Why storage could not be opened or used.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The URL's scheme is neither `sqlite://` nor `postgres://`.
    #[error(
        "unsupported database URL scheme in `{0}`: use sqlite://PATH or postgres://USER@HOST/DB"
    )]
    UnknownScheme(String),
    /// The pool could not be built or a connection could not be had.
    #[error("database connection: {0}")]
    Pool(#[from] diesel::r2d2::PoolError),
    /// A connection-level failure.
    #[error("database connection: {0}")]
    Connection(#[from] diesel::ConnectionError),
    /// A query failed.
    #[error("database: {0}")]
    Query(#[from] diesel::result::Error),
    /// Migrations could not be applied.
    #[error("migrations: {0}")]
    Migration(String),
    /// The database file could not be made owner-only.
    #[error("database file: {0}")]
    File(#[from] std::io::Error),
}

impl DatabaseUrl {
    /// Parses a database URL, refusing unknown schemes.
    pub fn parse(url: &str) -> Result<Self, StoreError> {
        if let Some(path) = url.strip_prefix("sqlite://") {
            Ok(DatabaseUrl::Sqlite(path.to_owned()))
        } else if url == "sqlite::memory:" {
            Ok(DatabaseUrl::Sqlite(":memory:".to_owned()))
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(DatabaseUrl::Postgres(url.to_owned()))
        } else {
            Err(StoreError::UnknownScheme(redact(url)))
        }
    }
}

/// A URL for messages, without a password.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => format!("{}://***{}", &url[..s], &url[at..]),
        _ => url.to_owned(),
    }
}

/// Durable, serialised SQLite: an acknowledged sync must survive a power cut.
#[derive(Debug)]
struct Pragmas;

impl CustomizeConnection<DbConnection, diesel::r2d2::Error> for Pragmas {
    fn on_acquire(&self, conn: &mut DbConnection) -> Result<(), diesel::r2d2::Error> {
        if let DbConnection::Sqlite(c) = conn {
            c.batch_execute(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
                 PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON;",
            )
            .map_err(diesel::r2d2::Error::QueryError)?;
        }
        Ok(())
    }
}

/// Makes connections of the backend the URL names. (diesel's own manager would try each
/// backend in turn, and with PostgreSQL down it would open a SQLite file named after the URL.)
#[derive(Debug)]
pub struct Manager {
    url: DatabaseUrl,
}

impl ManageConnection for Manager {
    type Connection = DbConnection;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<DbConnection, Self::Error> {
        let conn = match &self.url {
            DatabaseUrl::Sqlite(path) => {
                SqliteConnection::establish(path).map(DbConnection::Sqlite)
            }
            DatabaseUrl::Postgres(url) => {
                PgConnection::establish(url).map(DbConnection::Postgresql)
            }
        };
        conn.map_err(diesel::r2d2::Error::ConnectionError)
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), Self::Error> {
        conn.batch_execute("SELECT 1")
            .map_err(diesel::r2d2::Error::QueryError)
    }

    fn has_broken(&self, _conn: &mut DbConnection) -> bool {
        false
    }
}

/// A pool of connections to the configured database.
pub type DbPool = Pool<Manager>;
/// A connection from the pool.
pub type PooledConn = PooledConnection<Manager>;

/// Opens a pool and applies pending migrations.
pub fn open(url: &DatabaseUrl, max_size: u32) -> Result<DbPool, StoreError> {
    let size = match url {
        // Each `:memory:` connection is a database of its own.
        DatabaseUrl::Sqlite(p) if p == ":memory:" => 1,
        _ => max_size,
    };
    if let DatabaseUrl::Sqlite(path) = url
        && path != ":memory:"
    {
        crate::files::private_file(std::path::Path::new(path))?;
    }
    let pool = Pool::builder()
        .max_size(size)
        .connection_customizer(Box::new(Pragmas))
        .build(Manager { url: url.clone() })?;
    let mut conn = pool.get()?;
    migrate(&mut conn)?;
    Ok(pool)
}

/// The first and last 12-digit village codes under each of `prefixes`, for
/// `village BETWEEN first AND last`. Village codes are always 12 digits, and equal-length digit
/// strings sort the same in every collation, so the range is exactly the prefix and the
/// `(village, ...)` indexes serve it; a `LIKE 'prefix%'` does not use them on SQLite (its LIKE
/// ignores case) nor on PostgreSQL outside the C collation, and made every daily sync scan the
/// county's recent changes. Anything but 1 to 12 digits (an empty prefix, a pattern) is
/// skipped, so it matches nothing.
pub fn village_bounds<'a>(
    prefixes: impl IntoIterator<Item = &'a str>,
) -> impl Iterator<Item = (String, String)> {
    prefixes
        .into_iter()
        .filter(|p| (1..=12).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()))
        .map(|p| (format!("{p:0<12}"), format!("{p:9<12}")))
}

/// `$column BETWEEN first AND last` for each of [`village_bounds`]`($prefixes)`, joined by OR,
/// as a boxed condition; no prefix matches nothing. It starts from the first range, never from
/// an always-false seed such as `id <> id`: a planner cannot know that false (it is NULL where
/// `id` is), so `id <> id OR village BETWEEN ...` made PostgreSQL scan the whole table instead
/// of the village index, in every daily sync's alert query.
macro_rules! any_village {
    ($column:expr, $prefixes:expr) => {{
        use diesel::BoolExpressionMethods as _;
        let mut bounds = $crate::store::village_bounds($prefixes);
        let mut any: Box<
            dyn diesel::BoxableExpression<
                    _,
                    $crate::store::connection::MultiBackend,
                    SqlType = diesel::sql_types::Bool,
                >,
        > = match bounds.next() {
            Some((first, last)) => Box::new($column.between(first, last)),
            None => Box::new(diesel::dsl::sql::<diesel::sql_types::Bool>("1 = 0")),
        };
        for (first, last) in bounds {
            any = Box::new(any.or($column.between(first, last)));
        }
        any
    }};
}
pub(crate) use any_village;

/// Takes the session-level advisory lock `key` on PostgreSQL, without waiting: false if another
/// connection (of this instance or another) holds it. On SQLite, where one process writes,
/// there is nothing to take.
pub fn try_job_lock(conn: &mut DbConnection, key: i64) -> diesel::QueryResult<bool> {
    use diesel::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Taken {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        taken: bool,
    }
    match conn {
        DbConnection::Postgresql(c) => {
            let rows: Vec<Taken> = diesel::sql_query("SELECT pg_try_advisory_lock($1) AS taken")
                .bind::<diesel::sql_types::BigInt, _>(key)
                .load(c)?;
            Ok(rows.first().is_some_and(|t| t.taken))
        }
        DbConnection::Sqlite(_) => Ok(true),
    }
}

/// Runs `f` with PostgreSQL planning every statement for its own parameters, then restores
/// the default. For long jobs whose tables grow as they run: a plan cached while a table was
/// empty (a sequential scan) would otherwise be reused for every later batch. Nothing to do
/// on SQLite.
pub fn with_fresh_plans<T, E: From<diesel::result::Error>>(
    conn: &mut DbConnection,
    f: impl FnOnce(&mut DbConnection) -> Result<T, E>,
) -> Result<T, E> {
    let postgres = matches!(conn, DbConnection::Postgresql(_));
    if postgres {
        conn.batch_execute("SET plan_cache_mode = force_custom_plan")?;
    }
    let outcome = f(conn);
    if postgres {
        conn.batch_execute("RESET plan_cache_mode")?;
    }
    outcome
}

/// Refreshes PostgreSQL's statistics of `tables` after a job rewrote them, so the queries
/// that follow are planned for what they now hold. Nothing to do on SQLite.
pub fn analyze(conn: &mut DbConnection, tables: &[&str]) -> diesel::QueryResult<()> {
    if matches!(conn, DbConnection::Postgresql(_)) && !tables.is_empty() {
        conn.batch_execute(&format!("ANALYZE {}", tables.join(", ")))?;
    }
    Ok(())
}

/// Releases what [`try_job_lock`] took.
pub fn release_job_lock(conn: &mut DbConnection, key: i64) -> diesel::QueryResult<()> {
    use diesel::RunQueryDsl;
    if let DbConnection::Postgresql(c) = conn {
        diesel::sql_query("SELECT pg_advisory_unlock($1)")
            .bind::<diesel::sql_types::BigInt, _>(key)
            .execute(c)?;
    }
    Ok(())
}

/// Runs `f` in a write transaction, committed if it returns `Ok`, rolled back otherwise.
///
/// On SQLite the transaction begins `IMMEDIATE`, taking the write lock at once: a deferred
/// transaction that reads and then writes fails with "database is locked" when another writer
/// commits in between, instead of waiting its turn under `busy_timeout`.
pub fn write_transaction<T, E>(
    conn: &mut DbConnection,
    f: impl FnOnce(&mut DbConnection) -> Result<T, E>,
) -> Result<T, E>
where
    E: From<diesel::result::Error>,
{
    if matches!(conn, DbConnection::Postgresql(_)) {
        return conn.transaction(f);
    }
    // SQLite has one writer at a time. Waiting on its busy handler is a sleep-and-retry
    // lottery that, under load, starves some writers past `busy_timeout`; queueing the
    // process's writers on a mutex first hands the lock over in turn instead. (One mutex for
    // every SQLite database in the process: a server has one.)
    static SQLITE_WRITER: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _turn = SQLITE_WRITER.lock().unwrap_or_else(|e| e.into_inner());
    conn.batch_execute("BEGIN IMMEDIATE")?;
    match f(conn) {
        Ok(value) => match conn.batch_execute("COMMIT") {
            Ok(()) => Ok(value),
            Err(e) => {
                let _ = conn.batch_execute("ROLLBACK");
                Err(e.into())
            }
        },
        Err(e) => {
            conn.batch_execute("ROLLBACK")?;
            Err(e)
        }
    }
}

/// Applies every pending migration of the connection's backend.
pub fn migrate(conn: &mut DbConnection) -> Result<(), StoreError> {
    let applied = match conn {
        DbConnection::Sqlite(c) => c.run_pending_migrations(SQLITE_MIGRATIONS).map(|_| ()),
        DbConnection::Postgresql(c) => c.run_pending_migrations(POSTGRES_MIGRATIONS).map(|_| ()),
    };
    applied.map_err(|e| StoreError::Migration(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_digit_prefixes_become_village_ranges_of_twelve_digits() {
        let bounds: Vec<(String, String)> =
            village_bounds(["2203", "", "22%", "2203_1", "220303100200", "2203031002001"])
                .collect();
        let pair = |a: &str, b: &str| (a.to_owned(), b.to_owned());
        assert_eq!(
            bounds,
            [
                pair("220300000000", "220399999999"),
                pair("220303100200", "220303100200")
            ]
        );
    }

    #[test]
    fn an_unknown_database_scheme_is_refused_without_showing_the_password() {
        let err = DatabaseUrl::parse("mysql://admin:hunter2@db/homevisit").expect_err("refused");
        assert!(!err.to_string().contains("hunter2"), "{err}");
        assert!(matches!(err, StoreError::UnknownScheme(_)));
        assert!(DatabaseUrl::parse("homevisit.db").is_err());
    }

    #[test]
    fn sqlite_and_postgres_urls_are_told_apart() {
        assert_eq!(
            DatabaseUrl::parse("sqlite:///var/lib/homevisit/db.sqlite").ok(),
            Some(DatabaseUrl::Sqlite("/var/lib/homevisit/db.sqlite".into()))
        );
        assert!(matches!(
            DatabaseUrl::parse("postgresql://u@localhost/hv"),
            Ok(DatabaseUrl::Postgres(_))
        ));
    }
}
