//! Reading the files a user names, safely: only regular files, and never more than a limit.
//!
//! Agent files, instructions, scenarios, price tables, history imports and audio all come from
//! paths a user types, and a wrong path must end in a message, not a hang or an exhausted
//! machine: `/dev/zero` never ends, a FIFO blocks its reader until a writer appears, a directory
//! cannot be read at all, and `/proc` files report a size of 0 whatever they hold. So:
//!
//! - the file's type is checked *before* it is opened (opening a FIFO for reading blocks), and
//!   again on the open handle, in case the path changed in between;
//! - reading stops one byte past the caller's limit, whatever the metadata says, so a file over
//!   the limit is recognised without reading it all;
//! - text that is not UTF-8 is reported with the line, column and byte offset of the first bad
//!   byte.
//!
//! Every error names the file, says what was wrong and what to do. The limits themselves belong
//! to the callers (each kind of file has its own), which pass them with a short description of
//! the file (`"agent file"`, `"price table"`) that the messages use.

use std::{
    fmt,
    fs::File,
    io::Read,
    path::{Path, PathBuf},
};

/// Why a user-named file was not read.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The path does not name a regular file (a directory, device, FIFO or socket).
    #[error(
        "{what} {} is {kind}, not a regular file; give the path of an ordinary file (devices, \
         pipes and directories are refused because reading them may never end)",
        path.display()
    )]
    NotRegular {
        /// What the file was for, e.g. `agent file`.
        what: &'static str,
        /// The path as given.
        path: PathBuf,
        /// What it is instead, e.g. `a FIFO (named pipe)`.
        kind: &'static str,
    },
    /// The file could not be inspected, opened or read.
    #[error("cannot read {what} {}: {error}; check that the file exists and is readable", path.display())]
    Io {
        /// What the file was for.
        what: &'static str,
        /// The path as given.
        path: PathBuf,
        /// What the OS said (shown in the message, so not also chained as a source).
        error: std::io::Error,
    },
    /// The file holds more than its kind's limit.
    #[error(
        "{what} {} is larger than {}, the limit for a {what}; check that the path names the \
         file you meant, or make the file smaller",
        path.display(),
        Size(*limit)
    )]
    TooLarge {
        /// What the file was for.
        what: &'static str,
        /// The path as given.
        path: PathBuf,
        /// The limit in bytes.
        limit: u64,
    },
    /// The file is not UTF-8 text.
    #[error(
        "{}:{line}:{column}: {what} is not valid UTF-8 (byte 0x{byte:02X} at offset {offset}); \
         re-save the file with UTF-8 encoding",
        path.display()
    )]
    NotUtf8 {
        /// What the file was for.
        what: &'static str,
        /// The path as given.
        path: PathBuf,
        /// 1-based line of the first invalid byte.
        line: usize,
        /// 1-based column (in characters) of the first invalid byte.
        column: usize,
        /// 0-based byte offset of the first invalid byte.
        offset: usize,
        /// The first invalid byte.
        byte: u8,
    },
}

impl ReadError {
    /// The path the error is about.
    pub fn path(&self) -> &Path {
        match self {
            ReadError::NotRegular { path, .. }
            | ReadError::Io { path, .. }
            | ReadError::TooLarge { path, .. }
            | ReadError::NotUtf8 { path, .. } => path,
        }
    }
}

/// A byte count in the largest binary unit that divides it (`1 MiB`, `1500 bytes`), for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Size(pub u64);

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const UNITS: [(u64, &str); 3] = [(1 << 30, "GiB"), (1 << 20, "MiB"), (1 << 10, "KiB")];
        for (unit, name) in UNITS {
            if self.0 >= unit && self.0.is_multiple_of(unit) {
                return write!(f, "{} {name}", self.0 / unit);
            }
        }
        write!(f, "{} bytes", self.0)
    }
}

/// Refuses anything but a regular file (symbolic links are followed), without opening it.
pub fn check_regular(path: &Path, what: &'static str) -> Result<(), ReadError> {
    let metadata = std::fs::metadata(path).map_err(|error| io(what, path, error))?;
    regular(&metadata, path, what)
}

/// Opens a regular file for reading; anything else is refused before it is opened.
pub fn open_regular(path: &Path, what: &'static str) -> Result<File, ReadError> {
    check_regular(path, what)?;
    let file = File::open(path).map_err(|error| io(what, path, error))?;
    // The path may have been replaced between the check and the open.
    let metadata = file.metadata().map_err(|error| io(what, path, error))?;
    regular(&metadata, path, what)?;
    Ok(file)
}

/// Reads a whole regular file of at most `limit` bytes. At most `limit + 1` bytes are read,
/// whatever size the file reports.
pub fn read_bytes(path: &Path, limit: u64, what: &'static str) -> Result<Vec<u8>, ReadError> {
    let file = open_regular(path, what)?;
    // The reported size is only a capacity hint, and never more than the limit.
    let hint = file.metadata().map_or(0, |m| m.len()).min(limit);
    let mut bytes = Vec::with_capacity(usize::try_from(hint).unwrap_or(0).saturating_add(1));
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|error| io(what, path, error))?;
    if bytes.len() as u64 > limit {
        return Err(ReadError::TooLarge {
            what,
            path: path.to_owned(),
            limit,
        });
    }
    Ok(bytes)
}

/// Reads a whole regular file of at most `limit` bytes as UTF-8 text.
pub fn read_text(path: &Path, limit: u64, what: &'static str) -> Result<String, ReadError> {
    let bytes = read_bytes(path, limit, what)?;
    utf8(bytes, path, what)
}

