//! The signer agent (PRODUCT.md P2): a separate process that holds the online keys
//! (timestamp, snapshot) and signs for the callers its configuration names, over a Unix
//! socket. A server or publisher that uses it holds no private key of its own.
//!
//! What the agent guarantees, each enforced in [`Agent::decide`]:
//! - it signs only roles it holds keys for, only for a caller whose uid (from the kernel,
//!   `SO_PEERCRED`, not from the request) the configuration allows for that role;
//! - the `signed` object must say it is that role (`_type`), so a timestamp key never
//!   signs a snapshot or a targets file;
//! - its version must be higher than any the agent signed for the role before (kept in a
//!   state file written atomically), so a compromised caller cannot get a rollback signed;
//! - its version may be at most `max_version_step` (default [`DEFAULT_MAX_VERSION_STEP`])
//!   above that last version, and at most [`MAX_FIRST_VERSION`] when the agent has signed
//!   none yet, so a compromised caller cannot burn the version space (a signed version
//!   2^64−1 would make every later signature impossible);
//! - its expiry must lie in the future and within the role's maximum period, so a
//!   compromised caller cannot get a far-future freeze signed;
//! - every signature and every refusal is appended, before the answer is sent, to the
//!   agent's hash-chained audit log (`audit.sqlite3` next to the socket; `sealwright audit
//!   verify --data DIR` detects an edited, removed or reordered record). A signature that
//!   cannot be logged is not handed out.
//!
//! For the transparency log's key (role `log`, enforced in [`LogKey::sign_checkpoint`]):
//! - it signs only checkpoints of its configured origin, under that name (c2sp.org
//!   signed-note, Ed25519), without extension lines;
//! - never a smaller tree than the last it signed, never another root at the same size, and
//!   a larger tree only with a consistency proof from the last one it signed — so a
//!   compromised server cannot obtain two checkpoints that fork the log's history (the
//!   one thing a log must never sign); the last signed head is recorded atomically before
//!   the signature leaves. Request `{"role": "log", "signed": {"checkpoint": TEXT,
//!   "consistency": [BASE64…]}}`; the answer's `keyid` is the key's verifier key (vkey).
//!
//! Wire format: a 4-byte big-endian length, then that many bytes of JSON (at most
//! [`MAX_FRAME`]). Request `{"role": R, "signed": {...}}`; answer
//! `{"ok": true, "signatures": [{"keyid", "sig"}]}` or `{"ok": false, "error": "..."}`.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use sealwright_crypto::signer::SignError;
use sealwright_crypto::{PublicKey, Signer};

use crate::fsutil;

/// Largest request or answer accepted on the socket.
pub const MAX_FRAME: u32 = 16 * 1024 * 1024;

/// Why the agent could not start, or a signature could not be obtained from it.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// Reading or writing a file or the socket failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why.
        source: std::io::Error,
    },
    /// The agent refused to sign.
    #[error("the signer agent refused: {0}")]
    Refused(String),
    /// The agent refused a checkpoint; it last signed one of `signed_size` entries (a
    /// caller that lost that checkpoint proves consistency from there).
    #[error("the signer agent refused the checkpoint ({reason}); its log key last signed size {signed_size}")]
    LogSigned {
        /// Size of the last checkpoint the agent signed.
        signed_size: u64,
        /// The agent's reason.
        reason: String,
    },
    /// The agent's answer or configuration is unusable.
    #[error("signer agent: {0}")]
    Protocol(String),
    /// A key file named in the configuration could not be opened.
    #[error("opening the {role} key {file}: {source}")]
    Key {
        /// Its role.
        role: String,
        /// The file.
        file: PathBuf,
        /// Why.
        source: crate::keyring::KeyringError,
    },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> AgentError {
    let what = what.into();
    move |source| AgentError::Io { what, source }
}

/// Who may ask for which roles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Caller {
    /// Unix uid of the calling process.
    pub uid: u32,
    /// Roles it may have signed.
    pub roles: Vec<String>,
}

/// How far ahead each role's expiry may be set, in days.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaxExpiry {
    /// Timestamp (default 7 days).
    #[serde(default = "seven")]
    pub timestamp: u32,
    /// Snapshot (default 30 days).
    #[serde(default = "thirty")]
    pub snapshot: u32,
}

fn seven() -> u32 {
    7
}
fn thirty() -> u32 {
    30
}

impl Default for MaxExpiry {
    fn default() -> Self {
        MaxExpiry {
            timestamp: seven(),
            snapshot: thirty(),
        }
    }
}

/// A key the agent holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    /// `timestamp`, `snapshot` or `log`.
    pub role: String,
    /// The encrypted key file (as written by `sealwright key generate`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    /// Or a key on a PKCS#11 token (`pkcs11:` URI with `pin-source=FILE`, or the PIN asked
    /// at start): the agent then holds a logged-in session, never key bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pkcs11: Option<String>,
    /// For the `log` key only: the log's origin (its scheme-less URL), which is also the
    /// key's name in signed notes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
}

/// The agent's configuration file (TOML).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// The socket to listen on; its directory is created with mode 0700.
    pub socket: PathBuf,
    /// Keys held.
    pub keys: Vec<KeyConfig>,
    /// Who may ask.
    pub callers: Vec<Caller>,
    /// Expiry limits.
    #[serde(default)]
    pub max_expiry_days: MaxExpiry,
    /// Largest step above the last version signed for a role.
    #[serde(default = "default_max_version_step")]
    pub max_version_step: u64,
}

