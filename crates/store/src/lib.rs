//! Embedded storage for Sealwright (PRODUCT.md D4, D6): SQLite files in a data directory —
//! the audit log and the server's index.
//!
//! See [`audit`] for what the log guarantees and what it cannot, and [`index`] for what the
//! index is (derived data, never trusted).

pub mod audit;
pub mod index;

pub use audit::{AuditError, AuditLog, Broken, NewRecord, Record, Verified};
pub use index::{Index, IndexError};
