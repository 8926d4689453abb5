//! The publish API's rules, for both ends of `sealwright push`.
//!
//! A push carries new versions of targets roles (top-level or delegated), signed where the
//! offline keys live, and names artifacts already uploaded into the blob store by content
//! hash. The server ([`accept`]) trusts nothing in it: each role is checked the way a client
//! checks it — signatures against the keys its delegator names (top-level `targets` against
//! root), a version above the published one, not expired, every target path inside every
//! delegation on the way from `targets` — and every new artifact must be in the blob store
//! with the length and hashes the signed metadata lists. Only then are snapshot and
//! timestamp signed (through the signer agent: the server holds no private key) and
//! `timestamp.json` switched. Nothing already published is ever overwritten.
//!
//! Who may push what is decided by tokens ([`Tokens`]): each names the roles it may push and,
//! optionally, path patterns every new or changed target must match. Only the SHA-256 of a
//! token is stored.
//!
//! The publisher's side ([`push`]) signs the planned targets roles, hands them to a transport
//! and writes the server's answer (the new snapshot and timestamp, checked against root) into
//! its own `published/`, so the next plan starts from what the server serves.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fs::{self, File, OpenOptions};
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use sealwright_tuf::delegation::glob_match;
use sealwright_tuf::metadata::{
    Delegations, MetaFile, Metadata, Root, Snapshot, TargetFile, Targets, Timestamp,
};
use sealwright_tuf::verify::verify_role;

use crate::fsutil;
use crate::keystore::KeyStore;
use crate::policy::Policy;
use crate::publish::{
    self, expiring, expiry, meta_err, open_signers, sign_with, write_tree, Pending, Plan,
    PublishError, PublishReport, Published, SPEC_VERSION,
};
use crate::staging::{self, validate_target_path, Staging};

/// Token file in the server's data directory.
pub const TOKENS_FILE: &str = "push-tokens.toml";
/// Largest metadata file a push may carry.
pub const MAX_ROLE_BYTES: usize = 64 * 1024 * 1024;
/// Delegated roles searched for a pushed role's delegator before giving up.
const MAX_ROLES_SEARCHED: usize = 10_000;

/// Why a push was refused. Nothing was written.
#[derive(Debug, thiserror::Error)]
pub enum PushError {
    /// No token, or not one the server knows.
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// The token does not cover this role or path.
    #[error("forbidden: {0}")]
    Forbidden(String),
    /// Malformed request: bad names, unparsable metadata, unsafe paths.
    #[error("invalid: {0}")]
    Invalid(String),
    /// Signatures do not meet the threshold of the keys the delegator names.
    #[error("signature: {0}")]
    Signature(String),
    /// A version not above the published one: a replayed or stale file.
    #[error("replayed or stale: {0}")]
    Replay(String),
    /// A target path outside what the role was delegated.
    #[error("outside delegation: {0}")]
    OutsideDelegation(String),
    /// An artifact missing from the blob store or not matching its signed entry.
    #[error("artifact: {0}")]
    Artifact(String),
    /// A body over the size limit.
    #[error("too large: {0}")]
    TooLarge(String),
    /// The server's repository is not in a state to accept pushes.
    #[error("not ready: {0}")]
    NotReady(String),
    /// The server failed (I/O, signer agent).
    #[error("server error: {0}")]
    Internal(String),
}

impl PushError {
    /// HTTP status for this refusal.
    pub fn status(&self) -> u16 {
        match self {
            PushError::Unauthorized(_) => 401,
            PushError::Forbidden(_) => 403,
            PushError::Invalid(_) => 400,
            PushError::Replay(_) => 409,
            PushError::Signature(_) | PushError::OutsideDelegation(_) | PushError::Artifact(_) => {
                422
            }
            PushError::TooLarge(_) => 413,
            PushError::NotReady(_) => 503,
            PushError::Internal(_) => 500,
        }
    }

    /// Short machine-readable kind (the JSON `error` field).
    pub fn kind(&self) -> &'static str {
        match self {
            PushError::Unauthorized(_) => "unauthorized",
            PushError::Forbidden(_) => "forbidden",
            PushError::Invalid(_) => "invalid",
            PushError::Signature(_) => "signature",
            PushError::Replay(_) => "replay",
            PushError::OutsideDelegation(_) => "outside-delegation",
            PushError::Artifact(_) => "artifact",
            PushError::TooLarge(_) => "too-large",
            PushError::NotReady(_) => "not-ready",
            PushError::Internal(_) => "internal",
        }
    }
}

fn internal(e: impl std::fmt::Display) -> PushError {
    PushError::Internal(e.to_string())
}

