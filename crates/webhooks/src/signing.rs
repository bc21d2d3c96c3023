//! Signing deliveries the Standard Webhooks way: the signed content is
//! `{webhook-id}.{webhook-timestamp}.{body}`, the signature HMAC-SHA256
//! under the secret's bytes, sent as `v1,<base64>` in `webhook-signature`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use panorama_store::WebhookSecret;

/// The `webhook-signature` value of `body` sent as message `id` at
/// `timestamp` (seconds since the epoch).
pub fn sign(secret: &WebhookSecret, id: &str, timestamp: i64, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let mut context = ring::hmac::Context::with_key(&key);
    context.update(id.as_bytes());
    context.update(b".");
    context.update(timestamp.to_string().as_bytes());
    context.update(b".");
    context.update(body);
    format!("v1,{}", STANDARD.encode(context.sign().as_ref()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of the Standard Webhooks specification.
    #[test]
    fn signs_the_specification_example() {
        let secret =
            WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("secret");
        let signature = sign(
            &secret,
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1_614_265_330,
            br#"{"test": 2432232314}"#,
        );
        assert_eq!(signature, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn every_part_is_signed() {
        let secret =
            WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").expect("secret");
        let base = sign(&secret, "a", 1, b"{}");
        assert_ne!(base, sign(&secret, "b", 1, b"{}"));
        assert_ne!(base, sign(&secret, "a", 2, b"{}"));
        assert_ne!(base, sign(&secret, "a", 1, b"{ }"));
        let other = WebhookSecret::parse("whsec_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").expect("secret");
        assert_ne!(base, sign(&other, "a", 1, b"{}"));
    }
}
