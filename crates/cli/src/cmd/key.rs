//! `sealwright key generate|import|list|rotate|revoke`.

use std::path::PathBuf;

use anyhow::bail;
use chrono::Utc;
use clap::Subcommand;
use serde::Serialize;

use sealwright_crypto::{Algorithm, Kdf};
use sealwright_repo::policy_change::{self, NewKey};
use sealwright_repo::Keyring;
use sealwright_repo::{key_audit, key_lifecycle};

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
        /// Generate the key on a PKCS#11 token instead of a file: a pkcs11: URI (RFC 7512)
        /// naming the token and the new key's label, e.g.
        /// 'pkcs11:token=release;object=targets?module-path=/usr/lib/softhsm/libsofthsm2.so'.
        /// The PIN is asked for, or read from the URI's pin-source=FILE; never give it on
        /// the command line. The private key never leaves the token.
        #[arg(long, value_name = "URI")]
        pkcs11: Option<String>,
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
        /// The public key of a key the signer agent listening on SOCKET holds (made there
        /// with `sealwright signer add-key`): publishes sign with it through the agent.
        #[arg(long, value_name = "SOCKET")]
        agent: Option<String>,
    },
    /// List the policy's keys, which roles use them, and whether they are usable here.
    List,
    /// Report what is wrong with the repository's keys, each with a severity: weak types
    /// and sizes, rotation overdue, unused and shared keys, thresholds one key meets, key
    /// files others can read, roles [key_policy] wants on hardware; with --log, keys that
    /// signed a published file the server's transparency log does not hold. Exit status 1
    /// when a finding is at or above --fail-on (for CI).
    Audit {
        /// The lowest severity that fails: info, low, medium, high or critical.
        #[arg(long, default_value = "high")]
        fail_on: String,
        /// With --log: every root, targets and delegated role file published here must be in
        /// the server's transparency log; each key that signed one it does not hold is a
        /// finding (signed-not-logged).
        #[command(flatten)]
        against: super::audit::AgainstLog,
    },
    /// Split a key (root, typically) into shares for custodians: any --threshold of them
    /// rebuild it (`key recover`), fewer learn nothing. Each share is encrypted to one
    /// custodian's age recipient (`age-keygen`), readable with `age -d`.
    Escrow {
        /// The key (its name in the policy).
        name: String,
        /// Shares needed to rebuild it (at least 2).
        #[arg(long)]
        threshold: u8,
        /// A custodian: an age recipient (age1…) or a file holding one; repeatable, one
        /// share each.
        #[arg(long = "custodian", value_name = "RECIPIENT", required = true)]
        custodians: Vec<String>,
        /// The key file, for a key kept offline (not in keys/).
        #[arg(long, value_name = "KEY.pem")]
        key_file: Option<PathBuf>,
        /// Where the share files go.
        #[arg(long, value_name = "DIR", default_value = "escrow")]
        out_dir: PathBuf,
    },
    /// Rebuild an escrowed key from enough shares and write it encrypted (a new passphrase).
    Recover {
        /// Share files: age-encrypted (opened with --identity) or decrypted with `age -d`.
        #[arg(required = true)]
        shares: Vec<PathBuf>,
        /// A custodian's age identity file (AGE-SECRET-KEY-…); repeatable.
        #[arg(long = "identity", value_name = "FILE")]
        identities: Vec<PathBuf>,
        /// Where to write the key (default: keys/NAME.pem, which must not exist).
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
    },
    /// Replace a role's key with a new one of the same kind (a file key, or a key on the
    /// same token) and publish at once: a new root signed by the old and the new root keys,
    /// so devices follow. The old key's file moves to keys/retired/.
    Rotate {
        /// The role (root, targets, snapshot, timestamp or a delegation).
        role: String,
        /// The key to replace, when the role has several (name or key id).
        #[arg(long)]
        key: Option<String>,
        /// Make the new key on this PKCS#11 token instead (a pkcs11: URI naming the token and
        /// the new key's label, object=): how a role moves from files to hardware.
        #[arg(long, value_name = "URI")]
        pkcs11: Option<String>,
    },
    /// Take a compromised key out of every role that trusts it and publish at once; a role
    /// left below its threshold gets a new key. Revoking the timestamp or snapshot key also
    /// lets devices that saw metadata it signed recover (they drop it on the new root).
    Revoke {
        /// The key (name, or key id or its first 8+ hex digits).
        key: String,
        /// Why (recorded in the audit log), e.g. "laptop stolen 2026-11-30".
        #[arg(long)]
        reason: String,
    },
}

