//! `sealwright client init`: set up a device's client directory (trusted root, repository
//! URL, TLS trust) for `sealwright update`.

use std::path::PathBuf;

use serde::Serialize;

use super::Context;
use crate::output::emit;

#[derive(Debug, clap::Subcommand)]
pub enum ClientCommand {
    /// Create a client directory: pin the trusted root and record where updates come from.
    ///
    /// Example:
    ///   sealwright client init --dir /var/lib/app --root root.json \
    ///       --url https://updates.example.com/ --name app --channel stable
    ///
    /// The root must be obtained out of band (shipped with the device image); it is checked to
    /// be a valid self-signed TUF root before anything is written. Metadata is fetched from
    /// URL/metadata/ and artifacts from URL/targets/ (the layout `sealwright serve` serves).
    /// HTTPS is verified against the Mozilla roots, or only against --ca when given; --pin-spki
    /// additionally requires a certificate of the chain to carry a pinned public key.
    /// Plain http:// is accepted only for 127.0.0.1 / localhost.
    #[command(verbatim_doc_comment)]
    Init(InitArgs),
}

#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// Client directory to create (holds client.toml, metadata/, releases/, current, state.json).
    #[arg(long)]
    dir: PathBuf,
    /// The root.json you trust (e.g. published/metadata/1.root.json of the repository).
    #[arg(long)]
    root: PathBuf,
    /// Repository base URL, e.g. https://updates.example.com/
    #[arg(long)]
    url: String,
    /// PEM file of the CA certificate(s) to trust instead of the system's Mozilla roots.
    #[arg(long, value_name = "CA.pem")]
    ca: Option<PathBuf>,
    /// Require this SPKI pin (sha256/BASE64 of the server's or a CA's public key); repeatable.
    #[arg(long = "pin-spki", value_name = "sha256/BASE64")]
    pin_spki: Vec<String>,
    /// Product to install (the --name given to `sealwright add`). Without it, init reads
    /// the repository once and takes its only product on the channel; with several it is
    /// refused, naming them.
    #[arg(long)]
    name: Option<String>,
    /// Channel to follow.
    #[arg(long, default_value = "stable")]
    channel: String,
    /// (With --log-key, `update` also requires the checkpoint to extend the last one this
    /// device saw.)
    #[command(flatten)]
    log: super::log::RequireLogArgs,
    #[command(flatten)]
    provenance: super::verify_provenance::RequireProvenanceArgs,
}

#[derive(Serialize)]
struct Report {
    dir: PathBuf,
    metadata_url: String,
    targets_url: String,
    name: Option<String>,
    channel: String,
    ca: bool,
    spki_pins: usize,
}

pub fn run(ctx: &Context, cmd: ClientCommand) -> anyhow::Result<()> {
    let ClientCommand::Init(args) = cmd;
    let root = Context::read_root(&args.root)?;
    let ca = args
        .ca
        .as_ref()
        .map(|p| Context::read_text(p).map(String::into_bytes))
        .transpose()?;
    // Checked before anything is written.
    let log = args.log.policy()?;
    let provenance = args.provenance.policy()?;
    let mut config = sealwright_client::install::init_client(
        &args.dir,
        &root,
        &args.url,
        ca.as_deref(),
        &args.pin_spki,
        args.name.as_deref(),
        Some(&args.channel),
    )?;
    if let Some(log) = log {
        config = sealwright_client::install::require_log(&args.dir, log)?;
    }
    if let Some(provenance) = provenance {
        config = sealwright_client::install::require_provenance(&args.dir, provenance)?;
    }
    let report = Report {
        dir: args.dir.clone(),
        metadata_url: config.metadata_url,
        targets_url: config.targets_url,
        name: config.name,
        channel: config.channel,
        ca: config.ca_file.is_some(),
        spki_pins: config.spki_pins.len(),
    };
    emit(ctx.json, &report, || {
        println!(
            "client directory {} ready: trusting {}, updates from {}; run `sealwright update --dir {}`",
            args.dir.display(),
            args.root.display(),
            args.url,
            args.dir.display()
        );
    })
}
