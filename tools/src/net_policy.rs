//! Which hosts and addresses `http_get` may reach: the agent's allowlist, and the address
//! ranges that are never reached through a wildcard (SSRF protection).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An agent's allowlist of hosts, from `[tool_config.http_get] allow_hosts`.
///
/// Entries are exact host names (`api.example.com`), wildcards for subdomains
/// (`*.example.com`, which does not match `example.com` itself), IP addresses (`127.0.0.1`,
/// `::1`), or `*` for any host. Matching ignores case and a trailing dot; ports are not
/// restricted.
///
/// Loopback, private, link-local, unspecified, multicast and other special addresses (see
/// [`is_special_address`]) are reachable only through an entry that names the host or the
/// address exactly: a wildcard never reaches them, whatever DNS says.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostAllowlist {
    entries: Vec<Entry>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    Any,
    Exact(String),
    Subdomains(String),
    Ip(IpAddr),
}

/// How a host matched the allowlist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Match {
    /// The entry names this host or address: special addresses are allowed.
    Named,
    /// A wildcard matched: only public addresses are allowed.
    Wildcard,
}

fn normalize_host(host: &str) -> String {
    host.trim()
        .trim_end_matches('.')
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase()
}

impl HostAllowlist {
    /// Parses the entries; an entry that is not a host name, wildcard or address is an error
    /// naming it.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<Self, String> {
        let mut parsed = Vec::new();
        for entry in entries {
            let raw = entry.as_ref();
            let text = normalize_host(raw);
            let entry = if text == "*" {
                Entry::Any
            } else if let Ok(ip) = text.parse::<IpAddr>() {
                Entry::Ip(ip)
            } else if let Some(domain) = text.strip_prefix("*.") {
                check_domain(raw, domain)?;
                Entry::Subdomains(domain.to_owned())
            } else {
                check_domain(raw, &text)?;
                Entry::Exact(text)
            };
            parsed.push(entry);
        }
        Ok(HostAllowlist { entries: parsed })
    }

    /// Whether nothing is allowed.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// How `host` (a name or an address) matches, if it does; an exact match wins.
    pub fn matches(&self, host: &str) -> Option<Match> {
        let host = normalize_host(host);
        let ip = host.parse::<IpAddr>().ok();
        let mut best = None;
        for entry in &self.entries {
            let found = match entry {
                Entry::Any => Some(Match::Wildcard),
                Entry::Exact(name) => (*name == host).then_some(Match::Named),
                Entry::Ip(allowed) => (Some(*allowed) == ip).then_some(Match::Named),
                Entry::Subdomains(domain) => (ip.is_none()
                    && host.len() > domain.len()
                    && host.ends_with(domain.as_str())
                    && host.as_bytes()[host.len() - domain.len() - 1] == b'.')
                    .then_some(Match::Wildcard),
            };
            match found {
                Some(Match::Named) => return Some(Match::Named),
                Some(Match::Wildcard) => best = Some(Match::Wildcard),
                None => {}
            }
        }
        best
    }
}

fn check_domain(raw: &str, domain: &str) -> Result<(), String> {
    let valid = !domain.is_empty()
        && domain.len() <= 253
        && domain.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    if valid {
        Ok(())
    } else {
        Err(format!(
            "`{raw}` is not a host name, `*.domain` wildcard, IP address or `*`"
        ))
    }
}

/// Whether `ip` is outside the public internet: loopback, private (RFC 1918, unique local),
/// link-local (including cloud metadata at 169.254.169.254), shared/CGNAT, unspecified,
/// broadcast, multicast, documentation, benchmarking and reserved ranges, and IPv6 forms that
/// embed such an IPv4 address (mapped, compatible, NAT64, 6to4) or tunnel to one (Teredo).
pub fn is_special_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_special_v4(v4),
        IpAddr::V6(v6) => is_special_v6(v6),
    }
}

fn is_special_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0 // "this network"
        || (a == 100 && (64..128).contains(&b)) // shared address space (CGNAT)
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments
        || (a == 198 && (b == 18 || b == 19)) // benchmarking
        || a >= 240 // reserved
}

fn is_special_v6(ip: Ipv6Addr) -> bool {
    let segments = ip.segments();
    if let Some(v4) = ip.to_ipv4_mapped() {
        return is_special_v4(v4);
    }
    let embedded_low = Ipv4Addr::new(
        (segments[6] >> 8) as u8,
        segments[6] as u8,
        (segments[7] >> 8) as u8,
        segments[7] as u8,
    );
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (segments[0] & 0xfe00) == 0xfc00 // unique local
        || (segments[0] & 0xffc0) == 0xfe80 // link-local
        || (segments[0] & 0xffc0) == 0xfec0 // site-local (deprecated)
        || (segments[0] == 0x2001 && segments[1] == 0x0db8) // documentation
        || (segments[0] == 0x2001 && segments[1] == 0) // Teredo
        || (segments[0] == 0x0100 && segments[1..4] == [0, 0, 0]) // discard
        || (segments[..6] == [0, 0, 0, 0, 0, 0]) // IPv4-compatible (deprecated)
        || (segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] && is_special_v4(embedded_low)) // NAT64
        || (segments[0] == 0x2002
            && is_special_v4(Ipv4Addr::new(
                (segments[1] >> 8) as u8,
                segments[1] as u8,
                (segments[2] >> 8) as u8,
                segments[2] as u8,
            ))) // 6to4
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn special_addresses() {
        for special in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "255.255.255.255",
            "224.0.0.1",
            "100.64.0.1",
            "198.18.0.1",
            "240.0.0.1",
            "192.0.2.1",
            "::1",
            "::",
            "fc00::1",
            "fd12::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "64:ff9b::a00:1",
            "2002:7f00:1::",
            "2001:db8::1",
            "2001:0:1::1",
            "::127.0.0.1",
        ] {
            assert!(is_special_address(special.parse().unwrap()), "{special}");
        }
        for public in [
            "93.184.216.34",
            "8.8.8.8",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            assert!(!is_special_address(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn allowlist_matching() {
        let list =
            HostAllowlist::parse(&["API.example.com.", "*.weather.gov", "127.0.0.1", "[::1]"])
                .unwrap();
        assert_eq!(list.matches("api.example.com"), Some(Match::Named));
        assert_eq!(list.matches("API.EXAMPLE.COM."), Some(Match::Named));
        assert_eq!(list.matches("evil-api.example.com"), None);
        assert_eq!(list.matches("forecast.weather.gov"), Some(Match::Wildcard));
        assert_eq!(list.matches("weather.gov"), None);
        assert_eq!(list.matches("notweather.gov"), None);
        assert_eq!(list.matches("127.0.0.1"), Some(Match::Named));
        assert_eq!(list.matches("[::1]"), Some(Match::Named));
        assert_eq!(list.matches("127.0.0.2"), None);
        let any = HostAllowlist::parse(&["*"]).unwrap();
        assert_eq!(any.matches("anything.io"), Some(Match::Wildcard));
        assert!(
            HostAllowlist::parse(&["http://x.com"])
                .unwrap_err()
                .contains("http://x.com")
        );
        assert!(HostAllowlist::parse::<&str>(&[]).unwrap().is_empty());
    }
}
