//! The byte format of sync messages (docs/PROTOCOL.md is the specification).
//!
//! A message is a 5-byte frame header (`H` `V`, version, kind, encoding), a body of
//! tag-length-value fields, and a 4-byte check (the first bytes of the SHA-256 of all that
//! precedes it), so a message cut at any byte, or damaged, is refused whole rather than read as a
//! shorter valid one. Lengths and numbers are unsigned LEB128 varints. Unknown tags are
//! skipped, so a newer peer can add fields without breaking an older one; a field that must not
//! be ignored gets a new protocol version instead. Bodies larger than a few hundred bytes are
//! zstd-compressed: on 2G every byte costs about 0.15 ms.

use super::{ChildId, Cursor};

/// The protocol version this build writes.
///
/// Version 2 added [`Response::refused`]: a file the server refuses no longer fails the whole
/// request. A version 1 peer would skip the unknown field and take its upload as stored, so the
/// server answers each request in the version it came in, and refuses the whole of a version 1
/// request as before.
///
/// Version 4 added [`Response::summaries`]: a new phone's first response carries what its due
/// list needs of every file, and the files follow in pages of at most
/// [`super::server::DEFAULT_PAGE_BYTES`] on the wire.
pub const PROTOCOL_VERSION: u8 = 4;
/// The oldest version this build still reads and answers.
pub const MIN_PROTOCOL_VERSION: u8 = 1;
/// Largest body a phone will decompress or accept (a first sync of a big village fits easily).
pub const MAX_BODY: usize = 64 * 1024 * 1024;
/// Largest request body the server decompresses: no larger than the largest body it accepts
/// uncompressed over HTTP, so compression never lets a request grow past what the server
/// already bounds.
pub const MAX_REQUEST_BODY: usize = 16 * 1024 * 1024;
/// Bodies at or below this size are sent uncompressed: zstd's own frame would eat the gain.
const COMPRESS_ABOVE: usize = 96;

const MAGIC: [u8; 2] = *b"HV";
const KIND_REQUEST: u8 = 1;
const KIND_RESPONSE: u8 = 2;
const ENC_RAW: u8 = 0;
const ENC_ZSTD: u8 = 1;

/// Why bytes could not be read as a sync message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The bytes do not start with the homevisit frame header.
    #[error("not a homevisit sync message")]
    BadMagic,
    /// The peer speaks a protocol version this build does not.
    #[error("unsupported protocol version {0} (this build speaks {PROTOCOL_VERSION})")]
    UnsupportedVersion(u8),
    /// A request where a response was expected, or the reverse.
    #[error("expected a sync {expected}, got message kind {found}")]
    WrongKind {
        /// `request` or `response`.
        expected: &'static str,
        /// The kind byte found.
        found: u8,
    },
    /// An encoding byte this build does not know.
    #[error("unknown body encoding {0}")]
    UnknownEncoding(u8),
    /// The compressed body is corrupt or would expand past the reader's limit.
    #[error("body does not decompress within {0} bytes")]
    Decompress(usize),
    /// The message ends in the middle of a field.
    #[error("message truncated in {0}")]
    Truncated(&'static str),
    /// The check bytes do not match: the message was cut or damaged on the way.
    #[error("message check failed: cut or damaged in transit")]
    Checksum,
    /// A field's contents are not what its tag says.
    #[error("malformed {0}")]
    Malformed(&'static str),
}

/// A file's new changes, sent by the device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upload {
    /// Which file.
    pub doc: ChildId,
    /// Fingerprint of the heads the device believes the server has ([`super::fingerprint`]);
    /// the server compares it with its own memory to catch disagreement.
    pub base: u32,
    /// Automerge changes, concatenated, as `save_after` writes them.
    pub changes: Vec<u8>,
}

/// An Automerge sync message for one file: the fallback when the two ends' memories disagree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DocSync {
    /// Which file.
    pub doc: ChildId,
    /// An encoded `automerge::sync::Message`.
    pub message: Vec<u8>,
}