/// One push token: its name, the SHA-256 of its secret, and what it may push.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TokenEntry {
    /// Who holds it (appears in the audit log).
    pub name: String,
    /// SHA-256 (hex) of the secret; empty for a client-certificate entry (no token, and no
    /// presented token hashes to the empty string).
    #[serde(default)]
    pub sha256: String,
    /// SHA-256 (hex) of the DER client certificate that authenticates this publisher over
    /// mTLS instead of a token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert: Option<String>,
    /// Roles it may push.
    pub roles: Vec<String>,
    /// Patterns (`*` and `?` never match `/`) every new or changed target must match; empty
    /// means whatever the roles themselves are delegated.
    #[serde(default)]
    pub paths: Vec<String>,
}

impl TokenEntry {
    fn allows_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    fn allows_path(&self, path: &str) -> bool {
        self.paths.is_empty() || self.paths.iter().any(|p| glob_match(p, path))
    }
}

/// The tokens the server accepts (`DIR/push-tokens.toml`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Tokens {
    /// Every token.
    #[serde(default, rename = "token")]
    pub tokens: Vec<TokenEntry>,
}

/// Prefix of every token, so a leaked one is recognisable in logs and scanners.
const TOKEN_PREFIX: &str = "swp_";

impl Tokens {
    /// Reads the token file; none means no token is accepted.
    pub fn load(repo_dir: &Path) -> Result<Self, PushError> {
        let path = repo_dir.join(TOKENS_FILE);
        match fsutil::read_capped(&path, 1024 * 1024) {
            Ok(bytes) => {
                let text = String::from_utf8(bytes)
                    .map_err(|_| internal(format!("{} is not UTF-8", path.display())))?;
                toml::from_str(&text).map_err(|e| internal(format!("{}: {e}", path.display())))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Tokens::default()),
            Err(e) => Err(internal(format!("{}: {e}", path.display()))),
        }
    }

    /// Writes the token file atomically, readable by its owner only.
    pub fn save(&self, repo_dir: &Path) -> Result<(), PushError> {
        use std::os::unix::fs::PermissionsExt;
        let path = repo_dir.join(TOKENS_FILE);
        let text = toml::to_string_pretty(self).map_err(internal)?;
        let body = format!(
            "# Push tokens (`sealwright token add`): only their SHA-256 is kept here.\n\n{text}"
        );
        fsutil::write_atomic(&path, body.as_bytes()).map_err(internal)?;
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).map_err(internal)
    }

    /// A new entry's name is valid and unused, and its roles are pushable.
    fn check_new(&self, name: &str, roles: &[String]) -> Result<(), PushError> {
        crate::policy::check_name("token", name).map_err(|e| PushError::Invalid(e.to_string()))?;
        if self.tokens.iter().any(|t| t.name == name) {
            return Err(PushError::Invalid(format!(
                "a token named {name} exists; remove it from {TOKENS_FILE} first"
            )));
        }
        if roles.is_empty() {
            return Err(PushError::Invalid(
                "a token needs at least one role (--role)".into(),
            ));
        }
        for r in roles {
            if matches!(r.as_str(), "root" | "snapshot" | "timestamp") {
                return Err(PushError::Invalid(format!(
                    "{r} is never pushed: root changes are published offline, snapshot and timestamp are signed by the server's agent"
                )));
            }
        }
        Ok(())
    }

    /// Adds a token and returns its secret (shown once; only its hash is stored).
    pub fn create(
        &mut self,
        name: &str,
        roles: Vec<String>,
        paths: Vec<String>,
    ) -> Result<String, PushError> {
        self.check_new(name, &roles)?;
        let mut secret = [0u8; 32];
        sealwright_crypto::random::fill(&mut secret).map_err(internal)?;
        let token = format!("{TOKEN_PREFIX}{}", hex::encode(secret));
        self.tokens.push(TokenEntry {
            name: name.to_owned(),
            sha256: sealwright_crypto::digest::sha256_hex(token.as_bytes()),
            client_cert: None,
            roles,
            paths,
        });
        Ok(token)
    }

    /// Registers a publisher that authenticates with the TLS client certificate whose DER
    /// hashes to `cert_sha256` (the server must also trust its CA: `serve --client-ca`).
    pub fn create_for_client_cert(
        &mut self,
        name: &str,
        roles: Vec<String>,
        paths: Vec<String>,
        cert_sha256: &str,
    ) -> Result<(), PushError> {
        self.check_new(name, &roles)?;
        if self
            .tokens
            .iter()
            .any(|t| t.client_cert.as_deref() == Some(cert_sha256))
        {
            return Err(PushError::Invalid(
                "this client certificate is registered already".into(),
            ));
        }
        self.tokens.push(TokenEntry {
            name: name.to_owned(),
            sha256: String::new(),
            client_cert: Some(cert_sha256.to_owned()),
            roles,
            paths,
        });
        Ok(())
    }

    /// The entry registered for the client certificate whose DER hashes to `cert_sha256`.
    pub fn authenticate_client_cert(&self, cert_sha256: &str) -> Option<&TokenEntry> {
        self.tokens
            .iter()
            .find(|t| t.client_cert.as_deref() == Some(cert_sha256))
    }

    /// The token `presented` (from `Authorization: Bearer ...`), if known.
    pub fn authenticate(&self, presented: &str) -> Option<&TokenEntry> {
        let digest = sealwright_crypto::digest::sha256_hex(presented.trim().as_bytes());
        // Comparing digests, not secrets: timing reveals nothing about a token.
        self.tokens.iter().find(|t| t.sha256 == digest)
    }
}

