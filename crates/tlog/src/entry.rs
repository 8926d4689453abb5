//! What Sealwright writes into its transparency log: small, typed statements about what the
//! repository published — never artifacts, only their digests.
//!
//! Each entry is one JSON object in canonical JSON (so it has one spelling, and the leaf
//! hash of the same statement is always the same), `kind` first among its fields by name:
//!
//! | kind | fields | logged when |
//! |---|---|---|
//! | `metadata` | `role`, `version`, `length`, `sha256` of the exact file bytes | a signed metadata file is published |
//! | `target` | `path`, `length`, `sha256`, `role` (the role whose signature lists it) | a target is published or re-pointed |
//! | `audit-head` | `records`, `head` (hash of the newest audit record) | periodically, anchoring the local audit log |
//!
//! Every entry is at most [`crate::tile::MAX_ENTRY_BYTES`]; a target path long enough to
//! exceed it is refused by [`Entry::to_bytes`] rather than cut.

use serde::{Deserialize, Serialize};

use crate::tile::MAX_ENTRY_BYTES;

/// Why an entry cannot be logged or read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    /// Larger than an entry bundle can carry.
    #[error("a log entry of {0} bytes is over the 65535-byte limit")]
    TooLarge(usize),
    /// Not an entry in its one spelling.
    #[error("not a Sealwright log entry: {0}")]
    Malformed(String),
}

/// One logged statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Entry {
    /// A published metadata file.
    Metadata {
        /// Role name.
        role: String,
        /// Its version.
        version: u64,
        /// Length of the file.
        length: u64,
        /// SHA-256 of the file's exact bytes, lowercase hex.
        sha256: String,
    },
    /// A published target.
    Target {
        /// Target path.
        path: String,
        /// Length.
        length: u64,
        /// SHA-256, lowercase hex.
        sha256: String,
        /// The role whose signed metadata lists it.
        role: String,
    },
    /// The head of the local hash-chained audit log.
    AuditHead {
        /// Records in the audit log.
        records: u64,
        /// Hash of the newest record, lowercase hex.
        head: String,
    },
}

impl Entry {
    /// The entry's bytes: canonical JSON.
    pub fn to_bytes(&self) -> Result<Vec<u8>, EntryError> {
        let bytes = sealwright_crypto::canonical::to_canonical_json_from(self)
            .map_err(|e| EntryError::Malformed(e.to_string()))?;
        if bytes.len() > MAX_ENTRY_BYTES {
            return Err(EntryError::TooLarge(bytes.len()));
        }
        Ok(bytes)
    }

    /// Reads an entry, accepting only its one spelling.
    pub fn parse(bytes: &[u8]) -> Result<Self, EntryError> {
        if !sealwright_crypto::canonical::is_canonical(bytes) {
            return Err(EntryError::Malformed("not canonical JSON".into()));
        }
        let entry: Entry =
            serde_json::from_slice(bytes).map_err(|e| EntryError::Malformed(e.to_string()))?;
        if entry.to_bytes()? != bytes {
            return Err(EntryError::Malformed("not in its one spelling".into()));
        }
        Ok(entry)
    }

    /// The RFC 6962 leaf hash a client looks for.
    pub fn leaf_hash(&self) -> Result<crate::Hash, EntryError> {
        Ok(crate::merkle::leaf_hash(&self.to_bytes()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_have_one_spelling() {
        let e = Entry::Target {
            path: "app/1.0/app.bin".into(),
            length: 3,
            sha256: "ab".repeat(32),
            role: "targets".into(),
        };
        let bytes = e.to_bytes().unwrap();
        assert_eq!(
            String::from_utf8(bytes.clone()).unwrap(),
            format!(
                r#"{{"kind":"target","length":3,"path":"app/1.0/app.bin","role":"targets","sha256":"{}"}}"#,
                "ab".repeat(32)
            )
        );
        assert_eq!(Entry::parse(&bytes).unwrap(), e);
        let spaced = String::from_utf8(bytes).unwrap().replace(":3,", ": 3,");
        assert!(Entry::parse(spaced.as_bytes()).is_err());
        assert!(
            Entry::parse(br#"{"extra":1,"kind":"audit-head","head":"00","records":1}"#).is_err()
        );
        let long = Entry::Target {
            path: "p".repeat(MAX_ENTRY_BYTES),
            length: 0,
            sha256: String::new(),
            role: "targets".into(),
        };
        assert!(matches!(long.to_bytes(), Err(EntryError::TooLarge(_))));
    }
}
