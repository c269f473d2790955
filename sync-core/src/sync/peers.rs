//! The server's memory of every file on one device, as one value, for a store that keeps a
//! device in one row: a sync then reads and writes its device's memory in one statement each,
//! where a row per file took a read, a delete and an insert.
//!
//! Layout: a format byte (1), the number of files (varint), then per file its 16-byte id, the
//! known heads (varint count, 32 bytes each), a flags byte (1: pending, 2: dropping, 4: sync
//! state), and then, as flagged, the pending token (4 bytes, little-endian) and heads, the
//! dropping token (4 bytes), and the sync state (varint length and bytes).

use automerge::ChangeHash;

use super::ChildId;
use super::server::PeerDoc;
use super::wire::{Reader, WireError, varint};

const FORMAT: u8 = 1;
const PENDING: u8 = 1;
const DROPPING: u8 = 2;
const SYNC_STATE: u8 = 4;

/// Encodes a device's memory of its files.
pub fn encode(peers: &[(ChildId, &PeerDoc)]) -> Vec<u8> {
    let mut w = Vec::with_capacity(2 + peers.len() * 56);
    w.push(FORMAT);
    varint(&mut w, peers.len() as u64);
    for (id, peer) in peers {
        w.extend_from_slice(id.as_bytes());
        heads(&mut w, &peer.known);
        let flags = [
            (peer.pending.is_some(), PENDING),
            (peer.dropping.is_some(), DROPPING),
            (peer.sync_state.is_some(), SYNC_STATE),
        ]
        .into_iter()
        .filter(|(set, _)| *set)
        .fold(0, |flags, (_, flag)| flags | flag);
        w.push(flags);
        if let Some((token, pending)) = &peer.pending {
            w.extend_from_slice(&token.to_le_bytes());
            heads(&mut w, pending);
        }
        if let Some(token) = peer.dropping {
            w.extend_from_slice(&token.to_le_bytes());
        }
        if let Some(state) = &peer.sync_state {
            varint(&mut w, state.len() as u64);
            w.extend_from_slice(state);
        }
    }
    w
}

/// Decodes what [`encode`] wrote. Damaged bytes are an error, never a panic, and never an
/// allocation sized by a count the bytes claim.
pub fn decode(bytes: &[u8]) -> Result<Vec<(ChildId, PeerDoc)>, WireError> {
    let (&format, rest) = bytes.split_first().ok_or(WireError::Truncated("memory"))?;
    if format != FORMAT {
        return Err(WireError::Malformed("memory format"));
    }
    let mut r = Reader(rest);
    let count = r.varint("memory")?;
    let mut out = Vec::new();
    for _ in 0..count {
        let id: [u8; 16] = r.take(16, "memory file id")?.try_into().expect("16 bytes");
        let known = read_heads(&mut r)?;
        let flags = r.take(1, "memory flags")?[0];
        if flags & !(PENDING | DROPPING | SYNC_STATE) != 0 {
            return Err(WireError::Malformed("memory flags"));
        }
        let pending = if flags & PENDING != 0 {
            let token = token(&mut r)?;
            Some((token, read_heads(&mut r)?))
        } else {
            None
        };
        let dropping = if flags & DROPPING != 0 {
            Some(token(&mut r)?)
        } else {
            None
        };
        let sync_state = if flags & SYNC_STATE != 0 {
            let len = r.varint("memory sync state")?;
            Some(r.take(len, "memory sync state")?.to_vec())
        } else {
            None
        };
        out.push((
            ChildId(uuid::Uuid::from_bytes(id)),
            PeerDoc {
                known,
                pending,
                dropping,
                sync_state,
            },
        ));
    }
    if !r.0.is_empty() {
        return Err(WireError::Malformed("memory: bytes after the last file"));
    }
    Ok(out)
}

fn heads(w: &mut Vec<u8>, heads: &[ChangeHash]) {
    varint(w, heads.len() as u64);
    for h in heads {
        w.extend_from_slice(&h.0);
    }
}

fn read_heads(r: &mut Reader<'_>) -> Result<Vec<ChangeHash>, WireError> {
    let n = r.varint("memory heads")?;
    let bytes = r.take(n.saturating_mul(32), "memory heads")?;
    Ok(bytes
        .chunks_exact(32)
        .map(|h| ChangeHash(h.try_into().expect("32 bytes")))
        .collect())
}

fn token(r: &mut Reader<'_>) -> Result<u32, WireError> {
    let b: [u8; 4] = r.take(4, "memory token")?.try_into().expect("4 bytes");
    Ok(u32::from_le_bytes(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn hashes() -> impl Strategy<Value = Vec<ChangeHash>> {
        proptest::collection::vec(any::<[u8; 32]>().prop_map(ChangeHash), 0..4)
    }

    fn peer() -> impl Strategy<Value = PeerDoc> {
        (
            hashes(),
            proptest::option::of((any::<u32>(), hashes())),
            proptest::option::of(any::<u32>()),
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..300)),
        )
            .prop_map(|(known, pending, dropping, sync_state)| PeerDoc {
                known,
                pending,
                dropping,
                sync_state,
            })
    }

    proptest! {
        #[test]
        fn a_devices_memory_survives_a_round_trip(
            peers in proptest::collection::vec((any::<[u8; 16]>(), peer()), 0..20)
        ) {
            let peers: Vec<(ChildId, PeerDoc)> = peers
                .into_iter()
                .map(|(id, p)| (ChildId(uuid::Uuid::from_bytes(id)), p))
                .collect();
            let borrowed: Vec<_> = peers.iter().map(|(id, p)| (*id, p)).collect();
            prop_assert_eq!(decode(&encode(&borrowed)).expect("decode"), peers);
        }

        #[test]
        fn damaged_memory_is_an_error_not_a_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
            let _ = decode(&bytes);
        }
    }

    #[test]
    fn memory_cut_short_or_with_bytes_left_over_is_refused() {
        let peer = PeerDoc {
            known: vec![ChangeHash([7; 32])],
            pending: Some((3, vec![ChangeHash([8; 32])])),
            dropping: Some(4),
            sync_state: Some(vec![1, 2, 3]),
        };
        let id = ChildId(uuid::Uuid::from_bytes([1; 16]));
        let bytes = encode(&[(id, &peer)]);
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err(), "cut at {cut} was accepted");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode(&longer).is_err());
        assert_eq!(decode(&bytes).expect("whole"), vec![(id, peer)]);
    }

    #[test]
    fn a_count_larger_than_the_bytes_is_refused_without_reserving_it() {
        let mut bytes = vec![FORMAT];
        varint(&mut bytes, u64::MAX);
        assert!(decode(&bytes).is_err());
    }
}