/// What an accepted push produced.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Accepted {
    /// Each pushed role with its new version.
    pub roles: BTreeMap<String, u64>,
    /// Artifacts that became servable.
    pub artifacts: usize,
    /// New snapshot version.
    pub snapshot_version: u64,
    /// New timestamp version.
    pub timestamp_version: u64,
    /// The new snapshot, as written (`N.snapshot.json`).
    #[serde(with = "as_text")]
    pub snapshot: Vec<u8>,
    /// The new `timestamp.json`, as written.
    #[serde(with = "as_text")]
    pub timestamp: Vec<u8>,
}

/// Metadata bytes travel as JSON strings (they are UTF-8 JSON themselves).
mod as_text {
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn serialize<S: Serializer>(b: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(std::str::from_utf8(b).map_err(serde::ser::Error::custom)?)
    }
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        Ok(String::deserialize(d)?.into_bytes())
    }
}

/// The body of `POST /api/v1/push`: role name → signed metadata (the file's exact text).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct PushRequest {
    /// Signed metadata of each pushed targets role.
    pub roles: BTreeMap<String, String>,
}

/// Holds the repository's publish lock (`DIR/.publish.lock`) until dropped: one push or
/// timestamp renewal at a time.
fn lock(repo_dir: &Path) -> Result<File, PushError> {
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(repo_dir.join(".publish.lock"))
        .map_err(internal)?;
    rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive).map_err(internal)?;
    Ok(f)
}

/// A delegation some target path must satisfy.
enum Rule {
    Named(sealwright_tuf::metadata::DelegatedRole),
    Bin(sealwright_tuf::metadata::SuccinctRoles, String),
}

impl Rule {
    fn allows(&self, path: &str) -> bool {
        match self {
            Rule::Named(r) => r.is_delegated_path(path),
            Rule::Bin(s, name) => s.role_for_target(path) == *name,
        }
    }
}

/// Who may sign a role, and the delegations on the way to it from `targets`.
struct Authority {
    keys: BTreeMap<String, sealwright_crypto::PublicKey>,
    keyids: Vec<String>,
    threshold: u32,
    chain: Vec<Rule>,
}

fn rule_for(delegations: &Delegations, role: &str) -> Option<Rule> {
    if let Some(roles) = &delegations.roles {
        return roles
            .iter()
            .find(|r| r.name == role)
            .map(|r| Rule::Named(r.clone()));
    }
    let s = delegations.succinct_roles.as_ref()?;
    s.is_delegated_role(role)
        .then(|| Rule::Bin(s.clone(), role.to_owned()))
}

/// The newest version of a targets role: pushed in this request, else published.
type CurrentRole<'a> = dyn Fn(&str) -> Result<Option<Metadata<Targets>>, PushError> + 'a;

/// Finds who delegates `role`: root for `targets`, else a breadth-first search from
/// `targets` through named delegations, reading each delegator's newest version (pushed in
/// this request, else published).
fn authority_for(
    role: &str,
    root: &Root,
    current: &CurrentRole<'_>,
) -> Result<Authority, PushError> {
    if role == "targets" {
        let r = root
            .roles
            .get("targets")
            .ok_or_else(|| internal("root has no targets role"))?;
        return Ok(Authority {
            keys: root.keys.clone(),
            keyids: r.keyids.clone(),
            threshold: r.threshold,
            chain: Vec::new(),
        });
    }
    let mut queue: VecDeque<(String, Vec<String>)> =
        VecDeque::from([("targets".to_owned(), vec![])]);
    let mut seen: BTreeSet<String> = BTreeSet::new();
    while let Some((name, path)) = queue.pop_front() {
        if !seen.insert(name.clone()) || seen.len() > MAX_ROLES_SEARCHED {
            continue;
        }
        let Some(md) = current(&name)? else { continue };
        let Some(del) = md.signed.delegations.as_ref() else {
            continue;
        };
        if let Some((keyids, threshold)) = del.authority_for(role) {
            // Rebuild the chain of delegations from `targets` down to `role`.
            let mut chain = Vec::new();
            let mut delegator = "targets".to_owned();
            for step in path.iter().chain(std::iter::once(&role.to_owned())) {
                let d = current(&delegator)?
                    .and_then(|m| m.signed.delegations)
                    .and_then(|d| rule_for(&d, step))
                    .ok_or_else(|| internal(format!("delegation to {step} vanished")))?;
                chain.push(d);
                delegator = step.clone();
            }
            return Ok(Authority {
                keys: del.keys.clone(),
                keyids: keyids.to_vec(),
                threshold,
                chain,
            });
        }
        if let Some(roles) = &del.roles {
            for r in roles {
                let mut p = path.clone();
                p.push(r.name.clone());
                queue.push_back((r.name.clone(), p));
            }
        }
    }
    Err(PushError::Forbidden(format!(
        "no role in this repository delegates {role}: delegate it first (`sealwright delegate`) and push the delegating role"
    )))
}

