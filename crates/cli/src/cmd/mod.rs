//! One module per subcommand.

pub mod add;
pub mod audit;
pub mod bundle;
pub mod client;
pub mod delegate;
pub mod init;
pub mod key;
pub mod offline;
pub mod publish;
pub mod push;
pub mod quickstart;
pub mod serve;
pub mod server;
pub mod server_init;
pub mod signer;
pub mod status;
pub mod token;
pub mod update;
pub mod verify;

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

    /// Appends a record to the repository's audit log (`REPO/audit.sqlite3`). A record
    /// that cannot be written fails the command: an action that leaves no trace is worse
    /// than one that has to be repeated.
    pub fn audit(
        &self,
        action: &str,
        subject: &str,
        details: serde_json::Value,
    ) -> anyhow::Result<()> {
        self.audit_in(&self.repo, action, subject, details)
    }

    /// [`Context::audit`] into the audit log of another data directory.
    pub fn audit_in(
        &self,
        dir: &std::path::Path,
        action: &str,
        subject: &str,
        details: serde_json::Value,
    ) -> anyhow::Result<()> {
        let actor = sealwright_store::audit::local_actor();
        sealwright_store::audit::record(
            dir,
            &sealwright_store::NewRecord {
                actor: &actor,
                action,
                subject,
                details,
            },
        )
        .context("writing the audit record (the action itself was done)")?;
        Ok(())
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
