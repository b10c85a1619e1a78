//! (7) Release binary size: the `agent` binary as it ships (the release profile: no debug
//! info, symbols stripped), built by the bench from this checkout. The size goes up as the
//! server, WebRTC and PostgreSQL code arrive; this section keeps it visible.

use crate::binaries::{self, Profile};

/// The binary and its size.
#[derive(Debug, Clone)]
pub struct BinarySize {
    /// Bytes on disk.
    pub bytes: u64,
    /// The profiling build's size, for comparison (line tables and symbols kept).
    pub profiling_bytes: Option<u64>,
}

/// Stats the release binary (and the profiling one, if it is already built).
pub fn run() -> anyhow::Result<BinarySize> {
    let release = binaries::agent(Profile::Release)?;
    let profiling = release
        .parent()
        .and_then(|d| d.parent())
        .map(|t| t.join("profiling/agent"));
    Ok(BinarySize {
        bytes: std::fs::metadata(&release)?.len(),
        profiling_bytes: profiling.and_then(|p| std::fs::metadata(p).ok().map(|m| m.len())),
    })
}