/// Something server and device exchange that is not a child file: alerts and their
/// acknowledgements (version 3, [`super::alerts`]). Kinds a peer does not know are kept and
/// ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// What kind of item.
    pub kind: u64,
    /// Its bytes, defined by the kind.
    pub payload: Vec<u8>,
}

/// What a due list needs of one file, sent before the file itself (version 4): a new phone
/// lists who is due while the documents are still arriving.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// Which file.
    pub doc: ChildId,
    /// The child's name, for the list.
    pub name: String,
    /// The village.
    pub village: String,
    /// The file's rules digest ([`crate::file::FileSummary::rules_digest`]).
    pub digest: Vec<u8>,
}

/// What the server sends of one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DocUpdate {
    /// Changes the device lacks, concatenated.
    Changes {
        /// Which file.
        doc: ChildId,
        /// Automerge changes.
        changes: Vec<u8>,
    },
    /// The whole file, for a device that has none of it (cheaper than its changes).
    Snapshot {
        /// Which file.
        doc: ChildId,
        /// A saved Automerge document.
        bytes: Vec<u8>,
    },
}

impl DocUpdate {
    /// The file this update is for.
    pub fn doc(&self) -> ChildId {
        match self {
            DocUpdate::Changes { doc, .. } | DocUpdate::Snapshot { doc, .. } => *doc,
        }
    }
}

/// Device to server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    /// The protocol version it is written in.
    pub version: u8,
    /// The last cursor the server issued and the device durably stored, if any.
    pub cursor: Option<Cursor>,
    /// Files with changes the server does not have yet.
    pub uploads: Vec<Upload>,
    /// Fallback sync messages.
    pub syncs: Vec<DocSync>,
    /// Non-file items.
    pub items: Vec<Item>,
}

impl Request {
    /// Every file the request names, in uploads and sync messages, each once.
    pub fn named_files(&self) -> std::collections::BTreeSet<ChildId> {
        self.uploads
            .iter()
            .map(|u| u.doc)
            .chain(self.syncs.iter().map(|s| s.doc))
            .collect()
    }
}

impl Default for Request {
    fn default() -> Self {
        Request {
            version: PROTOCOL_VERSION,
            cursor: None,
            uploads: Vec::new(),
            syncs: Vec::new(),
            items: Vec::new(),
        }
    }
}

/// Server to device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The protocol version it is written in: the version of the request it answers.
    pub version: u8,
    /// The server's clock, Unix milliseconds, so the device can record its skew.
    pub server_time_ms: u64,
    /// The cursor to present next time, once this response is durably applied.
    pub cursor: Option<Cursor>,
    /// Files that changed in the device's scope.
    pub docs: Vec<DocUpdate>,
    /// Fallback sync messages the device must answer in the next round.
    pub syncs: Vec<DocSync>,
    /// Files the device must delete (moved away, access revoked).
    pub drops: Vec<ChildId>,
    /// The device must wipe its store.
    pub wipe: bool,
    /// More changed files wait: sync again at once (the response was cut to its page size).
    pub more: bool,
    /// The server lost track of what the device has: answer `syncs` and send a sync message for
    /// every other file held.
    pub resync: bool,
    /// Non-file items.
    pub items: Vec<Item>,
    /// Files named in the request that the caller may not see (version 2): nothing of them was
    /// applied, and nothing of them is answered. The device keeps its copy aside.
    pub refused: Vec<ChildId>,
    /// What the due list needs of files whose documents follow in later pages (version 4).
    pub summaries: Vec<Summary>,
}

impl Default for Response {
    fn default() -> Self {
        Response {
            version: PROTOCOL_VERSION,
            server_time_ms: 0,
            cursor: None,
            docs: Vec::new(),
            syncs: Vec::new(),
            drops: Vec::new(),
            wipe: false,
            more: false,
            resync: false,
            items: Vec::new(),
            refused: Vec::new(),
            summaries: Vec::new(),
        }
    }
}

