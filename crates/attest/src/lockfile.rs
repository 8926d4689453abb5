//! Lockfiles, read into one model of the components a build resolved: Cargo.lock,
//! package-lock.json (v2, v3), requirements.txt (pip's hash-checking form), poetry.lock and
//! uv.lock. The SBOM lists these components; the dependency policy judges them.
//!
//! Guarantees:
//! - [`parse`] recognises a lockfile by its file name and fails closed: an unknown name, an
//!   unknown lockfile version or a malformed entry is an error, never an empty list;
//! - each component keeps where it came from ([`Source`]) and every digest the lockfile
//!   pins, as lowercase hex by algorithm (npm's SRI base64 decoded), nothing guessed;
//! - inputs are size-capped ([`MAX_LOCKFILE_BYTES`]).

use std::collections::BTreeMap;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde::Deserialize;

/// The lockfile names a project keeps at its top, one per format [`parse`] reads.
pub const LOCKFILE_NAMES: [&str; 5] = [
    "Cargo.lock",
    "package-lock.json",
    "requirements.txt",
    "poetry.lock",
    "uv.lock",
];

/// Largest lockfile read.
pub const MAX_LOCKFILE_BYTES: usize = 64 * 1024 * 1024;

/// Why a lockfile could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LockfileError {
    /// Not a lockfile name this module knows.
    #[error("{0}: not a lockfile Sealwright reads (Cargo.lock, package-lock.json, requirements*.txt, poetry.lock, uv.lock)")]
    Unknown(String),
    /// Larger than [`MAX_LOCKFILE_BYTES`].
    #[error("{0}: larger than {MAX_LOCKFILE_BYTES} bytes")]
    TooLarge(String),
    /// Not what its name says.
    #[error("{file}: {why}")]
    Malformed {
        /// The lockfile.
        file: String,
        /// What is wrong.
        why: String,
    },
}

/// The package ecosystem of a component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Ecosystem {
    /// Rust crates (Cargo.lock).
    Cargo,
    /// npm packages (package-lock.json).
    Npm,
    /// Python packages (requirements.txt, poetry.lock, uv.lock).
    PyPi,
}

impl Ecosystem {
    /// The package-URL type.
    pub fn purl_type(self) -> &'static str {
        match self {
            Ecosystem::Cargo => "cargo",
            Ecosystem::Npm => "npm",
            Ecosystem::PyPi => "pypi",
        }
    }
}

/// Where a component was resolved from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Source {
    /// A package registry, by its URL as the lockfile names it (for npm and pip without a
    /// recorded URL: the default registry, `None`).
    Registry(Option<String>),
    /// A git repository, with the revision the lockfile pins (if any).
    Git {
        /// The repository URL.
        url: String,
        /// The revision after `#` (a commit for Cargo).
        rev: Option<String>,
    },
    /// A local path (a workspace member or path dependency).
    Path(String),
    /// A direct URL (a tarball or wheel).
    Url(String),
}

/// One resolved component.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Component {
    /// Its ecosystem.
    pub ecosystem: Ecosystem,
    /// Its name, as the lockfile spells it.
    pub name: String,
    /// Its version.
    pub version: String,
    /// Where it came from.
    pub source: Source,
    /// Pinned digests: algorithm (`sha256`, `sha512`, `sha1`...) → lowercase hex.
    pub hashes: BTreeMap<String, String>,
}

impl Component {
    /// Its package URL (purl-spec): `pkg:TYPE/NAMESPACE/NAME@VERSION`, npm scopes as a
    /// namespace with `@` encoded, Python names normalised (PEP 503).
    pub fn purl(&self) -> String {
        let name = match self.ecosystem {
            Ecosystem::PyPi => normalise_python_name(&self.name),
            _ => self.name.clone(),
        };
        let path = match name.strip_prefix('@').and_then(|s| s.split_once('/')) {
            Some((scope, rest)) => format!("%40{}/{}", encode(scope), encode(rest)),
            None => encode(&name),
        };
        format!(
            "pkg:{}/{path}@{}",
            self.ecosystem.purl_type(),
            encode(&self.version)
        )
    }
}

