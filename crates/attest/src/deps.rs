//! Dependency policy (PRODUCT.md P9): judge the components a build resolved against what a
//! project allows, before anything is built or signed.
//!
//! Each rule is one function, named after what it stops:
//! - [`check_source`]: a component from a registry the policy does not list, a direct URL,
//!   plain `http://`, or git outside the allowed prefixes or not pinned to a full commit;
//! - [`check_integrity`]: a registry component without a pinned digest, or with only a weak
//!   one (MD5, SHA-1) — a mirror could serve other bytes;
//! - [`check_confusion`]: a name the policy calls internal resolved from a public registry
//!   (dependency confusion), or a public name that mimics an internal one (typosquatting);
//! - [`check_resolved_name`]: an npm tarball URL naming another package than the entry.
//!
//! Git and path components need no digest (a full commit pins git; a path is the
//! workspace). The policy fails closed: an ecosystem it does not mention allows no registry.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::lockfile::{normalise_python_name, Component, Ecosystem, Source};

/// What a project allows (`sealwright-deps.toml`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Crates registries (index URLs as Cargo.lock spells them, without `registry+`).
    #[serde(default)]
    pub cargo: Registries,
    /// npm registries (URL prefixes of the tarballs).
    #[serde(default)]
    pub npm: Registries,
    /// Python package indexes.
    #[serde(default)]
    pub pypi: Registries,
    /// Git sources.
    #[serde(default)]
    pub git: GitPolicy,
    /// Names that belong to the project's own registries.
    #[serde(default)]
    pub internal: Internal,
}

/// The registries one ecosystem may resolve from.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Registries {
    /// Allowed registries.
    #[serde(default)]
    pub registries: Vec<String>,
}

/// Which git sources are allowed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GitPolicy {
    /// URL prefixes (e.g. `https://github.com/acme/`); each must pin a full commit.
    #[serde(default)]
    pub allow: Vec<String>,
}

/// The project's own names and registries.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Internal {
    /// Internal names; `*` at the end matches any suffix (`acme-*`, `@acme/*`).
    #[serde(default)]
    pub names: Vec<String>,
    /// The registries internal names must come from (any ecosystem).
    #[serde(default)]
    pub registries: Vec<String>,
}

/// What a rule found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FindingKind {
    /// From a registry the policy does not list.
    SourceNotAllowed,
    /// Plain http:// (anyone on the path can change the bytes).
    InsecureTransport,
    /// A direct URL instead of a registry.
    UrlSource,
    /// A git source outside the allowed prefixes.
    GitNotAllowed,
    /// A git source not pinned to a full commit.
    GitUnpinned,
    /// No pinned digest.
    MissingChecksum,
    /// Only MD5 or SHA-1.
    WeakChecksum,
    /// An internal name resolved from a public registry.
    DependencyConfusion,
    /// A public name that mimics an internal one.
    MimicsInternalName,
    /// The npm tarball URL names another package.
    ResolvedNameMismatch,
}

/// One finding about one component.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Finding {
    /// What.
    pub finding: FindingKind,
    /// The component, as its package URL.
    pub component: String,
    /// For a person.
    pub message: String,
}

/// The default registry of an ecosystem, when a lockfile records none.
fn default_registry(ecosystem: Ecosystem) -> &'static str {
    match ecosystem {
        Ecosystem::Cargo => "https://github.com/rust-lang/crates.io-index",
        Ecosystem::Npm => "https://registry.npmjs.org",
        Ecosystem::PyPi => "https://pypi.org/simple",
    }
}

impl Policy {
    fn registries(&self, ecosystem: Ecosystem) -> impl Iterator<Item = &String> {
        match ecosystem {
            Ecosystem::Cargo => self.cargo.registries.iter(),
            Ecosystem::Npm => self.npm.registries.iter(),
            Ecosystem::PyPi => self.pypi.registries.iter(),
        }
        .chain(self.internal.registries.iter())
    }

    fn is_internal(&self, name: &str) -> bool {
        self.internal
            .names
            .iter()
            .any(|pattern| match pattern.strip_suffix('*') {
                Some(prefix) => name.starts_with(prefix),
                None => name == pattern,
            })
    }
}

/// Whether `url` is `registry` or below it (a tarball under an npm registry).
fn under(url: &str, registry: &str) -> bool {
    let registry = registry.trim_end_matches('/');
    url == registry
        || url
            .strip_prefix(registry)
            .is_some_and(|rest| rest.starts_with('/') || rest.starts_with('?'))
}

/// The registry URL a component came from (the ecosystem's default when none is recorded).
fn registry_url(c: &Component) -> Option<&str> {
    match &c.source {
        Source::Registry(Some(u)) => Some(u.as_str()),
        Source::Registry(None) => Some(default_registry(c.ecosystem)),
        _ => None,
    }
}

/// Every rule, for every component.
pub fn check(policy: &Policy, components: &[Component]) -> Vec<Finding> {
    let mut findings = BTreeSet::new();
    for c in components {
        let mut find = |finding: FindingKind, message: String| {
            findings.insert(Finding {
                finding,
                component: c.purl(),
                message,
            });
        };
        check_source(policy, c, &mut find);
        check_integrity(c, &mut find);
        check_confusion(policy, c, &mut find);
        check_resolved_name(c, &mut find);
    }
    findings.into_iter().collect()
}

