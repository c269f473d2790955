//! The encrypted device store: durable, crash-safe, transactional key-value storage for the
//! phone, sealed under a key that the platform keystore holds.
//!
//! The child files, the per-file sync memory, the sync cursor and the photo outbox all live
//! here, each in its [`Namespace`]. A [`Batch`] of puts and deletes is applied whole or not at
//! all, and is on disk when [`DeviceStore::commit`] returns.
//!
//! ```
//! use homevisit_sync_core::store::{Batch, DeviceStore, Namespace, StoreKey};
//!
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("device.db");
//! let key = StoreKey::new([7; 32]); // from the platform keystore in the app
//!
//! let mut store = DeviceStore::open(&path, &key)?;
//! let mut batch = Batch::new();
//! batch
//!     .put(Namespace::Doc, b"child-1", b"the saved document")
//!     .put(Namespace::Meta, b"cursor", b"42");
//! store.commit(batch)?;
//! drop(store);
//!
//! let store = DeviceStore::open(&path, &key)?;
//! assert_eq!(store.get(Namespace::Meta, b"cursor")?, Some(b"42".to_vec()));
//! assert!(matches!(
//!     DeviceStore::open(&path, &StoreKey::new([8; 32])),
//!     Err(homevisit_sync_core::store::StoreError::WrongKey)
//! ));
//! store.wipe()?;
//! assert_eq!(std::fs::read_dir(dir.path())?.count(), 0);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Threat model
//!
//! The phone holds files about minors in difficulty. It is cheap, shared and easily lost, and
//! its app directory can be copied (a backup, a rooted phone, a repair shop). Whoever has the
//! files but not the keystore's key learns the number of rows per namespace, their sizes, and
//! when they change; nothing else:
//!
//! - every value, and every row's plaintext key (file ids, photo hashes), is sealed with
//!   XChaCha20-Poly1305 under a subkey derived from the app key (see `crypto.rs`);
//! - rows are found by a keyed hash of (namespace, key), so the file shows no key in clear;
//! - the associated data binds each sealed record to its role, namespace and row, so a record
//!   copied onto another row, or into another store, fails authentication;
//! - a keyed digest of the set of rows, sealed in the header and checked at every open, catches
//!   a row removed, added or moved between namespaces.
//!
//! A wrong key is [`StoreError::WrongKey`]; a damaged or tampered file is
//! [`StoreError::Corrupt`] (or, for I/O failures, [`StoreError::Sqlite`]): never garbage and
//! never a panic. Out of scope: an attacker who can run code in the app while it holds the key,
//! and the rollback of the whole directory to an older copy (indistinguishable from a restored
//! backup without a trusted counter the phone does not have).
//!
//! # On disk
//!
//! One SQLite database (plus SQLite's `-wal` and `-shm` files while open):
//!
//! - `header`: one row with the format `version` (kept in this place by every future format,
//!   so an old build can refuse a newer store), the store's random `salt`, the key
//!   `fingerprint`, the sealed `key_check` and the sealed row `digest`;
//! - `rows`: `(ns, id, k, v)`, where `ns` is the namespace as a small integer, `id` the keyed
//!   hash of the row's key, `k` the sealed key and `v` the sealed value. The key is sealed apart
//!   from the value so that [`DeviceStore::keys`] does not decrypt every document.
//!
//! # Durability
//!
//! SQLite in WAL mode with `synchronous = FULL`, one SQLite transaction per batch: when
//! [`DeviceStore::commit`] returns, the batch is on disk, and a process killed at any instant
//! reopens at its last committed batch. `secure_delete` overwrites deleted records in the file,
//! and the WAL is checkpointed often and truncated, so it stays small.
//!
//! # Wiping
//!
//! [`DeviceStore::wipe`] overwrites the rows and the header (so the salt every subkey depends
//! on is gone), then deletes the database and its side files. On flash storage the controller
//! may keep old blocks whatever the file system is told, so the real guarantee is crypto-erase:
//! the app also deletes the key from the keystore, after which what remains is noise.

mod crypto;
mod error;

pub use crypto::StoreKey;
pub use error::StoreError;

use crypto::{ID_LEN, Keys, Role, SALT_LEN};
use rusqlite::{Connection, OpenFlags, OptionalExtension, TransactionBehavior, params};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The on-disk format this build writes and the newest it reads.
pub const STORE_VERSION: i64 = 1;