/// Adds the key through the library, which checks, saves and records it.
fn add(
    ctx: &Context,
    name: &str,
    roles: &[String],
    new: NewKey<'_>,
) -> anyhow::Result<policy_change::AddedKey> {
    let source = ctx.passphrases()?;
    let keyring = Keyring::new(&ctx.repo, &source);
    Ok(policy_change::add_key(
        &ctx.repo, &keyring, &source, name, roles, new,
    )?)
}

fn parse_kdf(s: &str) -> anyhow::Result<Kdf> {
    match s {
        "scrypt" => Ok(Kdf::Scrypt),
        "pbkdf2" => Ok(Kdf::Pbkdf2Sha256),
        other => bail!("--kdf {other}: expected scrypt or pbkdf2"),
    }
}

pub fn run(ctx: &Context, cmd: KeyCommand) -> anyhow::Result<()> {
    match cmd {
        KeyCommand::Generate {
            name,
            key_type,
            roles,
            kdf,
            pkcs11,
        } => {
            ctx.policy()?;
            let algorithm: Algorithm = key_type.parse()?;
            let new = match &pkcs11 {
                Some(uri) => NewKey::Token { algorithm, uri },
                None => NewKey::Generate {
                    algorithm,
                    kdf: parse_kdf(&kdf)?,
                },
            };
            let added = add(ctx, &name, &roles, new)?;
            emit(ctx.json, &added, || {
                let place = match &pkcs11 {
                    Some(_) => "on the token (it never leaves it)".to_owned(),
                    None => format!("in keys/{name}.pem"),
                };
                println!(
                    "generated {} key {name} ({}) {place}",
                    added.algorithm, added.keyid
                );
                if !roles.is_empty() {
                    println!(
                        "authorised for: {} (takes effect at the next publish)",
                        roles.join(", ")
                    );
                }
            })
        }
        KeyCommand::Import {
            file,
            name,
            roles,
            kdf,
            agent,
        } => {
            ctx.policy()?;
            let new = NewKey::Import {
                file: &file,
                kdf: parse_kdf(&kdf)?,
                agent: agent.as_deref(),
            };
            let added = add(ctx, &name, &roles, new)?;
            emit(ctx.json, &added, || {
                if let Some(socket) = &agent {
                    println!(
                        "imported public key {name} ({}), held by the signer agent at {socket}",
                        added.keyid
                    );
                } else if added.offline {
                    println!("imported public key {name} ({}); it signs offline via sign-request / sign / sign-import", added.keyid);
                } else {
                    println!(
                        "imported private key {name} ({}) into keys/{name}.pem (encrypted)",
                        added.keyid
                    );
                }
            })
        }
        KeyCommand::Audit { fail_on, against } => {
            let fail_on: key_audit::Severity = fail_on
                .parse()
                .map_err(|e| anyhow::anyhow!("--fail-on {e}"))?;
            let policy = ctx.policy()?;
            let mut findings = key_audit::audit(&ctx.repo, &policy, Utc::now());
            if let Some(logged) = against.entries()? {
                let logged: std::collections::BTreeSet<String> = logged
                    .into_iter()
                    .filter_map(|e| match e {
                        sealwright_tlog::entry::Entry::Metadata { sha256, .. } => Some(sha256),
                        _ => None,
                    })
                    .collect();
                findings.extend(
                    key_audit::audit_against_log(&ctx.repo, &policy, &logged)
                        .map_err(|e| anyhow::anyhow!("reading the published metadata: {e}"))?,
                );
                findings.sort_by(|a, b| b.severity.cmp(&a.severity).then(a.finding.cmp(b.finding)));
            }
            emit(ctx.json, &findings, || {
                if findings.is_empty() {
                    println!("no findings: {} key(s) checked", policy.keys.len());
                }
                for f in &findings {
                    let subject = f.key.as_deref().or(f.role.as_deref()).unwrap_or("");
                    println!(
                        "{:<8} {:<28} {subject}: {}",
                        format!("{:?}", f.severity).to_lowercase(),
                        f.finding,
                        f.message
                    );
                }
            })?;
            if let Some(worst) = findings.iter().map(|f| f.severity).max() {
                if worst >= fail_on {
                    bail!(
                        "{} finding(s), the worst {}: at or above --fail-on",
                        findings.iter().filter(|f| f.severity >= fail_on).count(),
                        format!("{worst:?}").to_lowercase()
                    );
                }
            }
            Ok(())
        }
        KeyCommand::Escrow {
            name,
            threshold,
            custodians,
            key_file,
            out_dir,
        } => escrow(
            ctx,
            &name,
            threshold,
            &custodians,
            key_file.as_deref(),
            &out_dir,
        ),
        KeyCommand::Recover {
            shares,
            identities,
            out,
        } => recover(ctx, &shares, &identities, out.as_deref()),
        KeyCommand::Rotate { role, key, pkcs11 } => {
            let retired = lifecycle(ctx, |repo, keyring| {
                key_lifecycle::rotate(
                    repo,
                    keyring,
                    &role,
                    key.as_deref(),
                    pkcs11.as_deref(),
                    Utc::now(),
                )
            })?;
            emit(ctx.json, &retired, || print_retired("rotated", &retired))
        }
        KeyCommand::Revoke { key, reason } => {
            let retired = lifecycle(ctx, |repo, keyring| {
                key_lifecycle::revoke(repo, keyring, &key, &reason, Utc::now())
            })?;
            emit(ctx.json, &retired, || print_retired("revoked", &retired))
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
                    roles: policy.roles_of_key(name),
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
                        // A token URI's query (module path, PIN file) is in --json.
                        r.location.split('?').next().unwrap_or(&r.location),
                        r.roles.join(",")
                    );
                }
            })
        }
    }
}

