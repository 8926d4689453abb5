//! The server's half of the publish API: the check of a push
//! through the client's own trust engine ([`accept`]), and keeping the online roles alive
//! with nobody pushing ([`renew_online_roles`]). The wire types and the publisher's half
//! are in `sealwright_repo::push`.
//!
//! Guarantees, each enforced in one named function below:
//! - a push is checked by asking `sealwright-tuf`'s [`TrustedMetadataSet`] the client's own
//!   questions under the snapshot the server would sign (`sealwright_repo::verify::Candidate`,
//!   which `sealwright publish` asks too): each pushed role
//!   verifies against the keys its delegator on the search path names, and a client's
//!   search for each written path lands on the pushing role — there is no second walker;
//! - a token's path scope covers every change, removals and delegations included
//!   ([`check_token_scope`]); a channel pointer names a published artifact, it grants none
//!   ([`check_pointer`]);
//! - everything that can fail is checked before anything is signed ([`check_writable`]),
//!   and what still fails after signing costs a version number, never the ability to
//!   publish ([`sealwright_repo::publish::OnlineFloor`]);
//! - a refused push writes nothing.
//!
//! Not guaranteed: a signer agent that is down or refuses stops pushes and renewals until
//! it is back (they fail cleanly and are retried); the server's own files are trusted
//! (whoever can write the data directory can change what is served, not what clients
//! accept).

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

use chrono::{DateTime, Utc};

use sealwright_repo::attestations::{check_new_targets, NewTarget};
use sealwright_repo::fsutil;

use crate::storage::Session;
pub use crate::tokens::{TokenEntry, Tokens, TOKENS_FILE};
use sealwright_repo::keyring::Keyring;
use sealwright_repo::policy::Policy;
use sealwright_repo::publish::{
    self, expiring, expiry, open_signers, sign_with, Published, RoleCache, SPEC_VERSION,
};
use sealwright_repo::push::{Accepted, PushError, PushRequest, MAX_ROLE_BYTES};
use sealwright_repo::staging::{self, validate_target_path};
use sealwright_repo::verify::{changes, Candidate, CandidateError, Changes, Fresh};
use sealwright_tlog::entry::Entry;
use sealwright_tuf::metadata::{
    MetaFile, Metadata, Received, Root, Snapshot, TargetFile, Targets, Timestamp,
};
use sealwright_tuf::verify::verify_role;

/// How long a new version of top-level `role` is valid, from the policy.
fn role_period(policy: &Policy, role: &str) -> Result<chrono::Duration, PushError> {
    policy
        .role(role)
        .map(|(_, _, p)| p.duration())
        .ok_or_else(|| internal(format!("no {role} role in the policy")))
}

/// A failure of the server itself (its detail goes to the log, never to the client).
pub(crate) fn internal(e: impl std::fmt::Display) -> PushError {
    PushError::Internal(e.to_string())
}

/// What a refusal of the trust engine, asked about the state a push would publish, means
/// for the push.
fn refusal(e: CandidateError) -> PushError {
    match e {
        CandidateError::Engine(e) => PushError::from(e),
        CandidateError::NotPublished(role) => PushError::Forbidden(format!(
            "role {role} is delegated but not published: push it too"
        )),
        CandidateError::Read(e) => internal(e),
    }
}

/// Roles loaded while looking for a pushed role's delegator before giving up.
const MAX_ROLES_SEARCHED: usize = 10_000;

/// A token's path scope covers every change a push makes: written and removed targets, and
/// delegations (a delegation hands out paths, so only an unscoped token may change one).
fn check_token_scope(token: &TokenEntry, role: &str, c: &Changes<'_>) -> Result<(), PushError> {
    let outside = |path: &str| {
        PushError::Forbidden(format!(
            "token {} may push paths {}, not {path}",
            token.name,
            token.paths.join(", ")
        ))
    };
    for (path, _) in &c.written {
        if !token.allows_path(path) {
            return Err(outside(path));
        }
    }
    for path in &c.removed {
        if !token.allows_path(path) {
            return Err(outside(&format!("{path} (removed)")));
        }
    }
    if c.delegations && !token.paths.is_empty() {
        return Err(PushError::Forbidden(format!(
            "token {} is limited to paths {} and may not change the delegations of {role}; push delegation changes with a token that has no --path",
            token.name,
            token.paths.join(", ")
        )));
    }
    Ok(())
}

