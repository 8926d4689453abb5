//! in-toto Statement v1 (in-toto/attestation `spec/v1/statement.md`): what an attestation
//! says, about which artifacts.
//!
//! Guarantees:
//! - [`Statement::parse`] accepts only `_type` `https://in-toto.io/Statement/v1` with at
//!   least one subject, each with a non-empty digest set whose SHA-2 values are lowercase
//!   hex of the right length; unknown fields are ignored (the spec's monotonic principle);
//! - [`Statement::subjects_with_sha256`] matches subjects purely by digest, as the spec
//!   requires — a subject's name is never trusted to identify an artifact;
//! - [`Statement::to_bytes`] writes one spelling (sorted keys, no whitespace), so the same
//!   statement is always the same signed bytes.
//!
//! Parse the payload a [`crate::dsse::Envelope::verify`] returned, never another copy.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The statement type this module reads and writes.
pub const STATEMENT_V1: &str = "https://in-toto.io/Statement/v1";
/// Most subjects a statement may list.
pub const MAX_SUBJECTS: usize = 10_000;

/// Why a payload is not a statement Sealwright accepts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatementError {
    /// Not JSON of the statement's shape.
    #[error("not an in-toto statement: {0}")]
    Malformed(String),
    /// Another statement type or version.
    #[error("statement type {0:?} is not {STATEMENT_V1}")]
    WrongType(String),
    /// A rule of the specification is broken.
    #[error("invalid in-toto statement: {0}")]
    Invalid(String),
}

/// A resource: at least one of `uri`, `digest`, `content` (subjects always have `digest`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceDescriptor {
    /// A name (a file name for subjects).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub name: String,
    /// Where the resource is identified.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uri: String,
    /// Digests by algorithm (`sha256`, `sha512`, `gitCommit`...), lowercase hex.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub digest: BTreeMap<String, String>,
    /// Where it can be downloaded.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub download_location: String,
    /// Its media type.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub media_type: String,
    /// Anything else, by key.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, Value>,
}

impl ResourceDescriptor {
    /// A file of `name` with SHA-256 `sha256`.
    pub fn file(name: &str, sha256: &str) -> Self {
        ResourceDescriptor {
            name: name.to_owned(),
            digest: BTreeMap::from([("sha256".to_owned(), sha256.to_owned())]),
            ..ResourceDescriptor::default()
        }
    }
}

/// An in-toto statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Statement {
    /// Always [`STATEMENT_V1`].
    #[serde(rename = "_type")]
    pub type_: String,
    /// The artifacts it is about.
    pub subject: Vec<ResourceDescriptor>,
    /// What the predicate is.
    #[serde(rename = "predicateType")]
    pub predicate_type: String,
    /// What it says (unset and empty are the same).
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub predicate: Value,
}

/// The length of each SHA-2 digest in hex, by DigestSet name.
fn hex_length(algorithm: &str) -> Option<usize> {
    match algorithm {
        "sha224" | "sha512_224" => Some(56),
        "sha256" | "sha512_256" => Some(64),
        "sha384" => Some(96),
        "sha512" => Some(128),
        _ => None,
    }
}

impl Statement {
    /// A statement of `predicate_type` about `subject`.
    pub fn new(subject: Vec<ResourceDescriptor>, predicate_type: &str, predicate: Value) -> Self {
        Statement {
            type_: STATEMENT_V1.to_owned(),
            subject,
            predicate_type: predicate_type.to_owned(),
            predicate,
        }
    }

    /// Reads and checks a statement (a verified DSSE payload).
    pub fn parse(payload: &[u8]) -> Result<Statement, StatementError> {
        let statement: Statement = serde_json::from_slice(payload)
            .map_err(|e| StatementError::Malformed(e.to_string()))?;
        statement.validate()?;
        Ok(statement)
    }

    /// The rules of the specification this module relies on.
    pub fn validate(&self) -> Result<(), StatementError> {
        if self.type_ != STATEMENT_V1 {
            return Err(StatementError::WrongType(self.type_.clone()));
        }
        if self.predicate_type.is_empty() {
            return Err(StatementError::Invalid("predicateType is empty".into()));
        }
        if self.subject.is_empty() || self.subject.len() > MAX_SUBJECTS {
            return Err(StatementError::Invalid(format!(
                "{} subjects (1 to {MAX_SUBJECTS})",
                self.subject.len()
            )));
        }
        for s in &self.subject {
            if s.digest.is_empty() {
                return Err(StatementError::Invalid(format!(
                    "subject {:?} has no digest",
                    s.name
                )));
            }
            for (algorithm, value) in &s.digest {
                let lower_hex = value
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
                let length_ok = hex_length(algorithm).is_none_or(|n| value.len() == n);
                if value.is_empty() || !lower_hex || !length_ok {
                    return Err(StatementError::Invalid(format!(
                        "subject {:?}: {algorithm} {value:?} is not lowercase hex of its length",
                        s.name
                    )));
                }
            }
        }
        Ok(())
    }

    /// The subjects whose `sha256` is `sha256` (lowercase hex).
    pub fn subjects_with_sha256(&self, sha256: &str) -> Vec<&ResourceDescriptor> {
        self.subject
            .iter()
            .filter(|s| s.digest.get("sha256").is_some_and(|d| d == sha256))
            .collect()
    }

    /// The statement's bytes: JSON with sorted keys and no whitespace.
    pub fn to_bytes(&self) -> Vec<u8> {
        // Through `Value`, whose maps are sorted; plain data cannot fail to serialise.
        serde_json::to_value(self)
            .and_then(|v| serde_json::to_vec(&v))
            .unwrap_or_default()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    fn statement(digest: &str) -> Vec<u8> {
        format!(
            r#"{{"_type":"{STATEMENT_V1}","subject":[{{"name":"a","digest":{{"sha256":"{digest}"}}}}],"predicateType":"x","extra":1}}"#
        )
        .into_bytes()
    }

    #[test]
    fn subjects_are_matched_by_digest_and_checked() {
        let d = "ab".repeat(32);
        let s = Statement::parse(&statement(&d)).unwrap();
        assert_eq!(s.subjects_with_sha256(&d).len(), 1);
        assert!(s.subjects_with_sha256(&"cd".repeat(32)).is_empty());
        assert!(Statement::parse(&statement(&"AB".repeat(32))).is_err());
        assert!(Statement::parse(&statement("abcd")).is_err());
        let other = String::from_utf8(statement(&d))
            .unwrap()
            .replace("Statement/v1", "Statement/v0.1");
        assert!(matches!(
            Statement::parse(other.as_bytes()),
            Err(StatementError::WrongType(_))
        ));
        let round = Statement::parse(&s.to_bytes()).unwrap();
        assert_eq!(round, s);
    }
}
