//! The repository's `[attestations]` rule, applied to the targets a publish or a push
//! adds. `sealwright publish` reads the bytes from `staged/blobs/`, the server from its
//! uploaded blobs; the decision is [`check_new_targets`], and each release's is
//! `sealwright_attest::evidence::check_attestations`, the check devices run.
//!
//! Guarantees, for the targets one publish or push adds:
//! - every target is a channel pointer (whose artifact the pointer check vouches for), an
//!   artifact whose signed entry links provenance — and the reproductions the policy asks
//!   for — that pass the check over its exact SHA-256, or an evidence file that such an
//!   accepted artifact links by path and SHA-256;
//! - a linked evidence file is one of the targets added with the artifact, with the linked
//!   SHA-256 (a link to bytes nobody publishes proves nothing to a device);
//! - evidence is read size-capped.
//!
//! Not guaranteed: that evidence files other than provenance and reproductions (build log,
//! SBOM) say anything true — they are published as linked; a device that requires
//! provenance installs only artifacts with provenance of their own, never an evidence file.

use std::collections::{HashMap, HashSet};

use sealwright_attest::dsse::MAX_ENVELOPE_BYTES;
use sealwright_attest::evidence::{check_attestations, EvidenceLinks, Link, Requirement};
use serde_json::Value;

/// One target a publish or push adds.
#[derive(Debug, Clone, Copy)]
pub struct NewTarget<'a> {
    /// Its path.
    pub path: &'a str,
    /// Its SHA-256, lowercase hex.
    pub sha256: &'a str,
    /// The `custom` of its signed entry.
    pub custom: Option<&'a Value>,
}

/// Reads an added target's bytes by SHA-256, at most the given length.
pub type ReadAdded<'a> = dyn FnMut(&str, u64) -> Result<Vec<u8>, String> + 'a;

/// Checks every target of `added` against `requirement`; `read(sha256, max)` returns the
/// bytes of an added target (at most `max`). The error says which target and why.
pub fn check_new_targets(
    requirement: &Requirement,
    added: &[NewTarget<'_>],
    read: &mut ReadAdded<'_>,
) -> Result<(), String> {
    let mut evidence = Evidence {
        by_path: added.iter().map(|t| (t.path, t.sha256)).collect(),
        read,
        bytes: HashMap::new(),
    };
    let mut vouched: HashSet<(String, String)> = HashSet::new();
    let mut unaccepted: Vec<(&NewTarget<'_>, String)> = Vec::new();
    for target in added {
        if sealwright_tuf::layout::is_channel_pointer(target.path) {
            continue;
        }
        match check_artifact(requirement, target, &mut evidence) {
            Ok(links) => vouched.extend(
                links
                    .all
                    .into_iter()
                    .map(|(_, l)| (l.path, l.sha256.to_ascii_lowercase())),
            ),
            Err(why) => unaccepted.push((target, why)),
        }
    }
    // An evidence file is exempt only as evidence of an accepted artifact: links between
    // targets nobody vouches for (a cycle of "evidence") exempt nothing.
    for (target, why) in unaccepted {
        let key = (target.path.to_owned(), target.sha256.to_ascii_lowercase());
        if !vouched.contains(&key) {
            return Err(format!(
                "{}: {why}; this repository publishes only releases with the attestations its [attestations] policy names",
                target.path
            ));
        }
    }
    Ok(())
}

/// The evidence files a publish or push adds, each read once however many artifacts link
/// it (every product of a build links the same provenance).
struct Evidence<'r, 'a> {
    by_path: HashMap<&'a str, &'a str>,
    read: &'r mut ReadAdded<'r>,
    bytes: HashMap<String, Vec<u8>>,
}

impl Evidence<'_, '_> {
    /// The bytes of the added target `link` names, with the linked digest.
    fn linked(&mut self, link: &Link) -> Result<&[u8], String> {
        let sha256 = self
            .by_path
            .get(link.path.as_str())
            .filter(|sha| sha.eq_ignore_ascii_case(&link.sha256))
            .ok_or_else(|| {
                format!(
                    "its evidence {} is not added with it with the linked sha256",
                    link.path
                )
            })?
            .to_ascii_lowercase();
        if !self.bytes.contains_key(&sha256) {
            let bytes = (self.read)(&sha256, MAX_ENVELOPE_BYTES as u64)?;
            self.bytes.insert(sha256.clone(), bytes);
        }
        Ok(self
            .bytes
            .get(&sha256)
            .map(Vec::as_slice)
            .unwrap_or_default())
    }
}

/// One artifact's attestations; its links when they pass.
fn check_artifact(
    requirement: &Requirement,
    target: &NewTarget<'_>,
    evidence: &mut Evidence<'_, '_>,
) -> Result<EvidenceLinks, String> {
    let links = EvidenceLinks::from_custom(target.custom).map_err(|e| e.to_string())?;
    let provenance = links
        .provenance()
        .ok_or("no provenance is linked in its signed entry (build it with `sealwright build`)")?;
    let provenance = evidence.linked(provenance)?.to_vec();
    let mut reproductions = Vec::new();
    for link in links.reproductions() {
        reproductions.push(evidence.linked(link)?.to_vec());
    }
    let reproductions: Vec<&[u8]> = reproductions.iter().map(Vec::as_slice).collect();
    check_attestations(requirement, target.sha256, &provenance, &reproductions)
        .map_err(|e| e.to_string())?;
    Ok(links)
}