/// A channel pointer names an artifact; the artifact must itself be published, found by a
/// client's search for its own path, with the length and hashes the pointer repeats. A
/// pointer grants nothing (a role trusted for `NAME/channels/*` cannot make a device install
/// bytes no role trusted for the artifact's path signed).
fn check_pointer(
    candidate: &mut Candidate<'_>,
    path: &str,
    file: &TargetFile,
) -> Result<(), PushError> {
    let Some(named) = file
        .custom
        .as_ref()
        .and_then(|c| c.get("sealwright"))
        .and_then(|s| s.get("target"))
    else {
        return Ok(());
    };
    let pointer = file.custom.as_ref().and_then(|c| c.get("sealwright"));
    let artifact = named.as_str().ok_or_else(|| {
        PushError::Invalid(format!("{path}: custom.sealwright.target is not a string"))
    })?;
    validate_target_path(artifact).map_err(|e| PushError::Invalid(format!("{path}: {e}")))?;
    let found = candidate.search(artifact).map_err(refusal)?.ok_or_else(|| {
        PushError::OutsideDelegation(format!(
            "{path} names {artifact}, which no role trusted for that path lists: a channel pointer names a published artifact, it cannot grant one"
        ))
    })?;
    let same_length = pointer
        .and_then(|p| p.get("length"))
        .and_then(serde_json::Value::as_u64)
        == Some(found.target.length);
    let same_hashes = pointer
        .and_then(|p| p.get("hashes"))
        .and_then(|h| serde_json::from_value::<BTreeMap<String, String>>(h.clone()).ok())
        .as_ref()
        == Some(&found.target.hashes);
    if !same_length || !same_hashes {
        return Err(PushError::OutsideDelegation(format!(
            "{path}: its length or hashes disagree with {artifact}'s own entry (signed by {})",
            found.role
        )));
    }
    Ok(())
}

/// Largest whole path the server writes (Linux `PATH_MAX`, with room for a temporary name).
const MAX_FS_PATH: usize = 4000;

/// Checks, before anything is signed, that every new artifact can be written where it will
/// be served: the whole path within `PATH_MAX`, no file where a directory must go (or the
/// reverse) on disk or among the new paths themselves, and room on the file system.
/// Whatever fails after signing costs a version number, never the ability to publish (see
/// [`sealwright_repo::publish::OnlineFloor`]), but a push that cannot be written is refused here with its reason.
fn check_writable(repo_dir: &Path, blobs: &[(String, String, u64)]) -> Result<(), PushError> {
    let targets = repo_dir.join(publish::PUBLISHED_DIR).join("targets");
    let mut files: BTreeSet<String> = BTreeSet::new();
    let mut dirs: BTreeSet<String> = BTreeSet::new();
    let mut needed: u64 = 0;
    for (sha256, path, length) in blobs {
        let dir = path.rsplit_once('/').map_or("", |(dir, _)| dir);
        let rel = sealwright_tuf::layout::target_file(path, sha256);
        if targets.join(&rel).as_os_str().len() > MAX_FS_PATH {
            return Err(PushError::Invalid(format!(
                "{path}: the path is too long to be stored on this server"
            )));
        }
        let mut prefix = String::new();
        for part in dir.split('/').filter(|p| !p.is_empty()) {
            if !prefix.is_empty() {
                prefix.push('/');
            }
            prefix.push_str(part);
            dirs.insert(prefix.clone());
            if fs::symlink_metadata(targets.join(&prefix)).is_ok_and(|m| !m.is_dir()) {
                return Err(PushError::Invalid(format!(
                    "{path}: {prefix} is a published file, so it cannot also be a directory"
                )));
            }
        }
        if fs::symlink_metadata(targets.join(&rel)).is_ok_and(|m| m.is_dir()) {
            return Err(PushError::Invalid(format!(
                "{path}: a published directory has the name this file needs"
            )));
        }
        files.insert(rel);
        needed = needed.saturating_add(*length);
    }
    if let Some(clash) = files.iter().find(|f| dirs.contains(*f)) {
        return Err(PushError::Invalid(format!(
            "two pushed targets need {clash} to be both a file and a directory"
        )));
    }
    // Blobs are hard-linked when they can be, copied otherwise: count the copy. 16 MiB of
    // headroom covers the metadata written with them.
    if let Ok(st) = rustix::fs::statvfs(repo_dir) {
        let free = st.f_bavail.saturating_mul(st.f_frsize);
        if free < needed.saturating_add(16 * 1024 * 1024) {
            return Err(PushError::NotReady(format!(
                "the server's disk is full ({free} bytes free, this push needs about {needed}); nothing was signed"
            )));
        }
    }
    Ok(())
}

