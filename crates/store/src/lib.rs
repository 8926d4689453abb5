//! Storage for Sealwright (PRODUCT.md D4, D6): the audit log, and the index of a publish
//! server — embedded (SQLite files in a data directory, the default) or shared by replicas
//! (PostgreSQL for what they must agree on, S3-compatible object storage for bytes).
//!
//! See [`audit`] for what the log guarantees and what it cannot, [`index`] and [`catalog`]
//! for what the index is (derived data, never trusted), and [`shared`] for what the shared
//! store guarantees to replicas.

pub mod audit;
pub mod catalog;
pub mod index;
pub mod log_sequence;
pub mod monitor_state;
pub mod shared;
pub mod shared_audit;

pub use audit::{AuditError, AuditLog, Broken, NewRecord, Record, Verified};
pub use catalog::{Catalog, Embedded, StoreError};
pub use index::{Index, IndexError};
pub use shared::{PublishLock, PublishedFile, Shared, SharedConfig};