/// The longest key a row may have, in bytes. Keys are ids and hashes.
pub const MAX_KEY_LEN: usize = 1024;

/// The largest value a row may have, in bytes (SQLite itself refuses records over 1 GB; a
/// child file is some hundred kilobytes, a photo some hundreds).
pub const MAX_VALUE_LEN: usize = 256 << 20;

/// The plaintext of the header's key check: a known constant and the format version.
const KEY_CHECK: &[u8] = b"homevisit device store key check";

/// Namespace code of the header's sealed records (no row has it).
const HEADER_NS: u8 = 0;

const HEADER_SQL: &str = "CREATE TABLE header (
    one INTEGER PRIMARY KEY CHECK (one = 1),
    version INTEGER NOT NULL,
    salt BLOB NOT NULL,
    fingerprint BLOB NOT NULL,
    key_check BLOB NOT NULL,
    digest BLOB NOT NULL
)";

const ROWS_SQL: &str = "CREATE TABLE rows (
    ns INTEGER NOT NULL,
    id BLOB NOT NULL,
    k BLOB NOT NULL,
    v BLOB NOT NULL,
    PRIMARY KEY (ns, id)
) WITHOUT ROWID";

/// A key and its value, as [`DeviceStore::scan`] returns them.
pub type Entry = (Vec<u8>, Vec<u8>);

/// The kinds of rows the store keeps. Each is a separate key space.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Namespace {
    /// Child-file documents.
    Doc,
    /// What the phone remembers of the server, per file.
    PeerState,
    /// Small settings: actor id, sync cursor, clock skew.
    Meta,
    /// Photos and other items waiting to be sent.
    Outbox,
    /// Per-file summaries for the due list.
    Summary,
}

impl Namespace {
    /// Every namespace.
    pub const ALL: [Namespace; 5] = [
        Namespace::Doc,
        Namespace::PeerState,
        Namespace::Meta,
        Namespace::Outbox,
        Namespace::Summary,
    ];

    /// The small integer stored on disk. Never renumber: stored rows carry these codes.
    fn code(self) -> u8 {
        match self {
            Namespace::Doc => 1,
            Namespace::PeerState => 2,
            Namespace::Meta => 3,
            Namespace::Outbox => 4,
            Namespace::Summary => 5,
        }
    }

    fn from_code(code: i64) -> Option<Self> {
        Namespace::ALL
            .into_iter()
            .find(|ns| i64::from(ns.code()) == code)
    }
}

/// Puts and deletes applied in order, together or not at all, by [`DeviceStore::commit`].
///
/// `Debug` shows the number of operations only, never keys or values.
#[derive(Default)]
pub struct Batch {
    ops: Vec<Op>,
}

enum Op {
    Put(Namespace, Vec<u8>, Vec<u8>),
    Delete(Namespace, Vec<u8>),
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores `value` under `key` in `ns`, replacing what was there.
    pub fn put(&mut self, ns: Namespace, key: &[u8], value: &[u8]) -> &mut Self {
        self.ops.push(Op::Put(ns, key.to_vec(), value.to_vec()));
        self
    }

    /// Removes `key` from `ns`; removing a key that is not there is not an error.
    pub fn delete(&mut self, ns: Namespace, key: &[u8]) -> &mut Self {
        self.ops.push(Op::Delete(ns, key.to_vec()));
        self
    }

    /// Whether the batch holds no operation.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// The number of operations in the batch.
    pub fn len(&self) -> usize {
        self.ops.len()
    }
}

impl std::fmt::Debug for Batch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batch")
            .field("ops", &self.ops.len())
            .finish()
    }
}

/// The phone's encrypted, transactional key-value store.
///
/// Normally one per database file. A second handle, in this process or another, is safe: each
/// commit is one SQLite write transaction. It is `Send`, not `Sync`: share it behind a mutex.
pub struct DeviceStore {
    conn: Connection,
    path: PathBuf,
    keys: Keys,
    salt: [u8; SALT_LEN],
}

impl std::fmt::Debug for DeviceStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

/// The header as read from the file, before the key is checked.
struct Header {
    version: i64,
    salt: Vec<u8>,
    fingerprint: Vec<u8>,
    key_check: Vec<u8>,
    digest: Vec<u8>,
}

