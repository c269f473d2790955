//! The encrypted device store: durable, crash-safe storage for the phone, sealed under a key
//! that the platform keystore holds.
//!
//! # Threat model
//!
//! A phone is lost, or its app directory is copied. Without the keystore's key the copy shows
//! the number and sizes of rows and nothing else: every value is sealed with
//! XChaCha20-Poly1305, and row keys (file ids, photo hashes) are replaced by keyed hashes. A
//! wrong key or a flipped byte is a typed error, never garbage: the associated data binds each
//! ciphertext to its namespace and row, so a row copied over another is caught too.
//!
//! # Durability
//!
//! SQLite in WAL mode with `synchronous = FULL`: when [`DeviceStore::commit`] returns, the batch
//! is on disk, and a process killed at any instant reopens at its last committed batch.
//!
//! # Wiping
//!
//! [`DeviceStore::wipe`] deletes the database and its side files. On flash storage deleted
//! blocks may survive in the controller; the real guarantee is crypto-erase: the app deletes the
//! key from the keystore, after which what remains is noise.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use rusqlite::{Connection, OptionalExtension, params};
use sha2::Sha256;
use std::path::{Path, PathBuf};

/// The on-disk format this build writes.
pub const STORE_VERSION: i64 = 1;

const KEY_CHECK: &[u8] = b"homevisit device store key check";

/// The 32-byte key from the platform keystore. Never printed; overwritten when dropped.
pub struct StoreKey([u8; 32]);

impl StoreKey {
    /// Wraps key bytes.
    pub fn new(bytes: [u8; 32]) -> Self {
        StoreKey(bytes)
    }
}

impl std::fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreKey(..)")
    }
}

impl Drop for StoreKey {
    fn drop(&mut self) {
        self.0.fill(0);
        // Keeps the wipe of a value about to be freed from being optimised away.
        std::hint::black_box(&self.0);
    }
}

/// The kinds of rows the store keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Namespace {
    /// Child-file documents.
    Doc,
    /// What the phone remembers of the server, per file.
    PeerState,
    /// Small settings: actor id, cursor, clock skew.
    Meta,
    /// Photos and other items waiting to be sent.
    Outbox,
    /// Per-file summaries for the due list.
    Summary,
}

impl Namespace {
    fn code(self) -> i64 {
        match self {
            Namespace::Doc => 1,
            Namespace::PeerState => 2,
            Namespace::Meta => 3,
            Namespace::Outbox => 4,
            Namespace::Summary => 5,
        }
    }
}

