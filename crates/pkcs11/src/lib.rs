//! Keys on PKCS#11 tokens (hardware security modules, smart cards, SoftHSM2), addressed by
//! `pkcs11:` URIs ([`uri`]), used through the `cryptoki` crate. A [`TokenSigner`] is a
//! [`Signer`] like a key file: the repository, the server and the signer agent never know
//! where a key lives.
//!
//! Guarantees:
//! - private keys are generated on the token as sensitive and never extractable; no key
//!   bytes ever enter this process — it holds a logged-in session;
//! - the PIN comes from the URI's `pin-source` file or the caller's prompt, never from the
//!   command line or the URI itself, and lives in a zeroizing buffer;
//! - every signature the token returns is verified with the public key before it is used:
//!   a token that signs with another key, or a URI that found the wrong one, fails here
//!   rather than in front of devices;
//! - Ed25519 (CKM_EDDSA), ECDSA P-256 (CKM_ECDSA over SHA-256, re-encoded as DER as TUF and
//!   securesystemslib expect) and RSA-PSS (CKM_SHA256_RSA_PKCS_PSS, MGF1-SHA256, 32-byte
//!   salt) — the three TUF schemes this repository signs with.
//!
//! Not guaranteed: that the token is genuine hardware — SoftHSM2 is a token too; what a
//! token is, is the operator's choice.

pub mod testing;
pub mod uri;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as CkError, RvError};
use cryptoki::mechanism::eddsa::{EddsaParams, EddsaSignatureScheme};
use cryptoki::mechanism::rsa::{PkcsMgfType, PkcsPssParams};
use cryptoki::mechanism::{Mechanism, MechanismType};
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::{AuthPin, Ulong};
use zeroize::Zeroizing;

use sealwright_crypto::signer::SignError;
use sealwright_crypto::{Algorithm, PublicKey, Signer};

pub use uri::{Pkcs11Uri, UriError};

/// DER of the Ed25519 curve OID, as CKA_EC_PARAMS carries it.
const ED25519_PARAMS: [u8; 5] = [0x06, 0x03, 0x2b, 0x65, 0x70];
/// DER of the P-256 curve OID (prime256v1).
const P256_PARAMS: [u8; 10] = [0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// SubjectPublicKeyInfo of a P-256 key, up to the 65-byte uncompressed point.
const P256_SPKI_PREFIX: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];
/// Largest PIN file read.
const MAX_PIN_FILE: u64 = 1024;

/// A token or key problem, in words for the person at the keyboard.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The URI is unusable.
    #[error(transparent)]
    Uri(#[from] UriError),
    /// The module, the token, the login or the key.
    #[error("{0}")]
    Token(String),
}

fn token_err(context: &str) -> impl Fn(CkError) -> TokenError + '_ {
    move |e| TokenError::Token(format!("{context}: {e}"))
}

/// Where the PIN comes from when the URI has no `pin-source`: a prompt (which may refuse).
pub type PinPrompt<'a> = &'a dyn Fn(&str) -> Result<Zeroizing<String>, String>;

/// One initialized context per module per process: PKCS#11 modules are initialized once,
/// and sessions of every key share it (and its login).
fn context(module: &Path) -> Result<Pkcs11, TokenError> {
    static CONTEXTS: OnceLock<Mutex<Vec<(PathBuf, Pkcs11)>>> = OnceLock::new();
    let mut contexts = CONTEXTS
        .get_or_init(|| Mutex::new(Vec::new()))
        .lock()
        .map_err(|_| TokenError::Token("a PKCS#11 context lock was poisoned".into()))?;
    if let Some((_, ctx)) = contexts.iter().find(|(p, _)| p == module) {
        return Ok(ctx.clone());
    }
    let ctx = Pkcs11::new(module).map_err(|e| {
        TokenError::Token(format!(
            "cannot load the PKCS#11 module {}: {e}",
            module.display()
        ))
    })?;
    match ctx.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => return Err(token_err("initializing the PKCS#11 module")(e)),
    }
    contexts.push((module.to_path_buf(), ctx.clone()));
    Ok(ctx)
}

