//! Who may push (`DIR/push-tokens.toml`, or for replicas the same document in the shared
//! database: [`TokenHome`]): bearer tokens, kept only as their SHA-256, and registered TLS
//! client certificates, each with the roles and paths it may push. Adding or removing one is
//! recorded in the server directory's audit log.
//!
//! Guaranteed: a token's secret is shown once and never stored; the file is written
//! atomically with mode 0600 and only in a server data directory ([`Tokens::load`] refuses
//! anything else before anything is created); root, snapshot and timestamp are never
//! pushable. Not guaranteed: a token copied before it was removed works until then.

use std::path::Path;

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

use sealwright_repo::fsutil;
use sealwright_repo::publish;
use sealwright_repo::push::PushError;
use sealwright_tuf::delegation::glob_match;

use crate::accept::internal;

/// Token file in the server's data directory.
pub const TOKENS_FILE: &str = "push-tokens.toml";

/// One push token: its name, the SHA-256 of its secret, and what it may push.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TokenEntry {
    /// Who holds it (appears in the audit log).
    pub name: String,
    /// SHA-256 (hex) of the secret; empty for a client-certificate entry (no token, and no
    /// presented token hashes to the empty string).
    #[serde(default)]
    pub sha256: String,
    /// SHA-256 (hex) of the DER client certificate that authenticates this publisher over
    /// mTLS instead of a token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_cert: Option<String>,
    /// Roles it may push.
    pub roles: Vec<String>,
    /// Patterns (`*` and `?` never match `/`) every new or changed target must match; empty
    /// means whatever the roles themselves are delegated.
    #[serde(default)]
    pub paths: Vec<String>,
}

impl TokenEntry {
    pub(crate) fn allows_role(&self, role: &str) -> bool {
        self.roles.iter().any(|r| r == role)
    }

    pub(crate) fn allows_path(&self, path: &str) -> bool {
        self.paths.is_empty() || self.paths.iter().any(|p| glob_match(p, path))
    }
}

/// The tokens the server accepts (`DIR/push-tokens.toml`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Tokens {
    /// Every token.
    #[serde(default, rename = "token")]
    pub tokens: Vec<TokenEntry>,
}

/// Largest token file read.
const MAX_TOKENS_BYTES: u64 = 1024 * 1024;

/// Where a server's tokens are kept.
#[derive(Debug, Clone, Copy)]
pub enum TokenHome<'a> {
    /// `DIR/push-tokens.toml` in a server data directory.
    Dir(&'a Path),
    /// The `push-tokens.toml` document of a shared store, read by every replica on every
    /// request (so a removal takes effect on all of them at once).
    Shared(&'a sealwright_store::Shared),
}

impl TokenHome<'_> {
    /// The tokens, and the version they were read at (shared only).
    pub fn load(&self) -> Result<(Tokens, Option<u64>), PushError> {
        match self {
            TokenHome::Dir(dir) => Ok((Tokens::load(dir)?, None)),
            TokenHome::Shared(store) => match store.document(TOKENS_FILE).map_err(internal)? {
                Some((bytes, _)) if bytes.len() as u64 > MAX_TOKENS_BYTES => Err(internal(
                    format!("the shared push-tokens.toml is over {MAX_TOKENS_BYTES} bytes"),
                )),
                Some((bytes, version)) => Ok((
                    Tokens::parse(&bytes, "the shared push-tokens.toml")?,
                    Some(version),
                )),
                None => Ok((Tokens::default(), None)),
            },
        }
    }

    /// Writes `tokens`, read at `version`: a shared document changed by someone else since
    /// is not overwritten (the change is refused; run it again).
    fn save(&self, tokens: &Tokens, version: Option<u64>) -> Result<(), PushError> {
        match self {
            TokenHome::Dir(dir) => tokens.save(dir),
            TokenHome::Shared(store) => {
                let text = tokens.to_text()?;
                if store
                    .replace_document(TOKENS_FILE, text.as_bytes(), version)
                    .map_err(internal)?
                {
                    Ok(())
                } else {
                    Err(PushError::NotReady(
                        "the shared tokens changed while this change was made; run it again".into(),
                    ))
                }
            }
        }
    }

    /// Applies `change` to the tokens and saves them.
    fn modify<T>(
        &self,
        change: impl FnOnce(&mut Tokens) -> Result<T, PushError>,
    ) -> Result<T, PushError> {
        let (mut tokens, version) = self.load()?;
        let out = change(&mut tokens)?;
        self.save(&tokens, version)?;
        Ok(out)
    }
}

