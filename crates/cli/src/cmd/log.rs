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
    }
}
