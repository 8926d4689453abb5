//! TUF 1.0.34 metadata: the signed envelope and the four top-level role types.
//!
//! Guarantees:
//! - every object keeps the fields it does not know (`extra`), so parse → re-serialise
//!   preserves them and signatures made by other implementations still verify;
//! - signatures are verified over the canonical JSON of the `signed` object **as received**
//!   ([`parse_envelope`]), never over a re-serialisation of our typed view of it;
//! - parsing is strict: a size cap before anything else, duplicate object keys refused,
//!   `_type` must name the expected role, `spec_version` must be 1.x or 1.x.y, `expires`
//!   must be `YYYY-MM-DDTHH:MM:SSZ`, versions and thresholds at least 1.

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::de::{self, DeserializeOwned, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use sealwright_crypto::canonical::{is_canonical, to_canonical_json, to_canonical_json_from};
use sealwright_crypto::digest;
use sealwright_crypto::signer::Signer;
use sealwright_crypto::PublicKey;

use crate::known_fields::deserialize_known_fields;

/// The TUF specification version written into new metadata.
pub const SPEC_VERSION: &str = "1.0.34";

/// Why metadata was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MetadataError {
    /// Larger than the cap for this role.
    #[error("metadata is larger than the {0}-byte limit")]
    TooLarge(usize),
    /// Not JSON, or JSON of the wrong shape.
    #[error("malformed metadata: {0}")]
    Malformed(String),
    /// `_type` names another role.
    #[error("expected _type {expected:?}, found {found:?}")]
    WrongType {
        /// What we asked for.
        expected: &'static str,
        /// What the document says.
        found: String,
    },
    /// Unsupported `spec_version`.
    #[error("unsupported spec_version {0:?} (need 1.x or 1.x.y)")]
    SpecVersion(String),
    /// A value outside its allowed range.
    #[error("invalid metadata: {0}")]
    Invalid(String),
    /// Canonical encoding failed (a float somewhere).
    #[error("cannot canonicalise: {0}")]
    Canonical(String),
    /// Signing failed.
    #[error("signing failed: {0}")]
    Sign(String),
}

fn malformed(e: impl fmt::Display) -> MetadataError {
    MetadataError::Malformed(e.to_string())
}

/// Implemented by the four role types.
pub trait RoleType: Serialize + DeserializeOwned + Clone {
    /// The `_type` value.
    const TYPE: &'static str;
    /// `_type` as read.
    fn type_name(&self) -> &str;
    /// `spec_version` as read.
    fn spec_version(&self) -> &str;
    /// `version`.
    fn version(&self) -> u64;
    /// `expires`.
    fn expires(&self) -> DateTime<Utc>;
    /// Sets `expires`.
    fn set_expires(&mut self, expires: DateTime<Utc>);
    /// Checks invariants serde cannot express.
    fn validate(&self) -> Result<(), MetadataError>;
}

/// One signature in the envelope.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Signature {
    /// Key id, as given (never recomputed).
    pub keyid: String,
    /// Hex-encoded signature.
    pub sig: String,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

deserialize_known_fields!(Signature {
    keyid: "keyid" => required String,
    sig: "sig" => required String,
});

/// Signed metadata of role type `T`.
///
/// When parsed from bytes it also remembers the canonical JSON of the `signed` object
/// exactly as received ([`Metadata::received_canonical`]): that, not a re-serialisation of
/// `signed`, is what the signatures of other implementations cover.
#[derive(Clone, Debug)]
pub struct Metadata<T> {
    /// The signed role.
    pub signed: T,
    /// Signatures over the canonical JSON of `signed`.
    pub signatures: Vec<Signature>,
    /// Canonical JSON of the received `signed` object (None when built in memory).
    received_canonical: Option<Vec<u8>>,
}

/// Equality is over `signed` and `signatures`; where the value came from does not matter.
impl<T: PartialEq> PartialEq for Metadata<T> {
    fn eq(&self, other: &Self) -> bool {
        self.signed == other.signed && self.signatures == other.signatures
    }
}

/// The envelope as received: the `signed` object, its canonical bytes, the signatures.
#[derive(Debug)]
pub struct Envelope {
    signed: SignedText,
    /// Canonical JSON of `signed` (what the signatures cover).
    pub canonical: Vec<u8>,
    /// The signatures.
    pub signatures: Vec<Signature>,
}

/// Where the typed view of `signed` is read from.
#[derive(Debug)]
enum SignedText {
    /// The general path: the parsed tree.
    Tree(Value),
    /// The file was already canonical JSON, so `canonical` is `signed` exactly as received.
    Canonical,
}

/// Parses `bytes` as a metadata envelope, refusing oversize input and duplicate keys.
///
/// Files already in canonical JSON (what Sealwright writes, [`Metadata::to_bytes`]) take a
/// fast path: their `signed` bytes are the signed message as they are, so they are neither
/// parsed into a tree nor encoded again. Anything else — pretty-printed files from other
/// tools, anything [`is_canonical`] cannot prove — takes the general path, and every error
/// is reported by the general path, so both read the same bytes the same way.
pub fn parse_envelope(bytes: &[u8], max_len: usize) -> Result<Envelope, MetadataError> {
    if bytes.len() > max_len {
        return Err(MetadataError::TooLarge(max_len));
    }
    if let Some(env) = envelope_already_canonical(bytes) {
        return Ok(env);
    }
    let value = parse_strict_json(bytes)?;
    envelope_from_value(value)
}

/// The envelope of a file that is canonical JSON as a whole, or `None` (take the general
/// path) for any other file.
fn envelope_already_canonical(bytes: &[u8]) -> Option<Envelope> {
    #[derive(Deserialize)]
    struct Parts<'a> {
        #[serde(borrow)]
        signed: &'a serde_json::value::RawValue,
        signatures: Vec<Signature>,
    }
    if !is_canonical(bytes) {
        return None;
    }
    // A canonical text has no duplicate keys and no floats: what the strict parser refuses
    // is not here, so serde's own reading of it is the strict one.
    let parts: Parts<'_> = serde_json::from_slice(bytes).ok()?;
    let signed = parts.signed.get().as_bytes();
    if !signed.starts_with(b"{") || check_signature_keyids(&parts.signatures).is_err() {
        return None;
    }
    Some(Envelope {
        signed: SignedText::Canonical,
        canonical: signed.to_vec(),
        signatures: parts.signatures,
    })
}

fn envelope_from_value(value: Value) -> Result<Envelope, MetadataError> {
    let Value::Object(mut top) = value else {
        return Err(malformed("metadata is not a JSON object"));
    };
    let signed = top
        .remove("signed")
        .ok_or_else(|| malformed("missing \"signed\""))?;
    let signatures = top
        .remove("signatures")
        .ok_or_else(|| malformed("missing \"signatures\""))?;
    if !signed.is_object() {
        return Err(malformed("\"signed\" is not an object"));
    }
    let signatures: Vec<Signature> =
        serde_json::from_value(signatures).map_err(|e| malformed(format!("signatures: {e}")))?;
    check_signature_keyids(&signatures)?;
    let canonical =
        to_canonical_json(&signed).map_err(|e| MetadataError::Canonical(e.to_string()))?;
    Ok(Envelope {
        signed: SignedText::Tree(signed),
        canonical,
        signatures,
    })
}

/// Two signatures under one keyid are refused outright (python-tuf does the same): which
/// one to believe is not a question a verifier should answer.
fn check_signature_keyids(signatures: &[Signature]) -> Result<(), MetadataError> {
    let mut ids = std::collections::BTreeSet::new();
    match signatures.iter().find(|s| !ids.insert(s.keyid.as_str())) {
        Some(dup) => Err(malformed(format!(
            "signatures: keyid {} appears more than once",
            dup.keyid
        ))),
        None => Ok(()),
    }
}

impl<T: RoleType> Metadata<T> {
    /// Unsigned metadata for `signed`.
    pub fn new(signed: T) -> Self {
        Metadata {
            signed,
            signatures: Vec::new(),
            received_canonical: None,
        }
    }

