//! The trust engine: TUF 1.0.34 §5 client workflow, sans I/O.
//!
//! Bytes and a fixed `now` go in, decisions come out. The engine never reads a file or the
//! network, so the client, the publisher's `verify`, the server's upload checks and the
//! fuzzers all run exactly this code. Each public method is one step of the specification
//! and is named after it (the design follows python-tuf's `TrustedMetadataSet`); each
//! refuses rather than guesses.
//!
//! Guarantees:
//! - nothing is believed before its signatures verified against the keys the trusted
//!   parent names, over the canonical JSON of the `signed` object *as received*;
//! - state moves only forward and in order (root chain → timestamp → snapshot → targets →
//!   delegated targets); a step attempted out of order is an [`EngineError::Order`];
//! - a failed step leaves the trusted set as it was, with two deliberate exceptions taken
//!   from python-tuf: a newer but expired timestamp, and a local snapshot that is not the
//!   final one, are kept as rollback floors while the step still reports the error;
//! - no arithmetic on untrusted numbers can overflow or panic.
//!
//! A client refresh, with the I/O (`local`, `fetch`, `persist`) left to the caller:
//!
//! ```no_run
//! # use sealwright_tuf::{EngineError, TrustedMetadataSet};
//! # fn local(_: &str) -> Option<Vec<u8>> { None }
//! # fn fetch(_: &str) -> Option<Vec<u8>> { None }
//! # fn persist(_: &str, _: &[u8]) {}
//! # fn main() -> Result<(), EngineError> {
//! let now = chrono::Utc::now(); // read once per process
//! let root = local("root.json").unwrap_or_default();
//! let mut set = TrustedMetadataSet::new(&root, now)?;
//! // §5.3: N+1.root.json until it is missing.
//! while let Some(next) = fetch(&format!("{}.root.json", set.root().signed.version.saturating_add(1))) {
//!     set.update_root(&next)?;
//!     persist("root.json", &next);
//! }
//! set.check_final_root()?;
//! // §5.4: the stored timestamp (if still acceptable) is the rollback floor.
//! if let Some(bytes) = local("timestamp.json") {
//!     let _ = set.load_local_timestamp(&bytes);
//! }
//! let remote = fetch("timestamp.json").unwrap_or_default();
//! match set.update_timestamp(&remote) {
//!     Ok(_) => persist("timestamp.json", &remote),
//!     Err(EngineError::EqualVersion { .. }) => {} // keep the stored file
//!     Err(e) => return Err(e),
//! }
//! // §5.5: a stored snapshot that is final is used as is; else fetch the pinned version.
//! let local_ok = local("snapshot.json").is_some_and(|b| set.load_local_snapshot(&b).is_ok());
//! if !local_ok {
//!     let v = set.snapshot_version_pinned().unwrap_or(0);
//!     let bytes = fetch(&format!("{v}.snapshot.json")).unwrap_or_default();
//!     set.update_snapshot(&bytes)?;
//!     persist("snapshot.json", &bytes);
//! }
//! // §5.6 and §5.7: top-level targets, then the delegation search loads roles on demand.
//! let found = set.find_target_role_path::<EngineError, _>("app/1.0/app.tar", |set, role, by| {
//!     if let Some(bytes) = local(&format!("{role}.json")) {
//!         if set.update_delegated_targets(&bytes, role, by).is_ok() {
//!             return Ok(());
//!         }
//!     }
//!     let v = set.role_version_in_snapshot(role).unwrap_or(0);
//!     let bytes = fetch(&format!("{v}.{role}.json")).unwrap_or_default();
//!     set.update_delegated_targets(&bytes, role, by)?;
//!     persist(&format!("{role}.json"), &bytes);
//!     Ok(())
//! })?;
//! # let _ = found;
//! # Ok(())
//! # }
//! ```

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use sealwright_crypto::PublicKey;

use crate::delegation::roles_for_target;
use crate::metadata::{
    expires_format, parse_envelope, LengthOrHashMismatch, MetaFile, Metadata, MetadataError,
    Received, RoleType, Root, Snapshot, TargetFile, Targets, Timestamp,
};
use crate::verify::{verify_role, ThresholdError};

/// Size limits for each kind of metadata (bytes) and bounds on the work of one update.
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
    /// Delegated roles visited in one target search (python-tuf's `max_delegations`).
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
    /// A role listed in the trusted snapshot is missing from the new one.
    #[error("{role} is listed in the trusted snapshot (version {trusted}) but not in the new one")]
    RoleRemoved {
        /// Which role (`name.json`).
        role: String,
        /// Its version in the trusted snapshot.
        trusted: u64,
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
    /// The root chain rotated the timestamp or snapshot keys, so locally stored timestamp
    /// and snapshot must be discarded, not loaded (fast-forward attack recovery, §5.3.11).
    #[error("{role}: stored copy refused because the new root rotated timestamp/snapshot keys")]
    KeysRotated {
        /// Which role.
        role: String,
    },
    /// More root versions than [`Limits::max_root_rotations`] in one update.
    #[error("more than {0} root rotations in one update")]
    TooManyRootRotations(u32),
    /// A step was attempted before the one it depends on, or after one that excludes it.
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

fn pinned_err(role: &str) -> impl FnOnce(LengthOrHashMismatch) -> EngineError + '_ {
    move |source| EngineError::Pinned {
        role: role.to_owned(),
        source,
    }
}

/// A verified targets role and the delegator it was verified against.
#[derive(Debug)]
struct TrustedTargets {
    md: Arc<Metadata<Targets>>,
    delegator: String,
}

/// Where a target was found by [`TrustedMetadataSet::find_target_role_path`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FoundTarget {
    /// The role that lists the target.
    pub role: String,
    /// The delegation chain from `targets` down to `role` (inclusive).
    pub chain: Vec<String>,
    /// The signed description of the target.
    pub target: TargetFile,
}

/// The set of metadata trusted so far in one update.
#[derive(Debug)]
pub struct TrustedMetadataSet {
    now: DateTime<Utc>,
    limits: Limits,
    root: Metadata<Root>,
    timestamp: Option<Metadata<Timestamp>>,
    snapshot: Option<Metadata<Snapshot>>,
    targets: HashMap<String, TrustedTargets>,
    root_updates: u32,
    online_keys_rotated: bool,
    /// Built by [`Self::for_snapshot_to_sign`]: the snapshot is the caller's own (about to
    /// be signed), and there is no timestamp.
    snapshot_to_sign: bool,
}

/// Parses `bytes` as role `T`, checks its signatures against `keyids`/`threshold` of `keys`,
/// and only then builds the typed role. Signatures are checked over the canonical form of
/// the `signed` object as received, before anything in it is believed.
fn load_verified<T: RoleType>(
    role: &str,
    bytes: &[u8],
    max: usize,
    keys: &BTreeMap<String, PublicKey>,
    keyids: &[String],
    threshold: u32,
) -> Result<Metadata<T>, EngineError> {
    let env = parse_envelope(bytes, max).map_err(md_err(role))?;
    verify_role(
        role,
        &env.canonical,
        &env.signatures,
        keys,
        keyids,
        threshold,
    )?;
    Metadata::<T>::from_envelope(env).map_err(md_err(role))
}

/// Keys, authorised key ids and threshold for one role.
type KeysFor<'a> = (&'a BTreeMap<String, PublicKey>, &'a [String], u32);

/// A size cap from a pinned length: the pin is exact, so nothing longer can be right.
fn cap(pinned: Option<u64>, default: usize) -> usize {
    pinned.map_or(default, |l| usize::try_from(l).unwrap_or(usize::MAX))
}

/// The authority over top-level role `name` in `root`: sorted key ids with their keys, and
/// the threshold. Two roots grant the same authority iff these are equal.
type Authority<'a> = (BTreeMap<&'a str, Option<&'a PublicKey>>, u32);

fn authority<'a>(root: &'a Root, name: &str) -> Option<Authority<'a>> {
    let role = root.roles.get(name)?;
    let keys = role
        .keyids
        .iter()
        .map(|id| (id.as_str(), root.keys.get(id)))
        .collect();
    Some((keys, role.threshold))
}

impl TrustedMetadataSet {
    /// §5.2 load the trusted root: `root_bytes` must be signed by a threshold of its own
    /// root keys. Its expiry is checked only after the root chain is updated (§5.3.10), so
    /// an expired trusted root can still be rotated forward.
    pub fn new(root_bytes: &[u8], now: DateTime<Utc>) -> Result<Self, EngineError> {
        Self::with_limits(root_bytes, now, Limits::default())
    }

