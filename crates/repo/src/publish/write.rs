//! Steps 3 and 4, writing: targets and versioned metadata under names no client has seen,
//! `syncfs`, then the one atomic replacement of `timestamp.json` that makes it live.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};

use chrono::Utc;
use rayon::prelude::*;

use sealwright_tuf::metadata::{MetaFile, Metadata, Snapshot, Timestamp};

use crate::fsutil;
use crate::keyring::Keyring;
use crate::policy::Policy;
use crate::staging::{self, Staging};

use super::*;

/// Signs, checks and writes a plan. Nothing is written unless every role meets its threshold.
pub fn execute(
    repo_dir: &Path,
    policy: &Policy,
    keyring: &Keyring<'_>,
    mut plan: Plan,
) -> Result<PublishReport, PublishError> {
    let pending = Pending::new(repo_dir);

    // Open only the keys the changed roles need (an unchanged root does not prompt).
    let mut needed: BTreeSet<String> = BTreeSet::new();
    let keyids_of = |role: &str| -> Vec<String> {
        policy
            .role(role)
            .map(|(k, _, _)| policy.keyids(k))
            .unwrap_or_default()
    };
    if let Some(root) = &plan.root {
        needed.extend(
            root.signed
                .roles
                .get("root")
                .map(|r| r.keyids.clone())
                .unwrap_or_default(),
        );
        if let Some(prev) = &plan.previous_root {
            needed.extend(
                prev.roles
                    .get("root")
                    .map(|r| r.keyids.clone())
                    .unwrap_or_default(),
            );
        }
    }
    for name in plan.targets.keys() {
        if let Some(a) = plan.authority.get(name) {
            needed.extend(a.keyids.iter().cloned());
        }
    }
    needed.extend(keyids_of("snapshot"));
    needed.extend(keyids_of("timestamp"));
    let signers = open_signers(policy, keyring, &needed)?;

    let mut report = PublishReport {
        targets_added: plan.targets_added,
        ..Default::default()
    };

    // Root: threshold of the new root's keys and (for rotations) of the previous root's.
    let mut root_bytes = None;
    if let Some(root) = plan.root.as_mut() {
        adopt_pending(&pending, "root", root)?;
        let role = root
            .signed
            .roles
            .get("root")
            .cloned()
            .ok_or_else(|| meta_err("root role missing"))?;
        let mut ids = role.keyids.clone();
        if let Some(prev) = &plan.previous_root {
            ids.extend(
                prev.roles
                    .get("root")
                    .map(|r| r.keyids.clone())
                    .unwrap_or_default(),
            );
        }
        let enc = sign_with(root, &ids, &signers)?;
        check_threshold(
            "root",
            &enc,
            &root.signatures,
            &root.signed.keys,
            &role.keyids,
            role.threshold,
            policy,
        )?;
        if let Some(prev) = &plan.previous_root {
            let prev_role = prev
                .roles
                .get("root")
                .ok_or_else(|| meta_err("previous root role missing"))?;
            check_threshold(
                "root (previous root's keys)",
                &enc,
                &root.signatures,
                &prev.keys,
                &prev_role.keyids,
                prev_role.threshold,
                policy,
            )?;
        }
        report.roles.insert("root".into(), root.signed.version);
        report
            .expires
            .insert("root".into(), root.signed.expires.to_rfc3339());
        root_bytes = Some((
            root.signed.version,
            root.file_bytes(&enc).map_err(meta_err)?,
        ));
    }

    let mut files = sign_targets_roles(&mut plan, &pending, &signers, policy, &mut report)?;
    check_reachable(repo_dir, &plan, &files, root_bytes.as_ref())?;

    // Snapshot, then the timestamp that pins the snapshot's exact bytes — their versions
    // recorded first, so a failure after signing never blocks the next publish.
    OnlineFloor::record(
        repo_dir,
        Some(plan.snapshot_version),
        plan.timestamp_version,
    )
    .map_err(io_err(&repo_dir.join(ONLINE_FLOOR_FILE)))?;
    let mut snapshot = Metadata::new(Snapshot::new(
        plan.snapshot_version,
        plan.snapshot_expires,
        plan.snapshot_meta.clone(),
    ));
    snapshot.signed.spec_version = SPEC_VERSION.to_owned();
    adopt_pending(&pending, "snapshot", &mut snapshot)?;
    let (snap_keys, snap_threshold) = top_level_authority(policy, "snapshot")?;
    let snap_ids = keyids_of("snapshot");
    let enc = sign_with(&mut snapshot, &snap_ids, &signers)?;
    check_threshold(
        "snapshot",
        &enc,
        &snapshot.signatures,
        &snap_keys,
        &snap_ids,
        snap_threshold,
        policy,
    )?;
    let snapshot_bytes = snapshot.file_bytes(&enc).map_err(meta_err)?;
    report
        .roles
        .insert("snapshot".into(), snapshot.signed.version);
    report
        .expires
        .insert("snapshot".into(), snapshot.signed.expires.to_rfc3339());

    let mut snapshot_pin = MetaFile::new(snapshot.signed.version);
    snapshot_pin.length = Some(snapshot_bytes.len() as u64);
    snapshot_pin.hashes = Some(BTreeMap::from([(
        "sha256".to_owned(),
        sealwright_crypto::digest::sha256_hex(&snapshot_bytes),
    )]));
    let mut timestamp = Metadata::new(Timestamp::new(
        plan.timestamp_version,
        plan.timestamp_expires,
        snapshot_pin,
    ));
    timestamp.signed.spec_version = SPEC_VERSION.to_owned();
    let (ts_keys, ts_threshold) = top_level_authority(policy, "timestamp")?;
    let ts_ids = keyids_of("timestamp");
    let enc = sign_with(&mut timestamp, &ts_ids, &signers)?;
    check_threshold(
        "timestamp",
        &enc,
        &timestamp.signatures,
        &ts_keys,
        &ts_ids,
        ts_threshold,
        policy,
    )?;
    let timestamp_bytes = timestamp.file_bytes(&enc).map_err(meta_err)?;
    report
        .roles
        .insert("timestamp".into(), timestamp.signed.version);
    report
        .expires
        .insert("timestamp".into(), timestamp.signed.expires.to_rfc3339());
    files.push((
        sealwright_tuf::layout::metadata_file("snapshot", snapshot.signed.version),
        snapshot_bytes,
    ));

    // Everything is signed and meets threshold: write new files under fresh names.
    write_tree(
        repo_dir,
        &plan.blobs,
        &files,
        root_bytes.as_ref(),
        &timestamp_bytes,
    )?;

    std::mem::take(&mut plan.summaries)
        .after(&plan)
        .save(repo_dir);
    Staging::clear(repo_dir)?;
    pending.clear()?;
    Ok(report)
}

