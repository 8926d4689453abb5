//! The trust engine: TUF 1.0.34 §5 client workflow, sans I/O.
//!
//! Bytes and a fixed `now` go in, decisions come out. The engine never reads a file or the
//! network, so the client, the publisher's `verify`, the server's upload checks and the
//! fuzzers all run exactly this code. Each public method is one step of the specification
//! and is named after it; each refuses rather than guesses.
//!
//! State moves only forward: a role is replaced only by metadata that verified against the
//! currently trusted roles, so a failed step leaves the trusted set as it was.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::metadata::{
    parse_envelope, parse_signed, LengthOrHashMismatch, MetaFile, Metadata, MetadataError,
    RoleType, Root, Snapshot, Targets, Timestamp,
};
use crate::verify::{verify_role, ThresholdError};

/// Size limits for each kind of metadata (bytes).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Root metadata.
    pub root: usize,
    /// Timestamp metadata.
    pub timestamp: usize,
    /// Snapshot metadata (when the timestamp does not pin its length).
    pub snapshot: usize,
    /// Targets and delegated targets (when the snapshot does not pin a length).
    pub targets: usize,
    /// Root versions walked in one update.
    pub max_root_rotations: u32,
    /// Delegated roles visited in one target search.
    pub max_delegations: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            root: 512 * 1024,
            timestamp: 16 * 1024,
            snapshot: 2 * 1024 * 1024,
            targets: 5 * 1024 * 1024,
            max_root_rotations: 256,
            max_delegations: 32,
        }
    }
}

/// Why the engine refused metadata.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EngineError {
    /// Parsing or schema failure.
    #[error("{role}: {source}")]
    Metadata {
        /// Which role.
        role: String,
        /// Why.
        source: MetadataError,
    },
    /// Not enough valid signatures.
    #[error(transparent)]
    Threshold(#[from] ThresholdError),
    /// Expired at `now`.
    #[error("{role} expired at {expires}")]
    Expired {
        /// Which role.
        role: String,
        /// Its expiry.
        expires: String,
    },
    /// A version went backwards (rollback attack).
    #[error("{role}: version rollback from {trusted} to {new}")]
    Rollback {
        /// Which role.
        role: String,
        /// Trusted version.
        trusted: u64,
        /// Offered version.
        new: u64,
    },
    /// Same version as the trusted one (the caller keeps its trusted copy).
    #[error("{role}: version {version} is the one already trusted")]
    EqualVersion {
        /// Which role.
        role: String,
        /// The version.
        version: u64,
    },
    /// The version is not the one the parent pinned (mix-and-match attack).
    #[error("{role}: version {new} but {pinned_by} pins version {expected}")]
    VersionMismatch {
        /// Which role.
        role: String,
        /// Offered version.
        new: u64,
        /// Pinned version.
        expected: u64,
        /// Who pinned it.
        pinned_by: String,
    },
    /// The bytes do not match the parent's pinned length or hashes.
    #[error("{role}: {source}")]
    Pinned {
        /// Which role.
        role: String,
        /// What differed.
        source: LengthOrHashMismatch,
    },
    /// A step was attempted before the one it depends on.
    #[error("{0}")]
    Order(String),
    /// A role is not delegated by the given delegator, or not listed in snapshot.
    #[error("{0}")]
    NotDelegated(String),
}

fn md_err(role: &str) -> impl FnOnce(MetadataError) -> EngineError + '_ {
    move |source| EngineError::Metadata {
        role: role.to_owned(),
        source,
    }
}

/// The set of metadata trusted so far in one update.
#[derive(Debug)]
pub struct TrustedMetadataSet {
    now: DateTime<Utc>,
    limits: Limits,
    root: Metadata<Root>,
    timestamp: Option<Metadata<Timestamp>>,
    snapshot: Option<Metadata<Snapshot>>,
    targets: HashMap<String, Metadata<Targets>>,
}