    /// As [`Self::new`], with explicit limits.
    pub fn with_limits(
        root_bytes: &[u8],
        now: DateTime<Utc>,
        limits: Limits,
    ) -> Result<Self, EngineError> {
        let env = parse_envelope(root_bytes, limits.root).map_err(md_err("root"))?;
        let root = Metadata::<Root>::from_envelope(env).map_err(md_err("root"))?;
        let role = root
            .signed
            .roles
            .get("root")
            .ok_or_else(|| EngineError::Order("root has no root role".into()))?;
        verify_role(
            "root",
            root.received_canonical().unwrap_or_default(),
            &root.signatures,
            &root.signed.keys,
            &role.keyids,
            role.threshold,
        )?;
        Ok(TrustedMetadataSet {
            now,
            limits,
            root,
            timestamp: None,
            snapshot: None,
            targets: HashMap::new(),
            root_updates: 0,
            online_keys_rotated: false,
            snapshot_to_sign: false,
        })
    }

    /// The repository's side of §5.6–§5.7: a server (or publisher) about to sign `snapshot`
    /// asks the client's own questions of the targets roles that snapshot would publish —
    /// is each role signed by the keys its delegator on the search path names, at the
    /// version the snapshot lists, unexpired; which role does a client's search for a path
    /// land on. The snapshot is trusted because the caller is the one who will sign it;
    /// root is verified as in [`Self::new`] and must be unexpired. There is no timestamp:
    /// [`Self::update_timestamp`] and [`Self::update_snapshot`] refuse.
    pub fn for_snapshot_to_sign(
        root_bytes: &[u8],
        snapshot: Snapshot,
        now: DateTime<Utc>,
        limits: Limits,
    ) -> Result<Self, EngineError> {
        let mut set = Self::with_limits(root_bytes, now, limits)?;
        set.check_final_root()?;
        set.check_expiry("snapshot", &snapshot)?;
        set.snapshot = Some(Metadata::new(snapshot));
        set.snapshot_to_sign = true;
        Ok(set)
    }

    /// The trusted root.
    pub fn root(&self) -> &Metadata<Root> {
        &self.root
    }

    /// The trusted timestamp, if any.
    pub fn timestamp(&self) -> Option<&Metadata<Timestamp>> {
        self.timestamp.as_ref()
    }

    /// The trusted snapshot, if any (possibly only a rollback floor: see
    /// [`Self::check_final_snapshot`]).
    pub fn snapshot(&self) -> Option<&Metadata<Snapshot>> {
        self.snapshot.as_ref()
    }

    /// A trusted targets role, if loaded.
    pub fn targets_role(&self, name: &str) -> Option<&Metadata<Targets>> {
        self.targets.get(name).map(|t| t.md.as_ref())
    }

    /// The delegator a trusted targets role was verified against (`root` for `targets`).
    pub fn trusted_delegator(&self, name: &str) -> Option<&str> {
        self.targets.get(name).map(|t| t.delegator.as_str())
    }

    /// The limits in force.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// The reference time expiry is checked against.
    pub fn now(&self) -> DateTime<Utc> {
        self.now
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
        // Expired when now >= expires (python-tuf's `is_expired`).
        if signed.expires() <= self.now {
            return Err(EngineError::Expired {
                role: role.to_owned(),
                expires: expires_format::format(&signed.expires()),
            });
        }
        Ok(())
    }

    /// §5.3 update the root role: replace the trusted root N with version N+1, which must be
    /// signed by a threshold of the trusted root's root keys **and** of its own root keys
    /// (so neither a stolen old key set nor a made-up new one suffices). Expiry is not
    /// checked here: intermediate roots may be expired (§5.3.10 checks the last one).
    pub fn update_root(&mut self, bytes: &[u8]) -> Result<(), EngineError> {
        if self.timestamp.is_some() {
            return Err(EngineError::Order(
                "root must be updated before timestamp".into(),
            ));
        }
        if self.root_updates >= self.limits.max_root_rotations {
            return Err(EngineError::TooManyRootRotations(
                self.limits.max_root_rotations,
            ));
        }
        let trusted_version = self.root.signed.version;
        // A trusted root at u64::MAX cannot have a successor; never wrap around.
        let expected = trusted_version
            .checked_add(1)
            .ok_or_else(|| EngineError::Order("trusted root version cannot grow".into()))?;
        let (keyids, threshold) = self.top_role("root")?;
        let new = load_verified::<Root>(
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
            "root (by the new root's own keys)",
            new.received_canonical().unwrap_or_default(),
            &new.signatures,
            &new.signed.keys,
            &own.keyids,
            own.threshold,
        )?;
        if new.signed.version != expected {
            return Err(EngineError::VersionMismatch {
                role: "root".into(),
                new: new.signed.version,
                expected,
                pinned_by: format!("the trusted root v{trusted_version}"),
            });
        }
        self.online_keys_rotated |= Self::online_keys_rotated(&self.root.signed, &new.signed);
        self.root = new;
        self.root_updates = self.root_updates.saturating_add(1);
        Ok(())
    }

    /// §5.3.10 check for a freeze attack: after the last root, the trusted root must not be
    /// expired.
    pub fn check_final_root(&self) -> Result<(), EngineError> {
        self.check_expiry("root", &self.root.signed)
    }

    /// Whether `new_root` grants the timestamp or snapshot role to different keys (or a
    /// different threshold) than `old_root` does.
    pub fn online_keys_rotated(old_root: &Root, new_root: &Root) -> bool {
        ["timestamp", "snapshot"]
            .iter()
            .any(|r| authority(old_root, r) != authority(new_root, r))
    }

    /// §5.3.11 fast-forward attack recovery: true when a root update in this session
    /// rotated the timestamp or snapshot keys. The caller must then delete its stored
    /// timestamp and snapshot; [`Self::load_local_timestamp`] and
    /// [`Self::load_local_snapshot`] refuse them meanwhile, so the rollback checks start
    /// afresh from what the new keys sign.
    pub fn fast_forward_recovery_needed(&self) -> bool {
        self.online_keys_rotated
    }

    fn verify_timestamp(&self, bytes: &[u8]) -> Result<Metadata<Timestamp>, EngineError> {
        let (keyids, threshold) = self.top_role("timestamp")?;
        load_verified::<Timestamp>(
            "timestamp",
            bytes,
            self.limits.timestamp,
            &self.root.signed.keys,
            keyids,
            threshold,
        )
    }

