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