impl DeviceStore {
    /// Opens the store at `path`, creating it if the file is missing or empty.
    ///
    /// The directory must exist. Opening checks the key, the format version, the schema and the
    /// digest of the set of rows; values are authenticated when read.
    ///
    /// # Errors
    ///
    /// [`StoreError::WrongKey`] if the store was created under another key,
    /// [`StoreError::NewerVersion`] if a newer build wrote it, [`StoreError::Corrupt`] if it is
    /// damaged or is not a device store, [`StoreError::Open`] or [`StoreError::Sqlite`] if
    /// SQLite cannot open it.
    pub fn open(path: &Path, key: &StoreKey) -> Result<Self, StoreError> {
        refuse_non_sqlite_file(path)?;
        // No URI parsing: the path is a path.
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut conn =
            Connection::open_with_flags(path, flags).map_err(|source| StoreError::Open {
                path: path.to_owned(),
                source,
            })?;
        configure(&conn)?;
        // One transaction, so that a concurrent writer cannot change the rows between the
        // header and the digest check.
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(StoreError::sqlite("starting to open the store"))?;
        let header = match read_header(&tx)? {
            Some(header) => header,
            None => create(&tx, key)?,
        };
        let salt: [u8; SALT_LEN] = header
            .salt
            .as_slice()
            .try_into()
            .map_err(|_| StoreError::corrupt("the header's salt has the wrong length"))?;
        let keys = Keys::derive(key, &salt);
        check_key(key, &keys, &salt, &header)?;
        let sealed_digest = open_digest(&keys, &salt, &header.digest)?;
        verify_rows(&tx, &keys, &sealed_digest)?;
        tx.commit()
            .map_err(StoreError::sqlite("finishing to open the store"))?;
        Ok(DeviceStore {
            conn,
            path: path.to_owned(),
            keys,
            salt,
        })
    }

    /// The value stored under `key` in `ns`, if any.
    ///
    /// # Errors
    ///
    /// [`StoreError::Corrupt`] if the stored value fails authentication.
    pub fn get(&self, ns: Namespace, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let doing = "reading a value";
        let id = self.keys.row_id(ns.code(), key);
        let sealed: Option<Vec<u8>> = self
            .conn
            .prepare_cached("SELECT v FROM rows WHERE ns = ?1 AND id = ?2")
            .and_then(|mut stmt| {
                stmt.query_row(params![ns.code(), &id[..]], |r| r.get(0))
                    .optional()
            })
            .map_err(StoreError::sqlite(doing))?;
        match sealed {
            None => Ok(None),
            Some(sealed) => self
                .keys
                .open(Role::Value, ns.code(), &id, &sealed)
                .map(Some)
                .ok_or_else(|| failed(ns, "value")),
        }
    }

    /// Every key in `ns`, in bytewise order. Decrypts keys only, not values.
    ///
    /// # Errors
    ///
    /// [`StoreError::Corrupt`] if a stored key fails authentication.
    pub fn keys(&self, ns: Namespace) -> Result<Vec<Vec<u8>>, StoreError> {
        let doing = "listing keys";
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id, k FROM rows WHERE ns = ?1")
            .map_err(StoreError::sqlite(doing))?;
        let mut rows = stmt
            .query(params![ns.code()])
            .map_err(StoreError::sqlite(doing))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(StoreError::sqlite(doing))? {
            let id: Vec<u8> = row.get(0).map_err(StoreError::sqlite(doing))?;
            let sealed: Vec<u8> = row.get(1).map_err(StoreError::sqlite(doing))?;
            out.push(self.open_key(ns, &id, &sealed)?);
        }
        out.sort();
        Ok(out)
    }

    /// Every (key, value) in `ns`, in bytewise order of keys.
    ///
    /// # Errors
    ///
    /// [`StoreError::Corrupt`] if a stored key or value fails authentication.
    pub fn scan(&self, ns: Namespace) -> Result<Vec<Entry>, StoreError> {
        let doing = "scanning a namespace";
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id, k, v FROM rows WHERE ns = ?1")
            .map_err(StoreError::sqlite(doing))?;
        let mut rows = stmt
            .query(params![ns.code()])
            .map_err(StoreError::sqlite(doing))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(StoreError::sqlite(doing))? {
            let id: Vec<u8> = row.get(0).map_err(StoreError::sqlite(doing))?;
            let sealed_key: Vec<u8> = row.get(1).map_err(StoreError::sqlite(doing))?;
            let sealed_value: Vec<u8> = row.get(2).map_err(StoreError::sqlite(doing))?;
            let key = self.open_key(ns, &id, &sealed_key)?;
            let value = self
                .keys
                .open(Role::Value, ns.code(), &id, &sealed_value)
                .ok_or_else(|| failed(ns, "value"))?;
            out.push((key, value));
        }
        out.sort();
        Ok(out)
    }

