//! `sealwright delegate`: hand a path space to a new role, or to TAP 15 succinct hash bins.

use sealwright_crypto::Algorithm;
use sealwright_repo::policy::{DelegationPolicy, Period};
use sealwright_repo::policy_change;
use sealwright_repo::Keyring;

use super::Context;
use crate::output::emit;

#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("space").required(true).args(["paths", "hash_prefixes", "succinct"])))]
pub struct Args {
    /// Name of the new role (for succinct bins: the bins' name prefix, bins are NAME-<hex>).
    name: String,
    /// Path patterns this role may sign for, e.g. 'app/*/*'. `*` and `?` never match `/`.
    #[arg(long, value_delimiter = ',')]
    paths: Option<Vec<String>>,
    /// Lowercase hex prefixes of sha256(target path) this role may sign for.
    #[arg(long, value_delimiter = ',')]
    hash_prefixes: Option<Vec<String>>,
    /// Spread every target of this role over 2^BITS hash bins (TAP 15), 1..=16.
    #[arg(long, value_name = "BITS")]
    succinct: Option<u8>,
    /// Delegating role.
    #[arg(long, default_value = "targets")]
    parent: String,
    /// Keys that sign for the role (names from `key list`). Default: generate NAME-key.
    #[arg(long = "key")]
    keys: Vec<String>,
    /// Signatures required.
    #[arg(long, default_value_t = 1)]
    threshold: u32,
    /// Validity of each version: <n>h, <n>d or <n>w.
    #[arg(long, default_value = "90d")]
    expires: String,
    /// Stop the search at this role when a path matches.
    #[arg(long)]
    terminating: bool,
    /// Type of the generated key when --key is not given.
    #[arg(long = "key-type", default_value = "ed25519")]
    key_type: String,
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<()> {
    ctx.policy()?;
    let expires = Period::try_from(args.expires.clone()).map_err(anyhow::Error::msg)?;
    let algorithm: Algorithm = args.key_type.parse()?;
    let source = ctx.passphrases()?;
    let keyring = Keyring::new(&ctx.repo, &source);
    let delegation = policy_change::delegate(
        &ctx.repo,
        &keyring,
        DelegationPolicy {
            name: args.name.clone(),
            parent: args.parent.clone(),
            threshold: args.threshold,
            expires,
            keys: args.keys.clone(),
            terminating: args.terminating,
            paths: args.paths.clone(),
            path_hash_prefixes: args.hash_prefixes.clone(),
            succinct_bits: args.succinct,
        },
        algorithm,
    )?;
    let keys = delegation.keys;
    emit(
        ctx.json,
        &serde_json::json!({"role": args.name, "parent": args.parent, "keys": keys}),
        || {
            match args.succinct {
                Some(bits) => println!(
                    "delegated from {} to {} succinct hash bins {}-*, signed by {}",
                    args.parent,
                    1u64 << bits,
                    args.name,
                    keys.join(", ")
                ),
                None => println!(
                    "delegated from {} to role {}, signed by {}",
                    args.parent,
                    args.name,
                    keys.join(", ")
                ),
            }
            println!("run `sealwright publish` to sign the new delegation");
        },
    )
}
