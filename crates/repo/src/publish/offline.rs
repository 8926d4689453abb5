//! Offline signatures (`staged/pending/`): a role version waiting for signatures made on
//! another machine (`sign-request`, `sign`, `sign-import`), adopted when publishing.

use std::fs;
use std::path::{Path, PathBuf};

use sealwright_tuf::metadata::Metadata;

use crate::fsutil;

use super::*;

/// Offline signatures collected for role versions not yet published (`staged/pending/`).
#[derive(Debug, Default)]
pub struct Pending {
    dir: PathBuf,
}

impl Pending {
    /// The pending directory of a repository.
    pub fn new(repo_dir: &Path) -> Self {
        Pending {
            dir: repo_dir.join(PENDING_DIR),
        }
    }

    fn path(&self, role: &str) -> PathBuf {
        self.dir.join(format!("{role}.pending"))
    }

    /// The stored pending metadata for `role` (signed part plus signatures so far).
    pub fn load(&self, role: &str) -> Result<Option<serde_json::Value>, PublishError> {
        let path = self.path(role);
        match fsutil::read_capped(&path, MAX_METADATA_BYTES) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| PublishError::Pending(format!("{}: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(&path)(e)),
        }
    }

    /// Stores pending metadata for `role`.
    pub fn save(&self, role: &str, value: &serde_json::Value) -> Result<(), PublishError> {
        let path = self.path(role);
        let bytes = serde_json::to_vec_pretty(value).map_err(meta_err)?;
        fsutil::write_atomic(&path, &bytes).map_err(io_err(&path))
    }

    /// The roles with a pending version.
    pub fn roles(&self) -> Result<Vec<String>, PublishError> {
        let entries = match fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
            Err(e) => return Err(io_err(&self.dir)(e)),
        };
        let mut roles: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                e.file_name()
                    .to_str()
                    .and_then(|n| n.strip_suffix(".pending"))
                    .map(str::to_owned)
            })
            .collect();
        roles.sort();
        Ok(roles)
    }

    /// Forgets all pending requests.
    pub fn clear(&self) -> Result<(), PublishError> {
        match fs::remove_dir_all(&self.dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(&self.dir)(e)),
        }
    }
}

/// Adopts pending offline signatures: if `role` has a pending version, the planned metadata
/// must be the same document (modulo the expiry fixed at request time), and its signatures
/// are carried over. A pending request made before later changes is refused, never signed
/// over silently.
pub(super) fn adopt_pending<T>(
    pending: &Pending,
    role: &str,
    md: &mut Metadata<T>,
) -> Result<(), PublishError>
where
    T: serde::Serialize + serde::de::DeserializeOwned + sealwright_tuf::metadata::RoleType + Clone,
{
    let Some(stored) = pending.load(role)? else {
        return Ok(());
    };
    let stored_md: Metadata<T> = Metadata::from_value(stored)
        .map_err(|e| PublishError::Pending(format!("pending {role}: {e}")))?;
    md.set_expires(stored_md.expires());
    if md.canonical_signed().map_err(meta_err)? != stored_md.canonical_signed().map_err(meta_err)? {
        return Err(PublishError::Pending(format!(
            "the pending signing request for {role} is out of date (the repository changed since): run `sealwright sign-request {role}` again"
        )));
    }
    md.signatures = stored_md.signatures;
    Ok(())
}

/// `type` of a signing request file.
pub const REQUEST_TYPE: &str = "sealwright-sign-request/v1";
/// `type` of a signature file.
pub const SIGNATURE_TYPE: &str = "sealwright-signature/v1";
/// Largest signing request read (a targets role with many entries).
pub const MAX_REQUEST_BYTES: u64 = 512 * 1024 * 1024;
/// Largest signature file read.
pub const MAX_SIGNATURE_BYTES: u64 = 1024 * 1024;

/// What `sign-request` hands to the offline machine: the exact `signed` object and the
/// SHA-256 of its canonical JSON.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SignRequest {
    /// [`REQUEST_TYPE`].
    #[serde(rename = "type")]
    pub kind: String,
    /// The role.
    pub role: String,
    /// Its pending version.
    pub version: u64,
    /// SHA-256 (hex) of the canonical JSON of `signed`.
    pub signed_sha256: String,
    /// What is to be signed.
    pub signed: serde_json::Value,
    /// The `signed` of the version devices have now (none for a first version): what
    /// `sign` shows the changes against (`crate::review`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub published: Option<serde_json::Value>,
    /// The role's validity period in the policy, in days (flags an expiry beyond it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_days: Option<i64>,
}

impl SignRequest {
    /// The changes it asks for against the version published, risky ones flagged.
    pub fn review(&self, now: chrono::DateTime<chrono::Utc>) -> Vec<crate::review::Change> {
        crate::review::review(
            self.published.as_ref(),
            &self.signed,
            self.policy_days.map(chrono::Duration::days),
            now,
        )
    }
}