/// Default of [`AgentConfig::max_version_step`]: a server bumps a version by one per
/// signature, a few more after failed writes.
pub const DEFAULT_MAX_VERSION_STEP: u64 = 100;
/// Highest version the agent signs for a role it has never signed (2^32: room for a
/// signature a second for a century, yet never near the end of the version space).
pub const MAX_FIRST_VERSION: u64 = 1 << 32;

fn default_max_version_step() -> u64 {
    DEFAULT_MAX_VERSION_STEP
}

impl AgentConfig {
    /// Reads and checks a configuration file.
    pub fn load(path: &Path) -> Result<Self, AgentError> {
        let bytes = fsutil::read_capped(path, 1024 * 1024)
            .map_err(io(format!("reading {}", path.display())))?;
        let text = String::from_utf8(bytes)
            .map_err(|_| AgentError::Protocol(format!("{} is not UTF-8", path.display())))?;
        Self::parse(&text).map_err(|e| AgentError::Protocol(format!("{}: {e}", path.display())))
    }

    /// Parses and checks a configuration's text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let config: AgentConfig = toml::from_str(text).map_err(|e| e.to_string())?;
        for k in &config.keys {
            match (&k.file, &k.pkcs11) {
                (Some(_), None) => {}
                (None, Some(uri)) => {
                    sealwright_pkcs11::Pkcs11Uri::parse(uri).map_err(|e| e.to_string())?;
                }
                _ => {
                    return Err(format!(
                        "the {} key needs exactly one of file = \"PATH\" or pkcs11 = \"URI\"",
                        k.role
                    ))
                }
            }
            match (k.role.as_str(), &k.origin) {
                (LOG_ROLE, Some(origin)) => {
                    sealwright_tlog::note::Verifier::new(
                        origin,
                        sealwright_tlog::note::KeyKind::Ed25519,
                        [0; 32],
                    )
                    .map_err(|_| {
                        format!("the log origin {origin:?} is empty or has a space or '+'")
                    })?;
                }
                (LOG_ROLE, None) => {
                    return Err(
                        "the log key needs origin = \"HOST/PATH\" (the log's scheme-less URL)"
                            .into(),
                    )
                }
                (role, None) if ONLINE_ROLES.contains(&role) => {}
                (role, Some(_)) if ONLINE_ROLES.contains(&role) => {
                    return Err(format!("origin is for the log key, not the {role} key"))
                }
                (role, _) => {
                    return Err(format!(
                        "the agent holds only online keys (timestamp, snapshot, log), not {role}"
                    ))
                }
            }
        }
        if config.keys.iter().filter(|k| k.role == LOG_ROLE).count() > 1 {
            return Err("one log key per agent".into());
        }
        if config.callers.is_empty() {
            return Err("no [[callers]]: nobody could use the agent".to_owned());
        }
        Ok(config)
    }

    /// Where the last checkpoint the log key signed is kept: next to the socket.
    pub fn log_state_path(&self) -> PathBuf {
        self.socket.with_extension("log-state.json")
    }

    /// Where the highest signed versions are kept: next to the socket.
    pub fn state_path(&self) -> PathBuf {
        self.socket.with_extension("state.json")
    }

    /// The directory of the audit log where every signature and refusal is recorded: the
    /// socket's (private to the agent, like its state file).
    pub fn audit_dir(&self) -> PathBuf {
        self.socket
            .parent()
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
    }
}

/// A key `signer add-key` made for an agent.
#[derive(Debug, Clone, Serialize)]
pub struct AddedAgentKey {
    /// Its name (the key file's stem, or the token label).
    pub name: String,
    /// Its role.
    pub role: String,
    /// Its public key (PEM), for `key import --agent` on the publishing machine.
    pub public_pem: String,
    /// Its key id.
    pub keyid: String,
}

/// `signer add-key`: a new key for the online `role` — an encrypted file in `keys/` next to
/// the configuration at `config_path`, or on the token `pkcs11` names — added to the
/// configuration (rewritten atomically; it was checked first). The agent holds it from its
/// next start, signing with it beside the role's other keys, so a rotation needs no gap:
/// publish the new key in root (`key import --agent`), then revoke the old one.
pub fn add_key(
    config_path: &Path,
    keyring: &crate::keyring::Keyring<'_>,
    role: &str,
    algorithm: sealwright_crypto::Algorithm,
    pkcs11: Option<&str>,
) -> Result<AddedAgentKey, AgentError> {
    if !ONLINE_ROLES.contains(&role) {
        return Err(AgentError::Protocol(format!(
            "the agent holds timestamp and snapshot keys, not {role}"
        )));
    }
    let mut config = AgentConfig::load(config_path)?;
    let dir = config_path.parent().unwrap_or(Path::new("."));
    let name = (2u32..)
        .map(|n| format!("{role}-key-{n}"))
        .find(|n| !dir.join(format!("keys/{n}.pem")).exists())
        .unwrap_or_else(|| format!("{role}-key-new"));
    let key_error = |source| AgentError::Key {
        role: role.to_owned(),
        file: dir.join("keys"),
        source,
    };
    let (public, location) = match pkcs11 {
        Some(uri) => {
            let entry = keyring
                .generate_on_token(&name, uri, algorithm)
                .map_err(key_error)?;
            let public = entry
                .public_key()
                .map_err(|e| AgentError::Protocol(e.to_string()))?;
            (
                public,
                KeyConfig {
                    role: role.to_owned(),
                    file: None,
                    pkcs11: entry.private,
                    origin: None,
                },
            )
        }
        None => {
            let (_, key) = keyring
                .generate(&name, algorithm, sealwright_crypto::Kdf::default())
                .map_err(key_error)?;
            let file = dir.join(format!("keys/{name}.pem"));
            let file = std::fs::canonicalize(&file).unwrap_or(file);
            (
                key.public_key().clone(),
                KeyConfig {
                    role: role.to_owned(),
                    file: Some(file),
                    pkcs11: None,
                    origin: None,
                },
            )
        }
    };
    config.keys.push(location);
    let text = toml::to_string(&config).map_err(|e| AgentError::Protocol(e.to_string()))?;
    AgentConfig::parse(&text).map_err(AgentError::Protocol)?;
    fsutil::write_atomic(config_path, text.as_bytes())
        .map_err(io(format!("writing {}", config_path.display())))?;
    Ok(AddedAgentKey {
        name,
        role: role.to_owned(),
        keyid: public.keyid(),
        public_pem: public.to_spki_pem().unwrap_or_default(),
    })
}

