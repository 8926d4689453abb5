//! TUF 1.0.34 for Sealwright: the metadata model, signature thresholds, delegation
//! matching, and the sans-IO trust engine shared by every component that trusts bytes.
//!
//! - [`metadata`]: envelope and role types; strict parsing; unknown fields preserved.
//! - [`verify`]: the threshold check.
//! - [`delegation`]: `paths` globs, `path_hash_prefixes`.
//! - [`engine`]: the §5 client workflow, one method per step.

pub mod delegation;
pub mod engine;
pub mod metadata;
pub mod verify;

pub use engine::{EngineError, Limits, TrustedMetadataSet};
pub use metadata::{Metadata, MetadataError, Root, Snapshot, Targets, Timestamp};
