//! What a device may send as Automerge data, checked before Automerge parses any of it.
//!
//! Automerge inflates DEFLATE data while it parses, with no limit: a compressed change chunk,
//! or the compressed columns of a document chunk, can claim gigabytes in a few hundred bytes
//! (about 1,000 to 1 per pass). The server therefore walks every chunk a device sends first:
//!
//! * change chunks (type 1), which `save_after` and Automerge's sync messages write, pass: a
//!   change chunk's columns cannot be compressed (Automerge refuses them);
//! * document chunks (type 0), which a sync message carries when it sends a whole file, pass
//!   once every compressed column has been inflated *into a counter*, not into memory, and the
//!   request's total stays within its [`Budget`];
//! * compressed change chunks (type 2) and bundles (type 3) are refused: our phones never
//!   send them, and nothing else may.

use std::io::Read;

/// What a legitimate request can need inflated, in all: a phone's whole file sent as one
/// document is a few hundred kilobytes inflated, and the largest request body is 16 MiB.
pub const MAX_INFLATED: u64 = 16 << 20;

const MAGIC: [u8; 4] = [0x85, 0x6f, 0x4a, 0x83];
const DOCUMENT: u8 = 0;
const CHANGE: u8 = 1;
/// The column-spec bit that marks a DEFLATE-compressed column.
const DEFLATE: u32 = 0b1000;

/// Why a device's Automerge data was refused before parsing.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChunkError {
    /// A chunk kind devices may not send.
    #[error("chunk at byte {offset}: {kind} chunks are refused")]
    Refused {
        /// Where the chunk starts.
        offset: usize,
        /// Which kind.
        kind: &'static str,
    },
    /// The bytes are not well-formed chunks.
    #[error("chunk at byte {offset}: {reason}")]
    Malformed {
        /// Where the chunk starts.
        offset: usize,
        /// What was wrong.
        reason: &'static str,
    },
    /// Inflating would pass what the request may inflate in all.
    #[error("compressed data inflates past {limit} bytes")]
    TooLarge {
        /// The request's limit.
        limit: u64,
    },
}

/// How much one request may still inflate.
#[derive(Debug, Clone)]
pub struct Budget {
    limit: u64,
    left: u64,
}

impl Budget {
    /// A budget of `limit` bytes.
    pub fn new(limit: u64) -> Self {
        Budget { limit, left: limit }
    }
}

impl Default for Budget {
    fn default() -> Self {
        Budget::new(MAX_INFLATED)
    }
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn uleb(&mut self) -> Option<u64> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let byte = *self.bytes.get(self.at)?;
            self.at += 1;
            v |= u64::from(byte & 0x7f).checked_shl(shift)?;
            if byte & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    fn take(&mut self, n: u64) -> Option<&'a [u8]> {
        let end = self.at.checked_add(usize::try_from(n).ok()?)?;
        let out = self.bytes.get(self.at..end)?;
        self.at = end;
        Some(out)
    }
}

/// Checks concatenated chunks (an upload's changes, or one entry of a sync message's list).
pub fn check(bytes: &[u8], budget: &mut Budget) -> Result<(), ChunkError> {
    let mut c = Cursor { bytes, at: 0 };
    while c.at < bytes.len() {
        let offset = c.at;
        let bad = |reason| ChunkError::Malformed { offset, reason };
        if c.take(4) != Some(&MAGIC[..]) {
            return Err(bad("not an Automerge chunk"));
        }
        let header = c.take(5).ok_or(bad("truncated header"))?;
        let kind = header[4];
        let len = c.uleb().ok_or(bad("bad length"))?;
        let data = c.take(len).ok_or(bad("truncated chunk"))?;
        match kind {
            CHANGE => {}
            DOCUMENT => document(data, budget).map_err(|e| match e {
                ChunkError::Malformed { reason, .. } => ChunkError::Malformed { offset, reason },
                other => other,
            })?,
            2 => {
                return Err(ChunkError::Refused {
                    offset,
                    kind: "compressed change",
                });
            }
            3 => {
                return Err(ChunkError::Refused {
                    offset,
                    kind: "bundle",
                });
            }
            _ => {
                return Err(ChunkError::Refused {
                    offset,
                    kind: "unknown",
                });
            }
        }
    }
    Ok(())
}

