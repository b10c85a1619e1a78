//! The operator's part of `serve.toml`: the admin listener and the call history.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    time::Duration,
};

use super::{
    check::Checker,
    spec::{AdminSpec, HistorySpec},
};

/// The longest retention accepted, in days (ten years).
const MAX_RETENTION_DAYS: f64 = 3_650.0;

/// Where and for how long calls are stored.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryConfig {
    /// Store calls at all.
    pub store: bool,
    /// The database; `None`: `agent history`'s default.
    pub path: Option<PathBuf>,
    /// How long this node's claim on a call it answers lasts unless renewed; with a shared
    /// (PostgreSQL) store, another node takes over a call whose claim ran out.
    pub lease: Duration,
    /// Calls older than this are deleted.
    pub retention: Option<Duration>,
}

pub(super) fn admin_listen(c: &mut Checker<'_>, admin: Option<&AdminSpec>) -> Option<SocketAddr> {
    let admin = admin?;
    match admin.listen.get_ref().parse::<SocketAddr>() {
        Ok(addr) => Some(addr),
        Err(_) => {
            c.at(
                admin.listen.span(),
                format!(
                    "`admin.listen` = `{}` is not an address and port",
                    admin.listen.get_ref()
                ),
                Some("for example \"127.0.0.1:9090\": keep it off the public network"),
            );
            None
        }
    }
}

/// The longest node name accepted.
const MAX_NODE_BYTES: usize = 64;

/// This node's name for the metrics: `node` in serve.toml, else `AGENT_NODE_ID`, else the
/// host's name, else `local`. Only letters, digits, `.`, `_` and `-`: it goes into every
/// series.
pub(super) fn node(c: &mut Checker<'_>, node: Option<&toml::Spanned<String>>) -> String {
    let valid = |name: &str| {
        !name.is_empty()
            && name.len() <= MAX_NODE_BYTES
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    };
    if let Some(node) = node {
        if valid(node.get_ref()) {
            return node.get_ref().clone();
        }
        c.at(
            node.span(),
            format!("`node` = `{}` is not a node name", node.get_ref()),
            Some("1 to 64 letters, digits, `.`, `_` or `-`, e.g. \"voice-1\""),
        );
        return "local".into();
    }
    let from_env = std::env::var("AGENT_NODE_ID").ok().filter(|n| valid(n));
    let host = || {
        std::fs::read_to_string("/etc/hostname")
            .ok()
            .map(|h| h.trim().to_owned())
            .or_else(|| std::env::var("HOSTNAME").ok())
            .filter(|h| valid(h))
    };
    from_env.or_else(host).unwrap_or_else(|| "local".into())
}

/// How long a node's claim on a call lasts without a renewal (renewed every third of it).
pub const DEFAULT_CALL_LEASE: Duration = Duration::from_secs(10);

pub(super) fn history(c: &mut Checker<'_>, spec: &HistorySpec) -> HistoryConfig {
    let base = c.path.parent().map(PathBuf::from).unwrap_or_default();
    let retention = spec.retention_days.as_ref().and_then(|days| {
        let d = *days.get_ref();
        if d.is_finite() && d > 0.0 && d <= MAX_RETENTION_DAYS {
            return Some(Duration::from_secs_f64(d * 86_400.0));
        }
        c.at(
            days.span(),
            format!("`history.retention_days` must be above 0 and at most {MAX_RETENTION_DAYS}"),
            Some("for example retention_days = 30; remove the key to keep calls"),
        );
        None
    });
    let lease = match &spec.lease_secs {
        None => DEFAULT_CALL_LEASE,
        Some(secs) => {
            let s = *secs.get_ref();
            if s.is_finite() && (0.5..=300.0).contains(&s) {
                Duration::from_secs_f64(s)
            } else {
                c.at(
                    secs.span(),
                    "`history.lease_secs` must be between 0.5 and 300",
                    Some("the default, 10, lets another node take a call over about 10 s after its node died"),
                );
                DEFAULT_CALL_LEASE
            }
        }
    };
    HistoryConfig {
        store: spec.store,
        lease,
        // A file is relative to serve.toml's folder; a `postgres://` URL is taken as it is.
        path: spec.path.as_ref().map(|p| {
            let path = Path::new(p.get_ref());
            if agent_core::history::is_database_url(path) {
                path.to_path_buf()
            } else {
                base.join(path)
            }
        }),
        retention,
    }
}
