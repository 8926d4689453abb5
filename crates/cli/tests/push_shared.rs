//! The publish API end to end: `sealwright serve --push` with a signer agent holding the
//! online keys, a publisher running `sealwright push`, python-tuf's ngclient reading the
//! result over HTTPS, and every kind of bad push refused, audited, and leaving nothing stored.
//! This run: the same suite as push.rs, the server on a shared store (PostgreSQL +
//! S3, from `scripts/services`).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

/// Whether the server runs on a shared store (PostgreSQL + S3) instead of its data directory.
const SHARED: bool = true;

mod common;

include!("push/suite.rs");
