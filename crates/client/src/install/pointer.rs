//! Channel pointers (`NAME/channels/CHANNEL.json`): a signed hint naming the release a
//! channel is on, resolved into the artifact's *own* signed entry before anything is
//! downloaded.

use sealwright_tuf::TargetFile;
use serde::{Deserialize, Serialize};

use super::InstallError;
use crate::fetch::Fetcher;
use crate::updater::Updater;

/// What the signed channel pointer says (`custom.sealwright` of `NAME/channels/CHANNEL.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChannelPointer {
    /// Product.
    pub name: String,
    /// Version the channel points to.
    pub version: String,
    /// Channel.
    pub channel: String,
    /// Target path of the artifact.
    pub target: String,
    /// Artifact length.
    pub length: u64,
    /// Artifact hashes.
    pub hashes: std::collections::BTreeMap<String, String>,
    /// Signed as a recovery release (may go below the highest installed version).
    #[serde(default)]
    pub recovery: bool,
}

pub use sealwright_tuf::layout::channel_pointer_path as pointer_path;

/// A release found through its channel pointer and confirmed by the artifact's own entry.
pub(crate) struct ResolvedRelease {
    /// What the pointer says, `recovery` only where the artifact's own entry says so too.
    pub pointer: ChannelPointer,
    /// The pointer's own signed entry (for copying the pointer file, e.g. into a bundle).
    pub pointer_entry: TargetFile,
    /// The artifact's own signed entry: the only length and hashes a download is checked
    /// against.
    pub artifact: TargetFile,
    /// The role whose signed metadata lists the artifact (found by the delegation search).
    pub artifact_role: String,
}

/// Finds the release of `name` on `channel`: the pointer (a hint), then the artifact it
/// names through the client's own delegation search for the artifact's path.
///
/// Why: the pointer is signed by whichever role is trusted for `NAME/channels/*`, which may
/// be a narrower role than the one trusted for the artifact's path. Taking the pointer's
/// length and hashes as a grant let a role delegated only the channels directory install
/// any bytes it liked (arbitrary-installation attack through a narrow delegation).
pub(crate) fn resolve_release<F: Fetcher>(
    updater: &mut Updater<F>,
    name: &str,
    channel: &str,
) -> Result<ResolvedRelease, InstallError> {
    let ptr_path = pointer_path(name, channel);
    let found = updater
        .get_targetinfo(&ptr_path)
        .map_err(|e| InstallError::new("metadata", format!("looking up {ptr_path}: {e}")))?
        .ok_or_else(|| {
            InstallError::new(
                "pointer",
                format!("no release of {name} on channel {channel} ({ptr_path} is not in the signed metadata)"),
            )
        })?;
    let mut pointer = parse_pointer(&found.target, name, channel, &ptr_path)?;
    let refuse = |p: &ChannelPointer, why: String| {
        InstallError::new(
            "pointer",
            format!(
                "{ptr_path} names {}, but {why}; nothing was installed",
                p.target
            ),
        )
        .about(p)
    };
    let found_artifact = updater
        .get_targetinfo(&pointer.target)
        .map_err(|e| {
            InstallError::new("metadata", format!("looking up {}: {e}", pointer.target))
                .about(&pointer)
        })?
        .ok_or_else(|| refuse(&pointer, "no role trusted for that path signed it".into()))?;
    let artifact_role = found_artifact.role;
    let artifact = found_artifact.target;
    if artifact.length != pointer.length || artifact.hashes != pointer.hashes {
        return Err(refuse(
            &pointer,
            "the pointer's length or hashes disagree with the artifact's own signed entry".into(),
        ));
    }
    let own = artifact.custom.as_ref().and_then(|c| c.get("sealwright"));
    if let Some(own) = own {
        let field = |k: &str| own.get(k).and_then(serde_json::Value::as_str);
        if field("name") != Some(name) || field("version") != Some(pointer.version.as_str()) {
            return Err(refuse(
                &pointer,
                format!(
                    "the artifact is signed as {} {}, not {name} {}",
                    field("name").unwrap_or("?"),
                    field("version").unwrap_or("?"),
                    pointer.version
                ),
            ));
        }
    }
    // A downgrade is a claim about the artifact, so only the artifact's signer can make it.
    let own_recovery = own
        .and_then(|o| o.get("recovery"))
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(false);
    pointer.recovery &= own_recovery;
    Ok(ResolvedRelease {
        pointer,
        pointer_entry: found.target,
        artifact,
        artifact_role,
    })
}

/// The pointer's version, which must be semantic (the floor compares versions).
pub(super) fn semantic_version(pointer: &ChannelPointer) -> Result<semver::Version, InstallError> {
    semver::Version::parse(&pointer.version).map_err(|_| {
        InstallError::new(
            "pointer",
            format!(
                "{}: version {:?} is not semantic",
                pointer_path(&pointer.name, &pointer.channel),
                pointer.version
            ),
        )
        .about(pointer)
    })
}

/// The pointer's signed `custom.sealwright`, checked against what we asked for (a hint
/// only: [`resolve_release`] confirms it against the artifact's own entry).
pub fn parse_pointer(
    target: &TargetFile,
    name: &str,
    channel: &str,
    ptr_path: &str,
) -> Result<ChannelPointer, InstallError> {
    let bad = |why: String| {
        InstallError::new(
            "pointer",
            format!("{ptr_path}: {why}; the repository owner must publish the release again"),
        )
    };
    let custom = target
        .custom
        .as_ref()
        .and_then(|c| c.get("sealwright"))
        .ok_or_else(|| bad("no custom.sealwright in its signed entry".into()))?;
    let p: ChannelPointer = serde_json::from_value(custom.clone())
        .map_err(|e| bad(format!("malformed custom.sealwright ({e})")))?;
    // The pointer must describe the product and channel it is filed under, and the artifact
    // must live in that release's directory: a pointer copied from another product or
    // channel is refused.
    if p.name != name || p.channel != channel {
        return Err(bad(format!("it names {} on {}", p.name, p.channel)));
    }
    let prefix = format!("{name}/{}/", p.version);
    if !p.target.starts_with(&prefix) || !safe_relative(&p.target) {
        return Err(bad(format!(
            "artifact path {:?} is not under {prefix}",
            p.target
        )));
    }
    Ok(p)
}

fn safe_relative(path: &str) -> bool {
    !path.is_empty()
        && !path.starts_with('/')
        && !path.contains('\\')
        && !path.chars().any(char::is_control)
        && path
            .split('/')
            .all(|c| !c.is_empty() && c != "." && c != "..")
}

pub(super) fn artifact_basename(p: &ChannelPointer) -> Result<String, InstallError> {
    p.target
        .rsplit('/')
        .next()
        .filter(|b| !b.is_empty() && *b != "." && *b != "..")
        .map(str::to_owned)
        .ok_or_else(|| {
            InstallError::new(
                "pointer",
                format!("artifact path {:?} has no file name", p.target),
            )
            .about(p)
        })
}