/// What can go wrong with the store. Messages never contain stored values.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The key does not open this store.
    #[error("the key does not open this store")]
    WrongKey,
    /// A row failed authentication or does not decode: the file was damaged or tampered with.
    #[error("the store is damaged: {0}")]
    Corrupt(&'static str),
    /// A newer app wrote this store.
    #[error("store format {found} is newer than this build reads ({STORE_VERSION})")]
    NewerVersion {
        /// The version found.
        found: i64,
    },
    /// SQLite failed (a damaged file shows up here as "database disk image is malformed").
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A file could not be removed.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

/// A stored key and its value.
pub type Entry = (Vec<u8>, Vec<u8>);

/// Puts and deletes applied together or not at all.
#[derive(Debug, Default)]
pub struct Batch {
    ops: Vec<(Namespace, Vec<u8>, Option<Vec<u8>>)>,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Stores `value` under `key`, replacing what was there.
    pub fn put(&mut self, ns: Namespace, key: &[u8], value: &[u8]) -> &mut Self {
        self.ops.push((ns, key.to_vec(), Some(value.to_vec())));
        self
    }

    /// Removes `key`.
    pub fn delete(&mut self, ns: Namespace, key: &[u8]) -> &mut Self {
        self.ops.push((ns, key.to_vec(), None));
        self
    }

    /// Whether the batch holds nothing.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }
}

/// The phone's encrypted, transactional key-value store.
pub struct DeviceStore {
    conn: Connection,
    path: PathBuf,
    cipher: XChaCha20Poly1305,
    index: [u8; 32],
}

impl std::fmt::Debug for DeviceStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeviceStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

fn mac(key: &[u8]) -> Hmac<Sha256> {
    <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes keys of any length")
}

fn derive(key: &StoreKey, label: &[u8]) -> [u8; 32] {
    // One key from the keystore, an independent key per purpose.
    let mut m = mac(&key.0);
    m.update(label);
    m.finalize().into_bytes().into()
}

impl DeviceStore {
    /// Opens the store at `path`, creating it if missing.
    pub fn open(path: &Path, key: &StoreKey) -> Result<Self, StoreError> {
        let conn = Connection::open(path)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = FULL;
             PRAGMA secure_delete = ON;
             PRAGMA busy_timeout = 5000;
             CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY NOT NULL, v BLOB NOT NULL);
             CREATE TABLE IF NOT EXISTS rows (
                 ns INTEGER NOT NULL, id BLOB NOT NULL, value BLOB NOT NULL,
                 PRIMARY KEY (ns, id)) WITHOUT ROWID;",
        )?;
        let store = DeviceStore {
            conn,
            path: path.to_owned(),
            cipher: XChaCha20Poly1305::new(&derive(key, b"homevisit store v1 values").into()),
            index: derive(key, b"homevisit store v1 row ids"),
        };
        let version: Option<i64> = store
            .conn
            .query_row("SELECT v FROM meta WHERE k = 'version'", [], |r| r.get(0))
            .optional()?;
        match version {
            None => {
                let check = store.seal(b"check", KEY_CHECK)?;
                store.conn.execute(
                    "INSERT INTO meta (k, v) VALUES ('version', ?1), ('check', ?2)",
                    params![STORE_VERSION, check],
                )?;
            }
            Some(v) if v > STORE_VERSION => return Err(StoreError::NewerVersion { found: v }),
            Some(_) => {
                let check: Vec<u8> = store
                    .conn
                    .query_row("SELECT v FROM meta WHERE k = 'check'", [], |r| r.get(0))
                    .optional()?
                    .ok_or(StoreError::Corrupt("key check missing"))?;
                match store.open_sealed(b"check", &check) {
                    Ok(plain) if plain == KEY_CHECK => {}
                    _ => return Err(StoreError::WrongKey),
                }
            }
        }
        Ok(store)
    }

    fn row_id(&self, ns: Namespace, key: &[u8]) -> Vec<u8> {
        let mut m = mac(&self.index);
        m.update(&ns.code().to_le_bytes());
        m.update(key);
        m.finalize().into_bytes()[..16].to_vec()
    }

    fn seal(&self, aad: &[u8], plain: &[u8]) -> Result<Vec<u8>, StoreError> {
        let nonce: [u8; 24] = rand::random();
        let sealed = self
            .cipher
            .encrypt(XNonce::from_slice(&nonce), Payload { msg: plain, aad })
            .map_err(|_| StoreError::Corrupt("encryption failed"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    fn open_sealed(&self, aad: &[u8], sealed: &[u8]) -> Result<Vec<u8>, StoreError> {
        if sealed.len() < 24 + 16 {
            return Err(StoreError::Corrupt("row too short"));
        }
        let (nonce, body) = sealed.split_at(24);
        self.cipher
            .decrypt(XNonce::from_slice(nonce), Payload { msg: body, aad })
            .map_err(|_| StoreError::Corrupt("a row failed authentication"))
    }

    fn aad(ns: Namespace, id: &[u8]) -> Vec<u8> {
        let mut aad = ns.code().to_le_bytes().to_vec();
        aad.extend_from_slice(id);
        aad
    }

    /// Unseals a row into (key, value).
    fn unseal_row(&self, ns: Namespace, id: &[u8], sealed: &[u8]) -> Result<Entry, StoreError> {
        let plain = self.open_sealed(&Self::aad(ns, id), sealed)?;
        let [a, b, rest @ ..] = plain.as_slice() else {
            return Err(StoreError::Corrupt("row too short"));
        };
        let n = usize::from(u16::from_le_bytes([*a, *b]));
        if rest.len() < n {
            return Err(StoreError::Corrupt("row key truncated"));
        }
        let (key, value) = rest.split_at(n);
        Ok((key.to_vec(), value.to_vec()))
    }

    /// The value under `key`, if any.
    pub fn get(&self, ns: Namespace, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let id = self.row_id(ns, key);
        let sealed: Option<Vec<u8>> = self
            .conn
            .query_row(
                "SELECT value FROM rows WHERE ns = ?1 AND id = ?2",
                params![ns.code(), id],
                |r| r.get(0),
            )
            .optional()?;
        let Some(sealed) = sealed else {
            return Ok(None);
        };
        let (stored_key, value) = self.unseal_row(ns, &id, &sealed)?;
        if stored_key != key {
            return Err(StoreError::Corrupt("row holds another key"));
        }
        Ok(Some(value))
    }

    /// Every (key, value) of a namespace, in no particular order.
    pub fn scan(&self, ns: Namespace) -> Result<Vec<Entry>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id, value FROM rows WHERE ns = ?1")?;
        let rows = stmt.query_map(params![ns.code()], |r| {
            Ok((r.get::<_, Vec<u8>>(0)?, r.get::<_, Vec<u8>>(1)?))
        })?;
        let mut out = Vec::new();
        for row in rows {
            let (id, sealed) = row?;
            out.push(self.unseal_row(ns, &id, &sealed)?);
        }
        Ok(out)
    }

    /// Every key of a namespace.
    pub fn keys(&self, ns: Namespace) -> Result<Vec<Vec<u8>>, StoreError> {
        Ok(self.scan(ns)?.into_iter().map(|(k, _)| k).collect())
    }

    /// Applies a batch in one transaction; durable when it returns.
    pub fn commit(&mut self, batch: Batch) -> Result<(), StoreError> {
        let mut rows = Vec::with_capacity(batch.ops.len());
        for (ns, key, value) in &batch.ops {
            let id = self.row_id(*ns, key);
            let sealed = match value {
                Some(value) => {
                    let key_len = u16::try_from(key.len())
                        .map_err(|_| StoreError::Corrupt("key longer than 65535 bytes"))?;
                    let mut plain = Vec::with_capacity(2 + key.len() + value.len());
                    plain.extend_from_slice(&key_len.to_le_bytes());
                    plain.extend_from_slice(key);
                    plain.extend_from_slice(value);
                    Some(self.seal(&Self::aad(*ns, &id), &plain)?)
                }
                None => None,
            };
            rows.push((ns.code(), id, sealed));
        }
        let tx = self.conn.transaction()?;
        for (ns, id, sealed) in rows {
            match sealed {
                Some(row) => tx.execute(
                    "INSERT OR REPLACE INTO rows (ns, id, value) VALUES (?1, ?2, ?3)",
                    params![ns, id, row],
                )?,
                None => tx.execute(
                    "DELETE FROM rows WHERE ns = ?1 AND id = ?2",
                    params![ns, id],
                )?,
            };
        }
        tx.commit()?;
        Ok(())
    }

    /// Deletes the store's files. The app must also delete the key from the keystore.
    pub fn wipe(self) -> Result<(), StoreError> {
        let path = self.path.clone();
        // Empty the tables first, so that with secure_delete the pages are overwritten even if
        // a side file survives the removal below.
        self.conn.execute_batch(
            "DELETE FROM rows; DELETE FROM meta; PRAGMA wal_checkpoint(TRUNCATE);",
        )?;
        drop(self.conn);
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut p = path.clone().into_os_string();
            p.push(suffix);
            match std::fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
