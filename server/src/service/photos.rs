//! Photos: how a piece of an upload is taken, when a whole one is stored and whose it becomes,
//! and who may see one.
//!
//! A photo is named by the SHA-256 of its bytes. Pieces go to the sending device's unfinished
//! upload (`store::blobs`); a piece must start where the upload stands (or at 0, to start
//! over); the last piece makes the server re-decode the image within limits and check its
//! hash before the photo is stored and bound to its uploader. Uploading proves holding the
//! bytes: a photo someone else stored is bound to each user who uploads it too.

use homevisit_sync_core::photo::{self, MAX_EDGE, PhotoLimits};
use homevisit_sync_core::sync::Scope;

use crate::store::DbConnection;
use crate::store::audit::{self, Read};
use crate::store::blobs::{BlobStore, PieceError};
use crate::store::children::photo_villages;

/// The largest photo accepted, bytes. Phones send at most 1600 px JPEGs, well under this.
pub const MAX_PHOTO_BYTES: usize = 8 << 20;

/// What the server will decode: a phone's photo fits; an image bomb does not.
pub fn server_limits() -> PhotoLimits {
    PhotoLimits {
        max_bytes: MAX_PHOTO_BYTES,
        max_edge: MAX_EDGE,
        max_alloc: 64 << 20,
    }
}

/// What became of a piece.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// The piece does not start where the upload stands: resume at `offset`.
    Misplaced {
        /// Bytes held.
        offset: u64,
    },
    /// Kept; the upload is not whole yet.
    Kept {
        /// Bytes held.
        offset: u64,
    },
    /// The upload is whole and verified: record it with [`bind`].
    Whole {
        /// Its size, bytes.
        size: usize,
        /// Width and height.
        dims: (u32, u32),
    },
}

/// Why a piece was refused.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    /// The whole upload is not the image its name says (or not an image, or a bomb).
    #[error("{0}")]
    Invalid(String),
    /// The device holds too much of unfinished uploads.
    #[error(transparent)]
    Quota(PieceError),
    /// The disk failed.
    #[error("photo storage: {0}")]
    Io(std::io::Error),
}

/// Takes a piece (`bytes` at `start` of an upload of `total` bytes) into `device`'s
/// unfinished upload of `sha`; when it completes the upload, verifies it and moves it into
/// place. Blocking: file I/O and image decoding.
pub fn receive(
    blobs: &BlobStore,
    device: &str,
    sha: &str,
    start: u64,
    total: u64,
    bytes: &[u8],
) -> Result<Piece, UploadError> {
    let offset = blobs.offset(device, sha);
    if start != 0 && start != offset {
        return Ok(Piece::Misplaced { offset });
    }
    let held = blobs
        .append(device, sha, start, bytes)
        .map_err(|e| match e {
            PieceError::Io(io) => UploadError::Io(io),
            quota @ PieceError::Quota => UploadError::Quota(quota),
        })?;
    if held < total {
        return Ok(Piece::Kept { offset: held });
    }
    let whole = blobs.read_partial(device, sha).map_err(UploadError::Io)?;
    match photo::verify(&whole, sha, &server_limits()) {
        Ok(dims) => {
            blobs.finish(device, sha).map_err(UploadError::Io)?;
            Ok(Piece::Whole {
                size: whole.len(),
                dims,
            })
        }
        Err(e) => {
            blobs.discard(device, sha);
            Err(UploadError::Invalid(e.to_string()))
        }
    }
}

/// Records a whole photo and binds it to `user`, who uploaded it.
pub fn bind(
    conn: &mut DbConnection,
    user: &str,
    sha: &str,
    size: usize,
    dims: (u32, u32),
    now: i64,
) -> diesel::QueryResult<()> {
    crate::store::blobs::record(conn, sha, size, dims, user, now)
}

/// Whether `user` holds a complete upload of `sha` (another user's upload says nothing to
/// this one: they must send the bytes to name the photo).
pub fn stored_for(
    conn: &mut DbConnection,
    blobs: &BlobStore,
    sha: &str,
    user: &str,
) -> diesel::QueryResult<bool> {
    Ok(blobs.exists(sha) && crate::store::blobs::uploaded_by(conn, sha, user)?)
}

/// Why a photo may not be read.
#[derive(Debug, thiserror::Error)]
pub enum SeeError {
    /// No file names it.
    #[error("no such photo")]
    NotFound,
    /// Only files outside the reader's regions name it.
    #[error("this photo belongs to files outside your regions")]
    Forbidden,
    /// The database failed.
    #[error("database: {0}")]
    Store(#[from] diesel::result::Error),
}

/// Checks that a file the reader may see names the photo, and writes the audit row
/// (`reader`, with its action) for that file.
pub fn may_see(
    conn: &mut DbConnection,
    scope: &Scope,
    reader: &Read<'_>,
    sha: &str,
) -> Result<(), SeeError> {
    let files = photo_villages(conn, sha)?;
    if files.is_empty() {
        return Err(SeeError::NotFound);
    }
    let (child, village) = files
        .iter()
        .find(|(_, v)| scope.contains(v))
        .ok_or(SeeError::Forbidden)?;
    audit::record(
        conn,
        &Read {
            child_id: Some(child),
            village: Some(village),
            ..reader.clone()
        },
    )?;
    Ok(())
}
