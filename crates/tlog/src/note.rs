//! C2SP signed-note (Ed25519, type 0x01) and tlog-cosignature/v1 (type 0x04).
//!
//! Guarantees, each enforced in one function:
//! - [`Note::parse`]: a note is valid UTF-8 with no control character but `\n`, at most
//!   [`MAX_NOTE_BYTES`] and [`MAX_SIGNATURES`] lines, its text ends in a newline and is
//!   separated from the signatures by the *last* blank line, every signature line is
//!   `— NAME BASE64` with a well-formed name;
//! - [`Note::verify`]: signatures whose (name, key id) no verifier has are ignored (that is
//!   how keys rotate and witnesses are added); a known (name, key id) whose signature does
//!   not verify rejects the whole note (someone holds a forgery); a note with no verified
//!   signature is rejected;
//! - a cosignature's timestamp is at most 2^63 − 1, and is reported to the caller, who
//!   decides how old is too old.
//!
//! Key ids are hints for finding the key, never trusted as identity: the name, the id and
//! a verifying signature together are.

use aws_lc_rs::digest;
use aws_lc_rs::signature::{self, Ed25519KeyPair, KeyPair, UnparsedPublicKey};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

/// Largest note accepted.
pub const MAX_NOTE_BYTES: usize = 1 << 20;
/// Most signature lines accepted on one note (the spec asks for at least 16).
pub const MAX_SIGNATURES: usize = 100;

/// Signature type of plain Ed25519 note signatures.
const TYPE_ED25519: u8 = 0x01;
/// Signature type of tlog-cosignature/v1 (timestamped Ed25519).
const TYPE_COSIGNATURE_V1: u8 = 0x04;

/// Why a note, key or signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    /// Not a note (size, encoding, layout).
    #[error("malformed note: {0}")]
    Malformed(&'static str),
    /// Not a verifier key `name+hexid+base64(type||key)`.
    #[error("malformed verifier key: {0}")]
    BadKey(&'static str),
    /// A signature by a trusted key does not verify: the note is forged or altered.
    #[error("the signature of {0} does not verify: the note is forged or altered")]
    Forged(String),
    /// No trusted key signed the note.
    #[error("no trusted key signed this note")]
    Unverified,
    /// Signing failed.
    #[error("signing failed: {0}")]
    Sign(String),
}

/// What a verifier key verifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// A log (or any note signer): Ed25519 over the note text.
    Ed25519,
    /// A witness: tlog-cosignature/v1 over a checkpoint.
    Cosignature,
}

impl KeyKind {
    fn type_byte(self) -> u8 {
        match self {
            KeyKind::Ed25519 => TYPE_ED25519,
            KeyKind::Cosignature => TYPE_COSIGNATURE_V1,
        }
    }
}

/// A trusted public key: name, key id, kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verifier {
    name: String,
    key_id: u32,
    kind: KeyKind,
    public: [u8; 32],
}

/// The key id of (`name`, signature type, public key): the first four bytes of
/// SHA-256(name || `\n` || type || key).
fn key_id(name: &str, type_byte: u8, public: &[u8]) -> u32 {
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(name.as_bytes());
    ctx.update(b"\n");
    ctx.update(&[type_byte]);
    ctx.update(public);
    let d = ctx.finish();
    let mut id = [0u8; 4];
    id.copy_from_slice(d.as_ref().get(..4).unwrap_or(&[0; 4]));
    u32::from_be_bytes(id)
}

/// Whether `name` may name a key: non-empty, no whitespace, no `+`.
fn valid_name(name: &str) -> bool {
    !name.is_empty() && !name.contains('+') && !name.chars().any(char::is_whitespace)
}

impl Verifier {
    /// A verifier for `public` under `name`.
    pub fn new(name: &str, kind: KeyKind, public: [u8; 32]) -> Result<Self, NoteError> {
        if !valid_name(name) {
            return Err(NoteError::BadKey("the name is empty or has a space or '+'"));
        }
        Ok(Verifier {
            name: name.to_owned(),
            key_id: key_id(name, kind.type_byte(), &public),
            kind,
            public,
        })
    }

