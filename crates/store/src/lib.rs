//! Embedded storage for Sealwright (PRODUCT.md D4, D6): the audit log, one SQLite file in
//! a data directory.
//!
//! See [`audit`] for what the log guarantees and what it cannot.

pub mod audit;

pub use audit::{AuditError, AuditLog, Broken, NewRecord, Record, Verified};
