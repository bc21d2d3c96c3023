//! The TLS parameters of a database URL, taken out of it so that
//! tokio-postgres, which refuses them, reads the rest: the URL form's query
//! and the `key=value` form, each read as tokio-postgres reads it.

use std::borrow::Cow;

use percent_encoding::percent_decode_str;

use super::SslMode;

/// The parameters read here; tokio-postgres never sees them.
const TLS_KEYS: [&str; 4] = ["sslmode", "sslrootcert", "sslcert", "sslkey"];

/// The TLS parameters of a database URL, as written (the last of a repeated
/// one wins, an empty one counts as unset, as in libpq).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct TlsParams {
    pub(super) mode: Option<SslMode>,
    pub(super) root_cert: Option<String>,
    pub(super) cert: Option<String>,
    pub(super) key: Option<String>,
}

impl TlsParams {
    fn set(&mut self, key: &str, value: String) -> Result<(), String> {
        let value = Some(value).filter(|value| !value.is_empty());
        match key {
            "sslmode" => {
                self.mode = value
                    .map(|text| {
                        SslMode::parse(&text).ok_or_else(|| {
                            let known: Vec<&str> =
                                SslMode::ALL.iter().map(|mode| mode.as_str()).collect();
                            format!("sslmode {text:?} is not one of {}", known.join(", "))
                        })
                    })
                    .transpose()?;
            }
            "sslrootcert" => self.root_cert = value,
            "sslcert" => self.cert = value,
            "sslkey" => self.key = value,
            _ => {}
        }
        Ok(())
    }
}

/// `url` without its TLS parameters, and those parameters.
pub(super) fn split(url: &str) -> Result<(String, TlsParams), String> {
    let body = ["postgres://", "postgresql://"]
        .iter()
        .find(|prefix| url.starts_with(*prefix))
        .map(|prefix| prefix.len());
    match body {
        Some(body) => split_url(url, body),
        None => split_conninfo(url),
    }
}

/// The URL form. The query starts where tokio-postgres's parser starts it:
/// at the first `?` after the credentials (which end at the first `@`).
fn split_url(url: &str, body: usize) -> Result<(String, TlsParams), String> {
    let after_credentials = url[body..].find('@').map_or(body, |at| body + at + 1);
    let Some(question) = url[after_credentials..]
        .find('?')
        .map(|at| after_credentials + at)
    else {
        return Ok((url.to_owned(), TlsParams::default()));
    };
    let mut params = TlsParams::default();
    let mut kept = Vec::new();
    for pair in url[question + 1..]
        .split('&')
        .filter(|pair| !pair.is_empty())
    {
        let ours = pair.split_once('=').and_then(|(key, value)| {
            let key = decode(key).ok()?;
            TLS_KEYS.contains(&key.as_ref()).then_some((key, value))
        });
        match ours {
            Some((key, value)) => {
                let value = decode(value).map_err(|_| format!("{key} is not UTF-8"))?;
                params.set(&key, value.into_owned())?;
            }
            None => kept.push(pair),
        }
    }
    let mut rest = url[..question].to_owned();
    if !kept.is_empty() {
        rest.push('?');
        rest.push_str(&kept.join("&"));
    }
    Ok((rest, params))
}

/// Percent-decodes a URL component.
fn decode(text: &str) -> Result<Cow<'_, str>, std::str::Utf8Error> {
    percent_decode_str(text).decode_utf8()
}

/// The `key=value` form. A string that does not read as one is passed on
/// untouched, for tokio-postgres to say what is wrong with it.
fn split_conninfo(text: &str) -> Result<(String, TlsParams), String> {
    let Some(pairs) = conninfo_pairs(text) else {
        return Ok((text.to_owned(), TlsParams::default()));
    };
    if !pairs.iter().any(|(key, _)| TLS_KEYS.contains(key)) {
        return Ok((text.to_owned(), TlsParams::default()));
    }
    let mut params = TlsParams::default();
    let mut kept = Vec::new();
    for (key, value) in pairs {
        if TLS_KEYS.contains(&key) {
            params.set(key, value)?;
        } else {
            let quoted = value.replace('\\', "\\\\").replace('\'', "\\'");
            kept.push(format!("{key}='{quoted}'"));
        }
    }
    Ok((kept.join(" "), params))
}

