//! `sealwright log`: the transparency log of a server directory.

use anyhow::Context as _;
use serde::Serialize;

use super::Context;
use crate::output::emit;

#[derive(Debug, clap::Subcommand)]
pub enum LogCommand {
    /// Print the log's verifier key (`origin+id+key`, c2sp.org/signed-note): give it to
    /// devices (`client init --log-key`), witnesses and monitors. Run on the server's
    /// directory (`--repo SERVER_DIR`); the private key stays in the signer agent.
    Key,
    /// Have each new checkpoint cosigned by a witness (c2sp.org/tlog-witness): the server
    /// submits it to URL/add-checkpoint with a consistency proof and publishes the
    /// cosignatures that verify with VKEY. Run on the server's directory (`--repo`).
    AddWitness {
        /// The witness's submission prefix, e.g. http://witness.example:7380.
        #[arg(long)]
        url: String,
        /// The witness's verifier key (`sealwright witness key`, or the witness's own tool).
        #[arg(long)]
        vkey: String,
    },
}

/// What a device or auditor requires of the transparency log: one set of options for
/// `client init` and `verify-release`.
#[derive(Debug, clap::Args)]
pub struct RequireLogArgs {
    /// Require the transparency log with this key (`sealwright log key` on the server): a
    /// release counts only when the log shows the artifact and the metadata listing it.
    #[arg(long, value_name = "VKEY")]
    log_key: Option<String>,
    /// A witness whose cosignature counts towards --witness-quorum; repeatable.
    #[arg(long = "witness", value_name = "VKEY", requires = "log_key")]
    witnesses: Vec<String>,
    /// How many of the --witness keys must have cosigned the log's checkpoint.
    #[arg(long, default_value_t = 0, requires = "log_key")]
    witness_quorum: usize,
}

impl RequireLogArgs {
    /// The policy these options give (none without --log-key), checked.
    pub fn policy(&self) -> anyhow::Result<Option<sealwright_client::install::LogPolicy>> {
        self.log_key
            .as_deref()
            .map(|key| {
                sealwright_client::install::LogPolicy::new(
                    key,
                    &self.witnesses,
                    self.witness_quorum,
                )
            })
            .transpose()
            .map_err(anyhow::Error::msg)
    }
}

#[derive(Serialize)]
struct LogKey {
    origin: String,
    vkey: String,
}

pub fn run(ctx: &Context, cmd: LogCommand) -> anyhow::Result<()> {
    match cmd {
        LogCommand::Key => {
            let path = ctx.repo.join(sealwright_repo::server_dir::LOG_VKEY_FILE);
            let bytes = sealwright_repo::fsutil::read_capped(&path, 64 * 1024).with_context(|| {
                format!(
                    "reading {} (a server directory made by `sealwright server setup` has it; pass it with --repo)",
                    path.display()
                )
            })?;
            let text = String::from_utf8(bytes).context("the log key file is not UTF-8")?;
            let vkey = text.trim_end();
            let verifier = sealwright_tlog::Verifier::from_vkey(vkey)
                .with_context(|| format!("{} does not hold a verifier key", path.display()))?;
            let key = LogKey {
                origin: verifier.name().to_owned(),
                vkey: verifier.vkey(),
            };
            emit(ctx.json, &key, || println!("{}", key.vkey))
        }
        LogCommand::AddWitness { url, vkey } => {
            if !ctx
                .repo
                .join(sealwright_repo::server_dir::LOG_VKEY_FILE)
                .is_file()
            {
                anyhow::bail!(
                    "{} has no transparency log (a server directory made by `sealwright server setup` has one)",
                    ctx.repo.display()
                );
            }
            let witness = sealwright_server::translog::Witnesses::add(&ctx.repo, &url, &vkey)?;
            emit(
                ctx.json,
                &serde_json::json!({"url": url, "vkey": witness.vkey()}),
                || {
                    println!(
                        "checkpoints will be submitted to {} ({url})",
                        witness.name()
                    )
                },
            )
        }
    }
}