/// Checks a push and, when every check passes, publishes it: artifacts linked, roles
/// written, snapshot and timestamp signed through `keystore` (the signer agent), then
/// `timestamp.json` switched. On any refusal nothing is written. Returns the answer for the
/// publisher and what each pushed role now lists (for the server's index).
pub fn accept(
    repo_dir: &Path,
    policy: &Policy,
    keystore: &KeyStore<'_>,
    token: &TokenEntry,
    request: &PushRequest,
    now: DateTime<Utc>,
) -> Result<(Accepted, Vec<RoleListing>), PushError> {
    if request.roles.is_empty() {
        return Err(PushError::Invalid(
            "a push carries at least one role".into(),
        ));
    }
    for name in request.roles.keys() {
        if matches!(name.as_str(), "root" | "snapshot" | "timestamp") {
            return Err(PushError::Forbidden(format!(
                "{name} is never pushed: root changes are published offline, snapshot and timestamp are signed here by the agent"
            )));
        }
        crate::policy::check_name("role", name).map_err(|e| PushError::Invalid(e.to_string()))?;
        if !token.allows_role(name) {
            return Err(PushError::Forbidden(format!(
                "token {} may push {}, not {name}",
                token.name,
                token.roles.join(", ")
            )));
        }
    }
    let _lock = lock(repo_dir)?;
    let published = Published::load(repo_dir).map_err(internal)?;
    let (Some(root), Some(snapshot), Some(timestamp)) = (
        published.root.as_ref(),
        published.snapshot.as_ref(),
        published.timestamp.as_ref(),
    ) else {
        return Err(PushError::NotReady(
            "nothing is published here yet: publish the first version with `sealwright publish` and copy published/ to the server".into(),
        ));
    };

    let mut pushed: BTreeMap<String, Metadata<Targets>> = BTreeMap::new();
    for (name, text) in &request.roles {
        if text.len() > MAX_ROLE_BYTES {
            return Err(PushError::TooLarge(format!(
                "{name}: {} bytes, the limit is {MAX_ROLE_BYTES}",
                text.len()
            )));
        }
        let md = Metadata::<Targets>::from_bytes(text.as_bytes(), MAX_ROLE_BYTES)
            .map_err(|e| PushError::Invalid(format!("{name}: {e}")))?;
        pushed.insert(name.clone(), md);
    }
    let current = |name: &str| -> Result<Option<Metadata<Targets>>, PushError> {
        if let Some(md) = pushed.get(name) {
            return Ok(Some(md.clone()));
        }
        published.targets_role(name).map_err(internal)
    };

    let mut blobs: Vec<(String, String)> = Vec::new();
    for (name, md) in &pushed {
        let authority = authority_for(name, &root.signed, &current)?;
        let canonical = md
            .received_canonical()
            .ok_or_else(|| internal("parsed metadata without its canonical bytes"))?;
        verify_role(
            name,
            canonical,
            &md.signatures,
            &authority.keys,
            &authority.keyids,
            authority.threshold,
        )
        .map_err(|e| {
            PushError::Signature(format!(
                "{e}: sign it with the keys its delegator names (`sealwright status` lists them)"
            ))
        })?;
        let old = published.targets_role(name).map_err(internal)?;
        if let Some(old) = &old {
            if md.signed.version <= old.signed.version {
                return Err(PushError::Replay(format!(
                    "{name} version {} is not above the published version {}",
                    md.signed.version, old.signed.version
                )));
            }
        }
        if md.signed.expires <= now {
            return Err(PushError::Invalid(format!(
                "{name} version {} expired at {}",
                md.signed.version, md.signed.expires
            )));
        }
        for (path, file) in &md.signed.targets {
            validate_target_path(path).map_err(|e| PushError::Invalid(e.to_string()))?;
            if old.as_ref().and_then(|o| o.signed.targets.get(path)) == Some(file) {
                continue;
            }
            if let Some(rule) = authority.chain.iter().position(|r| !r.allows(path)) {
                return Err(PushError::OutsideDelegation(format!(
                    "{name} lists {path}, which the delegation chain does not grant it (step {} of {})",
                    rule + 1,
                    authority.chain.len()
                )));
            }
            if !token.allows_path(path) {
                return Err(PushError::Forbidden(format!(
                    "token {} may push paths {}, not {path}",
                    token.name,
                    token.paths.join(", ")
                )));
            }
            blobs.push((check_artifact(repo_dir, path, file)?, path.clone()));
        }
    }

    // Every role checks out: new snapshot, then the timestamp pinning its exact bytes.
    let mut meta = snapshot.signed.meta.clone();
    for (name, md) in &pushed {
        meta.insert(format!("{name}.json"), MetaFile::new(md.signed.version));
    }
    let period = |role: &str| {
        policy
            .role(role)
            .map(|(_, _, p)| p.duration())
            .ok_or_else(|| internal(format!("no {role} role in the policy")))
    };
    let mut new_snapshot = Metadata::new(Snapshot::new(
        snapshot.signed.version + 1,
        expiry(now, period("snapshot")?),
        meta,
    ));
    new_snapshot.signed.spec_version = SPEC_VERSION.to_owned();
    let snapshot_bytes = sign_online(policy, keystore, root, "snapshot", &mut new_snapshot)?;
    let new_timestamp = timestamp_for(
        timestamp.signed.version + 1,
        expiry(now, period("timestamp")?),
        &snapshot_bytes,
        new_snapshot.signed.version,
    );
    let mut new_timestamp = new_timestamp;
    let timestamp_bytes = sign_online(policy, keystore, root, "timestamp", &mut new_timestamp)?;

    let mut files: Vec<(String, Vec<u8>)> = pushed
        .iter()
        .map(|(name, md)| {
            (
                format!("{}.{name}.json", md.signed.version),
                request
                    .roles
                    .get(name)
                    .map(|t| t.as_bytes().to_vec())
                    .unwrap_or_default(),
            )
        })
        .collect();
    files.push((
        format!("{}.snapshot.json", new_snapshot.signed.version),
        snapshot_bytes.clone(),
    ));
    write_tree(repo_dir, &blobs, &files, None, &timestamp_bytes).map_err(internal)?;
    let accepted = Accepted {
        roles: pushed
            .iter()
            .map(|(n, md)| (n.clone(), md.signed.version))
            .collect(),
        artifacts: blobs.len(),
        snapshot_version: new_snapshot.signed.version,
        timestamp_version: new_timestamp.signed.version,
        snapshot: snapshot_bytes,
        timestamp: timestamp_bytes,
    };
    let listings = pushed
        .iter()
        .map(|(name, md)| RoleListing::of(name, md))
        .collect();
    Ok((accepted, listings))
}