/// Runs a rotation or revocation with this repository's keyring.
fn lifecycle(
    ctx: &Context,
    change: impl FnOnce(
        &std::path::Path,
        &Keyring<'_>,
    ) -> Result<key_lifecycle::Retired, policy_change::ChangeError>,
) -> anyhow::Result<key_lifecycle::Retired> {
    ctx.policy()?;
    let source = ctx.passphrases()?;
    let keyring = Keyring::new(&ctx.repo, &source);
    Ok(change(&ctx.repo, &keyring)?)
}

fn print_retired(what: &str, r: &key_lifecycle::Retired) {
    println!(
        "{what} key {} ({}): removed from {}",
        r.key,
        r.keyid.get(..16).unwrap_or(&r.keyid),
        r.removed_from.join(", ")
    );
    for (role, new) in &r.replaced_by {
        println!("  {role} now signs with the new key {new}");
    }
    let versions: Vec<String> = r
        .published
        .iter()
        .map(|(role, v)| format!("{role} v{v}"))
        .collect();
    println!("published: {}", versions.join(", "));
    if let Some(file) = &r.retired_file {
        println!(
            "its key file is set aside in {file}; destroy it when you no longer need the record"
        );
    }
}

/// An age recipient given on the command line: `age1…`, or a file holding one (the output
/// of `age-keygen -y`, or an identity file's `# public key:` line).
fn custodian_recipient(given: &str) -> anyhow::Result<String> {
    if given.starts_with("age1") {
        return Ok(given.to_owned());
    }
    let text = Context::read_text(std::path::Path::new(given))?;
    text.lines()
        .map(|l| l.trim().trim_start_matches("# public key:").trim())
        .find(|l| l.starts_with("age1"))
        .map(str::to_owned)
        .ok_or_else(|| anyhow::anyhow!("{given}: no age recipient (age1…) in it"))
}