    /// Opens a row's sealed key and checks that the row id is that key's.
    fn open_key(&self, ns: Namespace, id: &[u8], sealed: &[u8]) -> Result<Vec<u8>, StoreError> {
        let key = self
            .keys
            .open(Role::Key, ns.code(), id, sealed)
            .ok_or_else(|| failed(ns, "key"))?;
        if self.keys.row_id(ns.code(), &key)[..] != *id {
            return Err(StoreError::corrupt(format!(
                "a row in namespace {ns:?} is not under its key's id"
            )));
        }
        Ok(key)
    }

    /// Applies `batch` in one SQLite transaction: all of it or, on error, none of it. When this
    /// returns `Ok`, the batch is on disk. An empty batch does nothing.
    ///
    /// # Errors
    ///
    /// [`StoreError::TooLarge`] before anything is written; [`StoreError::Sqlite`] (disk full,
    /// I/O error, value too large) or [`StoreError::Corrupt`] if SQLite fails midway, in which
    /// case the transaction is rolled back and the store is as before.
    pub fn commit(&mut self, batch: Batch) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        // Seal first, so the write lock is held only for the writes.
        let mut sealed = Vec::with_capacity(batch.ops.len());
        for op in &batch.ops {
            let (ns, key) = match op {
                Op::Put(ns, key, _) | Op::Delete(ns, key) => (*ns, key),
            };
            check_len("key", key.len(), MAX_KEY_LEN)?;
            let id = self.keys.row_id(ns.code(), key);
            let record = match op {
                Op::Put(_, key, value) => {
                    check_len("value", value.len(), MAX_VALUE_LEN)?;
                    Some((
                        seal(&self.keys, Role::Key, ns.code(), &id, key)?,
                        seal(&self.keys, Role::Value, ns.code(), &id, value)?,
                    ))
                }
                Op::Delete(..) => None,
            };
            sealed.push((ns, id, record));
        }

