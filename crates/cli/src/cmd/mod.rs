//! One module per subcommand.

pub mod add;
pub mod audit;
pub mod build;
pub mod bundle;
pub mod client;
pub mod delegate;
pub mod deps;
pub mod evidence;
pub mod init;
pub mod key;
pub mod log;
pub mod monitor;
pub mod offline;
pub mod publish;
pub mod push;
pub mod quickstart;
pub mod rebuild;
pub mod sbom;
pub mod serve;
pub mod server;
pub mod server_init;
pub mod shared_store;
pub mod signer;
pub mod stage_build;
pub mod status;
pub mod token;
pub mod update;
pub mod verify;
pub mod verify_provenance;
pub mod verify_release;
pub mod witness;

use std::path::PathBuf;

use anyhow::Context as _;

use crate::passphrase::CliPassphrase;

/// Largest policy or public-key file read ([`Context::read_text`]).
const MAX_TEXT_FILE: u64 = 1024 * 1024;

/// Global options every command sees.
#[derive(Debug)]
pub struct Context {
    /// Repository directory.
    pub repo: PathBuf,
    /// `--passphrase-env`.
    pub passphrase_env: Option<String>,
    /// `--json`.
    pub json: bool,
}

impl Context {
    /// The passphrase source for this invocation.
    pub fn passphrases(&self) -> anyhow::Result<CliPassphrase> {
        CliPassphrase::from_env(self.passphrase_env.as_deref())
    }

    /// A trusted root given on the command line, capped at the size the trust engine
    /// accepts for root metadata.
    pub fn read_root(path: &std::path::Path) -> anyhow::Result<Vec<u8>> {
        let max = sealwright_tuf::engine::Limits::default().root as u64;
        sealwright_repo::fsutil::read_capped(path, max)
            .with_context(|| format!("reading the trusted root {}", path.display()))
    }

    /// A small text file given on the command line (a policy, a public key), size-capped.
    pub fn read_text(path: &std::path::Path) -> anyhow::Result<String> {
        let bytes = sealwright_repo::fsutil::read_capped(path, MAX_TEXT_FILE)
            .with_context(|| format!("reading {}", path.display()))?;
        String::from_utf8(bytes).with_context(|| format!("{} is not UTF-8 text", path.display()))
    }

    /// A private key file (PKCS#8 PEM, read as a secret): an encrypted one is opened with
    /// the passphrase for `what` from the usual sources, a plain one as it is.
    pub fn open_private_key(
        &self,
        path: &std::path::Path,
        what: &str,
    ) -> anyhow::Result<sealwright_crypto::PrivateKey> {
        let pem = sealwright_repo::fsutil::read_secret(path, 64 * 1024)
            .with_context(|| format!("reading {}", path.display()))?;
        let pem = String::from_utf8(pem).context("the key file is not UTF-8")?;
        let passphrase = if sealwright_crypto::keyfile::is_encrypted(&pem) {
            Some(sealwright_repo::keyring::PassphraseSource::existing(
                &self.passphrases()?,
                what,
                0,
            )?)
        } else {
            None
        };
        sealwright_crypto::keyfile::read_private_key(&pem, passphrase.as_ref())
            .with_context(|| format!("opening {}", path.display()))
    }

    /// The repository's policy, with a hint when the directory is not a repository.
    pub fn policy(&self) -> anyhow::Result<sealwright_repo::Policy> {
        if !self
            .repo
            .join(sealwright_repo::policy::POLICY_FILE)
            .exists()
        {
            anyhow::bail!(
                "{} is not a Sealwright repository (no sealwright.toml): run `sealwright init DIR` or pass --repo DIR",
                self.repo.display()
            );
        }
        sealwright_repo::Policy::load(&self.repo).context("loading the policy")
    }
}