fn escrow(
    ctx: &Context,
    name: &str,
    threshold: u8,
    custodians: &[String],
    key_file: Option<&std::path::Path>,
    out_dir: &std::path::Path,
) -> anyhow::Result<()> {
    let policy = ctx.policy()?;
    let entry = policy
        .keys
        .get(name)
        .ok_or_else(|| anyhow::anyhow!("no key {name} in the policy"))?;
    let recipients = custodians
        .iter()
        .map(|c| custodian_recipient(c))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let source = ctx.passphrases()?;
    let keyring = Keyring::new(&ctx.repo, &source);
    let key = match (key_file, entry.private.as_deref()) {
        (Some(file), _) => keyring.open_file(file, name)?,
        (None, Some(l)) if l.starts_with("file:") => keyring
            .open(&policy, name)?
            .ok_or_else(|| anyhow::anyhow!("{name} has no key file here"))?,
        (None, Some(l)) if l.starts_with("pkcs11:") => bail!(
            "{name} lives on a token and cannot leave it: escrow is for keys in files (back the token up with its own tools)"
        ),
        _ => bail!("{name} is not in a key file here: give it with --key-file KEY.pem"),
    };
    anyhow::ensure!(
        sealwright_crypto::Signer::keyid(&key) == entry.keyid,
        "that key file holds another key than {name} ({})",
        entry.keyid
    );
    let shares = sealwright_escrow::split(&key, name, threshold, &recipients)?;
    std::fs::create_dir_all(out_dir)?;
    let n = shares.len();
    let mut files = Vec::with_capacity(n);
    for (i, share) in shares.iter().enumerate() {
        let file = out_dir.join(format!("{name}.share-{}-of-{n}.age", i + 1));
        sealwright_repo::fsutil::write_atomic(&file, share.as_bytes())?;
        files.push(file);
    }
    sealwright_store::audit::record_local(
        &ctx.repo,
        "key-escrow",
        name,
        serde_json::json!({"keyid": entry.keyid, "threshold": threshold, "custodians": recipients}),
    )?;
    #[derive(Serialize)]
    struct Report<'a> {
        key: &'a str,
        threshold: u8,
        shares: Vec<(String, PathBuf)>,
    }
    let report = Report {
        key: name,
        threshold,
        shares: recipients.into_iter().zip(files).collect(),
    };
    emit(ctx.json, &report, || {
        println!("split {name} into {n} shares, any {threshold} of which rebuild it:");
        for (custodian, file) in &report.shares {
            println!("  {} for {custodian}", file.display());
        }
        println!("give each custodian their file only; none of them can sign alone");
    })
}

fn recover(
    ctx: &Context,
    share_files: &[PathBuf],
    identity_files: &[PathBuf],
    out: Option<&std::path::Path>,
) -> anyhow::Result<()> {
    let identities = identity_files
        .iter()
        .map(|f| {
            sealwright_repo::fsutil::read_secret(f, sealwright_escrow::MAX_SHARE_FILE as u64)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .map_err(|e| anyhow::anyhow!("{}: {e}", f.display()))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut shares = Vec::with_capacity(share_files.len());
    for file in share_files {
        let bytes =
            sealwright_repo::fsutil::read_capped(file, sealwright_escrow::MAX_SHARE_FILE as u64)?;
        shares.push(
            sealwright_escrow::open_share(&bytes, &identities)
                .map_err(|e| anyhow::anyhow!("{}: {e}", file.display()))?,
        );
    }
    let key = sealwright_escrow::join(&shares)?;
    let name = shares.first().map(|s| s.key.clone()).unwrap_or_default();
    let source = ctx.passphrases()?;
    let pass = sealwright_repo::PassphraseSource::new_key(&source, &name)?;
    let pem = sealwright_crypto::keyfile::encrypt_private_key(&key, &pass, Kdf::default())?;
    let path = out
        .map(std::path::Path::to_path_buf)
        .unwrap_or_else(|| ctx.repo.join(format!("keys/{name}.pem")));
    anyhow::ensure!(
        !path.exists(),
        "{} exists: give --out for the recovered key",
        path.display()
    );
    sealwright_repo::fsutil::write_atomic_private(&path, pem.as_bytes())?;
    sealwright_store::audit::record_local(
        &ctx.repo,
        "key-recover",
        &name,
        serde_json::json!({"keyid": sealwright_crypto::Signer::keyid(&key), "shares": shares.iter().map(|s| s.index).collect::<Vec<_>>()}),
    )?;
    emit(
        ctx.json,
        &serde_json::json!({"key": name, "keyid": sealwright_crypto::Signer::keyid(&key), "file": path}),
        || {
            println!(
                "rebuilt {name} ({}) from {} shares into {} (encrypted)",
                sealwright_crypto::Signer::keyid(&key),
                shares.len(),
                path.display()
            )
        },
    )
}
