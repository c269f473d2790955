//! Files about children, keys and certificates are readable by the server's own user only:
//! directories are made 0700 and files 0600, and existing ones are tightened at start.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::Path;

#[cfg(unix)]
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};

/// Makes `dir` (and any missing parent) owner-only, or tightens it if it exists.
pub fn private_dir(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    builder.mode(0o700);
    builder.create(dir)?;
    #[cfg(unix)]
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700))?;
    Ok(())
}

/// Opens `path` for writing as an owner-only file, creating it if needed.
pub fn private_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.write(true).create(true);
    #[cfg(unix)]
    options.mode(0o600);
    options
}

/// Writes `bytes` to `path` as an owner-only file, durably.
pub fn private_write(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut file = private_options().truncate(true).open(path)?;
    #[cfg(unix)]
    file.set_permissions(fs::Permissions::from_mode(0o600))?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Creates `path` empty and owner-only if it does not exist, and tightens it if it does: for a
/// database file that another library (SQLite) will open, and whose side files (`-wal`,
/// `-shm`) SQLite creates with the database's own permissions.
pub fn private_file(path: &Path) -> io::Result<()> {
    let file = private_options().truncate(false).open(path)?;
    #[cfg(unix)]
    file.set_permissions(fs::Permissions::from_mode(0o600))?;
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    fn mode(path: &Path) -> u32 {
        fs::metadata(path).expect("metadata").permissions().mode() & 0o777
    }

    #[test]
    fn directories_and_files_are_made_and_tightened_owner_only() {
        let root = tempfile::tempdir().expect("dir");
        let dir = root.path().join("a/b");
        private_dir(&dir).expect("dir");
        assert_eq!(mode(&root.path().join("a")), 0o700);
        assert_eq!(mode(&dir), 0o700);
        let file = dir.join("key");
        fs::write(&file, b"old").expect("write");
        fs::set_permissions(&file, fs::Permissions::from_mode(0o644)).expect("chmod");
        private_write(&file, b"secret").expect("write");
        assert_eq!(mode(&file), 0o600);
        assert_eq!(fs::read(&file).expect("read"), b"secret");
        let db = dir.join("db");
        private_file(&db).expect("create");
        assert_eq!(mode(&db), 0o600);
    }
}