/// A complete agent configuration, as `signer serve --help` and docs/signer.md show it; it
/// loads as is (`sealwright server setup` writes one for you).
pub const EXAMPLE_CONFIG: &str = include_str!("agent_example.toml");

/// The TUF roles an agent may hold keys for.
pub const ONLINE_ROLES: [&str; 2] = ["timestamp", "snapshot"];

/// The transparency log's checkpoint key, which an agent may also hold.
pub const LOG_ROLE: &str = "log";

#[derive(Debug, Serialize, Deserialize)]
struct Request {
    role: String,
    signed: Value,
}

#[derive(Debug, Serialize, Deserialize)]
struct Answer {
    ok: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    signatures: Vec<WireSignature>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    /// With a refused log request: the size of the last checkpoint the log key signed, so
    /// that a caller who lost it (killed after the signature, before writing the
    /// checkpoint) can prove consistency from there instead of being stuck.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    log_size: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct WireSignature {
    keyid: String,
    sig: String,
}

/// The decision logic and keys, independent of the socket.
#[derive(Debug)]
pub struct Agent {
    keys: BTreeMap<String, Vec<Box<dyn Signer>>>,
    callers: Vec<Caller>,
    max_expiry: MaxExpiry,
    max_version_step: u64,
    state_path: PathBuf,
    audit: Mutex<sealwright_store::AuditLog>,
    last_versions: Mutex<BTreeMap<String, u64>>,
    log: Option<LogKey>,
}

