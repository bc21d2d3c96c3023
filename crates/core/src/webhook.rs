//! Outbound webhooks' domain (README "Outbound webhooks"): the change types
//! a subscription may ask for, the patterns it asks with, and the URLs it
//! may be delivered to. Parsed once when an admin registers a subscription,
//! so the dispatcher and the sender only ever see valid ones.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Every change type of the change feed (`panorama.customer-changes.v1`),
/// the closed set a subscription's `types` are checked against.
pub const CHANGE_TYPES: &[&str] = &[
    "customer.created",
    "customer.updated",
    "customer.merged",
    "customer.unmerged",
    "customer.erased",
    "identifier.added",
    "case.opened",
    "case.resolved",
    "case.reopened",
    "task.created",
    "task.completed",
    "task.rescheduled",
    "conflict.opened",
    "conflict.resolved",
];

/// Longest URL a subscription may have.
pub const MAX_WEBHOOK_URL: usize = 2_048;

/// What a subscription asks for: one change type (`case.opened`), every type
/// of a family (`case.*`), or everything (`*`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ChangeTypePattern(String);

impl ChangeTypePattern {
    /// Parses `text`, refusing types and families the change feed does not
    /// have, so a typo is an error now instead of silence later.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text == "*" {
            return Ok(ChangeTypePattern(text.to_owned()));
        }
        if let Some(family) = text.strip_suffix(".*") {
            let known = CHANGE_TYPES
                .iter()
                .any(|known| known.split('.').next() == Some(family));
            return if known {
                Ok(ChangeTypePattern(text.to_owned()))
            } else {
                Err(format!(
                    "no change type starts with \"{family}.\"; families: {}",
                    families().join(", ")
                ))
            };
        }
        if CHANGE_TYPES.contains(&text) {
            return Ok(ChangeTypePattern(text.to_owned()));
        }
        Err(format!(
            "unknown change type {text:?}: one of {}, a family such as \"case.*\", or \"*\"",
            CHANGE_TYPES.join(", ")
        ))
    }

    /// Whether a change of `change_type` is asked for.
    pub fn matches(&self, change_type: &str) -> bool {
        let pattern = self.0.as_str();
        if pattern == "*" {
            return true;
        }
        match pattern.strip_suffix('*') {
            Some(prefix) => change_type.starts_with(prefix),
            None => change_type == pattern,
        }
    }

    /// The pattern as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ChangeTypePattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The families of [`CHANGE_TYPES`], in order.
fn families() -> Vec<&'static str> {
    let mut families: Vec<&str> = Vec::new();
    for known in CHANGE_TYPES {
        let family = known.split('.').next().unwrap_or(known);
        if !families.contains(&family) {
            families.push(family);
        }
    }
    families
}

/// Whether any of `patterns` asks for `change_type`.
pub fn any_matches(patterns: &[String], change_type: &str) -> bool {
    patterns
        .iter()
        .any(|pattern| ChangeTypePattern(pattern.clone()).matches(change_type))
}

/// A URL deliveries may be posted to: `http` or `https`, a host, no
/// credentials (they would be stored and shown in clear; the signature is
/// the receiver's proof), and, unless private addresses are allowed, no
/// loopback, private or link-local address literal or `localhost`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookUrl(String);

impl WebhookUrl {
    /// Parses `text`; `allow_private` lets it name loopback, private and
    /// link-local addresses. Names are checked again, resolved, when a
    /// delivery is sent.
    pub fn parse(text: &str, allow_private: bool) -> Result<Self, String> {
        if text.len() > MAX_WEBHOOK_URL {
            return Err(format!("longer than {MAX_WEBHOOK_URL} characters"));
        }
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("contains whitespace or control characters".into());
        }
        let (scheme, rest) = text
            .split_once("://")
            .ok_or_else(|| "not an absolute URL: http:// or https:// expected".to_owned())?;
        if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
            return Err(format!("scheme {scheme:?} is not allowed: http or https"));
        }
        let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
        if authority.contains('@') {
            return Err(
                "credentials in the URL are not allowed: receivers check the signature".into(),
            );
        }
        let host = host_of(authority)?;
        if !allow_private && is_private_host(&host) {
            return Err(format!(
                "{host} is a loopback, private or link-local address, which deliveries may \
                 not reach (PANORAMA_WEBHOOK_ALLOW_PRIVATE_ADDRESSES)"
            ));
        }
        Ok(WebhookUrl(text.to_owned()))
    }

    /// The URL as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The host of `authority` (`host`, `host:port`, `[v6]:port`), lower-cased,
