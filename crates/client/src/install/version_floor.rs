//! C3, the rollback floor: the highest version ever installed here, kept in `state.json`,
//! below which nothing installs unless the artifact's own entry signs it as a recovery
//! release.

use chrono::{DateTime, SecondsFormat, Utc};

use super::pointer::ChannelPointer;
use super::state::State;
use super::InstallError;

/// C3, the rollback floor: a version at or below the highest ever installed here (not the
/// current one: a rollback after a failed health check must not lower the floor) is refused
/// unless the artifact's own entry signs it as a recovery release.
pub(super) fn check_version_floor(
    name: &str,
    version: &semver::Version,
    highest: Option<&semver::Version>,
    pointer: &ChannelPointer,
) -> Result<(), InstallError> {
    match highest {
        Some(h) if version <= h && !pointer.recovery => Err(InstallError::new(
            "version",
            format!("refusing {name} {version}: it is not newer than {h}, the highest version installed here, and it is not signed as a recovery release"),
        )
        .about(pointer)),
        _ => Ok(()),
    }
}

pub(super) fn record_install(
    state: &mut State,
    name: &str,
    channel: &str,
    pointer: &ChannelPointer,
    version: &semver::Version,
    highest: Option<&semver::Version>,
    now: DateTime<Utc>,
) {
    state.name = Some(name.to_owned());
    state.channel = Some(channel.to_owned());
    state.previous_version = state.current_version.take();
    state.current_version = Some(pointer.version.clone());
    // A recovery release lowers `current` but never the floor.
    if highest.is_none_or(|h| version > h) {
        state.highest_version = Some(pointer.version.clone());
    }
    state.last_good_version = Some(pointer.version.clone());
    state.updated_at = Some(now.to_rfc3339_opts(SecondsFormat::Secs, true));
}