    /// Parses `name+hexid+base64(type||key)`, checking that the id matches the key.
    pub fn from_vkey(vkey: &str) -> Result<Self, NoteError> {
        let mut parts = vkey.splitn(3, '+');
        let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(NoteError::BadKey("expected name+id+key"));
        };
        if id.len() != 8 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(NoteError::BadKey("the key id is not 8 hex digits"));
        }
        let id = u32::from_str_radix(id, 16).map_err(|_| NoteError::BadKey("bad key id"))?;
        let key = B64
            .decode(key)
            .map_err(|_| NoteError::BadKey("the key is not base64"))?;
        let (kind, public) = match key.split_first() {
            Some((&TYPE_ED25519, k)) => (KeyKind::Ed25519, k),
            Some((&TYPE_COSIGNATURE_V1, k)) => (KeyKind::Cosignature, k),
            _ => return Err(NoteError::BadKey("unsupported signature type")),
        };
        let public: [u8; 32] = public
            .try_into()
            .map_err(|_| NoteError::BadKey("an Ed25519 key is 32 bytes"))?;
        let v = Verifier::new(name, kind, public)?;
        if v.key_id != id {
            return Err(NoteError::BadKey("the key id does not match the key"));
        }
        Ok(v)
    }

    /// `name+hexid+base64(type||key)`.
    pub fn vkey(&self) -> String {
        let mut key = vec![self.kind.type_byte()];
        key.extend_from_slice(&self.public);
        format!("{}+{:08x}+{}", self.name, self.key_id, B64.encode(key))
    }

    /// The key's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The key id.
    pub fn key_id(&self) -> u32 {
        self.key_id
    }

    /// What the key verifies.
    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    fn check(&self, text: &str, sig: &[u8]) -> Result<Option<u64>, ()> {
        let key = UnparsedPublicKey::new(&signature::ED25519, &self.public);
        match self.kind {
            KeyKind::Ed25519 => key
                .verify(text.as_bytes(), sig)
                .map(|_| None)
                .map_err(|_| ()),
            KeyKind::Cosignature => {
                let (time, sig) = sig.split_first_chunk::<8>().ok_or(())?;
                let time = u64::from_be_bytes(*time);
                if time > i64::MAX as u64 {
                    return Err(());
                }
                key.verify(&cosigned_message(time, text), sig)
                    .map(|_| Some(time))
                    .map_err(|_| ())
            }
        }
    }
}

/// The bytes a cosignature/v1 signs: `cosignature/v1\ntime T\n` + the checkpoint text.
pub fn cosigned_message(time: u64, text: &str) -> Vec<u8> {
    format!("cosignature/v1\ntime {time}\n{text}").into_bytes()
}

/// One signature line as it appears on a note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    /// Key name.
    pub name: String,
    /// Key id (the first four bytes of the blob).
    pub key_id: u32,
    /// The rest of the blob: the signature (for cosignatures, timestamp then signature).
    pub signature: Vec<u8>,
}

impl NoteSignature {
    /// The line, `— NAME BASE64\n`.
    pub fn line(&self) -> String {
        let mut blob = self.key_id.to_be_bytes().to_vec();
        blob.extend_from_slice(&self.signature);
        format!("\u{2014} {} {}\n", self.name, B64.encode(blob))
    }

    fn parse_line(line: &str) -> Result<Self, NoteError> {
        let rest = line.strip_prefix("\u{2014} ").ok_or(NoteError::Malformed(
            "a signature line does not start with '— '",
        ))?;
        let (name, blob) = rest
            .split_once(' ')
            .ok_or(NoteError::Malformed("a signature line has no signature"))?;
        if !valid_name(name) {
            return Err(NoteError::Malformed("a signature line has a bad key name"));
        }
        let blob = B64
            .decode(blob)
            .map_err(|_| NoteError::Malformed("a signature is not base64"))?;
        let (id, signature) = blob.split_first_chunk::<4>().ok_or(NoteError::Malformed(
            "a signature is shorter than its key id",
        ))?;
        Ok(NoteSignature {
            name: name.to_owned(),
            key_id: u32::from_be_bytes(*id),
            signature: signature.to_vec(),
        })
    }
}

