//! Files that hold conversation data are readable by their owner only.
//!
//! Traces, the history database (and SQLite's `-wal` and `-shm` files, which take the
//! database's permissions), recorded audio and tickets all hold what users said. Created with
//! the default umask they would often be world-readable; these helpers create them with mode
//! 0600 and tighten an existing file to it. On systems without Unix permissions they are plain
//! file operations.

use std::{
    fs::{File, OpenOptions},
    io,
    path::Path,
};

/// Creates (or truncates) `path` for writing, owner-only.
pub fn create(path: &Path) -> io::Result<File> {
    let file = options()
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)?;
    restrict(path)?;
    Ok(file)
}

/// Opens `path` for appending, creating it owner-only.
pub fn append(path: &Path) -> io::Result<File> {
    let file = options().append(true).create(true).open(path)?;
    restrict(path)?;
    Ok(file)
}

/// Makes an existing file owner-only (a file created earlier, or by another program).
pub fn restrict(path: &Path) -> io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let metadata = std::fs::metadata(path)?;
        if metadata.is_file() && metadata.permissions().mode() & 0o077 != 0 {
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

fn options() -> OpenOptions {
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    options
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn new_and_existing_files_become_owner_only() {
        let dir = tempfile::tempdir().unwrap();
        let created = dir.path().join("trace.jsonl");
        create(&created).unwrap();
        assert_eq!(mode(&created), 0o600);
        let existing = dir.path().join("tickets.jsonl");
        std::fs::write(&existing, "x").unwrap();
        std::fs::set_permissions(&existing, std::fs::Permissions::from_mode(0o644)).unwrap();
        append(&existing).unwrap();
        assert_eq!(mode(&existing), 0o600);
    }
}
