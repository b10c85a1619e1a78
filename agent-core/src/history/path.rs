//! Where the history database lives when no path is given, and whether a location is a file
//! or a PostgreSQL URL.

use std::ffi::OsString;
use std::path::PathBuf;

use super::HistoryError;

/// The environment variable that overrides the default database path.
pub const HISTORY_DB_ENV: &str = "AGENT_HISTORY_DB";

/// Whether `location` (a `--history-db` value or `AGENT_HISTORY_DB`) names a PostgreSQL
/// database (`postgres://` or `postgresql://`) rather than an SQLite file.
pub fn is_database_url(location: &std::path::Path) -> bool {
    location.to_str().is_some_and(super::db::postgres::is_url)
}

/// The database file's name inside the user data directory.
const FILE_NAME: &str = "history.sqlite3";

/// The default database file: `$AGENT_HISTORY_DB` (an empty value counts as unset), else
/// `history.sqlite3` in the per-user data directory ([`crate::data_dir::user_data_dir`]:
/// `$XDG_DATA_HOME/agent`, else `~/.local/share/agent`; `%APPDATA%\agent` on Windows).
pub fn default_path() -> Result<PathBuf, HistoryError> {
    default_path_from(
        std::env::var_os(HISTORY_DB_ENV),
        crate::data_dir::user_data_dir(),
    )
}

/// [`default_path`] from the variable's value and the data directory, so the rule can be
/// tested without touching the process environment.
fn default_path_from(
    explicit: Option<OsString>,
    data_dir: Option<PathBuf>,
) -> Result<PathBuf, HistoryError> {
    if let Some(path) = explicit.filter(|value| !value.is_empty()) {
        return Ok(PathBuf::from(path));
    }
    data_dir
        .map(|dir| dir.join(FILE_NAME))
        .ok_or(HistoryError::NoDataDir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explicit_variable_wins() {
        let path = default_path_from(Some("/tmp/h.db".into()), Some("/data/agent".into()));
        assert_eq!(path.unwrap(), PathBuf::from("/tmp/h.db"));
    }

    #[test]
    fn otherwise_the_user_data_directory() {
        for explicit in [None, Some(OsString::new())] {
            assert_eq!(
                default_path_from(explicit, Some("/data/agent".into())).unwrap(),
                PathBuf::from("/data/agent/history.sqlite3")
            );
        }
    }

    #[test]
    fn nothing_set_is_a_clear_error() {
        let err = default_path_from(None, None).unwrap_err();
        assert!(err.to_string().contains("AGENT_HISTORY_DB"), "{err}");
    }
}