/// A parsed (not yet verified) note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    text: String,
    signatures: Vec<NoteSignature>,
}

/// A signature [`Note::verify`] checked: who, and for a cosignature when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The verifier's name.
    pub name: String,
    /// The verifier's key id.
    pub key_id: u32,
    /// The cosignature's timestamp (seconds since the epoch), for cosignatures.
    pub time: Option<u64>,
}

impl Note {
    /// An unsigned note with `text` (which must end in a newline).
    pub fn new(text: &str) -> Result<Self, NoteError> {
        check_text(text)?;
        Ok(Note {
            text: text.to_owned(),
            signatures: Vec::new(),
        })
    }

    /// Parses a signed note.
    pub fn parse(bytes: &[u8]) -> Result<Self, NoteError> {
        if bytes.len() > MAX_NOTE_BYTES {
            return Err(NoteError::Malformed("the note is too large"));
        }
        let s = std::str::from_utf8(bytes).map_err(|_| NoteError::Malformed("not UTF-8"))?;
        if s.chars().any(|c| c.is_control() && c != '\n') {
            return Err(NoteError::Malformed(
                "a control character other than newline",
            ));
        }
        let split = s
            .rfind("\n\n")
            .ok_or(NoteError::Malformed("no blank line before the signatures"))?;
        let (text, sigs) = (
            s.get(..=split).unwrap_or_default(),
            s.get(split + 2..).unwrap_or_default(),
        );
        check_text(text)?;
        if !sigs.ends_with('\n') {
            return Err(NoteError::Malformed(
                "the signatures do not end in a newline",
            ));
        }
        let lines: Vec<&str> = sigs.trim_end_matches('\n').split('\n').collect();
        if lines.len() > MAX_SIGNATURES || sigs.contains("\n\n") {
            return Err(NoteError::Malformed(
                "too many signature lines, or a blank one",
            ));
        }
        let signatures = lines
            .into_iter()
            .map(NoteSignature::parse_line)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Note {
            text: text.to_owned(),
            signatures,
        })
    }

    /// The signed text.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The signature lines, as parsed.
    pub fn signatures(&self) -> &[NoteSignature] {
        &self.signatures
    }

    /// Adds a signature line (replacing one under the same name and key id).
    pub fn add_signature(&mut self, sig: NoteSignature) {
        self.signatures
            .retain(|s| !(s.name == sig.name && s.key_id == sig.key_id));
        self.signatures.push(sig);
    }

    /// The note as served: text, blank line, signature lines.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = self.text.clone();
        out.push('\n');
        for s in &self.signatures {
            out.push_str(&s.line());
        }
        out.into_bytes()
    }

    /// Checks the signatures of the keys in `verifiers`; see the module notes for what is
    /// ignored and what rejects.
    pub fn verify(&self, verifiers: &[Verifier]) -> Result<Vec<Verified>, NoteError> {
        let mut verified = Vec::new();
        for sig in &self.signatures {
            let Some(v) = verifiers
                .iter()
                .find(|v| v.name == sig.name && v.key_id == sig.key_id)
            else {
                continue;
            };
            let time = v
                .check(&self.text, &sig.signature)
                .map_err(|()| NoteError::Forged(format!("{}+{:08x}", v.name, v.key_id)))?;
            if !verified
                .iter()
                .any(|w: &Verified| w.name == v.name && w.key_id == v.key_id)
            {
                verified.push(Verified {
                    name: v.name.clone(),
                    key_id: v.key_id,
                    time,
                });
            }
        }
        if verified.is_empty() {
            return Err(NoteError::Unverified);
        }
        Ok(verified)
    }
}