/// Prefix of every token, so a leaked one is recognisable in logs and scanners.
const TOKEN_PREFIX: &str = "swp_";

impl Tokens {
    /// Reads the token file; none means no token is accepted.
    pub fn load(repo_dir: &Path) -> Result<Self, PushError> {
        Self::check_server_dir(repo_dir)?;
        let path = repo_dir.join(TOKENS_FILE);
        match fsutil::read_capped(&path, MAX_TOKENS_BYTES) {
            Ok(bytes) => Self::parse(&bytes, &path.display().to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Tokens::default()),
            Err(e) => Err(internal(format!("{}: {e}", path.display()))),
        }
    }

    /// Parses a token file's bytes (`what` names it in errors).
    pub fn parse(bytes: &[u8], what: &str) -> Result<Self, PushError> {
        let text =
            std::str::from_utf8(bytes).map_err(|_| internal(format!("{what} is not UTF-8")))?;
        toml::from_str(text).map_err(|e| internal(format!("{what}: {e}")))
    }

    /// The token file's text.
    pub(crate) fn to_text(&self) -> Result<String, PushError> {
        let text = toml::to_string_pretty(self).map_err(internal)?;
        Ok(format!(
            "# Push tokens (`sealwright token add`): only their SHA-256 is kept here.\n\n{text}"
        ))
    }

    /// Tokens belong to a server's data directory (made by `sealwright server-init`): a
    /// policy and a published tree. Anything else is refused before anything is created,
    /// so a mistyped path does not become a fresh directory holding a token.
    fn check_server_dir(dir: &Path) -> Result<(), PushError> {
        let policy = dir.join(sealwright_repo::policy::POLICY_FILE);
        let metadata = dir.join(publish::PUBLISHED_DIR).join("metadata");
        if policy.is_file() && metadata.is_dir() {
            return Ok(());
        }
        Err(PushError::Invalid(format!(
            "{} is not a server data directory (it has no {} and published/metadata/): make one with `sealwright --repo REPO server-init {}`",
            dir.display(),
            sealwright_repo::policy::POLICY_FILE,
            dir.display()
        )))
    }

    /// Removes the token or client certificate registered as `name`.
    pub fn remove(&mut self, name: &str) -> Result<TokenEntry, PushError> {
        let at = self
            .tokens
            .iter()
            .position(|t| t.name == name)
            .ok_or_else(|| {
                PushError::Invalid(format!(
                    "no token named {name} (`sealwright token list` shows them)"
                ))
            })?;
        Ok(self.tokens.remove(at))
    }

    /// Writes the token file atomically, readable by its owner only.
    pub fn save(&self, repo_dir: &Path) -> Result<(), PushError> {
        let path = repo_dir.join(TOKENS_FILE);
        fsutil::write_atomic_private(&path, self.to_text()?.as_bytes()).map_err(internal)
    }

    /// A new entry's name is valid and unused, and its roles are pushable.
    fn check_new(&self, name: &str, roles: &[String]) -> Result<(), PushError> {
        sealwright_repo::policy::check_name("token", name)
            .map_err(|e| PushError::Invalid(e.to_string()))?;
        if self.tokens.iter().any(|t| t.name == name) {
            return Err(PushError::Invalid(format!(
                "a token named {name} exists; remove it from {TOKENS_FILE} first"
            )));
        }
        if roles.is_empty() {
            return Err(PushError::Invalid(
                "a token needs at least one role (--role)".into(),
            ));
        }
        for r in roles {
            if matches!(r.as_str(), "root" | "snapshot" | "timestamp") {
                return Err(PushError::Invalid(format!(
                    "{r} is never pushed: root changes are published offline, snapshot and timestamp are signed by the server's agent"
                )));
            }
        }
        Ok(())
    }

    /// Adds a token and returns its secret (shown once; only its hash is stored).
    pub fn create(
        &mut self,
        name: &str,
        roles: Vec<String>,
        paths: Vec<String>,
    ) -> Result<String, PushError> {
        self.check_new(name, &roles)?;
        let mut secret = [0u8; 32];
        sealwright_crypto::random::fill(&mut secret).map_err(internal)?;
        let token = format!("{TOKEN_PREFIX}{}", hex::encode(secret));
        self.tokens.push(TokenEntry {
            name: name.to_owned(),
            sha256: sealwright_crypto::digest::sha256_hex(token.as_bytes()),
            client_cert: None,
            roles,
            paths,
        });
        Ok(token)
    }