mod tag {
    pub const CURSOR: u64 = 1;
    pub const UPLOAD: u64 = 2;
    pub const SYNC: u64 = 3;
    pub const ITEM: u64 = 4;
    pub const TIME: u64 = 5;
    pub const CHANGES: u64 = 6;
    pub const SNAPSHOT: u64 = 7;
    pub const DROP: u64 = 8;
    pub const FLAGS: u64 = 9;
    pub const REFUSED: u64 = 10;
    pub const SUMMARY: u64 = 11;
}

const FLAG_WIPE: u64 = 1;
const FLAG_MORE: u64 = 2;
const FLAG_RESYNC: u64 = 4;

impl Request {
    /// The framed, compressed bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Vec::new();
        if let Some(c) = &self.cursor {
            field(&mut w, tag::CURSOR, &cursor_bytes(c));
        }
        for u in &self.uploads {
            let mut p = Vec::with_capacity(20 + u.changes.len());
            p.extend_from_slice(u.doc.as_bytes());
            p.extend_from_slice(&u.base.to_le_bytes());
            p.extend_from_slice(&u.changes);
            field(&mut w, tag::UPLOAD, &p);
        }
        for s in &self.syncs {
            field(&mut w, tag::SYNC, &doc_and(&s.doc, &s.message));
        }
        items(&mut w, &self.items);
        frame(self.version, KIND_REQUEST, w)
    }

    /// Reads a request, refusing anything malformed with a typed error; the body may
    /// decompress to at most [`MAX_REQUEST_BODY`] bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let (version, body) = unframe(bytes, KIND_REQUEST, "request", MAX_REQUEST_BODY)?;
        let mut r = Request {
            version,
            ..Request::default()
        };
        for f in Fields::new(&body) {
            let (t, p) = f?;
            match t {
                tag::CURSOR => r.cursor = Some(read_cursor(p)?),
                tag::UPLOAD => {
                    if p.len() < 20 {
                        return Err(WireError::Truncated("upload"));
                    }
                    r.uploads.push(Upload {
                        doc: read_doc(p)?,
                        base: u32::from_le_bytes([p[16], p[17], p[18], p[19]]),
                        changes: p[20..].to_vec(),
                    });
                }
                tag::SYNC => {
                    let doc = read_doc(p)?;
                    r.syncs.push(DocSync {
                        doc,
                        message: p[16..].to_vec(),
                    });
                }
                tag::ITEM => r.items.push(read_item(p)?),
                _ => {}
            }
        }
        Ok(r)
    }
}

