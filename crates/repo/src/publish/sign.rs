//! Step 2, signing: each role signed by the keys the policy names, then checked against
//! its threshold with the client's own verification code before anything is written.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use rayon::prelude::*;

use sealwright_crypto::{PublicKey, Signer};
use sealwright_tuf::metadata::{Metadata, Signature};

use crate::keyring::{Keyring, KeyringError};
use crate::policy::{Policy, PolicyError};

use super::*;

/// Signs `md` with every available key among `keyids`; returns the canonical bytes that
/// were signed (the threshold check runs over the same bytes).
pub fn sign_with<T: sealwright_tuf::metadata::RoleType>(
    md: &mut Metadata<T>,
    keyids: &[String],
    signers: &HashMap<String, Box<dyn Signer>>,
) -> Result<Vec<u8>, PublishError> {
    let canonical = md.canonical_signed().map_err(meta_err)?;
    for id in keyids {
        if let Some(key) = signers.get(id) {
            md.sign_canonical(&canonical, key.as_ref())
                .map_err(meta_err)?;
        }
    }
    Ok(canonical)
}

/// Checks signatures over `canonical` against a threshold of `keyids`, explaining what is
/// missing. This is the client's own threshold check.
pub(super) fn check_threshold(
    role: &str,
    canonical: &[u8],
    signatures: &[Signature],
    keys: &BTreeMap<String, PublicKey>,
    keyids: &[String],
    threshold: u32,
    policy: &Policy,
) -> Result<(), PublishError> {
    sealwright_tuf::verify::verify_role(role, canonical, signatures, keys, keyids, threshold).map_err(|e| {
        let missing: Vec<String> = keyids
            .iter()
            .filter(|id| !signatures.iter().any(|s| &s.keyid == *id))
            .map(|id| {
                policy
                    .keys
                    .iter()
                    .find(|(_, k)| &k.keyid == id)
                    .map(|(n, k)| if k.private.is_some() { n.clone() } else { format!("{n} (offline)") })
                    .unwrap_or_else(|| id.get(..12).unwrap_or(id).to_owned())
            })
            .collect();
        PublishError::Threshold(format!(
            "{e}; unsigned keys: {}. Sign offline with `sealwright sign-request {role}`, `sealwright sign`, `sealwright sign-import`",
            if missing.is_empty() { "none".to_owned() } else { missing.join(", ") }
        ))
    })
}

/// Opens a signer for every key of `policy` whose keyid is in `needed` and whose private
/// part this machine holds (a file, a token, or the signer agent).
pub fn open_signers(
    policy: &Policy,
    keyring: &Keyring<'_>,
    needed: &BTreeSet<String>,
) -> Result<HashMap<String, Box<dyn Signer>>, PublishError> {
    let mut names: Vec<(&String, &String)> = Vec::new();
    for (name, entry) in &policy.keys {
        if needed.contains(&entry.keyid) && !names.iter().any(|(_, id)| *id == &entry.keyid) {
            names.push((name, &entry.keyid));
        }
    }
    let open = |(name, keyid): &(&String, &String)| {
        keyring
            .open_signer(policy, name)
            .map(|key| key.map(|k| ((*keyid).clone(), k)))
    };
    // Unlocking a key file costs a deliberately slow key derivation (scrypt); with the
    // passphrase from a file or variable the keys unlock side by side. A prompt asks in turn.
    type Opened = Result<Option<(String, Box<dyn Signer>)>, KeyringError>;
    let opened: Vec<Opened> = if keyring.interactive() {
        names.iter().map(open).collect()
    } else {
        names.par_iter().map(open).collect()
    };
    let mut signers = HashMap::new();
    for key in opened {
        if let Some((keyid, signer)) = key? {
            signers.insert(keyid, signer);
        }
    }
    Ok(signers)
}

/// Signs every planned targets role (in parallel: hash-bin repositories have thousands) and
/// checks each against its delegator's threshold; returns `(N.ROLE.json, bytes)` per role.
pub(crate) fn sign_targets_roles(
    plan: &mut Plan,
    pending: &Pending,
    signers: &HashMap<String, Box<dyn Signer>>,
    policy: &Policy,
    report: &mut PublishReport,
) -> Result<Vec<(String, Vec<u8>)>, PublishError> {
    let authority = &plan.authority;
    let signed_targets: Vec<Result<SignedRole, PublishError>> = plan
        .targets
        .par_iter_mut()
        .map(|(name, md)| {
            adopt_pending(pending, name, md)?;
            let a = authority
                .get(name)
                .ok_or_else(|| meta_err(format!("no authority for role {name}")))?;
            let enc = sign_with(md, &a.keyids, signers)?;
            check_threshold(
                name,
                &enc,
                &md.signatures,
                &a.keys,
                &a.keyids,
                a.threshold,
                policy,
            )?;
            Ok((
                name.clone(),
                md.signed.version,
                md.signed.expires.to_rfc3339(),
                md.file_bytes(&enc).map_err(meta_err)?,
            ))
        })
        .collect();
    let mut files: Vec<(String, Vec<u8>)> = Vec::with_capacity(signed_targets.len() + 2);
    for r in signed_targets {
        let (name, version, expires, bytes) = r?;
        let client_limit = sealwright_tuf::engine::Limits::default().targets;
        if bytes.len() > client_limit {
            report.warnings.push(format!(
                "role {name} is {} bytes, more than the {client_limit} TUF clients accept by default (python-tuf's targets_max_length, ours): spread it over hash bins (`sealwright delegate NAME --succinct BITS`) or raise the clients' limit",
                bytes.len()
            ));
        }
        files.push((sealwright_tuf::layout::metadata_file(&name, version), bytes));
        report.roles.insert(name.clone(), version);
        report.expires.insert(name, expires);
    }
    Ok(files)
}

pub(super) fn top_level_authority(
    policy: &Policy,
    role: &str,
) -> Result<(BTreeMap<String, PublicKey>, u32), PublishError> {
    let (keys, threshold, _) = policy
        .role(role)
        .ok_or_else(|| PolicyError::Invalid(format!("no {role} role")))?;
    Ok((policy.public_keys(keys)?, threshold))
}