/// Parses `bytes` as role `T`, checks its signatures against `keyids`/`threshold` of `keys`,
/// and returns it. Signatures are checked over the canonical form of the `signed` object as
/// received, before anything in it is believed.
fn load_verified<T: RoleType>(
    role: &str,
    bytes: &[u8],
    max: usize,
    keys: &std::collections::BTreeMap<String, sealwright_crypto::PublicKey>,
    keyids: &[String],
    threshold: u32,
) -> Result<(Metadata<T>, crate::metadata::Envelope), EngineError> {
    let env = parse_envelope(bytes, max).map_err(md_err(role))?;
    verify_role(
        role,
        &env.canonical,
        &env.signatures,
        keys,
        keyids,
        threshold,
    )?;
    let signed = parse_signed::<T>(env.signed.clone()).map_err(md_err(role))?;
    let md = Metadata {
        signed,
        signatures: env.signatures.clone(),
    };
    Ok((md, env))
}

impl TrustedMetadataSet {
    /// Starts from a trusted root (§5.2). The root must be signed by a threshold of its own
    /// root keys; its expiry is checked only after the root chain is updated (§5.3.10).
    pub fn new(root_bytes: &[u8], now: DateTime<Utc>) -> Result<Self, EngineError> {
        Self::with_limits(root_bytes, now, Limits::default())
    }

    /// As [`Self::new`], with explicit size limits.
    pub fn with_limits(
        root_bytes: &[u8],
        now: DateTime<Utc>,
        limits: Limits,
    ) -> Result<Self, EngineError> {
        let env = parse_envelope(root_bytes, limits.root).map_err(md_err("root"))?;
        let root: Root = parse_signed(env.signed.clone()).map_err(md_err("root"))?;
        let role = root
            .roles
            .get("root")
            .ok_or_else(|| EngineError::Order("root has no root role".into()))?;
        verify_role(
            "root",
            &env.canonical,
            &env.signatures,
            &root.keys,
            &role.keyids,
            role.threshold,
        )?;
        let root = Metadata {
            signed: root,
            signatures: env.signatures,
        };
        Ok(TrustedMetadataSet {
            now,
            limits,
            root,
            timestamp: None,
            snapshot: None,
            targets: HashMap::new(),
        })
    }

    /// The trusted root.
    pub fn root(&self) -> &Metadata<Root> {
        &self.root
    }

    /// The trusted timestamp, if any.
    pub fn timestamp(&self) -> Option<&Metadata<Timestamp>> {
        self.timestamp.as_ref()
    }

    /// The trusted snapshot, if any.
    pub fn snapshot(&self) -> Option<&Metadata<Snapshot>> {
        self.snapshot.as_ref()
    }

    /// A trusted targets role, if loaded.
    pub fn targets_role(&self, name: &str) -> Option<&Metadata<Targets>> {
        self.targets.get(name)
    }

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    fn top_role(&self, name: &str) -> Result<(&[String], u32), EngineError> {
        self.root
            .signed
            .roles
            .get(name)
            .map(|r| (r.keyids.as_slice(), r.threshold))
            .ok_or_else(|| EngineError::Order(format!("trusted root has no {name} role")))
    }

    fn check_expiry<T: RoleType>(&self, role: &str, signed: &T) -> Result<(), EngineError> {
        if signed.expires() <= self.now {
            return Err(EngineError::Expired {
                role: role.to_owned(),
                expires: crate::metadata::expires_format::format(&signed.expires()),
            });
        }
        Ok(())
    }

    /// §5.3: replace the trusted root with version N+1, signed by a threshold of the trusted
    /// root's root keys **and** of its own. Trusted timestamp and snapshot are dropped when
    /// their keys rotated (fast-forward attack recovery, §5.3.11).
    pub fn update_root(&mut self, bytes: &[u8]) -> Result<(), EngineError> {
        if self.timestamp.is_some() {
            return Err(EngineError::Order(
                "root must be updated before timestamp".into(),
            ));
        }
        let (keyids, threshold) = self.top_role("root")?;
        let (new, env) = load_verified::<Root>(
            "root",
            bytes,
            self.limits.root,
            &self.root.signed.keys,
            keyids,
            threshold,
        )?;
        let own = new
            .signed
            .roles
            .get("root")
            .ok_or_else(|| EngineError::Order("new root has no root role".into()))?;
        verify_role(
            "root (new root's own keys)",
            &env.canonical,
            &env.signatures,
            &new.signed.keys,
            &own.keyids,
            own.threshold,
        )?;
        let expected = self.root.signed.version + 1;
        if new.signed.version != expected {
            return Err(EngineError::VersionMismatch {
                role: "root".into(),
                new: new.signed.version,
                expected,
                pinned_by: format!("the trusted root v{}", self.root.signed.version),
            });
        }
        self.root = new;
        Ok(())
    }

