//! Access tokens: EdDSA-signed JWTs with a `kid`, so signing keys can be rotated.
//!
//! Validation pins the algorithm (EdDSA only: no `none`, no HMAC with the public key as the
//! secret), looks the key up by `kid` among the keys the server holds, and requires `exp`,
//! `iss`, `aud` and `sub`.
//!
//! A token rides on every request, and on 2G its bytes are most of a daily sync's headers, so
//! it carries only what the server reads: who, which device, which session, and until when
//! (369 bytes; 466 before 2026-11-28, when it also named the role, which the server reads
//! from the database, and the time of issue). Tokens in the earlier form verify until they
//! expire.

use jsonwebtoken::{
    Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, decode_header, encode,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// Who the tokens are from.
pub const ISSUER: &str = "hv";
/// Who they are for.
pub const AUDIENCE: &str = "hv-api";
/// The issuer and audience of tokens issued before 2026-11-28, still taken until they expire.
const EARLIER: (&str, &str) = ("homevisit", "homevisit-api");
/// How long an access token lives, seconds.
pub const ACCESS_TTL: i64 = 15 * 60;

/// What an access token says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    /// The user id.
    pub sub: String,
    /// The device the token was issued to.
    #[serde(rename = "dev", alias = "device")]
    pub device: String,
    /// The session (refresh-token family) the token belongs to: ending it ends the token.
    pub sid: String,
    /// Issuer.
    pub iss: String,
    /// Audience.
    pub aud: String,
    /// Expires at, Unix seconds.
    pub exp: i64,
}

/// Why a token was refused. Every variant is a 401 to the caller.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// Not a JWT, a bad signature, a wrong algorithm, expired, or wrong audience or issuer.
    #[error("invalid token: {0}")]
    Invalid(String),
    /// Signed with a key this server does not hold.
    #[error("unknown signing key")]
    UnknownKey,
    /// The keys could not be made, read or used.
    #[error("signing keys: {0}")]
    Keys(String),
}

/// One Ed25519 signing key and its id.
struct SigningKey {
    kid: String,
    encoding: EncodingKey,
}

/// The server's token keys: one to sign with, every still-valid one to verify with, and the
/// secret refresh tokens' successors are derived with.
pub struct TokenKeys {
    current: SigningKey,
    verifying: BTreeMap<String, DecodingKey>,
    refresh_secret: [u8; 32],
}

impl std::fmt::Debug for TokenKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenKeys")
            .field("current", &self.current.kid)
            .field("verifying", &self.verifying.keys().collect::<Vec<_>>())
            .finish()
    }
}

fn keys_error(e: impl std::fmt::Display) -> TokenError {
    TokenError::Keys(e.to_string())
}