/// Writes a signed state into `published/`: targets linked from the blob keyring, versioned
/// metadata under names no client has seen, one `syncfs`, then `root.json` and finally
/// `timestamp.json` replaced atomically — the switch that makes the new state live.
pub fn write_tree(
    repo_dir: &Path,
    blobs: &[(String, String)],
    files: &[(String, Vec<u8>)],
    root: Option<&(u64, Vec<u8>)>,
    timestamp: &[u8],
) -> Result<(), PublishError> {
    let published = repo_dir.join(PUBLISHED_DIR);
    let metadata_dir = published.join("metadata");
    let targets_dir = published.join("targets");
    fs::create_dir_all(&metadata_dir).map_err(io_err(&metadata_dir))?;
    fs::create_dir_all(&targets_dir).map_err(io_err(&targets_dir))?;
    // Create each target directory once, then link files in parallel.
    let parents: BTreeSet<PathBuf> = blobs
        .iter()
        .map(|(_, path)| target_parent(&targets_dir, path))
        .collect();
    for p in &parents {
        fs::create_dir_all(p).map_err(io_err(p))?;
    }
    blobs
        .par_iter()
        .map(|(sha, path)| link_target(repo_dir, &targets_dir, sha, path))
        .collect::<Result<Vec<()>, PublishError>>()?;
    files
        .par_iter()
        .map(|(name, bytes)| write_fresh(&metadata_dir.join(name), bytes))
        .collect::<Result<Vec<()>, PublishError>>()?;
    if let Some((version, bytes)) = root {
        write_fresh(
            &metadata_dir.join(sealwright_tuf::layout::metadata_file("root", *version)),
            bytes,
        )?;
    }
    fsutil::sync_filesystem(&published).map_err(io_err(&published))?;
    if let Some((_, bytes)) = root {
        let p = metadata_dir.join("root.json");
        fsutil::write_atomic(&p, bytes).map_err(io_err(&p))?;
    }
    let ts_path = metadata_dir.join("timestamp.json");
    fsutil::write_atomic(&ts_path, timestamp).map_err(io_err(&ts_path))
}

/// Roles checked by one candidate state in [`check_reachable`].
const ROLES_PER_CANDIDATE: usize = 64;

