//! Endpoint secrets sealed at rest: with an encryption key configured, the stores keep
//! each secret as `enc1:<key id>:<base64 of nonce ‖ XChaCha20-Poly1305 ciphertext>`, so a
//! copy of the database (a backup, a replica, a stolen disk) does not hold usable signing
//! keys.
//!
//! Keys rotate without downtime: the current key seals, every configured key opens (the
//! key id says which), and text that is not sealed (written before a key was configured)
//! is read as it is.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};

const PREFIX: &str = "enc1:";
const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 24;

/// Why sealing could not be set up, or a stored secret could not be opened.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    #[error("an encryption key must be 32 bytes, base64-encoded (e.g. `openssl rand -base64 32`)")]
    BadKey,
    #[error("a stored secret is sealed with key `{0}`, which is not configured")]
    UnknownKey(String),
    #[error("a stored secret is damaged or was sealed with another key")]
    Damaged,
}

struct SealingKey {
    /// The first 8 hex digits of the key's SHA-256: names the key without revealing it.
    id: String,
    cipher: XChaCha20Poly1305,
}

/// Seals and opens endpoint secrets.
#[derive(Default)]
pub struct SecretSealer {
    /// The key that seals; the first of `keys`. Without one, secrets are stored as they are.
    sealing: Option<usize>,
    keys: Vec<SealingKey>,
}

impl std::fmt::Debug for SecretSealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let ids: Vec<&str> = self.keys.iter().map(|k| k.id.as_str()).collect();
        f.debug_struct("SecretSealer")
            .field("key_ids", &ids)
            .finish()
    }
}

impl SecretSealer {
    /// Seals with `current` (base64) and opens with it or any of `previous`. With no
    /// current key, seals nothing but still opens what `previous` keys sealed.
    pub fn new(current: Option<&str>, previous: &[String]) -> Result<Self, SealError> {
        let mut keys = Vec::new();
        for text in current
            .into_iter()
            .chain(previous.iter().map(String::as_str))
        {
            keys.push(parse_key(text)?);
        }
        Ok(Self {
            sealing: current.map(|_| 0),
            keys,
        })
    }

    /// Whether new secrets are sealed.
    pub fn seals(&self) -> bool {
        self.sealing.is_some()
    }

    /// The stored form of `secret`.
    pub fn seal(&self, secret: &str) -> String {
        let Some(key) = self.sealing.map(|i| &self.keys[i]) else {
            return secret.to_owned();
        };
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = key
            .cipher
            .encrypt(&nonce, secret.as_bytes())
            .expect("XChaCha20-Poly1305 seals any input that fits in memory");
        let mut bytes = nonce.to_vec();
        bytes.extend_from_slice(&sealed);
        format!("{PREFIX}{}:{}", key.id, BASE64.encode(bytes))
    }

