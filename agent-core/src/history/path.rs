//! Where the history database lives when no path is given.
//!
//! Written by hand rather than with a directories crate: the rule is three environment
//! variables long, and spelling it out keeps it the same on every platform and easy to test.

use std::ffi::OsString;
use std::path::PathBuf;

use super::HistoryError;

/// The environment variable that overrides the default database path.
pub const HISTORY_DB_ENV: &str = "AGENT_HISTORY_DB";

/// The default database file: `$AGENT_HISTORY_DB`, else
/// `$XDG_DATA_HOME/agent/history.sqlite3`, else `~/.local/share/agent/history.sqlite3`
/// (on Windows, `%LOCALAPPDATA%\agent\history.sqlite3` when `HOME` is not set).
///
/// Empty variables count as unset, and a relative `XDG_DATA_HOME` is ignored, as the XDG
/// specification asks.
pub fn default_path() -> Result<PathBuf, HistoryError> {
    default_path_from(|name| std::env::var_os(name))
}

/// [`default_path`] over an arbitrary environment, so the rule can be tested without touching
/// the process environment.
pub(crate) fn default_path_from(
    env: impl Fn(&str) -> Option<OsString>,
) -> Result<PathBuf, HistoryError> {
    let var = |name: &str| env(name).filter(|value| !value.is_empty());
    if let Some(path) = var(HISTORY_DB_ENV) {
        return Ok(PathBuf::from(path));
    }
    let file = |dir: PathBuf| dir.join("agent").join("history.sqlite3");
    if let Some(data) = var("XDG_DATA_HOME").map(PathBuf::from)
        && data.is_absolute()
    {
        return Ok(file(data));
    }
    if let Some(home) = var("HOME") {
        return Ok(file(PathBuf::from(home).join(".local").join("share")));
    }
    if cfg!(windows)
        && let Some(local) = var("LOCALAPPDATA")
    {
        return Ok(file(PathBuf::from(local)));
    }
    Err(HistoryError::NoDataDir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn path_with(vars: &[(&str, &str)]) -> Result<PathBuf, HistoryError> {
        default_path_from(|name| {
            vars.iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| OsString::from(value))
        })
    }

    #[test]
    fn explicit_variable_wins() {
        let path = path_with(&[
            ("AGENT_HISTORY_DB", "/tmp/h.db"),
            ("XDG_DATA_HOME", "/data"),
            ("HOME", "/home/u"),
        ]);
        assert_eq!(path.unwrap(), PathBuf::from("/tmp/h.db"));
    }

    #[test]
    fn xdg_then_home() {
        assert_eq!(
            path_with(&[("XDG_DATA_HOME", "/data"), ("HOME", "/home/u")]).unwrap(),
            PathBuf::from("/data/agent/history.sqlite3")
        );
        for vars in [
            &[("HOME", "/home/u")][..],
            &[("XDG_DATA_HOME", "relative/dir"), ("HOME", "/home/u")],
            &[
                ("AGENT_HISTORY_DB", ""),
                ("XDG_DATA_HOME", ""),
                ("HOME", "/home/u"),
            ],
        ] {
            assert_eq!(
                path_with(vars).unwrap(),
                PathBuf::from("/home/u/.local/share/agent/history.sqlite3"),
                "{vars:?}"
            );
        }
    }

    #[test]
    fn nothing_set_is_a_clear_error() {
        if cfg!(windows) {
            return;
        }
        let err = path_with(&[]).unwrap_err();
        assert!(err.to_string().contains("AGENT_HISTORY_DB"), "{err}");
    }
}
