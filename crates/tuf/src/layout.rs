//! Where each file of a published repository lives — the one place that spells out the
//! layout every crate reads and writes (publisher, server, client, verifier).
//!
//! With consistent snapshots (TUF §5.3–§5.7): metadata as `VERSION.ROLE.json` (timestamp
//! alone as `timestamp.json`), and a target `DIR/NAME` as `DIR/SHA256.NAME`, so a new
//! version never overwrites a file a client may be reading.

/// The unversioned timestamp file.
pub const TIMESTAMP_FILE: &str = "timestamp.json";

/// The versioned file of `role` at `version`: `VERSION.ROLE.json`.
pub fn metadata_file(role: &str, version: u64) -> String {
    format!("{version}.{role}.json")
}

/// The key of `role` in snapshot (and timestamp) `meta`: `ROLE.json`.
pub fn meta_key(role: &str) -> String {
    format!("{role}.json")
}

/// The role a snapshot `meta` key names (`ROLE.json` → `ROLE`).
pub fn role_of_meta_key(key: &str) -> Option<&str> {
    key.strip_suffix(".json")
}

/// Where target `path` with SHA-256 `sha256` is stored: `DIR/SHA256.NAME`.
pub fn target_file(path: &str, sha256: &str) -> String {
    match path.rsplit_once('/') {
        Some((dir, name)) => format!("{dir}/{sha256}.{name}"),
        None => format!("{sha256}.{path}"),
    }
}

/// The fixed target path of the channel pointer of `name` on `channel`:
/// `NAME/channels/CHANNEL.json`. It has the same depth as the artifacts
/// (`NAME/VERSION/FILE`), so a delegation pattern like `app/*/*` covers both, and `channels`
/// is never a semantic version, so it cannot collide with a release directory.
pub fn channel_pointer_path(name: &str, channel: &str) -> String {
    format!("{name}/channels/{channel}.json")
}

/// Whether `path` is a channel pointer: the only kind of target a later publish replaces
/// with other bytes (every artifact path keeps its bytes forever).
pub fn is_channel_pointer(path: &str) -> bool {
    let mut parts = path.split('/');
    matches!(
        (parts.next(), parts.next(), parts.next(), parts.next()),
        (Some(n), Some("channels"), Some(c), None) if !n.is_empty() && c.len() > ".json".len() && c.ends_with(".json")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(metadata_file("bins-0a", 3), "3.bins-0a.json");
        assert_eq!(meta_key("targets"), "targets.json");
        assert_eq!(role_of_meta_key(&meta_key("bins-0a")), Some("bins-0a"));
        assert_eq!(target_file("app/1.0/a.tar", "ab"), "app/1.0/ab.a.tar");
        assert_eq!(target_file("a.tar", "ab"), "ab.a.tar");
    }
}