/// What `sign` hands back.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SignatureFile {
    /// [`SIGNATURE_TYPE`].
    #[serde(rename = "type")]
    pub kind: String,
    /// The role.
    pub role: String,
    /// The version signed.
    pub version: u64,
    /// SHA-256 of the canonical JSON signed.
    pub signed_sha256: String,
    /// The signing key.
    pub keyid: String,
    /// The signature (hex).
    pub sig: String,
}

fn offline(why: String) -> PublishError {
    PublishError::Offline(why)
}

/// Online: the next version of `role` (root, targets or a delegated role), kept in
/// `staged/pending/` and returned as a request to sign offline.
pub fn request_signature(
    repo_dir: &Path,
    policy: &crate::policy::Policy,
    role: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<SignRequest, PublishError> {
    if role == "timestamp" || role == "snapshot" {
        return Err(offline(format!("{role} is an online role: its keys sign at publish time (it pins the bytes of the roles below it)")));
    }
    let mut plan = plan(repo_dir, policy, now)?;
    let Some(document) = plan.role_document(repo_dir, role)? else {
        return Err(offline(format!(
            "role {role} has no change to sign: nothing staged for it and it is not expiring"
        )));
    };
    Pending::new(repo_dir).save(role, &document)?;
    let published = published_signed(repo_dir, role)?;
    let policy_days = policy.role(role).map(|(_, _, p)| p.duration().num_days());
    let signed = document.get("signed").cloned().unwrap_or_default();
    let canonical = sealwright_crypto::canonical::to_canonical_json(&signed).map_err(meta_err)?;
    Ok(SignRequest {
        kind: REQUEST_TYPE.into(),
        role: role.to_owned(),
        version: signed.get("version").and_then(|v| v.as_u64()).unwrap_or(0),
        signed_sha256: sealwright_crypto::digest::sha256_hex(&canonical),
        signed,
        published,
        policy_days,
    })
}

/// The `signed` of the published version of `role`, if there is one.
fn published_signed(
    repo_dir: &Path,
    role: &str,
) -> Result<Option<serde_json::Value>, PublishError> {
    let published = super::Published::load(repo_dir)?;
    let value = if role == "root" {
        published
            .root
            .as_ref()
            .map(|r| serde_json::to_value(&r.signed))
            .transpose()
            .map_err(meta_err)?
    } else {
        published
            .targets_role(role)?
            .map(|t| serde_json::to_value(&t.signed))
            .transpose()
            .map_err(meta_err)?
    };
    Ok(value)
}

/// Offline: a request as read, refused unless its content matches its digest; returns it
/// with the canonical bytes to sign.
pub fn check_request(bytes: &[u8]) -> Result<(SignRequest, Vec<u8>), PublishError> {
    let req: SignRequest = serde_json::from_slice(bytes)
        .map_err(|e| offline(format!("not a signing request: {e}")))?;
    if req.kind != REQUEST_TYPE {
        return Err(offline(format!("not a {REQUEST_TYPE} file")));
    }
    let canonical =
        sealwright_crypto::canonical::to_canonical_json(&req.signed).map_err(meta_err)?;
    if sealwright_crypto::digest::sha256_hex(&canonical) != req.signed_sha256 {
        return Err(offline(
            "the signed content does not match its digest; the request was altered".into(),
        ));
    }
    Ok((req, canonical))
}

/// Offline: signs a checked request with `key`.
pub fn sign_request(
    req: &SignRequest,
    canonical: &[u8],
    key: &dyn sealwright_crypto::Signer,
) -> Result<SignatureFile, PublishError> {
    let sig = key
        .sign(canonical)
        .map_err(|e| offline(format!("signing: {e}")))?;
    Ok(SignatureFile {
        kind: SIGNATURE_TYPE.into(),
        role: req.role.clone(),
        version: req.version,
        signed_sha256: req.signed_sha256.clone(),
        keyid: key.keyid().to_owned(),
        sig: hex::encode(sig),
    })
}

/// Who has signed a pending version and who may still.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PendingStatus {
    /// The role.
    pub role: String,
    /// Its pending version.
    pub version: u64,
    /// Signatures needed.
    pub threshold: u64,
    /// Keys that signed (policy names, or key ids the policy does not name).
    pub signed_by: Vec<String>,
    /// Keys authorised that have not signed.
    pub missing: Vec<String>,
}