/// The `key=value` pairs of a libpq connection string, read as
/// tokio-postgres reads them (whitespace between pairs and around `=`,
/// values single-quoted or bare, backslash escapes); `None` when it does
/// not read.
fn conninfo_pairs(text: &str) -> Option<Vec<(&str, String)>> {
    let mut pairs = Vec::new();
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        let key_end = rest.find(|c: char| c.is_whitespace() || c == '=')?;
        let key = &rest[..key_end];
        if key.is_empty() {
            return None;
        }
        rest = rest[key_end..].trim_start().strip_prefix('=')?.trim_start();
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let quoted = rest.starts_with('\'');
        if quoted {
            chars.next();
        }
        let mut end = None;
        while let Some((at, c)) = chars.next() {
            match c {
                '\\' => value.push(chars.next()?.1),
                '\'' if quoted => {
                    end = Some(at + 1);
                    break;
                }
                c if !quoted && c.is_whitespace() => {
                    end = Some(at);
                    break;
                }
                c => value.push(c),
            }
        }
        let end = match end {
            Some(end) => end,
            None if quoted => return None,
            None => rest.len(),
        };
        if !quoted && value.is_empty() {
            return None;
        }
        pairs.push((key, value));
        rest = rest[end..].trim_start();
    }
    Some(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_parameters_are_taken_out_and_the_rest_kept() {
        let (rest, params) = split(
            "postgres://u:p%3Fw@db.example:5432/app?application_name=x&sslmode=verify-full\
             &sslrootcert=%2Fetc%2Fca.pem&connect_timeout=5",
        )
        .expect("splits");
        assert_eq!(
            rest,
            "postgres://u:p%3Fw@db.example:5432/app?application_name=x&connect_timeout=5"
        );
        assert_eq!(params.mode, Some(SslMode::VerifyFull));
        assert_eq!(params.root_cert.as_deref(), Some("/etc/ca.pem"));
    }

    #[test]
    fn a_url_with_only_tls_parameters_loses_its_query() {
        let (rest, params) =
            split("postgresql://u@h/db?sslmode=require&sslcert=c.pem&sslkey=k.pem")
                .expect("splits");
        assert_eq!(rest, "postgresql://u@h/db");
        assert_eq!(params.mode, Some(SslMode::Require));
        assert_eq!(params.cert.as_deref(), Some("c.pem"));
        assert_eq!(params.key.as_deref(), Some("k.pem"));
    }

    #[test]
    fn a_question_mark_in_the_password_is_not_the_query() {
        let (rest, params) = split("postgres://u:a?b@h/db?sslmode=disable").expect("splits");
        assert_eq!(rest, "postgres://u:a?b@h/db");
        assert_eq!(params.mode, Some(SslMode::Disable));
    }

    #[test]
    fn a_url_without_tls_parameters_is_untouched() {
        let url = "postgres://postgres@127.0.0.1:5432/panorama?options=-c%20x%3D1";
        assert_eq!(split(url).expect("splits").0, url);
    }

    #[test]
    fn conninfo_parameters_are_taken_out_and_the_rest_requoted() {
        let (rest, params) = split(
            "host=127.0.0.1 password='it\\'s secret' sslmode = verify-ca sslrootcert='/a b/ca.pem' \
             dbname=app",
        )
        .expect("splits");
        assert_eq!(params.mode, Some(SslMode::VerifyCa));
        assert_eq!(params.root_cert.as_deref(), Some("/a b/ca.pem"));
        assert_eq!(
            rest,
            "host='127.0.0.1' password='it\\'s secret' dbname='app'"
        );
        let config: tokio_postgres::Config = rest.parse().expect("parses");
        assert_eq!(config.get_password(), Some(&b"it's secret"[..]));
        assert_eq!(config.get_dbname(), Some("app"));
    }

    #[test]
    fn conninfo_without_tls_parameters_is_untouched() {
        let text = "host=/tmp user=postgres";
        assert_eq!(split(text).expect("splits").0, text);
        // Not a connection string at all: tokio-postgres says why later.
        assert_eq!(
            split("http://elsewhere").expect("splits").0,
            "http://elsewhere"
        );
    }
}
