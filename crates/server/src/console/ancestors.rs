//! Who may show the console inside a frame: the sources of its
//! `Content-Security-Policy: frame-ancestors` directive, which are also the
//! only origins whose `postMessage` screen pops the page listens to.

use std::fmt;

/// The origins that may frame the console (`'self'`, `https://host[:port]`,
/// `https://*.host`); none by default. Parsed once at start, so a typo
/// stops the process instead of silently refusing every desktop.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FrameAncestors {
    /// Normalised sources, no duplicates; empty means `'none'`.
    sources: Vec<String>,
}

/// The largest port number.
const MAX_PORT: u32 = 65_535;

impl FrameAncestors {
    /// Reads a list of sources separated by commas or spaces. Each is
    /// `'self'` or an origin `scheme://host[:port]` (scheme `https` or
    /// `http`, a trailing `/` tolerated), whose host may start with `*.` to
    /// cover its subdomains; `'none'` (alone) or an empty list is the
    /// default. The keywords may be written without their quotes, as shells
    /// tend to strip them. The error names the source at fault.
    pub fn parse(text: &str) -> Result<Self, String> {
        let items: Vec<&str> = text
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|item| !item.is_empty())
            .collect();
        let mut sources: Vec<String> = Vec::new();
        for item in &items {
            let source = match item.to_ascii_lowercase().as_str() {
                "'none'" | "none" if items.len() == 1 => return Ok(FrameAncestors::default()),
                "'none'" | "none" => {
                    return Err("'none' cannot be combined with other sources".into());
                }
                "'self'" | "self" => "'self'".to_owned(),
                _ => parse_origin(item)?,
            };
            if !sources.contains(&source) {
                sources.push(source);
            }
        }
        Ok(FrameAncestors { sources })
    }

    /// Whether no page may frame the console (the default).
    pub fn is_none(&self) -> bool {
        self.sources.is_empty()
    }

    /// Whether only the console's own origin may frame it.
    pub(crate) fn is_self_only(&self) -> bool {
        self.sources == ["'self'"]
    }
}

impl fmt::Display for FrameAncestors {
    /// As the `frame-ancestors` directive lists them: space-separated, or
    /// `'none'`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.sources.is_empty() {
            return f.write_str("'none'");
        }
        f.write_str(&self.sources.join(" "))
    }
}

/// `item` as a normalised origin: lower case, without a default port.
fn parse_origin(item: &str) -> Result<String, String> {
    let refuse = |why: &str| {
        Err(format!(
            "{item:?}: {why}; expected 'self' or an origin such as \
             https://desk.example.com or https://*.my.salesforce.com"
        ))
    };
    let Some((scheme, rest)) = item.split_once("://") else {
        return refuse("not an origin (scheme://host[:port])");
    };
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => 443,
        "http" => 80,
        _ => return refuse("the scheme must be https or http"),
    };
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    if rest.contains(['/', '?', '#', '@', '[', ']']) {
        return refuse("an origin has no path, query, user or IPv6 address");
    }
    let (host, port) = match rest.rsplit_once(':') {
        Some((host, port)) => {
            let number = port
                .parse::<u32>()
                .ok()
                .filter(|number| (1..=MAX_PORT).contains(number) && !port.starts_with('+'));
            match number {
                Some(number) => (host, Some(number)),
                None => return refuse("the port must be a number from 1 to 65535"),
            }
        }
        None => (rest, None),
    };
    let host = host.to_ascii_lowercase();
    let (wildcard, name) = match host.strip_prefix("*.") {
        Some(name) => (true, name),
        None => (false, host.as_str()),
    };
    if name.len() > 253 || !name.split('.').all(valid_label) {
        return refuse("not a host name (letters, digits, '-' and '.'; '*.' only in front)");
    }
    if wildcard && name.split('.').count() < 2 {
        return refuse("a wildcard must leave at least two labels, as in *.example.com");
    }
    let port = port
        .filter(|port| *port != default_port)
        .map_or_else(String::new, |port| format!(":{port}"));
    Ok(format!("{scheme}://{host}{port}"))
}

/// One label of a host name.
fn valid_label(label: &str) -> bool {
    (1..=63).contains(&label.len())
        && label
            .bytes()
            .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-')
        && !label.starts_with('-')
        && !label.ends_with('-')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(text: &str) -> String {
        FrameAncestors::parse(text)
            .unwrap_or_else(|error| panic!("{text}: {error}"))
            .to_string()
    }

    #[test]
    fn the_default_and_none_frame_nothing() {
        assert!(FrameAncestors::default().is_none());
        assert_eq!(FrameAncestors::default().to_string(), "'none'");
        for text in ["", " , ", "'none'", "none", "'NONE'"] {
            assert_eq!(parsed(text), "'none'", "{text:?}");
            assert!(FrameAncestors::parse(text).expect("valid").is_none());
        }
    }

    #[test]
    fn origins_are_normalised() {
        assert_eq!(
            parsed(
                "'self', HTTPS://Desk.Example.com:443/ https://*.my.salesforce.com,\
                 http://127.0.0.1:8081 http://localhost:80 self"
            ),
            "'self' https://desk.example.com https://*.my.salesforce.com \
             http://127.0.0.1:8081 http://localhost"
        );
        assert_eq!(
            parsed("https://a.example https://a.example:443"),
            "https://a.example"
        );
        assert!(FrameAncestors::parse("self").expect("valid").is_self_only());
        assert!(
            !FrameAncestors::parse("'self' https://a.example")
                .expect("valid")
                .is_self_only()
        );
    }

    #[test]
    fn anything_but_self_and_origins_is_refused_by_name() {
        for (text, names) in [
            ("*", "\"*\""),
            ("https://*", "\"https://*\""),
            ("https://*.com", "\"https://*.com\""),
            ("https://a.*.example", "\"https://a.*.example\""),
            ("desk.example.com", "\"desk.example.com\""),
            ("https:", "\"https:\""),
            ("ftp://desk.example.com", "\"ftp://desk.example.com\""),
            ("javascript://x", "\"javascript://x\""),
            (
                "https://desk.example.com/app",
                "\"https://desk.example.com/app\"",
            ),
            (
                "https://desk.example.com?x=1",
                "\"https://desk.example.com?x=1\"",
            ),
            (
                "https://user@desk.example.com",
                "\"https://user@desk.example.com\"",
            ),
            (
                "https://desk.example.com:0",
                "\"https://desk.example.com:0\"",
            ),
            (
                "https://desk.example.com:70000",
                "\"https://desk.example.com:70000\"",
            ),
            (
                "https://desk.example.com:*",
                "\"https://desk.example.com:*\"",
            ),
            ("https://desk_example.com", "\"https://desk_example.com\""),
            ("https://-desk.example.com", "\"https://-desk.example.com\""),
            ("https://", "\"https://\""),
            ("https://[::1]:8080", "\"https://[::1]:8080\""),
            ("'unsafe-inline'", "\"'unsafe-inline'\""),
            (
                "https://a.example;script-src",
                "\"https://a.example;script-src\"",
            ),
            ("https://a.example\"", "\"https://a.example\\\"\""),
        ] {
            let error = FrameAncestors::parse(&format!("'self' {text}")).expect_err(text);
            assert!(error.contains(names), "{text}: {error}");
        }
        let error = FrameAncestors::parse("'none' https://a.example").expect_err("mixed");
        assert!(error.contains("'none'"), "{error}");
    }
}