impl Agent {
    /// An agent holding `keys` (role, key) for `config`.
    pub fn new(
        config: &AgentConfig,
        keys: Vec<(String, Box<dyn Signer>)>,
    ) -> Result<Self, AgentError> {
        let mut by_role: BTreeMap<String, Vec<Box<dyn Signer>>> = BTreeMap::new();
        let mut log = None;
        for (role, key) in keys {
            if role == LOG_ROLE {
                let origin = config
                    .keys
                    .iter()
                    .find_map(|k| k.origin.clone().filter(|_| k.role == LOG_ROLE))
                    .ok_or_else(|| AgentError::Protocol("the log key has no origin".into()))?;
                log = Some(LogKey::new(key, &origin, config.log_state_path())?);
                continue;
            }
            by_role.entry(role).or_default().push(key);
        }
        let state_path = config.state_path();
        let last_versions = match fsutil::read_capped(&state_path, 1024 * 1024) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                AgentError::Protocol(format!(
                    "{} is corrupt ({e}); it guards against signing old versions, restore it rather than delete it",
                    state_path.display()
                ))
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => BTreeMap::new(),
            Err(e) => return Err(io(format!("reading {}", state_path.display()))(e)),
        };
        Ok(Agent {
            keys: by_role,
            callers: config.callers.clone(),
            max_expiry: config.max_expiry_days.clone(),
            max_version_step: config.max_version_step,
            state_path,
            audit: Mutex::new(
                sealwright_store::AuditLog::open(&config.audit_dir())
                    .map_err(|e| AgentError::Protocol(e.to_string()))?,
            ),
            last_versions: Mutex::new(last_versions),
            log,
        })
    }

    /// The log key's verifier key (`origin+id+key`), when this agent holds one.
    pub fn log_vkey(&self) -> Option<String> {
        self.log.as_ref().map(|l| l.verifier.vkey())
    }

    /// Signs `signed` as `role` for `uid`, or says why not; logs either way.
    fn decide(&self, uid: u32, role: &str, signed: &Value, now: DateTime<Utc>) -> Answer {
        let result = self.check_and_sign(uid, role, signed, now);
        let version = signed.get("version").and_then(Value::as_u64);
        let expires = signed.get("expires").and_then(Value::as_str);
        let logged = match &result {
            Ok(sigs) => self.record(
                uid,
                "sign",
                role,
                serde_json::json!({
                    "version": version, "expires": expires,
                    "signed_by": sigs.iter().map(|s| s.keyid.clone()).collect::<Vec<_>>(),
                }),
            ),
            Err(reason) => self.record(
                uid,
                "sign-refused",
                role,
                serde_json::json!({"version": version, "error": reason}),
            ),
        };
        if let Err(e) = logged {
            // Nothing unlogged is handed out.
            return Answer {
                ok: false,
                signatures: vec![],
                error: Some(format!("cannot write the agent log: {e}")),
                log_size: None,
            };
        }
        match result {
            Ok(signatures) => Answer {
                ok: true,
                signatures,
                error: None,
                log_size: None,
            },
            Err(e) => Answer {
                ok: false,
                signatures: vec![],
                error: Some(e),
                log_size: self
                    .log
                    .as_ref()
                    .filter(|_| role == LOG_ROLE)
                    .and_then(LogKey::last_size),
            },
        }
    }

    fn check_and_sign(
        &self,
        uid: u32,
        role: &str,
        signed: &Value,
        now: DateTime<Utc>,
    ) -> Result<Vec<WireSignature>, String> {
        if !self
            .callers
            .iter()
            .any(|c| c.uid == uid && c.roles.iter().any(|r| r == role))
        {
            return Err(format!("uid {uid} may not have {role} signed"));
        }
        if role == LOG_ROLE {
            let log = self
                .log
                .as_ref()
                .ok_or_else(|| "this agent holds no log key".to_owned())?;
            return log.sign_checkpoint(signed).map(|s| vec![s]);
        }
        let keys = self
            .keys
            .get(role)
            .filter(|k| !k.is_empty())
            .ok_or_else(|| format!("this agent holds no {role} key"))?;
        let ty = signed.get("_type").and_then(Value::as_str);
        if ty != Some(role) {
            return Err(format!(
                "the document is a {} (its _type), not a {role}",
                ty.unwrap_or("document without _type")
            ));
        }
        let version = signed
            .get("version")
            .and_then(Value::as_u64)
            .ok_or("the document has no version")?;
        let expires = signed
            .get("expires")
            .and_then(Value::as_str)
            .and_then(|s| DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.with_timezone(&Utc))
            .ok_or("the document has no valid expires")?;
        let max_days = match role {
            "timestamp" => self.max_expiry.timestamp,
            _ => self.max_expiry.snapshot,
        };
        if expires <= now {
            return Err(format!("it expires in the past ({expires})"));
        }
        if expires > now + chrono::Duration::days(i64::from(max_days)) {
            return Err(format!(
                "it expires {expires}, more than {max_days} days ahead"
            ));
        }
        let canonical =
            sealwright_crypto::canonical::to_canonical_json(signed).map_err(|e| e.to_string())?;
        let mut last = self
            .last_versions
            .lock()
            .map_err(|_| "agent state poisoned".to_owned())?;
        match last.get(role) {
            Some(&prev) if version <= prev => {
                return Err(format!(
                    "version {version} is not above {prev}, the last {role} this agent signed"
                ));
            }
            Some(&prev) if version - prev > self.max_version_step => {
                return Err(format!(
                    "version {version} jumps more than {} above {prev}, the last {role} this agent signed (max_version_step)",
                    self.max_version_step
                ));
            }
            None if version > MAX_FIRST_VERSION => {
                return Err(format!(
                    "version {version} is above {MAX_FIRST_VERSION}, the highest first version this agent signs"
                ));
            }
            _ => {}
        }
        // The version is recorded before any signature leaves the agent.
        last.insert(role.to_owned(), version);
        let state = serde_json::to_vec_pretty(&*last).map_err(|e| e.to_string())?;
        fsutil::write_atomic(&self.state_path, &state)
            .map_err(|e| format!("cannot record the signed version: {e}"))?;
        keys.iter()
            .map(|k| {
                k.sign(&canonical)
                    .map(|sig| WireSignature {
                        keyid: k.keyid().to_owned(),
                        sig: hex::encode(sig),
                    })
                    .map_err(|e| e.to_string())
            })
            .collect()
    }

    /// Appends to the audit log, as `uid:UID`.
    fn record(
        &self,
        uid: u32,
        action: &str,
        subject: &str,
        details: Value,
    ) -> Result<(), sealwright_store::AuditError> {
        let mut log = self
            .audit
            .lock()
            .map_err(|_| sealwright_store::AuditError::Invalid("audit log lock poisoned".into()))?;
        log.append(&sealwright_store::NewRecord {
            actor: &format!("uid:{uid}"),
            action,
            subject,
            details,
        })
        .map(|_| ())
    }
}

/// The last checkpoint the log key signed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct SignedHead {
    origin: String,
    size: u64,
    /// Base64 root.
    root: String,
}

/// The transparency log's key, and the last head it signed.
#[derive(Debug)]
struct LogKey {
    key: Box<dyn Signer>,
    verifier: sealwright_tlog::Verifier,
    state_path: PathBuf,
    last: Mutex<Option<SignedHead>>,
}

/// Most hashes in a consistency proof (a tree of 2^64 leaves needs fewer).
const MAX_PROOF_HASHES: usize = 128;