    /// The secret a stored text holds: opened if sealed, as it is otherwise.
    pub fn open(&self, stored: &str) -> Result<String, SealError> {
        let Some(rest) = stored.strip_prefix(PREFIX) else {
            return Ok(stored.to_owned());
        };
        let (id, encoded) = rest.split_once(':').ok_or(SealError::Damaged)?;
        let key = self
            .keys
            .iter()
            .find(|k| k.id == id)
            .ok_or_else(|| SealError::UnknownKey(id.to_owned()))?;
        let bytes = BASE64.decode(encoded).map_err(|_| SealError::Damaged)?;
        if bytes.len() < NONCE_LEN {
            return Err(SealError::Damaged);
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let plain = key
            .cipher
            .decrypt(XNonce::from_slice(nonce), sealed)
            .map_err(|_| SealError::Damaged)?;
        String::from_utf8(plain).map_err(|_| SealError::Damaged)
    }

    /// An endpoint URL as stored: sealed when it carries credentials (basic auth, a
    /// broker's user and password), as it is otherwise, so plain URLs stay readable.
    pub fn seal_url(&self, url: &str) -> String {
        if url_has_credentials(url) {
            self.seal(url)
        } else {
            url.to_owned()
        }
    }

    /// Whether a stored URL is as [`seal_url`](Self::seal_url) would store it now.
    pub fn is_current_url(&self, stored: &str) -> bool {
        if stored.starts_with(PREFIX) {
            self.is_current(stored)
        } else {
            self.sealing.is_none() || !url_has_credentials(stored)
        }
    }

    /// Whether `stored` is already sealed with the current key (or needs no sealing).
    pub fn is_current(&self, stored: &str) -> bool {
        match self.sealing.map(|i| &self.keys[i]) {
            None => !stored.starts_with(PREFIX),
            Some(key) => stored
                .strip_prefix(PREFIX)
                .and_then(|rest| rest.split_once(':'))
                .is_some_and(|(id, _)| id == key.id),
        }
    }
}

/// Whether a URL names a user or a password.
pub fn url_has_credentials(url: &str) -> bool {
    url::Url::parse(url).is_ok_and(|u| !u.username().is_empty() || u.password().is_some())
}

/// What API callers see of a password in an endpoint URL.
pub const HIDDEN_PASSWORD: &str = "********";

/// An endpoint URL as the API shows it: its password, if any, replaced by
/// [`HIDDEN_PASSWORD`]; the user name stays, so the owner can tell which account it is.
pub fn url_for_display(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) if parsed.password().is_some() => {
            let _ = parsed.set_password(Some(HIDDEN_PASSWORD));
            parsed.into()
        }
        _ => url.to_owned(),
    }
}

/// The URL an update means. Callers only ever see a hidden password, so a `new` URL that
/// carries [`HIDDEN_PASSWORD`] and otherwise names the same scheme, user, host and port as
/// `old` keeps `old`'s password; any other URL is taken as given.
pub fn url_for_update(new: &str, old: &str) -> String {
    let (Ok(mut new_url), Ok(old_url)) = (url::Url::parse(new), url::Url::parse(old)) else {
        return new.to_owned();
    };
    let same_account = new_url.scheme() == old_url.scheme()
        && new_url.username() == old_url.username()
        && new_url.host() == old_url.host()
        && new_url.port_or_known_default() == old_url.port_or_known_default();
    if new_url.password() == Some(HIDDEN_PASSWORD) && same_account {
        let _ = new_url.set_password(old_url.password());
        return new_url.into();
    }
    new.to_owned()
}

