//! The store's one error type.

use std::path::PathBuf;

/// What can go wrong with the device store.
///
/// Messages say what failed and with what (a path, a namespace, a size), never a stored key or
/// value: an error may end up in a log or a crash report.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The key does not open this store: it was created under another key.
    ///
    /// Reported only when both the key's fingerprint and the sealed key check disagree with the
    /// key, so a damaged header shows up as [`StoreError::Corrupt`] instead.
    #[error("the key does not open this store: it was created under another key")]
    WrongKey,
    /// The store is damaged or was tampered with: a record failed authentication, a row moved,
    /// a row went missing, or SQLite found its file structure broken.
    #[error("the store is damaged: {what}")]
    Corrupt {
        /// What was found wrong.
        what: String,
    },
    /// A newer build of the app wrote this store; this build does not read its format.
    #[error("the store has format {found}, newer than the format {supported} this build reads")]
    NewerVersion {
        /// The format version found in the store.
        found: i64,
        /// The newest format this build reads.
        supported: i64,
    },
    /// A key or value given to a [`Batch`](super::Batch) is longer than the store takes.
    /// Nothing of the batch was applied.
    #[error("a {what} of {len} bytes is longer than the {max} bytes the store takes")]
    TooLarge {
        /// What was too large: "key" or "value".
        what: &'static str,
        /// Its length in bytes.
        len: usize,
        /// The most the store takes.
        max: usize,
    },
    /// SQLite would not put the database in WAL mode, so commits could not be made durable as
    /// promised.
    #[error("SQLite kept the store in journal mode `{mode}` instead of WAL")]
    NoWal {
        /// The journal mode SQLite reported.
        mode: String,
    },
    /// The database file could not be opened or created.
    #[error("could not open the store at {path}: {source}")]
    Open {
        /// The path given to [`DeviceStore::open`](super::DeviceStore::open).
        path: PathBuf,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// SQLite failed for a reason other than a damaged file (disk full, I/O error, a value
    /// too large).
    #[error("SQLite failed while {doing}: {source}")]
    Sqlite {
        /// What the store was doing.
        doing: &'static str,
        /// SQLite's error.
        source: rusqlite::Error,
    },
    /// A file of the store could not be read or removed.
    #[error("could not {doing} {path}: {source}")]
    Io {
        /// What the store was doing.
        doing: &'static str,
        /// The file concerned.
        path: PathBuf,
        /// The system's error.
        source: std::io::Error,
    },
}

impl StoreError {
    /// A damaged-store error with a description.
    pub(super) fn corrupt(what: impl Into<String>) -> Self {
        StoreError::Corrupt { what: what.into() }
    }

    /// Wraps a SQLite error raised while `doing`; a file SQLite finds broken becomes
    /// [`StoreError::Corrupt`], so callers have one variant for "damaged".
    pub(super) fn sqlite(doing: &'static str) -> impl FnOnce(rusqlite::Error) -> Self {
        move |source| {
            let broken = matches!(
                source.sqlite_error_code(),
                Some(rusqlite::ErrorCode::DatabaseCorrupt | rusqlite::ErrorCode::NotADatabase)
            ) || matches!(
                // A column of the wrong type: only damage puts one there.
                source,
                rusqlite::Error::InvalidColumnType(..)
                    | rusqlite::Error::FromSqlConversionFailure(..)
                    | rusqlite::Error::IntegralValueOutOfRange(..)
            );
            if broken {
                StoreError::Corrupt {
                    what: format!("SQLite found the file broken while {doing}: {source}"),
                }
            } else {
                StoreError::Sqlite { doing, source }
            }
        }
    }
}