impl LogKey {
    fn new(key: Box<dyn Signer>, origin: &str, state_path: PathBuf) -> Result<Self, AgentError> {
        let public = key.public_key().ed25519_bytes().ok_or_else(|| {
            AgentError::Protocol(
                "the log key must be Ed25519 (checkpoints are c2sp.org/signed-note Ed25519)".into(),
            )
        })?;
        let verifier =
            sealwright_tlog::Verifier::new(origin, sealwright_tlog::note::KeyKind::Ed25519, public)
                .map_err(|e| AgentError::Protocol(e.to_string()))?;
        let last = match fsutil::read_capped(&state_path, 64 * 1024) {
            Ok(bytes) => Some(serde_json::from_slice(&bytes).map_err(|e| {
                AgentError::Protocol(format!(
                    "{} is corrupt ({e}); it stops the log key from signing a fork, restore it rather than delete it",
                    state_path.display()
                ))
            })?),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io(format!("reading {}", state_path.display()))(e)),
        };
        Ok(LogKey {
            key,
            verifier,
            state_path,
            last: Mutex::new(last),
        })
    }

    /// The size of the last checkpoint signed.
    fn last_size(&self) -> Option<u64> {
        self.last.lock().ok()?.as_ref().map(|h| h.size)
    }

    /// Signs the checkpoint in `request` if it extends the last one signed (module notes).
    fn sign_checkpoint(&self, request: &Value) -> Result<WireSignature, String> {
        use base64::Engine;
        use sealwright_tlog::merkle;
        let b64 = &base64::engine::general_purpose::STANDARD;
        let text = request
            .get("checkpoint")
            .and_then(Value::as_str)
            .ok_or("a log request carries a checkpoint")?;
        let cp = sealwright_tlog::Checkpoint::parse(text).map_err(|e| e.to_string())?;
        if cp.origin != self.verifier.name() {
            return Err(format!(
                "the checkpoint is for {}, this key signs only {}",
                cp.origin,
                self.verifier.name()
            ));
        }
        if !cp.extensions.is_empty() {
            return Err("checkpoints with extension lines are not signed".into());
        }
        let proof: Vec<merkle::Hash> = match request.get("consistency") {
            None => Vec::new(),
            Some(Value::Array(items)) if items.len() <= MAX_PROOF_HASHES => items
                .iter()
                .map(|h| {
                    h.as_str()
                        .and_then(|h| b64.decode(h).ok())
                        .and_then(|h| h.try_into().ok())
                        .ok_or_else(|| "a consistency hash is not base64 of 32 bytes".to_owned())
                })
                .collect::<Result<_, _>>()?,
            Some(_) => return Err("consistency is a list of at most 128 hashes".into()),
        };
        let mut last = self
            .last
            .lock()
            .map_err(|_| "agent state poisoned".to_owned())?;
        if cp.size == 0 && cp.root != merkle::empty_root() {
            return Err("an empty tree has the empty root".into());
        }
        match last.as_ref() {
            Some(prev) if prev.origin != cp.origin => {
                return Err("the state file is for another origin".into());
            }
            Some(prev) if prev.size > 0 => {
                let prev_root: merkle::Hash = b64
                    .decode(&prev.root)
                    .ok()
                    .and_then(|r| r.try_into().ok())
                    .ok_or("the log state's root is corrupt")?;
                merkle::verify_consistency(prev.size, cp.size, &proof, &prev_root, &cp.root)
                    .map_err(|e| {
                        format!(
                            "refusing to fork the log: size {} does not extend the last signed size {} ({e})",
                            cp.size, prev.size
                        )
                    })?;
            }
            // Every tree extends the empty one; nothing to prove.
            _ if !proof.is_empty() => {
                return Err("a checkpoint after the empty tree carries no proof".into());
            }
            _ => {}
        }
        // The head is recorded before any signature leaves the agent.
        let head = SignedHead {
            origin: cp.origin.clone(),
            size: cp.size,
            root: b64.encode(cp.root),
        };
        let state = serde_json::to_vec_pretty(&head).map_err(|e| e.to_string())?;
        fsutil::write_atomic(&self.state_path, &state)
            .map_err(|e| format!("cannot record the signed checkpoint: {e}"))?;
        *last = Some(head);
        let sig = self.key.sign(text.as_bytes()).map_err(|e| e.to_string())?;
        Ok(WireSignature {
            keyid: self.verifier.vkey(),
            sig: hex::encode(sig),
        })
    }
}

/// Asks the agent at `socket` to sign `checkpoint` (which extends the last one it signed by
/// `consistency`) with the log key `log`; returns the note's signature line, checked.
pub fn request_checkpoint_signature(
    socket: &Path,
    log: &sealwright_tlog::Verifier,
    checkpoint: &str,
    consistency: &[sealwright_tlog::Hash],
) -> Result<sealwright_tlog::note::NoteSignature, AgentError> {
    use base64::Engine;
    let b64 = &base64::engine::general_purpose::STANDARD;
    let request = serde_json::json!({
        "checkpoint": checkpoint,
        "consistency": consistency.iter().map(|h| b64.encode(h)).collect::<Vec<_>>(),
    });
    let answer = exchange(socket, LOG_ROLE, &request)?;
    if let (false, Some(signed_size)) = (answer.ok, answer.log_size) {
        return Err(AgentError::LogSigned {
            signed_size,
            reason: answer.error.unwrap_or_default(),
        });
    }
    let sigs = signatures_of(answer)?;
    let (_, sig) = sigs
        .into_iter()
        .find(|(vkey, _)| *vkey == log.vkey())
        .ok_or_else(|| AgentError::Protocol(format!("the agent does not hold {}", log.vkey())))?;
    let line = sealwright_tlog::note::NoteSignature {
        name: log.name().to_owned(),
        key_id: log.key_id(),
        signature: sig,
    };
    let mut note =
        sealwright_tlog::Note::new(checkpoint).map_err(|e| AgentError::Protocol(e.to_string()))?;
    note.add_signature(line.clone());
    note.verify(std::slice::from_ref(log))
        .map_err(|e| AgentError::Protocol(format!("the agent's checkpoint signature: {e}")))?;
    Ok(line)
}