/// The slot of the one token the URI names.
fn find_slot(ctx: &Pkcs11, uri: &Pkcs11Uri) -> Result<Slot, TokenError> {
    let mut found = Vec::new();
    for slot in ctx
        .get_slots_with_token()
        .map_err(token_err("listing tokens"))?
    {
        if uri.slot_id.is_some_and(|id| id != slot.id()) {
            continue;
        }
        let info = ctx
            .get_token_info(slot)
            .map_err(token_err("reading a token"))?;
        if uri
            .token
            .as_deref()
            .is_some_and(|t| t != info.label().trim_end())
            || uri
                .serial
                .as_deref()
                .is_some_and(|s| s != info.serial_number().trim_end())
        {
            continue;
        }
        found.push(slot);
    }
    match found.as_slice() {
        [slot] => Ok(*slot),
        [] => Err(TokenError::Token(format!(
            "no token matches {uri} (is it plugged in, and is token= its label?)"
        ))),
        _ => Err(TokenError::Token(format!(
            "{} tokens match {uri}: name one with token=, serial= or slot-id=",
            found.len()
        ))),
    }
}

/// The PIN: the `pin-source` file (first line), or the prompt.
fn read_pin(uri: &Pkcs11Uri, prompt: PinPrompt<'_>) -> Result<AuthPin, TokenError> {
    let pin = match &uri.pin_source {
        Some(path) => {
            let bytes = sealwright_fs::read_secret(path, MAX_PIN_FILE).map_err(|e| {
                TokenError::Token(format!("reading the PIN file {}: {e}", path.display()))
            })?;
            let text = Zeroizing::new(String::from_utf8_lossy(&bytes).into_owned());
            Zeroizing::new(text.lines().next().unwrap_or_default().to_owned())
        }
        None => prompt(&format!(
            "PIN of token {}",
            uri.token.as_deref().unwrap_or("(unnamed)")
        ))
        .map_err(TokenError::Token)?,
    };
    Ok(AuthPin::from(pin.as_str()))
}

/// Opens a session on the URI's token, logged in as its user.
fn logged_in_session(
    uri: &Pkcs11Uri,
    prompt: PinPrompt<'_>,
    read_write: bool,
) -> Result<Session, TokenError> {
    let module = uri.module_path.as_deref().ok_or_else(|| {
        TokenError::Token(format!(
            "{uri} names no module: add ?module-path=… (SoftHSM2: /usr/lib/softhsm/libsofthsm2.so)"
        ))
    })?;
    let ctx = context(module)?;
    let slot = find_slot(&ctx, uri)?;
    let session = if read_write {
        ctx.open_rw_session(slot)
    } else {
        ctx.open_ro_session(slot)
    }
    .map_err(token_err("opening a session"))?;
    match session.login(UserType::User, Some(&read_pin(uri, prompt)?)) {
        Ok(()) | Err(CkError::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(session),
        Err(CkError::Pkcs11(RvError::PinIncorrect, _)) => Err(TokenError::Token(format!(
            "the token refused the PIN for {uri}"
        ))),
        Err(e) => Err(token_err("logging in to the token")(e)),
    }
}

/// The template that finds the URI's key objects of `class`.
fn template(uri: &Pkcs11Uri, class: ObjectClass) -> Vec<Attribute> {
    let mut t = vec![Attribute::Class(class)];
    if let Some(label) = &uri.object {
        t.push(Attribute::Label(label.as_bytes().to_vec()));
    }
    if let Some(id) = &uri.id {
        t.push(Attribute::Id(id.clone()));
    }
    t
}

/// The one object of `class` the URI names.
fn find_one(
    session: &Session,
    uri: &Pkcs11Uri,
    class: ObjectClass,
) -> Result<ObjectHandle, TokenError> {
    let found = session
        .find_objects(&template(uri, class))
        .map_err(token_err("searching the token"))?;
    let class = if class == ObjectClass::PRIVATE_KEY {
        "private"
    } else {
        "public"
    };
    match found.as_slice() {
        [one] => Ok(*one),
        [] => Err(TokenError::Token(format!(
            "no {class} key on the token matches {uri}"
        ))),
        _ => Err(TokenError::Token(format!(
            "{} {class} keys match {uri}: add id= to name one",
            found.len()
        ))),
    }
}

/// A DER length.
fn der_length(len: usize) -> Vec<u8> {
    match len {
        0..=0x7f => vec![len as u8],
        0x80..=0xff => vec![0x81, len as u8],
        _ => vec![0x82, (len >> 8) as u8, len as u8],
    }
}

/// A DER TLV.
fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = vec![tag];
    out.extend(der_length(content.len()));
    out.extend_from_slice(content);
    out
}

