//! Sealwright's reproduction predicate: "I rebuilt this release from the source its
//! provenance names and got these exact bytes", signed by a rebuilder (PRODUCT.md P7).
//!
//! Predicate type [`REPRODUCTION_V1`], in an in-toto Statement v1 whose subjects are the
//! reproduced products (name, SHA-256) — the same subjects as the provenance it reproduces.
//! A device or repository that wants k independent reproductions counts statements of this
//! type over the artifact's digest signed by k distinct trusted rebuilder keys.

use serde::{Deserialize, Serialize};

/// The predicate type of a reproduction.
pub const REPRODUCTION_V1: &str = "https://sealwright.dev/reproduction/v1";

/// What a rebuilder attests.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reproduction {
    /// The provenance reproduced: the SHA-256 of its envelope and the builder it names.
    pub provenance: ReproducedProvenance,
    /// The source rebuilt: `git+URL`, commit and tree.
    pub source: RebuiltSource,
    /// Who rebuilt (a URI).
    pub rebuilder_id: String,
    /// `bubblewrap` or `none`.
    pub sandbox: String,
    /// Start and end of the rebuild, RFC 3339 UTC.
    pub started_on: String,
    /// End of the rebuild.
    pub finished_on: String,
}

/// The provenance a reproduction is of.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReproducedProvenance {
    /// SHA-256 of the provenance envelope's bytes.
    pub sha256: String,
    /// The original builder's id.
    pub builder_id: String,
}

/// The source a reproduction rebuilt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RebuiltSource {
    /// `git+URL`.
    pub uri: String,
    /// The commit.
    pub git_commit: String,
    /// Its tree.
    pub git_tree: String,
}
