//! Keys and sealing: the app key, the subkeys derived from it, and the sealed record format.
//!
//! From the app's 32-byte key and the store's random 32-byte salt, HKDF-SHA256 (written out
//! with HMAC: extract with the salt, expand one block per label) derives three independent
//! subkeys: one encrypts records, one hashes row keys into row ids, one keys the row digest.
//! The per-store salt makes two stores under the same app key (a store wiped and made anew,
//! say) share nothing: their row ids differ and a row of one does not open in the other.
//!
//! A sealed record is `nonce (24 bytes) || XChaCha20-Poly1305 ciphertext and tag`, with a
//! fresh random nonce for every write. Random 192-bit nonces never repeat in practice, which
//! is why XChaCha rather than ChaCha's 96-bit nonces.

use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

/// Length of the store's random salt.
pub(super) const SALT_LEN: usize = 32;
/// Length of a row id (a full HMAC-SHA256 output).
pub(super) const ID_LEN: usize = 32;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;

/// The 32-byte key that opens a store, as the platform keystore gives it.
///
/// `Debug` prints nothing of it, and it is overwritten with zeros when dropped (best effort:
/// copies the compiler made on the way are out of reach without `unsafe`).
pub struct StoreKey([u8; 32]);

impl StoreKey {
    /// Wraps the key bytes.
    pub fn new(bytes: [u8; 32]) -> Self {
        StoreKey(bytes)
    }
}

impl std::fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StoreKey(..)")
    }
}

impl Drop for StoreKey {
    fn drop(&mut self) {
        wipe(&mut self.0);
    }
}

/// Overwrites a secret; `black_box` keeps the write of a value about to die from being elided.
fn wipe(bytes: &mut [u8]) {
    bytes.fill(0);
    std::hint::black_box(bytes);
}

/// HMAC-SHA256 under a 32-byte key. HMAC pads keys shorter than its 64-byte block with zeros,
/// so padding here gives the same MAC through the infallible constructor.
fn mac(key: &[u8; 32]) -> Hmac<Sha256> {
    let mut block = [0u8; 64];
    block[..32].copy_from_slice(key);
    let m = <Hmac<Sha256> as KeyInit>::new(&block.into());
    wipe(&mut block);
    m
}

fn hmac(key: &[u8; 32], parts: &[&[u8]]) -> [u8; 32] {
    let mut m = mac(key);
    for part in parts {
        m.update(part);
    }
    m.finalize().into_bytes().into()
}

/// A value derived from the app key alone, stored in clear in the header. It tells a wrong key
/// (fingerprint and key check both disagree) from a damaged header (only one disagrees). It
/// reveals nothing of a 256-bit key.
pub(super) fn fingerprint(key: &StoreKey) -> [u8; 32] {
    hmac(&key.0, &[b"homevisit/device-store/fingerprint"])
}

/// A new random salt for a new store.
pub(super) fn new_salt() -> [u8; SALT_LEN] {
    let mut salt = [0u8; SALT_LEN];
    rand::rngs::OsRng.fill_bytes(&mut salt);
    salt
}

/// What a sealed record is for; part of its associated data, so a record cannot stand in for
/// a record of another kind.
#[derive(Clone, Copy)]
pub(super) enum Role {
    /// The header's key check.
    Check = 1,
    /// The header's row digest.
    Digest = 2,
    /// A row's plaintext key.
    Key = 3,
    /// A row's value.
    Value = 4,
}

/// The subkeys of one store.
pub(super) struct Keys {
    cipher: XChaCha20Poly1305,
    id_key: [u8; 32],
    digest_key: [u8; 32],
}

impl Drop for Keys {
    fn drop(&mut self) {
        // The cipher zeroizes its own key on drop.
        wipe(&mut self.id_key);
        wipe(&mut self.digest_key);
    }
}

impl Keys {
    /// Derives the store's subkeys (HKDF-SHA256: extract with the salt, expand per label).
    pub(super) fn derive(key: &StoreKey, salt: &[u8; SALT_LEN]) -> Self {
        let mut prk = hmac(salt, &[&key.0]);
        let mut value_key = hmac(&prk, &[b"homevisit/device-store/v1/value-key", &[1]]);
        let id_key = hmac(&prk, &[b"homevisit/device-store/v1/id-key", &[1]]);
        let digest_key = hmac(&prk, &[b"homevisit/device-store/v1/digest-key", &[1]]);
        let cipher = XChaCha20Poly1305::new(&value_key.into());
        wipe(&mut prk);
        wipe(&mut value_key);
        Keys {
            cipher,
            id_key,
            digest_key,
        }
    }

    /// The row id of `key` in namespace `ns`: a keyed hash, so the file shows no key.
    pub(super) fn row_id(&self, ns: u8, key: &[u8]) -> [u8; ID_LEN] {
        hmac(&self.id_key, &[&[ns], key])
    }

    /// The term a row contributes to the store's digest (the XOR of every row's term).
    pub(super) fn digest_term(&self, ns: u8, id: &[u8]) -> [u8; 32] {
        hmac(&self.digest_key, &[&[ns], id])
    }

    /// Seals `plain` for `role` at row (`ns`, `id`) under a fresh random nonce.
    pub(super) fn seal(&self, role: Role, ns: u8, id: &[u8], plain: &[u8]) -> Option<Vec<u8>> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rngs::OsRng.fill_bytes(&mut nonce);
        let aad = aad(role, ns, id);
        let sealed = self
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plain,
                    aad: &aad,
                },
            )
            .ok()?;
        let mut out = Vec::with_capacity(NONCE_LEN + sealed.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Some(out)
    }

    /// Opens a record sealed for `role` at row (`ns`, `id`); `None` if it fails authentication
    /// (another key, damage, or a record moved from elsewhere).
    pub(super) fn open(&self, role: Role, ns: u8, id: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < NONCE_LEN + TAG_LEN {
            return None;
        }
        let (nonce, body) = sealed.split_at(NONCE_LEN);
        let aad = aad(role, ns, id);
        self.cipher
            .decrypt(
                XNonce::from_slice(nonce),
                Payload {
                    msg: body,
                    aad: &aad,
                },
            )
            .ok()
    }
}

/// Associated data: format, role, namespace and row id.
fn aad(role: Role, ns: u8, id: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(4 + id.len());
    aad.extend_from_slice(b"hv1");
    aad.push(role as u8);
    aad.push(ns);
    aad.extend_from_slice(id);
    aad
}