/// What clients will see, asked of the client's own trust engine before the snapshot is
/// signed: every target this publish adds or changes must be found, by a client's
/// delegation search for its path, in the role that lists it — not shadowed by an earlier
/// or terminating delegation, not outside a delegation on the way. (The staging checks of
/// `add` are an early hint; this is the rule.)
pub(super) fn check_reachable(
    repo_dir: &Path,
    plan: &Plan,
    files: &[(String, Vec<u8>)],
    new_root: Option<&(u64, Vec<u8>)>,
) -> Result<(), PublishError> {
    if plan.written.keys().all(|name| name == "targets") {
        return Ok(());
    }
    let published = Published::load(repo_dir)?;
    let published_root;
    let root: &[u8] = match new_root {
        Some((_, bytes)) => bytes,
        None => {
            let version = published
                .root
                .as_ref()
                .map(|r| r.signed.version)
                .ok_or_else(|| meta_err("no root is published or planned"))?;
            published_root =
                published.read_bytes(&sealwright_tuf::layout::metadata_file("root", version))?;
            &published_root
        }
    };
    let by_file: std::collections::HashMap<&str, &[u8]> = files
        .iter()
        .map(|(file, bytes)| (file.as_str(), bytes.as_slice()))
        .collect();
    let fresh: BTreeMap<String, crate::verify::Fresh<'_>> = plan
        .targets
        .iter()
        .filter_map(|(name, md)| {
            let file = sealwright_tuf::layout::metadata_file(name, md.signed.version);
            by_file
                .get(file.as_str())
                .map(|bytes| (name.clone(), crate::verify::Fresh::Bytes(bytes)))
        })
        .collect();
    let snapshot = Snapshot::new(
        plan.snapshot_version,
        plan.snapshot_expires,
        plan.snapshot_meta.clone(),
    );
    let now = Utc::now();
    // A client's search starts in top-level targets and takes what it lists there (TUF
    // 5.7): its own paths are reachable by definition, and reading the largest role of a
    // repository without bins again would cost more than the rest of the publish.
    let roles: Vec<(&String, &Vec<String>)> = plan
        .written
        .iter()
        .filter(|(name, _)| *name != "targets")
        .collect();
    // A candidate keeps every role it loads: checked a few dozen roles at a time, the first
    // publish of thousands of hash bins never holds them all parsed at once.
    for chunk in roles.chunks(ROLES_PER_CANDIDATE) {
        let mut candidate =
            crate::verify::Candidate::new(root, snapshot.clone(), fresh.clone(), &published, now)
                .map_err(meta_err)?;
        for (name, written) in chunk {
            for path in written.iter() {
                let landed = candidate.search(path).map_err(meta_err)?;
                if landed.as_ref().map(|f| f.role.as_str()) != Some(name.as_str()) {
                    let instead = landed.map_or_else(
                        || "finds it in no role".to_owned(),
                        |f| format!("finds role {} first", f.role),
                    );
                    return Err(PublishError::Target(format!(
                        "target {path:?} of role {name} would never be installed: a client's search for it {instead}; change the delegations or the role it is added to"
                    )));
                }
            }
        }
    }
    Ok(())
}

/// Writes a versioned file of a new state. Identical content is left as it is (a publish
/// interrupted after writing it); different content replaces it — such a file was never
/// published, since no snapshot the timestamp names lists it (published versions are never
/// planned again: versions only go up).
pub(crate) fn write_fresh(path: &Path, bytes: &[u8]) -> Result<(), PublishError> {
    // Read back only a file of the same length (and no more of it than that).
    let same_length = fs::metadata(path).is_ok_and(|m| m.len() == bytes.len() as u64);
    if same_length && fsutil::read_capped(path, bytes.len() as u64).is_ok_and(|e| e == bytes) {
        return Ok(());
    }
    fsutil::write_new(path, bytes).map_err(io_err(path))
}

/// Directory of target `path` under `targets/`.
pub(crate) fn target_parent(targets_dir: &Path, path: &str) -> PathBuf {
    match path.rsplit_once('/') {
        Some((d, _)) => targets_dir.join(d),
        None => targets_dir.to_path_buf(),
    }
}

/// Places a staged blob at `targets/<dir>/<sha256>.<name>` (hard link, else copy).
pub(crate) fn link_target(
    repo_dir: &Path,
    targets_dir: &Path,
    sha256: &str,
    path: &str,
) -> Result<(), PublishError> {
    let dest = targets_dir.join(sealwright_tuf::layout::target_file(path, sha256));
    let blob = staging::blob_path(repo_dir, sha256);
    // Re-check the blob: staged/ is writable by the publisher's tools, and what we sign must
    // be what we serve. Streamed: a 1 GiB artifact is read, never held in memory.
    let digests = fs::File::open(&blob)
        .and_then(|f| sealwright_crypto::digest::Hasher::sha256_only().consume(f))
        .map_err(io_err(&blob))?;
    if hex::encode(digests.sha256) != sha256 {
        return Err(PublishError::Target(format!(
            "staged blob {} no longer matches its hash; add the file again",
            blob.display()
        )));
    }
    match fs::hard_link(&blob, &dest) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(_) => fsutil::copy_new(&blob, &dest).map_err(io_err(&dest)),
    }
}