/// A DER INTEGER of the unsigned big-endian `bytes`.
fn der_uint(bytes: &[u8]) -> Vec<u8> {
    let start = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    let trimmed = match bytes.get(start..) {
        Some(rest) if !rest.is_empty() => rest,
        _ => &[0u8][..],
    };
    let mut content = Vec::with_capacity(trimmed.len() + 1);
    if trimmed.first().is_some_and(|b| b & 0x80 != 0) {
        content.push(0);
    }
    content.extend_from_slice(trimmed);
    der(0x02, &content)
}

/// The contents of the DER OCTET STRING CKA_EC_POINT holds (some modules give it bare).
fn ec_point(raw: &[u8], len: usize) -> Option<&[u8]> {
    match raw {
        [0x04, l, rest @ ..] if usize::from(*l) == len && rest.len() == len => Some(rest),
        bare if bare.len() == len => Some(bare),
        _ => None,
    }
}

/// The public key of the URI's key, and the algorithm it signs with.
fn read_public_key(
    session: &Session,
    uri: &Pkcs11Uri,
) -> Result<(PublicKey, Algorithm), TokenError> {
    let public = find_one(session, uri, ObjectClass::PUBLIC_KEY)?;
    let attributes = session
        .get_attributes(
            public,
            &[
                AttributeType::KeyType,
                AttributeType::EcParams,
                AttributeType::EcPoint,
                AttributeType::Modulus,
                AttributeType::PublicExponent,
            ],
        )
        .map_err(token_err("reading the public key"))?;
    let (mut key_type, mut params, mut point, mut modulus, mut exponent) =
        (None, None, None, None, None);
    for a in attributes {
        match a {
            Attribute::KeyType(t) => key_type = Some(t),
            Attribute::EcParams(p) => params = Some(p),
            Attribute::EcPoint(p) => point = Some(p),
            Attribute::Modulus(m) => modulus = Some(m),
            Attribute::PublicExponent(e) => exponent = Some(e),
            _ => {}
        }
    }
    let unusable = |why: &str| TokenError::Token(format!("the key at {uri}: {why}"));
    let key = match key_type {
        Some(KeyType::EC_EDWARDS) => {
            if params.as_deref() != Some(&ED25519_PARAMS[..]) {
                return Err(unusable("an Edwards curve other than Ed25519"));
            }
            let raw = point
                .as_deref()
                .and_then(|p| ec_point(p, 32))
                .ok_or_else(|| unusable("no 32-byte Ed25519 point"))?;
            (
                PublicKey::new(Algorithm::Ed25519, hex::encode(raw)),
                Algorithm::Ed25519,
            )
        }
        Some(KeyType::EC) => {
            if params.as_deref() != Some(&P256_PARAMS[..]) {
                return Err(unusable("an elliptic curve other than P-256"));
            }
            let raw = point
                .as_deref()
                .and_then(|p| ec_point(p, 65))
                .filter(|p| p.first() == Some(&0x04))
                .ok_or_else(|| unusable("no uncompressed P-256 point"))?;
            let mut spki = P256_SPKI_PREFIX.to_vec();
            spki.extend_from_slice(raw);
            let key = PublicKey::from_spki_der(Algorithm::EcdsaP256Sha256, &spki)
                .map_err(|e| unusable(&e.to_string()))?;
            (key, Algorithm::EcdsaP256Sha256)
        }
        Some(KeyType::RSA) => {
            let (Some(n), Some(e)) = (modulus, exponent) else {
                return Err(unusable("no RSA modulus and exponent"));
            };
            let rsa_key = der(0x30, &[der_uint(&n), der_uint(&e)].concat());
            let mut bits = vec![0u8];
            bits.extend(rsa_key);
            let algorithm_id = der(
                0x30,
                &[
                    &[
                        0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01,
                    ][..],
                    &[0x05, 0x00][..],
                ]
                .concat(),
            );
            let spki = der(0x30, &[algorithm_id, der(0x03, &bits)].concat());
            let key = PublicKey::from_spki_der(Algorithm::RsaPssSha256, &spki)
                .map_err(|e| unusable(&e.to_string()))?;
            (key, Algorithm::RsaPssSha256)
        }
        other => {
            return Err(unusable(&format!(
                "key type {other:?} is not Ed25519, ECDSA P-256 or RSA"
            )))
        }
    };
    Ok(key)
}