/// PEP 503: lowercase, runs of `-`, `_`, `.` become one `-`.
pub fn normalise_python_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut dash = false;
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            dash = true;
        } else {
            if dash && !out.is_empty() {
                out.push('-');
            }
            dash = false;
            out.extend(c.to_lowercase());
        }
    }
    out
}

/// Percent-encodes what a purl segment may not hold as is.
fn encode(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'_' | b'~' | b'+') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Reads the lockfile `file_name` (its base name decides the format) from `bytes`.
pub fn parse(file_name: &str, bytes: &[u8]) -> Result<Vec<Component>, LockfileError> {
    if bytes.len() > MAX_LOCKFILE_BYTES {
        return Err(LockfileError::TooLarge(file_name.to_owned()));
    }
    let base = file_name.rsplit('/').next().unwrap_or(file_name);
    let malformed = |why: String| LockfileError::Malformed {
        file: file_name.to_owned(),
        why,
    };
    let text = std::str::from_utf8(bytes).map_err(|_| malformed("not UTF-8".into()))?;
    let mut components = match base {
        "Cargo.lock" => cargo_lock(text),
        "package-lock.json" | "npm-shrinkwrap.json" => package_lock(text),
        "poetry.lock" => poetry_lock(text),
        "uv.lock" => uv_lock(text),
        b if b.starts_with("requirements") && b.ends_with(".txt") => requirements(text),
        _ => return Err(LockfileError::Unknown(file_name.to_owned())),
    }
    .map_err(malformed)?;
    components.sort();
    components.dedup();
    Ok(components)
}

/// A `sha256:HEX`-style pin.
fn algorithm_hex(pin: &str) -> Result<(String, String), String> {
    let (algorithm, value) = pin
        .split_once(':')
        .ok_or_else(|| format!("{pin:?} is not ALGORITHM:HEX"))?;
    let value = value.to_ascii_lowercase();
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("{pin:?} is not ALGORITHM:HEX"));
    }
    Ok((algorithm.to_ascii_lowercase(), value))
}

#[derive(Deserialize)]
struct CargoLock {
    version: Option<u32>,
    #[serde(default)]
    package: Vec<CargoPackage>,
}

#[derive(Deserialize)]
struct CargoPackage {
    name: String,
    version: String,
    source: Option<String>,
    checksum: Option<String>,
}

fn cargo_lock(text: &str) -> Result<Vec<Component>, String> {
    let lock: CargoLock = toml::from_str(text).map_err(|e| e.to_string())?;
    if lock.version.is_some_and(|v| v > 4) {
        return Err(format!(
            "lockfile version {} is newer than this reader (4)",
            lock.version.unwrap_or_default()
        ));
    }
    lock.package
        .into_iter()
        .map(|p| {
            let source = match p.source.as_deref() {
                None => Source::Path(p.name.clone()),
                Some(s) => {
                    if let Some(url) = s.strip_prefix("git+") {
                        let (url, rev) = match url.split_once('#') {
                            Some((u, r)) => (u.to_owned(), Some(r.to_owned())),
                            None => (url.to_owned(), None),
                        };
                        Source::Git { url, rev }
                    } else if let Some(index) = s
                        .strip_prefix("registry+")
                        .or_else(|| s.strip_prefix("sparse+").map(|_| s))
                    {
                        Source::Registry(Some(index.to_owned()))
                    } else {
                        return Err(format!("{} {}: unknown source {s:?}", p.name, p.version));
                    }
                }
            };
            let mut hashes = BTreeMap::new();
            if let Some(c) = p.checksum {
                hashes.insert("sha256".to_owned(), c.to_ascii_lowercase());
            }
            Ok(Component {
                ecosystem: Ecosystem::Cargo,
                name: p.name,
                version: p.version,
                source,
                hashes,
            })
        })
        .collect()
}

#[derive(Deserialize)]
struct PackageLock {
    #[serde(rename = "lockfileVersion")]
    lockfile_version: u32,
    #[serde(default)]
    packages: BTreeMap<String, NpmPackage>,
}

#[derive(Deserialize)]
struct NpmPackage {
    name: Option<String>,
    version: Option<String>,
    resolved: Option<String>,
    integrity: Option<String>,
    #[serde(default)]
    link: bool,
}