/// A document chunk's body: actors, heads, change and op column metadata, then column data.
fn document(data: &[u8], budget: &mut Budget) -> Result<(), ChunkError> {
    let bad = |reason| ChunkError::Malformed { offset: 0, reason };
    let mut c = Cursor { bytes: data, at: 0 };
    let actors = c.uleb().ok_or(bad("bad actor count"))?;
    for _ in 0..actors {
        let n = c.uleb().ok_or(bad("bad actor"))?;
        c.take(n).ok_or(bad("truncated actor"))?;
    }
    let heads = c.uleb().ok_or(bad("bad head count"))?;
    c.take(heads.checked_mul(32).ok_or(bad("bad head count"))?)
        .ok_or(bad("truncated heads"))?;
    let mut columns = Vec::new();
    for _ in 0..2 {
        let n = c.uleb().ok_or(bad("bad column count"))?;
        for _ in 0..n {
            let spec = c.uleb().ok_or(bad("bad column spec"))?;
            let len = c.uleb().ok_or(bad("bad column length"))?;
            columns.push((spec, len));
        }
    }
    for (spec, len) in columns {
        let column = c.take(len).ok_or(bad("truncated column"))?;
        if spec & u64::from(DEFLATE) != 0 {
            inflate(column, budget)?;
        }
    }
    Ok(())
}

fn uleb(out: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// An Automerge chunk of any kind around `data`, with a checksum Automerge would check only
/// after parsing: for tests and fuzzers that craft what a hostile device could send.
#[doc(hidden)]
pub fn chunk_for_fuzzing(kind: u8, data: &[u8]) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&[1, 2, 3, 4, kind]);
    uleb(&mut out, data.len() as u64);
    out.extend_from_slice(data);
    out
}

/// A document chunk holding nothing but one op column marked DEFLATE-compressed, with
/// `column` as its data: for tests and fuzzers.
#[doc(hidden)]
pub fn document_for_fuzzing(column: &[u8]) -> Vec<u8> {
    // No actors, no heads, no change columns, one op column.
    let mut body = vec![0, 0, 0, 1];
    uleb(&mut body, u64::from(DEFLATE | 0x10));
    uleb(&mut body, column.len() as u64);
    body.extend_from_slice(column);
    chunk_for_fuzzing(DOCUMENT, &body)
}

/// Inflates into nothing, counting: memory stays flat whatever the data claims.
fn inflate(column: &[u8], budget: &mut Budget) -> Result<(), ChunkError> {
    let decoder = flate2::bufread::DeflateDecoder::new(column);
    let n =
        std::io::copy(&mut decoder.take(budget.left + 1), &mut std::io::sink()).map_err(|_| {
            ChunkError::Malformed {
                offset: 0,
                reason: "bad compressed column",
            }
        })?;
    if n > budget.left {
        return Err(ChunkError::TooLarge {
            limit: budget.limit,
        });
    }
    budget.left -= n;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use automerge::transaction::Transactable;
    use automerge::{AutoCommit, ROOT};
    use std::io::Write;

    fn busy_doc() -> AutoCommit {
        let mut doc = AutoCommit::new();
        for i in 0..400 {
            doc.put(ROOT, format!("key{i}"), "山门村三组，家中整洁，监护人在家")
                .expect("put");
        }
        doc.commit();
        doc
    }

    fn deflate(bytes: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::best());
        e.write_all(bytes).expect("deflate");
        e.finish().expect("deflate")
    }

    #[test]
    fn changes_and_a_saved_document_with_compressed_columns_pass() {
        let mut doc = busy_doc();
        let changes = doc.save_after(&[]);
        check(&changes, &mut Budget::default()).expect("changes");
        let saved = doc.save();
        assert!(
            saved.len() < doc.save_nocompress().len(),
            "columns compressed"
        );
        let mut budget = Budget::default();
        check(&saved, &mut budget).expect("saved document");
        assert!(
            budget.left < MAX_INFLATED,
            "the compressed columns were counted"
        );
    }

    #[test]
    fn a_compressed_change_chunk_is_refused_without_inflating_it() {
        let bomb = chunk_for_fuzzing(2, &deflate(&vec![0; 4 << 20]));
        assert_eq!(
            check(&bomb, &mut Budget::default()),
            Err(ChunkError::Refused {
                offset: 0,
                kind: "compressed change"
            })
        );
    }

    #[test]
    fn a_document_whose_column_inflates_past_the_budget_is_refused() {
        let doc = document_for_fuzzing(&deflate(&vec![0; 2 << 20]));
        assert_eq!(
            check(&doc, &mut Budget::new(1 << 20)),
            Err(ChunkError::TooLarge { limit: 1 << 20 })
        );
        check(&doc, &mut Budget::new(4 << 20)).expect("within a larger budget");
    }

    #[test]
    fn garbage_is_malformed_and_never_panics() {
        for bytes in [
            &b""[..],
            b"\x85\x6f\x4a",
            b"\x85\x6f\x4a\x83\0\0\0\0\0\xff",
            b"xyz",
        ] {
            let r = check(bytes, &mut Budget::default());
            assert!(bytes.is_empty() == r.is_ok(), "{bytes:?}: {r:?}");
        }
    }
}