    /// §5.3.10: after the last root, the trusted root must not be expired.
    pub fn check_final_root(&self) -> Result<(), EngineError> {
        self.check_expiry("root", &self.root.signed)
    }

    /// Whether `new_root` rotated the timestamp or snapshot keys relative to `old_root`
    /// (the caller then discards locally cached timestamp/snapshot, §5.3.11).
    pub fn online_keys_rotated(old_root: &Root, new_root: &Root) -> bool {
        ["timestamp", "snapshot"]
            .iter()
            .any(|r| old_root.roles.get(*r) != new_root.roles.get(*r))
    }

    /// §5.4: a new timestamp, signed by the root's timestamp keys. Versions never go back,
    /// and neither does the snapshot version it names. The same version as the trusted one
    /// is reported as [`EngineError::EqualVersion`] so the caller keeps its trusted file.
    pub fn update_timestamp(&mut self, bytes: &[u8]) -> Result<u64, EngineError> {
        self.check_final_root()?;
        let (keyids, threshold) = self.top_role("timestamp")?;
        let (new, _) = load_verified::<Timestamp>(
            "timestamp",
            bytes,
            self.limits.timestamp,
            &self.root.signed.keys,
            keyids,
            threshold,
        )?;
        let new_snap = new.signed.snapshot_meta().map(|m| m.version).unwrap_or(0);
        if let Some(trusted) = &self.timestamp {
            let (tv, nv) = (trusted.signed.version, new.signed.version);
            if nv < tv {
                return Err(EngineError::Rollback {
                    role: "timestamp".into(),
                    trusted: tv,
                    new: nv,
                });
            }
            if nv == tv {
                return Err(EngineError::EqualVersion {
                    role: "timestamp".into(),
                    version: nv,
                });
            }
            let trusted_snap = trusted
                .signed
                .snapshot_meta()
                .map(|m| m.version)
                .unwrap_or(0);
            if new_snap < trusted_snap {
                return Err(EngineError::Rollback {
                    role: "snapshot (named by timestamp)".into(),
                    trusted: trusted_snap,
                    new: new_snap,
                });
            }
        }
        // Expiry last (§5.4.5): a newer but expired timestamp still advances the rollback floor.
        let version = new.signed.version;
        let expired = self.check_expiry("timestamp", &new.signed);
        self.timestamp = Some(new);
        self.snapshot = None;
        self.targets.clear();
        expired.map(|()| version)
    }

    /// Trusts a timestamp from local storage: signatures checked, expiry not (an expired
    /// local timestamp must not block an update; it only sets the rollback floor).
    pub fn load_local_timestamp(&mut self, bytes: &[u8]) -> Result<(), EngineError> {
        let (keyids, threshold) = self.top_role("timestamp")?;
        let (new, _) = load_verified::<Timestamp>(
            "timestamp",
            bytes,
            self.limits.timestamp,
            &self.root.signed.keys,
            keyids,
            threshold,
        )?;
        self.timestamp = Some(new);
        Ok(())
    }

    /// The snapshot version the trusted timestamp pins.
    pub fn snapshot_version_pinned(&self) -> Option<u64> {
        self.timestamp
            .as_ref()?
            .signed
            .snapshot_meta()
            .map(|m| m.version)
    }