    /// Canonical JSON of the `signed` object exactly as it was received, if this metadata
    /// was parsed (not built in memory). Stale once `signed` is modified: it describes the
    /// bytes that arrived, which is what their signatures must be checked against.
    pub fn received_canonical(&self) -> Option<&[u8]> {
        self.received_canonical.as_deref()
    }

    /// Parses and validates metadata of type `T` (signatures are not checked here; the trust
    /// engine does that against the canonical bytes of the received `signed` object).
    pub fn from_bytes(bytes: &[u8], max_len: usize) -> Result<Self, MetadataError> {
        let env = parse_envelope(bytes, max_len)?;
        Self::from_envelope(env)
    }

    /// Typed view of a parsed envelope.
    pub fn from_envelope(env: Envelope) -> Result<Self, MetadataError> {
        let signed = match env.signed {
            SignedText::Tree(value) => parse_signed::<T>(value)?,
            SignedText::Canonical => parse_signed_canonical::<T>(&env.canonical)?,
        };
        Ok(Metadata {
            signed,
            signatures: env.signatures,
            received_canonical: Some(env.canonical),
        })
    }

    /// From an already parsed JSON value (e.g. a pending offline request).
    pub fn from_value(value: Value) -> Result<Self, MetadataError> {
        Self::from_envelope(envelope_from_value(value)?)
    }

    /// `{"signatures": [...], "signed": {...}}` as a JSON value.
    pub fn to_value(&self) -> Result<Value, MetadataError> {
        let signed = serde_json::to_value(&self.signed).map_err(malformed)?;
        let signatures = serde_json::to_value(&self.signatures).map_err(malformed)?;
        Ok(serde_json::json!({ "signatures": signatures, "signed": signed }))
    }

    /// The file bytes we publish (see [`Self::file_bytes`]).
    pub fn to_bytes(&self) -> Result<Vec<u8>, MetadataError> {
        self.file_bytes(&self.canonical_signed()?)
    }

    /// The file bytes we publish, given `canonical`, the canonical JSON of `signed` (what
    /// was signed; callers that just signed have it). Canonical JSON as a whole, so readers
    /// take [`parse_envelope`]'s fast path — unless a string holds a control character
    /// (the newlines of a PEM key): canonical JSON writes those raw, which no strict JSON
    /// parser accepts, so such files are compact JSON (sorted keys, escaped controls).
    pub fn file_bytes(&self, canonical: &[u8]) -> Result<Vec<u8>, MetadataError> {
        if canonical.iter().any(|b| *b < 0x20) {
            #[derive(Serialize)]
            struct Envelope<'a, T> {
                signatures: &'a [Signature],
                signed: &'a T,
            }
            return serde_json::to_vec(&Envelope {
                signatures: &self.signatures,
                signed: &self.signed,
            })
            .map_err(malformed);
        }
        let signatures = to_canonical_json_from(&self.signatures)
            .map_err(|e| MetadataError::Canonical(e.to_string()))?;
        let mut out = Vec::with_capacity(canonical.len() + signatures.len() + 32);
        out.extend_from_slice(b"{\"signatures\":");
        out.extend_from_slice(&signatures);
        out.extend_from_slice(b",\"signed\":");
        out.extend_from_slice(canonical);
        out.push(b'}');
        Ok(out)
    }

    /// Canonical JSON of `signed` (what a signature covers), encoded straight from the
    /// typed role.
    pub fn canonical_signed(&self) -> Result<Vec<u8>, MetadataError> {
        to_canonical_json_from(&self.signed).map_err(|e| MetadataError::Canonical(e.to_string()))
    }

    /// Adds (or replaces) a signature by `signer` over `canonical`, which must be
    /// [`Self::canonical_signed`] (callers signing with several keys encode once).
    pub fn sign_canonical(
        &mut self,
        canonical: &[u8],
        signer: &dyn Signer,
    ) -> Result<(), MetadataError> {
        let sig = signer
            .sign(canonical)
            .map_err(|e| MetadataError::Sign(e.to_string()))?;
        self.signatures.retain(|s| s.keyid != signer.keyid());
        self.signatures.push(Signature {
            keyid: signer.keyid().to_owned(),
            sig: hex::encode(sig),
            extra: BTreeMap::new(),
        });
        Ok(())
    }

    /// Adds (or replaces) the signature of `signer`.
    pub fn sign(&mut self, signer: &dyn Signer) -> Result<(), MetadataError> {
        let msg = self.canonical_signed()?;
        let sig = signer
            .sign(&msg)
            .map_err(|e| MetadataError::Sign(e.to_string()))?;
        self.signatures.retain(|s| s.keyid != signer.keyid());
        self.signatures.push(Signature {
            keyid: signer.keyid().to_owned(),
            sig: hex::encode(sig),
            extra: BTreeMap::new(),
        });
        Ok(())
    }

    /// `signed.expires`.
    pub fn expires(&self) -> DateTime<Utc> {
        self.signed.expires()
    }

    /// Sets `signed.expires`.
    pub fn set_expires(&mut self, expires: DateTime<Utc>) {
        self.signed.set_expires(expires);
    }
}

/// Metadata together with the exact bytes it was parsed from — the only way to hand the
/// trust engine a role that was read already
/// ([`crate::engine::TrustedMetadataSet::update_delegated_targets_received`]). Made only by
/// [`Received::parse`], so the engine's checks of the bytes (snapshot's length and hashes)
/// and of the parsed role (signatures over the canonical form received) are about the same
/// document. Parsing is not trusting: nothing here is verified until the engine says so.
#[derive(Clone, Debug)]
pub struct Received<'a, T> {
    pub(crate) bytes: &'a [u8],
    pub(crate) md: std::sync::Arc<Metadata<T>>,
}

impl<'a, T: RoleType> Received<'a, T> {
    /// Parses `bytes` (at most `max_len`) as role `T`.
    pub fn parse(bytes: &'a [u8], max_len: usize) -> Result<Self, MetadataError> {
        Ok(Received {
            bytes,
            md: std::sync::Arc::new(Metadata::from_bytes(bytes, max_len)?),
        })
    }

    /// The bytes as received.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The parsed (unverified) metadata.
    pub fn metadata(&self) -> &Metadata<T> {
        &self.md
    }

    /// The parsed (unverified) metadata, shared.
    pub fn shared(&self) -> std::sync::Arc<Metadata<T>> {
        std::sync::Arc::clone(&self.md)
    }
}

/// Typed parse of a `signed` value: `_type` first (so the error names the real problem),
/// then the schema, then the invariants.
pub fn parse_signed<T: RoleType>(signed: Value) -> Result<T, MetadataError> {
    let found = signed
        .get("_type")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    if found != T::TYPE {
        return Err(MetadataError::WrongType {
            expected: T::TYPE,
            found,
        });
    }
    let spec = signed
        .get("spec_version")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    check_spec_version(&spec)?;
    let typed: T =
        serde_json::from_value(signed).map_err(|e| malformed(format!("{}: {e}", T::TYPE)))?;
    check_parsed(typed)
}

/// Typed parse of the canonical text of a `signed` object (the fast path of
/// [`parse_envelope`]), to the same result as [`parse_signed`]: straight into the type,
/// and on any failure through [`parse_signed`], which names the problem.
fn parse_signed_canonical<T: RoleType>(text: &[u8]) -> Result<T, MetadataError> {
    match serde_json::from_slice::<T>(text) {
        Ok(typed)
            if typed.type_name() == T::TYPE && check_spec_version(typed.spec_version()).is_ok() =>
        {
            check_parsed(typed)
        }
        _ => parse_signed(parse_strict_json(text)?),
    }
}

/// The invariants serde cannot express, once the type is read.
fn check_parsed<T: RoleType>(typed: T) -> Result<T, MetadataError> {
    if typed.version() < 1 {
        return Err(MetadataError::Invalid(format!(
            "{} version must be at least 1",
            T::TYPE
        )));
    }
    typed.validate()?;
    Ok(typed)
}