/// Checks a push and, when every check passes, signs it: snapshot and timestamp through
/// `keyring` (the signer agent). Nothing is written: [`Signed::publish`] does that, once
/// the transparency log holds the push's entries.
///
/// The checks, in order, all before anything is signed:
/// 1. the token may push each role; no root, snapshot or timestamp;
/// 2. each role parses, within [`MAX_ROLE_BYTES`], at a version above the published one;
/// 3. the client's trust engine, under the snapshot the server would sign: each pushed role
///    verifies against the keys its delegator on the search path names, and a client's
///    search for each written path lands on the role that wrote it (not shadowed by an
///    earlier or terminating delegation, not outside a delegation on the way);
/// 4. the token's path scope covers every written and removed path, and only an unscoped
///    token changes delegations;
/// 5. each written artifact is uploaded, of the signed length and hashes; each channel
///    pointer names a published artifact with the same length and hashes;
/// 6. every file can be written (path lengths, file/directory clashes, free space).
pub fn accept<'r>(
    session: &mut Session<'_>,
    policy: &Policy,
    keyring: &Keyring<'_>,
    token: &TokenEntry,
    request: &'r PushRequest,
    roles: &RoleCache,
    now: DateTime<Utc>,
) -> Result<Signed<'r>, PushError> {
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
        sealwright_repo::policy::check_name("role", name)
            .map_err(|e| PushError::Invalid(e.to_string()))?;
        if !token.allows_role(name) {
            return Err(PushError::Forbidden(format!(
                "token {} may push {}, not {name}",
                token.name,
                token.roles.join(", ")
            )));
        }
    }
    let repo_dir = session.dir().to_path_buf();
    let repo_dir = repo_dir.as_path();
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

    let mut pushed: BTreeMap<String, Received<'_, Targets>> = BTreeMap::new();
    for (name, text) in &request.roles {
        if text.len() > MAX_ROLE_BYTES {
            return Err(PushError::TooLarge(format!(
                "{name}: {} bytes, the limit is {MAX_ROLE_BYTES}",
                text.len()
            )));
        }
        let received = Received::<Targets>::parse(text.as_bytes(), MAX_ROLE_BYTES)
            .map_err(|e| PushError::Invalid(format!("{name}: {e}")))?;
        let version = received.metadata().signed.version;
        if let Some(old) = published.role_version(name) {
            if version <= old {
                return Err(PushError::Replay(format!(
                    "{name} version {version} is not above the published version {old}"
                )));
            }
        }
        pushed.insert(name.clone(), received);
    }

    // The snapshot the server would sign, and the engine's view under it.
    let period = |role: &str| role_period(policy, role);
    let mut meta = snapshot.signed.meta.clone();
    for (name, received) in &pushed {
        meta.insert(
            sealwright_tuf::layout::meta_key(name),
            MetaFile::new(received.metadata().signed.version),
        );
    }
    let mut new_snapshot = Metadata::new(Snapshot::new(
        snapshot.signed.version.saturating_add(1),
        expiry(now, period("snapshot")?),
        meta,
    ));
    new_snapshot.signed.spec_version = SPEC_VERSION.to_owned();
    let root_bytes = published
        .read_bytes(&sealwright_tuf::layout::metadata_file(
            "root",
            root.signed.version,
        ))
        .map_err(internal)?;
    let fresh: BTreeMap<String, Fresh<'_>> = pushed
        .iter()
        .map(|(name, received)| (name.clone(), Fresh::Parsed(received.clone())))
        .collect();
    let mut candidate = Candidate::new(
        &root_bytes,
        new_snapshot.signed.clone(),
        fresh,
        &published,
        now,
    )
    .map_err(|e| PushError::NotReady(format!("the published root cannot be trusted: {e}")))?;

    let mut blobs: Vec<(String, String, u64)> = Vec::new();
    // What the transparency log gets: each new target with the role that lists it, then
    // each metadata file written.
    let mut entries: Vec<Entry> = Vec::new();
    let mut pointers: Vec<(&String, &TargetFile)> = Vec::new();
    let mut added: Vec<(&String, String, &TargetFile)> = Vec::new();
    for (name, received) in &pushed {
        let md = received.metadata();
        let old = published
            .targets_role_cached(name, roles)
            .map_err(internal)?;
        let c = changes(old.as_deref(), md);
        for (path, _) in &c.written {
            validate_target_path(path).map_err(|e| PushError::Invalid(e.to_string()))?;
        }
        check_token_scope(token, name, &c)?;
        for (path, file) in &c.written {
            match candidate.search(path).map_err(refusal)? {
                Some(found) if found.role == *name => {}
                Some(found) => {
                    return Err(PushError::OutsideDelegation(format!(
                        "{name} lists {path}, but a client searching for it reaches {} first: the delegation chain does not grant it to {name}",
                        found.role
                    )))
                }
                None => {
                    return Err(PushError::OutsideDelegation(format!(
                        "{name} lists {path}, which the delegation chain does not grant it: no client would ever reach it there"
                    )))
                }
            }
            let sha256 = check_artifact(session, path, file)?;
            entries.push(Entry::Target {
                path: (*path).clone(),
                length: file.length,
                sha256: sha256.clone(),
                role: name.clone(),
            });
            blobs.push((sha256.clone(), (*path).clone(), file.length));
            added.push((path, sha256, file));
            if staging::is_channel_pointer(path) {
                pointers.push((path, file));
            }
        }
        if !candidate
            .verify_reachable(name, MAX_ROLES_SEARCHED)
            .map_err(refusal)?
        {
            return Err(PushError::Forbidden(format!(
                "no role in this repository delegates {name}: delegate it first (`sealwright delegate`) and push the delegating role"
            )));
        }
    }
    // Once every pushed role is in place: a pointer may name an artifact pushed beside it.
    for (path, file) in pointers {
        check_pointer(&mut candidate, path, file)?;
    }
    check_attestations(session, policy, &added)?;
    check_writable(repo_dir, &blobs)?;

    // Every check passed: sign, above every version the agent ever signed.
    let (snapshot_version, timestamp_version) =
        session.next_online_versions(Some(snapshot.signed.version), timestamp.signed.version)?;
    new_snapshot.signed.version = snapshot_version.unwrap_or(new_snapshot.signed.version);
    let snapshot_bytes = sign_online(policy, keyring, root, "snapshot", &mut new_snapshot)?;
    let mut new_timestamp = timestamp_for(
        timestamp_version,
        expiry(now, period("timestamp")?),
        &snapshot_bytes,
        new_snapshot.signed.version,
    );
    let timestamp_bytes = sign_online(policy, keyring, root, "timestamp", &mut new_timestamp)?;

    // (A role file of this version left by a push that failed after writing it was never
    // published — no snapshot the timestamp names lists it — and is replaced.)
    let mut files: Vec<(String, Vec<u8>)> = pushed
        .iter()
        .map(|(name, received)| {
            (
                sealwright_tuf::layout::metadata_file(name, received.metadata().signed.version),
                received.bytes().to_vec(),
            )
        })
        .collect();
    files.push((
        sealwright_tuf::layout::metadata_file("snapshot", new_snapshot.signed.version),
        snapshot_bytes.clone(),
    ));
    let links: Vec<(String, String)> = blobs
        .iter()
        .map(|(s, p, _)| (s.clone(), p.clone()))
        .collect();
    for (role, version, bytes) in pushed
        .iter()
        .map(|(name, r)| (name.as_str(), r.metadata().signed.version, r.bytes()))
        .chain([
            (
                "snapshot",
                new_snapshot.signed.version,
                snapshot_bytes.as_slice(),
            ),
            (
                "timestamp",
                new_timestamp.signed.version,
                timestamp_bytes.as_slice(),
            ),
        ])
    {
        entries.push(Entry::Metadata {
            role: role.to_owned(),
            version,
            length: bytes.len() as u64,
            sha256: sealwright_crypto::digest::sha256_hex(bytes),
        });
    }
    let accepted = Accepted {
        roles: pushed
            .iter()
            .map(|(n, received)| (n.clone(), received.metadata().signed.version))
            .collect(),
        artifacts: blobs.len(),
        snapshot_version: new_snapshot.signed.version,
        timestamp_version: new_timestamp.signed.version,
        snapshot: snapshot_bytes,
        timestamp: timestamp_bytes,
    };
    let listings = pushed
        .iter()
        .map(|(name, received)| RoleListing::of(name, received.metadata()))
        .collect();
    Ok(Signed {
        pushed,
        links,
        files,
        accepted,
        listings,
        entries,
    })
}

