//! Private keys of a repository: the file backend, and the passphrase sources that open it.
//!
//! Key files live in `DIR/keys/NAME.pem`, always encrypted (PKCS#8 PBES2, see
//! `sealwright_crypto::keyfile`), created with mode 0600. A passphrase that opened one key is
//! tried first on the next, so a repository whose keys share a passphrase asks once.
//! Other backends implement [`sealwright_crypto::Signer`] and are selected by the `private`
//! location scheme of a policy key: `agent:SOCKET` (the signer agent) and `pkcs11:URI` (a
//! key on a hardware token, `sealwright_pkcs11`; its PIN from the URI's `pin-source` file or
//! a prompt, never from the passphrase file of key files).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use sealwright_crypto::keyfile::{self, encrypt_private_key, read_private_key, KeyFileError};
use sealwright_crypto::{Algorithm, Kdf, Passphrase, PrivateKey, Signer};

use crate::fsutil;
use crate::policy::{check_name, KeyEntry, Policy, PolicyError};

/// Where passphrases come from (prompt, file, environment); implemented by the CLI.
pub trait PassphraseSource: Send + Sync {
    /// The passphrase for an existing key `key_name`; `attempt` counts from 0.
    fn existing(&self, key_name: &str, attempt: u32) -> Result<Passphrase, KeyringError>;
    /// A passphrase for a new key (a prompt asks twice).
    fn new_key(&self, key_name: &str) -> Result<Passphrase, KeyringError>;
    /// Whether asking again can give a different answer (a prompt can; a file cannot).
    fn interactive(&self) -> bool;
}

/// A key could not be created or opened.
#[derive(Debug, thiserror::Error)]
pub enum KeyringError {
    /// Key file problem, with the file.
    #[error("{path}: {source}")]
    KeyFile {
        /// Which file.
        path: String,
        /// What went wrong.
        source: KeyFileError,
    },
    /// I/O problem, with the file.
    #[error("{path}: {source}")]
    Io {
        /// Which file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// No passphrase available.
    #[error("{0}")]
    Passphrase(String),
    /// Policy problem.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// Anything else about keys.
    #[error("{0}")]
    Other(String),
}

const MAX_PROMPT_ATTEMPTS: u32 = 3;

/// Opens the private keys a policy names.
pub struct Keyring<'a> {
    repo_dir: PathBuf,
    source: &'a dyn PassphraseSource,
    known_good: Mutex<Vec<Passphrase>>,
}

impl std::fmt::Debug for Keyring<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("repo_dir", &self.repo_dir)
            .finish_non_exhaustive()
    }
}

impl<'a> Keyring<'a> {
    /// The keyring of the repository at `repo_dir`.
    pub fn new(repo_dir: &Path, source: &'a dyn PassphraseSource) -> Self {
        Keyring {
            repo_dir: repo_dir.to_path_buf(),
            source,
            known_good: Mutex::new(Vec::new()),
        }
    }

    /// Whether opening a key may ask a person (then keys are opened one at a time).
    pub fn interactive(&self) -> bool {
        self.source.interactive()
    }

    /// Path of a `file:` location.
    pub fn file_path(&self, location: &str) -> Option<PathBuf> {
        location
            .strip_prefix("file:")
            .map(|rel| self.repo_dir.join(rel))
    }

    /// Opens key `name`; `Ok(None)` for an offline key (no private location in the policy).
    pub fn open(&self, policy: &Policy, name: &str) -> Result<Option<PrivateKey>, KeyringError> {
        let entry = policy
            .keys
            .get(name)
            .ok_or_else(|| KeyringError::Other(format!("unknown key {name:?}")))?;
        let Some(location) = &entry.private else {
            return Ok(None);
        };
        let path = self.file_path(location).ok_or_else(|| {
            KeyringError::Other(format!("key {name}: unsupported location {location}"))
        })?;
        let key = self.open_file(&path, name)?;
        if key.keyid() != entry.keyid {
            return Err(KeyringError::Other(format!(
                "key {name}: {} holds key {} but the policy expects {}",
                path.display(),
                key.keyid(),
                entry.keyid
            )));
        }
        Ok(Some(key))
    }