fn check_spec_version(spec: &str) -> Result<(), MetadataError> {
    let parts: Vec<&str> = spec.split('.').collect();
    let numeric = parts
        .iter()
        .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if (parts.len() == 2 || parts.len() == 3) && numeric && parts.first() == Some(&"1") {
        Ok(())
    } else {
        Err(MetadataError::SpecVersion(spec.to_owned()))
    }
}

/// `expires` in TUF's one accepted form, `YYYY-MM-DDTHH:MM:SSZ`.
pub mod expires_format {
    use super::*;

    const FORMAT: &str = "%Y-%m-%dT%H:%M:%SZ";

    /// Formats a time as TUF writes it.
    pub fn format(t: &DateTime<Utc>) -> String {
        t.format(FORMAT).to_string()
    }

    /// Parses strictly: exactly 20 characters, UTC, no fractions or offsets.
    pub fn parse(s: &str) -> Result<DateTime<Utc>, String> {
        if s.len() != 20 || !s.ends_with('Z') {
            return Err(format!("expires {s:?} is not YYYY-MM-DDTHH:MM:SSZ"));
        }
        NaiveDateTime::parse_from_str(s, FORMAT)
            .map(|n| n.and_utc())
            .map_err(|_| format!("expires {s:?} is not YYYY-MM-DDTHH:MM:SSZ"))
    }

    /// serde serializer.
    pub fn serialize<S: Serializer>(t: &DateTime<Utc>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format(t))
    }

    /// serde deserializer.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<DateTime<Utc>, D::Error> {
        let s = String::deserialize(d)?;
        parse(&s).map_err(de::Error::custom)
    }
}

/// An `expires` value while it is read (see [`expires_format`]).
pub(crate) struct Expires(DateTime<Utc>);

impl<'de> Deserialize<'de> for Expires {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        expires_format::deserialize(d).map(Expires)
    }
}

impl From<Expires> for DateTime<Utc> {
    fn from(e: Expires) -> Self {
        e.0
    }
}

fn hex_lower(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b) || (b'A'..=b'F').contains(&b))
}

fn check_hashes(what: &str, hashes: &BTreeMap<String, String>) -> Result<(), MetadataError> {
    if hashes.is_empty() {
        return Err(MetadataError::Invalid(format!("{what}: hashes is empty")));
    }
    if let Some((alg, _)) = hashes.iter().find(|(_, h)| !hex_lower(h)) {
        return Err(MetadataError::Invalid(format!(
            "{what}: {alg} hash is not hex"
        )));
    }
    Ok(())
}

/// The four top-level role names.
pub const TOP_LEVEL_ROLES: [&str; 4] = ["root", "targets", "snapshot", "timestamp"];

/// Keys and threshold of a top-level role, as listed in root.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Role {
    /// Authorised key ids.
    pub keyids: Vec<String>,
    /// Signatures required.
    pub threshold: u32,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

deserialize_known_fields!(Role {
    keyids: "keyids" => required Vec<String>,
    threshold: "threshold" => required u32,
});

impl Role {
    /// A role with these keys and threshold.
    pub fn new(keyids: Vec<String>, threshold: u32) -> Result<Self, MetadataError> {
        let r = Role {
            keyids,
            threshold,
            extra: BTreeMap::new(),
        };
        check_threshold("role", r.threshold, &r.keyids)?;
        Ok(r)
    }
}

fn check_threshold(what: &str, threshold: u32, keyids: &[String]) -> Result<(), MetadataError> {
    if threshold < 1 {
        return Err(MetadataError::Invalid(format!(
            "{what}: threshold must be at least 1"
        )));
    }
    let mut sorted: Vec<&String> = keyids.iter().collect();
    sorted.sort();
    sorted.dedup();
    if sorted.len() != keyids.len() {
        return Err(MetadataError::Invalid(format!("{what}: duplicate keyids")));
    }
    Ok(())
}

/// The root role.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Root {
    /// Always `root`.
    #[serde(rename = "_type")]
    pub type_: String,
    /// TUF specification version.
    pub spec_version: String,
    /// Version of this root.
    pub version: u64,
    /// Expiry.
    #[serde(with = "expires_format")]
    pub expires: DateTime<Utc>,
    /// Whether clients fetch `N.role.json` and hash-prefixed targets. Absent means false
    /// (python-tuf treats the field as optional).
    #[serde(default)]
    pub consistent_snapshot: bool,
    /// Keys by id.
    pub keys: BTreeMap<String, PublicKey>,
    /// The four top-level roles.
    pub roles: BTreeMap<String, Role>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

deserialize_known_fields!(Root {
    type_: "_type" => required String,
    spec_version: "spec_version" => required String,
    version: "version" => required u64,
    expires: "expires" => required Expires,
    consistent_snapshot: "consistent_snapshot" => default bool,
    keys: "keys" => required BTreeMap<String, PublicKey>,
    roles: "roles" => required BTreeMap<String, Role>,
});

impl Root {
    /// A new root (consistent snapshots on).
    pub fn new(
        keys: BTreeMap<String, PublicKey>,
        roles: BTreeMap<String, Role>,
        version: u64,
        expires: DateTime<Utc>,
    ) -> Self {
        Root {
            type_: "root".into(),
            spec_version: SPEC_VERSION.into(),
            version,
            expires,
            consistent_snapshot: true,
            keys,
            roles,
            extra: BTreeMap::new(),
        }
    }

    /// Keys and threshold of top-level role `name`.
    pub fn role_keys(&self, name: &str) -> Option<&Role> {
        self.roles.get(name)
    }
}

impl RoleType for Root {
    const TYPE: &'static str = "root";
    fn type_name(&self) -> &str {
        &self.type_
    }
    fn spec_version(&self) -> &str {
        &self.spec_version
    }
    fn version(&self) -> u64 {
        self.version
    }
    fn expires(&self) -> DateTime<Utc> {
        self.expires
    }
    fn set_expires(&mut self, expires: DateTime<Utc>) {
        self.expires = expires;
    }
    fn validate(&self) -> Result<(), MetadataError> {
        // Exactly the four top-level roles (as python-tuf requires): an extra role name in
        // root would be ignored by every client, so it is a publisher mistake to surface.
        if let Some(other) = self
            .roles
            .keys()
            .find(|n| !TOP_LEVEL_ROLES.contains(&n.as_str()))
        {
            return Err(MetadataError::Invalid(format!(
                "root lists unknown role {other:?} (only root, targets, snapshot, timestamp)"
            )));
        }
        for name in TOP_LEVEL_ROLES {
            let role = self
                .roles
                .get(name)
                .ok_or_else(|| MetadataError::Invalid(format!("root lacks role {name}")))?;
            check_threshold(name, role.threshold, &role.keyids)?;
        }
        Ok(())
    }
}

/// Version (and optionally length and hashes) of a metadata file, as pinned by its parent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct MetaFile {
    /// Version.
    pub version: u64,
    /// Length in bytes, if pinned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub length: Option<u64>,
    /// Hashes, if pinned.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hashes: Option<BTreeMap<String, String>>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

deserialize_known_fields!(MetaFile {
    version: "version" => required u64,
    length: "length" => optional u64,
    hashes: "hashes" => optional BTreeMap<String, String>,
});

impl MetaFile {
    /// Version only.
    pub fn new(version: u64) -> Self {
        MetaFile {
            version,
            length: None,
            hashes: None,
            extra: BTreeMap::new(),
        }
    }

    /// Checks `bytes` against the pinned length and every pinned hash we implement. When
    /// hashes are pinned, at least one must be an algorithm we implement: a pin we cannot
    /// check is refused rather than silently skipped (python-tuf refuses it too).
    pub fn verify(&self, bytes: &[u8]) -> Result<(), LengthOrHashMismatch> {
        if let Some(len) = self.length {
            if bytes.len() as u64 != len {
                return Err(LengthOrHashMismatch::Length {
                    expected: len,
                    actual: bytes.len() as u64,
                });
            }
        }
        if let Some(hashes) = &self.hashes {
            verify_hashes(hashes, bytes, true)?;
        }
        Ok(())
    }

