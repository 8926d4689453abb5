//! SBOMs of a release: CycloneDX 1.6 JSON ([`cyclonedx`]) and SPDX 2.3 JSON ([`spdx`]) —
//! the release's artifacts with their digests and every component its lockfiles resolved,
//! with versions, package URLs and the digests the lockfiles pin.
//!
//! Guarantees:
//! - deterministic: the same release and `created` time give the same bytes (components
//!   sorted and deduplicated; the CycloneDX serial number and the SPDX namespace are UUIDs
//!   derived from the content, not random; `created` comes from the caller —
//!   `SOURCE_DATE_EPOCH` for a reproducible build);
//! - every digest listed is one the inputs carry, under its algorithm's name in each
//!   format's spelling, and only when its length is right for the algorithm (a lockfile's
//!   odd pin is left out rather than make the document invalid).

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Value};

use crate::lockfile::{Component, Source};

/// An artifact of the release.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct Artifact {
    /// Its file name (or target path).
    pub name: String,
    /// SHA-256, lowercase hex.
    pub sha256: String,
    /// Length in bytes.
    pub length: u64,
}

/// What an SBOM describes.
#[derive(Debug, Clone)]
pub struct Release {
    /// Product name.
    pub name: String,
    /// Version.
    pub version: String,
    /// Its artifacts.
    pub artifacts: Vec<Artifact>,
    /// The components its lockfiles resolved.
    pub components: Vec<Component>,
}

/// Sets `key` of the JSON object `object` (built by `json!` here, so always an object).
fn set(object: &mut Value, key: &str, value: Value) {
    if let Value::Object(map) = object {
        map.insert(key.to_owned(), value);
    }
}

/// The tool named as the SBOM's author.
const TOOL: &str = "sealwright";

/// Hex length of each digest algorithm the formats name.
fn hex_length(algorithm: &str) -> Option<usize> {
    match algorithm {
        "md5" => Some(32),
        "sha1" => Some(40),
        "sha256" => Some(64),
        "sha384" => Some(96),
        "sha512" => Some(128),
        _ => None,
    }
}

/// The digests of `hashes` with a well-formed value, renamed by `name`.
fn digests<'a>(
    hashes: &'a BTreeMap<String, String>,
    name: impl Fn(&str) -> Option<&'static str> + 'a,
) -> impl Iterator<Item = (&'static str, &'a str)> + 'a {
    hashes.iter().filter_map(move |(algorithm, value)| {
        let ok = hex_length(algorithm) == Some(value.len())
            && value.bytes().all(|b| b.is_ascii_hexdigit());
        Some((name(algorithm)?, value.as_str())).filter(|_| ok)
    })
}

impl Release {
    /// Sorted, without duplicates.
    fn normalised(&self) -> (Vec<Artifact>, Vec<Component>) {
        let artifacts: BTreeSet<Artifact> = self.artifacts.iter().cloned().collect();
        let components: BTreeSet<Component> = self.components.iter().cloned().collect();
        (
            artifacts.into_iter().collect(),
            components.into_iter().collect(),
        )
    }

    /// A UUID (RFC 9562 layout, version 5 bits) derived from everything the SBOM says.
    fn content_uuid(&self, created: &str, format: &str) -> String {
        let (artifacts, components) = self.normalised();
        let mut text = format!("{format}\n{}\n{}\n{created}\n", self.name, self.version);
        for a in &artifacts {
            text.push_str(&format!("a {} {} {}\n", a.name, a.sha256, a.length));
        }
        for c in &components {
            text.push_str(&format!("c {} {:?} {:?}\n", c.purl(), c.source, c.hashes));
        }
        let mut b = sealwright_crypto::digest::sha256(text.as_bytes());
        b[6] = (b[6] & 0x0f) | 0x50;
        b[8] = (b[8] & 0x3f) | 0x80;
        let h = hex::encode(&b[..16]);
        format!(
            "{}-{}-{}-{}-{}",
            &h[0..8],
            &h[8..12],
            &h[12..16],
            &h[16..20],
            &h[20..32]
        )
    }
}

