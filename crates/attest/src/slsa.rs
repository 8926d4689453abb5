//! The SLSA Provenance v1 predicate (slsa-framework/slsa `spec/build-provenance.md`): how
//! a build was run and from what.
//!
//! Fields follow the specification's names; unset, null and empty are equivalent, so empty
//! fields are left out. Verifiers must treat `externalParameters` as untrusted input that
//! has to match what they expect.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::statement::ResourceDescriptor;

/// The predicate type of SLSA Provenance v1.
pub const PROVENANCE_V1: &str = "https://slsa.dev/provenance/v1";

/// A SLSA Provenance v1 predicate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Provenance {
    /// What was built, from what, how.
    pub build_definition: BuildDefinition,
    /// Who built it, when.
    pub run_details: RunDetails,
}

/// The inputs of the build.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildDefinition {
    /// A URI naming the template the parameters follow.
    pub build_type: String,
    /// The parameters a user controlled (the command, the source).
    pub external_parameters: BTreeMap<String, Value>,
    /// The parameters the builder controlled (its environment).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub internal_parameters: BTreeMap<String, Value>,
    /// The materials: source, lockfiles, toolchain.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resolved_dependencies: Vec<ResourceDescriptor>,
}

/// The run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunDetails {
    /// The builder.
    pub builder: Builder,
    /// When, and which run.
    #[serde(default, skip_serializing_if = "BuildMetadata::is_empty")]
    pub metadata: BuildMetadata,
    /// Other outputs (the build log).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub byproducts: Vec<ResourceDescriptor>,
}

/// Who built.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Builder {
    /// A URI naming the builder (what a verifier's trust is keyed on, with its key).
    pub id: String,
    /// Versions of its components.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub version: BTreeMap<String, String>,
}

/// When a build ran.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BuildMetadata {
    /// This run's id.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub invocation_id: String,
    /// Start, RFC 3339 UTC.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub started_on: String,
    /// End, RFC 3339 UTC.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub finished_on: String,
}

impl Provenance {
    /// A string the build recorded among its external parameters (`name`, `version`).
    pub fn parameter(&self, key: &str) -> Option<&str> {
        self.build_definition
            .external_parameters
            .get(key)
            .and_then(Value::as_str)
    }

    /// A list of strings the build recorded (`command`, `outputs`).
    pub fn parameter_list(&self, key: &str) -> Option<Vec<String>> {
        self.build_definition
            .external_parameters
            .get(key)?
            .as_array()?
            .iter()
            .map(|s| s.as_str().map(str::to_owned))
            .collect()
    }
}

impl BuildMetadata {
    fn is_empty(&self) -> bool {
        self.invocation_id.is_empty() && self.started_on.is_empty() && self.finished_on.is_empty()
    }
}
