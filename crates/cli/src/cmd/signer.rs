//! `sealwright signer serve`: the signer agent, holding the online keys in its own process.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use anyhow::Context as _;
use sealwright_repo::agent::{self, Agent, AgentConfig};
use sealwright_repo::Keyring;

use super::Context;

#[derive(Debug, clap::Subcommand)]
pub enum SignerCommand {
    /// Run the signer agent: hold the timestamp and snapshot keys and sign, over a Unix
    /// socket, only for the callers and roles the configuration allows.
    ///
    /// The agent refuses a document whose _type is not the role asked for, a version not
    /// above the last it signed for that role (or more than max_version_step above it), and
    /// an expiry in the past or too far ahead;
    /// it records every signature and refusal in a hash-chained audit log in the socket's
    /// directory (check it with `sealwright audit verify --data DIR`), where it also keeps
    /// the last versions it signed: put the socket in a directory that survives reboots.
    /// Stop it with Ctrl-C or SIGTERM.
    ///
    /// `sealwright server setup` writes a configuration for you; the example agent.toml after
    /// the options loads as is. Then point the repository at it: in sealwright.toml set the key's
    /// private = "agent:/var/lib/sealwright-agent/agent.sock" and remove the key file from the
    /// repository machine.
    #[command(after_long_help = sealwright_repo::agent::EXAMPLE_CONFIG)]
    Serve {
        /// The agent's configuration file.
        #[arg(long, value_name = "agent.toml")]
        config: PathBuf,
    },
    /// Make a new key for an online role in the agent (a file in keys/ next to the
    /// configuration, or on a token with --pkcs11) and add it to the configuration; the agent
    /// signs with it, beside the role's other keys, from its next start. Then, on the
    /// publishing machine: `key import PUB --role ROLE --agent SOCKET`, `key revoke OLD`.
    AddKey {
        /// The agent's configuration file.
        #[arg(long, value_name = "agent.toml")]
        config: PathBuf,
        /// timestamp or snapshot.
        #[arg(long)]
        role: String,
        /// ed25519 (default), ecdsa or rsa.
        #[arg(long = "type", default_value = "ed25519")]
        key_type: String,
        /// Make it on this PKCS#11 token (pkcs11: URI with object= the new key's label).
        #[arg(long, value_name = "URI")]
        pkcs11: Option<String>,
    },
}

pub fn run(ctx: &Context, cmd: SignerCommand) -> anyhow::Result<()> {
    let config = match cmd {
        SignerCommand::Serve { config } => config,
        SignerCommand::AddKey {
            config,
            role,
            key_type,
            pkcs11,
        } => return add_key(ctx, &config, &role, &key_type, pkcs11.as_deref()),
    };
    let config = AgentConfig::load(&config)?;
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(signal, Arc::clone(&stop))
            .context("installing the signal handlers")?;
    }
    let (agent, listener) = start(ctx, &config)?;
    if ctx.json {
        println!(
            "{}",
            serde_json::json!({"socket": config.socket, "audit_dir": config.audit_dir()})
        );
    } else {
        println!(
            "signer agent listening on {} (audit log: sealwright audit list --data {}); Ctrl-C to stop",
            config.socket.display(),
            config.audit_dir().display()
        );
    }
    agent::serve(agent, listener, &config.socket, stop)?;
    Ok(())
}

/// Opens the configured keys (asking for passphrases as needed) and binds the socket.
pub fn start(
    ctx: &Context,
    config: &AgentConfig,
) -> anyhow::Result<(Arc<Agent>, std::os::unix::net::UnixListener)> {
    let source = ctx.passphrases()?;
    Ok(agent::start(
        config,
        &Keyring::new(std::path::Path::new("."), &source),
    )?)
}

/// `signer add-key`: the key, its public half written next to the configuration.
fn add_key(
    ctx: &Context,
    config: &std::path::Path,
    role: &str,
    key_type: &str,
    pkcs11: Option<&str>,
) -> anyhow::Result<()> {
    let algorithm: sealwright_crypto::Algorithm = key_type.parse()?;
    let source = ctx.passphrases()?;
    let dir = config.parent().unwrap_or(std::path::Path::new("."));
    let keyring = Keyring::new(dir, &source);
    let added = agent::add_key(config, &keyring, role, algorithm, pkcs11)?;
    let public = dir.join(format!("{}.pub.pem", added.name));
    sealwright_repo::fsutil::write_atomic(&public, added.public_pem.as_bytes())?;
    let socket = AgentConfig::load(config)?.socket;
    crate::output::emit(ctx.json, &added, || {
        println!(
            "made {} key {} ({}) for the agent; its public key is {}",
            added.role,
            added.name,
            added.keyid,
            public.display()
        );
        println!("restart the agent, then on the publishing machine:");
        println!(
            "  sealwright key import {} --name {} --role {} --agent {}",
            public.display(),
            added.name,
            added.role,
            socket.display()
        );
        println!("  sealwright key revoke OLD-KEY --reason \"...\"   # or keep both: publish");
    })
}
