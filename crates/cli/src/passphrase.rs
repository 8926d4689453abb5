//! Where the CLI gets passphrases: `--passphrase-env NAME`, `SEALWRIGHT_PASSPHRASE_FILE`, or
//! a prompt on the terminal — in that order. Nothing else; never a command-line argument
//! (it would show in `ps` and shell history).

use std::io::IsTerminal;

use sealwright_crypto::Passphrase;
use sealwright_repo::keyring::{KeyringError, PassphraseSource};
use zeroize::Zeroizing;

/// The environment variable naming a file that holds the passphrase.
pub const PASSPHRASE_FILE_ENV: &str = "SEALWRIGHT_PASSPHRASE_FILE";
const MAX_PASSPHRASE_FILE: u64 = 4096;

/// The CLI's passphrase source.
#[derive(Debug)]
pub enum CliPassphrase {
    /// A passphrase read once from a file or the environment.
    Fixed(Passphrase),
    /// Ask on the terminal.
    Prompt,
}

impl CliPassphrase {
    /// Chooses the source from the flags and environment.
    pub fn from_env(passphrase_env: Option<&str>) -> anyhow::Result<Self> {
        if let Some(var) = passphrase_env {
            let value = std::env::var(var).map_err(|_| {
                anyhow::anyhow!("--passphrase-env {var}: that environment variable is not set")
            })?;
            return Ok(CliPassphrase::Fixed(Passphrase::new(value)));
        }
        if let Some(path) = std::env::var_os(PASSPHRASE_FILE_ENV) {
            let path = std::path::PathBuf::from(path);
            let bytes = Zeroizing::new(
                sealwright_repo::fsutil::read_capped(&path, MAX_PASSPHRASE_FILE).map_err(|e| {
                    anyhow::anyhow!("{PASSPHRASE_FILE_ENV}={}: {e}", path.display())
                })?,
            );
            let text = String::from_utf8(bytes.to_vec()).map_err(|_| {
                anyhow::anyhow!("{PASSPHRASE_FILE_ENV}: the file is not UTF-8 text")
            })?;
            return Ok(CliPassphrase::Fixed(Passphrase::new(text)));
        }
        Ok(CliPassphrase::Prompt)
    }
}

fn prompt(message: &str) -> Result<Passphrase, KeyringError> {
    if !std::io::stdin().is_terminal() {
        return Err(KeyringError::Passphrase(format!(
            "{message} but there is no terminal to ask on: set {PASSPHRASE_FILE_ENV} or use --passphrase-env NAME"
        )));
    }
    rpassword::prompt_password(format!("{message}: "))
        .map(Passphrase::new)
        .map_err(|e| KeyringError::Passphrase(format!("cannot read passphrase: {e}")))
}

impl PassphraseSource for CliPassphrase {
    fn existing(&self, key_name: &str, _attempt: u32) -> Result<Passphrase, KeyringError> {
        match self {
            CliPassphrase::Fixed(p) => Ok(p.clone()),
            CliPassphrase::Prompt => prompt(&format!("Passphrase for key {key_name}")),
        }
    }

    fn new_key(&self, key_name: &str) -> Result<Passphrase, KeyringError> {
        self.new_passphrase(&format!("key {key_name}"))
    }

    fn interactive(&self) -> bool {
        matches!(self, CliPassphrase::Prompt)
    }
}

impl CliPassphrase {
    /// A new passphrase for `what` (asked twice when prompting; never empty).
    pub fn new_passphrase(&self, what: &str) -> Result<Passphrase, KeyringError> {
        match self {
            CliPassphrase::Fixed(p) => Ok(p.clone()),
            CliPassphrase::Prompt => loop {
                let first = prompt(&format!("New passphrase for {what}"))?;
                if first.is_empty() {
                    eprintln!("an empty passphrase would leave the key unprotected; try again");
                    continue;
                }
                let second = prompt("Repeat it")?;
                if first.as_bytes() == second.as_bytes() {
                    return Ok(first);
                }
                eprintln!("the passphrases differ; try again");
            },
        }
    }
}