/// The uploaded blob for a new target: present, of the signed length, matching every
/// listed hash. Returns its SHA-256.
fn check_artifact(repo_dir: &Path, path: &str, file: &TargetFile) -> Result<String, PushError> {
    let sha256 = file
        .hashes
        .get("sha256")
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| PushError::Invalid(format!("{path} lists no sha256 hash")))?
        .to_ascii_lowercase();
    let blob = staging::blob_path(repo_dir, &sha256);
    let bytes = match fsutil::read_capped(&blob, file.length) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(PushError::Artifact(format!(
                "{path}: no uploaded artifact with sha256 {sha256} (upload it first: PUT /api/v1/blobs/{sha256})"
            )))
        }
        Err(e) => {
            return Err(PushError::Artifact(format!(
                "{path}: the uploaded artifact does not have the signed length {}: {e}",
                file.length
            )))
        }
    };
    file.verify(&bytes)
        .map_err(|e| PushError::Artifact(format!("{path}: {e}")))?;
    Ok(sha256)
}

fn timestamp_for(
    version: u64,
    expires: DateTime<Utc>,
    snapshot_bytes: &[u8],
    snapshot_version: u64,
) -> Metadata<Timestamp> {
    let mut pin = MetaFile::new(snapshot_version);
    pin.length = Some(snapshot_bytes.len() as u64);
    pin.hashes = Some(BTreeMap::from([(
        "sha256".to_owned(),
        sealwright_crypto::digest::sha256_hex(snapshot_bytes),
    )]));
    let mut ts = Metadata::new(Timestamp::new(version, expires, pin));
    ts.signed.spec_version = SPEC_VERSION.to_owned();
    ts
}

