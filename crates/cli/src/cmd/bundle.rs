//! `sealwright bundle create`: one file with the metadata chain and the artifact of the
//! newest release of a product, for air-gapped devices (`sealwright update --bundle`).

use std::path::PathBuf;

use anyhow::Context as _;

use super::Context;
use crate::output::emit;

#[derive(Debug, clap::Subcommand)]
pub enum BundleCommand {
    /// Make an offline bundle of the newest release of NAME on CHANNEL.
    ///
    /// From the local repository (its published/ tree, trusting its 1.root.json):
    ///   sealwright --repo myrepo bundle create --name app -o app.bundle
    /// From a served repository (trusting the root you give):
    ///   sealwright bundle create --repo-url https://updates.example.com/ --root root.json \
    ///       --name app -o app.bundle
    ///
    /// The bundle is made by running the client and recording what it fetched, so it is only
    /// written if everything verified. Devices apply it with the same checks as online:
    ///   sealwright update --dir /var/lib/app --bundle app.bundle
    #[command(verbatim_doc_comment)]
    Create(CreateArgs),
}

#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    #[command(flatten)]
    source: Source,
    /// Product.
    #[arg(long)]
    name: String,
    /// Channel.
    #[arg(long, default_value = "stable")]
    channel: String,
    /// Bundle file to write.
    #[arg(short = 'o', long = "output", value_name = "FILE")]
    output: PathBuf,
}

/// Where a bundle or evidence is made from: a served repository, or --repo's published tree.
#[derive(Debug, clap::Args)]
pub struct Source {
    /// Fetch from this served repository instead of --repo's published/ tree.
    #[arg(long, value_name = "URL")]
    repo_url: Option<String>,
    /// Trusted root for --repo-url (default with --repo: published/metadata/1.root.json).
    #[arg(long)]
    root: Option<PathBuf>,
    /// CA certificate(s) for --repo-url (default: the Mozilla roots).
    #[arg(long, value_name = "CA.pem")]
    ca: Option<PathBuf>,
}

impl Source {
    /// The fetcher, its base URL and the root to start from.
    pub fn open(
        &self,
        ctx: &Context,
    ) -> anyhow::Result<(Box<dyn sealwright_client::fetch::Fetcher>, String, Vec<u8>)> {
        match &self.repo_url {
            Some(url) => {
                let root_path = self
                    .root
                    .as_ref()
                    .context("--repo-url needs --root ROOT.json (the root you trust)")?;
                let root = Context::read_root(root_path)?;
                let base = if url.ends_with('/') {
                    url.clone()
                } else {
                    format!("{url}/")
                };
                let mut tls = sealwright_client::tls::TlsOptions::default();
                if let Some(ca) = &self.ca {
                    tls = tls.with_ca_file(ca)?;
                }
                let fetcher = sealwright_client::HttpFetcher::with_tls(&base, &tls)?;
                Ok((Box::new(fetcher), base, root))
            }
            None => {
                let published = ctx.repo.join("published");
                let root_path = self
                    .root
                    .clone()
                    .unwrap_or_else(|| published.join("metadata/1.root.json"));
                let root = Context::read_root(&root_path).with_context(|| {
                    format!(
                        "reading {} (publish the repository first, or pass --repo-url)",
                        root_path.display()
                    )
                })?;
                let base = "repo:";
                let fetcher = sealwright_client::bundle::DirFetcher::new(base, &published);
                Ok((Box::new(fetcher), base.to_owned(), root))
            }
        }
    }
}

pub fn run(ctx: &Context, cmd: BundleCommand) -> anyhow::Result<()> {
    let BundleCommand::Create(args) = cmd;
    let (fetcher, base, root) = args.source.open(ctx)?;
    let manifest = sealwright_client::bundle::create_bundle(
        &*fetcher,
        &base,
        &root,
        &args.name,
        &args.channel,
        &args.output,
    )?;
    emit(ctx.json, &manifest, || {
        println!(
            "bundle {} holds {} {} ({} files); apply it with `sealwright update --dir DIR --bundle {}`",
            args.output.display(),
            manifest.name,
            manifest.version,
            manifest.files.len(),
            args.output.display()
        );
    })
}
