//! (7) Binary size: the `agent` binary as it ships (the `dist` profile: whole-program LTO, no
//! debug info, symbols stripped), built by the bench from this checkout. The size goes up as the
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

/// Stats the shipped (`dist`) binary (and the profiling one, if it is already built).
pub fn run() -> anyhow::Result<BinarySize> {
    let dist = binaries::agent(Profile::Dist)?;
    let profiling = dist
        .parent()
        .and_then(|d| d.parent())
        .map(|t| t.join("profiling/agent"));
    Ok(BinarySize {
        bytes: std::fs::metadata(&dist)?.len(),
        profiling_bytes: profiling.and_then(|p| std::fs::metadata(p).ok().map(|m| m.len())),
    })
}
