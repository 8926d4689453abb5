//! A data directory for `sealwright serve --push`, made from a publisher's repository.
//!
//! The server of the publish API must hold no private key (it verifies, and has the signer
//! agent sign snapshot and timestamp). So it gets a copy of what is public — the published
//! tree — and the policy with every key location dropped except the `agent:SOCKET` ones of
//! the online roles; a policy whose online keys are not in an agent is refused here, before
//! anything is written, with the same reason the server would give at startup.

use std::fs;
use std::path::{Path, PathBuf};

use crate::fsutil;
use crate::policy::Policy;
use crate::push::{check_online_keys_in_agent, PushError};

/// The transparency log's verifier key (`origin+id+key`, one line) in a server directory:
/// public, written by `server setup`, printed by `sealwright log key`.
pub const LOG_VKEY_FILE: &str = "log.vkey";

/// What [`create_server_dir`] copied.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ServerDir {
    /// The new data directory.
    pub dir: PathBuf,
    /// Files copied from `published/`.
    pub files: u64,
    /// Their total size.
    pub bytes: u64,
    /// The signer agent socket the server will sign through.
    pub agent_sockets: Vec<String>,
}

/// Makes `to` (absent or empty) a data directory for `serve --push` from the repository
/// `from`: its published tree and a policy that names no key file.
pub fn create_server_dir(from: &Path, to: &Path) -> Result<ServerDir, PushError> {
    let policy = Policy::load(from).map_err(|e| PushError::NotReady(e.to_string()))?;
    create_server_dir_with(from, policy, to)
}

/// [`create_server_dir`] with `policy` in place of the one saved in `from` (`server setup`
/// passes the policy as it will be once the online keys are in the agent).
pub fn create_server_dir_with(
    from: &Path,
    mut policy: Policy,
    to: &Path,
) -> Result<ServerDir, PushError> {
    check_online_keys_in_agent(&policy)?;
    let published = from.join("published");
    if !published.join("metadata/timestamp.json").is_file() {
        return Err(PushError::NotReady(format!(
            "{} has nothing published yet: run `sealwright publish` there first",
            from.display()
        )));
    }
    let new = fsutil::is_absent_or_empty(to)
        .map_err(|e| PushError::Invalid(format!("{}: {e}", to.display())))?;
    if !new {
        return Err(PushError::Invalid(format!(
            "{} exists and is not empty; give a new directory",
            to.display()
        )));
    }
    let mut agent_sockets = Vec::new();
    for entry in policy.keys.values_mut() {
        entry.private = match entry.private.take() {
            // The server resolves relative locations against its own directory.
            Some(location) => location.strip_prefix("agent:").map(|socket| {
                let socket = Path::new(socket);
                let absolute = if socket.is_absolute() {
                    socket.to_owned()
                } else {
                    absolute(from).join(socket)
                };
                let location = format!("agent:{}", absolute.display());
                if !agent_sockets.contains(&location) {
                    agent_sockets.push(location.clone());
                }
                location
            }),
            None => None,
        };
    }
    fs::create_dir_all(to).map_err(|e| io(to, e))?;
    let (files, bytes) = copy_tree(&published, &to.join("published"))?;
    policy
        .save(to)
        .map_err(|e| PushError::Internal(e.to_string()))?;
    fsutil::sync_filesystem(to).map_err(|e| io(to, e))?;
    // The server directory's own audit log starts with where it came from.
    sealwright_store::audit::record_local(
        to,
        "server-init",
        &from.display().to_string(),
        serde_json::json!({"files": files, "bytes": bytes, "agent": agent_sockets}),
    )
    .map_err(|e| PushError::Internal(format!("writing the audit record: {e}")))?;
    Ok(ServerDir {
        dir: to.to_owned(),
        files,
        bytes,
        agent_sockets,
    })
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_owned())
}

fn io(path: &Path, e: std::io::Error) -> PushError {
    PushError::Internal(format!("{}: {e}", path.display()))
}

/// Copies regular files and directories; anything else (a symlink could point at a key) is
/// refused.
fn copy_tree(from: &Path, to: &Path) -> Result<(u64, u64), PushError> {
    fs::create_dir_all(to).map_err(|e| io(to, e))?;
    let (mut files, mut bytes) = (0, 0);
    for entry in fs::read_dir(from).map_err(|e| io(from, e))? {
        let entry = entry.map_err(|e| io(from, e))?;
        let (src, dest) = (entry.path(), to.join(entry.file_name()));
        let kind = entry.file_type().map_err(|e| io(&src, e))?;
        if kind.is_dir() {
            let (f, b) = copy_tree(&src, &dest)?;
            files += f;
            bytes += b;
        } else if kind.is_file() {
            bytes += fs::copy(&src, &dest).map_err(|e| io(&src, e))?;
            files += 1;
        } else {
            return Err(PushError::Invalid(format!(
                "{} is neither a file nor a directory; published trees hold only those",
                src.display()
            )));
        }
    }
    Ok((files, bytes))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn refuses_a_policy_whose_online_keys_are_files_and_a_non_empty_target() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("repo");
        let source = crate::FixedPassphrase(sealwright_crypto::Passphrase::new("pw".into()));
        let keyring = crate::Keyring::new(&repo, &source);
        let policy = crate::init::create_repository(
            &repo,
            Policy::new_default(),
            sealwright_crypto::Algorithm::Ed25519,
            &keyring,
            None,
        )
        .unwrap();
        let plan = crate::publish::plan(&repo, &policy, chrono::Utc::now()).unwrap();
        crate::publish::execute(&repo, &policy, &keyring, plan).unwrap();

        let to = dir.path().join("server");
        let err = create_server_dir(&repo, &to).unwrap_err();
        assert!(err.to_string().contains("agent:SOCKET"), "{err}");
        assert!(!to.exists(), "nothing written on refusal");

        let mut policy = Policy::load(&repo).unwrap();
        for name in ["timestamp-key", "snapshot-key"] {
            policy.keys.get_mut(name).unwrap().private = Some("agent:run/agent.sock".into());
        }
        policy.save(&repo).unwrap();
        fs::create_dir_all(&to).unwrap();
        fs::write(to.join("stray"), b"x").unwrap();
        let err = create_server_dir(&repo, &to).unwrap_err();
        assert!(err.to_string().contains("not empty"), "{err}");

        fs::remove_file(to.join("stray")).unwrap();
        let made = create_server_dir(&repo, &to).unwrap();
        assert!(made.files >= 5, "{made:?}");
        let copied = Policy::load(&to).unwrap();
        for (name, key) in &copied.keys {
            match name.as_str() {
                "timestamp-key" | "snapshot-key" => {
                    let location = key.private.as_deref().unwrap();
                    let socket = location.strip_prefix("agent:").unwrap();
                    assert!(Path::new(socket).is_absolute(), "{location}");
                    assert!(socket.ends_with("repo/run/agent.sock"), "{location}");
                }
                _ => assert_eq!(key.private, None, "{name} keeps no key file location"),
            }
        }
        assert_eq!(
            fs::read(to.join("published/metadata/timestamp.json")).unwrap(),
            fs::read(repo.join("published/metadata/timestamp.json")).unwrap()
        );
    }
}