/// A key on a token, signing through a logged-in session.
pub struct TokenSigner {
    uri: Pkcs11Uri,
    session: Mutex<Session>,
    private: ObjectHandle,
    public: PublicKey,
    keyid: String,
    algorithm: Algorithm,
}

impl std::fmt::Debug for TokenSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSigner")
            .field("uri", &self.uri.display())
            .field("keyid", &self.keyid)
            .finish_non_exhaustive()
    }
}

impl TokenSigner {
    /// Opens the key `uri` names (its PIN from `pin-source` or `prompt`).
    pub fn open(uri: &Pkcs11Uri, prompt: PinPrompt<'_>) -> Result<Self, TokenError> {
        let session = logged_in_session(uri, prompt, false)?;
        Self::on(session, uri)
    }

    fn on(session: Session, uri: &Pkcs11Uri) -> Result<Self, TokenError> {
        let private = find_one(&session, uri, ObjectClass::PRIVATE_KEY)?;
        let (public, algorithm) = read_public_key(&session, uri)?;
        Ok(TokenSigner {
            uri: uri.clone(),
            keyid: public.keyid(),
            session: Mutex::new(session),
            private,
            public,
            algorithm,
        })
    }

    /// Generates a key pair on the token under the URI's `object` label (and `id`, or a
    /// random one): the private half sensitive and never extractable. Returns the signer
    /// and the URI that names exactly this key (with its id).
    pub fn generate(
        uri: &Pkcs11Uri,
        algorithm: Algorithm,
        prompt: PinPrompt<'_>,
    ) -> Result<(Self, Pkcs11Uri), TokenError> {
        let label = uri.object.clone().ok_or_else(|| {
            TokenError::Token("a new key needs a label: give object=NAME in the URI".into())
        })?;
        let session = logged_in_session(uri, prompt, true)?;
        let mut exact = uri.clone();
        if exact.id.is_none() {
            let mut id = [0u8; 8];
            sealwright_crypto::random::fill(&mut id)
                .map_err(|e| TokenError::Token(format!("no randomness for a key id: {e}")))?;
            exact.id = Some(id.to_vec());
        }
        // By the label (and id) asked for: a second key under the same label would make
        // every URI naming it by label ambiguous.
        if !session
            .find_objects(&template(uri, ObjectClass::PRIVATE_KEY))
            .map_err(token_err("searching the token"))?
            .is_empty()
        {
            return Err(TokenError::Token(format!(
                "the token already holds a key {exact}: choose another object= label"
            )));
        }
        let common = |public: bool| {
            vec![
                Attribute::Token(true),
                Attribute::Label(label.as_bytes().to_vec()),
                Attribute::Id(exact.id.clone().unwrap_or_default()),
                if public {
                    Attribute::Verify(true)
                } else {
                    Attribute::Sign(true)
                },
            ]
        };
        let mut public_template = common(true);
        let mut private_template = common(false);
        private_template.extend([
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
        ]);
        let mechanism = match algorithm {
            Algorithm::Ed25519 => {
                public_template.push(Attribute::EcParams(ED25519_PARAMS.to_vec()));
                Mechanism::EccEdwardsKeyPairGen
            }
            Algorithm::EcdsaP256Sha256 => {
                public_template.push(Attribute::EcParams(P256_PARAMS.to_vec()));
                Mechanism::EccKeyPairGen
            }
            Algorithm::RsaPssSha256 => {
                public_template.extend([
                    Attribute::ModulusBits(Ulong::new(3072)),
                    Attribute::PublicExponent(vec![0x01, 0x00, 0x01]),
                ]);
                Mechanism::RsaPkcsKeyPairGen
            }
        };
        session
            .generate_key_pair(&mechanism, &public_template, &private_template)
            .map_err(token_err("generating the key on the token"))?;
        let signer = Self::on(session, &exact)?;
        Ok((signer, exact))
    }