/// Signs an online role with the policy's keys for it (the agent's) and checks the result
/// against root's threshold for that role — what a client will check.
fn sign_online<T: sealwright_tuf::metadata::RoleType>(
    policy: &Policy,
    keystore: &KeyStore<'_>,
    root: &Metadata<Root>,
    role: &str,
    md: &mut Metadata<T>,
) -> Result<Vec<u8>, PushError> {
    let r = root
        .signed
        .roles
        .get(role)
        .ok_or_else(|| internal(format!("root has no {role} role")))?;
    let needed: BTreeSet<String> = r.keyids.iter().cloned().collect();
    let signers = open_signers(policy, keystore, &needed).map_err(internal)?;
    let canonical = sign_with(md, &r.keyids, &signers).map_err(internal)?;
    verify_role(
        role,
        &canonical,
        &md.signatures,
        &root.signed.keys,
        &r.keyids,
        r.threshold,
    )
    .map_err(|e| {
        internal(format!(
            "{e} (is the signer agent running and configured for {role}?)"
        ))
    })?;
    md.to_bytes().map_err(internal)
}

/// Signs a new timestamp (same snapshot) when less than a quarter of the current one's
/// validity period is left. Returns the new version, if one was written.
pub fn renew_timestamp(
    repo_dir: &Path,
    policy: &Policy,
    keystore: &KeyStore<'_>,
    now: DateTime<Utc>,
) -> Result<Option<u64>, PushError> {
    let _lock = lock(repo_dir)?;
    let published = Published::load(repo_dir).map_err(internal)?;
    let (Some(root), Some(ts)) = (published.root.as_ref(), published.timestamp.as_ref()) else {
        return Ok(None);
    };
    let period = policy
        .role("timestamp")
        .map(|(_, _, p)| p.duration())
        .ok_or_else(|| internal("no timestamp role in the policy"))?;
    if !expiring(ts.signed.expires, period, now) {
        return Ok(None);
    }
    let pin = ts
        .signed
        .snapshot_meta()
        .cloned()
        .ok_or_else(|| internal("timestamp.json has no snapshot entry"))?;
    let mut next = Metadata::new(Timestamp::new(
        ts.signed.version + 1,
        expiry(now, period),
        pin,
    ));
    next.signed.spec_version = SPEC_VERSION.to_owned();
    let bytes = sign_online(policy, keystore, root, "timestamp", &mut next)?;
    let path = repo_dir
        .join(publish::PUBLISHED_DIR)
        .join("metadata")
        .join("timestamp.json");
    fsutil::write_atomic(&path, &bytes).map_err(internal)?;
    Ok(Some(next.signed.version))
}

/// What the publisher sends: the signed roles, and the blobs (SHA-256, target path) the
/// server must have before it accepts them.
#[derive(Debug)]
pub struct Outgoing {
    /// The request body.
    pub request: PushRequest,
    /// Artifacts the new roles list, as blob SHA-256 and target path.
    pub blobs: Vec<(String, String)>,
}

/// The publisher's side: signs the planned targets roles with this machine's keys, hands
/// them to `send` (which uploads the blobs and the roles), checks the snapshot and timestamp
/// the server answers with against our root, and writes the new state into our own
/// `published/`. A plan that changes root cannot be pushed.
pub fn push(
    repo_dir: &Path,
    policy: &Policy,
    keystore: &KeyStore<'_>,
    mut plan: Plan,
    send: &mut dyn FnMut(&Outgoing) -> Result<Accepted, String>,
) -> Result<(PublishReport, Accepted), PublishError> {
    if plan.root.is_some() {
        return Err(PublishError::Pending(
            "this publish changes root; root is never pushed: publish it with `sealwright publish` and copy published/metadata/N.root.json and root.json to the server".into(),
        ));
    }
    if plan.targets.is_empty() {
        return Err(PublishError::Pending(
            "nothing to push: stage artifacts with `sealwright add` first".into(),
        ));
    }
    let pending = Pending::new(repo_dir);
    let needed: BTreeSet<String> = plan
        .authority
        .values()
        .flat_map(|a| a.keyids.iter().cloned())
        .collect();
    let signers = open_signers(policy, keystore, &needed)?;
    let mut report = PublishReport {
        targets_added: plan.targets_added,
        ..Default::default()
    };
    let files = publish::sign_targets_roles(&mut plan, &pending, &signers, policy, &mut report)?;
    let mut request = PushRequest::default();
    for (name, md) in &plan.targets {
        let file = format!("{}.{name}.json", md.signed.version);
        let bytes = files
            .iter()
            .find(|(f, _)| *f == file)
            .map(|(_, b)| b.clone())
            .ok_or_else(|| meta_err(format!("{file} was not signed")))?;
        request
            .roles
            .insert(name.clone(), String::from_utf8(bytes).map_err(meta_err)?);
    }
    let outgoing = Outgoing {
        request,
        blobs: plan.blobs.clone(),
    };
    let accepted = send(&outgoing).map_err(PublishError::Pending)?;

    // The server's snapshot and timestamp become our published state: check them as a
    // client would before writing them (signed by root's keys, pinning each other and
    // naming exactly the versions we pushed).
    let published = Published::load(repo_dir)?;
    let root = published
        .root
        .ok_or_else(|| meta_err("no published root"))?;
    check_answer(&root.signed, &plan, &accepted)?;
    let mut all = files;
    all.push((
        format!("{}.snapshot.json", accepted.snapshot_version),
        accepted.snapshot.clone(),
    ));
    write_tree(repo_dir, &plan.blobs, &all, None, &accepted.timestamp)?;
    Staging::clear(repo_dir)?;
    pending.clear()?;
    report
        .roles
        .insert("snapshot".into(), accepted.snapshot_version);
    report
        .roles
        .insert("timestamp".into(), accepted.timestamp_version);
    Ok((report, accepted))
}