        let doing = "committing a batch";
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(StoreError::sqlite(doing))?;
        // Read inside the transaction, not cached: another connection may have committed.
        let sealed_digest: Vec<u8> = tx
            .query_row("SELECT digest FROM header WHERE one = 1", [], |r| r.get(0))
            .map_err(StoreError::sqlite(doing))?;
        let mut digest = open_digest(&self.keys, &self.salt, &sealed_digest)?;
        {
            let mut exists = tx
                .prepare_cached("SELECT 1 FROM rows WHERE ns = ?1 AND id = ?2")
                .map_err(StoreError::sqlite(doing))?;
            let mut upsert = tx
                .prepare_cached(
                    "INSERT INTO rows (ns, id, k, v) VALUES (?1, ?2, ?3, ?4)
                     ON CONFLICT (ns, id) DO UPDATE SET k = excluded.k, v = excluded.v",
                )
                .map_err(StoreError::sqlite(doing))?;
            let mut delete = tx
                .prepare_cached("DELETE FROM rows WHERE ns = ?1 AND id = ?2")
                .map_err(StoreError::sqlite(doing))?;
            for (ns, id, record) in &sealed {
                let code = ns.code();
                let membership_changed = match record {
                    Some((k, v)) => {
                        let existed = exists
                            .exists(params![code, &id[..]])
                            .map_err(StoreError::sqlite(doing))?;
                        upsert
                            .execute(params![code, &id[..], k, v])
                            .map_err(StoreError::sqlite(doing))?;
                        !existed
                    }
                    None => {
                        delete
                            .execute(params![code, &id[..]])
                            .map_err(StoreError::sqlite(doing))?
                            > 0
                    }
                };
                if membership_changed {
                    xor(&mut digest, &self.keys.digest_term(code, id));
                }
            }
        }
        let sealed_digest = seal(&self.keys, Role::Digest, HEADER_NS, &self.salt, &digest)?;
        tx.execute(
            "UPDATE header SET digest = ?1 WHERE one = 1",
            params![sealed_digest],
        )
        .map_err(StoreError::sqlite(doing))?;
        tx.commit().map_err(StoreError::sqlite(doing))?;
        Ok(())
    }

    /// Closes the store, folding the WAL back into the database and truncating it. Dropping
    /// the store does the same, silently; this reports a failure.
    ///
    /// # Errors
    ///
    /// [`StoreError::Sqlite`] if the checkpoint or the close fails.
    pub fn close(self) -> Result<(), StoreError> {
        let doing = "closing the store";
        self.conn
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
            .map_err(StoreError::sqlite(doing))?;
        self.conn
            .close()
            .map_err(|(_, source)| StoreError::sqlite(doing)(source))
    }

    /// Overwrites every row and the header, then deletes the database and its `-wal`, `-shm`
    /// and `-journal` files, leaving none of the store's files in its directory.
    ///
    /// On flash storage the controller may keep old blocks, so the guarantee that counts is
    /// crypto-erase: the app must also delete the key from the keystore.
    ///
    /// A process killed during a wipe leaves a store that opens as [`StoreError::Corrupt`] (its
    /// header is gone); [`DeviceStore::delete_files`] finishes the job.
    ///
    /// # Errors
    ///
    /// [`StoreError::Io`] if a file could not be removed; [`StoreError::Sqlite`] if the
    /// overwrite failed (the files are removed all the same).
    pub fn wipe(self) -> Result<(), StoreError> {
        let DeviceStore { conn, path, .. } = self;
        // With secure_delete on, deleting overwrites the records in place, which helps where a
        // file system keeps unlinked blocks readable.
        let scrubbed = conn
            .execute_batch(
                "BEGIN IMMEDIATE;
                 DELETE FROM rows;
                 DELETE FROM header;
                 COMMIT;
                 PRAGMA wal_checkpoint(TRUNCATE);",
            )
            .map_err(StoreError::sqlite("overwriting the store"));
        let closed = conn
            .close()
            .map_err(|(_, source)| StoreError::sqlite("closing the store")(source));
        Self::delete_files(&path)?;
        scrubbed?;
        closed
    }

    /// Deletes the files of the store at `path` without opening it: for a store whose key is
    /// lost ([`StoreError::WrongKey`]) or that is damaged beyond opening. Files already gone
    /// are not an error. No [`DeviceStore`] may be open on `path`.
    ///
    /// # Errors
    ///
    /// [`StoreError::Io`] if a file exists and could not be removed.
    pub fn delete_files(path: &Path) -> Result<(), StoreError> {
        let mut first_error = None;
        // The WAL before the database: a WAL left beside a missing database would be replayed
        // into the next store made at this path.
        for suffix in ["-wal", "-shm", "-journal", ""] {
            let mut file = path.as_os_str().to_owned();
            file.push(suffix);
            let file = PathBuf::from(file);
            match std::fs::remove_file(&file) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => {
                    first_error.get_or_insert(StoreError::Io {
                        doing: "remove",
                        path: file,
                        source,
                    });
                }
            }
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            // Makes the removals durable. Best effort: some platforms cannot sync a directory,
            // and the files are gone from view either way.
            let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// Refuses a non-empty file that does not start as an SQLite database, which SQLite could
/// otherwise take for an empty one and write a new store over. (An empty file is legitimate:
/// in WAL mode a store killed before its first checkpoint has everything in its `-wal`.)
fn refuse_non_sqlite_file(path: &Path) -> Result<(), StoreError> {
    use std::io::Read;
    const MAGIC: &[u8; 16] = b"SQLite format 3\0";
    let mut start = Vec::with_capacity(MAGIC.len());
    match std::fs::File::open(path) {
        Ok(file) => file
            .take(MAGIC.len() as u64)
            .read_to_end(&mut start)
            .map_err(|source| StoreError::Io {
                doing: "read",
                path: path.to_owned(),
                source,
            })?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(StoreError::Io {
                doing: "open",
                path: path.to_owned(),
                source,
            });
        }
    };
    if !start.is_empty() && start != MAGIC {
        return Err(StoreError::corrupt(format!(
            "{} is not an SQLite database",
            path.display()
        )));
    }
    Ok(())
}

