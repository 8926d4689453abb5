//! TUF 1.0.34 for Sealwright: the metadata model, signature thresholds, delegation
//! matching, and the sans-IO trust engine shared by every component that trusts bytes.
//!
//! - [`metadata`]: envelope and role types; strict parsing (size cap, duplicate keys,
//!   floats, `_type`, `spec_version`, `expires`); unknown fields preserved; the canonical
//!   bytes of the received `signed` object kept for signature checks.
//! - [`verify`]: the threshold check (each authorised key id counted once).
//! - [`delegation`]: `paths` globs, `path_hash_prefixes`, TAP 15 succinct hash bins.
//! - [`engine`]: the §5 client workflow, one method per step, and the delegation search.
//!
//! Nothing here does I/O or reads the clock: bytes and a reference time go in, decisions
//! come out, so the client, the publisher's verifier, the server and the fuzzers all run
//! the same checks.

pub mod delegation;
pub mod engine;
mod known_fields;
pub mod layout;
pub mod metadata;
pub mod verify;

pub use engine::{EngineError, FoundTarget, Limits, TrustedMetadataSet};
pub use metadata::{
    DelegatedRole, Delegations, LengthOrHashMismatch, MetaFile, Metadata, MetadataError, Role,
    RoleType, Root, Signature, Snapshot, SuccinctRoles, TargetFile, Targets, Timestamp,
};
pub use verify::{verify_role, ThresholdError};
