//! `sealwright key generate|import|list`.

use std::path::PathBuf;

use anyhow::{bail, Context as _};
use clap::Subcommand;
use serde::Serialize;

use sealwright_crypto::keyfile::{self, read_public_key};
use sealwright_crypto::{Algorithm, Kdf, Signer};
use sealwright_repo::policy::{check_name, KeyEntry, Policy};
use sealwright_repo::Keyring;

use super::Context;
use crate::output::emit;

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Generate a key, encrypt it into keys/NAME.pem, and add it to the policy.
    Generate {
        /// Key name (used in the policy and the file name).
        name: String,
        /// ed25519 (default), ecdsa (P-256) or rsa (3072-bit RSA-PSS).
        #[arg(long = "type", default_value = "ed25519")]
        key_type: String,
        /// Also authorise the key to sign for this role (repeatable).
        #[arg(long = "role")]
        roles: Vec<String>,
        /// Key derivation for the file: scrypt (default) or pbkdf2 (PBKDF2-SHA256, 600k rounds).
        #[arg(long, default_value = "scrypt")]
        kdf: String,
    },
    /// Import a key: a private key PEM (encrypted or not; it is stored encrypted), or a
    /// public key PEM for a key that stays offline.
    Import {
        /// PEM file.
        file: PathBuf,
        /// Key name.
        #[arg(long)]
        name: String,
        /// Authorise the key for this role (repeatable).
        #[arg(long = "role")]
        roles: Vec<String>,
        /// Key derivation when re-encrypting a private key.
        #[arg(long, default_value = "scrypt")]
        kdf: String,
    },
    /// List the policy's keys, which roles use them, and whether they are usable here.
    List,
}

fn parse_kdf(s: &str) -> anyhow::Result<Kdf> {
    match s {
        "scrypt" => Ok(Kdf::Scrypt),
        "pbkdf2" => Ok(Kdf::Pbkdf2Sha256),
        other => bail!("--kdf {other}: expected scrypt or pbkdf2"),
    }
}

/// Adds key `name` to `roles` in the policy.
pub fn authorise(policy: &mut Policy, name: &str, roles: &[String]) -> anyhow::Result<()> {
    for role in roles {
        if let Some(r) = policy.roles.get_mut(role) {
            r.keys.push(name.to_owned());
        } else if let Some(d) = policy.delegations.iter_mut().find(|d| &d.name == role) {
            d.keys.push(name.to_owned());
        } else {
            bail!(
                "--role {role}: no such role (top-level roles: root, targets, snapshot, timestamp)"
            );
        }
    }
    Ok(())
}

/// The policy, after checking that key `name` is new and every role exists — before any key
/// file is written, so a typo never leaves an orphaned key file behind.
fn policy_for_new_key(ctx: &Context, name: &str, roles: &[String]) -> anyhow::Result<Policy> {
    let policy = ctx.policy()?;
    check_name("key", name)?;
    if policy.keys.contains_key(name) {
        bail!("key {name} already exists in the policy");
    }
    if ctx.repo.join(format!("keys/{name}.pem")).exists() {
        bail!("keys/{name}.pem already exists but is not in the policy; move it away or choose another name");
    }
    authorise(&mut policy.clone(), name, roles)?;
    Ok(policy)
}

