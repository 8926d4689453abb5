//! `sealwright server setup DIR`: a key-less server for this repository in one step (see
//! `sealwright_server::setup` for what it writes and what it guarantees).

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::Context as _;
use sealwright_server::setup::{self, ServerCertificate, SetupOptions};

use super::Context;
use crate::passphrase::PASSPHRASE_FILE_ENV;

#[derive(Debug, clap::Subcommand)]
pub enum ServerCommand {
    /// Set up a server that holds no key, for this repository, in one step: the signer
    /// agent's config (the online keys move into DIR/agent/keys), the server's data directory
    /// (DIR/server), the first push token, a certificate (self-signed unless --cert/--key),
    /// and a systemd unit for each of the two services. Prints the token once, and the
    /// commands to start both.
    ///
    /// Example, on the machine that will serve updates.example.com:
    ///
    ///   sealwright --repo myrepo server setup /srv/sealwright \
    ///       --listen 0.0.0.0:8443 --host updates.example.com --token-out ci.token
    ///   cp /srv/sealwright/systemd/*.service /etc/systemd/system/
    ///   systemctl daemon-reload && systemctl enable --now sealwright-agent sealwright-server
    ///
    /// Then publish from the repository with
    /// `sealwright --repo myrepo push --server URL --token-file ci.token`.
    Setup(SetupArgs),
}

#[derive(Debug, clap::Args)]
pub struct SetupArgs {
    /// The new directory (absent or empty) for the agent, the server and the units.
    dir: PathBuf,
    /// Address the server will listen on.
    #[arg(long, default_value = "127.0.0.1:8443")]
    listen: SocketAddr,
    /// Name publishers and devices use to reach the server (repeat for more; the first is
    /// in the URL). The self-signed certificate covers them and the loopback names.
    #[arg(long = "host", value_name = "NAME")]
    hosts: Vec<String>,
    /// The server's certificate chain (PEM, leaf first) from your CA; needs --key.
    /// Without it a self-signed certificate is written to DIR/tls/.
    #[arg(long, value_name = "FILE", requires = "key")]
    cert: Option<PathBuf>,
    /// The private key of --cert (PEM).
    #[arg(long, value_name = "FILE", requires = "cert")]
    key: Option<PathBuf>,
    /// Name of the first push token (it may push role targets).
    #[arg(long, default_value = "publisher")]
    token_name: String,
    /// Write the token to this file (mode 0600) instead of printing it.
    #[arg(long, value_name = "FILE")]
    token_out: Option<PathBuf>,
    /// The file with the online keys' passphrase that the agent's unit reads (as a systemd
    /// credential). Default: $SEALWRIGHT_PASSPHRASE_FILE, else /etc/sealwright/agent-passphrase.
    #[arg(long, value_name = "FILE")]
    passphrase_file: Option<PathBuf>,
}

pub fn run(ctx: &Context, cmd: ServerCommand) -> anyhow::Result<()> {
    let ServerCommand::Setup(args) = cmd;
    ctx.policy()?;
    let passphrase_file = match args
        .passphrase_file
        .or_else(|| std::env::var_os(PASSPHRASE_FILE_ENV).map(PathBuf::from))
    {
        Some(file) => std::path::absolute(&file).context("resolving the passphrase file")?,
        None => PathBuf::from("/etc/sealwright/agent-passphrase"),
    };
    let certificate = match (args.cert, args.key) {
        (Some(cert), Some(key)) => ServerCertificate::Files { cert, key },
        _ => ServerCertificate::SelfSigned,
    };
    let made = setup::setup(&SetupOptions {
        repo: ctx.repo.clone(),
        dir: args.dir,
        token_name: args.token_name,
        listen: args.listen,
        hosts: args.hosts,
        certificate,
        exe: std::env::current_exe().context("finding the sealwright binary")?,
        passphrase_file,
    })?;
    if let Some(out) = &args.token_out {
        sealwright_repo::fsutil::write_atomic_private(out, format!("{}\n", *made.token).as_bytes())
            .with_context(|| format!("writing the token to {} (set up; remove it with `sealwright --repo {} token remove {}` and add another)", out.display(), made.server.dir.display(), made.token_name))?;
    }
    if ctx.json {
        let mut value = serde_json::to_value(&made)?;
        if let (None, Some(object)) = (&args.token_out, value.as_object_mut()) {
            object.insert("token".into(), made.token.to_string().into());
        }
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(());
    }
    let d = &made.dir;
    println!("server set up in {}:", d.display());
    println!(
        "  agent    {}  holds {} (moved out of {})",
        made.agent_config.display(),
        made.moved_keys.join(", "),
        ctx.repo.join("keys").display()
    );
    println!(
        "  log      {}  the transparency log's key, new, in the agent",
        made.log_key
    );
    println!(
        "  server   {}  published tree and policy, no key",
        made.server.dir.display()
    );
    if made.self_signed {
        println!(
            "  tls      {}  self-signed: devices and publishers pass --ca {}",
            made.cert.display(),
            made.cert.display()
        );
    }
    for unit in &made.units {
        println!("  unit     {}", unit.display());
    }
    match &args.token_out {
        Some(out) => println!(
            "push token {} (role targets) written to {}",
            made.token_name,
            out.display()
        ),
        None => println!(
            "push token {} (role targets), shown once:\n  {}",
            made.token_name, *made.token
        ),
    }
    println!("start both now (each in its own terminal):");
    println!(
        "  {PASSPHRASE_FILE_ENV}={} {}",
        made.passphrase_file.display(),
        shell_words(&made.agent_command)
    );
    println!("  {}", shell_words(&made.server_command));
    println!("or as services:");
    println!(
        "  cp {}/systemd/*.service /etc/systemd/system/ && systemctl daemon-reload",
        d.display()
    );
    println!("  systemctl enable --now sealwright-agent sealwright-server");
    println!("publish from here:");
    let ca = if made.self_signed {
        format!(" --ca {}", made.cert.display())
    } else {
        String::new()
    };
    println!(
        "  sealwright --repo {} push --server {} --token-file {}{ca}",
        ctx.repo.display(),
        made.url,
        args.token_out
            .as_deref()
            .map_or_else(|| "FILE".to_owned(), |p| p.display().to_string())
    );
    Ok(())
}

/// A command as one line a POSIX shell reads back the same (single quotes where needed).
fn shell_words(words: &[String]) -> String {
    words
        .iter()
        .map(|w| {
            if !w.is_empty()
                && w.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_./:=@%+,".contains(c))
            {
                w.clone()
            } else {
                format!("'{}'", w.replace('\'', r"'\''"))
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}