/// Registries listed, git pinned and allowed, no direct URLs, no plain http.
pub fn check_source(policy: &Policy, c: &Component, find: &mut impl FnMut(FindingKind, String)) {
    match &c.source {
        Source::Path(_) => {}
        Source::Url(url) => find(
            FindingKind::UrlSource,
            format!(
                "{} {} comes from the URL {url}, not a registry",
                c.name, c.version
            ),
        ),
        Source::Git { url, rev } => {
            if url.starts_with("http://") || url.starts_with("git://") {
                find(
                    FindingKind::InsecureTransport,
                    format!(
                        "{} is fetched over an unauthenticated transport: {url}",
                        c.name
                    ),
                );
            }
            if !policy.git.allow.iter().any(|p| url.starts_with(p.as_str())) {
                find(
                    FindingKind::GitNotAllowed,
                    format!(
                        "{} comes from git {url}, which the policy does not allow",
                        c.name
                    ),
                );
            }
            let full_commit = rev
                .as_deref()
                .is_some_and(|r| r.len() == 40 && r.bytes().all(|b| b.is_ascii_hexdigit()));
            if !full_commit {
                find(
                    FindingKind::GitUnpinned,
                    format!("{} from git is not pinned to a full commit", c.name),
                );
            }
        }
        Source::Registry(_) => {
            let url = registry_url(c).unwrap_or_default();
            if url.starts_with("http://") {
                find(
                    FindingKind::InsecureTransport,
                    format!("{} {} is fetched over plain http: {url}", c.name, c.version),
                );
            }
            if !policy.registries(c.ecosystem).any(|r| under(url, r)) {
                find(
                    FindingKind::SourceNotAllowed,
                    format!(
                        "{} {} comes from {url}, which the policy does not list for {}",
                        c.name,
                        c.version,
                        c.ecosystem.purl_type()
                    ),
                );
            }
        }
    }
}

/// A registry component pins a strong digest.
pub fn check_integrity(c: &Component, find: &mut impl FnMut(FindingKind, String)) {
    if !matches!(c.source, Source::Registry(_)) {
        return;
    }
    let strong = ["sha256", "sha384", "sha512"];
    if c.hashes.keys().any(|a| strong.contains(&a.as_str())) {
        return;
    }
    if c.hashes.is_empty() {
        find(
            FindingKind::MissingChecksum,
            format!(
                "{} {} pins no digest: any bytes would be accepted",
                c.name, c.version
            ),
        );
    } else {
        find(
            FindingKind::WeakChecksum,
            format!(
                "{} {} pins only {}, which can be forged",
                c.name,
                c.version,
                c.hashes.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        );
    }
}

/// Names folded so that look-alikes meet: lowercase, without `-`, `_`, `.`.
fn fold(name: &str) -> String {
    normalise_python_name(name).replace('-', "")
}

/// Whether `a` and `b` are one edit apart (insert, delete or substitute one character).
fn one_edit_apart(a: &str, b: &str) -> bool {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let (short, long) = if a.len() <= b.len() {
        (&a, &b)
    } else {
        (&b, &a)
    };
    if long.len() - short.len() > 1 {
        return false;
    }
    let mut i = 0;
    while i < short.len() && short.get(i) == long.get(i) {
        i += 1;
    }
    if short.len() == long.len() {
        short.get(i + 1..) == long.get(i + 1..) && i < short.len()
    } else {
        short.get(i..) == long.get(i + 1..)
    }
}

/// Internal names come only from internal registries; public names may not imitate them.
pub fn check_confusion(policy: &Policy, c: &Component, find: &mut impl FnMut(FindingKind, String)) {
    let from_internal =
        registry_url(c).is_some_and(|url| policy.internal.registries.iter().any(|r| under(url, r)));
    if policy.is_internal(&c.name) {
        if matches!(c.source, Source::Registry(_)) && !from_internal {
            find(
                FindingKind::DependencyConfusion,
                format!(
                    "{} is an internal name but was resolved from {}: dependency confusion",
                    c.name,
                    registry_url(c).unwrap_or_default()
                ),
            );
        }
        return;
    }
    if from_internal {
        return;
    }
    let folded = fold(&c.name);
    for pattern in &policy.internal.names {
        let internal = pattern.trim_end_matches('*');
        if pattern.ends_with('*') {
            continue; // a prefix is not a name to imitate
        }
        let target = fold(internal);
        if folded == target || one_edit_apart(&folded, &target) {
            find(
                FindingKind::MimicsInternalName,
                format!("{} looks like the internal name {internal}", c.name),
            );
        }
    }
}

/// An npm tarball URL names the package of its entry (`.../NAME/-/BASENAME-VERSION.tgz`).
pub fn check_resolved_name(c: &Component, find: &mut impl FnMut(FindingKind, String)) {
    let (Ecosystem::Npm, Source::Registry(Some(url))) = (c.ecosystem, &c.source) else {
        return;
    };
    let Some((before, _)) = url.split_once("/-/") else {
        return;
    };
    let expected = format!("/{}", c.name);
    if !before.ends_with(&expected) {
        find(
            FindingKind::ResolvedNameMismatch,
            format!(
                "{} {} resolves to {url}, another package's tarball",
                c.name, c.version
            ),
        );
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn edits() {
        assert!(one_edit_apart("acmecore", "acmecor"));
        assert!(one_edit_apart("acmecore", "acmec0re"));
        assert!(one_edit_apart("acmecore", "acmecoore"));
        assert!(!one_edit_apart("acmecore", "acmecore-utils"));
        assert!(!one_edit_apart("abc", "abc"));
        assert_eq!(fold("Acme_Core"), fold("acme-core"));
    }
}
