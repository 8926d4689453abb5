//! `sealwright`: sign software releases and publish them as a TUF repository.
//!
//! This binary is thin: it parses arguments, asks for passphrases, prints results, and calls
//! the library crates that do the work.

mod cmd;
mod output;
mod passphrase;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// mimalloc instead of the system allocator: reading and writing a role with 100,000
/// targets makes over a million small allocations, and glibc's malloc spent a third of a
/// publish on them (measured with `perf`, `scripts/bench publish`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Sign software releases and publish them so that only trusted code is ever installed.
///
/// A repository is a directory holding `sealwright.toml` (keys, roles, thresholds, expiry),
/// encrypted keys in `keys/`, staged changes in `staged/`, and the servable tree in
/// `published/` (point any static web server or bucket at it).
///
/// Typical use:
///   sealwright init myrepo
///   sealwright --repo myrepo add ./build/app --name app --version 1.2.0 --channel stable
///   sealwright --repo myrepo publish
#[derive(Debug, Parser)]
#[command(
    name = "sealwright",
    version,
    verbatim_doc_comment,
    max_term_width = 100
)]
struct Cli {
    /// Repository directory.
    #[arg(long, global = true, env = "SEALWRIGHT_REPO", default_value = ".")]
    repo: PathBuf,

    /// Read key passphrases from this environment variable (instead of
    /// $SEALWRIGHT_PASSPHRASE_FILE or a prompt).
    #[arg(long, global = true, value_name = "VAR")]
    passphrase_env: Option<String>,