/// A note's text is non-empty and ends in a newline (and has no control characters but
/// newlines, checked with the whole note).
fn check_text(text: &str) -> Result<(), NoteError> {
    if text.is_empty() || !text.ends_with('\n') {
        return Err(NoteError::Malformed("the text does not end in a newline"));
    }
    if text.chars().any(|c| c.is_control() && c != '\n') {
        return Err(NoteError::Malformed(
            "a control character other than newline",
        ));
    }
    Ok(())
}

/// Something that signs note texts under a name: the log's key (in the signer agent), a
/// witness's key.
pub trait NoteSigner {
    /// The public key as a verifier (name, id, kind).
    fn verifier(&self) -> &Verifier;
    /// An Ed25519 signature over `message`.
    fn sign_message(&self, message: &[u8]) -> Result<[u8; 64], NoteError>;
}

/// A signature line over `text`: plain for an [`KeyKind::Ed25519`] signer, a cosignature
/// at `time` for a [`KeyKind::Cosignature`] signer.
pub fn sign(text: &str, signer: &dyn NoteSigner, time: u64) -> Result<NoteSignature, NoteError> {
    check_text(text)?;
    let v = signer.verifier();
    let signature = match v.kind {
        KeyKind::Ed25519 => signer.sign_message(text.as_bytes())?.to_vec(),
        KeyKind::Cosignature => {
            if time > i64::MAX as u64 {
                return Err(NoteError::Sign(
                    "a cosignature time is at most 2^63-1".into(),
                ));
            }
            let mut blob = time.to_be_bytes().to_vec();
            blob.extend_from_slice(&signer.sign_message(&cosigned_message(time, text))?);
            blob
        }
    };
    Ok(NoteSignature {
        name: v.name.clone(),
        key_id: v.key_id,
        signature,
    })
}

/// An Ed25519 key held in memory (witnesses, tests). The log's own key lives in the
/// signer agent instead.
#[derive(Debug)]
pub struct Ed25519NoteKey {
    pair: Ed25519KeyPair,
    verifier: Verifier,
}

impl Ed25519NoteKey {
    /// The key with this 32-byte seed, named `name`.
    pub fn from_seed(name: &str, kind: KeyKind, seed: &[u8]) -> Result<Self, NoteError> {
        let pair = Ed25519KeyPair::from_seed_unchecked(seed)
            .map_err(|_| NoteError::BadKey("an Ed25519 seed is 32 bytes"))?;
        let public: [u8; 32] = pair
            .public_key()
            .as_ref()
            .try_into()
            .map_err(|_| NoteError::BadKey("an Ed25519 key is 32 bytes"))?;
        let verifier = Verifier::new(name, kind, public)?;
        Ok(Ed25519NoteKey { pair, verifier })
    }

    /// Parses Go's `PRIVATE+KEY+name+hexid+base64(0x01||seed)` (x/mod's format, which the
    /// test vectors use).
    pub fn from_private_key(skey: &str) -> Result<Self, NoteError> {
        let rest = skey
            .strip_prefix("PRIVATE+KEY+")
            .ok_or(NoteError::BadKey("expected PRIVATE+KEY+..."))?;
        let mut parts = rest.splitn(3, '+');
        let (Some(name), Some(id), Some(key)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(NoteError::BadKey("expected PRIVATE+KEY+name+id+key"));
        };
        let key = B64
            .decode(key)
            .map_err(|_| NoteError::BadKey("the key is not base64"))?;
        let Some((&TYPE_ED25519, seed)) = key.split_first() else {
            return Err(NoteError::BadKey("unsupported signature type"));
        };
        let k = Ed25519NoteKey::from_seed(name, KeyKind::Ed25519, seed)?;
        if format!("{:08x}", k.verifier.key_id) != id {
            return Err(NoteError::BadKey("the key id does not match the key"));
        }
        Ok(k)
    }
}

impl NoteSigner for Ed25519NoteKey {
    fn verifier(&self) -> &Verifier {
        &self.verifier
    }
    fn sign_message(&self, message: &[u8]) -> Result<[u8; 64], NoteError> {
        self.pair
            .sign(message)
            .as_ref()
            .try_into()
            .map_err(|_| NoteError::Sign("an Ed25519 signature is 64 bytes".into()))
    }
}