fn package_lock(text: &str) -> Result<Vec<Component>, String> {
    let lock: PackageLock = serde_json::from_str(text).map_err(|e| e.to_string())?;
    if !matches!(lock.lockfile_version, 2 | 3) {
        return Err(format!(
            "lockfileVersion {} (this reader takes 2 and 3; run npm install with npm 7 or later)",
            lock.lockfile_version
        ));
    }
    let mut out = Vec::new();
    for (key, p) in lock.packages {
        // "" is the project itself; links point at workspace folders listed separately.
        if key.is_empty() || p.link {
            continue;
        }
        let name = match p.name {
            Some(n) => n,
            None => key
                .rsplit_once("node_modules/")
                .map(|(_, n)| n.to_owned())
                .ok_or_else(|| format!("{key:?} is not under node_modules/"))?,
        };
        let version = p.version.ok_or_else(|| format!("{key}: no version"))?;
        let source = match p.resolved {
            None => Source::Registry(None),
            Some(r) if r.starts_with("git+") || r.starts_with("git:") => {
                let (url, rev) = match r.split_once('#') {
                    Some((u, v)) => (u.to_owned(), Some(v.to_owned())),
                    None => (r.clone(), None),
                };
                Source::Git { url, rev }
            }
            Some(r) if r.starts_with("file:") => Source::Path(r),
            Some(r) => Source::Registry(Some(r)),
        };
        let mut hashes = BTreeMap::new();
        for sri in p.integrity.iter().flat_map(|i| i.split_whitespace()) {
            let (algorithm, b64) = sri
                .split_once('-')
                .ok_or_else(|| format!("{key}: integrity {sri:?} is not ALGORITHM-BASE64"))?;
            let digest = STANDARD
                .decode(b64)
                .map_err(|_| format!("{key}: integrity {sri:?} is not base64"))?;
            hashes.insert(algorithm.to_ascii_lowercase(), hex::encode(digest));
        }
        out.push(Component {
            ecosystem: Ecosystem::Npm,
            name,
            version,
            source,
            hashes,
        });
    }
    Ok(out)
}

/// pip's requirements format as `pip-compile --generate-hashes` and `uv pip compile`
/// write it: `NAME==VERSION` lines, each with `--hash=ALG:HEX` options (continued with `\`).
fn requirements(text: &str) -> Result<Vec<Component>, String> {
    let joined = text.replace("\\\r\n", " ").replace("\\\n", " ");
    let mut out = Vec::new();
    let mut index: Option<String> = None;
    for raw in joined.lines() {
        let line = raw.split(" #").next().unwrap_or("").trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(url) = line
            .strip_prefix("--index-url")
            .or_else(|| line.strip_prefix("-i"))
        {
            index = Some(url.trim_start_matches([' ', '=']).trim().to_owned());
            continue;
        }
        if line.starts_with('-') {
            continue; // other options (--extra-index-url is judged by the policy's reader)
        }
        let mut words = line.split_whitespace();
        let requirement = words.next().unwrap_or_default();
        let requirement = requirement.split(';').next().unwrap_or(requirement);
        let (name, version) = requirement
            .split_once("==")
            .ok_or_else(|| format!("{requirement:?} is not pinned with =="))?;
        let name = name.split('[').next().unwrap_or(name).trim().to_owned();
        let mut hashes = BTreeMap::new();
        for option in words {
            if let Some(pin) = option.strip_prefix("--hash=") {
                let (algorithm, hex) = algorithm_hex(pin)?;
                hashes.insert(algorithm, hex);
            }
        }
        out.push(Component {
            ecosystem: Ecosystem::PyPi,
            name,
            version: version.trim().to_owned(),
            source: Source::Registry(index.clone()),
            hashes,
        });
    }
    Ok(out)
}

#[derive(Deserialize)]
struct PythonLock {
    #[serde(default)]
    package: Vec<PythonPackage>,
}

#[derive(Deserialize)]
struct PythonPackage {
    name: String,
    version: String,
    /// poetry: `{type = "git", url, resolved_reference}`; uv: `{registry = URL}`,
    /// `{git = URL}`, `{path = P}`, `{url = U}`...
    source: Option<toml::Value>,
    /// poetry: `[{file, hash = "sha256:..."}]`
    #[serde(default)]
    files: Vec<PythonFile>,
    /// uv: the sdist and the wheels, each `{url, hash = "sha256:..."}`
    sdist: Option<PythonFile>,
    #[serde(default)]
    wheels: Vec<PythonFile>,
}

