//! The batch sync protocol, sans IO: bytes in, bytes out, state you can persist.
//!
//! A phone ([`device::Replica`]) and the server ([`server::handle`] over a [`server::ServerStore`])
//! exchange one request and one response per round trip, carrying every changed file at once
//! up to a page (a new phone's first sync comes in pages, its due list first).
//!
//! * **Fast path, one round trip.** Both ends remember what they last agreed on: the device
//!   holds the server-issued [`Cursor`] and, per file, the heads the server acknowledged; the
//!   server holds, per (device, file), the heads it knows the device has. The device sends only
//!   the changes made since; the server answers with every change in the device's scope since
//!   the cursor. Unchanged files cost nothing on the wire.
//! * **Fallback, two round trips.** When the memories disagree (a new phone, a restored backup,
//!   a server restored from an older snapshot) the files concerned fall back to Automerge's own
//!   sync protocol, with the sync state of each (device, file) kept on both ends.
//!
//! A cursor is only trusted once the device proves it stored the response that issued it (by
//! presenting it), so a lost, replayed, duplicated or cut message loses nothing and duplicates
//! nothing: the worst case resends changes, which Automerge applies idempotently.
//!
//! ```
//! use homevisit_sync_core::sync::{self, device::{Outcome, Replica}, memory::MemoryStore, server, Scope, DeviceId};
//! use homevisit_sync_core::file::{ChildId, Profile};
//! use homevisit_sync_core::vocab::Sex;
//! use chrono::{TimeZone, Utc};
//!
//! let profile = Profile {
//!     name: "李小红".into(), sex: Sex::Female, birth_date: "2016-02-29".parse().unwrap(),
//!     id_number: None, hukou_place: "铁东区".into(), address: "山门村".into(),
//!     village_code: "220303100200".into(), registered_on: "2026-01-10".parse().unwrap(),
//! };
//! let now = Utc.with_ymd_and_hms(2026, 11, 22, 8, 0, 0).unwrap();
//! let scope = Scope::new(["220303100200"]);
//! let mut server_store = MemoryStore::default();
//! let (mut a, mut b) = (Replica::new([1; 16]), Replica::new([2; 16]));
//! let (da, db) = (DeviceId::new(), DeviceId::new());
//!
//! let child = a.create(ChildId::new(), &profile, "director-1", now).unwrap();
//! // a uploads in one round trip; b, new, is told its due list, then gets the file.
//! for (replica, id) in [(&mut a, da), (&mut b, db)] {
//!     loop {
//!         let request = sync::Request::decode(&replica.request()).unwrap();
//!         let ctx = server::Context {
//!             device: id, user: "u1", author: "director-1", scope: &scope, now_ms: 0,
//!             page_bytes: server::DEFAULT_PAGE_BYTES, revoked: false,
//!         };
//!         let response = server::handle(&mut server_store, &ctx, &request).unwrap();
//!         if replica.receive(&response.encode(), 0).unwrap() == Outcome::Done {
//!             break;
//!         }
//!     }
//! }
//! assert_eq!(b.file(&child).unwrap().view().unwrap().profile.name, "李小红");
//! ```

pub mod alerts;
pub mod chunks;
pub mod conformance;
pub mod device;
pub mod memory;
pub mod peers;
pub mod server;
pub mod wire;

use automerge::{Change, ChangeHash};
use sha2::{Digest, Sha256};
use std::collections::BTreeSet;

pub use crate::file::ChildId;
pub use wire::{Request, Response, WireError};

/// A phone app installation, as registered with the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DeviceId(pub uuid::Uuid);

impl DeviceId {
    /// A fresh random id.
    pub fn new() -> Self {
        DeviceId(uuid::Uuid::new_v4())
    }
}

impl Default for DeviceId {
    fn default() -> Self {
        Self::new()
    }
}

/// The server's mark of how far a device has been brought up to date.
///
/// `seq` is a position in the server's change sequence; `token` is drawn at random when the
/// cursor is issued, so a cursor from a restored backup, or one a restored server never issued,
/// is recognised as unknown rather than trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cursor {
    /// Every file in scope changed at or before this position has been delivered.
    pub seq: u64,
    /// Random tag of this issuance.
    pub token: u32,
}

