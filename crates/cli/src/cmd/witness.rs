//! `sealwright witness`: run a c2sp.org/tlog-witness — cosign a log's checkpoints only when
//! each extends the last one cosigned, so a log cannot show two views of its history.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use serde::Serialize;

use sealwright_server::witness::{self, WitnessConfig};
use sealwright_tlog::Verifier;

use super::Context;
use crate::output::emit;

#[derive(Debug, clap::Subcommand)]
pub enum WitnessCommand {
    /// Make a witness directory: a new Ed25519 cosigning key (encrypted with a passphrase)
    /// and its configuration. Prints the witness's verifier key for logs and devices.
    Init {
        /// The new directory.
        dir: PathBuf,
        /// The witness's name, e.g. witness.example.org/w1 (no spaces, no '+').
        #[arg(long)]
        name: String,
    },
    /// Follow a log: cosign checkpoints signed by this verifier key (its name is the log's
    /// origin; `sealwright log key` prints a Sealwright server's).
    AddLog {
        /// The witness directory.
        dir: PathBuf,
        /// The log's verifier key.
        #[arg(long)]
        vkey: String,
    },
    /// Print the witness's verifier key.
    Key {
        /// The witness directory.
        dir: PathBuf,
    },
    /// Serve `POST /add-checkpoint` over HTTP until stopped (cosignatures carry their own
    /// signature; put TLS in front where the network asks for it).
    Serve {
        /// The witness directory.
        dir: PathBuf,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:7380")]
        listen: SocketAddr,
    },
}

#[derive(Serialize)]
struct WitnessKey {
    name: String,
    vkey: String,
}

fn open_key(ctx: &Context, dir: &std::path::Path) -> anyhow::Result<sealwright_crypto::PrivateKey> {
    ctx.open_private_key(&dir.join(witness::KEY_FILE), "witness")
}

fn key_of(ctx: &Context, dir: &std::path::Path) -> anyhow::Result<WitnessKey> {
    let config = witness::load_config(dir)?;
    let key = witness::CosignerKey::new(&config.name, open_key(ctx, dir)?)?;
    let vkey = sealwright_tlog::note::NoteSigner::verifier(&key).vkey();
    Ok(WitnessKey {
        name: config.name,
        vkey,
    })
}

pub fn run(ctx: &Context, cmd: WitnessCommand) -> anyhow::Result<()> {
    match cmd {
        WitnessCommand::Init { dir, name } => {
            if dir.join(witness::CONFIG_FILE).exists() {
                anyhow::bail!("{} is a witness directory already", dir.display());
            }
            std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
            let key =
                sealwright_crypto::PrivateKey::generate(sealwright_crypto::Algorithm::Ed25519)?;
            let passphrase = ctx.passphrases()?.new_passphrase("the witness key")?;
            let pem = sealwright_crypto::keyfile::encrypt_private_key(
                &key,
                &passphrase,
                sealwright_crypto::Kdf::Scrypt,
            )?;
            let cosigner = witness::CosignerKey::new(&name, key)?;
            sealwright_repo::fsutil::write_atomic_private(
                &dir.join(witness::KEY_FILE),
                pem.as_bytes(),
            )?;
            witness::save_config(
                &dir,
                &WitnessConfig {
                    name: name.clone(),
                    logs: vec![],
                },
            )?;
            let out = WitnessKey {
                name,
                vkey: sealwright_tlog::note::NoteSigner::verifier(&cosigner).vkey(),
            };
            emit(ctx.json, &out, || println!("{}", out.vkey))
        }
        WitnessCommand::AddLog { dir, vkey } => {
            let log = Verifier::from_vkey(&vkey).context("--vkey")?;
            if log.kind() != sealwright_tlog::note::KeyKind::Ed25519 {
                anyhow::bail!("--vkey: a log's key is Ed25519 (signed-note type 0x01)");
            }
            let mut config = witness::load_config(&dir)?;
            config.logs.retain(|v| {
                Verifier::from_vkey(v).map_or(true, |k| {
                    k.name() != log.name() || k.key_id() != log.key_id()
                })
            });
            config.logs.push(log.vkey());
            witness::save_config(&dir, &config)?;
            emit(
                ctx.json,
                &serde_json::json!({"origin": log.name(), "vkey": log.vkey()}),
                || println!("following {}", log.name()),
            )
        }
        WitnessCommand::Key { dir } => {
            let key = key_of(ctx, &dir)?;
            emit(ctx.json, &key, || println!("{}", key.vkey))
        }
        WitnessCommand::Serve { dir, listen } => {
            let key = open_key(ctx, &dir)?;
            witness::serve(&dir, key, listen, |addr, vkey| {
                println!("witness {vkey}");
                println!("serving http://{addr}/add-checkpoint");
            })?;
            Ok(())
        }
    }
}
