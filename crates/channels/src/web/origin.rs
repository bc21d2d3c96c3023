//! Which browser origins may post with the public write key.

/// Whether a browser request from `origin` (its `Origin` header) may post:
/// an exact scheme, host and port match with an entry of `allowed` (default
/// ports and a trailing slash in the configuration do not matter, case does
/// not either), or any origin when `allowed` holds `"*"`. Without an
/// `Origin`, or with the opaque origin `null`, only `"*"` allows.
pub fn origin_allowed(origin: Option<&str>, allowed: &[String]) -> bool {
    if allowed.iter().any(|entry| entry.trim() == "*") {
        return true;
    }
    let Some(origin) = origin.and_then(normalised_origin) else {
        return false;
    };
    allowed
        .iter()
        .filter_map(|entry| normalised_origin(entry.trim().trim_end_matches('/')))
        .any(|entry| entry == origin)
}

/// `scheme://host:port` lower-cased with the port made explicit; `None` for
/// anything that is not an http(s) origin (paths, user info, `null`).
fn normalised_origin(raw: &str) -> Option<String> {
    let (scheme, authority) = raw.trim().split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => 443,
        "http" => 80,
        _ => return None,
    };
    if authority.is_empty()
        || authority.contains(['/', '?', '#', '@'])
        || authority.chars().any(char::is_whitespace)
    {
        return None;
    }
    let authority = authority.to_ascii_lowercase();
    let (host, port) = match authority
        .rfind(':')
        .filter(|&colon| !authority[colon..].contains(']'))
    {
        Some(colon) => (
            &authority[..colon],
            authority[colon + 1..].parse::<u16>().ok()?,
        ),
        None => (authority.as_str(), default_port),
    };
    (!host.is_empty()).then(|| format!("{scheme}://{host}:{port}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn allowed(entries: &[&str]) -> Vec<String> {
        entries.iter().map(|e| (*e).to_owned()).collect()
    }

    #[test]
    fn origins_match_exactly_by_scheme_host_and_port() {
        let list = allowed(&[
            "https://shop.example",
            "http://localhost:3000/",
            "https://Help.Example:443",
        ]);
        for origin in [
            "https://shop.example",
            "https://shop.example:443",
            "HTTPS://SHOP.EXAMPLE",
            "http://localhost:3000",
            "https://help.example",
        ] {
            assert!(origin_allowed(Some(origin), &list), "{origin}");
        }
        for origin in [
            "http://shop.example",
            "https://shop.example:8443",
            "https://evil.shop.example",
            "https://shop.example.evil",
            "https://shop.example/path",
            "https://user@shop.example",
            "http://localhost:3001",
            "null",
            "",
            "shop.example",
        ] {
            assert!(!origin_allowed(Some(origin), &list), "{origin}");
        }
        assert!(!origin_allowed(None, &list));
        assert!(!origin_allowed(Some("https://shop.example"), &[]));
        assert!(origin_allowed(
            Some("https://anything.example"),
            &allowed(&["*"])
        ));
        assert!(origin_allowed(
            None,
            &allowed(&["https://shop.example", "*"])
        ));
    }
}