/// Connection settings, applied at every open.
fn configure(conn: &Connection) -> Result<(), StoreError> {
    use rusqlite::config::DbConfig;
    let doing = "configuring SQLite";
    // A damaged or planted schema must not run code of its own choosing.
    conn.set_db_config(DbConfig::SQLITE_DBCONFIG_DEFENSIVE, true)
        .and_then(|_| conn.set_db_config(DbConfig::SQLITE_DBCONFIG_TRUSTED_SCHEMA, false))
        .and_then(|_| conn.busy_timeout(Duration::from_secs(5)))
        .map_err(StoreError::sqlite(doing))?;
    conn.execute_batch(
        "PRAGMA secure_delete = ON;
         PRAGMA temp_store = MEMORY;
         PRAGMA cell_size_check = ON;
         PRAGMA wal_autocheckpoint = 256;
         PRAGMA journal_size_limit = 1048576;",
    )
    .map_err(StoreError::sqlite(doing))?;
    let mode: String = conn
        .pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))
        .map_err(StoreError::sqlite(doing))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::NoWal { mode });
    }
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(StoreError::sqlite(doing))?;
    Ok(())
}

/// Reads the header of an existing store; `None` for a database with no table at all (a new
/// file, or one whose creation was cut short).
fn read_header(conn: &Connection) -> Result<Option<Header>, StoreError> {
    let doing = "reading the schema";
    let mut stmt = conn
        .prepare("SELECT type, name, sql FROM sqlite_schema ORDER BY name")
        .map_err(StoreError::sqlite(doing))?;
    let objects = stmt
        .query_map([], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
            ))
        })
        .and_then(|rows| rows.collect::<Result<Vec<_>, _>>())
        .map_err(StoreError::sqlite(doing))?;
    if objects.is_empty() {
        return Ok(None);
    }
    if !objects
        .iter()
        .any(|(kind, name, _)| kind == "table" && name == "header")
    {
        return Err(StoreError::corrupt(
            "the file is an SQLite database but not a device store (it has no header table)",
        ));
    }
    // The version first: a newer format may have another schema, and deserves its own error.
    let doing = "reading the header";
    let version: i64 = conn
        .query_row("SELECT version FROM header", [], |r| r.get(0))
        .optional()
        .map_err(StoreError::sqlite(doing))?
        .ok_or_else(|| StoreError::corrupt("the header row is missing"))?;
    if version > STORE_VERSION {
        return Err(StoreError::NewerVersion {
            found: version,
            supported: STORE_VERSION,
        });
    }
    if version < 1 {
        return Err(StoreError::corrupt(format!(
            "the header holds the impossible version {version}"
        )));
    }
    let expected = [("table", "header", HEADER_SQL), ("table", "rows", ROWS_SQL)];
    let matches = objects.len() == expected.len()
        && objects
            .iter()
            .zip(expected)
            .all(|((kind, name, sql), want)| {
                kind == want.0 && name == want.1 && sql.as_deref() == Some(want.2)
            });
    if !matches {
        return Err(StoreError::corrupt(
            "the database schema is not the device store's",
        ));
    }
    conn.query_row(
        "SELECT version, salt, fingerprint, key_check, digest FROM header WHERE one = 1",
        [],
        |r| {
            Ok(Header {
                version: r.get(0)?,
                salt: r.get(1)?,
                fingerprint: r.get(2)?,
                key_check: r.get(3)?,
                digest: r.get(4)?,
            })
        },
    )
    .optional()
    .map_err(StoreError::sqlite(doing))?
    .ok_or_else(|| StoreError::corrupt("the header row is missing"))
    .map(Some)
}

/// Checks the key against the header. A wrong key disagrees with both the fingerprint and the
/// sealed key check; damage to either one disagrees with only that one.
fn check_key(
    key: &StoreKey,
    keys: &Keys,
    salt: &[u8; SALT_LEN],
    header: &Header,
) -> Result<(), StoreError> {
    let fingerprint_agrees = header.fingerprint == crypto::fingerprint(key);
    let check = keys.open(Role::Check, HEADER_NS, salt, &header.key_check);
    match (fingerprint_agrees, check) {
        (false, None) => Err(StoreError::WrongKey),
        (true, Some(plain)) if plain == key_check_plaintext(header.version) => Ok(()),
        (true, Some(_)) => Err(StoreError::corrupt(
            "the header's version does not match its sealed key check",
        )),
        (false, Some(_)) | (true, None) => Err(StoreError::corrupt(
            "the header's key fingerprint and key check disagree",
        )),
    }
}