#[derive(Deserialize)]
struct PythonFile {
    hash: Option<String>,
}

fn python_source(source: Option<&toml::Value>) -> Source {
    let field = |k: &str| source.and_then(|s| s.get(k)).and_then(toml::Value::as_str);
    match (
        field("type"),
        field("registry"),
        field("git"),
        field("url"),
        field("path"),
    ) {
        (Some("git"), ..) => Source::Git {
            url: field("url").unwrap_or_default().to_owned(),
            rev: field("resolved_reference").map(str::to_owned),
        },
        (Some("directory" | "file"), ..) => {
            Source::Path(field("url").unwrap_or_default().to_owned())
        }
        (Some("url"), ..) => Source::Url(field("url").unwrap_or_default().to_owned()),
        (Some("legacy"), ..) => Source::Registry(field("url").map(str::to_owned)),
        (_, Some(registry), ..) => Source::Registry(Some(registry.to_owned())),
        (_, _, Some(git), ..) => {
            let (url, rev) = match git.split_once('#') {
                Some((u, r)) => (u.to_owned(), Some(r.to_owned())),
                None => (git.to_owned(), None),
            };
            Source::Git { url, rev }
        }
        (_, _, _, Some(url), _) => Source::Url(url.to_owned()),
        (_, _, _, _, Some(path)) => Source::Path(path.to_owned()),
        _ => match ["editable", "virtual", "directory"]
            .iter()
            .find_map(|k| field(k))
        {
            Some(path) => Source::Path(path.to_owned()),
            None => Source::Registry(None),
        },
    }
}

fn python_lock(text: &str) -> Result<Vec<Component>, String> {
    let lock: PythonLock = toml::from_str(text).map_err(|e| e.to_string())?;
    lock.package
        .into_iter()
        .map(|p| {
            let mut hashes = BTreeMap::new();
            // One package pins a digest per file (sdist, each wheel): the component keeps
            // the first of each algorithm, and the policy sees that every file was pinned.
            for f in p.files.iter().chain(p.sdist.iter()).chain(p.wheels.iter()) {
                if let Some(pin) = &f.hash {
                    let (algorithm, hex) = algorithm_hex(pin)?;
                    hashes.entry(algorithm).or_insert(hex);
                }
            }
            Ok(Component {
                ecosystem: Ecosystem::PyPi,
                source: python_source(p.source.as_ref()),
                name: p.name,
                version: p.version,
                hashes,
            })
        })
        .collect()
}

fn poetry_lock(text: &str) -> Result<Vec<Component>, String> {
    python_lock(text)
}