    /// Registers a publisher that authenticates with the TLS client certificate whose DER
    /// hashes to `cert_sha256` (the server must also trust its CA: `serve --client-ca`).
    pub fn create_for_client_cert(
        &mut self,
        name: &str,
        roles: Vec<String>,
        paths: Vec<String>,
        cert_sha256: &str,
    ) -> Result<(), PushError> {
        self.check_new(name, &roles)?;
        if self
            .tokens
            .iter()
            .any(|t| t.client_cert.as_deref() == Some(cert_sha256))
        {
            return Err(PushError::Invalid(
                "this client certificate is registered already".into(),
            ));
        }
        self.tokens.push(TokenEntry {
            name: name.to_owned(),
            sha256: String::new(),
            client_cert: Some(cert_sha256.to_owned()),
            roles,
            paths,
        });
        Ok(())
    }

    /// The entry registered for the client certificate whose DER hashes to `cert_sha256`.
    pub fn authenticate_client_cert(&self, cert_sha256: &str) -> Option<&TokenEntry> {
        self.tokens
            .iter()
            .find(|t| t.client_cert.as_deref() == Some(cert_sha256))
    }

    /// The token `presented` (from `Authorization: Bearer ...`), if known.
    pub fn authenticate(&self, presented: &str) -> Option<&TokenEntry> {
        let digest = sealwright_crypto::digest::sha256_hex(presented.trim().as_bytes());
        // Comparing digests, not secrets: timing reveals nothing about a token.
        self.tokens.iter().find(|t| t.sha256 == digest)
    }
}

/// Creates a token for `name` in the server directory `dir`, records it, and returns its
/// secret (shown once; only its hash is kept).
pub fn add_token(
    dir: &Path,
    home: TokenHome<'_>,
    name: &str,
    roles: &[String],
    paths: &[String],
) -> Result<Zeroizing<String>, PushError> {
    Tokens::check_server_dir(dir)?;
    let token = home.modify(|tokens| {
        Ok(Zeroizing::new(tokens.create(
            name,
            roles.to_vec(),
            paths.to_vec(),
        )?))
    })?;
    record(
        dir,
        home,
        "token-add",
        name,
        serde_json::json!({"roles": roles, "paths": paths}),
    )?;
    Ok(token)
}

/// Registers the TLS client certificate whose DER hashes to `fingerprint` for `name` in
/// `dir`, and records it.
pub fn add_client_cert(
    dir: &Path,
    home: TokenHome<'_>,
    name: &str,
    roles: &[String],
    paths: &[String],
    fingerprint: &str,
) -> Result<(), PushError> {
    Tokens::check_server_dir(dir)?;
    home.modify(|tokens| {
        tokens.create_for_client_cert(name, roles.to_vec(), paths.to_vec(), fingerprint)
    })?;
    record(
        dir,
        home,
        "token-add",
        name,
        serde_json::json!({"roles": roles, "paths": paths, "client_cert": fingerprint}),
    )
}

/// Removes the token or client certificate `name` from `dir` (its holder can no longer push;
/// the server reads the file on every request) and records it.
pub fn remove_token(dir: &Path, home: TokenHome<'_>, name: &str) -> Result<TokenEntry, PushError> {
    Tokens::check_server_dir(dir)?;
    let removed = home.modify(|tokens| tokens.remove(name))?;
    record(
        dir,
        home,
        "token-remove",
        name,
        serde_json::json!({"roles": removed.roles, "paths": removed.paths}),
    )?;
    Ok(removed)
}

/// Records a token change where the tokens live: the data directory's log, or the shared
/// log every replica appends to.
fn record(
    dir: &Path,
    home: TokenHome<'_>,
    action: &str,
    name: &str,
    details: serde_json::Value,
) -> Result<(), PushError> {
    let subject = format!("token {name}");
    let written = match home {
        TokenHome::Dir(_) => sealwright_store::audit::record_local(dir, action, &subject, details)
            .map(|_| ())
            .map_err(|e| e.to_string()),
        TokenHome::Shared(store) => store
            .append_audit(&sealwright_store::NewRecord {
                actor: &sealwright_store::audit::local_actor(),
                action,
                subject: &subject,
                details,
            })
            .map(|_| ())
            .map_err(|e| e.to_string()),
    };
    written.map_err(|e| internal(format!("writing the audit record: {e}")))
}