/// A request frame's content: the role and the `signed` object to sign. Untrusted bytes
/// from any process that may connect to the socket.
pub fn parse_request(frame: &[u8]) -> Result<(String, Value), String> {
    serde_json::from_slice::<Request>(frame)
        .map(|r| (r.role, r.signed))
        .map_err(|e| e.to_string())
}

/// Reads one frame (4-byte big-endian length, then at most [`MAX_FRAME`] bytes).
pub fn read_frame(stream: &mut impl Read) -> std::io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    stream.read_exact(&mut len)?;
    let len = u32::from_be_bytes(len);
    if len > MAX_FRAME {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("frame of {len} bytes is over the {MAX_FRAME}-byte limit"),
        ));
    }
    let mut buf = vec![0u8; len as usize];
    stream.read_exact(&mut buf)?;
    Ok(buf)
}

fn write_frame(stream: &mut impl Write, bytes: &[u8]) -> std::io::Result<()> {
    let len = u32::try_from(bytes.len())
        .ok()
        .filter(|l| *l <= MAX_FRAME)
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::InvalidData, "frame too large"))?;
    stream.write_all(&len.to_be_bytes())?;
    stream.write_all(bytes)?;
    stream.flush()
}

/// Opens the keys `config` names (their file stems are their names, for passphrase
/// prompts) and binds its socket: an agent ready for [`serve`].
pub fn start(
    config: &AgentConfig,
    keyring: &crate::keyring::Keyring<'_>,
) -> Result<(Arc<Agent>, UnixListener), AgentError> {
    let mut keys: Vec<(String, Box<dyn Signer>)> = Vec::new();
    for k in &config.keys {
        let key: Box<dyn Signer> =
            match (&k.file, &k.pkcs11) {
                (Some(file), _) => {
                    let name = file
                        .file_stem()
                        .map(|s| s.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    Box::new(
                        keyring
                            .open_file(file, &name)
                            .map_err(|source| AgentError::Key {
                                role: k.role.clone(),
                                file: file.clone(),
                                source,
                            })?,
                    )
                }
                (None, Some(uri)) => {
                    Box::new(keyring.open_token(&k.role, uri).map_err(|source| {
                        AgentError::Key {
                            role: k.role.clone(),
                            file: PathBuf::from(uri),
                            source,
                        }
                    })?)
                }
                (None, None) => {
                    return Err(AgentError::Protocol(format!(
                        "the {} key has no file or pkcs11 location",
                        k.role
                    )))
                }
            };
        keys.push((k.role.clone(), key));
    }
    let agent = Arc::new(Agent::new(config, keys)?);
    let listener = bind(&config.socket)?;
    Ok((agent, listener))
}

/// Binds the agent's socket: its directory is created 0700, the socket is 0600, and a
/// stale socket is replaced only when nothing answers on it.
pub fn bind(socket: &Path) -> Result<UnixListener, AgentError> {
    let dir = socket.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io(format!("creating {}", dir.display())))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(io(format!("restricting {}", dir.display())))?;
    if socket.exists() {
        if UnixStream::connect(socket).is_ok() {
            return Err(AgentError::Protocol(format!(
                "another agent is already listening on {}",
                socket.display()
            )));
        }
        std::fs::remove_file(socket).map_err(io(format!("removing stale {}", socket.display())))?;
    }
    let listener =
        UnixListener::bind(socket).map_err(io(format!("listening on {}", socket.display())))?;
    std::fs::set_permissions(socket, std::fs::Permissions::from_mode(0o600))
        .map_err(io(format!("restricting {}", socket.display())))?;
    Ok(listener)
}