    /// Print machine-readable JSON on stdout.
    #[arg(long, global = true)]
    json: bool,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create a repository: policy, one key per top-level role, and the first signed metadata.
    Init(cmd::init::Args),
    /// Keys and their life: generate (files or PKCS#11 tokens), import, list, audit, rotate,
    /// revoke, escrow and recover.
    #[command(subcommand)]
    Key(cmd::key::KeyCommand),
    /// Stage artifacts (files or directory trees) as a release: name, version, channel.
    Add(cmd::add::Args),
    /// Delegate a path space to a new role, or spread it over TAP 15 succinct hash bins.
    Delegate(cmd::delegate::Args),
    /// Sign everything staged and publish it atomically into `published/`.
    Publish(cmd::publish::Args),
    /// Publish through a server's publish API: sign the staged targets roles here, upload
    /// them and their artifacts; the server verifies them and signs snapshot and timestamp.
    Push(cmd::push::Args),
    /// Make a data directory for `serve --push` from this repository: the published tree and
    /// a policy that names no key file (snapshot and timestamp must be in a signer agent).
    ServerInit(cmd::server_init::Args),
    /// Set up a server that holds no key, in one step: agent config, server directory,
    /// first push token, certificate, systemd units (`server setup DIR`).
    #[command(subcommand)]
    Server(cmd::server::ServerCommand),
    /// Push tokens for the publish API (`serve --push`): create, list, remove.
    Token(cmd::token::Args),
    /// Write an offline signing request for ROLE to stdout.
    SignRequest(cmd::offline::RequestArgs),
    /// Sign a signing request with a key (run this on the offline machine): shows what it
    /// changes against the published version and refuses flagged changes unless accepted.
    Sign(cmd::offline::SignArgs),
    /// Import a signature made offline into the pending role.
    SignImport(cmd::offline::ImportArgs),
    /// List versions waiting for offline signatures: who has signed, who has not.
    SignStatus(cmd::offline::StatusArgs),
    /// Show what is staged and when each role expires.
    Status(cmd::status::Args),
    /// Verify the published repository offline, from its root through every target file.
    Verify(cmd::verify::Args),
    /// Serve `published/` over HTTPS (HTTP/2, caching headers, ranges, /healthz, /metrics).
    Serve(cmd::serve::Args),
    /// Set up a device's client directory (trusted root, repository URL, TLS trust).
    #[command(subcommand)]
    Client(cmd::client::ClientCommand),
    /// Install the newest verified release into a client directory (atomic switch,
    /// health check, rollback, quarantine, failure log).
    Update(cmd::update::Args),
    /// Offline bundles: metadata chain + artifact in one file for air-gapped devices.
    #[command(subcommand)]
    Bundle(cmd::bundle::BundleCommand),
    /// The signer agent: a separate process holding the online (timestamp, snapshot) keys
    /// and the transparency log's key.
    #[command(subcommand)]
    Signer(cmd::signer::SignerCommand),
    /// The repository's audit log: verify its hash chain, list records.
    #[command(subcommand)]
    Audit(cmd::audit::AuditCommand),
    /// The transparency log: its verifier key, its witnesses.
    #[command(subcommand)]
    Log(cmd::log::LogCommand),
    /// Watch a repository and its transparency log; report (JSON lines, webhook, exit
    /// status) a log that is not append-only, unknown signing keys, versions published but
    /// not logged or logged but not published, version jumps, re-pointed artifacts and an
    /// audit log that went backwards.
    Monitor(cmd::monitor::Args),
    /// Write the evidence for one release: the metadata chain that lists its artifact and the
    /// transparency log's proofs, checked offline by `verify-release`.
    Evidence(cmd::evidence::Args),
    /// Decide offline whether an artifact is a published release: the TUF chain from a root
    /// you trust, the artifact's signed entry, and (with --log-key) the transparency log's
    /// proofs, from evidence (`evidence`, or an offline bundle). Explains each check.
    VerifyRelease(cmd::verify_release::Args),
    /// Run a witness (c2sp.org/tlog-witness) that cosigns a log's checkpoints only when each
    /// extends the last it cosigned.
    #[command(subcommand)]
    Witness(cmd::witness::WitnessCommand),
    /// Run a release build in a clean environment (bubblewrap when available) and, only if
    /// it succeeds, sign SLSA provenance of its products; writes the products, the
    /// provenance, the build log and an SBOM.
    Build(cmd::build::Args),
    /// Stage a finished build (the output directory of `build`) as a release, with its
    /// provenance, build log, SBOMs and any reproductions bound to it in signed metadata.
    StageBuild(cmd::stage_build::Args),
    /// Rebuild a release from what its provenance records and, when every product has the
    /// same bytes, sign a reproduction attestation; a mismatch names what differs.
    Rebuild(cmd::rebuild::Args),
    /// Decide offline whether an artifact is what a trusted builder built, from its signed
    /// provenance.
    VerifyProvenance(cmd::verify_provenance::Args),
    /// The dependency policy: lockfiles checked for unlisted sources, missing or weak
    /// checksums, dependency confusion and look-alike names.
    #[command(subcommand)]
    Deps(cmd::deps::DepsCommand),
    /// The software bill of materials of a release (CycloneDX 1.6 or SPDX 2.3): its
    /// artifacts and every component its lockfiles resolved.
    Sbom(cmd::sbom::Args),
    /// Demo: create a repository, publish a release and verify it, narrating each step.
    Quickstart(cmd::quickstart::Args),
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let ctx = cmd::Context {
        repo: cli.repo,
        passphrase_env: cli.passphrase_env,
        json: cli.json,
    };
    let result = match cli.command {
        Command::Init(a) => cmd::init::run(&ctx, a),
        Command::Key(a) => cmd::key::run(&ctx, a),
        Command::Add(a) => cmd::add::run(&ctx, a),
        Command::Delegate(a) => cmd::delegate::run(&ctx, a),
        Command::Publish(a) => cmd::publish::run(&ctx, a),
        Command::Push(a) => cmd::push::run(&ctx, a),
        Command::ServerInit(a) => cmd::server_init::run(&ctx, a),
        Command::Server(a) => cmd::server::run(&ctx, a),
        Command::Token(a) => cmd::token::run(&ctx, a),
        Command::SignRequest(a) => cmd::offline::request(&ctx, a),
        Command::Sign(a) => cmd::offline::sign(&ctx, a),
        Command::SignImport(a) => cmd::offline::import(&ctx, a),
        Command::SignStatus(a) => cmd::offline::status(&ctx, a),
        Command::Status(a) => cmd::status::run(&ctx, a),
        Command::Verify(a) => cmd::verify::run(&ctx, a),
        Command::Serve(a) => cmd::serve::run(&ctx, a),
        Command::Client(a) => cmd::client::run(&ctx, a),
        Command::Update(a) => cmd::update::run(&ctx, a),
        Command::Bundle(a) => cmd::bundle::run(&ctx, a),
        Command::Audit(a) => cmd::audit::run(&ctx, a),
        Command::Log(a) => cmd::log::run(&ctx, a),
        Command::Witness(a) => cmd::witness::run(&ctx, a),
        Command::Monitor(a) => cmd::monitor::run(&ctx, a),
        Command::Evidence(a) => cmd::evidence::run(&ctx, a),
        Command::Sbom(a) => cmd::sbom::run(&ctx, a),
        Command::Deps(a) => cmd::deps::run(&ctx, a),
        Command::Build(a) => cmd::build::run(&ctx, a),
        Command::Rebuild(a) => cmd::rebuild::run(&ctx, a),
        Command::StageBuild(a) => cmd::stage_build::run(&ctx, a),
        Command::VerifyProvenance(a) => cmd::verify_provenance::run(&ctx, a),
        Command::VerifyRelease(a) => cmd::verify_release::run(&ctx, a),
        Command::Signer(a) => cmd::signer::run(&ctx, a),
        Command::Quickstart(a) => cmd::quickstart::run(&ctx, a),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", one_line(&e));
            std::process::ExitCode::FAILURE
        }
    }
}

/// One line a tired person can act on: the outermost context first, then each cause —
/// once. Many errors already name their cause in their own message; a cause the line
/// already says is not said again.
fn one_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain().map(|c| c.to_string()) {
        if line.contains(&cause) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&cause);
    }
    line
}