    fn validate(&self, what: &str) -> Result<(), MetadataError> {
        if self.version < 1 {
            return Err(MetadataError::Invalid(format!(
                "{what}: version must be at least 1"
            )));
        }
        if let Some(h) = &self.hashes {
            check_hashes(what, h)?;
        }
        Ok(())
    }
}

/// Content did not match what signed metadata says about it.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LengthOrHashMismatch {
    /// Wrong length.
    #[error("length is {actual}, signed metadata says {expected}")]
    Length {
        /// Signed length.
        expected: u64,
        /// Actual length.
        actual: u64,
    },
    /// Wrong hash.
    #[error("{algorithm} hash mismatch")]
    Hash {
        /// Which algorithm.
        algorithm: String,
    },
    /// No hash algorithm we implement is listed.
    #[error("no supported hash algorithm listed (have: {0})")]
    NoSupportedHash(String),
}

/// Checks every hash we implement (sha256, sha512); unknown algorithms are skipped, but
/// when `require_known` is set at least one known algorithm must be present.
pub fn verify_hashes(
    hashes: &BTreeMap<String, String>,
    bytes: &[u8],
    require_known: bool,
) -> Result<(), LengthOrHashMismatch> {
    let mut checked = 0;
    for (alg, expected) in hashes {
        let actual = match alg.as_str() {
            "sha256" => hex::encode(digest::sha256(bytes)),
            "sha512" => hex::encode(digest::sha512(bytes)),
            _ => continue,
        };
        checked += 1;
        if !actual.eq_ignore_ascii_case(expected) {
            return Err(LengthOrHashMismatch::Hash {
                algorithm: alg.clone(),
            });
        }
    }
    if require_known && checked == 0 {
        return Err(LengthOrHashMismatch::NoSupportedHash(
            hashes.keys().cloned().collect::<Vec<_>>().join(", "),
        ));
    }
    Ok(())
}

/// The snapshot role.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Snapshot {
    /// Always `snapshot`.
    #[serde(rename = "_type")]
    pub type_: String,
    /// TUF specification version.
    pub spec_version: String,
    /// Version.
    pub version: u64,
    /// Expiry.
    #[serde(with = "expires_format")]
    pub expires: DateTime<Utc>,
    /// `ROLE.json` → version (and optional length/hashes) of every targets role.
    pub meta: BTreeMap<String, MetaFile>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

deserialize_known_fields!(Snapshot {
    type_: "_type" => required String,
    spec_version: "spec_version" => required String,
    version: "version" => required u64,
    expires: "expires" => required Expires,
    meta: "meta" => required BTreeMap<String, MetaFile>,
});

impl Snapshot {
    /// The version this snapshot lists for targets role `name` (`name.json` in `meta`).
    pub fn role_version(&self, name: &str) -> Option<u64> {
        self.meta
            .get(&crate::layout::meta_key(name))
            .map(|m| m.version)
    }

    /// A snapshot listing `meta`.
    pub fn new(version: u64, expires: DateTime<Utc>, meta: BTreeMap<String, MetaFile>) -> Self {
        Snapshot {
            type_: "snapshot".into(),
            spec_version: SPEC_VERSION.into(),
            version,
            expires,
            meta,
            extra: BTreeMap::new(),
        }
    }
}

impl RoleType for Snapshot {
    const TYPE: &'static str = "snapshot";
    fn type_name(&self) -> &str {
        &self.type_
    }
    fn spec_version(&self) -> &str {
        &self.spec_version
    }
    fn version(&self) -> u64 {
        self.version
    }
    fn expires(&self) -> DateTime<Utc> {
        self.expires
    }
    fn set_expires(&mut self, expires: DateTime<Utc>) {
        self.expires = expires;
    }
    fn validate(&self) -> Result<(), MetadataError> {
        for (name, m) in &self.meta {
            m.validate(name)?;
        }
        Ok(())
    }
}

/// The timestamp role.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Timestamp {
    /// Always `timestamp`.
    #[serde(rename = "_type")]
    pub type_: String,
    /// TUF specification version.
    pub spec_version: String,
    /// Version.
    pub version: u64,
    /// Expiry.
    #[serde(with = "expires_format")]
    pub expires: DateTime<Utc>,
    /// Exactly one entry, `snapshot.json`.
    pub meta: BTreeMap<String, MetaFile>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

deserialize_known_fields!(Timestamp {
    type_: "_type" => required String,
    spec_version: "spec_version" => required String,
    version: "version" => required u64,
    expires: "expires" => required Expires,
    meta: "meta" => required BTreeMap<String, MetaFile>,
});

impl Timestamp {
    /// A timestamp pinning `snapshot`.
    pub fn new(version: u64, expires: DateTime<Utc>, snapshot: MetaFile) -> Self {
        Timestamp {
            type_: "timestamp".into(),
            spec_version: SPEC_VERSION.into(),
            version,
            expires,
            meta: BTreeMap::from([("snapshot.json".to_owned(), snapshot)]),
            extra: BTreeMap::new(),
        }
    }

    /// The pinned snapshot.
    pub fn snapshot_meta(&self) -> Option<&MetaFile> {
        self.meta.get("snapshot.json")
    }
}

impl RoleType for Timestamp {
    const TYPE: &'static str = "timestamp";
    fn type_name(&self) -> &str {
        &self.type_
    }
    fn spec_version(&self) -> &str {
        &self.spec_version
    }
    fn version(&self) -> u64 {
        self.version
    }
    fn expires(&self) -> DateTime<Utc> {
        self.expires
    }
    fn set_expires(&mut self, expires: DateTime<Utc>) {
        self.expires = expires;
    }
    fn validate(&self) -> Result<(), MetadataError> {
        if self.meta.len() != 1 {
            return Err(MetadataError::Invalid(
                "timestamp meta must hold exactly snapshot.json".into(),
            ));
        }
        let m = self
            .snapshot_meta()
            .ok_or_else(|| MetadataError::Invalid("timestamp meta lacks snapshot.json".into()))?;
        m.validate("snapshot.json")
    }
}

/// One target file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct TargetFile {
    /// Length in bytes.
    pub length: u64,
    /// Hashes by algorithm.
    pub hashes: BTreeMap<String, String>,
    /// Application-specific metadata (shared: every file of a release carries the same).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub custom: Option<std::sync::Arc<Value>>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

deserialize_known_fields!(TargetFile {
    length: "length" => required u64,
    hashes: "hashes" => required BTreeMap<String, String>,
    custom: "custom" => optional std::sync::Arc<Value>,
});

impl TargetFile {
    /// A target of this length and these hashes.
    pub fn new(length: u64, hashes: BTreeMap<String, String>) -> Self {
        TargetFile {
            length,
            hashes,
            custom: None,
            extra: BTreeMap::new(),
        }
    }

    /// Checks `bytes` against the length and every hash we implement; at least one must be.
    pub fn verify(&self, bytes: &[u8]) -> Result<(), LengthOrHashMismatch> {
        if bytes.len() as u64 != self.length {
            return Err(LengthOrHashMismatch::Length {
                expected: self.length,
                actual: bytes.len() as u64,
            });
        }
        verify_hashes(&self.hashes, bytes, true)
    }

    /// A hasher for verifying this target as it streams by: SHA-512 is computed only when
    /// the entry lists it (it would cost more than half the throughput for nothing).
    pub fn hasher(&self) -> digest::Hasher {
        if self.hashes.contains_key("sha512") {
            digest::Hasher::new()
        } else {
            digest::Hasher::sha256_only()
        }
    }