impl Response {
    /// The framed, compressed bytes.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Vec::new();
        let mut t = Vec::new();
        varint(&mut t, self.server_time_ms);
        field(&mut w, tag::TIME, &t);
        if let Some(c) = &self.cursor {
            field(&mut w, tag::CURSOR, &cursor_bytes(c));
        }
        let flags = (if self.wipe { FLAG_WIPE } else { 0 })
            | (if self.more { FLAG_MORE } else { 0 })
            | (if self.resync { FLAG_RESYNC } else { 0 });
        if flags != 0 {
            let mut f = Vec::new();
            varint(&mut f, flags);
            field(&mut w, tag::FLAGS, &f);
        }
        for d in &self.docs {
            match d {
                DocUpdate::Changes { doc, changes } => {
                    field(&mut w, tag::CHANGES, &doc_and(doc, changes))
                }
                DocUpdate::Snapshot { doc, bytes } => {
                    field(&mut w, tag::SNAPSHOT, &doc_and(doc, bytes))
                }
            }
        }
        for s in &self.syncs {
            field(&mut w, tag::SYNC, &doc_and(&s.doc, &s.message));
        }
        for d in &self.drops {
            field(&mut w, tag::DROP, d.as_bytes());
        }
        for d in &self.refused {
            field(&mut w, tag::REFUSED, d.as_bytes());
        }
        for s in &self.summaries {
            field(&mut w, tag::SUMMARY, &summary_bytes(s));
        }
        items(&mut w, &self.items);
        frame(self.version, KIND_RESPONSE, w)
    }

    /// Reads a response, refusing anything malformed with a typed error.
    pub fn decode(bytes: &[u8]) -> Result<Self, WireError> {
        let (version, body) = unframe(bytes, KIND_RESPONSE, "response", MAX_BODY)?;
        let mut r = Response {
            version,
            ..Response::default()
        };
        let mut saw_time = false;
        for f in Fields::new(&body) {
            let (t, p) = f?;
            match t {
                tag::TIME => {
                    r.server_time_ms = Reader(p).varint("server time")?;
                    saw_time = true;
                }
                tag::CURSOR => r.cursor = Some(read_cursor(p)?),
                tag::FLAGS => {
                    let flags = Reader(p).varint("flags")?;
                    r.wipe = flags & FLAG_WIPE != 0;
                    r.more = flags & FLAG_MORE != 0;
                    r.resync = flags & FLAG_RESYNC != 0;
                }
                tag::CHANGES => r.docs.push(DocUpdate::Changes {
                    doc: read_doc(p)?,
                    changes: p[16..].to_vec(),
                }),
                tag::SNAPSHOT => r.docs.push(DocUpdate::Snapshot {
                    doc: read_doc(p)?,
                    bytes: p[16..].to_vec(),
                }),
                tag::SYNC => r.syncs.push(DocSync {
                    doc: read_doc(p)?,
                    message: p[16..].to_vec(),
                }),
                tag::DROP => {
                    if p.len() != 16 {
                        return Err(WireError::Malformed("drop order"));
                    }
                    r.drops.push(read_doc(p)?);
                }
                tag::REFUSED => {
                    if p.len() != 16 {
                        return Err(WireError::Malformed("refusal"));
                    }
                    r.refused.push(read_doc(p)?);
                }
                tag::ITEM => r.items.push(read_item(p)?),
                tag::SUMMARY => r.summaries.push(read_summary(p)?),
                _ => {}
            }
        }
        if !saw_time {
            return Err(WireError::Malformed("response without server time"));
        }
        Ok(r)
    }
}

fn check(bytes: &[u8]) -> [u8; 4] {
    use sha2::Digest;
    let d = sha2::Sha256::digest(bytes);
    [d[0], d[1], d[2], d[3]]
}

fn frame(version: u8, kind: u8, body: Vec<u8>) -> Vec<u8> {
    let mut out = framed(version, kind, body);
    let c = check(&out);
    out.extend_from_slice(&c);
    out
}

/// Frames arbitrary body bytes with a valid header and check, so a fuzzer reaches the body
/// parser. `kind` and `encoding` are taken as given, valid or not.
#[doc(hidden)]
pub fn frame_for_fuzzing(kind: u8, encoding: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![MAGIC[0], MAGIC[1], PROTOCOL_VERSION, kind, encoding];
    out.extend_from_slice(body);
    let c = check(&out);
    out.extend_from_slice(&c);
    out
}

fn framed(version: u8, kind: u8, body: Vec<u8>) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + 9);
    out.extend_from_slice(&MAGIC);
    out.push(version);
    out.push(kind);
    if body.len() > COMPRESS_ABOVE
        && let Ok(z) = zstd::bulk::compress(&body, level(body.len()))
        && z.len() < body.len()
    {
        out.push(ENC_ZSTD);
        out.extend_from_slice(&z);
        return out;
    }
    out.push(ENC_RAW);
    out.extend_from_slice(&body);
    out
}

/// zstd's level for a body: a page of a first sync is worth zstd's slowest levels (about
/// 0.1 s of the server's time for 8% fewer bytes, seconds on 2G); a daily sync's body is small
/// and frequent, and the level matters little for it.
fn level(len: usize) -> i32 {
    if len > BIG_BODY { 19 } else { 9 }
}