pub fn run(ctx: &Context, cmd: KeyCommand) -> anyhow::Result<()> {
    match cmd {
        KeyCommand::Generate {
            name,
            key_type,
            roles,
            kdf,
        } => {
            let mut policy = policy_for_new_key(ctx, &name, &roles)?;
            let algorithm: Algorithm = key_type.parse()?;
            let source = ctx.passphrases()?;
            let keyring = Keyring::new(&ctx.repo, &source);
            let (entry, key) = keyring.generate(&name, algorithm, parse_kdf(&kdf)?)?;
            policy.keys.insert(name.clone(), entry);
            authorise(&mut policy, &name, &roles)?;
            policy.save(&ctx.repo)?;
            ctx.audit(
                "key-generate",
                &name,
                serde_json::json!({"keyid": key.keyid(), "algorithm": algorithm.short_name(), "roles": roles}),
            )?;
            emit(
                ctx.json,
                &serde_json::json!({"name": name, "keyid": key.keyid(), "algorithm": algorithm.short_name(), "roles": roles}),
                || {
                    println!(
                        "generated {} key {name} ({}) in keys/{name}.pem",
                        algorithm.short_name(),
                        key.keyid()
                    );
                    if !roles.is_empty() {
                        println!(
                            "authorised for: {} (takes effect at the next publish)",
                            roles.join(", ")
                        );
                    }
                },
            )
        }
        KeyCommand::Import {
            file,
            name,
            roles,
            kdf,
        } => {
            let mut policy = policy_for_new_key(ctx, &name, &roles)?;
            let text = String::from_utf8(
                sealwright_repo::fsutil::read_capped(&file, keyfile::MAX_KEY_FILE as u64)
                    .with_context(|| format!("reading {}", file.display()))?,
            )
            .with_context(|| format!("{} is not a PEM text file", file.display()))?;
            let entry = if text.contains("PRIVATE KEY-----") {
                let source = ctx.passphrases()?;
                let keyring = Keyring::new(&ctx.repo, &source);
                let key = keyring.open_file(&file, &name)?;
                let pass = sealwright_repo::PassphraseSource::new_key(&source, &name)?;
                keyring.store(&name, &key, &pass, parse_kdf(&kdf)?)?
            } else {
                let public = read_public_key(&text)
                    .with_context(|| format!("reading {}", file.display()))?;
                let alg = public.algorithm()?;
                KeyEntry {
                    algorithm: alg.short_name().into(),
                    keyid: public.keyid(),
                    public: public.keyval.public,
                    private: None,
                }
            };
            let offline = entry.private.is_none();
            let keyid = entry.keyid.clone();
            policy.keys.insert(name.clone(), entry);
            authorise(&mut policy, &name, &roles)?;
            policy.save(&ctx.repo)?;
            ctx.audit(
                "key-import",
                &name,
                serde_json::json!({"keyid": keyid, "offline": offline, "roles": roles}),
            )?;
            emit(
                ctx.json,
                &serde_json::json!({"name": name, "keyid": keyid, "offline": offline}),
                || {
                    if offline {
                        println!("imported public key {name} ({keyid}); it signs offline via sign-request / sign / sign-import");
                    } else {
                        println!("imported private key {name} ({keyid}) into keys/{name}.pem (encrypted)");
                    }
                },
            )
        }
        KeyCommand::List => {
            let policy = ctx.policy()?;
            #[derive(Serialize)]
            struct Row {
                name: String,
                keyid: String,
                algorithm: String,
                location: String,
                roles: Vec<String>,
            }
            let rows: Vec<Row> = policy
                .keys
                .iter()
                .map(|(name, k)| Row {
                    name: name.clone(),
                    keyid: k.keyid.clone(),
                    algorithm: k.algorithm.clone(),
                    location: k.private.clone().unwrap_or_else(|| "offline".into()),
                    roles: policy
                        .roles
                        .iter()
                        .filter(|(_, r)| r.keys.contains(name))
                        .map(|(n, _)| n.clone())
                        .chain(
                            policy
                                .delegations
                                .iter()
                                .filter(|d| d.keys.contains(name))
                                .map(|d| d.name.clone()),
                        )
                        .collect(),
                })
                .collect();
            emit(ctx.json, &rows, || {
                println!(
                    "{:<16} {:<9} {:<18} {:<26} ROLES",
                    "NAME", "TYPE", "KEYID", "LOCATION"
                );
                for r in &rows {
                    println!(
                        "{:<16} {:<9} {:<18} {:<26} {}",
                        r.name,
                        r.algorithm,
                        r.keyid.get(..16).unwrap_or(&r.keyid),
                        r.location,
                        r.roles.join(",")
                    );
                }
            })
        }
    }
}