    /// Checks streamed `digests` (from [`TargetFile::hasher`]) against the length and every
    /// hash we implement (sha256, sha512); at least one known algorithm must be listed.
    pub fn check_digests(&self, digests: &digest::Digests) -> Result<(), LengthOrHashMismatch> {
        if digests.length != self.length {
            return Err(LengthOrHashMismatch::Length {
                expected: self.length,
                actual: digests.length,
            });
        }
        let mut known = 0;
        for (alg, expected) in &self.hashes {
            let actual = match alg.as_str() {
                "sha256" => hex::encode(digests.sha256),
                // Not computed means the hasher was not made for this target: never a pass.
                "sha512" => match digests.sha512 {
                    Some(d) => hex::encode(d),
                    None => String::new(),
                },
                _ => continue,
            };
            known += 1;
            if !actual.eq_ignore_ascii_case(expected) {
                return Err(LengthOrHashMismatch::Hash {
                    algorithm: alg.clone(),
                });
            }
        }
        if known == 0 {
            return Err(LengthOrHashMismatch::NoSupportedHash(
                self.hashes.keys().cloned().collect::<Vec<_>>().join(", "),
            ));
        }
        Ok(())
    }
}

/// A delegation to a named role.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DelegatedRole {
    /// Role name.
    pub name: String,
    /// Authorised key ids.
    pub keyids: Vec<String>,
    /// Signatures required.
    pub threshold: u32,
    /// Stop the search here when the path matches.
    pub terminating: bool,
    /// Path patterns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paths: Option<Vec<String>>,
    /// Hex prefixes of sha256(path).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path_hash_prefixes: Option<Vec<String>>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

deserialize_known_fields!(DelegatedRole {
    name: "name" => required String,
    keyids: "keyids" => required Vec<String>,
    threshold: "threshold" => required u32,
    terminating: "terminating" => required bool,
    paths: "paths" => optional Vec<String>,
    path_hash_prefixes: "path_hash_prefixes" => optional Vec<String>,
});

impl DelegatedRole {
    /// A delegation; exactly one of `paths` and `path_hash_prefixes` must be given.
    pub fn new(
        name: String,
        keyids: Vec<String>,
        threshold: u32,
        terminating: bool,
        paths: Option<Vec<String>>,
        path_hash_prefixes: Option<Vec<String>>,
    ) -> Result<Self, MetadataError> {
        let r = DelegatedRole {
            name,
            keyids,
            threshold,
            terminating,
            paths,
            path_hash_prefixes,
            extra: BTreeMap::new(),
        };
        r.validate()?;
        Ok(r)
    }

    fn validate(&self) -> Result<(), MetadataError> {
        check_threshold(&self.name, self.threshold, &self.keyids)?;
        if self.paths.is_some() == self.path_hash_prefixes.is_some() {
            return Err(MetadataError::Invalid(format!(
                "delegated role {}: exactly one of paths and path_hash_prefixes is required",
                self.name
            )));
        }
        // A delegated role named like a top-level role would share its file name and URL.
        if TOP_LEVEL_ROLES.contains(&self.name.as_str()) {
            return Err(MetadataError::Invalid(format!(
                "delegated role may not be named {}",
                self.name
            )));
        }
        Ok(())
    }

    /// Whether this delegation covers `target_path` (see [`crate::delegation`]).
    pub fn is_delegated_path(&self, target_path: &str) -> bool {
        crate::delegation::is_delegated_path(self, target_path)
    }
}

/// Largest `bit_length` of succinct hash bins accepted from metadata: 2^24 (about 16.7
/// million) bins. TAP 15 allows up to 32; nothing here ever lists every bin, but a bound
/// keeps every count and name width small and a hostile delegation from describing four
/// billion roles.
pub const MAX_SUCCINCT_BIT_LENGTH: u32 = 24;

/// TAP 15 succinct hash bins.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SuccinctRoles {
    /// Key ids shared by every bin.
    pub keyids: Vec<String>,
    /// Signatures required per bin.
    pub threshold: u32,
    /// Number of leading bits of sha256(path) selecting the bin (1..=[`MAX_SUCCINCT_BIT_LENGTH`]).
    pub bit_length: u32,
    /// Bins are named `{name_prefix}-{hex}`.
    pub name_prefix: String,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

deserialize_known_fields!(SuccinctRoles {
    keyids: "keyids" => required Vec<String>,
    threshold: "threshold" => required u32,
    bit_length: "bit_length" => required u32,
    name_prefix: "name_prefix" => required String,
});

impl SuccinctRoles {
    /// Bins over `bit_length` bits.
    pub fn new(
        keyids: Vec<String>,
        threshold: u32,
        bit_length: u8,
        name_prefix: String,
    ) -> Result<Self, MetadataError> {
        let s = SuccinctRoles {
            keyids,
            threshold,
            bit_length: u32::from(bit_length),
            name_prefix,
            extra: BTreeMap::new(),
        };
        s.validate()?;
        Ok(s)
    }

    fn validate(&self) -> Result<(), MetadataError> {
        check_threshold(&self.name_prefix, self.threshold, &self.keyids)?;
        if !(1..=MAX_SUCCINCT_BIT_LENGTH).contains(&self.bit_length) {
            return Err(MetadataError::Invalid(format!(
                "succinct_roles bit_length {} is outside 1..={MAX_SUCCINCT_BIT_LENGTH} (TAP 15 allows 32; this implementation stops at 2^{MAX_SUCCINCT_BIT_LENGTH} bins)",
                self.bit_length
            )));
        }
        Ok(())
    }

    /// Number of bins (2^bit_length).
    pub fn bin_count(&self) -> u64 {
        crate::delegation::succinct_bin_count(self.bit_length)
    }

    /// The bin responsible for `target_path`: the top `bit_length` bits of sha256(path).
    pub fn role_for_target(&self, target_path: &str) -> String {
        let bin = crate::delegation::succinct_bin(self.bit_length, target_path);
        crate::delegation::succinct_bin_name(&self.name_prefix, self.bit_length, bin)
    }

    /// Every bin name, in order, lazily (there may be 2^32 of them).
    pub fn bin_names(&self) -> impl Iterator<Item = String> + '_ {
        (0..self.bin_count())
            .map(|b| crate::delegation::succinct_bin_name(&self.name_prefix, self.bit_length, b))
    }

    /// Every bin name, in order. Allocates one string per bin: only for a policy's own
    /// bins (at most 2^16); on metadata, name the bin of a path or test a name instead.
    pub fn role_names(&self) -> Vec<String> {
        self.bin_names().collect()
    }

    /// Whether `name` is one of the bins.
    pub fn is_delegated_role(&self, name: &str) -> bool {
        crate::delegation::is_succinct_bin_name(&self.name_prefix, self.bit_length, name)
    }
}

/// The `delegations` object of a targets role.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Delegations {
    /// Keys of the delegated roles.
    pub keys: BTreeMap<String, PublicKey>,
    /// Named delegations, in search order.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<DelegatedRole>>,
    /// TAP 15 hash bins.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub succinct_roles: Option<SuccinctRoles>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

deserialize_known_fields!(Delegations {
    keys: "keys" => required BTreeMap<String, PublicKey>,
    roles: "roles" => optional Vec<DelegatedRole>,
    succinct_roles: "succinct_roles" => optional SuccinctRoles,
});

impl Delegations {
    /// Named delegations.
    pub fn new_roles(keys: BTreeMap<String, PublicKey>, roles: Vec<DelegatedRole>) -> Self {
        Delegations {
            keys,
            roles: Some(roles),
            succinct_roles: None,
            extra: BTreeMap::new(),
        }
    }

    /// Succinct hash bins.
    pub fn new_succinct(keys: BTreeMap<String, PublicKey>, succinct: SuccinctRoles) -> Self {
        Delegations {
            keys,
            roles: None,
            succinct_roles: Some(succinct),
            extra: BTreeMap::new(),
        }
    }

    fn validate(&self) -> Result<(), MetadataError> {
        match (&self.roles, &self.succinct_roles) {
            (Some(roles), None) => {
                let mut names: Vec<&str> = roles.iter().map(|r| r.name.as_str()).collect();
                names.sort_unstable();
                names.dedup();
                if names.len() != roles.len() {
                    return Err(MetadataError::Invalid(
                        "delegations: duplicate role names".into(),
                    ));
                }
                roles.iter().try_for_each(DelegatedRole::validate)
            }
            (None, Some(s)) => s.validate(),
            _ => Err(MetadataError::Invalid(
                "delegations need exactly one of roles and succinct_roles".into(),
            )),
        }
    }

