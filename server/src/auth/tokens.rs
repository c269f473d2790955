//! Access tokens: a session and an expiry under a MAC, in 50 characters.
//!
//! The server reads two things of an access token: which session (refresh-token family) it
//! belongs to, and until when it is good. The user and the device are the session's, and the
//! database is asked about the session on every request anyway (ending a session ends its
//! tokens at once), so a token carries only those two, authenticated:
//!
//! ```text
//! base64url( key:u8  session:16 bytes (UUID)  expires:u32le (Unix seconds)  tag:16 bytes )
//! tag = HMAC-SHA256(access key, key | session | expires), first 16 bytes
//! ```
//!
//! Every request carries its token. A JWT with the same facts was 369 characters (466 before
//! 2026-11-28), most of a daily sync's headers on 2G, and HTTP/2's HPACK never indexes an
//! `Authorization` value, so it went whole with every request there too. There is no
//! algorithm to choose, so none to confuse; the tag is checked in constant time.
//!
//! The access key is `keys/access.key` (32 random bytes, made on first use, readable by the
//! owner only, shared by every instance). To rotate it, move it to `keys/access.previous.key`
//! and restart: tokens under the previous key keep working until they expire (15 minutes).
//! The key byte is the first byte of the key's SHA-256, so a token names the key it was made
//! under.

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use std::path::Path;

/// How long an access token lives, seconds.
pub const ACCESS_TTL: i64 = 15 * 60;
/// Seconds a token is still taken past its expiry, for clocks that differ a little.
const LEEWAY: i64 = 30;
/// The token's length in bytes, before base64.
const TOKEN_BYTES: usize = 1 + 16 + 4 + TAG_BYTES;
const TAG_BYTES: usize = 16;

/// What an access token says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claims {
    /// The session (refresh-token family) the token belongs to: ending it ends the token.
    pub sid: String,
    /// Expires at, Unix seconds.
    pub exp: i64,
}

/// Why a token was refused. Every variant is a 401 to the caller.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Not one of our tokens, a wrong tag, or expired.
    #[error("invalid token: {0}")]
    Invalid(String),
    /// Made under a key this server does not hold.
    #[error("unknown signing key")]
    UnknownKey,
    /// The keys could not be made, read or used.
    #[error("signing keys: {0}")]
    Keys(String),
}

/// An access key and the byte tokens name it by.
struct AccessKey {
    id: u8,
    secret: [u8; 32],
}

impl AccessKey {
    fn new(secret: [u8; 32]) -> Self {
        AccessKey {
            id: Sha256::digest(secret)[0],
            secret,
        }
    }

    fn mac(&self) -> Hmac<Sha256> {
        // HMAC takes a key of any length: this cannot fail.
        <Hmac<Sha256> as Mac>::new_from_slice(&self.secret)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"))
    }
}

/// The server's token keys: the access key tokens are made under, the previous one still
/// taken, and the secret refresh tokens' successors are derived with.
pub struct TokenKeys {
    current: AccessKey,
    previous: Option<AccessKey>,
    refresh_secret: [u8; 32],
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKeys")
            .field("current", &self.current.id)
            .field("previous", &self.previous.as_ref().map(|k| k.id))
            .finish()
    }
}

fn keys_error(e: impl std::fmt::Display) -> TokenError {
    TokenError::Keys(e.to_string())
}

/// A 32-byte secret kept in `path`, made on first use if `create`.
fn secret(path: &Path, create: bool) -> Result<Option<[u8; 32]>, TokenError> {
    if !path.exists() {
        if !create {
            return Ok(None);
        }
        crate::files::private_write(path, &rand::random::<[u8; 32]>()).map_err(keys_error)?;
    }
    let bytes = std::fs::read(path).map_err(keys_error)?;
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("a key");
    bytes
        .try_into()
        .map(Some)
        .map_err(|_| TokenError::Keys(format!("{name} is not 32 bytes")))
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
}

impl TokenKeys {
    /// Fresh keys, kept in memory only (tests).
    pub fn generate() -> Result<Self, TokenError> {
        Ok(TokenKeys {
            current: AccessKey::new(rand::random()),
            previous: None,
            refresh_secret: rand::random(),
        })
    }

    /// The keys in `dir`, made on first use: `access.key` and `refresh.key`, each readable by
    /// the owner only, and `access.previous.key` if an operator rotating the key left one.
    /// Every instance of a deployment shares them.
    pub fn load_or_create(dir: &Path) -> Result<Self, TokenError> {
        crate::files::private_dir(dir).map_err(keys_error)?;
        let current = secret(&dir.join("access.key"), true)?
            .ok_or_else(|| TokenError::Keys("access.key".into()))?;
        let previous = secret(&dir.join("access.previous.key"), false)?;
        let refresh_secret = secret(&dir.join("refresh.key"), true)?
            .ok_or_else(|| TokenError::Keys("refresh.key".into()))?;
        Ok(TokenKeys {
            current: AccessKey::new(current),
            previous: previous.map(AccessKey::new),
            refresh_secret,
        })
    }

    /// The secret refresh tokens' successors are derived with.
    pub fn refresh_secret(&self) -> &[u8; 32] {
        &self.refresh_secret
    }

    /// Makes an access token for a session (a UUID), valid from `now` for [`ACCESS_TTL`].
    pub fn issue(&self, session: &str, now: i64) -> Result<String, TokenError> {
        let session = uuid::Uuid::parse_str(session)
            .map_err(|_| TokenError::Keys("a session is a UUID".into()))?;
        let exp = u32::try_from(now + ACCESS_TTL).map_err(keys_error)?;
        let mut token = Vec::with_capacity(TOKEN_BYTES);
        token.push(self.current.id);
        token.extend_from_slice(session.as_bytes());
        token.extend_from_slice(&exp.to_le_bytes());
        let mut mac = self.current.mac();
        mac.update(&token);
        token.extend_from_slice(&mac.finalize().into_bytes()[..TAG_BYTES]);
        Ok(b64().encode(token))
    }