    /// A signer for key `name`: the key file, or for an `agent:SOCKET` location the signer
    /// agent holding it (the private key then never enters this process). `Ok(None)` for an
    /// offline key.
    pub fn open_signer(
        &self,
        policy: &Policy,
        name: &str,
    ) -> Result<Option<Box<dyn sealwright_crypto::Signer>>, KeyringError> {
        let entry = policy
            .keys
            .get(name)
            .ok_or_else(|| KeyringError::Other(format!("unknown key {name:?}")))?;
        if let Some(socket) = entry
            .private
            .as_deref()
            .and_then(|l| l.strip_prefix("agent:"))
        {
            let socket = self.repo_dir.join(socket);
            let public = entry
                .public_key()
                .map_err(|e| KeyringError::Other(format!("key {name}: {e}")))?;
            return Ok(Some(Box::new(crate::agent::AgentSigner::new(
                socket,
                public,
                entry.keyid.clone(),
            ))));
        }
        if let Some(uri) = entry
            .private
            .as_deref()
            .filter(|l| l.starts_with("pkcs11:"))
        {
            let signer = self.open_token(name, uri)?;
            if signer.keyid() != entry.keyid {
                return Err(KeyringError::Other(format!(
                    "key {name}: the token key at {uri} is {} but the policy expects {}",
                    signer.keyid(),
                    entry.keyid
                )));
            }
            return Ok(Some(Box::new(signer)));
        }
        Ok(self
            .open(policy, name)?
            .map(|k| Box::new(k) as Box<dyn sealwright_crypto::Signer>))
    }