fn check_answer(root: &Root, plan: &Plan, accepted: &Accepted) -> Result<(), PublishError> {
    let bad =
        |m: String| PublishError::Pending(format!("the server's answer is not trustworthy: {m}"));
    let snapshot = Metadata::<Snapshot>::from_bytes(&accepted.snapshot, MAX_ROLE_BYTES)
        .map_err(|e| bad(format!("snapshot: {e}")))?;
    let timestamp = Metadata::<Timestamp>::from_bytes(&accepted.timestamp, MAX_ROLE_BYTES)
        .map_err(|e| bad(format!("timestamp: {e}")))?;
    for (role, canonical, sigs) in [
        (
            "snapshot",
            snapshot.received_canonical(),
            &snapshot.signatures,
        ),
        (
            "timestamp",
            timestamp.received_canonical(),
            &timestamp.signatures,
        ),
    ] {
        let r = root
            .roles
            .get(role)
            .ok_or_else(|| bad(format!("root has no {role} role")))?;
        verify_role(
            role,
            canonical.unwrap_or_default(),
            sigs,
            &root.keys,
            &r.keyids,
            r.threshold,
        )
        .map_err(|e| bad(e.to_string()))?;
    }
    let pin = timestamp
        .signed
        .snapshot_meta()
        .ok_or_else(|| bad("timestamp pins no snapshot".into()))?;
    pin.verify(&accepted.snapshot)
        .map_err(|e| bad(format!("timestamp does not pin this snapshot: {e}")))?;
    if pin.version != snapshot.signed.version
        || snapshot.signed.version != accepted.snapshot_version
    {
        return Err(bad("snapshot versions disagree".into()));
    }
    for (name, md) in &plan.targets {
        if snapshot.signed.role_version(name) != Some(md.signed.version) {
            return Err(bad(format!(
                "snapshot does not list {name} version {}",
                md.signed.version
            )));
        }
    }
    Ok(())
}

/// The server's passphrase source: it never has one, so it can open no key file (its
/// online keys are reached through the signer agent only).
#[derive(Debug, Default)]
pub struct NoKeyFiles;

impl crate::PassphraseSource for NoKeyFiles {
    fn existing(
        &self,
        key_name: &str,
        _attempt: u32,
    ) -> Result<sealwright_crypto::Passphrase, crate::KeyStoreError> {
        Err(crate::KeyStoreError::Other(format!(
            "the server opens no key files (key {key_name}): point it at the signer agent"
        )))
    }

    fn new_key(
        &self,
        key_name: &str,
    ) -> Result<sealwright_crypto::Passphrase, crate::KeyStoreError> {
        self.existing(key_name, 0)
    }

    fn interactive(&self) -> bool {
        false
    }
}

/// The server signs only through the signer agent: every key of the snapshot and timestamp
/// roles must have an `agent:SOCKET` location.
pub fn check_online_keys_in_agent(policy: &Policy) -> Result<(), PushError> {
    for role in crate::agent::ONLINE_ROLES {
        let (keys, _, _) = policy
            .role(role)
            .ok_or_else(|| PushError::NotReady(format!("the policy has no {role} role")))?;
        for name in keys {
            let located = policy
                .keys
                .get(name)
                .and_then(|k| k.private.as_deref())
                .is_some_and(|l| l.starts_with("agent:"));
            if !located {
                return Err(PushError::NotReady(format!(
                    "{role} key {name} is not at an agent:SOCKET location; the push API signs {role} only through `sealwright signer serve` (see docs/signer.md)"
                )));
            }
        }
    }
    Ok(())
}

/// What one targets role lists: role, its version, and each target's path, length and
/// SHA-256 (empty when the role lists no SHA-256) — the rows of the server's index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoleListing {
    /// Role name.
    pub role: String,
    /// Its version.
    pub version: u64,
    /// (path, length, sha256) of every target it lists.
    pub targets: Vec<(String, u64, String)>,
}

