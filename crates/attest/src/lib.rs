//! Attestations for Sealwright releases, in the formats the supply-chain tools share:
//!
//! - [`dsse`]: DSSE v1 envelopes (secure-systems-lab/dsse) — the pre-authentication
//!   encoding, signing with any [`sealwright_crypto::Signer`], verifying a threshold of
//!   unique trusted keys;
//! - [`statement`]: in-toto Statement v1 — subjects matched by digest, one spelling out;
//! - [`slsa`]: the SLSA Provenance v1 predicate;
//! - [`provenance`]: the one check of signed provenance every consumer runs;
//! - [`lockfile`]: the components a build resolved, from Cargo, npm and Python lockfiles;
//! - [`sbom`]: CycloneDX 1.6 and SPDX 2.3 documents of a release;
//! - [`deps`]: the dependency policy — sources, digests, dependency confusion;
//! - [`reproduction`]: the predicate a rebuilder signs when it got the same bytes;
//! - [`evidence`]: what a release must carry (provenance, k reproductions) and the links
//!   to it in signed targets metadata — one check for `publish`, the server and devices;
//! - [`sigstore`]: the same envelope as a keyed Sigstore bundle v0.3.
//!
//! Nothing here does I/O or reads the clock: bytes in, decisions out. The builder, the
//! server's upload check, devices and `verify-release` use the same functions.

pub mod deps;
pub mod dsse;
pub mod evidence;
pub mod lockfile;
pub mod provenance;
pub mod reproduction;
pub mod sbom;
pub mod sigstore;
pub mod slsa;
pub mod statement;