/// Serves requests until `stop` is set, then removes the socket.
pub fn serve(
    agent: Arc<Agent>,
    listener: UnixListener,
    socket: &Path,
    stop: Arc<AtomicBool>,
) -> Result<(), AgentError> {
    listener
        .set_nonblocking(true)
        .map_err(io("configuring the socket"))?;
    // Waiting in poll(2), not sleeping between tries: a signer that answers only at its
    // next wake-up adds that delay to every signature (two per push).
    let check_stop = rustix::event::Timespec {
        tv_sec: 0,
        tv_nsec: 200_000_000,
    };
    while !stop.load(Ordering::SeqCst) {
        let mut ready = [rustix::event::PollFd::new(
            &listener,
            rustix::event::PollFlags::IN,
        )];
        match rustix::event::poll(&mut ready, Some(&check_stop)) {
            Ok(0) | Err(rustix::io::Errno::INTR) => continue,
            Ok(_) => {}
            Err(e) => return Err(io("waiting for a connection")(e.into())),
        }
        match listener.accept() {
            Ok((stream, _)) => {
                let agent = Arc::clone(&agent);
                std::thread::spawn(move || {
                    let _ = handle(&agent, stream);
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(io("accepting a connection")(e)),
        }
    }
    let _ = std::fs::remove_file(socket);
    Ok(())
}

fn handle(agent: &Agent, mut stream: UnixStream) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let uid = rustix::net::sockopt::socket_peercred(&stream)?.uid.as_raw();
    let frame = match read_frame(&mut stream) {
        // A connection closed without a byte asked for nothing (a liveness probe).
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
        other => other,
    };
    let answer = match frame
        .map_err(|e| e.to_string())
        .and_then(|b| parse_request(&b))
    {
        Ok((role, signed)) => agent.decide(uid, &role, &signed, Utc::now()),
        Err(e) => {
            let reason = format!("unreadable request: {e}");
            let _ = agent.record(
                uid,
                "sign-refused",
                "request",
                serde_json::json!({"error": reason}),
            );
            Answer {
                ok: false,
                signatures: vec![],
                error: Some(reason),
                log_size: None,
            }
        }
    };
    write_frame(&mut stream, &serde_json::to_vec(&answer)?)
}

/// One request to the agent at `socket`, and its answer.
fn exchange(socket: &Path, role: &str, signed: &Value) -> Result<Answer, AgentError> {
    let what = || format!("talking to the signer agent at {}", socket.display());
    let mut stream = UnixStream::connect(socket).map_err(io(what()))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .map_err(io(what()))?;
    let req = serde_json::to_vec(&Request {
        role: role.to_owned(),
        signed: signed.clone(),
    })
    .map_err(|e| AgentError::Protocol(e.to_string()))?;
    write_frame(&mut stream, &req).map_err(io(what()))?;
    serde_json::from_slice(&read_frame(&mut stream).map_err(io(what()))?)
        .map_err(|e| AgentError::Protocol(format!("unreadable answer: {e}")))
}

/// The signatures of an answer: (keyid, signature bytes).
fn signatures_of(answer: Answer) -> Result<Vec<(String, Vec<u8>)>, AgentError> {
    if !answer.ok {
        return Err(AgentError::Refused(
            answer.error.unwrap_or_else(|| "no reason given".into()),
        ));
    }
    answer
        .signatures
        .into_iter()
        .map(|s| {
            hex::decode(&s.sig)
                .map(|b| (s.keyid, b))
                .map_err(|_| AgentError::Protocol("signature is not hex".into()))
        })
        .collect()
}

/// Asks the agent at `socket` to sign `signed` as `role`; returns (keyid, signature bytes).
pub fn request_signatures(
    socket: &Path,
    role: &str,
    signed: &Value,
) -> Result<Vec<(String, Vec<u8>)>, AgentError> {
    signatures_of(exchange(socket, role, signed)?)
}

/// A [`Signer`] whose private key lives in a signer agent: the publisher signs online roles
/// through it without ever holding the key.
#[derive(Debug)]
pub struct AgentSigner {
    socket: PathBuf,
    public: PublicKey,
    keyid: String,
}

impl AgentSigner {
    /// The key `public` (id `keyid`) held by the agent at `socket`.
    pub fn new(socket: PathBuf, public: PublicKey, keyid: String) -> Self {
        AgentSigner {
            socket,
            public,
            keyid,
        }
    }
}

impl Signer for AgentSigner {
    fn public_key(&self) -> &PublicKey {
        &self.public
    }

    fn keyid(&self) -> &str {
        &self.keyid
    }

    /// `msg` is the canonical JSON of a `signed` object (what TUF signs); the agent gets the
    /// object, applies its rules, and signs its canonical form — the same bytes, which is
    /// checked here before the signature is used.
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, SignError> {
        let fail = |reason: String| SignError::Backend {
            keyid: self.keyid.clone(),
            reason,
        };
        let signed: Value =
            serde_json::from_slice(msg).map_err(|e| fail(format!("not a JSON document: {e}")))?;
        let role = signed
            .get("_type")
            .and_then(Value::as_str)
            .ok_or_else(|| fail("the document has no _type".into()))?
            .to_owned();
        let sigs =
            request_signatures(&self.socket, &role, &signed).map_err(|e| fail(e.to_string()))?;
        let (_, sig) = sigs
            .into_iter()
            .find(|(k, _)| k == &self.keyid)
            .ok_or_else(|| fail(format!("the agent does not hold key {}", self.keyid)))?;
        self.public
            .verify(msg, &sig)
            .map_err(|e| fail(format!("the agent's signature does not verify: {e}")))?;
        Ok(sig)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use base64::Engine;
    use sealwright_crypto::PrivateKey;
    use sealwright_tlog::merkle::{consistency_proof, leaf_hash, tree_root, Hash};

    const ORIGIN: &str = "example.com/log";

    fn log_agent(dir: &Path, key: PrivateKey) -> Result<Agent, AgentError> {
        let config = AgentConfig::parse(&format!(
            "socket = {:?}\n[[keys]]\nrole = \"log\"\nfile = \"unused\"\norigin = \"{ORIGIN}\"\n[[callers]]\nuid = 1000\nroles = [\"log\"]\n",
            dir.join("agent.sock")
        ))
        .unwrap();
        Agent::new(&config, vec![("log".into(), Box::new(key))])
    }

    /// The checkpoint of the first `size` entries of a log whose entries are `prefix i`, and
    /// the consistency proof to it from `from`.
    fn head(prefix: &str, from: u64, size: u64) -> Value {
        let leaves: Vec<Hash> = (0..size)
            .map(|i| leaf_hash(format!("{prefix} {i}").as_bytes()))
            .collect();
        let mut src: &[Hash] = &leaves;
        let root = tree_root(&mut src, size).unwrap();
        let proof = consistency_proof(&mut src, from, size).unwrap();
        let b64 = &base64::engine::general_purpose::STANDARD;
        let cp = sealwright_tlog::Checkpoint {
            origin: ORIGIN.into(),
            size,
            root,
            extensions: vec![],
        };
        serde_json::json!({
            "checkpoint": cp.to_text(),
            "consistency": proof.iter().map(|h| b64.encode(h)).collect::<Vec<_>>(),
        })
    }

    fn sign(agent: &Agent, request: &Value) -> Result<(), String> {
        let answer = agent.decide(1000, LOG_ROLE, request, Utc::now());
        if !answer.ok {
            return Err(answer.error.unwrap_or_default());
        }
        let vkey = sealwright_tlog::Verifier::from_vkey(&agent.log_vkey().unwrap()).unwrap();
        let text = request["checkpoint"].as_str().unwrap();
        let mut note = sealwright_tlog::Note::new(text).unwrap();
        note.add_signature(sealwright_tlog::note::NoteSignature {
            name: ORIGIN.into(),
            key_id: vkey.key_id(),
            signature: hex::decode(&answer.signatures[0].sig).unwrap(),
        });
        note.verify(&[vkey]).map(|_| ()).map_err(|e| e.to_string())
    }

    #[test]
    fn the_log_key_signs_only_extensions_of_what_it_signed() {
        let dir = tempfile::tempdir().unwrap();
        let key = PrivateKey::generate(sealwright_crypto::Algorithm::Ed25519).unwrap();
        let der = key.to_pkcs8_v1_der().unwrap();
        let agent = log_agent(dir.path(), key).unwrap();
        sign(&agent, &head("a", 0, 0)).unwrap();
        sign(&agent, &head("a", 0, 3)).unwrap();
        // Same head again: fine. Same size, other root: a fork.
        sign(&agent, &head("a", 3, 3)).unwrap();
        assert!(sign(&agent, &head("b", 3, 3)).unwrap_err().contains("fork"));
        // A larger tree with another history, with a proof that is valid for *its* history.
        assert!(sign(&agent, &head("b", 3, 7)).unwrap_err().contains("fork"));
        // Smaller, or without its proof.
        assert!(sign(&agent, &head("a", 2, 2)).is_err());
        let mut no_proof = head("a", 3, 7);
        no_proof["consistency"] = serde_json::json!([]);
        assert!(sign(&agent, &no_proof).is_err());
        sign(&agent, &head("a", 3, 7)).unwrap();
        // Another origin, extension lines, another caller.
        let mut other = head("a", 7, 8);
        other["checkpoint"] = Value::String(
            other["checkpoint"]
                .as_str()
                .unwrap()
                .replace(ORIGIN, "example.org/log"),
        );
        assert!(sign(&agent, &other).unwrap_err().contains("signs only"));
        let mut ext = head("a", 7, 8);
        ext["checkpoint"] =
            Value::String(format!("{}extra\n", ext["checkpoint"].as_str().unwrap()));
        assert!(sign(&agent, &ext).is_err());
        assert!(
            !agent
                .decide(1001, LOG_ROLE, &head("a", 7, 8), Utc::now())
                .ok
        );
        // Restarted, the agent still remembers size 7 and its root.
        drop(agent);
        let again = log_agent(dir.path(), PrivateKey::from_pkcs8_der(&der).unwrap()).unwrap();
        assert!(sign(&again, &head("b", 7, 9)).unwrap_err().contains("fork"));
        sign(&again, &head("a", 7, 9)).unwrap();
    }

    #[test]
    fn the_log_key_is_ed25519_with_an_origin() {
        let dir = tempfile::tempdir().unwrap();
        let ecdsa = PrivateKey::generate(sealwright_crypto::Algorithm::EcdsaP256Sha256).unwrap();
        assert!(log_agent(dir.path(), ecdsa).is_err());
        let without = "socket = \"/tmp/x.sock\"\n[[keys]]\nrole = \"log\"\nfile = \"k\"\n[[callers]]\nuid = 1\nroles = [\"log\"]\n";
        assert!(AgentConfig::parse(without).is_err());
        let spaced = without.replace("file = \"k\"", "file = \"k\"\norigin = \"a b\"");
        assert!(AgentConfig::parse(&spaced).is_err());
        let on_timestamp = without
            .replace("role = \"log\"", "role = \"timestamp\"")
            .replace("file = \"k\"", "file = \"k\"\norigin = \"a\"");
        assert!(AgentConfig::parse(&on_timestamp).is_err());
    }

    #[test]
    #[allow(clippy::unwrap_used)]
    fn the_documented_example_config_loads_as_is() {
        let config = AgentConfig::parse(EXAMPLE_CONFIG).unwrap();
        assert_eq!(config.keys.len(), 2);
        assert_eq!(config.callers[0].uid, 1000);
        assert_eq!(config.max_version_step, DEFAULT_MAX_VERSION_STEP);
        let docs = include_str!("../../../docs/signer.md");
        assert!(
            docs.contains(EXAMPLE_CONFIG),
            "docs/signer.md must show agent::EXAMPLE_CONFIG verbatim"
        );
    }
}