/// A push that passed every check of [`accept`] and is signed, with nothing of it written
/// yet: what the transparency log is told before [`Signed::publish`] makes it visible.
#[derive(Debug)]
pub struct Signed<'r> {
    pushed: BTreeMap<String, Received<'r, Targets>>,
    links: Vec<(String, String)>,
    files: Vec<(String, Vec<u8>)>,
    accepted: Accepted,
    listings: Vec<RoleListing>,
    entries: Vec<Entry>,
}

impl Signed<'_> {
    /// What the transparency log records of this push: each new target with the role that
    /// lists it, then each metadata file.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The signed `timestamp.json` that publishing switches to.
    pub fn timestamp(&self) -> &[u8] {
        &self.accepted.timestamp
    }

    /// Publishes the push: artifacts linked, roles and snapshot written, then
    /// `timestamp.json` switched. Returns the answer for the publisher and what each pushed
    /// role now lists (for the server's index).
    pub fn publish(
        self,
        session: &mut Session<'_>,
        roles: &RoleCache,
    ) -> Result<(Accepted, Vec<RoleListing>), PushError> {
        session.write(&self.links, &self.files, &self.accepted.timestamp)?;
        // The next push to these roles compares against what was just published.
        for (name, received) in &self.pushed {
            let file =
                sealwright_tuf::layout::metadata_file(name, received.metadata().signed.version);
            roles.insert(&file, received.bytes(), received.shared());
        }
        Ok((self.accepted, self.listings))
    }
}

