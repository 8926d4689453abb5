//! `sealwright init DIR`: a new repository with one key per top-level role, published as
//! version 1 so that `published/` is servable at once.

use std::path::PathBuf;

use anyhow::{bail, Context as _};

use sealwright_crypto::Algorithm;
use sealwright_repo::policy::{Period, Policy};
use sealwright_repo::{FixedPassphrase, Keyring, PassphraseSource};

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
    if !sealwright_repo::fsutil::is_absent_or_empty(&args.dir)
        .with_context(|| format!("reading {}", args.dir.display()))?
    {
        bail!(
            "{} already exists and is not empty; choose a new directory",
            args.dir.display()
        );
    }
    // One passphrase for the four keys, asked and confirmed before anything is created:
    // Ctrl-D or Ctrl-C at the prompt leaves nothing behind.
    let asked = ctx.passphrases()?;
    let once;
    let source: &dyn PassphraseSource = if asked.interactive() {
        once = FixedPassphrase(
            asked.new_passphrase("the four role keys (root, targets, snapshot, timestamp)")?,
        );
        &once
    } else {
        &asked
    };
    // Built beside its destination and renamed into place when complete, so a run killed
    // half-way leaves no half-made repository (the next init of the same path clears the
    // leftover first).
    let target = if args.dir.exists() {
        args.dir.canonicalize()
    } else {
        std::path::absolute(&args.dir)
    }
    .with_context(|| format!("resolving {}", args.dir.display()))?;
    let building = partial_dir(&target);
    if building.exists() {
        std::fs::remove_dir_all(&building)
            .with_context(|| format!("removing the leftover {}", building.display()))?;
    }
    let result = (|| {
        let keyring = Keyring::new(&building, source);
        sealwright_repo::init::create_repository(
            &building,
            policy,
            algorithm,
            &keyring,
            args.offline_root_key.as_deref(),
        )?;
        let sub = Context {
            repo: building.clone(),
            passphrase_env: ctx.passphrase_env.clone(),
            json: ctx.json,
        };
        let published = if args.offline_root_key.is_none() {
            super::publish::publish_with(&sub, &keyring, false)?
        } else {
            None
        };
        std::fs::rename(&building, &target)
            .with_context(|| format!("moving the new repository to {}", args.dir.display()))?;
        if let Some(parent) = target.parent() {
            sealwright_repo::fsutil::sync_dir(parent)?;
        }
        Ok::<_, anyhow::Error>(published)
    })();
    let published = match result {
        Ok(p) => p,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&building);
            return Err(e);
        }
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

/// Where `dir` is built before it is moved into place: a hidden sibling.
fn partial_dir(dir: &std::path::Path) -> PathBuf {
    let name = dir
        .file_name()
        .map_or_else(|| "repository".into(), |n| n.to_string_lossy().into_owned());
    dir.with_file_name(format!(".{name}.sealwright-init-partial"))
}
