//! The per-user data directory: where the history database and the support demo's tickets go
//! when nothing more specific is named. One rule for every use, from the `etcetera` crate:
//!
//! - Linux, macOS and other Unix systems: `$XDG_DATA_HOME/agent` when `XDG_DATA_HOME` is set to
//!   an absolute path (a relative or empty value is ignored, as the XDG Base Directory
//!   specification asks), else `$HOME/.local/share/agent`. macOS follows the XDG rules too, as
//!   command-line tools usually do, so a path in the docs is the same on both.
//! - Windows: `%APPDATA%\agent` (the roaming application-data folder).
//!
//! Each use puts its own override first: `AGENT_HISTORY_DB` (or `--history-db`) for the history
//! database, `AGENT_DATA_DIR` or the agent file's data directory for tickets. Tests set those,
//! or `XDG_DATA_HOME` in a child process's environment, and never touch the user's folders.

use std::path::PathBuf;

use etcetera::BaseStrategy as _;

/// The folder inside the platform's data directory that belongs to this project.
pub const APP_DIR: &str = "agent";

/// The per-user data directory (see the module docs), or `None` when no home directory can be
/// found.
pub fn user_data_dir() -> Option<PathBuf> {
    let strategy = etcetera::choose_base_strategy().ok()?;
    Some(strategy.data_dir().join(APP_DIR))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_directory_is_named_after_the_project() {
        if let Some(dir) = user_data_dir() {
            assert!(dir.ends_with(APP_DIR), "{}", dir.display());
            assert!(dir.is_absolute(), "{}", dir.display());
        }
    }
}