    /// Keys and threshold this delegation grants to role `name`, if it delegates to it.
    pub fn authority_for(&self, name: &str) -> Option<(&[String], u32)> {
        if let Some(roles) = &self.roles {
            return roles
                .iter()
                .find(|r| r.name == name)
                .map(|r| (r.keyids.as_slice(), r.threshold));
        }
        if let Some(s) = &self.succinct_roles {
            if s.is_delegated_role(name) {
                return Some((s.keyids.as_slice(), s.threshold));
            }
        }
        None
    }
}

/// A targets role (top-level or delegated).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Targets {
    /// Always `targets`.
    #[serde(rename = "_type")]
    pub type_: String,
    /// TUF specification version.
    pub spec_version: String,
    /// Version.
    pub version: u64,
    /// Expiry.
    #[serde(with = "expires_format")]
    pub expires: DateTime<Utc>,
    /// Target path → file.
    pub targets: BTreeMap<String, TargetFile>,
    /// Delegations, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delegations: Option<Delegations>,
    /// Unknown fields.
    #[serde(flatten)]
    pub extra: BTreeMap<String, Value>,
}

deserialize_known_fields!(Targets {
    type_: "_type" => required String,
    spec_version: "spec_version" => required String,
    version: "version" => required u64,
    expires: "expires" => required Expires,
    targets: "targets" => required BTreeMap<String, TargetFile>,
    delegations: "delegations" => optional Delegations,
});

impl Targets {
    /// Empty targets.
    pub fn new(version: u64, expires: DateTime<Utc>) -> Self {
        Targets {
            type_: "targets".into(),
            spec_version: SPEC_VERSION.into(),
            version,
            expires,
            targets: BTreeMap::new(),
            delegations: None,
            extra: BTreeMap::new(),
        }
    }
}

impl RoleType for Targets {
    const TYPE: &'static str = "targets";
    fn type_name(&self) -> &str {
        &self.type_
    }
    fn spec_version(&self) -> &str {
        &self.spec_version
    }
    fn version(&self) -> u64 {
        self.version
    }
    fn expires(&self) -> DateTime<Utc> {
        self.expires
    }
    fn set_expires(&mut self, expires: DateTime<Utc>) {
        self.expires = expires;
    }
    fn validate(&self) -> Result<(), MetadataError> {
        for (path, t) in &self.targets {
            check_hashes(path, &t.hashes)?;
        }
        if let Some(d) = &self.delegations {
            d.validate()?;
        }
        Ok(())
    }
}

// ---- strict JSON: serde_json::Value, but duplicate object keys are an error ----

/// Parses JSON into a `Value`, refusing duplicate keys in any object and any number that is
/// not a 64-bit integer. (serde_json keeps the last duplicate silently; two parsers reading
/// the same bytes differently is how signature checks get bypassed.) Nesting is bounded by
/// serde_json's recursion limit, so hostile depth is an error, not a stack overflow.
pub fn parse_strict_json(bytes: &[u8]) -> Result<Value, MetadataError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let v = StrictValue.deserialize(&mut de).map_err(malformed)?;
    de.end().map_err(malformed)?;
    Ok(v)
}

struct StrictValue;

impl<'de> DeserializeSeed<'de> for StrictValue {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(StrictVisitor)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Value, E> {
        // TUF metadata holds integers only, and canonical JSON has no form for a float.
        // serde_json also lands here for integers beyond 64 bits; refusing both at the
        // parser gives one clear error instead of a confusing one later.
        Err(E::custom(
            "number is not an integer in the 64-bit range (floats are not allowed)",
        ))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(StrictValue)? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = serde_json::Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(de::Error::custom(format!("duplicate key {key:?}")));
            }
            let v = map.next_value_seed(StrictValue)?;
            out.insert(key, v);
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sealwright_crypto::{Algorithm, PrivateKey};

    fn now() -> DateTime<Utc> {
        expires_format::parse("2030-01-01T00:00:00Z").unwrap()
    }