fn download_location(c: &Component) -> Option<String> {
    match &c.source {
        Source::Git { url, rev } => Some(match rev {
            Some(r) => format!("git+{url}@{r}"),
            None => format!("git+{url}"),
        }),
        Source::Url(u) => Some(u.clone()),
        Source::Registry(Some(u)) if u.starts_with("https://") && u.ends_with(".tgz") => {
            Some(u.clone())
        }
        _ => None,
    }
}

/// The release as a CycloneDX 1.6 JSON document.
pub fn cyclonedx(release: &Release, created: &str, tool_version: &str) -> Vec<u8> {
    let (artifacts, components) = release.normalised();
    let cdx_name = |a: &str| match a {
        "md5" => Some("MD5"),
        "sha1" => Some("SHA-1"),
        "sha256" => Some("SHA-256"),
        "sha384" => Some("SHA-384"),
        "sha512" => Some("SHA-512"),
        _ => None,
    };
    let hashes = |h: &BTreeMap<String, String>| -> Vec<Value> {
        digests(h, cdx_name)
            .map(|(alg, content)| json!({"alg": alg, "content": content}))
            .collect()
    };
    let mut refs = BTreeSet::new();
    let mut unique_ref = |wanted: String| {
        let mut candidate = wanted.clone();
        let mut n = 1;
        while !refs.insert(candidate.clone()) {
            n += 1;
            candidate = format!("{wanted}#{n}");
        }
        candidate
    };
    let release_ref = unique_ref(format!("release:{}@{}", release.name, release.version));
    let mut out_components = Vec::new();
    let mut depends = Vec::new();
    for a in &artifacts {
        let bom_ref = unique_ref(format!("artifact:{}", a.name));
        let mut h = BTreeMap::new();
        h.insert("sha256".to_owned(), a.sha256.clone());
        out_components.push(json!({
            "type": "file",
            "bom-ref": bom_ref,
            "name": a.name,
            "hashes": hashes(&h),
        }));
    }
    for c in &components {
        let bom_ref = unique_ref(c.purl());
        let mut component = json!({
            "type": "library",
            "bom-ref": bom_ref,
            "name": c.name,
            "version": c.version,
            "purl": c.purl(),
        });
        let h = hashes(&c.hashes);
        if !h.is_empty() {
            set(&mut component, "hashes", Value::Array(h));
        }
        if let Some(url) = download_location(c) {
            let kind = if matches!(c.source, Source::Git { .. }) {
                "vcs"
            } else {
                "distribution"
            };
            set(
                &mut component,
                "externalReferences",
                json!([{"type": kind, "url": url}]),
            );
        }
        depends.push(Value::String(bom_ref));
        out_components.push(component);
    }
    let bom = json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": format!("urn:uuid:{}", release.content_uuid(created, "cyclonedx-1.6")),
        "version": 1,
        "metadata": {
            "timestamp": created,
            "tools": {"components": [{"type": "application", "name": TOOL, "version": tool_version}]},
            "component": {
                "type": "application",
                "bom-ref": release_ref,
                "name": release.name,
                "version": release.version,
            },
        },
        "components": out_components,
        "dependencies": [{"ref": release_ref, "dependsOn": depends}],
    });
    serde_json::to_vec_pretty(&bom).unwrap_or_default()
}