impl TokenKeys {
    /// A fresh key pair, kept in memory only (tests).
    pub fn generate() -> Result<Self, TokenError> {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).map_err(keys_error)?;
        Self::from_pem(
            &pair.serialize_pem(),
            &pair.public_key_pem(),
            rand::random(),
        )
    }

    /// The keys in `dir`, made on first use: `token-ed25519.pem` and `refresh.key`, each
    /// readable by the owner only. Every instance of a deployment shares them.
    pub fn load_or_create(dir: &Path) -> Result<Self, TokenError> {
        crate::files::private_dir(dir).map_err(keys_error)?;
        let private = dir.join("token-ed25519.pem");
        if !private.exists() {
            let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).map_err(keys_error)?;
            crate::files::private_write(&private, pair.serialize_pem().as_bytes())
                .map_err(keys_error)?;
        }
        let secret = dir.join("refresh.key");
        if !secret.exists() {
            crate::files::private_write(&secret, &rand::random::<[u8; 32]>())
                .map_err(keys_error)?;
        }
        let refresh_secret = std::fs::read(&secret)
            .map_err(keys_error)?
            .try_into()
            .map_err(|_| TokenError::Keys("refresh.key is not 32 bytes".into()))?;
        let pem = std::fs::read_to_string(&private).map_err(keys_error)?;
        let pair = rcgen::KeyPair::from_pem(&pem).map_err(keys_error)?;
        Self::from_pem(&pem, &pair.public_key_pem(), refresh_secret)
    }

    /// The secret refresh tokens' successors are derived with.
    pub fn refresh_secret(&self) -> &[u8; 32] {
        &self.refresh_secret
    }

    fn from_pem(private: &str, public: &str, refresh_secret: [u8; 32]) -> Result<Self, TokenError> {
        let encoding = EncodingKey::from_ed_pem(private.as_bytes()).map_err(keys_error)?;
        let decoding = DecodingKey::from_ed_pem(public.as_bytes()).map_err(keys_error)?;
        // The key id is a digest of the public key: stable across restarts, new on rotation.
        // Tokens issued before 2026-11-28 name it by 16 digits instead of 8.
        let digest = homevisit_sync_core::photo::sha256_hex(public.as_bytes());
        let kid = digest[..8].to_owned();
        Ok(TokenKeys {
            current: SigningKey {
                kid: kid.clone(),
                encoding,
            },
            verifying: BTreeMap::from([
                (kid, decoding.clone()),
                (digest[..16].to_owned(), decoding),
            ]),
            refresh_secret,
        })
    }

    /// Signs an access token for a user on a device in a session, valid from `now` for
    /// [`ACCESS_TTL`].
    pub fn issue(
        &self,
        user: &str,
        device: &str,
        session: &str,
        now: i64,
    ) -> Result<String, TokenError> {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.current.kid.clone());
        // "JWT" says nothing the server does not know: the only tokens it takes are its own.
        header.typ = None;
        let claims = Claims {
            sub: user.to_owned(),
            device: device.to_owned(),
            sid: session.to_owned(),
            iss: ISSUER.to_owned(),
            aud: AUDIENCE.to_owned(),
            exp: now + ACCESS_TTL,
        };
        encode(&header, &claims, &self.current.encoding).map_err(keys_error)
    }

    /// Checks a token and returns its claims.
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let header = decode_header(token).map_err(|e| TokenError::Invalid(e.to_string()))?;
        if header.alg != Algorithm::EdDSA {
            return Err(TokenError::Invalid(format!(
                "algorithm {:?} is not accepted",
                header.alg
            )));
        }
        let key = header
            .kid
            .as_deref()
            .and_then(|kid| self.verifying.get(kid))
            .ok_or(TokenError::UnknownKey)?;
        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.set_issuer(&[ISSUER, EARLIER.0]);
        validation.set_audience(&[AUDIENCE, EARLIER.1]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        // `sid` is required too: a token without it names no session that could be ended.
        validation.leeway = 30;
        decode::<Claims>(token, key, &validation)
            .map(|d| d.claims)
            .map_err(|e| TokenError::Invalid(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64)
    }

    fn b64(bytes: &[u8]) -> String {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }

    fn forged(header: &str, claims: &serde_json::Value, signature: &[u8]) -> String {
        format!(
            "{}.{}.{}",
            b64(header.as_bytes()),
            b64(claims.to_string().as_bytes()),
            b64(signature)
        )
    }

    fn claims() -> serde_json::Value {
        serde_json::json!({"sub": "u1", "device": "d1", "role": "director", "sid": "s1", "iss": ISSUER, "aud": AUDIENCE, "iat": now(), "exp": now() + 600})
    }

    #[test]
    fn a_token_we_issued_verifies_with_its_claims() {
        let keys = TokenKeys::generate().expect("keys");
        let token = keys.issue("u1", "d1", "s1", now()).expect("issue");
        let claims = keys.verify(&token).expect("valid");
        assert_eq!((claims.sub.as_str(), claims.device.as_str()), ("u1", "d1"));
    }

    #[test]
    fn a_token_carries_only_what_the_server_reads() {
        let keys = TokenKeys::generate().expect("keys");
        let id = "c9285f39-5e43-48e8-ad0c-df7db0772f38";
        let token = keys.issue(id, id, id, now()).expect("issue");
        assert!(token.len() <= 370, "{} bytes", token.len());
        let header = decode_header(&token).expect("header");
        assert_eq!((header.typ, header.kid.map(|k| k.len())), (None, Some(8)));
    }

    #[test]
    fn a_token_in_the_earlier_form_still_verifies_until_it_expires() {
        let keys = TokenKeys::generate().expect("keys");
        let mut header = Header::new(Algorithm::EdDSA);
        let public_digest = keys.verifying.keys().find(|k| k.len() == 16).cloned();
        header.kid = public_digest;
        let mut c = claims();
        c["iss"] = EARLIER.0.into();
        c["aud"] = EARLIER.1.into();
        let token = encode(&header, &c, &keys.current.encoding).expect("sign");
        let claims = keys.verify(&token).expect("valid");
        assert_eq!((claims.sub.as_str(), claims.device.as_str()), ("u1", "d1"));
    }

    #[test]
    fn alg_none_is_refused() {
        let keys = TokenKeys::generate().expect("keys");
        let kid = &keys.current.kid;
        let token = forged(
            &format!(r#"{{"alg":"none","typ":"JWT","kid":"{kid}"}}"#),
            &claims(),
            b"",
        );
        assert!(keys.verify(&token).is_err());
    }

    #[test]
    fn a_token_signed_by_another_key_with_our_kid_is_refused() {
        let keys = TokenKeys::generate().expect("keys");
        let other = TokenKeys::generate().expect("other");
        let token = other.issue("u1", "d1", "s1", now()).expect("issue");
        assert!(matches!(keys.verify(&token), Err(TokenError::UnknownKey)));
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        parts[0] = b64(format!(
            r#"{{"alg":"EdDSA","typ":"JWT","kid":"{}"}}"#,
            keys.current.kid
        )
        .as_bytes());
        assert!(matches!(
            keys.verify(&parts.join(".")),
            Err(TokenError::Invalid(_))
        ));
    }

    #[test]
    fn hmac_with_the_public_key_as_secret_is_refused() {
        let keys = TokenKeys::generate().expect("keys");
        let header = Header {
            alg: Algorithm::HS256,
            kid: Some(keys.current.kid.clone()),
            ..Header::default()
        };
        let secret = b"-----BEGIN PUBLIC KEY-----";
        let token = encode(&header, &claims(), &EncodingKey::from_secret(secret)).expect("hs256");
        assert!(matches!(keys.verify(&token), Err(TokenError::Invalid(_))));
    }

    #[test]
    fn expired_tokens_and_other_audiences_are_refused() {
        let keys = TokenKeys::generate().expect("keys");
        let old = keys.issue("u1", "d1", "s1", now() - 3600).expect("issue");
        assert!(keys.verify(&old).is_err());
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(keys.current.kid.clone());
        let mut c = claims();
        c["aud"] = "someone-else".into();
        let token = encode(&header, &c, &keys.current.encoding).expect("sign");
        assert!(keys.verify(&token).is_err());
        let mut c = claims();
        c.as_object_mut().expect("object").remove("exp");
        let token = encode(&header, &c, &keys.current.encoding).expect("sign");
        assert!(keys.verify(&token).is_err(), "exp is required");
    }

    #[test]
    fn keys_persist_across_restarts_and_tokens_stay_valid() {
        let dir = tempfile::tempdir().expect("dir");
        let token = TokenKeys::load_or_create(dir.path())
            .expect("keys")
            .issue("u", "d", "s", now())
            .expect("issue");
        let again = TokenKeys::load_or_create(dir.path()).expect("reloaded");
        assert!(again.verify(&token).is_ok());
    }
}