/// Online: every pending version with its signatures so far (`sign-status`).
pub fn pending_status(
    repo_dir: &Path,
    policy: &crate::policy::Policy,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<PendingStatus>, PublishError> {
    let pending = Pending::new(repo_dir);
    let roles = pending.roles()?;
    if roles.is_empty() {
        return Ok(vec![]);
    }
    let plan = plan(repo_dir, policy, now)?;
    let name_of = |keyid: &str| {
        policy
            .keys
            .iter()
            .find(|(_, k)| k.keyid == keyid)
            .map(|(n, _)| n.clone())
            .unwrap_or_else(|| keyid.to_owned())
    };
    let mut out = Vec::new();
    for role in roles {
        let Some(document) = pending.load(&role)? else {
            continue;
        };
        let signed_ids: Vec<String> = document
            .get("signatures")
            .and_then(|s| s.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.get("keyid")?.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let allowed = plan
            .signing_authority(&role)
            .map(|(_, ids)| ids)
            .unwrap_or_default();
        let threshold = policy.role(&role).map_or(0, |(_, t, _)| u64::from(t));
        out.push(PendingStatus {
            version: document
                .get("signed")
                .and_then(|s| s.get("version"))
                .and_then(|v| v.as_u64())
                .unwrap_or(0),
            threshold,
            signed_by: signed_ids.iter().map(|k| name_of(k)).collect(),
            missing: allowed
                .iter()
                .filter(|k| !signed_ids.contains(k))
                .map(|k| name_of(k))
                .collect(),
            role,
        });
    }
    Ok(out)
}

/// Online: adds a signature made offline to the pending version it was made for, and
/// records it in the audit log. Refused unless it is over exactly the pending content, by a
/// key authorised for the role, and verifies. Returns the signature and how many the
/// pending version now has.
pub fn import_signature(
    repo_dir: &Path,
    policy: &crate::policy::Policy,
    bytes: &[u8],
    now: chrono::DateTime<chrono::Utc>,
) -> Result<(SignatureFile, usize), PublishError> {
    let sig: SignatureFile =
        serde_json::from_slice(bytes).map_err(|e| offline(format!("not a signature file: {e}")))?;
    if sig.kind != SIGNATURE_TYPE {
        return Err(offline(format!("not a {SIGNATURE_TYPE} file")));
    }
    let pending = Pending::new(repo_dir);
    let Some(mut document) = pending.load(&sig.role)? else {
        return Err(offline(format!(
            "no pending signing request for role {}: run `sealwright sign-request {}` first",
            sig.role, sig.role
        )));
    };
    let signed = document.get("signed").cloned().unwrap_or_default();
    let canonical = sealwright_crypto::canonical::to_canonical_json(&signed).map_err(meta_err)?;
    if sealwright_crypto::digest::sha256_hex(&canonical) != sig.signed_sha256 {
        return Err(offline(format!("this signature is for a different version of {} than the one pending (request it again)", sig.role)));
    }
    let plan = plan(repo_dir, policy, now)?;
    let (keys, allowed) = plan
        .signing_authority(&sig.role)
        .ok_or_else(|| offline(format!("role {} has nothing pending to sign", sig.role)))?;
    if !allowed.contains(&sig.keyid) {
        return Err(offline(format!(
            "key {} is not authorised to sign role {}",
            sig.keyid, sig.role
        )));
    }
    let key = keys
        .get(&sig.keyid)
        .ok_or_else(|| offline(format!("unknown key {}", sig.keyid)))?;
    let raw = hex::decode(&sig.sig).map_err(|_| offline("the signature is not hex".into()))?;
    key.verify(&canonical, &raw).map_err(|e| {
        offline(format!(
            "signature by {} does not verify over the pending {}: {e}",
            sig.keyid, sig.role
        ))
    })?;
    let sigs = document
        .get_mut("signatures")
        .and_then(|s| s.as_array_mut())
        .ok_or_else(|| offline(format!("pending {} is corrupt", sig.role)))?;
    sigs.retain(|s| s.get("keyid").and_then(|k| k.as_str()) != Some(sig.keyid.as_str()));
    sigs.push(serde_json::json!({"keyid": sig.keyid, "sig": sig.sig}));
    let count = sigs.len();
    pending.save(&sig.role, &document)?;
    sealwright_store::audit::record_local(
        repo_dir,
        "signature-import",
        &sig.role,
        serde_json::json!({"keyid": sig.keyid, "version": sig.version}),
    )?;
    Ok((sig, count))
}

#[cfg(test)]
mod props {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// A signing request arrives from another machine: any bytes give a checked
        /// request or a typed refusal, never a panic; an altered `signed` is refused.
        #[test]
        fn any_request_bytes_give_a_request_or_a_refusal(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = check_request(&bytes);
        }

        #[test]
        fn an_altered_request_is_refused(version in 1u64..1000, other in 1u64..1000) {
            prop_assume!(version != other);
            let signed = serde_json::json!({"_type": "root", "version": version});
            let canonical = sealwright_crypto::canonical::to_canonical_json(&signed).unwrap();
            let mut req = SignRequest {
                kind: REQUEST_TYPE.into(),
                role: "root".into(),
                version,
                signed_sha256: sealwright_crypto::digest::sha256_hex(&canonical),
                signed,
                published: None,
                policy_days: None,
            };
            prop_assert!(check_request(&serde_json::to_vec(&req).unwrap()).is_ok());
            req.signed = serde_json::json!({"_type": "root", "version": other});
            let refused = check_request(&serde_json::to_vec(&req).unwrap());
            prop_assert!(matches!(refused, Err(PublishError::Offline(_))));
        }
    }
}