/// The bytes as text, or where the first byte that is not UTF-8 sits.
pub fn utf8(bytes: Vec<u8>, path: &Path, what: &'static str) -> Result<String, ReadError> {
    String::from_utf8(bytes).map_err(|error| {
        let bytes = error.as_bytes();
        let offset = error.utf8_error().valid_up_to();
        let (line, column) = position(bytes, offset);
        ReadError::NotUtf8 {
            what,
            path: path.to_owned(),
            line,
            column,
            offset,
            byte: bytes.get(offset).copied().unwrap_or(0),
        }
    })
}

/// 1-based line and column (in characters) of `offset`, where everything before it is UTF-8.
fn position(bytes: &[u8], offset: usize) -> (usize, usize) {
    let before = std::str::from_utf8(&bytes[..offset.min(bytes.len())]).unwrap_or("");
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

fn regular(metadata: &std::fs::Metadata, path: &Path, what: &'static str) -> Result<(), ReadError> {
    if metadata.is_file() {
        return Ok(());
    }
    Err(ReadError::NotRegular {
        what,
        path: path.to_owned(),
        kind: kind_of(&metadata.file_type()),
    })
}

fn kind_of(file_type: &std::fs::FileType) -> &'static str {
    if file_type.is_dir() {
        return "a directory";
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt as _;
        if file_type.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if file_type.is_char_device() {
            return "a character device";
        }
        if file_type.is_block_device() {
            return "a block device";
        }
        if file_type.is_socket() {
            return "a socket";
        }
    }
    "a special file"
}

fn io(what: &'static str, path: &Path, error: std::io::Error) -> ReadError {
    ReadError::Io {
        what,
        path: path.to_owned(),
        error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_file_within_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.txt");
        std::fs::write(&path, "héllo").unwrap();
        assert_eq!(read_text(&path, 6, "test file").unwrap(), "héllo");
    }

    #[test]
    fn a_file_one_byte_over_the_limit_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("big.txt");
        std::fs::write(&path, vec![b'x'; 1025]).unwrap();
        let error = read_text(&path, 1024, "test file").unwrap_err();
        assert!(
            matches!(error, ReadError::TooLarge { limit: 1024, .. }),
            "{error}"
        );
        let shown = error.to_string();
        assert!(
            shown.contains("big.txt") && shown.contains("1 KiB"),
            "{shown}"
        );
        std::fs::write(&path, vec![b'x'; 1024]).unwrap();
        assert_eq!(read_bytes(&path, 1024, "test file").unwrap().len(), 1024);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn devices_are_refused_before_reading() {
        let error = read_text(Path::new("/dev/zero"), 1024, "test file").unwrap_err();
        assert!(
            matches!(
                error,
                ReadError::NotRegular {
                    kind: "a character device",
                    ..
                }
            ),
            "{error}"
        );
        assert!(error.to_string().contains("/dev/zero"), "{error}");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn proc_files_that_report_no_size_are_still_limited() {
        // /proc files are regular files of reported size 0; the limit holds anyway.
        let path = Path::new("/proc/self/status");
        if !path.is_file() {
            println!("skipped: {} is not available", path.display());
            return;
        }
        assert_eq!(std::fs::metadata(path).unwrap().len(), 0);
        let error = read_text(path, 16, "test file").unwrap_err();
        assert!(matches!(error, ReadError::TooLarge { .. }), "{error}");
    }

    #[test]
    fn directories_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let error = read_text(dir.path(), 1024, "test file").unwrap_err();
        assert!(
            matches!(
                error,
                ReadError::NotRegular {
                    kind: "a directory",
                    ..
                }
            ),
            "{error}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn fifos_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pipe");
        match std::process::Command::new("mkfifo").arg(&path).status() {
            Ok(status) if status.success() => {}
            _ => {
                println!("skipped: mkfifo is not available");
                return;
            }
        }
        // Opening a FIFO with no writer blocks: run on a thread so a regression fails the test
        // instead of hanging it.
        let (send, receive) = std::sync::mpsc::channel();
        let reading = path.clone();
        std::thread::spawn(move || {
            let _ = send.send(read_text(&reading, 1024, "test file"));
        });
        let error = receive
            .recv_timeout(std::time::Duration::from_secs(30))
            .expect("reading a FIFO must not block")
            .unwrap_err();
        assert!(
            matches!(
                error,
                ReadError::NotRegular {
                    kind: "a FIFO (named pipe)",
                    ..
                }
            ),
            "{error}"
        );
    }

    #[test]
    fn missing_files_say_so() {
        let error = read_text(Path::new("/nonexistent/x.toml"), 1024, "agent file").unwrap_err();
        let shown = error.to_string();
        assert!(
            shown.starts_with("cannot read agent file /nonexistent/x.toml: "),
            "{shown}"
        );
        // The OS error is in the message, so it is not chained a second time.
        assert!(std::error::Error::source(&error).is_none());
    }

    #[test]
    fn invalid_utf8_names_line_column_and_offset() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, b"name = \"x\"\nvoice = \"\xC3\xA9\xFF\"\n").unwrap();
        let error = read_text(&path, 1024, "agent file").unwrap_err();
        assert!(
            matches!(
                error,
                ReadError::NotUtf8 {
                    line: 2,
                    column: 11,
                    offset: 22,
                    byte: 0xFF,
                    ..
                }
            ),
            "{error:?}"
        );
        let shown = error.to_string();
        assert!(shown.contains("bad.toml:2:11: "), "{shown}");
        assert_eq!(shown.matches("not valid UTF-8").count(), 1, "{shown}");
    }

    #[test]
    fn sizes_read_in_binary_units() {
        assert_eq!(Size(1 << 20).to_string(), "1 MiB");
        assert_eq!(Size(64 << 20).to_string(), "64 MiB");
        assert_eq!(Size(4096).to_string(), "4 KiB");
        assert_eq!(Size(1500).to_string(), "1500 bytes");
    }
}