impl RoleListing {
    fn of(role: &str, md: &Metadata<Targets>) -> Self {
        RoleListing {
            role: role.to_owned(),
            version: md.signed.version,
            targets: md
                .signed
                .targets
                .iter()
                .map(|(path, file): (&String, &TargetFile)| {
                    let sha256 = file.hashes.get("sha256").cloned().unwrap_or_default();
                    (path.clone(), file.length, sha256)
                })
                .collect(),
        }
    }
}

/// The listings of every targets role the published snapshot names (to rebuild the index).
pub fn published_listings(repo_dir: &Path) -> Result<Vec<RoleListing>, PushError> {
    let published = Published::load(repo_dir).map_err(internal)?;
    let Some(snapshot) = published.snapshot else {
        return Ok(Vec::new());
    };
    let metadata = repo_dir.join(publish::PUBLISHED_DIR).join("metadata");
    let mut out = Vec::new();
    for (file, meta) in &snapshot.signed.meta {
        let Some(role) = file.strip_suffix(".json") else {
            continue;
        };
        let path = metadata.join(format!("{}.{role}.json", meta.version));
        let bytes = fsutil::read_capped(&path, MAX_ROLE_BYTES as u64)
            .map_err(|e| internal(format!("{}: {e}", path.display())))?;
        let md = Metadata::<Targets>::from_bytes(&bytes, MAX_ROLE_BYTES)
            .map_err(|e| internal(format!("{}: {e}", path.display())))?;
        out.push(RoleListing::of(role, &md));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
    use super::*;
    use proptest::prelude::*;

    /// A published repository (shared by every case: refused pushes must leave it as it is).
    fn fixture() -> &'static (tempfile::TempDir, Policy) {
        static FIXTURE: std::sync::OnceLock<(tempfile::TempDir, Policy)> =
            std::sync::OnceLock::new();
        FIXTURE.get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let repo = dir.path().join("repo");
            let source = crate::FixedPassphrase(sealwright_crypto::Passphrase::new("pw".into()));
            let store = KeyStore::new(&repo, &source);
            let policy = crate::init::create_repository(
                &repo,
                Policy::new_default(),
                sealwright_crypto::Algorithm::Ed25519,
                &store,
                None,
            )
            .unwrap();
            let plan = publish::plan(&repo, &policy, Utc::now()).unwrap();
            publish::execute(&repo, &policy, &store, plan).unwrap();
            (dir, policy)
        })
    }

    /// Every file under `dir` with its bytes.
    fn tree(dir: &Path) -> Vec<(std::path::PathBuf, Vec<u8>)> {
        let mut out = Vec::new();
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                out.extend(tree(&path));
            } else {
                out.push((path.clone(), fs::read(&path).unwrap()));
            }
        }
        out.sort();
        out
    }

    /// Role names, valid or not, and the published top-level targets metadata either intact
    /// (a replay) or with one byte changed.
    fn requests() -> impl Strategy<Value = Vec<u8>> {
        let role = prop_oneof![
            Just("targets".to_owned()),
            "[a-z./\\\\]{0,12}",
            Just("../../etc".to_owned()),
        ];
        let text = (any::<prop::sample::Index>(), any::<u8>(), any::<bool>()).prop_map(
            |(at, byte, mutate)| {
                let (dir, _) = fixture();
                let path = dir.path().join("repo/published/metadata/1.targets.json");
                let mut bytes = fs::read(path).unwrap();
                if mutate {
                    let i = at.index(bytes.len());
                    bytes[i] = byte;
                }
                String::from_utf8_lossy(&bytes).into_owned()
            },
        );
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..256),
            proptest::collection::btree_map(role, text, 0..3)
                .prop_map(|roles| { serde_json::to_vec(&PushRequest { roles }).unwrap() }),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Whatever a push body holds, `accept` refuses it with a typed error (the signer
        /// would never be reached: replays and broken signatures stop earlier), never panics,
        /// and writes nothing.
        #[test]
        fn arbitrary_push_bodies_are_refused_without_writing(body in requests()) {
            let (dir, policy) = fixture();
            let repo = dir.path().join("repo");
            let before = tree(&repo.join("published"));
            let token = TokenEntry {
                name: "any".into(),
                sha256: String::new(),
                client_cert: None,
                roles: vec!["targets".into(), "a".into(), "../../etc".into()],
                paths: vec![],
            };
            let store = KeyStore::new(&repo, &NoKeyFiles);
            if let Ok(request) = serde_json::from_slice::<PushRequest>(&body) {
                let result = accept(&repo, policy, &store, &token, &request, Utc::now());
                prop_assert!(result.is_err());
            }
            prop_assert_eq!(tree(&repo.join("published")), before);
        }
    }
}