    /// Asks the person at the terminal for a token's PIN (a passphrase file is for key
    /// files, never a PIN).
    fn pin_prompt(
        &self,
        name: &str,
    ) -> impl Fn(&str) -> Result<zeroize::Zeroizing<String>, String> + '_ {
        let name = name.to_owned();
        move |what: &str| {
            if !self.source.interactive() {
                return Err(format!(
                    "key {name}: no PIN for the {what}: add pin-source=FILE to its pkcs11: URI, or run on a terminal"
                ));
            }
            let pin = self
                .source
                .existing(&format!("{name} ({what})"), 0)
                .map_err(|e| e.to_string())?;
            Ok(zeroize::Zeroizing::new(
                String::from_utf8_lossy(pin.as_bytes()).into_owned(),
            ))
        }
    }

    /// Opens the token key at `uri` (key `name` of the policy).
    pub fn open_token(
        &self,
        name: &str,
        uri: &str,
    ) -> Result<sealwright_pkcs11::TokenSigner, KeyringError> {
        let parsed = sealwright_pkcs11::Pkcs11Uri::parse(uri)
            .map_err(|e| KeyringError::Other(format!("key {name}: {e}")))?;
        sealwright_pkcs11::TokenSigner::open(&parsed, &self.pin_prompt(name))
            .map_err(|e| KeyringError::Other(format!("key {name}: {e}")))
    }

    /// Generates key `name` on the token `uri` names (label `object=`); returns its policy
    /// entry, whose location is the URI naming exactly that key (with its `id=`).
    pub fn generate_on_token(
        &self,
        name: &str,
        uri: &str,
        algorithm: Algorithm,
    ) -> Result<KeyEntry, KeyringError> {
        check_name("key", name)?;
        let parsed = sealwright_pkcs11::Pkcs11Uri::parse(uri)
            .map_err(|e| KeyringError::Other(format!("key {name}: {e}")))?;
        let (signer, exact) =
            sealwright_pkcs11::TokenSigner::generate(&parsed, algorithm, &self.pin_prompt(name))
                .map_err(|e| KeyringError::Other(format!("key {name}: {e}")))?;
        Ok(KeyEntry::new(signer.public_key(), Some(exact.display()))?)
    }

    /// Opens an encrypted (or plain PKCS#8) key file, asking for its passphrase as needed.
    pub fn open_file(&self, path: &Path, name: &str) -> Result<PrivateKey, KeyringError> {
        let shown = path.display().to_string();
        let bytes = fsutil::read_secret(path, keyfile::MAX_KEY_FILE as u64).map_err(|source| {
            KeyringError::Io {
                path: shown.clone(),
                source,
            }
        })?;
        let pem = String::from_utf8(bytes).map_err(|_| KeyringError::KeyFile {
            path: shown.clone(),
            source: KeyFileError::NotPem("not UTF-8 text".into()),
        })?;
        if !keyfile::is_encrypted(&pem) {
            return read_private_key(&pem, None).map_err(|source| KeyringError::KeyFile {
                path: shown,
                source,
            });
        }
        let cached: Vec<Passphrase> = self
            .known_good
            .lock()
            .map(|g| g.clone())
            .unwrap_or_default();
        for pass in &cached {
            if let Ok(key) = read_private_key(&pem, Some(pass)) {
                return Ok(key);
            }
        }
        let mut attempt = 0;
        loop {
            let pass = self.source.existing(name, attempt)?;
            match read_private_key(&pem, Some(&pass)) {
                Ok(key) => {
                    if let Ok(mut g) = self.known_good.lock() {
                        g.push(pass);
                    }
                    return Ok(key);
                }
                Err(KeyFileError::WrongPassphraseOrCorrupt)
                    if self.source.interactive() && attempt + 1 < MAX_PROMPT_ATTEMPTS =>
                {
                    eprintln!("wrong passphrase for key {name}, try again");
                    attempt += 1;
                }
                Err(source) => {
                    return Err(KeyringError::KeyFile {
                        path: shown,
                        source,
                    })
                }
            }
        }
    }

    /// Generates key `name`, writes `keys/NAME.pem` (mode 0600, never overwriting), and
    /// returns its policy entry.
    pub fn generate(
        &self,
        name: &str,
        algorithm: Algorithm,
        kdf: Kdf,
    ) -> Result<(KeyEntry, PrivateKey), KeyringError> {
        check_name("key", name)?;
        let key =
            PrivateKey::generate(algorithm).map_err(|e| KeyringError::Other(e.to_string()))?;
        let pass = self.source.new_key(name)?;
        let entry = self.store(name, &key, &pass, kdf)?;
        if let Ok(mut g) = self.known_good.lock() {
            g.push(pass);
        }
        Ok((entry, key))
    }

    /// Encrypts `key` into `keys/NAME.pem` and returns its policy entry.
    pub fn store(
        &self,
        name: &str,
        key: &PrivateKey,
        pass: &Passphrase,
        kdf: Kdf,
    ) -> Result<KeyEntry, KeyringError> {
        check_name("key", name)?;
        let rel = format!("keys/{name}.pem");
        let path = self.repo_dir.join(&rel);
        let shown = path.display().to_string();
        let pem = encrypt_private_key(key, pass, kdf).map_err(|source| KeyringError::KeyFile {
            path: shown.clone(),
            source,
        })?;
        write_private_file(&path, pem.as_bytes()).map_err(|source| KeyringError::Io {
            path: shown,
            source,
        })?;
        Ok(KeyEntry::new(
            key.public_key(),
            Some(format!("file:{rel}")),
        )?)
    }
}

/// Creates a file readable only by its owner; refuses to replace an existing one.
fn write_private_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    if let Some(dir) = path.parent() {
        fsutil::sync_dir(dir)?;
    }
    Ok(())
}

/// A fixed passphrase (tests, quickstart, `SEALWRIGHT_PASSPHRASE_FILE`).
#[derive(Debug)]
pub struct FixedPassphrase(pub Passphrase);

impl PassphraseSource for FixedPassphrase {
    fn existing(&self, _key_name: &str, _attempt: u32) -> Result<Passphrase, KeyringError> {
        Ok(self.0.clone())
    }
    fn new_key(&self, _key_name: &str) -> Result<Passphrase, KeyringError> {
        Ok(self.0.clone())
    }
    fn interactive(&self) -> bool {
        false
    }
}
