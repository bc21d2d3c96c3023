//! Whether an email's sender is who the From header says: the domains the
//! receiving mail system authenticated, as the provider reports them, and
//! whether the sender's domain is one of them. Nothing is checked against
//! DNS here; Panorama trusts the report of the system that received the
//! message (SendGrid's `SPF` and `dkim` fields, Mailgun's `X-Mailgun-Spf`,
//! the `Authentication-Results` header of a receiving MTA the operator
//! named by its authserv-id).

use mail_parser::Message;

/// The domains a message's receiving system authenticated: the envelope
/// sender's domain when SPF passed, each signing domain whose DKIM
/// signature passed, the From domain when DMARC passed. Lower case.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Authenticated {
    domains: Vec<String>,
}

impl Authenticated {
    /// Adds the domain of `address_or_domain` (`anna@example.com` or
    /// `example.com`), if it has one.
    pub fn add(&mut self, address_or_domain: &str) {
        let domain = address_or_domain
            .trim()
            .trim_matches(['<', '>', '"'])
            .rsplit('@')
            .next()
            .unwrap_or_default()
            .trim_end_matches('.')
            .to_ascii_lowercase();
        if domain.contains('.') && !self.domains.contains(&domain) {
            self.domains.push(domain);
        }
    }

    /// The domains, in the order reported.
    pub fn domains(&self) -> &[String] {
        &self.domains
    }

    /// Whether `address`'s domain is aligned with an authenticated one:
    /// the same domain, or one within the other (`mail.example.com` and
    /// `example.com`), as DMARC's relaxed alignment has it.
    pub fn vouches_for(&self, address: &str) -> bool {
        let Some((_, domain)) = address.trim().rsplit_once('@') else {
            return false;
        };
        let domain = domain.trim_end_matches('.').to_ascii_lowercase();
        self.domains.iter().any(|authenticated| {
            domain == *authenticated
                || domain.ends_with(&format!(".{authenticated}"))
                || authenticated.ends_with(&format!(".{domain}"))
        })
    }

    /// SendGrid Inbound Parse's report: `SPF` (`pass`, `softfail`, ...)
    /// for the envelope sender `envelope_from`, and `dkim`
    /// (`{@example.com : pass, @other.example : fail}`).
    pub fn sendgrid(spf: Option<&str>, envelope_from: Option<&str>, dkim: Option<&str>) -> Self {
        let mut authenticated = Authenticated::default();
        if let (Some(spf), Some(from)) = (spf, envelope_from)
            && spf.trim().eq_ignore_ascii_case("pass")
        {
            authenticated.add(from);
        }
        for entry in dkim
            .unwrap_or_default()
            .trim()
            .trim_start_matches('{')
            .trim_end_matches('}')
            .split(',')
        {
            if let Some((domain, result)) = entry.split_once(':')
                && result.trim().eq_ignore_ascii_case("pass")
            {
                authenticated.add(domain.trim().trim_start_matches('@'));
            }
        }
        authenticated
    }

    /// Mailgun's report: every `X-Mailgun-Spf` header it lists says `Pass`
    /// (a sender could add one of its own; Mailgun's then disagrees) for
    /// the envelope sender `sender`. Mailgun's DKIM result names no
    /// domain, so it cannot vouch for a sender.
    pub fn mailgun<'a>(
        spf_headers: impl IntoIterator<Item = &'a str>,
        sender: Option<&str>,
    ) -> Self {
        let mut authenticated = Authenticated::default();
        let mut results = spf_headers.into_iter().peekable();
        let passed = results.peek().is_some()
            && results.all(|result| result.trim().eq_ignore_ascii_case("pass"));
        if let (true, Some(sender)) = (passed, sender) {
            authenticated.add(sender);
        }
        authenticated
    }

    /// The topmost `Authentication-Results` header of `message` (RFC
    /// 8601) whose authserv-id is one of `authserv_ids`: the one the
    /// receiving MTA prepended. Anyone can write such a header into a
    /// message, so only those of a mail server named by the operator
    /// count (RFC 8601 section 5: that server removes headers bearing its
    /// own id from incoming mail); with no names, none does. `spf=pass`
    /// vouches for `smtp.mailfrom`, `dkim=pass` for `header.d` (or
    /// `header.i`), `dmarc=pass` for `header.from`.
    pub fn from_headers(message: &Message<'_>, authserv_ids: &[String]) -> Self {
        let mut authenticated = Authenticated::default();
        let Some(value) = message
            .headers_raw()
            .filter(|(name, _)| name.eq_ignore_ascii_case("Authentication-Results"))
            .map(|(_, value)| without_comments(value))
            .find(|value| {
                authserv_ids
                    .iter()
                    .any(|trusted| authserv_id(value).eq_ignore_ascii_case(trusted.trim()))
            })
        else {
            return authenticated;
        };
        // The first part is the authserv-id; each later one a result.
        for result in value.split(';').skip(1) {
            let mut words = result.split_whitespace();
            let Some((method, outcome)) = words.next().and_then(|w| w.split_once('=')) else {
                continue;
            };
            if !outcome.eq_ignore_ascii_case("pass") {
                continue;
            }
            let method = method.split('/').next().unwrap_or_default();
            let wanted: &[&str] = match method.to_ascii_lowercase().as_str() {
                "spf" => &["smtp.mailfrom", "smtp.mail"],
                "dkim" => &["header.d", "header.i"],
                "dmarc" => &["header.from"],
                _ => continue,
            };
            let properties: Vec<(&str, &str)> = words.filter_map(|w| w.split_once('=')).collect();
            if let Some((_, domain)) = wanted.iter().find_map(|name| {
                properties
                    .iter()
                    .find(|(property, _)| property.eq_ignore_ascii_case(name))
            }) {
                authenticated.add(domain);
            }
        }
        authenticated
    }
}

