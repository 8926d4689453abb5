//! `sealwright token`: push tokens for the publish API (`sealwright serve --push`).

use sealwright_server::tokens::{self, TokenHome};

use super::Context;
use crate::output::emit;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: TokenCommand,
    /// For replicas: change the tokens in their shared store (its --store and --objects)
    /// instead of DIR/push-tokens.toml; every replica sees the change at its next request.
    #[command(flatten)]
    shared: super::shared_store::StoreArgs,
}

#[derive(Debug, clap::Subcommand)]
pub enum TokenCommand {
    /// Create a push token and print it once (the server keeps only its SHA-256, in
    /// DIR/push-tokens.toml). Give it to the publisher: `sealwright push --token-file`.
    ///
    /// Example: a CI job that may release `app/*` through the delegated role `ci`:
    ///   sealwright --repo /srv/repo token add ci --role ci --path 'app/*'
    Add {
        /// Name of the holder (recorded in the audit log with each push).
        name: String,
        /// A role it may push (repeat for more): `targets` or a delegated role.
        #[arg(long = "role", value_name = "ROLE", required = true)]
        roles: Vec<String>,
        /// Only targets matching this pattern (repeat for more; `*` and `?` never match `/`).
        /// Without it, whatever the roles themselves are delegated.
        #[arg(long = "path", value_name = "PATTERN")]
        paths: Vec<String>,
        /// Instead of a token: the publisher's TLS client certificate (PEM). The server,
        /// started with `serve --push --client-ca CA.pem`, accepts pushes from a connection
        /// presenting this exact certificate; nothing secret is printed.
        #[arg(long, value_name = "CERT.pem")]
        client_cert: Option<std::path::PathBuf>,
        /// Write the token to this file (mode 0600) instead of stdout.
        #[arg(short, long, value_name = "FILE", conflicts_with = "client_cert")]
        output: Option<std::path::PathBuf>,
    },
    /// List tokens (names and scopes; secrets are not kept).
    List,
    /// Remove a token or registered client certificate: its holder can no longer push (the
    /// server reads the token file on every request, no restart needed).
    Remove {
        /// Name given at `token add`.
        name: String,
    },
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<()> {
    let shared = args.shared.open()?;
    let home = match &shared {
        Some(s) => TokenHome::Shared(s.store()),
        None => TokenHome::Dir(&ctx.repo),
    };
    match args.command {
        TokenCommand::Add {
            name,
            roles,
            paths,
            client_cert: Some(cert),
            ..
        } => {
            let fingerprint = sealwright_client::tls::certificate_sha256(&cert)?;
            tokens::add_client_cert(&ctx.repo, home, &name, &roles, &paths, &fingerprint)?;
            let out = serde_json::json!({"name": name, "client_cert_sha256": fingerprint, "roles": roles, "paths": paths});
            emit(ctx.json, &out, || {
                println!(
                    "{name} may push {} with the client certificate sha256:{fingerprint}",
                    roles.join(", ")
                );
                println!("the server must run with --client-ca naming the CA that issued it; the publisher runs `sealwright push --client-cert CERT.pem --client-key KEY.pem`");
            })
        }
        TokenCommand::Add {
            name,
            roles,
            paths,
            client_cert: None,
            output,
        } => {
            let token = tokens::add_token(&ctx.repo, home, &name, &roles, &paths)?;
            if let Some(file) = &output {
                sealwright_repo::fsutil::write_atomic_private(file, format!("{}\n", token.as_str()).as_bytes())
                    .map_err(|e| anyhow::anyhow!("writing the token to {}: {e}; it was created: `sealwright token remove {name}` and add it again", file.display()))?;
            }
            let shown = if output.is_some() {
                None
            } else {
                Some(token.as_str())
            };
            let out =
                serde_json::json!({"name": name, "token": shown, "roles": roles, "paths": paths});
            emit(ctx.json, &out, || {
                match &output {
                    Some(file) => {
                        println!("token {name} written to {} (mode 0600)", file.display())
                    }
                    None => println!("{}", token.as_str()),
                }
                let scope = format!(
                    "token {name} may push {}{}",
                    roles.join(", "),
                    if paths.is_empty() {
                        String::new()
                    } else {
                        format!(" for paths {}", paths.join(", "))
                    }
                );
                match &output {
                    Some(_) => eprintln!("{scope}: the publisher passes the file with --token-file."),
                    None => eprintln!("{scope}. It is shown only now: store it as a secret (the publisher passes it with --token-file)."),
                }
            })
        }
        TokenCommand::Remove { name } => {
            tokens::remove_token(&ctx.repo, home, &name)?;
            let out = serde_json::json!({"removed": name});
            emit(ctx.json, &out, || {
                println!("token {name} removed: its holder can no longer push");
            })
        }
        TokenCommand::List => {
            let (tokens, _) = home.load()?;
            let list: Vec<_> = tokens
                .tokens
                .iter()
                .map(|t| serde_json::json!({"name": t.name, "roles": t.roles, "paths": t.paths, "client_cert_sha256": t.client_cert}))
                .collect();
            emit(ctx.json, &list, || {
                if tokens.tokens.is_empty() {
                    println!(
                        "no push tokens (create one with `sealwright token add NAME --role ROLE`)"
                    );
                }
                for t in &tokens.tokens {
                    println!(
                        "{:<20} roles {:<24} paths {:<24} {}",
                        t.name,
                        t.roles.join(","),
                        if t.paths.is_empty() {
                            "(as delegated)".to_owned()
                        } else {
                            t.paths.join(",")
                        },
                        t.client_cert
                            .as_deref()
                            .map_or("token".to_owned(), |c| format!(
                                "client certificate sha256:{c}"
                            ))
                    );
                }
            })
        }
    }
}