    /// §5.4 update the timestamp role: signed by the root's timestamp keys; its version
    /// never goes back, and neither does the snapshot version it names. The same version as
    /// the trusted one is reported as [`EngineError::EqualVersion`] so the caller keeps its
    /// trusted file. Expiry is checked last (§5.4.5): a newer but expired timestamp is still
    /// kept as the rollback floor while [`EngineError::Expired`] is returned.
    pub fn update_timestamp(&mut self, bytes: &[u8]) -> Result<u64, EngineError> {
        if self.snapshot.is_some() {
            // Replacing the timestamp under a loaded snapshot would let a snapshot be
            // judged against a timestamp that did not pin it.
            return Err(EngineError::Order(
                "timestamp cannot be updated after snapshot".into(),
            ));
        }
        self.check_final_root()?;
        let new = self.verify_timestamp(bytes)?;
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
            let version_of = |t: &Timestamp| t.snapshot_meta().map_or(0, |m| m.version);
            let (trusted_snap, new_snap) = (version_of(&trusted.signed), version_of(&new.signed));
            if new_snap < trusted_snap {
                return Err(EngineError::Rollback {
                    role: "snapshot (as named by timestamp)".into(),
                    trusted: trusted_snap,
                    new: new_snap,
                });
            }
        }
        let version = new.signed.version;
        let expired = self.check_expiry("timestamp", &new.signed);
        self.timestamp = Some(new);
        expired.map(|()| version)
    }

    /// Trusts a timestamp from local storage: signatures checked, expiry not (an expired
    /// local timestamp must not block an update; it only sets the rollback floor for
    /// [`Self::update_timestamp`]). Refused after a rotation of online keys (§5.3.11).
    pub fn load_local_timestamp(&mut self, bytes: &[u8]) -> Result<(), EngineError> {
        if self.snapshot.is_some() {
            return Err(EngineError::Order(
                "timestamp cannot be loaded after snapshot".into(),
            ));
        }
        if self.online_keys_rotated {
            return Err(EngineError::KeysRotated {
                role: "timestamp".into(),
            });
        }
        let new = self.verify_timestamp(bytes)?;
        self.timestamp = Some(new);
        Ok(())
    }

    /// §5.4.5 the trusted timestamp must not be expired before anything it pins is loaded.
    pub fn check_final_timestamp(&self) -> Result<&Metadata<Timestamp>, EngineError> {
        let ts = self
            .timestamp
            .as_ref()
            .ok_or_else(|| EngineError::Order("snapshot needs a trusted timestamp first".into()))?;
        self.check_expiry("timestamp", &ts.signed)?;
        Ok(ts)
    }

    /// The snapshot version the trusted timestamp pins.
    pub fn snapshot_version_pinned(&self) -> Option<u64> {
        self.timestamp
            .as_ref()?
            .signed
            .snapshot_meta()
            .map(|m| m.version)
    }

    /// Verifies snapshot `bytes` against the root's snapshot keys and the rollback rules
    /// relative to the trusted snapshot; common to remote and local snapshots.
    fn verify_snapshot(&self, bytes: &[u8], max: usize) -> Result<Metadata<Snapshot>, EngineError> {
        if !self.targets.is_empty() {
            return Err(EngineError::Order(
                "snapshot cannot be updated after targets".into(),
            ));
        }
        self.check_final_timestamp()?;
        let (keyids, threshold) = self.top_role("snapshot")?;
        let new = load_verified::<Snapshot>(
            "snapshot",
            bytes,
            max,
            &self.root.signed.keys,
            keyids,
            threshold,
        )?;
        self.check_snapshot_rollback(&new.signed)?;
        Ok(new)
    }

    /// §5.5.5 check for a rollback attack: no role listed in the trusted snapshot may
    /// disappear from the new one or go back in version.
    fn check_snapshot_rollback(&self, new: &Snapshot) -> Result<(), EngineError> {
        let Some(old) = &self.snapshot else {
            return Ok(());
        };
        for (name, old_meta) in &old.signed.meta {
            match new.meta.get(name) {
                None => {
                    return Err(EngineError::RoleRemoved {
                        role: name.clone(),
                        trusted: old_meta.version,
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
        Ok(())
    }

    /// §5.5 update the snapshot role from the repository: exactly the length and hashes the
    /// trusted timestamp pins (when it pins them), signed by the root's snapshot keys, no
    /// role removed or rolled back relative to the trusted snapshot, the version the
    /// timestamp names, not expired. Returns the new snapshot version.
    pub fn update_snapshot(&mut self, bytes: &[u8]) -> Result<u64, EngineError> {
        let pin: MetaFile = self
            .check_final_timestamp()?
            .signed
            .snapshot_meta()
            .cloned()
            .ok_or_else(|| EngineError::Order("trusted timestamp pins no snapshot".into()))?;
        // Length and hashes first: bytes the timestamp does not vouch for are not parsed.
        pin.verify(bytes).map_err(pinned_err("snapshot"))?;
        let new = self.verify_snapshot(bytes, cap(pin.length, self.limits.snapshot))?;
        Self::check_snapshot_is_final(&new, &pin, self.now)?;
        let version = new.signed.version;
        self.snapshot = Some(new);
        Ok(version)
    }

    /// The `trusted = true` form of §5.5 for a snapshot from local storage: its hashes are
    /// not rechecked (they were when it was stored, and the timestamp may since have moved
    /// on), but its signatures are. It becomes the trusted snapshot — the rollback floor for
    /// the next [`Self::update_snapshot`] — and then, like python-tuf, this returns an error
    /// if it is not also the *final* snapshot (the version the timestamp names, unexpired):
    /// the caller then fetches the named version. Refused after a rotation of online keys.
    pub fn load_local_snapshot(&mut self, bytes: &[u8]) -> Result<(), EngineError> {
        if self.online_keys_rotated {
            return Err(EngineError::KeysRotated {
                role: "snapshot".into(),
            });
        }
        let new = self.verify_snapshot(bytes, self.limits.snapshot)?;
        self.snapshot = Some(new);
        self.check_final_snapshot().map(|_| ())
    }

    fn check_snapshot_is_final(
        snapshot: &Metadata<Snapshot>,
        pin: &MetaFile,
        now: DateTime<Utc>,
    ) -> Result<(), EngineError> {
        if snapshot.signed.version != pin.version {
            return Err(EngineError::VersionMismatch {
                role: "snapshot".into(),
                new: snapshot.signed.version,
                expected: pin.version,
                pinned_by: "timestamp".into(),
            });
        }
        if snapshot.signed.expires <= now {
            return Err(EngineError::Expired {
                role: "snapshot".into(),
                expires: expires_format::format(&snapshot.signed.expires),
            });
        }
        Ok(())
    }

    /// §5.5.6–5.5.7 the trusted snapshot is final: the version the trusted (unexpired)
    /// timestamp names, and not expired. Targets are only loaded against a final snapshot.
    pub fn check_final_snapshot(&self) -> Result<&Metadata<Snapshot>, EngineError> {
        if self.snapshot_to_sign {
            return self
                .snapshot
                .as_ref()
                .ok_or_else(|| EngineError::Order("no snapshot to sign".into()));
        }
        let ts = self.check_final_timestamp()?;
        let snapshot = self
            .snapshot
            .as_ref()
            .ok_or_else(|| EngineError::Order("targets need a trusted snapshot first".into()))?;
        let pin = ts
            .signed
            .snapshot_meta()
            .ok_or_else(|| EngineError::Order("trusted timestamp pins no snapshot".into()))?;
        Self::check_snapshot_is_final(snapshot, pin, self.now)?;
        Ok(snapshot)
    }

    /// The version of targets role `name` in the trusted snapshot.
    pub fn role_version_in_snapshot(&self, name: &str) -> Option<u64> {
        self.snapshot.as_ref()?.signed.role_version(name)
    }

    /// §5.6 update the targets role: top-level targets, signed by the root's targets keys
    /// and pinned by snapshot.
    pub fn update_targets(&mut self, bytes: &[u8]) -> Result<&Targets, EngineError> {
        self.update_delegated_targets(bytes, "targets", "root")
    }

    /// §5.6 for delegated roles: role `name` as delegated by the trusted `delegator` (`root`
    /// for top-level targets) — length, hashes and version as the final snapshot pins them,
    /// signed by the keys and threshold *this* delegator grants (a role delegated by two
    /// parents is verified against the one on the current search path), not expired.
    pub fn update_delegated_targets(
        &mut self,
        bytes: &[u8],
        name: &str,
        delegator: &str,
    ) -> Result<&Targets, EngineError> {
        let pin = self.targets_pin(name, bytes)?;
        let max = cap(pin.length, self.limits.targets);
        let (keys, keyids, threshold) = self.targets_authority(name, delegator)?;
        let new = load_verified::<Targets>(name, bytes, max, keys, keyids, threshold)?;
        self.trust_targets(name, delegator, Arc::new(new), &pin)
    }

    /// [`Self::update_delegated_targets`] for a role its caller has already parsed (the
    /// server, which read a pushed role to answer other questions first): the same checks,
    /// against the same bytes, without reading them a second time.
    pub fn update_delegated_targets_received(
        &mut self,
        received: &Received<'_, Targets>,
        name: &str,
        delegator: &str,
    ) -> Result<&Targets, EngineError> {
        let pin = self.targets_pin(name, received.bytes)?;
        let max = cap(pin.length, self.limits.targets);
        if received.bytes.len() > max {
            return Err(md_err(name)(MetadataError::TooLarge(max)));
        }
        let (keys, keyids, threshold) = self.targets_authority(name, delegator)?;
        let canonical = received
            .md
            .received_canonical()
            .ok_or_else(|| EngineError::Order("a received role without its bytes".into()))?;
        verify_role(
            name,
            canonical,
            &received.md.signatures,
            keys,
            keyids,
            threshold,
        )?;
        self.trust_targets(name, delegator, Arc::clone(&received.md), &pin)
    }

    /// Snapshot's pin for role `name`, checked against the role's exact bytes (length and
    /// hashes where it gives them: a role swapped for other validly signed bytes is caught
    /// here).
    fn targets_pin(&self, name: &str, bytes: &[u8]) -> Result<MetaFile, EngineError> {
        let pin: MetaFile = self
            .check_final_snapshot()?
            .signed
            .meta
            .get(&crate::layout::meta_key(name))
            .cloned()
            .ok_or_else(|| {
                EngineError::NotDelegated(format!("role {name} is not listed in snapshot"))
            })?;
        pin.verify(bytes).map_err(pinned_err(name))?;
        Ok(pin)
    }

    /// The keys, key ids and threshold `delegator` grants role `name`: root's targets role for the
    /// top-level targets, the delegator's delegation otherwise.
    fn targets_authority(&self, name: &str, delegator: &str) -> Result<KeysFor<'_>, EngineError> {
        if delegator == "root" {
            if name != "targets" {
                return Err(EngineError::NotDelegated(format!(
                    "root does not delegate {name}"
                )));
            }
            let (ids, t) = self.top_role("targets")?;
            return Ok((&self.root.signed.keys, ids, t));
        }
        let parent = self.targets.get(delegator).ok_or_else(|| {
            EngineError::Order(format!("delegator {delegator} is not trusted yet"))
        })?;
        let delegations =
            parent.md.signed.delegations.as_ref().ok_or_else(|| {
                EngineError::NotDelegated(format!("{delegator} delegates nothing"))
            })?;
        let (ids, t) = delegations.authority_for(name).ok_or_else(|| {
            EngineError::NotDelegated(format!("{delegator} does not delegate to {name}"))
        })?;
        Ok((&delegations.keys, ids, t))
    }

    /// A role whose signatures checked out: the version snapshot pins, not expired, then
    /// trusted as delegated by `delegator`.
    fn trust_targets(
        &mut self,
        name: &str,
        delegator: &str,
        new: Arc<Metadata<Targets>>,
        pin: &MetaFile,
    ) -> Result<&Targets, EngineError> {
        if new.signed.version != pin.version {
            return Err(EngineError::VersionMismatch {
                role: name.to_owned(),
                new: new.signed.version,
                expected: pin.version,
                pinned_by: "snapshot".into(),
            });
        }
        self.check_expiry(name, &new.signed)?;
        let slot = self
            .targets
            .entry(name.to_owned())
            .insert_entry(TrustedTargets {
                md: new,
                delegator: delegator.to_owned(),
            });
        Ok(&slot.into_mut().md.signed)
    }

    /// Role `role` as trusted through `delegator`, the delegator on the current search path:
    /// loaded through `load_role` first when it is not trusted yet, or was verified against
    /// another delegator (a role with two delegators is judged by the one on the path).
    fn role_on_path<E, F>(
        &mut self,
        role: &str,
        delegator: &str,
        load_role: &mut F,
    ) -> Result<&Targets, E>
    where
        E: From<EngineError>,
        F: FnMut(&mut Self, &str, &str) -> Result<(), E>,
    {
        if self.trusted_delegator(role) != Some(delegator) {
            load_role(self, role, delegator)?;
        }
        match self.targets.get(role) {
            Some(t) if t.delegator == delegator => Ok(&t.md.signed),
            _ => Err(EngineError::Order(format!(
                "role {role} was not verified as delegated by {delegator}"
            ))
            .into()),
        }
    }

    /// Makes role `name` trusted through *some* chain of delegations from top-level
    /// `targets`, whatever paths they cover: pre-order depth-first like
    /// [`Self::find_target_role_path`], each role visited once, at most `max_roles` roles
    /// loaded, succinct bins entered only when `name` is one of them (bins are never
    /// enumerated). For a repository checking a role it is about to publish that lists no
    /// new path (only removals or delegations); a client never needs it. Returns the
    /// chain, or `None` when no reachable role delegates `name`.
    pub fn find_role_path<E, F>(
        &mut self,
        name: &str,
        max_roles: usize,
        mut load_role: F,
    ) -> Result<Option<Vec<String>>, E>
    where
        E: From<EngineError>,
        F: FnMut(&mut Self, &str, &str) -> Result<(), E>,
    {
        let mut to_visit: Vec<(String, String, Vec<String>)> =
            vec![("targets".into(), "root".into(), Vec::new())];
        let mut visited: HashSet<String> = HashSet::new();
        while let Some((role, delegator, mut chain)) = to_visit.pop() {
            if visited.len() >= max_roles {
                break;
            }
            if !visited.insert(role.clone()) {
                continue;
            }
            let targets = self.role_on_path(&role, &delegator, &mut load_role)?;
            chain.push(role.clone());
            if role == name {
                return Ok(Some(chain));
            }
            let Some(delegations) = &targets.delegations else {
                continue;
            };
            let children: Vec<String> = match (&delegations.roles, &delegations.succinct_roles) {
                (Some(roles), _) => roles.iter().map(|r| r.name.clone()).collect(),
                (None, Some(bins)) if bins.is_delegated_role(name) => vec![name.to_owned()],
                _ => Vec::new(),
            };
            for child in children.into_iter().rev() {
                to_visit.push((child, role.clone(), chain.clone()));
            }
        }
        Ok(None)
    }

    /// §5.7 search the delegation graph for `target_path`: pre-order depth-first from
    /// top-level `targets`, children in order of appearance, each role visited once, a
    /// terminating delegation that matches ends the search after its subtree, at most
    /// [`Limits::max_delegations`] roles visited after `targets`. A role is reached only
    /// through delegations whose paths match `target_path`, so it must match every
    /// delegation on its chain.
    ///
    /// The engine does no I/O: whenever a role is needed and is not trusted as delegated by
    /// the delegator on the current path, `load_role(self, role, delegator)` is called, and
    /// must make it trusted — typically by passing locally stored or downloaded bytes to
    /// [`Self::update_delegated_targets`]. Its errors end the search. Returns `None` when no
    /// reachable role lists the target.
    pub fn find_target_role_path<E, F>(
        &mut self,
        target_path: &str,
        mut load_role: F,
    ) -> Result<Option<FoundTarget>, E>
    where
        E: From<EngineError>,
        F: FnMut(&mut Self, &str, &str) -> Result<(), E>,
    {
        // Stack entries: (role, its delegator, chain of roles above it).
        let mut to_visit: Vec<(String, String, Vec<String>)> =
            vec![("targets".into(), "root".into(), Vec::new())];
        let mut visited: HashSet<String> = HashSet::new();
        let max = usize::try_from(self.limits.max_delegations).unwrap_or(usize::MAX);
        while visited.len() <= max {
            let Some((role, delegator, mut chain)) = to_visit.pop() else {
                break;
            };
            if visited.contains(&role) {
                continue; // delegation cycles and diamonds: first path wins
            }
            let targets = self.role_on_path(&role, &delegator, &mut load_role)?;
            chain.push(role.clone());
            if let Some(target) = targets.targets.get(target_path) {
                return Ok(Some(FoundTarget {
                    role,
                    chain,
                    target: target.clone(),
                }));
            }
            let mut children = Vec::new();
            if let Some(delegations) = &targets.delegations {
                for (child, terminating) in roles_for_target(delegations, target_path) {
                    children.push(child);
                    if terminating {
                        // Nothing after a matching terminating delegation is consulted,
                        // not even the siblings of its ancestors (python-tuf, spec §5.7.2).
                        to_visit.clear();
                        break;
                    }
                }
            }
            visited.insert(role.clone());
            for child in children.into_iter().rev() {
                to_visit.push((child, role.clone(), chain.clone()));
            }
        }
        Ok(None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::{DelegatedRole, Delegations, Role, SuccinctRoles, TargetFile};
    use sealwright_crypto::{digest, Algorithm, PrivateKey, Signer};
    use std::rc::Rc;

    fn t(s: &str) -> DateTime<Utc> {
        expires_format::parse(s).unwrap()
    }
    fn now() -> DateTime<Utc> {
        t("2030-01-01T00:00:00Z")
    }
    fn later() -> DateTime<Utc> {
        t("2031-01-01T00:00:00Z")
    }
    fn past() -> DateTime<Utc> {
        t("2029-01-01T00:00:00Z")
    }
    fn key() -> Rc<PrivateKey> {
        Rc::new(PrivateKey::generate(Algorithm::Ed25519).unwrap())
    }
    fn sign<T: RoleType>(signed: T, signers: &[&PrivateKey]) -> Vec<u8> {
        let mut md = Metadata::new(signed);
        for s in signers {
            md.sign(*s).unwrap();
        }
        md.to_bytes().unwrap()
    }
    fn pin(bytes: &[u8], version: u64) -> MetaFile {
        let mut m = MetaFile::new(version);
        m.length = Some(bytes.len() as u64);
        m.hashes = Some(BTreeMap::from([(
            "sha256".to_owned(),
            hex::encode(digest::sha256(bytes)),
        )]));
        m
    }
    fn target(content: &[u8]) -> TargetFile {
        TargetFile::new(
            content.len() as u64,
            BTreeMap::from([("sha256".into(), hex::encode(digest::sha256(content)))]),
        )
    }

    /// A repository with one key per top-level role.
    struct Repo {
        root: Rc<PrivateKey>,
        timestamp: Rc<PrivateKey>,
        snapshot: Rc<PrivateKey>,
        targets: Rc<PrivateKey>,
    }

    impl Repo {
        fn new() -> Self {
            Repo {
                root: key(),
                timestamp: key(),
                snapshot: key(),
                targets: key(),
            }
        }

        fn root_signed(&self, version: u64, expires: DateTime<Utc>) -> Root {
            let mut keys = BTreeMap::new();
            let mut roles = BTreeMap::new();
            for (name, k) in [
                ("root", &self.root),
                ("timestamp", &self.timestamp),
                ("snapshot", &self.snapshot),
                ("targets", &self.targets),
            ] {
                keys.insert(k.keyid().to_owned(), k.public_key().clone());
                roles.insert(
                    name.to_owned(),
                    Role::new(vec![k.keyid().to_owned()], 1).unwrap(),
                );
            }
            Root::new(keys, roles, version, expires)
        }

        fn root(&self, version: u64, extra_signers: &[&PrivateKey]) -> Vec<u8> {
            let mut signers: Vec<&PrivateKey> = vec![&self.root];
            signers.extend_from_slice(extra_signers);
            sign(self.root_signed(version, later()), &signers)
        }

        fn snapshot(&self, version: u64, meta: &[(&str, u64)], expires: DateTime<Utc>) -> Vec<u8> {
            let meta = meta
                .iter()
                .map(|(n, v)| (format!("{n}.json"), MetaFile::new(*v)))
                .collect();
            sign(Snapshot::new(version, expires, meta), &[&self.snapshot])
        }

        fn timestamp(&self, version: u64, snapshot: &[u8], snap_version: u64) -> Vec<u8> {
            sign(
                Timestamp::new(version, later(), pin(snapshot, snap_version)),
                &[&self.timestamp],
            )
        }

        /// A trusted set with root v1, timestamp v1 and snapshot v1 listing `meta`.
        fn set_with_snapshot(&self, meta: &[(&str, u64)]) -> TrustedMetadataSet {
            let mut set = TrustedMetadataSet::new(&self.root(1, &[]), now()).unwrap();
            let snap = self.snapshot(1, meta, later());
            set.update_timestamp(&self.timestamp(1, &snap, 1)).unwrap();
            set.update_snapshot(&snap).unwrap();
            set
        }
    }

    #[test]
    fn full_workflow() {
        let r = Repo::new();
        let mut set = TrustedMetadataSet::new(&r.root(1, &[]), now()).unwrap();
        set.check_final_root().unwrap();
        let snap = r.snapshot(1, &[("targets", 1)], later());
        assert_eq!(set.update_timestamp(&r.timestamp(1, &snap, 1)).unwrap(), 1);
        assert_eq!(set.update_snapshot(&snap).unwrap(), 1);
        let mut tg = Targets::new(1, later());
        tg.targets.insert("a.txt".into(), target(b"abc"));
        let targets = set
            .update_targets(&sign(tg, &[&r.targets]))
            .unwrap()
            .clone();
        assert_eq!(targets.targets.len(), 1);
        assert_eq!(set.trusted_delegator("targets"), Some("root"));
        assert!(set.targets_role("targets").is_some());
    }

    #[test]
    fn root_rotation_needs_old_and_new_keys_and_exact_next_version() {
        let r = Repo::new();
        let mut set = TrustedMetadataSet::new(&r.root(1, &[]), now()).unwrap();
        let r2 = Repo::new();
        // v2 with a new root key, signed only by the new key: refused.
        let only_new = r2.root(2, &[]);
        let err = set.update_root(&only_new).unwrap_err();
        assert!(
            matches!(&err, EngineError::Threshold(e) if e.valid == 0 && e.threshold == 1),
            "{err}"
        );
        // Signed only by the old key (not by the new root's own key): refused.
        let only_old = sign(r2.root_signed(2, later()), &[&r.root]);
        assert!(matches!(
            set.update_root(&only_old),
            Err(EngineError::Threshold(_))
        ));
        // Skipping a version: refused.
        let skip = r2.root(3, &[&r.root]);
        assert!(matches!(
            set.update_root(&skip),
            Err(EngineError::VersionMismatch {
                expected: 2,
                new: 3,
                ..
            })
        ));
        // A timestamp where a root should be.
        let snap = r.snapshot(1, &[], later());
        assert!(set.update_root(&r.timestamp(1, &snap, 1)).is_err());
        // Both: accepted, and online keys rotated → fast-forward recovery.
        assert!(!set.fast_forward_recovery_needed());
        set.update_root(&r2.root(2, &[&r.root])).unwrap();
        assert_eq!(set.root().signed.version, 2);
        assert!(set.fast_forward_recovery_needed());
        // Replaying v2 fails (must be v3 now).
        assert!(set.update_root(&r2.root(2, &[&r.root])).is_err());
        set.check_final_root().unwrap();
        // Stored timestamp from before the rotation is refused, even if it verified.
        assert!(matches!(
            set.load_local_timestamp(&r.timestamp(5, &snap, 5)),
            Err(EngineError::KeysRotated { .. })
        ));
    }

    #[test]
    fn rotation_of_root_key_only_is_not_fast_forward() {
        let r = Repo::new();
        let mut set = TrustedMetadataSet::new(&r.root(1, &[]), now()).unwrap();
        let r2 = Repo {
            root: key(),
            timestamp: r.timestamp.clone(),
            snapshot: r.snapshot.clone(),
            targets: key(),
        };
        set.update_root(&r2.root(2, &[&r.root])).unwrap();
        assert!(!set.fast_forward_recovery_needed());
    }

    #[test]
    fn root_limits_and_overflow() {
        let r = Repo::new();
        let limits = Limits {
            max_root_rotations: 1,
            ..Limits::default()
        };
        let mut set = TrustedMetadataSet::with_limits(&r.root(1, &[]), now(), limits).unwrap();
        set.update_root(&r.root(2, &[])).unwrap();
        assert_eq!(
            set.update_root(&r.root(3, &[])),
            Err(EngineError::TooManyRootRotations(1))
        );
        // A trusted root at u64::MAX has no successor, and nothing panics.
        let mut max = TrustedMetadataSet::new(&r.root(u64::MAX, &[]), now()).unwrap();
        assert!(matches!(
            max.update_root(&r.root(1, &[])),
            Err(EngineError::Order(_))
        ));
        // Expired trusted root: loadable (so it can be rotated), but not final.
        let late = TrustedMetadataSet::new(&r.root(1, &[]), t("2032-01-01T00:00:00Z")).unwrap();
        assert!(matches!(
            late.check_final_root(),
            Err(EngineError::Expired { .. })
        ));
        // Root not signed by its own key.
        let unsigned = sign(r.root_signed(1, later()), &[&r.targets]);
        assert!(TrustedMetadataSet::new(&unsigned, now()).is_err());
    }

    #[test]
    fn timestamp_rollback_equal_version_and_expiry() {
        let r = Repo::new();
        let root1 = r.root(1, &[]);
        let mut set = TrustedMetadataSet::new(&root1, now()).unwrap();
        let snap2 = r.snapshot(2, &[], later());
        set.update_timestamp(&r.timestamp(2, &snap2, 2)).unwrap();
        let snap1 = r.snapshot(1, &[], later());
        assert_eq!(
            set.update_timestamp(&r.timestamp(1, &snap1, 1)),
            Err(EngineError::Rollback {
                role: "timestamp".into(),
                trusted: 2,
                new: 1
            })
        );
        assert!(matches!(
            set.update_timestamp(&r.timestamp(2, &snap2, 2)),
            Err(EngineError::EqualVersion { version: 2, .. })
        ));
        // Newer timestamp naming an older snapshot.
        assert!(matches!(
            set.update_timestamp(&r.timestamp(3, &snap1, 1)),
            Err(EngineError::Rollback {
                trusted: 2,
                new: 1,
                ..
            })
        ));
        // Signed by the wrong key.
        let forged = sign(Timestamp::new(9, later(), pin(&snap2, 9)), &[&r.snapshot]);
        assert!(matches!(
            set.update_timestamp(&forged),
            Err(EngineError::Threshold(_))
        ));
        // Newer but expired: error, yet kept as the rollback floor; snapshot then refused.
        let expired = sign(Timestamp::new(5, past(), pin(&snap2, 5)), &[&r.timestamp]);
        assert!(matches!(
            set.update_timestamp(&expired),
            Err(EngineError::Expired { .. })
        ));
        assert_eq!(set.timestamp().unwrap().signed.version, 5);
        assert!(matches!(
            set.update_snapshot(&snap2),
            Err(EngineError::Expired { .. })
        ));
        // Expired root blocks timestamp.
        let mut late = TrustedMetadataSet::new(&root1, t("2032-01-01T00:00:00Z")).unwrap();
        assert!(matches!(
            late.update_timestamp(&r.timestamp(1, &snap1, 1)),
            Err(EngineError::Expired { .. })
        ));
    }

    #[test]
    fn local_timestamp_is_loaded_without_expiry() {
        let r = Repo::new();
        let mut set = TrustedMetadataSet::new(&r.root(1, &[]), now()).unwrap();
        let snap = r.snapshot(1, &[], later());
        let expired = sign(Timestamp::new(3, past(), pin(&snap, 1)), &[&r.timestamp]);
        set.load_local_timestamp(&expired).unwrap();
        // It still sets the floor.
        assert!(matches!(
            set.update_timestamp(&r.timestamp(2, &snap, 1)),
            Err(EngineError::Rollback { .. })
        ));
        set.update_timestamp(&r.timestamp(4, &snap, 1)).unwrap();
    }

    #[test]
    fn steps_out_of_order_are_refused() {
        let r = Repo::new();
        let mut set = TrustedMetadataSet::new(&r.root(1, &[]), now()).unwrap();
        let snap = r.snapshot(1, &[("targets", 1)], later());
        assert!(matches!(
            set.update_snapshot(&snap),
            Err(EngineError::Order(_))
        ));
        set.update_timestamp(&r.timestamp(1, &snap, 1)).unwrap();
        assert!(matches!(
            set.update_root(&r.root(2, &[])),
            Err(EngineError::Order(_))
        ));
        let tg = sign(Targets::new(1, later()), &[&r.targets]);
        assert!(matches!(
            set.update_targets(&tg),
            Err(EngineError::Order(_))
        ));
        set.update_snapshot(&snap).unwrap();
        assert!(matches!(
            set.update_timestamp(&r.timestamp(2, &snap, 1)),
            Err(EngineError::Order(_))
        ));
        set.update_targets(&tg).unwrap();
        assert!(matches!(
            set.update_snapshot(&snap),
            Err(EngineError::Order(_))
        ));
    }

    #[test]
    fn snapshot_pinning_version_and_rollback() {
        let r = Repo::new();
        let mut set = TrustedMetadataSet::new(&r.root(1, &[]), now()).unwrap();
        let snap = r.snapshot(1, &[("targets", 1)], later());
        set.update_timestamp(&r.timestamp(1, &snap, 1)).unwrap();
        // Mix-and-match: a snapshot whose bytes the timestamp does not pin.
        let other = r.snapshot(1, &[("targets", 10)], later());
        assert!(matches!(
            set.update_snapshot(&other),
            Err(EngineError::Pinned {
                source: LengthOrHashMismatch::Length { .. },
                ..
            })
        ));
        // Same length, different bytes: the hash catches it.
        let mut flipped = snap.clone();
        let pos = flipped.iter().position(|b| *b == b'1').unwrap();
        if let Some(b) = flipped.get_mut(pos) {
            *b = b'2';
        }
        assert!(matches!(
            set.update_snapshot(&flipped),
            Err(EngineError::Pinned {
                source: LengthOrHashMismatch::Hash { .. },
                ..
            })
        ));
        // Wrong version although unpinned by hash.
        let mut set2 = TrustedMetadataSet::new(&r.root(1, &[]), now()).unwrap();
        let snap2 = r.snapshot(2, &[("targets", 1)], later());
        let ts = sign(
            Timestamp::new(1, later(), MetaFile::new(3)),
            &[&r.timestamp],
        );
        set2.update_timestamp(&ts).unwrap();
        assert!(matches!(
            set2.update_snapshot(&snap2),
            Err(EngineError::VersionMismatch {
                expected: 3,
                new: 2,
                ..
            })
        ));
        // Expired snapshot (freeze attack).
        let stale = r.snapshot(1, &[("targets", 1)], past());
        let mut set3 = TrustedMetadataSet::new(&r.root(1, &[]), now()).unwrap();
        set3.update_timestamp(&r.timestamp(1, &stale, 1)).unwrap();
        assert!(matches!(
            set3.update_snapshot(&stale),
            Err(EngineError::Expired { .. })
        ));
        set.update_snapshot(&snap).unwrap();
    }

    #[test]
    fn local_snapshot_is_the_rollback_floor() {
        let r = Repo::new();
        let mut set = TrustedMetadataSet::new(&r.root(1, &[]), now()).unwrap();
        // Stored from an earlier run: snapshot v2 with targets v5 and a delegated role.
        let local = r.snapshot(2, &[("targets", 5), ("d", 1)], later());
        // The repository now offers snapshot v3 rolling targets back to v4.
        let rolled = r.snapshot(3, &[("targets", 4), ("d", 1)], later());
        set.update_timestamp(&r.timestamp(3, &rolled, 3)).unwrap();
        // The local one is stored as the floor, but it is not final (timestamp names v3).
        assert!(matches!(
            set.load_local_snapshot(&local),
            Err(EngineError::VersionMismatch {
                expected: 3,
                new: 2,
                ..
            })
        ));
        assert!(matches!(
            set.update_snapshot(&rolled),
            Err(EngineError::Rollback {
                trusted: 5,
                new: 4,
                ..
            })
        ));
        let dropped = r.snapshot(3, &[("targets", 5)], later());
        let mut set2 = TrustedMetadataSet::new(&r.root(1, &[]), now()).unwrap();
        set2.update_timestamp(&r.timestamp(3, &dropped, 3)).unwrap();
        let _ = set2.load_local_snapshot(&local);
        assert!(matches!(
            set2.update_snapshot(&dropped),
            Err(EngineError::RoleRemoved { .. })
        ));
        // A local snapshot that is final is used as is; targets need no other.
        let mut set3 = TrustedMetadataSet::new(&r.root(1, &[]), now()).unwrap();
        let good = r.snapshot(3, &[("targets", 1)], later());
        // The timestamp pins other bytes (hashes of a snapshot since replaced): a local
        // snapshot is not re-hashed, only re-verified.
        set3.update_timestamp(&sign(
            Timestamp::new(3, later(), pin(b"other bytes", 3)),
            &[&r.timestamp],
        ))
        .unwrap();
        set3.load_local_snapshot(&good).unwrap();
        set3.check_final_snapshot().unwrap();
        // Forged local snapshot: refused.
        let mut set4 = TrustedMetadataSet::new(&r.root(1, &[]), now()).unwrap();
        set4.update_timestamp(&r.timestamp(3, &good, 3)).unwrap();
        let forged = sign(Snapshot::new(3, later(), BTreeMap::new()), &[&r.targets]);
        assert!(matches!(
            set4.load_local_snapshot(&forged),
            Err(EngineError::Threshold(_))
        ));
        assert!(set4.snapshot().is_none());
    }

    #[test]
    fn targets_pinning_keys_version_and_expiry() {
        let r = Repo::new();
        let tg = sign(Targets::new(2, later()), &[&r.targets]);
        let meta = {
            let mut m = pin(&tg, 2);
            m.hashes = None;
            m
        };
        let mut set = TrustedMetadataSet::new(&r.root(1, &[]), now()).unwrap();
        let snap = sign(
            Snapshot::new(
                1,
                later(),
                BTreeMap::from([("targets.json".to_owned(), meta)]),
            ),
            &[&r.snapshot],
        );
        set.update_timestamp(&r.timestamp(1, &snap, 1)).unwrap();
        set.update_snapshot(&snap).unwrap();
        // Wrong length (endless data / wrong file).
        let longer = sign(Targets::new(20, later()), &[&r.targets]);
        assert!(matches!(
            set.update_targets(&longer),
            Err(EngineError::Pinned { .. })
        ));
        // Right length, wrong signer.
        let forged = sign(Targets::new(2, later()), &[&r.snapshot]);
        assert!(matches!(
            set.update_targets(&forged),
            Err(EngineError::Threshold(_))
        ));
        // Right length, wrong version.
        let v3 = sign(Targets::new(3, later()), &[&r.targets]);
        assert!(matches!(
            set.update_targets(&v3),
            Err(EngineError::VersionMismatch {
                expected: 2,
                new: 3,
                ..
            })
        ));
        // Expired.
        let expired = sign(Targets::new(2, past()), &[&r.targets]);
        assert_eq!(expired.len(), tg.len());
        assert!(matches!(
            set.update_targets(&expired),
            Err(EngineError::Expired { .. })
        ));
        assert!(set.targets_role("targets").is_none());
        set.update_targets(&tg).unwrap();
        // Not in snapshot.
        assert!(matches!(
            set.update_delegated_targets(&tg, "nope", "targets"),
            Err(EngineError::NotDelegated(_))
        ));
    }

    #[test]
    fn a_received_role_gets_the_same_checks_as_its_bytes() {
        let r = Repo::new();
        let tg = sign(Targets::new(2, later()), &[&r.targets]);
        let mut set = TrustedMetadataSet::new(&r.root(1, &[]), now()).unwrap();
        let snap = sign(
            Snapshot::new(
                1,
                later(),
                BTreeMap::from([("targets.json".to_owned(), pin(&tg, 2))]),
            ),
            &[&r.snapshot],
        );
        set.update_timestamp(&r.timestamp(1, &snap, 1)).unwrap();
        set.update_snapshot(&snap).unwrap();
        fn received(bytes: &[u8]) -> Received<'_, Targets> {
            Received::parse(bytes, 1 << 20).unwrap()
        }
        let forged = sign(Targets::new(2, later()), &[&r.snapshot]);
        assert!(matches!(
            set.update_delegated_targets_received(&received(&forged), "targets", "root"),
            Err(EngineError::Pinned { .. })
        ));
        let other = sign(Targets::new(3, later()), &[&r.targets]);
        assert!(matches!(
            set.update_delegated_targets_received(&received(&other), "targets", "root"),
            Err(EngineError::Pinned { .. })
        ));
        assert!(set.targets_role("targets").is_none());
        set.update_delegated_targets_received(&received(&tg), "targets", "root")
            .unwrap();
        assert_eq!(set.targets_role("targets").unwrap().signed.version, 2);
    }

    #[test]
    fn a_received_role_is_verified_by_its_signatures() {
        let r = Repo::new();
        let forged = sign(Targets::new(2, later()), &[&r.snapshot]);
        let mut meta = pin(&forged, 2);
        meta.hashes = None;
        meta.length = None;
        let mut set = TrustedMetadataSet::new(&r.root(1, &[]), now()).unwrap();
        let snap = sign(
            Snapshot::new(
                1,
                later(),
                BTreeMap::from([("targets.json".to_owned(), meta)]),
            ),
            &[&r.snapshot],
        );
        set.update_timestamp(&r.timestamp(1, &snap, 1)).unwrap();
        set.update_snapshot(&snap).unwrap();
        let received = Received::parse(&forged, 1 << 20).unwrap();
        assert!(matches!(
            set.update_delegated_targets_received(&received, "targets", "root"),
            Err(EngineError::Threshold(_))
        ));
    }

    #[test]
    fn signatures_cover_the_received_signed_object() {
        // Unknown fields, odd key order and `custom: null` (which a typed re-serialisation
        // would drop): the signature over the canonical form of what was received verifies.
        let r = Repo::new();
        let mut root = serde_json::to_value(r.root_signed(1, later())).unwrap();
        root["x-unknown"] = serde_json::json!({"z": 1, "a": [true, null]});
        root["spec_version"] = "1.0".into();
        let canonical = sealwright_crypto::canonical::to_canonical_json(&root).unwrap();
        let sig = hex::encode(r.root.sign(&canonical).unwrap());
        let doc = format!(
            r#"{{"signed":{root},"signatures":[{{"sig":"{sig}","keyid":"{}","x-extra":1}}]}}"#,
            r.root.keyid()
        );
        let set = TrustedMetadataSet::new(doc.as_bytes(), now()).unwrap();
        assert_eq!(set.root().received_canonical(), Some(canonical.as_slice()));
        // Dropping the unknown field breaks the signature.
        let stripped = doc.replace(r#","x-unknown":{"a":[true,null],"z":1}"#, "");
        assert_ne!(stripped, doc);
        assert!(matches!(
            TrustedMetadataSet::new(stripped.as_bytes(), now()),
            Err(EngineError::Threshold(_))
        ));
    }

    #[test]
    fn garbage_never_panics() {
        let r = Repo::new();
        let mut set = TrustedMetadataSet::new(&r.root(1, &[]), now()).unwrap();
        for junk in [
            &b""[..],
            b"{}",
            b"[]",
            b"{\"signed\":{},\"signatures\":[]}",
            b"{\"signed\":{\"_type\":\"root\"},\"signatures\":[{\"keyid\":1}]}",
            b"\xff\xfe",
            b"{\"signed\":{\"version\":1.5},\"signatures\":[]}",
        ] {
            assert!(set.update_root(junk).is_err());
            assert!(set.update_timestamp(junk).is_err());
            assert!(TrustedMetadataSet::new(junk, now()).is_err());
        }
    }

    proptest::proptest! {
        /// Mutated (and so mostly unsigned or malformed) metadata fed to every step never
        /// panics and never changes the trusted state.
        #[test]
        fn mutated_metadata_never_panics_the_engine(
            edits in proptest::collection::vec((0usize..4000, proptest::num::u8::ANY), 1..6),
        ) {
            let r = Repo::new();
            let snap = r.snapshot(2, &[("targets", 1)], later());
            let ts = r.timestamp(2, &snap, 2);
            let root2 = r.root(2, &[]);
            let tg = sign(Targets::new(1, later()), &[&r.targets]);
            for doc in [&snap, &ts, &root2, &tg] {
                let mut bad = doc.clone();
                for (pos, byte) in &edits {
                    let at = pos % bad.len();
                    if let Some(b) = bad.get_mut(at) {
                        *b = *byte;
                    }
                }
                let mut set = TrustedMetadataSet::new(&r.root(1, &[]), now()).unwrap();
                if set.update_root(&bad).is_err() {
                    proptest::prop_assert_eq!(set.root().signed.version, 1);
                }
                if set.update_timestamp(&bad).is_err() {
                    proptest::prop_assert!(set.timestamp().is_none());
                }
                let _ = set.update_timestamp(&ts);
                let _ = set.load_local_snapshot(&bad);
                let _ = set.update_snapshot(&bad);
                let _ = set.update_targets(&bad);
                let _ = set.update_delegated_targets(&bad, "d", "targets");
            }
        }
    }

    // ---- delegation search ----

    /// Targets metadata for a small delegation graph, served by name.
    struct Graph {
        repo: Repo,
        keys: BTreeMap<String, Rc<PrivateKey>>,
        files: BTreeMap<String, Targets>,
    }

    impl Graph {
        fn new() -> Self {
            let mut g = Graph {
                repo: Repo::new(),
                keys: BTreeMap::new(),
                files: BTreeMap::new(),
            };
            g.files.insert("targets".into(), Targets::new(1, later()));
            g
        }

        fn key(&mut self, role: &str) -> Rc<PrivateKey> {
            self.keys.entry(role.to_owned()).or_insert_with(key).clone()
        }

        /// `parent` delegates `child` with `paths`.
        fn delegate(&mut self, parent: &str, child: &str, paths: &[&str], terminating: bool) {
            let k = self.key(child);
            let role = DelegatedRole::new(
                child.into(),
                vec![k.keyid().into()],
                1,
                terminating,
                Some(paths.iter().map(|p| (*p).to_owned()).collect()),
                None,
            )
            .unwrap();
            let p = self
                .files
                .entry(parent.to_owned())
                .or_insert_with(|| Targets::new(1, later()));
            let d = p
                .delegations
                .get_or_insert_with(|| Delegations::new_roles(BTreeMap::new(), Vec::new()));
            d.keys.insert(k.keyid().into(), k.public_key().clone());
            if let Some(roles) = d.roles.as_mut() {
                roles.push(role);
            }
            self.files
                .entry(child.to_owned())
                .or_insert_with(|| Targets::new(1, later()));
        }

        fn add_target(&mut self, role: &str, path: &str) {
            if let Some(t) = self.files.get_mut(role) {
                t.targets.insert(path.into(), target(role.as_bytes()));
            }
        }

        fn bytes(&mut self, role: &str) -> Vec<u8> {
            let signer = if role == "targets" {
                self.repo.targets.clone()
            } else {
                self.key(role)
            };
            sign(self.files[role].clone(), &[&signer])
        }

        fn set(&mut self) -> TrustedMetadataSet {
            let names: Vec<String> = self.files.keys().cloned().collect();
            let meta: Vec<(&str, u64)> = names.iter().map(|n| (n.as_str(), 1)).collect();
            let mut set = self.repo.set_with_snapshot(&meta);
            let tg = self.bytes("targets");
            set.update_targets(&tg).unwrap();
            set
        }

        /// Runs the search, loading roles from this graph; returns the hit and load order.
        fn search(
            &mut self,
            set: &mut TrustedMetadataSet,
            path: &str,
        ) -> (Option<FoundTarget>, Vec<String>) {
            let mut loaded = Vec::new();
            let all: BTreeMap<String, Vec<u8>> = self
                .files
                .keys()
                .cloned()
                .collect::<Vec<_>>()
                .into_iter()
                .map(|n| {
                    let b = self.bytes(&n);
                    (n, b)
                })
                .collect();
            let hit = set
                .find_target_role_path::<EngineError, _>(path, |set, role, delegator| {
                    loaded.push(format!("{delegator}>{role}"));
                    let bytes = all.get(role).cloned().unwrap_or_default();
                    set.update_delegated_targets(&bytes, role, delegator)
                        .map(|_| ())
                })
                .unwrap();
            (hit, loaded)
        }
    }

    #[test]
    fn search_is_preorder_in_order_of_appearance_and_visits_each_role_once() {
        let mut g = Graph::new();
        g.delegate("targets", "a", &["*"], false);
        g.delegate("targets", "b", &["*"], false);
        g.delegate("a", "a1", &["*"], false);
        g.delegate("a", "b", &["*"], false); // diamond: b reached via a first
        g.add_target("b", "f");
        let mut set = g.set();
        let (hit, loaded) = g.search(&mut set, "f");
        let hit = hit.unwrap();
        assert_eq!(loaded, ["targets>a", "a>a1", "a>b"]);
        assert_eq!(hit.role, "b");
        assert_eq!(hit.chain, ["targets", "a", "b"]);
        assert_eq!(set.trusted_delegator("b"), Some("a"));
        // Not found anywhere: every role is visited once, then None.
        let (none, loaded) = g.search(&mut set, "missing");
        assert!(none.is_none());
        assert!(loaded.is_empty(), "all roles already trusted: {loaded:?}");
    }

    #[test]
    fn diamond_role_is_reverified_against_the_delegator_on_the_path() {
        let mut g = Graph::new();
        g.delegate("targets", "a", &["x/*"], false);
        g.delegate("targets", "b", &["y/*"], false);
        g.delegate("a", "shared", &["x/*"], false);
        g.delegate("b", "shared", &["y/*"], false);
        g.add_target("shared", "y/f");
        let mut set = g.set();
        let (_, loaded) = g.search(&mut set, "x/none");
        assert_eq!(loaded, ["targets>a", "a>shared"]);
        let (hit, loaded) = g.search(&mut set, "y/f");
        assert_eq!(loaded, ["targets>b", "b>shared"]);
        assert_eq!(hit.unwrap().chain, ["targets", "b", "shared"]);
        // If b's delegation used other keys, `shared` signed by a's grant would fail.
        let other = key();
        if let Some(roles) = g
            .files
            .get_mut("b")
            .and_then(|b| b.delegations.as_mut())
            .and_then(|d| d.roles.as_mut())
        {
            for r in roles.iter_mut() {
                r.keyids = vec![other.keyid().into()];
            }
        }
        let mut set = g.set();
        let _ = g.search(&mut set, "x/none");
        let all = g.bytes("shared");
        let b = g.bytes("b");
        let res = set.find_target_role_path::<EngineError, _>("y/f", |set, role, delegator| {
            let bytes = if role == "b" { &b } else { &all };
            set.update_delegated_targets(bytes, role, delegator)
                .map(|_| ())
        });
        assert!(matches!(res, Err(EngineError::Threshold(_))));
    }

    #[test]
    fn terminating_stops_the_whole_search_and_paths_must_match_every_link() {
        let mut g = Graph::new();
        g.delegate("targets", "a", &["app/*"], true);
        g.delegate("targets", "b", &["app/*"], false);
        g.add_target("b", "app/x");
        let mut set = g.set();
        let (hit, loaded) = g.search(&mut set, "app/x");
        assert!(hit.is_none(), "b comes after terminating a");
        assert_eq!(loaded, ["targets>a"]);

        let mut g = Graph::new();
        g.delegate("targets", "a", &["app/*"], false);
        g.delegate("a", "deep", &["*/*"], false); // wider than its parent's grant
        g.add_target("deep", "lib/y");
        g.add_target("deep", "app/y");
        g.add_target("targets", "z");
        let mut set = g.set();
        let (hit, loaded) = g.search(&mut set, "lib/y");
        assert!(hit.is_none() && loaded.is_empty(), "{loaded:?}");
        let (hit, _) = g.search(&mut set, "app/y");
        assert_eq!(hit.unwrap().role, "deep");
        let (hit, _) = g.search(&mut set, "z");
        assert_eq!(hit.unwrap().role, "targets");
        // `*` never crosses `/`.
        let (hit, _) = g.search(&mut set, "app/y/z");
        assert!(hit.is_none());
    }

    #[test]
    fn search_respects_max_delegations() {
        let mut g = Graph::new();
        let mut parent = "targets".to_owned();
        for i in 0..5 {
            let child = format!("r{i}");
            g.delegate(&parent, &child, &["*"], false);
            parent = child;
        }
        g.add_target("r4", "f");
        let mut set = g.set();
        set.limits.max_delegations = 4;
        let (hit, loaded) = g.search(&mut set, "f");
        assert!(hit.is_none());
        assert_eq!(loaded.len(), 4);
        set.limits.max_delegations = 5;
        let (hit, _) = g.search(&mut set, "f");
        assert_eq!(hit.unwrap().chain.len(), 6);
    }

    #[test]
    fn search_through_succinct_bins() {
        let r = Repo::new();
        let bins = key();
        let succinct = SuccinctRoles::new(vec![bins.keyid().into()], 1, 4, "bin".into()).unwrap();
        let path = "pkg/app-1.0.tar.gz";
        let bin = succinct.role_for_target(path);
        let mut tg = Targets::new(1, later());
        tg.delegations = Some(Delegations::new_succinct(
            BTreeMap::from([(bins.keyid().to_owned(), bins.public_key().clone())]),
            succinct,
        ));
        let mut bin_md = Targets::new(1, later());
        bin_md.targets.insert(path.into(), target(b"x"));
        let bin_bytes = sign(bin_md, &[&bins]);
        let mut set = r.set_with_snapshot(&[("targets", 1), (bin.as_str(), 1)]);
        set.update_targets(&sign(tg, &[&r.targets])).unwrap();
        let mut asked = Vec::new();
        let hit = set
            .find_target_role_path::<EngineError, _>(path, |set, role, delegator| {
                asked.push(role.to_owned());
                set.update_delegated_targets(&bin_bytes, role, delegator)
                    .map(|_| ())
            })
            .unwrap()
            .unwrap();
        assert_eq!(asked, std::slice::from_ref(&bin));
        assert_eq!(hit.role, bin);
        // Another path lands in another bin, which is not in snapshot: the loader's error.
        let other = (0..)
            .map(|i| format!("f{i}"))
            .find(|p| {
                set.targets_role("targets").is_some_and(|t| {
                    t.signed
                        .delegations
                        .as_ref()
                        .and_then(|d| d.succinct_roles.as_ref())
                        .is_some_and(|s| s.role_for_target(p) != bin)
                })
            })
            .unwrap();
        let res = set.find_target_role_path::<EngineError, _>(&other, |set, role, delegator| {
            set.update_delegated_targets(&bin_bytes, role, delegator)
                .map(|_| ())
        });
        assert!(matches!(res, Err(EngineError::NotDelegated(_))));
    }

    #[test]
    fn a_loader_that_does_not_load_is_an_error() {
        let mut g = Graph::new();
        g.delegate("targets", "a", &["*"], false);
        let mut set = g.set();
        let res = set.find_target_role_path::<EngineError, _>("f", |_, _, _| Ok(()));
        assert!(matches!(res, Err(EngineError::Order(_))));
    }
}
