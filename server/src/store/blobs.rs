//! Photo bytes, addressed by their SHA-256, in a directory (`DATA_DIR/blobs`): `ab/abcdef…`
//! for complete photos, `partial/abcdef…` for uploads under way. A photo becomes visible only
//! after it is whole, verified and renamed into place, so a reader never sees half of one.

use diesel::prelude::*;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::DbConnection;
use super::schema::{blob_uploaders, blobs};

/// Whether `name` is a SHA-256 in lowercase hex (and so safe as a file name).
pub fn valid_name(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The blob directory.
#[derive(Debug, Clone)]
pub struct BlobStore {
    root: PathBuf,
}

impl BlobStore {
    /// Blobs under `root` (created on first write).
    pub fn new(root: &Path) -> Self {
        BlobStore {
            root: root.to_owned(),
        }
    }

    fn path(&self, sha: &str) -> PathBuf {
        self.root.join(&sha[..2]).join(sha)
    }

    fn partial(&self, sha: &str) -> PathBuf {
        self.root.join("partial").join(sha)
    }

    /// Whether the complete photo is stored.
    pub fn exists(&self, sha: &str) -> bool {
        self.path(sha).is_file()
    }

    /// How many bytes of an interrupted upload are kept.
    pub fn offset(&self, sha: &str) -> u64 {
        fs::metadata(self.partial(sha)).map_or(0, |m| m.len())
    }

    /// Writes `bytes` at `offset` of the upload (0 starts over); returns the new length.
    pub fn append(&self, sha: &str, offset: u64, bytes: &[u8]) -> io::Result<u64> {
        let path = self.partial(sha);
        crate::files::private_dir(path.parent().unwrap_or(&self.root))?;
        let mut file = crate::files::private_options()
            .append(offset > 0)
            .truncate(offset == 0)
            .open(&path)?;
        file.write_all(bytes)?;
        file.sync_data()?;
        Ok(file.metadata()?.len())
    }

    /// The whole upload so far.
    pub fn read_partial(&self, sha: &str) -> io::Result<Vec<u8>> {
        fs::read(self.partial(sha))
    }

    /// Drops an upload that failed verification.
    pub fn discard(&self, sha: &str) {
        let _ = fs::remove_file(self.partial(sha));
    }

    /// Moves a verified upload into place, durably.
    pub fn finish(&self, sha: &str) -> io::Result<()> {
        let target = self.path(sha);
        let dir = target.parent().unwrap_or(&self.root).to_owned();
        crate::files::private_dir(&dir)?;
        fs::rename(self.partial(sha), &target)?;
        File::open(&dir)?.sync_all()
    }

    /// A stored photo.
    pub fn read(&self, sha: &str) -> io::Result<Vec<u8>> {
        fs::read(self.path(sha))
    }
}

/// Records a verified photo and binds it to the user who uploaded it. A photo is stored once;
/// each user who uploads it is bound to it (uploading it proves holding its bytes).
pub fn record(
    conn: &mut DbConnection,
    sha: &str,
    size: usize,
    (width, height): (u32, u32),
    user: &str,
    now: i64,
) -> QueryResult<()> {
    super::write_transaction(conn, |c| {
        let known = blobs::table
            .filter(blobs::sha256.eq(sha))
            .count()
            .get_result::<i64>(c)?;
        if known == 0 {
            diesel::insert_into(blobs::table)
                .values((
                    blobs::sha256.eq(sha),
                    blobs::size.eq(size as i64),
                    blobs::width.eq(width as i32),
                    blobs::height.eq(height as i32),
                    blobs::uploaded_at.eq(now),
                ))
                .execute(c)?;
        }
        if !uploaded_by(c, sha, user)? {
            diesel::insert_into(blob_uploaders::table)
                .values((
                    blob_uploaders::sha256.eq(sha),
                    blob_uploaders::user_id.eq(user),
                    blob_uploaders::uploaded_at.eq(now),
                ))
                .execute(c)?;
        }
        Ok(())
    })
}

/// Whether `user` uploaded the photo.
pub fn uploaded_by(conn: &mut DbConnection, sha: &str, user: &str) -> QueryResult<bool> {
    blob_uploaders::table
        .filter(blob_uploaders::sha256.eq(sha))
        .filter(blob_uploaders::user_id.eq(user))
        .count()
        .get_result::<i64>(conn)
        .map(|n| n > 0)
}