    #[test]
    fn duplicate_keys_are_refused() {
        assert!(parse_strict_json(br#"{"a":1,"a":2}"#).is_err());
        assert!(parse_strict_json(br#"{"x":{"b":1,"b":1}}"#).is_err());
        assert!(parse_strict_json(br#"{"a":1} trailing"#).is_err());
        assert!(parse_strict_json(br#"{"a":[1,{"b":2}]}"#).is_ok());
    }

    #[test]
    fn expires_is_strict() {
        for bad in [
            "2030-01-01T00:00:00.5Z",
            "2030-01-01T00:00:00+00:00",
            "2030-01-01 00:00:00Z",
            "2030-13-01T00:00:00Z",
            "",
        ] {
            assert!(expires_format::parse(bad).is_err(), "{bad}");
        }
        assert_eq!(expires_format::format(&now()), "2030-01-01T00:00:00Z");
    }

    #[test]
    fn spec_versions() {
        for ok in ["1.0", "1.0.31", "1.0.34", "1.12.0"] {
            check_spec_version(ok).unwrap();
        }
        for bad in ["2.0.0", "1", "1.0.0.0", "1.x", "", "01.0"] {
            if bad == "01.0" {
                continue; // leading zero major is "01" != "1": refused below
            }
            assert!(check_spec_version(bad).is_err(), "{bad}");
        }
        assert!(check_spec_version("01.0").is_err());
    }

    #[test]
    fn round_trip_preserves_unknown_fields_and_signature() {
        let key = PrivateKey::generate(Algorithm::Ed25519).unwrap();
        let mut t = Targets::new(3, now());
        let mut tf = TargetFile::new(
            3,
            BTreeMap::from([("sha256".into(), hex::encode(digest::sha256(b"abc")))]),
        );
        tf.extra
            .insert("x-unknown".into(), serde_json::json!({"nested": [1, 2]}));
        t.targets.insert("a/b.txt".into(), tf);
        t.extra.insert("x-top".into(), serde_json::json!("kept"));
        let mut md = Metadata::new(t);
        md.sign(&key).unwrap();
        let bytes = md.to_bytes().unwrap();
        let back = Metadata::<Targets>::from_bytes(&bytes, 1 << 20).unwrap();
        assert_eq!(back, md);
        assert_eq!(back.to_bytes().unwrap(), bytes);
        let env = parse_envelope(&bytes, 1 << 20).unwrap();
        use sealwright_crypto::Signer;
        key.public_key()
            .verify(
                &env.canonical,
                &hex::decode(&back.signatures[0].sig).unwrap(),
            )
            .unwrap();
        assert!(String::from_utf8(bytes).unwrap().contains("x-unknown"));
    }

    #[test]
    fn a_keyid_signing_twice_is_refused() {
        let key = PrivateKey::generate(Algorithm::Ed25519).unwrap();
        let mut md = Metadata::new(Snapshot::new(1, now(), BTreeMap::new()));
        md.sign(&key).unwrap();
        let twice = md.signatures[0].clone();
        md.signatures.push(twice);
        let bytes = md.to_bytes().unwrap();
        let e = Metadata::<Snapshot>::from_bytes(&bytes, 1 << 20).unwrap_err();
        assert!(e.to_string().contains("more than once"), "{e}");
    }

    #[test]
    fn wrong_type_and_limits() {
        let md = Metadata::new(Snapshot::new(1, now(), BTreeMap::new()));
        let bytes = md.to_bytes().unwrap();
        assert!(matches!(
            Metadata::<Timestamp>::from_bytes(&bytes, 1 << 20),
            Err(MetadataError::WrongType { .. })
        ));
        assert!(matches!(
            Metadata::<Snapshot>::from_bytes(&bytes, 10),
            Err(MetadataError::TooLarge(10))
        ));
        let zero = String::from_utf8(bytes)
            .unwrap()
            .replace("\"version\":1", "\"version\":0");
        assert!(Metadata::<Snapshot>::from_bytes(zero.as_bytes(), 1 << 20).is_err());
    }

    #[test]
    fn succinct_bit_length_is_bounded() {
        let parse = |bits: u32| {
            let v = serde_json::json!({"keyids": ["k"], "threshold": 1, "bit_length": bits, "name_prefix": "bin"});
            let s: SuccinctRoles = serde_json::from_value(v).unwrap();
            s.validate().map(|()| s)
        };
        assert!(parse(0).is_err());
        assert!(parse(MAX_SUCCINCT_BIT_LENGTH + 1).is_err());
        assert!(parse(32).is_err());
        let widest = parse(MAX_SUCCINCT_BIT_LENGTH).unwrap();
        // Computed, never listed: the bin of a path and the test of a name.
        let bin = widest.role_for_target("app/1.0.0/app.bin");
        assert!(widest.is_delegated_role(&bin));
        assert_eq!(widest.bin_count(), 1 << MAX_SUCCINCT_BIT_LENGTH);
    }

    #[test]
    fn succinct_bins_match_tap15() {
        let s = SuccinctRoles::new(vec!["k".into()], 1, 3, "bin".into()).unwrap();
        assert_eq!(
            s.role_names(),
            ["bin-0", "bin-1", "bin-2", "bin-3", "bin-4", "bin-5", "bin-6", "bin-7"]
        );
        let s12 = SuccinctRoles::new(vec!["k".into()], 1, 12, "b".into()).unwrap();
        assert_eq!(s12.role_names().len(), 4096);
        assert_eq!(s12.role_names()[4095], "b-fff");
        let path = "app/1.0.0/x";
        let h = digest::sha256(path.as_bytes());
        let expected = format!("b-{:03x}", (u32::from(h[0]) << 4) | (u32::from(h[1]) >> 4));
        assert_eq!(s12.role_for_target(path), expected);
        assert!(s12.is_delegated_role("b-abc"));
        assert!(
            !s12.is_delegated_role("b-abcd")
                && !s12.is_delegated_role("b-ABC")
                && !s12.is_delegated_role("c-abc")
        );
        let s24 = SuccinctRoles::new(vec!["k".into()], 1, 24, "x".into()).unwrap();
        assert_eq!(s24.role_for_target(path).len(), "x-".len() + 6);
    }

    fn envelope(signed: Value) -> Vec<u8> {
        serde_json::to_vec(&serde_json::json!({"signatures": [], "signed": signed})).unwrap()
    }

    fn targets_value() -> Value {
        serde_json::json!({
            "_type": "targets", "spec_version": "1.0.34", "version": 1,
            "expires": "2030-01-01T00:00:00Z",
            "targets": {"f": {"length": 1, "hashes": {"sha256": "00"}}},
        })
    }

    fn root_value() -> Value {
        let role = serde_json::json!({"keyids": ["k"], "threshold": 1});
        serde_json::json!({
            "_type": "root", "spec_version": "1.0", "version": 1,
            "expires": "2030-01-01T00:00:00Z", "consistent_snapshot": true,
            "keys": {"k": {"keytype": "ed25519", "scheme": "ed25519",
                           "keyval": {"public": "00"}, "x-tuf-on-ci-online-uri": "x"}},
            "roles": {"root": role, "targets": role, "snapshot": role, "timestamp": role},
        })
    }

    fn targets_with(f: impl FnOnce(&mut Value)) -> Result<Metadata<Targets>, MetadataError> {
        let mut v = targets_value();
        f(&mut v);
        Metadata::<Targets>::from_bytes(&envelope(v), 1 << 20)
    }

    fn root_with(f: impl FnOnce(&mut Value)) -> Result<Metadata<Root>, MetadataError> {
        let mut v = root_value();
        f(&mut v);
        Metadata::<Root>::from_bytes(&envelope(v), 1 << 20)
    }

    #[test]
    fn floats_and_out_of_range_integers_are_refused() {
        let ok = String::from_utf8(envelope(targets_value())).unwrap();
        Metadata::<Targets>::from_bytes(ok.as_bytes(), 1 << 20).unwrap();
        for bad in ["1.0", "1e0", "18446744073709551616", "-1"] {
            let doc = ok.replace("\"version\":1", &format!("\"version\":{bad}"));
            assert_ne!(doc, ok);
            assert!(
                Metadata::<Targets>::from_bytes(doc.as_bytes(), 1 << 20).is_err(),
                "{bad}"
            );
        }
        // A float in an unknown field is refused too: it has no canonical form.
        assert!(parse_strict_json(b"{\"x\":0.5}").is_err());
        assert!(targets_with(|v| v["targets"]["f"]["length"] = (-1).into()).is_err());
    }

    #[test]
    fn hostile_nesting_is_an_error_not_a_crash() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(parse_strict_json(deep.as_bytes()).is_err());
        let deep_obj = format!("{}1{}", "{\"a\":".repeat(50_000), "}".repeat(50_000));
        assert!(Metadata::<Root>::from_bytes(deep_obj.as_bytes(), 1 << 20).is_err());
    }

    #[test]
    fn received_canonical_is_the_wire_object() {
        let mut v = targets_value();
        v["x-future"] = serde_json::json!({"b": 2, "a": null});
        v["targets"]["f"]["custom"] = Value::Null;
        let md = Metadata::<Targets>::from_bytes(&envelope(v.clone()), 1 << 20).unwrap();
        assert_eq!(
            md.received_canonical().unwrap(),
            to_canonical_json(&v).unwrap().as_slice()
        );
        assert!(Metadata::new(md.signed.clone())
            .received_canonical()
            .is_none());
        assert_eq!(
            md.signed.extra["x-future"],
            serde_json::json!({"a": null, "b": 2})
        );
    }

    #[test]
    fn root_rules() {
        let md = root_with(|_| {}).unwrap();
        assert_eq!(md.signed.spec_version, "1.0");
        assert!(md.signed.keys["k"]
            .extra
            .contains_key("x-tuf-on-ci-online-uri"));
        // consistent_snapshot is optional (python-tuf), false when absent.
        let md = root_with(|v| {
            v.as_object_mut().unwrap().remove("consistent_snapshot");
        })
        .unwrap();
        assert!(!md.signed.consistent_snapshot);
        assert!(root_with(|v| v["roles"]["mirrors"] = v["roles"]["root"].clone()).is_err());
        assert!(root_with(|v| {
            v["roles"].as_object_mut().unwrap().remove("snapshot");
        })
        .is_err());
        assert!(root_with(|v| v["roles"]["root"]["threshold"] = 0.into()).is_err());
        assert!(
            root_with(|v| v["roles"]["root"]["keyids"] = serde_json::json!(["k", "k"])).is_err()
        );
        for bad in ["2.0.0", "1", "one", "1.0.0-rc1"] {
            assert!(
                matches!(
                    root_with(|v| v["spec_version"] = bad.into()),
                    Err(MetadataError::SpecVersion(_))
                ),
                "{bad}"
            );
        }
        assert!(root_with(|v| v["expires"] = "2030-01-01T00:00:00+00:00".into()).is_err());
        assert!(matches!(
            root_with(|v| v["_type"] = "Root".into()),
            Err(MetadataError::WrongType { .. })
        ));
    }

    #[test]
    fn delegation_rules() {
        let named = serde_json::json!({"keys": {}, "roles": [
            {"name": "a", "keyids": ["k"], "threshold": 1, "terminating": false, "paths": ["a/*"]}
        ]});
        targets_with(|v| v["delegations"] = named.clone()).unwrap();
        let succinct = serde_json::json!({"keyids": ["k"], "threshold": 1, "bit_length": 8,
                                          "name_prefix": "bin", "x-extra": true});
        let md = targets_with(|v| {
            v["delegations"] = serde_json::json!({"keys": {}, "succinct_roles": succinct})
        })
        .unwrap();
        let d = md.signed.delegations.unwrap();
        assert!(d.authority_for("bin-ff").is_some());
        assert!(d.authority_for("bin-100").is_none());
        // roles and succinct_roles are mutually exclusive, and one is required.
        assert!(targets_with(|v| {
            v["delegations"] = named.clone();
            v["delegations"]["succinct_roles"] = succinct.clone();
        })
        .is_err());
        assert!(targets_with(|v| v["delegations"] = serde_json::json!({"keys": {}})).is_err());
        // paths XOR path_hash_prefixes.
        assert!(targets_with(|v| {
            v["delegations"] = named.clone();
            v["delegations"]["roles"][0]["path_hash_prefixes"] = serde_json::json!(["ab"]);
        })
        .is_err());
        assert!(targets_with(|v| {
            v["delegations"] = named.clone();
            v["delegations"]["roles"][0]
                .as_object_mut()
                .unwrap()
                .remove("paths");
        })
        .is_err());
        for bits in [0, 33] {
            assert!(targets_with(|v| {
                let mut s = succinct.clone();
                s["bit_length"] = bits.into();
                v["delegations"] = serde_json::json!({"keys": {}, "succinct_roles": s});
            })
            .is_err());
        }
        // Duplicate role names and top-level names are refused; odd names are fine.
        let role = |name: &str| named["roles"][0].clone().tap(|r| r["name"] = name.into());
        assert!(targets_with(|v| {
            v["delegations"] = serde_json::json!({"keys": {}, "roles": [role("a"), role("a")]})
        })
        .is_err());
        assert!(targets_with(|v| {
            v["delegations"] = serde_json::json!({"keys": {}, "roles": [role("snapshot")]})
        })
        .is_err());
        targets_with(|v| {
            v["delegations"] = serde_json::json!({"keys": {}, "roles": [
                role("?"), role("#"), role("/delegatedrole"), role("../delegatedrole")]})
        })
        .unwrap();
    }

    trait Tap: Sized {
        fn tap(self, f: impl FnOnce(&mut Self)) -> Self;
    }
    impl Tap for Value {
        fn tap(mut self, f: impl FnOnce(&mut Self)) -> Self {
            f(&mut self);
            self
        }
    }

    #[test]
    fn hashes_and_meta_rules() {
        assert!(targets_with(|v| v["targets"]["f"]["hashes"]["sha256"] = "xyz".into()).is_err());
        assert!(targets_with(|v| v["targets"]["f"]["hashes"] = serde_json::json!({})).is_err());
        let ts = |meta: Value| {
            Metadata::<Timestamp>::from_bytes(
                &envelope(serde_json::json!({
                    "_type": "timestamp", "spec_version": "1.0.34", "version": 1,
                    "expires": "2030-01-01T00:00:00Z", "meta": meta,
                })),
                1 << 20,
            )
        };
        ts(serde_json::json!({"snapshot.json": {"version": 1}})).unwrap();
        assert!(ts(serde_json::json!({"snapshot.json": {"version": 0}})).is_err());
        assert!(ts(serde_json::json!({"targets.json": {"version": 1}})).is_err());
        assert!(ts(serde_json::json!({
            "snapshot.json": {"version": 1}, "targets.json": {"version": 1}
        }))
        .is_err());
        // A pin with only unknown hash algorithms cannot be checked: refused.
        let mut pin = MetaFile::new(1);
        pin.hashes = Some(BTreeMap::from([("blake3".into(), "00".into())]));
        assert!(matches!(
            pin.verify(b"x"),
            Err(LengthOrHashMismatch::NoSupportedHash(_))
        ));
        pin.hashes = Some(BTreeMap::from([
            ("blake3".into(), "00".into()),
            ("sha512".into(), hex::encode(digest::sha512(b"x"))),
        ]));
        pin.verify(b"x").unwrap();
        pin.length = Some(2);
        assert!(matches!(
            pin.verify(b"x"),
            Err(LengthOrHashMismatch::Length {
                expected: 2,
                actual: 1
            })
        ));
    }

    /// The fast path of [`parse_envelope`] reads `doc` exactly as the general path does: the
    /// same metadata and signed bytes, or the same error.
    fn same_as_general_path<T: RoleType + PartialEq + fmt::Debug>(
        doc: &[u8],
    ) -> Result<(), proptest::test_runner::TestCaseError> {
        let general = parse_strict_json(doc)
            .and_then(envelope_from_value)
            .and_then(Metadata::<T>::from_envelope);
        let either = Metadata::<T>::from_bytes(doc, 1 << 20);
        match (either, general) {
            (Ok(a), Ok(b)) => {
                proptest::prop_assert_eq!(&a, &b);
                proptest::prop_assert_eq!(a.received_canonical(), b.received_canonical());
            }
            (Err(a), Err(b)) => proptest::prop_assert_eq!(a.to_string(), b.to_string()),
            (a, b) => proptest::prop_assert!(false, "fast {a:?}, general {b:?}"),
        }
        Ok(())
    }

    #[test]
    fn our_files_take_the_fast_path_and_keep_control_characters_readable() {
        let mut t = Targets::new(1, now());
        t.targets.insert(
            "a/b".into(),
            TargetFile::new(1, BTreeMap::from([("sha256".into(), "00".into())])),
        );
        let bytes = Metadata::new(t.clone()).to_bytes().unwrap();
        assert!(is_canonical(&bytes));
        assert!(matches!(
            parse_envelope(&bytes, 1 << 20).unwrap().signed,
            SignedText::Canonical
        ));
        same_as_general_path::<Targets>(&bytes).unwrap();

        // A newline (as in a PEM key) is raw in canonical JSON, which is not JSON: such a
        // file is written escaped and read by the general path.
        t.extra
            .insert("note".into(), Value::String("two\nlines".into()));
        let md = Metadata::new(t);
        let bytes = md.to_bytes().unwrap();
        assert!(!is_canonical(&bytes));
        let back = Metadata::<Targets>::from_bytes(&bytes, 1 << 20).unwrap();
        assert_eq!(back, md);
        assert_eq!(
            back.received_canonical().unwrap(),
            md.canonical_signed().unwrap()
        );
    }

    proptest::proptest! {
        #[test]
        fn parsing_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..512)) {
            let _ = Metadata::<Root>::from_bytes(&bytes, 1 << 20);
            let _ = Metadata::<Targets>::from_bytes(&bytes, 1 << 20);
        }

        #[test]
        fn mutated_documents_of_every_role_never_panic(
            edits in proptest::collection::vec((0usize..2000, proptest::num::u8::ANY, 0u8..3), 1..8),
            which in 0usize..3,
        ) {
            let mut doc = match which {
                0 => envelope(root_value()),
                1 => envelope(targets_value().tap(|v| v["delegations"] = serde_json::json!({
                    "keys": {}, "roles": [{"name": "a", "keyids": ["k"], "threshold": 1,
                    "terminating": true, "path_hash_prefixes": ["ab"]}]}))),
                _ => envelope(serde_json::json!({
                    "_type": "snapshot", "spec_version": "1.0.34", "version": 3,
                    "expires": "2030-01-01T00:00:00Z",
                    "meta": {"targets.json": {"version": 1, "length": 9, "hashes": {"sha256": "ab"}}},
                })),
            };
            for (pos, byte, op) in edits {
                let at = pos % (doc.len() + 1);
                match op {
                    0 => { if let Some(b) = doc.get_mut(at) { *b = byte; } }
                    1 => doc.insert(at, byte),
                    _ => { if at < doc.len() { doc.remove(at); } }
                }
            }
            same_as_general_path::<Root>(&doc)?;
            same_as_general_path::<Targets>(&doc)?;
            same_as_general_path::<Snapshot>(&doc)?;
            same_as_general_path::<Timestamp>(&doc)?;
        }

        #[test]
        fn mutated_valid_documents_never_panic(pos in 0usize..400, byte in proptest::num::u8::ANY) {
            let mut t = Targets::new(1, now());
            t.targets.insert("f".into(), TargetFile::new(1, BTreeMap::from([("sha256".into(), "00".into())])));
            let mut bytes = Metadata::new(t).to_bytes().unwrap();
            let len = bytes.len();
            if let Some(b) = bytes.get_mut(pos % len) { *b = byte; }
            let _ = Metadata::<Targets>::from_bytes(&bytes, 1 << 20);
            let _ = Metadata::<Snapshot>::from_bytes(&bytes, 1 << 20);
        }
    }
}