/// The region codes a caller may see and write, as prefixes of 12-digit village codes
/// (`220303100` is a township, `220303100200` one village in it).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scope {
    prefixes: BTreeSet<String>,
}

impl Scope {
    /// A scope of the given region code prefixes.
    pub fn new<I: IntoIterator<Item = S>, S: Into<String>>(prefixes: I) -> Self {
        Scope {
            prefixes: prefixes.into_iter().map(Into::into).collect(),
        }
    }

    /// Whether the village lies in the scope.
    pub fn contains(&self, village_code: &str) -> bool {
        self.prefixes
            .iter()
            .any(|p| village_code.starts_with(p.as_str()))
    }

    /// The prefixes, sorted.
    pub fn prefixes(&self) -> impl Iterator<Item = &str> {
        self.prefixes.iter().map(String::as_str)
    }

    /// A short digest, so the server notices when a device's scope changed.
    pub fn fingerprint(&self) -> u32 {
        let mut h = Sha256::new();
        for p in &self.prefixes {
            h.update(p.as_bytes());
            h.update([0]);
        }
        let d = h.finalize();
        u32::from_le_bytes([d[0], d[1], d[2], d[3]])
    }
}

/// A 4-byte digest of a set of heads, order-insensitive; 0 for the empty set.
///
/// Sent with every upload so the server can check that its memory of what the device has
/// matches the device's memory of what the server has, at 4 bytes a file instead of 32 a head.
pub fn fingerprint(heads: &[ChangeHash]) -> u32 {
    if heads.is_empty() {
        return 0;
    }
    let mut sorted = heads.to_vec();
    sorted.sort();
    sorted.dedup();
    let mut h = Sha256::new();
    for head in &sorted {
        h.update(head.0);
    }
    let d = h.finalize();
    u32::from_le_bytes([d[0], d[1], d[2], d[3]]).max(1)
}

/// The heads after `changes` are added on top of a peer known to hold `known`:
/// `(known ∪ changes) − deps(changes)`.
///
/// Exact when `known` are heads and `changes` are all the changes not in their history; in
/// other cases it may keep an ancestor, which is harmless wherever the result is used (a set of
/// hashes the peer is known to hold).
pub fn advance(known: &[ChangeHash], changes: &[Change]) -> Vec<ChangeHash> {
    let deps: BTreeSet<ChangeHash> = changes.iter().flat_map(|c| c.deps().to_vec()).collect();
    let mut out: BTreeSet<ChangeHash> = known.iter().copied().collect();
    out.extend(changes.iter().map(Change::hash));
    out.retain(|h| !deps.contains(h));
    out.into_iter().collect()
}

/// Why concatenated change bytes could not be split into changes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed change at byte {offset}: {reason}")]
pub struct BadChanges {
    /// Where the bad change starts.
    pub offset: usize,
    /// What was wrong.
    pub reason: String,
}

const CHUNK_MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];

/// Splits the output of `save_after` (change chunks, concatenated) into verified changes.
pub fn split_changes(bytes: &[u8]) -> Result<Vec<Change>, BadChanges> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let bad = |reason: &str| BadChanges {
            offset: at,
            reason: reason.to_owned(),
        };
        let rest = &bytes[at..];
        if rest.len() < 10 || rest[..4] != CHUNK_MAGIC {
            return Err(bad("not a change chunk"));
        }
        let mut len: u64 = 0;
        let mut header = 9;
        loop {
            let byte = *rest.get(header).ok_or_else(|| bad("truncated length"))?;
            let shift = 7 * (header - 9) as u32;
            if shift > 56 {
                return Err(bad("length too long"));
            }
            len |= u64::from(byte & 0x7f) << shift;
            header += 1;
            if byte & 0x80 == 0 {
                break;
            }
        }
        let end = usize::try_from(len)
            .ok()
            .and_then(|l| l.checked_add(header))
            .filter(|&e| e <= rest.len())
            .ok_or_else(|| bad("truncated chunk"))?;
        let change = Change::try_from(&rest[..end]).map_err(|e| bad(&e.to_string()))?;
        out.push(change);
        at += end;
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