    /// The URI naming this key.
    pub fn uri(&self) -> &Pkcs11Uri {
        &self.uri
    }

    fn sign_on_token(&self, msg: &[u8]) -> Result<Vec<u8>, String> {
        let session = self
            .session
            .lock()
            .map_err(|_| "the session lock was poisoned".to_owned())?;
        match self.algorithm {
            Algorithm::Ed25519 => session
                .sign(
                    &Mechanism::Eddsa(EddsaParams::new(EddsaSignatureScheme::Pure)),
                    self.private,
                    msg,
                )
                .map_err(|e| e.to_string()),
            Algorithm::EcdsaP256Sha256 => {
                let digest = sealwright_crypto::digest::sha256(msg);
                let raw = session
                    .sign(&Mechanism::Ecdsa, self.private, &digest)
                    .map_err(|e| e.to_string())?;
                if raw.len() != 64 {
                    return Err(format!("an ECDSA signature of {} bytes", raw.len()));
                }
                let (r, s) = raw.split_at(32);
                Ok(der(0x30, &[der_uint(r), der_uint(s)].concat()))
            }
            Algorithm::RsaPssSha256 => session
                .sign(
                    &Mechanism::Sha256RsaPkcsPss(PkcsPssParams {
                        hash_alg: MechanismType::SHA256,
                        mgf: PkcsMgfType::MGF1_SHA256,
                        s_len: Ulong::new(32),
                    }),
                    self.private,
                    msg,
                )
                .map_err(|e| e.to_string()),
        }
    }
}

impl Signer for TokenSigner {
    fn public_key(&self) -> &PublicKey {
        &self.public
    }

    fn keyid(&self) -> &str {
        &self.keyid
    }

    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, SignError> {
        let fail = |reason: String| SignError::Backend {
            keyid: self.keyid.clone(),
            reason,
        };
        let signature = self
            .sign_on_token(msg)
            .map_err(|e| fail(format!("the token ({}) refused: {e}", self.uri)))?;
        self.public.verify(msg, &signature).map_err(|e| {
            fail(format!(
                "the token's signature does not verify with the key {}: {e}",
                self.uri
            ))
        })?;
        Ok(signature)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn der_integers_are_minimal_and_positive() {
        assert_eq!(der_uint(&[0, 0, 1]), vec![0x02, 0x01, 0x01]);
        assert_eq!(der_uint(&[0x80]), vec![0x02, 0x02, 0x00, 0x80]);
        assert_eq!(der_uint(&[0, 0]), vec![0x02, 0x01, 0x00]);
        assert_eq!(der_length(300), vec![0x82, 0x01, 0x2c]);
    }
}
