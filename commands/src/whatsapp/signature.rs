//! `X-Hub-Signature-256`: Meta signs each webhook POST with HMAC-SHA256 of the raw body under
//! the app secret. It is checked on the bytes as received, before anything parses them,
//! and compared in constant time (`Mac::verify_slice`), so a forger learns nothing from timing.

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// Why a webhook's signature was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// There is no `X-Hub-Signature-256` header.
    #[error("the X-Hub-Signature-256 header is missing")]
    Missing,
    /// The header is not `sha256=` and 64 hex characters.
    #[error("the X-Hub-Signature-256 header is not `sha256=` followed by 64 hex characters")]
    Malformed,
    /// The signature does not match the body under the channel's app secret.
    #[error("the X-Hub-Signature-256 signature does not match the body")]
    Mismatch,
}

/// Checks `header` (the `X-Hub-Signature-256` value, if any) against `body`.
pub fn verify(app_secret: &str, body: &[u8], header: Option<&str>) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let hex_part = header
        .trim()
        .strip_prefix("sha256=")
        .ok_or(SignatureError::Malformed)?;
    let expected = hex::decode(hex_part).map_err(|_| SignatureError::Malformed)?;
    if expected.len() != 32 {
        return Err(SignatureError::Malformed);
    }
    let mut mac =
        HmacSha256::new_from_slice(app_secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(body);
    mac.verify_slice(&expected)
        .map_err(|_| SignatureError::Mismatch)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The header value Meta would send for `body`.
    fn sign(app_secret: &str, body: &[u8]) -> String {
        let mut mac = HmacSha256::new_from_slice(app_secret.as_bytes()).unwrap();
        mac.update(body);
        format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
    }

    #[test]
    fn a_signature_holds_only_for_its_body_and_secret() {
        let body = br#"{"object":"whatsapp_business_account","entry":[]}"#;
        let header = sign("app-secret", body);
        assert_eq!(verify("app-secret", body, Some(&header)), Ok(()));
        assert_eq!(
            verify("other-secret", body, Some(&header)),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify("app-secret", b"{}", Some(&header)),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify("app-secret", body, None),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify("app-secret", body, Some("sha1=abc")),
            Err(SignatureError::Malformed)
        );
    }
}