/// `[attestations]`: the releases a push adds carry the provenance (and reproductions) the
/// repository requires — `publish`'s check, on the uploaded blobs.
fn check_attestations(
    session: &mut Session<'_>,
    policy: &Policy,
    added: &[(&String, String, &TargetFile)],
) -> Result<(), PushError> {
    let Some(requirement) = policy.attestation_requirement().map_err(internal)? else {
        return Ok(());
    };
    let targets: Vec<NewTarget<'_>> = added
        .iter()
        .map(|(path, sha256, file)| NewTarget {
            path,
            sha256,
            custom: file.custom.as_deref(),
        })
        .collect();
    let mut failed: Option<PushError> = None;
    let mut read = |sha256: &str, max: u64| -> Result<Vec<u8>, String> {
        let blob = session.blob_file(sha256).map_err(|e| {
            let message = e.to_string();
            failed = Some(e);
            message
        })?;
        fsutil::read_capped(&blob, max).map_err(|e| {
            if e.kind() == std::io::ErrorKind::InvalidData {
                return format!("an attestation over {max} bytes");
            }
            failed = Some(internal(format!("reading blob {}: {e}", blob.display())));
            "the server could not read it".to_owned()
        })
    };
    let verdict = check_new_targets(&requirement, &targets, &mut read);
    match (verdict, failed) {
        (Ok(()), _) => Ok(()),
        // A server that could not read an upload refuses nothing on the pusher's account.
        (Err(_), Some(e)) => Err(e),
        (Err(why), None) => Err(PushError::Attestation(why)),
    }
}