    /// §5.5: the snapshot the trusted timestamp names — its exact length and hashes when
    /// pinned, signed by the root's snapshot keys, the pinned version, no role removed or
    /// rolled back relative to the previously trusted snapshot, not expired.
    pub fn update_snapshot(&mut self, bytes: &[u8]) -> Result<u64, EngineError> {
        let pin: MetaFile = self
            .timestamp
            .as_ref()
            .and_then(|t| t.signed.snapshot_meta().cloned())
            .ok_or_else(|| EngineError::Order("snapshot needs a trusted timestamp first".into()))?;
        pin.verify(bytes).map_err(|source| EngineError::Pinned {
            role: "snapshot".into(),
            source,
        })?;
        let max = pin.length.map_or(self.limits.snapshot, |l| {
            usize::try_from(l).unwrap_or(usize::MAX)
        });
        let (keyids, threshold) = self.top_role("snapshot")?;
        let (new, _) = load_verified::<Snapshot>(
            "snapshot",
            bytes,
            max,
            &self.root.signed.keys,
            keyids,
            threshold,
        )?;
        if new.signed.version != pin.version {
            return Err(EngineError::VersionMismatch {
                role: "snapshot".into(),
                new: new.signed.version,
                expected: pin.version,
                pinned_by: "timestamp".into(),
            });
        }
        if let Some(old) = &self.snapshot {
            for (name, old_meta) in &old.signed.meta {
                match new.signed.meta.get(name) {
                    None => {
                        return Err(EngineError::Rollback {
                            role: format!("{name} (removed from snapshot)"),
                            trusted: old_meta.version,
                            new: 0,
                        })
                    }
                    Some(m) if m.version < old_meta.version => {
                        return Err(EngineError::Rollback {
                            role: name.clone(),
                            trusted: old_meta.version,
                            new: m.version,
                        })
                    }
                    Some(_) => {}
                }
            }
        }
        self.check_expiry("snapshot", &new.signed)?;
        let version = new.signed.version;
        self.snapshot = Some(new);
        self.targets.clear();
        Ok(version)
    }

    /// The version of targets role `name` in the trusted snapshot.
    pub fn role_version_in_snapshot(&self, name: &str) -> Option<u64> {
        self.snapshot
            .as_ref()?
            .signed
            .meta
            .get(&format!("{name}.json"))
            .map(|m| m.version)
    }

    /// §5.6: top-level targets, signed by the root's targets keys.
    pub fn update_targets(&mut self, bytes: &[u8]) -> Result<&Targets, EngineError> {
        self.update_delegated_targets(bytes, "targets", "root")
    }

