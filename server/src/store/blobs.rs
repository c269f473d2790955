//! Photo bytes, addressed by their SHA-256, in a directory (`DATA_DIR/blobs`): `ab/abcdef…`
//! for complete photos, `partial/DEVICE/abcdef…` for uploads under way. A photo becomes
//! visible only after it is whole, verified and renamed into place, so a reader never sees half
//! of one. Uploads under way belong to the device sending them: no one else can add to them or
//! learn how far they got, each device may hold at most [`PARTIAL_QUOTA`] bytes of them, and
//! those left alone for [`PARTIAL_TTL`] are swept away.

use diesel::prelude::*;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::DbConnection;
use super::schema::{blob_uploaders, blobs};

/// The most bytes of unfinished uploads one device may hold: eight photos of the largest size.
pub const PARTIAL_QUOTA: u64 = 64 << 20;
/// How long an unfinished upload is kept without a new piece.
pub const PARTIAL_TTL: Duration = Duration::from_secs(24 * 3600);

/// Whether `name` is a SHA-256 in lowercase hex (and so safe as a file name).
pub fn valid_name(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Why a piece of an upload was not kept.
#[derive(Debug, thiserror::Error)]
pub enum PieceError {
    /// The device's unfinished uploads would pass [`PARTIAL_QUOTA`].
    #[error("unfinished uploads would pass {PARTIAL_QUOTA} bytes: finish or resend them")]
    Quota,
    /// The disk failed.
    #[error(transparent)]
    Io(#[from] io::Error),
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

    /// `device` is a UUID the server checked, so safe as a directory name.
    fn partials(&self, device: &str) -> PathBuf {
        self.root.join("partial").join(device)
    }

    fn partial(&self, device: &str, sha: &str) -> PathBuf {
        self.partials(device).join(sha)
    }

    /// Whether the complete photo is stored.
    pub fn exists(&self, sha: &str) -> bool {
        self.path(sha).is_file()
    }

    /// How many bytes of the device's interrupted upload are kept.
    pub fn offset(&self, device: &str, sha: &str) -> u64 {
        fs::metadata(self.partial(device, sha)).map_or(0, |m| m.len())
    }

    /// Writes `bytes` at `offset` of the device's upload (0 starts over); returns the new
    /// length.
    pub fn append(
        &self,
        device: &str,
        sha: &str,
        offset: u64,
        bytes: &[u8],
    ) -> Result<u64, PieceError> {
        let dir = self.partials(device);
        crate::files::private_dir(&dir)?;
        let path = dir.join(sha);
        let held: u64 = fs::read_dir(&dir)?
            .flatten()
            .filter(|e| e.path() != path)
            .filter_map(|e| e.metadata().ok())
            .map(|m| m.len())
            .sum();
        if held + offset + bytes.len() as u64 > PARTIAL_QUOTA {
            return Err(PieceError::Quota);
        }
        let mut file = crate::files::private_options()
            .append(offset > 0)
            .truncate(offset == 0)
            .open(&path)?;
        file.write_all(bytes)?;
        file.sync_data()?;
        Ok(file.metadata()?.len())
    }

    /// The device's whole upload so far.
    pub fn read_partial(&self, device: &str, sha: &str) -> io::Result<Vec<u8>> {
        fs::read(self.partial(device, sha))
    }

    /// Drops the device's upload (it failed verification, or the photo is stored already).
    pub fn discard(&self, device: &str, sha: &str) {
        let _ = fs::remove_file(self.partial(device, sha));
    }

    /// Moves the device's verified upload into place, durably. A photo stored meanwhile by
    /// someone else is the same bytes: the upload is dropped.
    pub fn finish(&self, device: &str, sha: &str) -> io::Result<()> {
        if self.exists(sha) {
            self.discard(device, sha);
            return Ok(());
        }
        let target = self.path(sha);
        let dir = target.parent().unwrap_or(&self.root).to_owned();
        crate::files::private_dir(&dir)?;
        fs::rename(self.partial(device, sha), &target)?;
        File::open(&dir)?.sync_all()
    }

    /// A stored photo.
    pub fn read(&self, sha: &str) -> io::Result<Vec<u8>> {
        fs::read(self.path(sha))
    }

    /// Deletes unfinished uploads untouched for `ttl`, and device directories left empty.
    /// Returns how many uploads it deleted.
    pub fn sweep(&self, ttl: Duration) -> io::Result<usize> {
        let root = self.root.join("partial");
        let Ok(devices) = fs::read_dir(&root) else {
            return Ok(0);
        };
        let now = SystemTime::now();
        let mut swept = 0;
        for device in devices.flatten() {
            for upload in fs::read_dir(device.path())?.flatten() {
                let old = upload
                    .metadata()
                    .and_then(|m| m.modified())
                    .is_ok_and(|t| now.duration_since(t).unwrap_or_default() > ttl);
                if old && fs::remove_file(upload.path()).is_ok() {
                    swept += 1;
                }
            }
            // Fails, harmlessly, while the directory still holds an upload.
            let _ = fs::remove_dir(device.path());
        }
        Ok(swept)
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

#[cfg(test)]
mod tests {
    use super::*;

    const DEVICE: &str = "0b6c4f2e-8f43-4d9e-9a53-2f3c1c7e9a10";

    #[test]
    fn a_device_may_hold_only_so_much_of_unfinished_uploads() {
        let dir = tempfile::tempdir().expect("dir");
        let store = BlobStore::new(dir.path());
        let piece = vec![7u8; 8 << 20];
        for i in 0..8 {
            let name = format!("{i:064x}");
            store
                .append(DEVICE, &name, 0, &piece)
                .expect("within quota");
        }
        let ninth = format!("{:064x}", 9);
        assert!(matches!(
            store.append(DEVICE, &ninth, 0, &piece),
            Err(PieceError::Quota)
        ));
        // Another device has a quota of its own, and a restart of an upload is not extra.
        let other = "1b6c4f2e-8f43-4d9e-9a53-2f3c1c7e9a10";
        store.append(other, &ninth, 0, &piece).expect("own quota");
        store
            .append(DEVICE, &format!("{:064x}", 0), 0, &piece)
            .expect("starting over replaces");
    }

    #[test]
    fn uploads_left_alone_are_swept_and_fresh_ones_kept() {
        let dir = tempfile::tempdir().expect("dir");
        let store = BlobStore::new(dir.path());
        let (old, fresh) = (format!("{:064x}", 1), format!("{:064x}", 2));
        store
            .append(DEVICE, &old, 0, b"half a photo")
            .expect("piece");
        store
            .append(DEVICE, &fresh, 0, b"half a photo")
            .expect("piece");
        let two_days_ago = SystemTime::now() - Duration::from_secs(48 * 3600);
        File::options()
            .write(true)
            .open(store.partial(DEVICE, &old))
            .and_then(|f| f.set_modified(two_days_ago))
            .expect("age it");
        assert_eq!(store.sweep(PARTIAL_TTL).expect("sweep"), 1);
        assert_eq!(store.offset(DEVICE, &old), 0);
        assert_eq!(store.offset(DEVICE, &fresh), 12);
    }
}
