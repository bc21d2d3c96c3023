//! Webhook signatures: HMAC computed over what the provider signs, compared
//! in constant time.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use sha2::Sha256;

use crate::{ChannelError, Result};

/// Checks `expected_base64` against base64(HMAC-SHA1(key, message)).
pub fn verify_hmac_sha1_base64(key: &[u8], message: &[u8], expected_base64: &str) -> Result<()> {
    let expected = STANDARD
        .decode(expected_base64.trim())
        .map_err(|_| ChannelError::Unauthorized("signature is not base64".into()))?;
    let mut mac = Hmac::<Sha1>::new_from_slice(key).map_err(|_| unusable_key())?;
    mac.update(message);
    mac.verify_slice(&expected).map_err(|_| mismatch())
}

/// Checks `expected_hex` against hex(HMAC-SHA256(key, message)).
pub fn verify_hmac_sha256_hex(key: &[u8], message: &[u8], expected_hex: &str) -> Result<()> {
    let expected = hex::decode(expected_hex.trim())
        .map_err(|_| ChannelError::Unauthorized("signature is not hex".into()))?;
    let mut mac = Hmac::<Sha256>::new_from_slice(key).map_err(|_| unusable_key())?;
    mac.update(message);
    mac.verify_slice(&expected).map_err(|_| mismatch())
}

/// hex(HMAC-SHA256(key, message)), for tests and simulators that sign.
pub fn hmac_sha256_hex(key: &[u8], message: &[u8]) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return String::new();
    };
    mac.update(message);
    hex::encode(mac.finalize().into_bytes())
}

/// base64(HMAC-SHA1(key, message)), for tests and simulators that sign.
pub fn hmac_sha1_base64(key: &[u8], message: &[u8]) -> String {
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(key) else {
        return String::new();
    };
    mac.update(message);
    STANDARD.encode(mac.finalize().into_bytes())
}

/// Constant-time equality of two secrets (tokens, basic-auth passwords):
/// both are MACed under a fixed key and the tags compared in constant time,
/// so timing reveals neither where they differ nor their lengths.
pub fn secrets_equal(given: &[u8], expected: &[u8]) -> bool {
    const KEY: &[u8] = b"panorama-secret-compare";
    let (Ok(mut reference), Ok(mut candidate)) = (
        Hmac::<Sha256>::new_from_slice(KEY),
        Hmac::<Sha256>::new_from_slice(KEY),
    ) else {
        return false;
    };
    reference.update(expected);
    candidate.update(given);
    candidate
        .verify_slice(&reference.finalize().into_bytes())
        .is_ok()
}

fn mismatch() -> ChannelError {
    ChannelError::Unauthorized("signature does not match".into())
}

fn unusable_key() -> ChannelError {
    ChannelError::Unauthorized("signing key is unusable".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_hex_round_trips_and_rejects_tampering() {
        let signature = hmac_sha256_hex(b"key", b"message");
        assert!(verify_hmac_sha256_hex(b"key", b"message", &signature).is_ok());
        assert!(verify_hmac_sha256_hex(b"key", b"messagE", &signature).is_err());
        assert!(verify_hmac_sha256_hex(b"other", b"message", &signature).is_err());
        assert!(verify_hmac_sha256_hex(b"key", b"message", "zz").is_err());
    }

    #[test]
    fn sha1_base64_round_trips_and_rejects_tampering() {
        let signature = hmac_sha1_base64(b"key", b"message");
        assert!(verify_hmac_sha1_base64(b"key", b"message", &signature).is_ok());
        assert!(verify_hmac_sha1_base64(b"key", b"message!", &signature).is_err());
        assert!(verify_hmac_sha1_base64(b"key", b"message", "%%%").is_err());
    }

    #[test]
    fn secrets_compare_by_value() {
        assert!(secrets_equal(b"s3cret", b"s3cret"));
        assert!(!secrets_equal(b"s3cret", b"s3cres"));
        assert!(!secrets_equal(b"", b"s3cret"));
    }
}