/// The uploaded blob for a new target: present, of the signed length, matching every
/// listed hash. Returns its SHA-256.
fn check_artifact(
    session: &mut Session<'_>,
    path: &str,
    file: &TargetFile,
) -> Result<String, PushError> {
    let sha256 = file
        .hashes
        .get("sha256")
        .filter(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| PushError::Invalid(format!("{path} lists no sha256 hash")))?
        .to_ascii_lowercase();
    let blob = session.blob_file(&sha256)?;
    let opened = match std::fs::File::open(&blob) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(PushError::Artifact(format!(
                "{path}: no uploaded artifact with sha256 {sha256} (upload it first: PUT /api/v1/blobs/{sha256})"
            )))
        }
        // (The I/O error names the blob's path on this server: it stays out of the answer.)
        Err(e) => return Err(internal(format!("reading blob {}: {e}", blob.display()))),
    };
    // Streamed, one buffer at a time: a 4 GiB artifact costs 4 GiB of reading, not of memory.
    let digests = file
        .hasher()
        .consume(std::io::Read::take(opened, file.length.saturating_add(1)))
        .map_err(|e| internal(format!("reading blob {}: {e}", blob.display())))?;
    if digests.length > file.length {
        return Err(PushError::Artifact(format!(
            "{path}: the uploaded artifact is longer than the signed length {}",
            file.length
        )));
    }
    file.check_digests(&digests)
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
    keyring: &Keyring<'_>,
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
    let signers = open_signers(policy, keyring, &needed).map_err(internal)?;
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
    md.file_bytes(&canonical).map_err(internal)
}

/// What [`renew_online_roles`] signed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Renewed {
    /// The new snapshot version, when snapshot was renewed.
    pub snapshot: Option<u64>,
    /// The new timestamp version, when anything was renewed.
    pub timestamp: Option<u64>,
}