fn parse_key(text: &str) -> Result<SealingKey, SealError> {
    let bytes = BASE64.decode(text.trim()).map_err(|_| SealError::BadKey)?;
    if bytes.len() != KEY_LEN {
        return Err(SealError::BadKey);
    }
    let digest = Sha256::digest(&bytes);
    let id = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
    let cipher = XChaCha20Poly1305::new_from_slice(&bytes).map_err(|_| SealError::BadKey)?;
    Ok(SealingKey { id, cipher })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_passwords_are_hidden_and_kept_across_an_update() {
        let stored = "amqp://herald:s3cret@rabbit.example:5672/%2f?exchange=e";
        let shown = url_for_display(stored);
        assert_eq!(
            shown,
            "amqp://herald:********@rabbit.example:5672/%2f?exchange=e"
        );
        // Sent back unchanged, or with another path: the stored password is kept.
        assert_eq!(url_for_update(&shown, stored), stored);
        let moved = shown.replace("exchange=e", "exchange=f");
        assert_eq!(
            url_for_update(&moved, stored),
            stored.replace("exchange=e", "exchange=f")
        );
        // Another host or user never receives the password.
        let elsewhere = shown.replace("rabbit.example", "evil.example");
        assert_eq!(url_for_update(&elsewhere, stored), elsewhere);
        // A new password replaces it.
        let changed = stored.replace("s3cret", "n3w");
        assert_eq!(url_for_update(&changed, stored), changed);
        assert_eq!(
            url_for_display("https://example.com/x"),
            "https://example.com/x"
        );
    }

    #[test]
    fn only_urls_with_credentials_are_sealed() {
        let key = BASE64.encode([7u8; 32]);
        let sealer = SecretSealer::new(Some(&key), &[]).unwrap();
        let plain = "https://example.com/hook";
        assert_eq!(sealer.seal_url(plain), plain);
        assert!(sealer.is_current_url(plain));
        // A password long enough that random ciphertext cannot contain it by chance.
        let secret = "redis://user:hunter2-s3cret@example.com/stream";
        let sealed = sealer.seal_url(secret);
        assert!(sealed.starts_with(PREFIX) && !sealed.contains("hunter2-s3cret"));
        assert_eq!(sealer.open(&sealed).unwrap(), secret);
        assert!(sealer.is_current_url(&sealed));
        assert!(!sealer.is_current_url(secret));
    }

    fn key(byte: u8) -> String {
        BASE64.encode([byte; KEY_LEN])
    }

    #[test]
    fn sealed_secrets_open_and_do_not_show_the_secret() {
        let sealer = SecretSealer::new(Some(&key(1)), &[]).unwrap();
        let sealed = sealer.seal("whsec_c2VjcmV0");
        assert!(sealed.starts_with("enc1:"));
        assert!(!sealed.contains("c2VjcmV0"));
        assert_ne!(
            sealed,
            sealer.seal("whsec_c2VjcmV0"),
            "a fresh nonce each time"
        );
        assert_eq!(sealer.open(&sealed).unwrap(), "whsec_c2VjcmV0");
        assert!(sealer.is_current(&sealed));
    }

    #[test]
    fn plain_text_reads_as_it_is_and_no_key_seals_nothing() {
        let none = SecretSealer::new(None, &[]).unwrap();
        assert_eq!(none.seal("whsec_x"), "whsec_x");
        assert_eq!(none.open("whsec_x").unwrap(), "whsec_x");
        let sealer = SecretSealer::new(Some(&key(1)), &[]).unwrap();
        assert_eq!(sealer.open("whsec_x").unwrap(), "whsec_x");
        assert!(!sealer.is_current("whsec_x"));
    }

    #[test]
    fn rotation_opens_with_previous_keys_and_seals_with_the_new() {
        let old = SecretSealer::new(Some(&key(1)), &[]).unwrap();
        let sealed_before = old.seal("whsec_old");
        let rotated = SecretSealer::new(Some(&key(2)), &[key(1)]).unwrap();
        assert_eq!(rotated.open(&sealed_before).unwrap(), "whsec_old");
        assert!(!rotated.is_current(&sealed_before));
        let resealed = rotated.seal("whsec_old");
        assert!(rotated.is_current(&resealed));
        let without_old = SecretSealer::new(Some(&key(2)), &[]).unwrap();
        assert!(matches!(
            without_old.open(&sealed_before),
            Err(SealError::UnknownKey(_))
        ));
    }

    #[test]
    fn damage_and_bad_keys_are_errors_not_panics() {
        let sealer = SecretSealer::new(Some(&key(1)), &[]).unwrap();
        let sealed = sealer.seal("whsec_x");
        let mut tampered = sealed.clone().into_bytes();
        let last = tampered.len() - 3;
        tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        assert_eq!(sealer.open(&tampered), Err(SealError::Damaged));
        let id = &sealed[5..13];
        for junk in [
            "enc1:".to_string(),
            format!("enc1:{id}:"),
            format!("enc1:{id}:!!"),
            format!("enc1:{id}:QUJD"),
        ] {
            assert_eq!(sealer.open(&junk), Err(SealError::Damaged), "{junk}");
        }
        assert_eq!(
            SecretSealer::new(Some("c2hvcnQ="), &[]).unwrap_err(),
            SealError::BadKey
        );
    }
}