/// Above this a body is a page of files rather than a daily sync.
const BIG_BODY: usize = 16 << 10;

/// Checks a frame and returns its version and body, decompressed to at most `limit` bytes.
fn unframe(
    bytes: &[u8],
    kind: u8,
    expected: &'static str,
    limit: usize,
) -> Result<(u8, Vec<u8>), WireError> {
    if bytes.len() < 9 || bytes[..2] != MAGIC {
        return Err(WireError::BadMagic);
    }
    let (bytes, sum) = bytes.split_at(bytes.len() - 4);
    if check(bytes) != sum {
        return Err(WireError::Checksum);
    }
    let version = bytes[2];
    if !(MIN_PROTOCOL_VERSION..=PROTOCOL_VERSION).contains(&version) {
        return Err(WireError::UnsupportedVersion(version));
    }
    if bytes[3] != kind {
        return Err(WireError::WrongKind {
            expected,
            found: bytes[3],
        });
    }
    let body = &bytes[5..];
    let body = match bytes[4] {
        ENC_RAW if body.len() <= limit => body.to_vec(),
        ENC_RAW => return Err(WireError::Decompress(limit)),
        ENC_ZSTD => {
            zstd::bulk::decompress(body, limit).map_err(|_| WireError::Decompress(limit))?
        }
        e => return Err(WireError::UnknownEncoding(e)),
    };
    Ok((version, body))
}

pub(super) fn varint(w: &mut Vec<u8>, mut v: u64) {
    loop {
        let byte = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            w.push(byte);
            return;
        }
        w.push(byte | 0x80);
    }
}

fn field(w: &mut Vec<u8>, tag: u64, payload: &[u8]) {
    varint(w, tag);
    varint(w, payload.len() as u64);
    w.extend_from_slice(payload);
}

fn doc_and(doc: &ChildId, rest: &[u8]) -> Vec<u8> {
    let mut p = Vec::with_capacity(16 + rest.len());
    p.extend_from_slice(doc.as_bytes());
    p.extend_from_slice(rest);
    p
}

fn items(w: &mut Vec<u8>, items: &[Item]) {
    for i in items {
        let mut p = Vec::with_capacity(4 + i.payload.len());
        varint(&mut p, i.kind);
        p.extend_from_slice(&i.payload);
        field(w, tag::ITEM, &p);
    }
}

fn cursor_bytes(c: &Cursor) -> Vec<u8> {
    let mut p = Vec::with_capacity(14);
    varint(&mut p, c.seq);
    p.extend_from_slice(&c.token.to_le_bytes());
    p
}

fn read_cursor(p: &[u8]) -> Result<Cursor, WireError> {
    let mut r = Reader(p);
    let seq = r.varint("cursor")?;
    match r.0 {
        [a, b, c, d] => Ok(Cursor {
            seq,
            token: u32::from_le_bytes([*a, *b, *c, *d]),
        }),
        _ => Err(WireError::Malformed("cursor")),
    }
}

fn read_doc(p: &[u8]) -> Result<ChildId, WireError> {
    let id: [u8; 16] = p
        .get(..16)
        .and_then(|s| s.try_into().ok())
        .ok_or(WireError::Truncated("file id"))?;
    Ok(ChildId(uuid::Uuid::from_bytes(id)))
}

/// A summary's payload: the file id, then the name and the village each as a varint length
/// and UTF-8, then the digest to the end.
fn summary_bytes(s: &Summary) -> Vec<u8> {
    let mut p = Vec::with_capacity(20 + s.name.len() + s.village.len() + s.digest.len());
    p.extend_from_slice(s.doc.as_bytes());
    for text in [&s.name, &s.village] {
        varint(&mut p, text.len() as u64);
        p.extend_from_slice(text.as_bytes());
    }
    p.extend_from_slice(&s.digest);
    p
}

