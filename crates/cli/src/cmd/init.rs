//! `sealwright init DIR`: a new repository with one key per top-level role, published as
//! version 1 so that `published/` is servable at once.

use std::path::PathBuf;

use anyhow::bail;

use sealwright_crypto::Algorithm;
use sealwright_repo::policy::{Period, Policy};
use sealwright_repo::KeyStore;

use super::Context;
use crate::output::emit;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directory to create (must not exist or be empty).
    dir: PathBuf,
    /// Key type for the generated role keys: ed25519, ecdsa or rsa.
    #[arg(long = "key-type", default_value = "ed25519")]
    key_type: String,
    /// Per-role expiry, e.g. --expires root=365d --expires timestamp=12h
    /// (defaults: root 365d, targets 90d, snapshot 7d, timestamp 1d).
    #[arg(long = "expires", value_name = "ROLE=PERIOD")]
    expires: Vec<String>,
    /// Leave the root key offline: only its public half stays in the repository and its
    /// private key is written to this file instead (move it to offline storage).
    #[arg(long, value_name = "FILE")]
    offline_root_key: Option<PathBuf>,
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<()> {
    let algorithm: Algorithm = args.key_type.parse()?;
    let mut policy = Policy::new_default();
    for spec in &args.expires {
        let Some((role, period)) = spec.split_once('=') else {
            bail!("--expires {spec}: expected ROLE=PERIOD, e.g. timestamp=12h");
        };
        let period = Period::try_from(period.to_owned()).map_err(anyhow::Error::msg)?;
        match policy.roles.get_mut(role) {
            Some(r) => r.expires = period,
            None => bail!("--expires {spec}: {role} is not a top-level role"),
        }
    }
    let source = ctx.passphrases()?;
    let store = KeyStore::new(&args.dir, &source);
    sealwright_repo::init::create_repository(
        &args.dir,
        policy,
        algorithm,
        &store,
        args.offline_root_key.as_deref(),
    )?;
    let sub = Context {
        repo: args.dir.clone(),
        passphrase_env: ctx.passphrase_env.clone(),
        json: ctx.json,
    };
    sub.audit(
        "init",
        "repository",
        serde_json::json!({"algorithm": algorithm.short_name(), "offline_root": args.offline_root_key.is_some()}),
    )?;
    let published = if args.offline_root_key.is_none() {
        super::publish::publish_with(&sub, &store, false)?
    } else {
        None
    };
    emit(
        ctx.json,
        &serde_json::json!({"repository": args.dir, "published": published}),
        || {
            println!(
                "created repository {} with {} keys for root, targets, snapshot, timestamp",
                args.dir.display(),
                algorithm.short_name()
            );
            match &published {
            Some(_) => println!("published version 1: serve {}/published", args.dir.display()),
            None => println!(
                "root key is offline: run `sealwright --repo {} sign-request root`, sign it offline, then sign-import and publish",
                args.dir.display()
            ),
        }
        },
    )
}