fn uv_lock(text: &str) -> Result<Vec<Component>, String> {
    python_lock(text)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn cargo_lock_sources_and_checksums() {
        let lock = r#"
version = 4

[[package]]
name = "app"
version = "0.1.0"

[[package]]
name = "serde"
version = "1.0.228"
source = "registry+https://github.com/rust-lang/crates.io-index"
checksum = "9A8E94EA7F378BD32CBBD37198A4A91436180C5BB472411E48B5EC2E2124AE9E"

[[package]]
name = "gitdep"
version = "0.2.0"
source = "git+https://example.com/gitdep.git?rev=abc#0123456789012345678901234567890123456789"
"#;
        let c = parse("Cargo.lock", lock.as_bytes()).unwrap();
        assert_eq!(c.len(), 3);
        let serde = c.iter().find(|c| c.name == "serde").unwrap();
        assert_eq!(serde.purl(), "pkg:cargo/serde@1.0.228");
        assert_eq!(
            serde.hashes["sha256"],
            "9a8e94ea7f378bd32cbbd37198a4a91436180c5bb472411e48b5ec2e2124ae9e"
        );
        assert!(
            matches!(&serde.source, Source::Registry(Some(u)) if u.contains("crates.io-index"))
        );
        let git = c.iter().find(|c| c.name == "gitdep").unwrap();
        assert!(matches!(&git.source, Source::Git { rev: Some(r), .. } if r.len() == 40));
        assert!(matches!(
            c.iter().find(|c| c.name == "app").unwrap().source,
            Source::Path(_)
        ));
        assert!(parse("Cargo.lock", b"version = 9\n").is_err());
    }

    #[test]
    fn package_lock_integrity_scopes_and_versions() {
        let lock = r#"{"name":"x","lockfileVersion":3,"packages":{
            "":{"name":"x","version":"1.0.0"},
            "node_modules/@scope/pkg":{"version":"2.0.0","resolved":"https://registry.npmjs.org/@scope/pkg/-/pkg-2.0.0.tgz","integrity":"sha512-AAAA"},
            "node_modules/a/node_modules/b":{"version":"1.2.3","integrity":"sha1-AAAA"}}}"#;
        let c = parse("package-lock.json", lock.as_bytes()).unwrap();
        assert_eq!(c.len(), 2);
        let scoped = c.iter().find(|c| c.name == "@scope/pkg").unwrap();
        assert_eq!(scoped.purl(), "pkg:npm/%40scope/pkg@2.0.0");
        assert_eq!(scoped.hashes["sha512"], "000000");
        let b = c.iter().find(|c| c.name == "b").unwrap();
        assert_eq!(b.source, Source::Registry(None));
        assert!(b.hashes.contains_key("sha1"));
        assert!(parse(
            "package-lock.json",
            br#"{"lockfileVersion":1,"dependencies":{}}"#
        )
        .is_err());
    }

    #[test]
    fn requirements_with_hashes_and_python_locks() {
        let req = "--index-url https://pypi.org/simple\n# comment\nrequests==2.32.3 \\\n    --hash=sha256:AABB \\\n    --hash=sha256:ccdd\nZope.Interface[extra]==6.0 ; python_version >= '3'\n";
        let c = parse("requirements.txt", req.as_bytes()).unwrap();
        assert_eq!(c.len(), 2);
        let r = c.iter().find(|c| c.name == "requests").unwrap();
        assert_eq!(
            r.hashes["sha256"], "ccdd",
            "the last pin of an algorithm wins"
        );
        assert_eq!(
            r.source,
            Source::Registry(Some("https://pypi.org/simple".into()))
        );
        let z = c.iter().find(|c| c.name == "Zope.Interface").unwrap();
        assert_eq!(z.purl(), "pkg:pypi/zope-interface@6.0");
        assert!(z.hashes.is_empty());
        assert!(parse("requirements.txt", b"requests>=2\n").is_err());

        let uv = r#"
version = 1
[[package]]
name = "idna"
version = "3.10"
source = { registry = "https://pypi.org/simple" }
sdist = { url = "https://files.pythonhosted.org/idna-3.10.tar.gz", hash = "sha256:12f6", size = 1 }
wheels = [{ url = "https://files.pythonhosted.org/idna-3.10-py3-none-any.whl", hash = "sha256:9a9a", size = 1 }]
[[package]]
name = "local"
version = "0.1.0"
source = { editable = "." }
"#;
        let c = parse("uv.lock", uv.as_bytes()).unwrap();
        assert!(
            matches!(&c.iter().find(|c| c.name == "local").unwrap().source, Source::Path(p) if p == ".")
        );
        let idna = c.iter().find(|c| c.name == "idna").unwrap();
        assert_eq!(idna.hashes["sha256"], "12f6");
        assert_eq!(
            idna.source,
            Source::Registry(Some("https://pypi.org/simple".into()))
        );

        let poetry = r#"
[[package]]
name = "six"
version = "1.16.0"
files = [{file = "six-1.16.0.tar.gz", hash = "sha256:1e61"}]
[[package]]
name = "mine"
version = "1.0"
files = []
[package.source]
type = "git"
url = "https://example.com/mine.git"
resolved_reference = "0123456789012345678901234567890123456789"
"#;
        let c = parse("poetry.lock", poetry.as_bytes()).unwrap();
        assert!(matches!(
            &c.iter().find(|c| c.name == "mine").unwrap().source,
            Source::Git { .. }
        ));
        assert!(parse("Gemfile.lock", b"").is_err());
    }
}