/// The release as an SPDX 2.3 JSON document.
pub fn spdx(release: &Release, created: &str, tool_version: &str) -> Vec<u8> {
    let (artifacts, components) = release.normalised();
    let spdx_name = |a: &str| match a {
        "md5" => Some("MD5"),
        "sha1" => Some("SHA1"),
        "sha256" => Some("SHA256"),
        "sha384" => Some("SHA384"),
        "sha512" => Some("SHA512"),
        _ => None,
    };
    let checksums = |h: &BTreeMap<String, String>| -> Vec<Value> {
        digests(h, spdx_name)
            .map(|(alg, value)| json!({"algorithm": alg, "checksumValue": value}))
            .collect()
    };
    let package = |id: &str, name: &str, version: Option<&str>| {
        let mut p = json!({
            "SPDXID": id,
            "name": name,
            "downloadLocation": "NOASSERTION",
            "filesAnalyzed": false,
            "licenseConcluded": "NOASSERTION",
            "licenseDeclared": "NOASSERTION",
            "copyrightText": "NOASSERTION",
        });
        if let Some(v) = version {
            set(&mut p, "versionInfo", json!(v));
        }
        p
    };
    let mut packages = vec![package(
        "SPDXRef-Release",
        &release.name,
        Some(&release.version),
    )];
    let mut relationships = vec![json!({
        "spdxElementId": "SPDXRef-DOCUMENT",
        "relationshipType": "DESCRIBES",
        "relatedSpdxElement": "SPDXRef-Release",
    })];
    for (i, a) in artifacts.iter().enumerate() {
        let id = format!("SPDXRef-Artifact-{i}");
        let mut p = package(&id, &a.name, Some(&release.version));
        set(&mut p, "packageFileName", json!(a.name));
        let mut h = BTreeMap::new();
        h.insert("sha256".to_owned(), a.sha256.clone());
        set(&mut p, "checksums", Value::Array(checksums(&h)));
        packages.push(p);
        relationships.push(json!({
            "spdxElementId": "SPDXRef-Release",
            "relationshipType": "CONTAINS",
            "relatedSpdxElement": id,
        }));
    }
    for (i, c) in components.iter().enumerate() {
        let id = format!("SPDXRef-Package-{i}");
        let mut p = package(&id, &c.name, Some(&c.version));
        if let Some(url) = download_location(c) {
            set(&mut p, "downloadLocation", json!(url));
        }
        let sums = checksums(&c.hashes);
        if !sums.is_empty() {
            set(&mut p, "checksums", Value::Array(sums));
        }
        set(
            &mut p,
            "externalRefs",
            json!([{
                "referenceCategory": "PACKAGE-MANAGER",
                "referenceType": "purl",
                "referenceLocator": c.purl(),
            }]),
        );
        packages.push(p);
        relationships.push(json!({
            "spdxElementId": "SPDXRef-Release",
            "relationshipType": "DEPENDS_ON",
            "relatedSpdxElement": id,
        }));
    }
    let doc = json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": format!("{} {}", release.name, release.version),
        "documentNamespace": format!(
            "https://spdx.sealwright.dev/{}",
            release.content_uuid(created, "spdx-2.3")
        ),
        "creationInfo": {"created": created, "creators": [format!("Tool: {TOOL}-{tool_version}")]},
        "packages": packages,
        "relationships": relationships,
    });
    serde_json::to_vec_pretty(&doc).unwrap_or_default()
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::lockfile::Ecosystem;

    fn release() -> Release {
        Release {
            name: "app".into(),
            version: "1.0.0".into(),
            artifacts: vec![Artifact {
                name: "app.bin".into(),
                sha256: "ab".repeat(32),
                length: 3,
            }],
            components: vec![Component {
                ecosystem: Ecosystem::Cargo,
                name: "serde".into(),
                version: "1.0.0".into(),
                source: Source::Registry(Some(
                    "https://github.com/rust-lang/crates.io-index".into(),
                )),
                hashes: BTreeMap::from([
                    ("sha256".into(), "cd".repeat(32)),
                    ("sha1".into(), "short".into()),
                ]),
            }],
        }
    }

    #[test]
    fn documents_are_deterministic_and_list_only_well_formed_digests() {
        let r = release();
        let created = "2026-11-30T00:00:00Z";
        assert_eq!(
            cyclonedx(&r, created, "0.1.0"),
            cyclonedx(&r, created, "0.1.0")
        );
        let cdx: Value = serde_json::from_slice(&cyclonedx(&r, created, "0.1.0")).unwrap();
        let serde = &cdx["components"][1];
        assert_eq!(serde["purl"], "pkg:cargo/serde@1.0.0");
        assert_eq!(
            serde["hashes"].as_array().unwrap().len(),
            1,
            "the malformed sha1 is left out"
        );
        let mut other = r.clone();
        other.version = "1.0.1".into();
        let cdx2: Value = serde_json::from_slice(&cyclonedx(&other, created, "0.1.0")).unwrap();
        assert_ne!(cdx["serialNumber"], cdx2["serialNumber"]);
        let doc: Value = serde_json::from_slice(&spdx(&r, created, "0.1.0")).unwrap();
        assert_eq!(doc["packages"].as_array().unwrap().len(), 3);
    }
}
