//! `sealwright server-init DIR`: a data directory for `sealwright serve --push`, made from
//! this repository (see `sealwright_repo::server_dir` for what is copied and what is not).

use std::path::PathBuf;

use super::Context;
use crate::output::emit;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The new data directory (absent or empty).
    dir: PathBuf,
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<()> {
    let made = sealwright_repo::server_dir::create_server_dir(&ctx.repo, &args.dir)?;
    emit(ctx.json, &made, || {
        println!(
            "{}: server data directory with {} published file(s) ({} bytes) and no key",
            made.dir.display(),
            made.files,
            made.bytes
        );
        println!(
            "it signs snapshot and timestamp through {}",
            made.agent_sockets.join(", ")
        );
        println!("next, on the server:");
        println!(
            "  sealwright --repo {} token add NAME --role targets   # one per publisher",
            made.dir.display()
        );
        println!(
            "  sealwright --repo {} serve --push --cert cert.pem --key key.pem",
            made.dir.display()
        );
        println!(
            "then, here: sealwright --repo {} push --server https://HOST:PORT --token-file FILE",
            ctx.repo.display()
        );
    })
}