/// The authserv-id of an `Authentication-Results` value (comments
/// removed): its first word, before any version number and the first `;`.
fn authserv_id(value: &str) -> &str {
    value
        .split(';')
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .next()
        .unwrap_or_default()
}

/// `value` without its RFC 5322 comments (parenthesised, possibly nested).
fn without_comments(value: &str) -> String {
    let mut depth = 0usize;
    let mut kept = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            _ if depth == 0 => kept.push(if c == '\r' || c == '\n' { ' ' } else { c }),
            _ => {}
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use mail_parser::MessageParser;

    use super::*;

    #[test]
    fn alignment_is_relaxed_but_never_to_a_bare_suffix() {
        let mut authenticated = Authenticated::default();
        authenticated.add("bounces@mail.example.com");
        assert!(authenticated.vouches_for("anna@example.com"));
        assert!(authenticated.vouches_for("anna@Mail.Example.com"));
        assert!(!authenticated.vouches_for("anna@example.org"));
        assert!(!authenticated.vouches_for("anna@notexample.com"));
        authenticated.add("com");
        assert_eq!(authenticated.domains(), &["mail.example.com".to_owned()]);
        assert!(!authenticated.vouches_for("no-at-sign"));
    }

    #[test]
    fn sendgrid_fields_vouch_for_spf_and_dkim_domains() {
        let report = Authenticated::sendgrid(
            Some("pass"),
            Some("anna@example.com"),
            Some("{@example.org : pass, @evil.example : fail}"),
        );
        assert_eq!(report.domains(), &["example.com", "example.org"]);
        let failed = Authenticated::sendgrid(Some("softfail"), Some("a@x.example"), None);
        assert!(failed.domains().is_empty());
    }

    #[test]
    fn mailgun_needs_every_spf_header_to_pass() {
        let sender = Some("anna@example.com");
        assert!(Authenticated::mailgun(["Pass"], sender).vouches_for("anna@example.com"));
        assert!(
            Authenticated::mailgun(["Pass", "Fail"], sender)
                .domains()
                .is_empty()
        );
        assert!(Authenticated::mailgun([], sender).domains().is_empty());
        assert!(Authenticated::mailgun(["Pass"], None).domains().is_empty());
    }

    #[test]
    fn the_topmost_authentication_results_header_of_a_trusted_server_counts() {
        let raw = b"Authentication-Results: forged.example; spf=pass smtp.mailfrom=ceo@bank.example\r\nAuthentication-Results: MX.example.net 1;\r\n spf=softfail (domain of anna@gmail.com does not designate) smtp.mailfrom=anna@gmail.com;\r\n dkim=pass header.i=@gmail.com;\r\n dmarc=pass (p=NONE) header.from=gmail.com\r\nAuthentication-Results: mx.example.net; spf=pass smtp.mailfrom=older@bank.example\r\nFrom: anna@gmail.com\r\nSubject: hi\r\n\r\nbody";
        let message = MessageParser::default().parse(&raw[..]).expect("message");
        let trusted = ["mx.example.net".to_owned()];
        let authenticated = Authenticated::from_headers(&message, &trusted);
        assert_eq!(authenticated.domains(), &["gmail.com"]);
        assert!(!authenticated.vouches_for("ceo@bank.example"));
        assert!(!authenticated.vouches_for("older@bank.example"));
        // Without a trusted server, no header vouches for anything.
        assert!(
            Authenticated::from_headers(&message, &[])
                .domains()
                .is_empty()
        );
        let other = ["mx.other.example".to_owned()];
        assert!(
            Authenticated::from_headers(&message, &other)
                .domains()
                .is_empty()
        );
        let none = MessageParser::default()
            .parse(&b"From: a@b.example\r\n\r\nx"[..])
            .expect("message");
        assert!(
            Authenticated::from_headers(&none, &trusted)
                .domains()
                .is_empty()
        );
    }

    #[test]
    fn the_authserv_id_is_the_first_word_before_the_first_semicolon() {
        assert_eq!(authserv_id(" mx.example.net 1; spf=pass"), "mx.example.net");
        assert_eq!(authserv_id("mx.example.net;"), "mx.example.net");
        assert_eq!(
            authserv_id("\r\n\tmx.example.net\r\n ; none"),
            "mx.example.net"
        );
        assert_eq!(authserv_id(""), "");
        assert_eq!(authserv_id("; spf=pass"), "");
    }
}