/// Keeps the online roles alive with nobody pushing: when less than a quarter of the
/// snapshot's validity is left, a new snapshot (same contents) and a timestamp pinning it;
/// else, when the timestamp is that close to expiry, a new timestamp for the same snapshot.
/// Without this a repository nobody pushes to goes dark when its snapshot expires.
pub fn renew_online_roles(
    session: &mut Session<'_>,
    policy: &Policy,
    keyring: &Keyring<'_>,
    now: DateTime<Utc>,
) -> Result<Renewed, PushError> {
    let published = Published::load(session.dir()).map_err(internal)?;
    let (Some(root), Some(snapshot), Some(ts)) = (
        published.root.as_ref(),
        published.snapshot.as_ref(),
        published.timestamp.as_ref(),
    ) else {
        return Ok(Renewed::default());
    };
    let period = |role: &str| role_period(policy, role);
    let renew_snapshot = expiring(snapshot.signed.expires, period("snapshot")?, now);
    if !renew_snapshot && !expiring(ts.signed.expires, period("timestamp")?, now) {
        return Ok(Renewed::default());
    }
    let (snapshot_version, timestamp_version) = session.next_online_versions(
        renew_snapshot.then_some(snapshot.signed.version),
        ts.signed.version,
    )?;
    let mut files = Vec::new();
    let pin = match snapshot_version {
        Some(version) => {
            let mut next = Metadata::new(Snapshot::new(
                version,
                expiry(now, period("snapshot")?),
                snapshot.signed.meta.clone(),
            ));
            next.signed.spec_version = SPEC_VERSION.to_owned();
            let bytes = sign_online(policy, keyring, root, "snapshot", &mut next)?;
            let pin = timestamp_for(0, now, &bytes, version)
                .signed
                .snapshot_meta()
                .cloned()
                .ok_or_else(|| internal("timestamp without a snapshot pin"))?;
            files.push((
                sealwright_tuf::layout::metadata_file("snapshot", version),
                bytes,
            ));
            pin
        }
        None => ts
            .signed
            .snapshot_meta()
            .cloned()
            .ok_or_else(|| internal("timestamp.json has no snapshot entry"))?,
    };
    let mut next = Metadata::new(Timestamp::new(
        timestamp_version,
        expiry(now, period("timestamp")?),
        pin,
    ));
    next.signed.spec_version = SPEC_VERSION.to_owned();
    let bytes = sign_online(policy, keyring, root, "timestamp", &mut next)?;
    session.write(&[], &files, &bytes)?;
    Ok(Renewed {
        snapshot: snapshot_version,
        timestamp: Some(timestamp_version),
    })
}

/// The server's passphrase source: it never has one, so it can open no key file (its
/// online keys are reached through the signer agent only).
#[derive(Debug, Default)]
pub struct NoKeyFiles;

impl sealwright_repo::PassphraseSource for NoKeyFiles {
    fn existing(
        &self,
        key_name: &str,
        _attempt: u32,
    ) -> Result<sealwright_crypto::Passphrase, sealwright_repo::KeyringError> {
        Err(sealwright_repo::KeyringError::Other(format!(
            "the server opens no key files (key {key_name}): point it at the signer agent"
        )))
    }

    fn new_key(
        &self,
        key_name: &str,
    ) -> Result<sealwright_crypto::Passphrase, sealwright_repo::KeyringError> {
        self.existing(key_name, 0)
    }

    fn interactive(&self) -> bool {
        false
    }
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
    /// The listing of `role` as `md` lists it.
    pub fn of(role: &str, md: &Metadata<Targets>) -> Self {
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
        let Some(role) = sealwright_tuf::layout::role_of_meta_key(file) else {
            continue;
        };
        let path = metadata.join(sealwright_tuf::layout::metadata_file(role, meta.version));
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
            let source =
                sealwright_repo::FixedPassphrase(sealwright_crypto::Passphrase::new("pw".into()));
            let keyring = Keyring::new(&repo, &source);
            let policy = sealwright_repo::init::create_repository(
                &repo,
                Policy::new_default(),
                sealwright_crypto::Algorithm::Ed25519,
                &keyring,
                None,
            )
            .unwrap();
            let plan = publish::plan(&repo, &policy, Utc::now()).unwrap();
            publish::execute(&repo, &policy, &keyring, plan).unwrap();
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
            let keyring = Keyring::new(&repo, &NoKeyFiles);
            if let Ok(request) = serde_json::from_slice::<PushRequest>(&body) {
                let storage = crate::storage::Storage::embedded(&repo);
                let mut session = storage.begin().unwrap();
                let result = accept(
                    &mut session,
                    policy,
                    &keyring,
                    &token,
                    &request,
                    &RoleCache::default(),
                    Utc::now(),
                );
                prop_assert!(result.is_err());
            }
            prop_assert_eq!(tree(&repo.join("published")), before);
        }
    }
}