    /// §5.6.7 (delegations): role `name` as delegated by the trusted `delegator` (`root` for
    /// top-level targets) — pinned by snapshot, signed by the keys the delegator names.
    pub fn update_delegated_targets(
        &mut self,
        bytes: &[u8],
        name: &str,
        delegator: &str,
    ) -> Result<&Targets, EngineError> {
        let pin: MetaFile = self
            .snapshot
            .as_ref()
            .ok_or_else(|| EngineError::Order("targets need a trusted snapshot first".into()))?
            .signed
            .meta
            .get(&format!("{name}.json"))
            .cloned()
            .ok_or_else(|| {
                EngineError::NotDelegated(format!("role {name} is not listed in snapshot"))
            })?;
        pin.verify(bytes).map_err(|source| EngineError::Pinned {
            role: name.to_owned(),
            source,
        })?;
        let max = pin.length.map_or(self.limits.targets, |l| {
            usize::try_from(l).unwrap_or(usize::MAX)
        });
        let (keys, keyids, threshold) = if delegator == "root" {
            if name != "targets" {
                return Err(EngineError::NotDelegated(format!(
                    "root does not delegate {name}"
                )));
            }
            let (ids, t) = self.top_role("targets")?;
            (&self.root.signed.keys, ids.to_vec(), t)
        } else {
            let parent = self.targets.get(delegator).ok_or_else(|| {
                EngineError::Order(format!("delegator {delegator} is not trusted yet"))
            })?;
            let delegations = parent.signed.delegations.as_ref().ok_or_else(|| {
                EngineError::NotDelegated(format!("{delegator} delegates nothing"))
            })?;
            let (ids, t) = delegations.authority_for(name).ok_or_else(|| {
                EngineError::NotDelegated(format!("{delegator} does not delegate to {name}"))
            })?;
            (&delegations.keys, ids.to_vec(), t)
        };
        let (new, _) = load_verified::<Targets>(name, bytes, max, keys, &keyids, threshold)?;
        if new.signed.version != pin.version {
            return Err(EngineError::VersionMismatch {
                role: name.to_owned(),
                new: new.signed.version,
                expected: pin.version,
                pinned_by: "snapshot".into(),
            });
        }
        self.check_expiry(name, &new.signed)?;
        self.targets.insert(name.to_owned(), new);
        self.targets
            .get(name)
            .map(|m| &m.signed)
            .ok_or_else(|| EngineError::Order("internal: role vanished".into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::{expires_format, DelegatedRole, Delegations, Role, TargetFile};
    use sealwright_crypto::{Algorithm, PrivateKey, Signer};
    use std::collections::BTreeMap;

    struct Repo {
        root_key: PrivateKey,
        keys: BTreeMap<&'static str, PrivateKey>,
        delegated: PrivateKey,
    }

    fn t(s: &str) -> DateTime<Utc> {
        expires_format::parse(s).unwrap()
    }

    fn now() -> DateTime<Utc> {
        t("2030-01-01T00:00:00Z")
    }

    fn later() -> DateTime<Utc> {
        t("2031-01-01T00:00:00Z")
    }

    impl Repo {
        fn new() -> Self {
            let mut keys = BTreeMap::new();
            for r in ["targets", "snapshot", "timestamp"] {
                keys.insert(r, PrivateKey::generate(Algorithm::Ed25519).unwrap());
            }
            Repo {
                root_key: PrivateKey::generate(Algorithm::Ed25519).unwrap(),
                keys,
                delegated: PrivateKey::generate(Algorithm::Ed25519).unwrap(),
            }
        }

        fn root(
            &self,
            version: u64,
            root_key: &PrivateKey,
            extra_signers: &[&PrivateKey],
        ) -> Vec<u8> {
            let mut keys = BTreeMap::new();
            let mut roles = BTreeMap::new();
            keys.insert(root_key.keyid().to_owned(), root_key.public_key().clone());
            roles.insert(
                "root".to_owned(),
                Role::new(vec![root_key.keyid().to_owned()], 1).unwrap(),
            );
            for (r, k) in &self.keys {
                keys.insert(k.keyid().to_owned(), k.public_key().clone());
                roles.insert(
                    (*r).to_owned(),
                    Role::new(vec![k.keyid().to_owned()], 1).unwrap(),
                );
            }
            let mut md = Metadata::new(Root::new(keys, roles, version, later()));
            md.sign(root_key).unwrap();
            for s in extra_signers {
                md.sign(*s).unwrap();
            }
            md.to_bytes().unwrap()
        }

        fn targets(&self, version: u64) -> Vec<u8> {
            let mut tg = Targets::new(version, later());
            tg.targets.insert(
                "a.txt".into(),
                TargetFile::new(
                    3,
                    BTreeMap::from([(
                        "sha256".into(),
                        hex::encode(sealwright_crypto::digest::sha256(b"abc")),
                    )]),
                ),
            );
            let role = DelegatedRole::new(
                "d".into(),
                vec![self.delegated.keyid().into()],
                1,
                false,
                Some(vec!["d/*".into()]),
                None,
            )
            .unwrap();
            tg.delegations = Some(Delegations::new_roles(
                BTreeMap::from([(
                    self.delegated.keyid().to_owned(),
                    self.delegated.public_key().clone(),
                )]),
                vec![role],
            ));
            let mut md = Metadata::new(tg);
            md.sign(&self.keys["targets"]).unwrap();
            md.to_bytes().unwrap()
        }

        fn delegated(&self, version: u64, signer: &PrivateKey) -> Vec<u8> {
            let mut md = Metadata::new(Targets::new(version, later()));
            md.sign(signer).unwrap();
            md.to_bytes().unwrap()
        }

        fn snapshot(&self, version: u64, targets_version: u64, expires: DateTime<Utc>) -> Vec<u8> {
            let meta = BTreeMap::from([
                ("targets.json".to_owned(), MetaFile::new(targets_version)),
                ("d.json".to_owned(), MetaFile::new(1)),
            ]);
            let mut md = Metadata::new(Snapshot::new(version, expires, meta));
            md.sign(&self.keys["snapshot"]).unwrap();
            md.to_bytes().unwrap()
        }

        fn timestamp(&self, version: u64, snapshot: &[u8], snap_version: u64) -> Vec<u8> {
            let mut pin = MetaFile::new(snap_version);
            pin.length = Some(snapshot.len() as u64);
            pin.hashes = Some(BTreeMap::from([(
                "sha256".to_owned(),
                hex::encode(sealwright_crypto::digest::sha256(snapshot)),
            )]));
            let mut md = Metadata::new(Timestamp::new(version, later(), pin));
            md.sign(&self.keys["timestamp"]).unwrap();
            md.to_bytes().unwrap()
        }
    }

    #[test]
    fn full_workflow_and_attacks() {
        let r = Repo::new();
        let root1 = r.root(1, &r.root_key, &[]);
        let mut set = TrustedMetadataSet::new(&root1, now()).unwrap();
        // Root rotation: v2 with a new key must be signed by old and new.
        let new_root_key = PrivateKey::generate(Algorithm::Ed25519).unwrap();
        let only_new = r.root(2, &new_root_key, &[]);
        assert!(matches!(
            set.update_root(&only_new),
            Err(EngineError::Threshold(_))
        ));
        let both = r.root(2, &new_root_key, &[&r.root_key]);
        set.update_root(&both).unwrap();
        assert_eq!(set.root().signed.version, 2);
        // Replaying v2 as v3 fails (version must be N+1 and signed by v2's keys).
        assert!(set.update_root(&both).is_err());
        set.check_final_root().unwrap();

        let snap = r.snapshot(1, 1, later());
        let ts = r.timestamp(1, &snap, 1);
        assert_eq!(set.update_timestamp(&ts).unwrap(), 1);
        // Mix-and-match: a snapshot whose bytes the timestamp does not pin.
        let other_snap = r.snapshot(1, 2, later());
        assert!(matches!(
            set.update_snapshot(&other_snap),
            Err(EngineError::Pinned { .. })
        ));
        set.update_snapshot(&snap).unwrap();
        let targets = set.update_targets(&r.targets(1)).unwrap();
        assert_eq!(targets.targets.len(), 1);
        // Delegated role signed by the wrong key.
        assert!(matches!(
            set.update_delegated_targets(&r.delegated(1, &r.keys["targets"]), "d", "targets"),
            Err(EngineError::Threshold(_))
        ));
        set.update_delegated_targets(&r.delegated(1, &r.delegated), "d", "targets")
            .unwrap();
        // A role nobody delegates.
        assert!(set
            .update_delegated_targets(&r.delegated(1, &r.delegated), "x", "targets")
            .is_err());
    }

    #[test]
    fn timestamp_rollback_and_equal_version_and_expiry() {
        let r = Repo::new();
        let root1 = r.root(1, &r.root_key, &[]);
        let mut set = TrustedMetadataSet::new(&root1, now()).unwrap();
        let snap2 = r.snapshot(2, 1, later());
        set.update_timestamp(&r.timestamp(2, &snap2, 2)).unwrap();
        let snap1 = r.snapshot(1, 1, later());
        assert!(matches!(
            set.update_timestamp(&r.timestamp(1, &snap1, 1)),
            Err(EngineError::Rollback { .. })
        ));
        assert!(matches!(
            set.update_timestamp(&r.timestamp(2, &snap2, 2)),
            Err(EngineError::EqualVersion { .. })
        ));
        // Newer timestamp naming an older snapshot.
        assert!(matches!(
            set.update_timestamp(&r.timestamp(3, &snap1, 1)),
            Err(EngineError::Rollback { .. })
        ));
        // Expired snapshot (freeze attack).
        let stale = r.snapshot(4, 1, t("2029-01-01T00:00:00Z"));
        set.update_timestamp(&r.timestamp(4, &stale, 4)).unwrap();
        assert!(matches!(
            set.update_snapshot(&stale),
            Err(EngineError::Expired { .. })
        ));
        // Expired root.
        let late = TrustedMetadataSet::new(&root1, t("2032-01-01T00:00:00Z")).unwrap();
        assert!(matches!(
            late.check_final_root(),
            Err(EngineError::Expired { .. })
        ));
    }

    #[test]
    fn garbage_never_panics() {
        let r = Repo::new();
        let root1 = r.root(1, &r.root_key, &[]);
        let mut set = TrustedMetadataSet::new(&root1, now()).unwrap();
        for junk in [
            &b""[..],
            b"{}",
            b"[]",
            b"{\"signed\":{},\"signatures\":[]}",
            b"\xff\xfe",
        ] {
            assert!(set.update_root(junk).is_err());
            assert!(set.update_timestamp(junk).is_err());
            assert!(TrustedMetadataSet::new(junk, now()).is_err());
        }
    }
}