/// without brackets.
fn host_of(authority: &str) -> Result<String, String> {
    let (host, port) = if let Some(rest) = authority.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| "an IPv6 address without its closing ]".to_owned())?;
        if host.parse::<Ipv6Addr>().is_err() {
            return Err(format!("{host:?} is not an IPv6 address"));
        }
        let port = match after {
            "" => None,
            after => Some(
                after
                    .strip_prefix(':')
                    .ok_or_else(|| "junk after the IPv6 address".to_owned())?,
            ),
        };
        (host, port)
    } else {
        match authority.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    if let Some(port) = port {
        if port.parse::<u16>().map_or(true, |port| port == 0) {
            return Err(format!("port {port:?} is not a port number"));
        }
    }
    if host.is_empty() {
        return Err("no host".into());
    }
    let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':');
    if !host.chars().all(valid) {
        return Err(format!("{host:?} is not a host name"));
    }
    Ok(host.to_ascii_lowercase())
}

/// Whether `host` (a name or an address literal) is loopback, private or
/// link-local.
fn is_private_host(host: &str) -> bool {
    if let Ok(address) = host.parse::<IpAddr>() {
        return is_private_address(address);
    }
    let name = host.trim_end_matches('.');
    name == "localhost" || name.ends_with(".localhost")
}

/// Whether `address` is one outbound webhooks must not reach unless private
/// addresses are allowed: unspecified, loopback, private (RFC 1918, unique
/// local), shared (CGNAT), link-local (cloud metadata services live there),
/// or an IPv4 address inside IPv6.
pub fn is_private_address(address: IpAddr) -> bool {
    match address {
        IpAddr::V4(v4) => is_private_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_private_v4(v4);
            }
            let first = v6.segments()[0];
            v6.is_unspecified()
                || v6.is_loopback()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
        }
    }
}

fn is_private_v4(v4: Ipv4Addr) -> bool {
    let [a, b, ..] = v4.octets();
    v4.is_unspecified()
        || v4.is_loopback()
        || v4.is_private()
        || v4.is_link_local()
        || v4.is_broadcast()
        || (a == 100 && (64..128).contains(&b))
        || a == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_are_types_families_or_everything() {
        let star = ChangeTypePattern::parse("*").expect("star");
        assert!(star.matches("customer.merged"));
        let cases = ChangeTypePattern::parse("case.*").expect("family");
        assert!(cases.matches("case.opened"));
        assert!(!cases.matches("customer.created"));
        let merged = ChangeTypePattern::parse("customer.merged").expect("type");
        assert!(merged.matches("customer.merged"));
        assert!(!merged.matches("customer.unmerged"));
        for refused in ["customer", "custom.*", "case.closed", "", "**", "case.*.x"] {
            assert!(ChangeTypePattern::parse(refused).is_err(), "{refused}");
        }
        assert!(any_matches(&["case.*".into()], "case.reopened"));
    }

    #[test]
    fn urls_are_http_without_credentials() {
        for good in [
            "https://hooks.example.com/panorama",
            "http://example.com:8080/x?y=1",
            "HTTPS://example.com",
            "https://[2001:db8::1]:443/x",
        ] {
            assert!(WebhookUrl::parse(good, false).is_ok(), "{good}");
        }
        for bad in [
            "ftp://example.com/",
            "example.com/hook",
            "https://user:pass@example.com/",
            "https://@example.com/",
            "https:///path",
            "https://exa mple.com/",
            "https://example.com:99999/",
            "https://example.com:0/",
            "https://[::1/",
        ] {
            assert!(WebhookUrl::parse(bad, true).is_err(), "{bad}");
        }
    }

    #[test]
    fn private_addresses_need_allowing() {
        for private in [
            "http://127.0.0.1:9000/",
            "http://localhost/",
            "http://LOCALHOST./",
            "http://10.1.2.3/",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[fd00::1]/",
            "http://100.64.0.1/",
            "http://0.0.0.0/",
        ] {
            assert!(WebhookUrl::parse(private, false).is_err(), "{private}");
            assert!(WebhookUrl::parse(private, true).is_ok(), "{private}");
        }
        assert!(!is_private_address("93.184.216.34".parse().expect("ip")));
        assert!(!is_private_address("2606:2800::1".parse().expect("ip")));
    }
}
