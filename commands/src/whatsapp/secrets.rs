//! Channel secrets at rest: AES-256-GCM under one server-wide key.
//!
//! The key comes from configuration (`UPZENTO_SECRETS_KEY`, 64 hex characters) or from a key
//! file; the zero-configuration start creates that file (32 random bytes, mode 0600) beside
//! the private cluster's data on first start and reads it afterwards. Every value is sealed
//! with a fresh random nonce and with associated data naming its row and column, so a
//! ciphertext moved elsewhere does not open.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use anyhow::Context;
use rand::RngCore;

const NONCE_BYTES: usize = 12;

/// Seals and opens secrets. Its `Debug` shows nothing of the key.
pub struct SecretBox {
    cipher: Aes256Gcm,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(..)")
    }
}

/// A sealed value did not open: the key changed, or the data was altered or moved.
#[derive(Debug, thiserror::Error)]
#[error("a stored secret could not be decrypted with the configured key")]
pub struct Unreadable;

impl SecretBox {
    /// A box over a 32-byte key.
    pub fn new(key: &[u8; 32]) -> Self {
        Self {
            cipher: Aes256Gcm::new(key.into()),
        }
    }

    /// A box over a key given as 64 hex characters.
    pub fn from_hex(hex_key: &str) -> anyhow::Result<Self> {
        let bytes = hex::decode(hex_key.trim()).context("the secrets key is not hex")?;
        let key: [u8; 32] = bytes
            .try_into()
            .map_err(|_| anyhow::anyhow!("the secrets key must be 32 bytes (64 hex characters)"))?;
        Ok(Self::new(&key))
    }

    /// The key in `path`, created (32 random bytes as hex, mode 0600) when the file does not
    /// exist yet. Two processes starting at once agree: only one creates the file.
    pub fn from_file(path: &Path) -> anyhow::Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("could not create {}", dir.display()))?;
        }
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        let created = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path);
        match created {
            Ok(mut file) => {
                file.write_all(hex::encode(key).as_bytes())
                    .and_then(|()| file.sync_all())
                    .with_context(|| format!("could not write {}", path.display()))?;
                tracing::info!(path = %path.display(), "created the secrets key file");
                Ok(Self::new(&key))
            }
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("could not read {}", path.display()))?;
                Self::from_hex(&text).with_context(|| format!("in {}", path.display()))
            }
            Err(error) => {
                Err(error).with_context(|| format!("could not create {}", path.display()))
            }
        }
    }

    /// A box over a random key that lives as long as the process: for embedding and tests
    /// only, since secrets sealed with it cannot be read after a restart.
    pub fn ephemeral() -> Self {
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        Self::new(&key)
    }

    /// Seals `plaintext`; `context` (row and column) must be given again to open it.
    pub fn seal(&self, plaintext: &str, context: &str) -> Vec<u8> {
        let mut nonce = [0u8; NONCE_BYTES];
        rand::rng().fill_bytes(&mut nonce);
        let sealed = self
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: context.as_bytes(),
                },
            )
            .expect("AES-GCM encrypts any message shorter than 64 GiB");
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        out
    }

    /// Opens what [`SecretBox::seal`] sealed with the same `context`.
    pub fn open(&self, sealed: &[u8], context: &str) -> Result<String, Unreadable> {
        if sealed.len() < NONCE_BYTES {
            return Err(Unreadable);
        }
        let (nonce, ciphertext) = sealed.split_at(NONCE_BYTES);
        let plain = self
            .cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: ciphertext,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| Unreadable)?;
        String::from_utf8(plain).map_err(|_| Unreadable)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_secret_opens_only_with_its_context_and_key() {
        let secrets = SecretBox::ephemeral();
        let sealed = secrets.seal("EAAG-token", "channel-1/access_token");
        assert!(!String::from_utf8_lossy(&sealed).contains("EAAG-token"));
        assert_eq!(
            secrets.open(&sealed, "channel-1/access_token").unwrap(),
            "EAAG-token"
        );
        assert!(secrets.open(&sealed, "channel-2/access_token").is_err());
        assert!(
            SecretBox::ephemeral()
                .open(&sealed, "channel-1/access_token")
                .is_err()
        );
    }

    #[test]
    fn the_key_file_is_created_once_private_and_read_back() {
        let dir = std::env::temp_dir().join(format!("upzento-key-{}", uuid::Uuid::new_v4()));
        let path = dir.join("secrets.key");
        let first = SecretBox::from_file(&path).unwrap();
        let sealed = first.seal("s", "c");
        let again = SecretBox::from_file(&path).unwrap();
        assert_eq!(again.open(&sealed, "c").unwrap(), "s");
        let mode = std::fs::metadata(&path).unwrap().permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o600
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