    /// Checks a token at `now` and returns what it says.
    pub fn verify(&self, token: &str, now: i64) -> Result<Claims, TokenError> {
        let invalid = |why: &str| TokenError::Invalid(why.to_owned());
        // Anything of another length is refused before it is decoded.
        if token.len() != (TOKEN_BYTES * 4).div_ceil(3) {
            return Err(invalid("not an access token"));
        }
        let bytes = b64()
            .decode(token)
            .map_err(|_| invalid("not an access token"))?;
        let Ok(bytes) = <[u8; TOKEN_BYTES]>::try_from(bytes.as_slice()) else {
            return Err(invalid("not an access token"));
        };
        let (signed, tag) = bytes.split_at(TOKEN_BYTES - TAG_BYTES);
        let mut named = [Some(&self.current), self.previous.as_ref()]
            .into_iter()
            .flatten()
            .filter(|k| k.id == bytes[0])
            .peekable();
        if named.peek().is_none() {
            return Err(TokenError::UnknownKey);
        }
        // Two keys may share a byte: the token is good if either made it.
        let good = named.any(|key| {
            let mut mac = key.mac();
            mac.update(signed);
            mac.verify_truncated_left(tag).is_ok()
        });
        if !good {
            return Err(invalid("bad tag"));
        }
        let session = uuid::Uuid::from_slice(&signed[1..17]).map_err(|_| invalid("session"))?;
        let exp = i64::from(u32::from_le_bytes([
            signed[17], signed[18], signed[19], signed[20],
        ]));
        if now > exp + LEEWAY {
            return Err(invalid("expired"));
        }
        Ok(Claims {
            sid: session.to_string(),
            exp,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> i64 {
        crate::service::clock::unix_now()
    }

    const SESSION: &str = "ae0f8fcb-e9ac-41d5-bd9e-cdeb4cd5a6d9";

    fn forged(key: u8, session: &[u8; 16], exp: i64, secret: &[u8; 32]) -> String {
        let mut token = vec![key];
        token.extend_from_slice(session);
        token.extend_from_slice(&(exp as u32).to_le_bytes());
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("mac");
        mac.update(&token);
        token.extend_from_slice(&mac.finalize().into_bytes()[..16]);
        b64().encode(token)
    }

    #[test]
    fn a_token_we_issued_verifies_with_its_session_and_is_fifty_characters() {
        let keys = TokenKeys::generate().expect("keys");
        let token = keys.issue(SESSION, now()).expect("issue");
        assert_eq!(token.len(), 50);
        let claims = keys.verify(&token, now()).expect("valid");
        assert_eq!(claims.sid, SESSION);
        assert_eq!(claims.exp, now() + ACCESS_TTL);
    }

    #[test]
    fn a_token_under_another_key_a_flipped_bit_or_past_its_time_is_refused() {
        let keys = TokenKeys::generate().expect("keys");
        let session = *uuid::Uuid::parse_str(SESSION).expect("uuid").as_bytes();
        let other: [u8; 32] = rand::random();
        let ours = keys.current.secret;
        let id = keys.current.id;
        let cases = [
            (
                "another key under our id",
                forged(id, &session, now() + 60, &other),
            ),
            (
                "an unknown key id",
                forged(id.wrapping_add(1), &session, now() + 60, &ours),
            ),
            ("expired", forged(id, &session, now() - 3600, &ours)),
            ("garbage", "not.a.token".to_owned()),
            ("empty", String::new()),
            ("a JWT", "eyJhbGciOiJub25lIn0.eyJzaWQiOiJ4In0.".to_owned()),
        ];
        for (what, token) in cases {
            assert!(keys.verify(&token, now()).is_err(), "{what}");
        }
        let genuine = keys.issue(SESSION, now()).expect("issue");
        let mut bytes = b64().decode(&genuine).expect("b64");
        for i in 0..bytes.len() {
            bytes[i] ^= 1;
            assert!(
                keys.verify(&b64().encode(&bytes), now()).is_err(),
                "bit {i}"
            );
            bytes[i] ^= 1;
        }
        let longer = format!("{genuine}A");
        assert!(keys.verify(&longer, now()).is_err());
        assert!(keys.verify(&genuine, now() + ACCESS_TTL + LEEWAY).is_ok());
        assert!(
            keys.verify(&genuine, now() + ACCESS_TTL + LEEWAY + 1)
                .is_err()
        );
    }

    #[test]
    fn keys_persist_across_restarts_and_a_rotated_key_is_taken_until_its_tokens_expire() {
        let dir = tempfile::tempdir().expect("dir");
        let token = TokenKeys::load_or_create(dir.path())
            .expect("keys")
            .issue(SESSION, now())
            .expect("issue");
        let again = TokenKeys::load_or_create(dir.path()).expect("reloaded");
        assert!(again.verify(&token, now()).is_ok());
        std::fs::rename(
            dir.path().join("access.key"),
            dir.path().join("access.previous.key"),
        )
        .expect("rotate");
        let rotated = TokenKeys::load_or_create(dir.path()).expect("rotated");
        assert!(rotated.verify(&token, now()).is_ok(), "the previous key");
        let fresh = rotated.issue(SESSION, now()).expect("issue");
        assert!(rotated.verify(&fresh, now()).is_ok());
        std::fs::remove_file(dir.path().join("access.previous.key")).expect("retire");
        let retired = TokenKeys::load_or_create(dir.path()).expect("retired");
        assert!(retired.verify(&token, now()).is_err(), "the retired key");
    }
}