fn read_summary(p: &[u8]) -> Result<Summary, WireError> {
    let doc = read_doc(p)?;
    let mut r = Reader(&p[16..]);
    let mut text = || -> Result<String, WireError> {
        let len = r.varint("summary")?;
        let bytes = r.take(len, "summary")?;
        String::from_utf8(bytes.to_vec()).map_err(|_| WireError::Malformed("summary text"))
    };
    let name = text()?;
    let village = text()?;
    Ok(Summary {
        doc,
        name,
        village,
        digest: r.0.to_vec(),
    })
}

fn read_item(p: &[u8]) -> Result<Item, WireError> {
    let mut r = Reader(p);
    let kind = r.varint("item kind")?;
    Ok(Item {
        kind,
        payload: r.0.to_vec(),
    })
}

pub(super) struct Reader<'a>(pub(super) &'a [u8]);

impl<'a> Reader<'a> {
    pub(super) fn varint(&mut self, what: &'static str) -> Result<u64, WireError> {
        let mut v: u64 = 0;
        for (i, byte) in self.0.iter().enumerate() {
            let bits = u64::from(byte & 0x7f);
            let shift = 7 * i as u32;
            if shift >= 64 || (shift == 63 && bits > 1) {
                return Err(WireError::Malformed(what));
            }
            v |= bits << shift;
            if byte & 0x80 == 0 {
                self.0 = &self.0[i + 1..];
                return Ok(v);
            }
        }
        Err(WireError::Truncated(what))
    }