/// Opens the header's sealed row digest.
fn open_digest(keys: &Keys, salt: &[u8; SALT_LEN], sealed: &[u8]) -> Result<[u8; 32], StoreError> {
    keys.open(Role::Digest, HEADER_NS, salt, sealed)
        .and_then(|d| <[u8; 32]>::try_from(d.as_slice()).ok())
        .ok_or_else(|| StoreError::corrupt("the header's row digest failed authentication"))
}

/// Recomputes the digest of the set of rows (their namespaces and ids) and compares it with
/// the header's. Reads only the start of each row, not the values.
fn verify_rows(conn: &Connection, keys: &Keys, expected: &[u8; 32]) -> Result<(), StoreError> {
    let doing = "reading the row ids";
    let mut stmt = conn
        .prepare("SELECT ns, id FROM rows")
        .map_err(StoreError::sqlite(doing))?;
    let mut rows = stmt.query([]).map_err(StoreError::sqlite(doing))?;
    let mut digest = [0u8; 32];
    while let Some(row) = rows.next().map_err(StoreError::sqlite(doing))? {
        let code: i64 = row.get(0).map_err(StoreError::sqlite(doing))?;
        let id: Vec<u8> = row.get(1).map_err(StoreError::sqlite(doing))?;
        let ns = Namespace::from_code(code).ok_or_else(|| {
            StoreError::corrupt(format!("a row has the unknown namespace code {code}"))
        })?;
        if id.len() != ID_LEN {
            return Err(StoreError::corrupt(format!(
                "a row id in namespace {ns:?} has {} bytes instead of {ID_LEN}",
                id.len()
            )));
        }
        xor(&mut digest, &keys.digest_term(ns.code(), &id));
    }
    if digest != *expected {
        return Err(StoreError::corrupt(
            "the rows do not match the header's digest: a row was removed, added or moved",
        ));
    }
    Ok(())
}

/// Creates the schema and header of a new store, inside the caller's transaction.
fn create(conn: &Connection, key: &StoreKey) -> Result<Header, StoreError> {
    let doing = "creating the store";
    conn.execute_batch(&format!("{HEADER_SQL}; {ROWS_SQL};"))
        .map_err(StoreError::sqlite(doing))?;
    let salt = crypto::new_salt();
    let keys = Keys::derive(key, &salt);
    let header = Header {
        version: STORE_VERSION,
        salt: salt.to_vec(),
        fingerprint: crypto::fingerprint(key).to_vec(),
        key_check: seal(
            &keys,
            Role::Check,
            HEADER_NS,
            &salt,
            &key_check_plaintext(STORE_VERSION),
        )?,
        digest: seal(&keys, Role::Digest, HEADER_NS, &salt, &[0u8; 32])?,
    };
    conn.execute(
        "INSERT INTO header (one, version, salt, fingerprint, key_check, digest)
         VALUES (1, ?1, ?2, ?3, ?4, ?5)",
        params![
            header.version,
            header.salt,
            header.fingerprint,
            header.key_check,
            header.digest
        ],
    )
    .map_err(StoreError::sqlite(doing))?;
    Ok(header)
}

/// Seals a record. Encryption fails only past XChaCha20-Poly1305's 256 GiB message limit,
/// far beyond [`MAX_VALUE_LEN`].
fn seal(keys: &Keys, role: Role, ns: u8, id: &[u8], plain: &[u8]) -> Result<Vec<u8>, StoreError> {
    keys.seal(role, ns, id, plain).ok_or(StoreError::TooLarge {
        what: "record",
        len: plain.len(),
        max: MAX_VALUE_LEN,
    })
}

fn check_len(what: &'static str, len: usize, max: usize) -> Result<(), StoreError> {
    if len > max {
        return Err(StoreError::TooLarge { what, len, max });
    }
    Ok(())
}

fn key_check_plaintext(version: i64) -> Vec<u8> {
    let mut plain = KEY_CHECK.to_vec();
    plain.extend_from_slice(&version.to_le_bytes());
    plain
}

fn failed(ns: Namespace, what: &str) -> StoreError {
    StoreError::corrupt(format!(
        "a stored {what} in namespace {ns:?} failed authentication"
    ))
}

fn xor(acc: &mut [u8; 32], term: &[u8; 32]) {
    for (a, t) in acc.iter_mut().zip(term) {
        *a ^= t;
    }
}

#[cfg(test)]
mod tests;