    pub(super) fn take(&mut self, n: u64, what: &'static str) -> Result<&'a [u8], WireError> {
        let n = usize::try_from(n).map_err(|_| WireError::Truncated(what))?;
        if n > self.0.len() {
            return Err(WireError::Truncated(what));
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Ok(head)
    }
}

struct Fields<'a>(Reader<'a>);

impl<'a> Fields<'a> {
    fn new(body: &'a [u8]) -> Self {
        Fields(Reader(body))
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Result<(u64, &'a [u8]), WireError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.0.0.is_empty() {
            return None;
        }
        let mut read = || -> Result<(u64, &'a [u8]), WireError> {
            let tag = self.0.varint("field tag")?;
            let len = self.0.varint("field length")?;
            Ok((tag, self.0.take(len, "field")?))
        };
        let r = read();
        if r.is_err() {
            // Stop after the first error: the rest of the body has no reliable framing.
            self.0.0 = &[];
        }
        Some(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u8) -> ChildId {
        ChildId(uuid::Uuid::from_bytes([n; 16]))
    }

    #[test]
    fn a_request_survives_a_round_trip() {
        let r = Request {
            version: PROTOCOL_VERSION,
            cursor: Some(Cursor { seq: 300, token: 7 }),
            uploads: vec![Upload {
                doc: id(1),
                base: 9,
                changes: vec![5; 500],
            }],
            syncs: vec![DocSync {
                doc: id(2),
                message: vec![1, 2, 3],
            }],
            items: vec![Item {
                kind: 4,
                payload: b"ack".to_vec(),
            }],
        };
        assert_eq!(Request::decode(&r.encode()), Ok(r));
    }

    #[test]
    fn a_response_survives_a_round_trip() {
        let r = Response {
            version: PROTOCOL_VERSION,
            server_time_ms: 1_795_000_000_000,
            cursor: Some(Cursor { seq: 1, token: 2 }),
            docs: vec![
                DocUpdate::Changes {
                    doc: id(1),
                    changes: vec![1; 40],
                },
                DocUpdate::Snapshot {
                    doc: id(2),
                    bytes: vec![2; 40],
                },
            ],
            syncs: vec![],
            drops: vec![id(3)],
            wipe: true,
            more: false,
            resync: true,
            items: vec![],
            refused: vec![id(4), id(5)],
            summaries: vec![Summary {
                doc: id(6),
                name: "李小红".into(),
                village: "220303100200".into(),
                digest: vec![1, 2, 3],
            }],
        };
        assert_eq!(Response::decode(&r.encode()), Ok(r));
    }

    #[test]
    fn a_summary_whose_name_runs_past_its_field_is_refused() {
        let mut p = id(1).as_bytes().to_vec();
        p.extend([9, b'a']);
        let mut body = Vec::new();
        varint(&mut body, 5);
        varint(&mut body, 1);
        body.push(0);
        field(&mut body, tag::SUMMARY, &p);
        let bytes = frame(PROTOCOL_VERSION, KIND_RESPONSE, body);
        assert_eq!(
            Response::decode(&bytes),
            Err(WireError::Truncated("summary"))
        );
    }

    #[test]
    fn a_version_1_request_is_read_and_answered_in_version_1() {
        let r = Request {
            version: 1,
            cursor: Some(Cursor { seq: 5, token: 6 }),
            ..Request::default()
        };
        let bytes = r.encode();
        assert_eq!(bytes[2], 1);
        assert_eq!(Request::decode(&bytes), Ok(r));
        let answer = Response {
            version: 1,
            ..Response::default()
        };
        assert_eq!(Response::decode(&answer.encode()).map(|a| a.version), Ok(1));
    }

    #[test]
    fn an_unknown_version_is_refused_by_name() {
        let bytes = frame(PROTOCOL_VERSION + 1, KIND_REQUEST, Vec::new());
        assert_eq!(
            Request::decode(&bytes),
            Err(WireError::UnsupportedVersion(PROTOCOL_VERSION + 1))
        );
    }

    #[test]
    fn an_idle_request_is_a_handful_of_bytes() {
        let r = Request {
            cursor: Some(Cursor {
                seq: 123_456,
                token: u32::MAX,
            }),
            ..Request::default()
        };
        assert!(r.encode().len() < 24, "{}", r.encode().len());
    }

    #[test]
    fn every_truncation_of_a_message_is_an_error() {
        let r = Request {
            cursor: Some(Cursor { seq: 3, token: 3 }),
            uploads: vec![Upload {
                doc: id(1),
                base: 1,
                changes: vec![7; 50],
            }],
            ..Request::default()
        };
        let bytes = r.encode();
        for n in 0..bytes.len() {
            assert!(Request::decode(&bytes[..n]).is_err(), "cut at {n}");
        }
        let mut flipped = bytes.clone();
        flipped[7] ^= 1;
        assert!(Request::decode(&flipped).is_err());
    }

    #[test]
    fn a_response_is_not_read_as_a_request() {
        let bytes = Response::default().encode();
        assert!(matches!(
            Request::decode(&bytes),
            Err(WireError::WrongKind { .. })
        ));
    }

    #[test]
    fn a_zstd_bomb_is_refused() {
        let huge = vec![0u8; MAX_REQUEST_BODY + 1];
        let z = zstd::bulk::compress(&huge, 1).expect("compress");
        let mut bytes = vec![b'H', b'V', PROTOCOL_VERSION, KIND_REQUEST, ENC_ZSTD];
        bytes.extend_from_slice(&z);
        let sum = check(&bytes);
        bytes.extend_from_slice(&sum);
        assert_eq!(
            Request::decode(&bytes),
            Err(WireError::Decompress(MAX_REQUEST_BODY))
        );
    }

    proptest::proptest! {
        #[test]
        fn random_bytes_never_panic_the_decoders(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..400)) {
            let _ = Request::decode(&bytes);
            let _ = Response::decode(&bytes);
            // Past the check too: the body parser itself must refuse garbage.
            let mut framed = vec![b'H', b'V', PROTOCOL_VERSION, KIND_RESPONSE, ENC_RAW];
            framed.extend_from_slice(&bytes);
            let sum = check(&framed);
            let _ = Response::decode(&[framed.as_slice(), &sum].concat());
            framed[3] = KIND_REQUEST;
            let sum = check(&framed);
            let _ = Request::decode(&[framed.as_slice(), &sum].concat());
        }
    }
}
