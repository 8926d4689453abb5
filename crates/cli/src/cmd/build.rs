//! `sealwright build`: run a release build in a clean environment and, only when it
//! succeeds, sign SLSA provenance of its products (PRODUCT.md P6).
//!
//! Guarantees:
//! - the command runs with a scrubbed environment (a fixed PATH, its own HOME and TMPDIR,
//!   C.UTF-8, UTC, `SOURCE_DATE_EPOCH` from the source commit), recorded in the provenance;
//!   inside bubblewrap when the machine has it (no network, the file system read-only
//!   except the source and its temporary directory) — and the provenance and the output
//!   say which;
//! - nothing is signed unless the command exits 0 and every `--output` exists;
//! - the provenance names the exact inputs: the git commit and tree (and whether the
//!   working tree had uncommitted changes), every lockfile's SHA-256, the toolchain's
//!   versions, the command, start and end;
//! - the products, the signed provenance (DSSE), the build log and a CycloneDX SBOM are
//!   written to the output directory, each atomically.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::Context as _;
use serde::Serialize;
use serde_json::json;

use sealwright_attest::dsse::{Envelope, IN_TOTO_PAYLOAD_TYPE};
use sealwright_attest::lockfile;
use sealwright_attest::sbom::{self, Artifact};
use sealwright_attest::slsa::{
    BuildDefinition, BuildMetadata, Builder, Provenance, RunDetails, PROVENANCE_V1,
};
use sealwright_attest::statement::{ResourceDescriptor, Statement};

use super::Context;
use crate::output::emit;

#[derive(Debug, clap::Args)]
#[command(after_help = "Example:
  sealwright build --name app --version 1.2.0 --output app --key builder.pem -- make app

Writes dist/app-1.2.0/: the products, provenance.intoto.json (DSSE, in-toto Statement v1,
SLSA Provenance v1), the same as a keyed Sigstore bundle (provenance.sigstore.json),
build.log, sbom.cdx.json (CycloneDX 1.6) and sbom.spdx.json (SPDX 2.3). Verify with
  sealwright verify-provenance --key builder.pub.pem dist/app-1.2.0/provenance.intoto.json PRODUCT")]
pub struct Args {
    /// Product name.
    #[arg(long)]
    name: String,
    /// Version of the release.
    #[arg(long)]
    version: String,
    /// A file the command produces (relative to the source directory); repeatable.
    #[arg(long = "output", value_name = "PATH", required = true)]
    outputs: Vec<PathBuf>,
    /// The builder's private key (PKCS#8 PEM; encrypted ones ask for the passphrase).
    #[arg(long, value_name = "KEY.pem")]
    key: PathBuf,
    /// The source directory (a git work tree).
    #[arg(long, default_value = ".")]
    source: PathBuf,
    /// Where to write products and evidence (default: dist/NAME-VERSION under the source).
    #[arg(long, value_name = "DIR")]
    out_dir: Option<PathBuf>,
    /// The builder's identity in the provenance (a URI).
    #[arg(long, default_value = "https://sealwright.dev/builders/local")]
    builder_id: String,
    /// Stage the products with their evidence (provenance, build log, SBOM) in the
    /// repository (--repo) for the next `publish` or `push`, the evidence bound to the
    /// artifacts in the signed targets metadata.
    #[arg(long)]
    stage: bool,
    /// Channel of the staged release (with --stage).
    #[arg(long, requires = "stage")]
    channel: Option<String>,
    /// Stage for this delegated role instead of the top-level targets role.
    #[arg(long, value_name = "ROLE", requires = "stage")]
    delegation: Option<String>,
    /// The build command and its arguments.
    #[arg(last = true, required = true)]
    command: Vec<String>,
}

/// The dependency policy `build` applies when the source has one (`sealwright deps check`).
pub const DEPS_POLICY_FILE: &str = "sealwright-deps.toml";
/// The template the provenance's parameters follow (docs/provenance.md).
pub const BUILD_TYPE: &str = "https://sealwright.dev/build/v1";
/// Largest build log kept.
pub const MAX_LOG: u64 = 64 * 1024 * 1024;
/// PATH inside the build.
const BUILD_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

#[derive(Serialize)]
struct Report {
    staged: bool,
    products: Vec<Artifact>,
    provenance: PathBuf,
    build_log: PathBuf,
    sbom: PathBuf,
    sbom_spdx: PathBuf,
    sandbox: &'static str,
    git_commit: String,
}

/// The source's git state: commit, tree, commit time, uncommitted changes.
struct GitSource {
    commit: String,
    tree: String,
    time: i64,
    dirty: bool,
    remote: Option<String>,
}

/// `git -C DIR ARGS`, its output trimmed; its stderr in the error.
pub(crate) fn git(source: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new("git")
        .arg("-C")
        .arg(source)
        .args(args)
        .output()
        .context("running git (the source must be a git work tree)")?;
    anyhow::ensure!(
        out.status.success(),
        "git {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn git_source(source: &Path) -> anyhow::Result<GitSource> {
    let commit = git(source, &["rev-parse", "HEAD"]).with_context(|| {
        format!(
            "{} is not a git work tree with a commit: the provenance names the exact source",
            source.display()
        )
    })?;
    Ok(GitSource {
        tree: git(source, &["rev-parse", "HEAD^{tree}"])?,
        time: git(source, &["log", "-1", "--format=%ct"])?
            .parse()
            .context("git log: the commit time is not a number")?,
        dirty: !git(source, &["status", "--porcelain"])?.is_empty(),
        remote: git(source, &["config", "--get", "remote.origin.url"]).ok(),
        commit,
    })
}

/// The first line of `TOOL --version` (or `go version`) of each compiler found.
fn toolchain() -> serde_json::Map<String, serde_json::Value> {
    let mut found = serde_json::Map::new();
    for tool in [
        "cc", "gcc", "clang", "rustc", "cargo", "go", "node", "python3", "make",
    ] {
        let arg = if tool == "go" { "version" } else { "--version" };
        let Ok(out) = Command::new(tool)
            .arg(arg)
            .env_clear()
            .env("PATH", BUILD_PATH)
            .output()
        else {
            continue;
        };
        if out.status.success() {
            let text = String::from_utf8_lossy(&out.stdout);
            if let Some(line) = text.lines().next() {
                found.insert(tool.to_owned(), json!(line.trim()));
            }
        }
    }
    found
}

/// Whether bubblewrap can run here (user namespaces allowed).
fn bubblewrap_works() -> bool {
    Command::new("bwrap")
        .args([
            "--die-with-parent",
            "--unshare-all",
            "--ro-bind",
            "/",
            "/",
            "--",
            "true",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

fn rfc3339(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<()> {
    let key = ctx.open_private_key(&args.key, "builder")?;
    let source = std::fs::canonicalize(&args.source)
        .with_context(|| format!("the source {}", args.source.display()))?;
    let git = git_source(&source)?;
    if git.dirty {
        eprintln!(
            "warning: {} has uncommitted changes; the provenance records that it is dirty",
            source.display()
        );
    }
    let out_dir = args.out_dir.clone().unwrap_or_else(|| {
        source
            .join("dist")
            .join(format!("{}-{}", args.name, args.version))
    });
    std::fs::create_dir_all(&out_dir).with_context(|| format!("creating {}", out_dir.display()))?;

    // Materials: every lockfile at the top of the source.
    let mut lockfiles = Vec::new();
    let mut components = Vec::new();
    for name in lockfile::LOCKFILE_NAMES {
        let path = source.join(name);
        let Some(bytes) = sealwright_repo::fsutil::read_capped_if_exists(
            &path,
            lockfile::MAX_LOCKFILE_BYTES as u64,
        )
        .with_context(|| format!("reading {}", path.display()))?
        else {
            continue;
        };
        components.extend(lockfile::parse(name, &bytes)?);
        lockfiles.push(ResourceDescriptor {
            name: name.to_owned(),
            digest: [(
                "sha256".to_owned(),
                sealwright_crypto::digest::sha256_hex(&bytes),
            )]
            .into(),
            ..ResourceDescriptor::default()
        });
    }

    // The dependency policy, when the source has one, before anything runs.
    let policy_path = source.join(DEPS_POLICY_FILE);
    if policy_path.is_file() {
        let policy = super::deps::load_policy(&policy_path)?;
        let findings = sealwright_attest::deps::check(&policy, &components);
        if !findings.is_empty() {
            let lines: Vec<String> = findings
                .iter()
                .map(|f| format!("  {}: {}", f.component, f.message))
                .collect();
            anyhow::bail!(
                "the dependency policy ({}) refuses {} component(s); nothing was built or signed:\n{}",
                policy_path.display(),
                findings.len(),
                lines.join("\n")
            );
        }
    }

    let Built {
        products,
        environment,
        sandbox,
        started,
        finished,
        log_path,
        log_bytes,
    } = clean_build(&source, &args.command, &args.outputs, &out_dir, git.time)?;

    let mut resolved = vec![ResourceDescriptor {
        uri: match &git.remote {
            Some(r) => format!("git+{r}"),
            None => format!("git+file://{}", source.display()),
        },
        digest: [
            ("gitCommit".to_owned(), git.commit.clone()),
            ("gitTree".to_owned(), git.tree.clone()),
        ]
        .into(),
        annotations: [("dirty".to_owned(), json!(git.dirty))].into(),
        ..ResourceDescriptor::default()
    }];
    resolved.extend(lockfiles);
    let provenance = Provenance {
        build_definition: BuildDefinition {
            build_type: BUILD_TYPE.to_owned(),
            external_parameters: [
                ("command".to_owned(), json!(args.command)),
                (
                    "outputs".to_owned(),
                    json!(args
                        .outputs
                        .iter()
                        .map(|o| o.display().to_string())
                        .collect::<Vec<_>>()),
                ),
                ("name".to_owned(), json!(args.name)),
                ("version".to_owned(), json!(args.version)),
            ]
            .into(),
            internal_parameters: [
                (
                    "environment".to_owned(),
                    json!(environment
                        .iter()
                        .cloned()
                        .collect::<std::collections::BTreeMap<_, _>>()),
                ),
                ("sandbox".to_owned(), json!(sandbox)),
                (
                    "toolchain".to_owned(),
                    serde_json::Value::Object(toolchain()),
                ),
            ]
            .into(),
            resolved_dependencies: resolved,
        },
        run_details: RunDetails {
            builder: Builder {
                id: args.builder_id.clone(),
                version: [(
                    "sealwright".to_owned(),
                    env!("CARGO_PKG_VERSION").to_owned(),
                )]
                .into(),
            },
            metadata: BuildMetadata {
                invocation_id: {
                    let mut id = [0u8; 16];
                    sealwright_crypto::random::fill(&mut id)?;
                    hex::encode(id)
                },
                started_on: rfc3339(started),
                finished_on: rfc3339(finished),
            },
            byproducts: vec![ResourceDescriptor::file(
                super::stage_build::LOG_FILE,
                &sealwright_crypto::digest::sha256_hex(&log_bytes),
            )],
        },
    };
    let statement = Statement::new(
        products
            .iter()
            .map(|p| ResourceDescriptor::file(&p.name, &p.sha256))
            .collect(),
        PROVENANCE_V1,
        serde_json::to_value(&provenance)?,
    );
    let envelope = Envelope::sign(IN_TOTO_PAYLOAD_TYPE, statement.to_bytes(), &[&key])?;
    let provenance_path = out_dir.join(super::stage_build::PROVENANCE_FILE);
    let provenance_bytes = envelope.to_json();
    sealwright_repo::fsutil::write_atomic(&provenance_path, &provenance_bytes)?;
    // The same envelope as a keyed Sigstore bundle, for cosign and sigstore-go users.
    sealwright_repo::fsutil::write_atomic(
        &out_dir.join("provenance.sigstore.json"),
        &sealwright_attest::sigstore::keyed_dsse_bundle(
            &envelope,
            sealwright_crypto::Signer::public_key(&key),
        )?,
    )?;
    let created = chrono::DateTime::from_timestamp(git.time, 0)
        .map(rfc3339)
        .unwrap_or_else(|| rfc3339(started));
    let release = sbom::Release {
        name: args.name.clone(),
        version: args.version.clone(),
        artifacts: products.clone(),
        components,
    };
    let sbom_path = out_dir.join(super::stage_build::CYCLONEDX_FILE);
    let sbom_bytes = sbom::cyclonedx(&release, &created, env!("CARGO_PKG_VERSION"));
    sealwright_repo::fsutil::write_atomic(&sbom_path, &sbom_bytes)?;
    let spdx_path = out_dir.join(super::stage_build::SPDX_FILE);
    sealwright_repo::fsutil::write_atomic(
        &spdx_path,
        &sbom::spdx(&release, &created, env!("CARGO_PKG_VERSION")),
    )?;
    let staged = if args.stage {
        super::stage_build::stage(
            ctx,
            &out_dir,
            &[],
            args.channel.as_deref(),
            args.delegation.as_deref(),
        )?;
        true
    } else {
        false
    };
    let report = Report {
        staged,
        products,
        provenance: provenance_path,
        build_log: log_path,
        sbom: sbom_path,
        sbom_spdx: spdx_path,
        sandbox,
        git_commit: git.commit,
    };
    emit(ctx.json, &report, || {
        for p in &report.products {
            println!("built {} ({} bytes, sha256 {})", p.name, p.length, p.sha256);
        }
        println!(
            "signed provenance: {} (sandbox: {}); log: {}; SBOMs: {}, {}",
            report.provenance.display(),
            report.sandbox,
            report.build_log.display(),
            report.sbom.display(),
            report.sbom_spdx.display()
        );
        if report.staged {
            println!("staged with its evidence; run `sealwright publish` (or `sealwright push`)");
        }
    })
}

/// What one clean build made.
pub struct Built {
    /// The products, copied into the output directory.
    pub products: Vec<Artifact>,
    /// The environment the command ran with (all of it).
    pub environment: Vec<(String, String)>,
    /// `bubblewrap` or `none`.
    pub sandbox: &'static str,
    /// Start of the command.
    pub started: chrono::DateTime<chrono::Utc>,
    /// End of the command.
    pub finished: chrono::DateTime<chrono::Utc>,
    /// The build log, in the output directory.
    pub log_path: PathBuf,
    /// Its bytes.
    pub log_bytes: Vec<u8>,
}

/// Runs `command` in `source` in the clean environment (bubblewrap when it works here),
/// its output logged to `out_dir/build.log`; on success copies each of `outputs` into
/// `out_dir`. Fails, signing nothing, when the command fails or an output is missing.
pub fn clean_build(
    source: &Path,
    argv: &[String],
    outputs: &[PathBuf],
    out_dir: &Path,
    source_date_epoch: i64,
) -> anyhow::Result<Built> {
    let (program, program_args) = argv
        .split_first()
        .context("give the build command after --")?;
    std::fs::create_dir_all(out_dir).with_context(|| format!("creating {}", out_dir.display()))?;
    // The clean environment.
    let scratch = tempfile::Builder::new()
        .prefix("sealwright-build-")
        .tempdir()
        .context("creating the build's temporary directory")?;
    let home = scratch.path().join("home");
    let tmp = scratch.path().join("tmp");
    std::fs::create_dir_all(&home)?;
    std::fs::create_dir_all(&tmp)?;
    let environment: Vec<(String, String)> = vec![
        ("PATH".into(), BUILD_PATH.into()),
        ("HOME".into(), home.display().to_string()),
        ("TMPDIR".into(), tmp.display().to_string()),
        ("LANG".into(), "C.UTF-8".into()),
        ("LC_ALL".into(), "C.UTF-8".into()),
        ("TZ".into(), "UTC".into()),
        ("SOURCE_DATE_EPOCH".into(), source_date_epoch.to_string()),
    ];
    let sandbox = if bubblewrap_works() {
        "bubblewrap"
    } else {
        "none"
    };
    let mut command = if sandbox == "bubblewrap" {
        let mut c = Command::new("bwrap");
        c.args(["--die-with-parent", "--unshare-all", "--ro-bind", "/", "/"])
            .args(["--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp"])
            .arg("--bind")
            .arg(source)
            .arg(source)
            .arg("--bind")
            .arg(scratch.path())
            .arg(scratch.path())
            .arg("--chdir")
            .arg(source)
            .arg("--")
            .args(argv);
        c
    } else {
        eprintln!(
            "warning: bubblewrap is not available here (apt-get install bubblewrap): the build runs without a sandbox, with network, and the provenance says so"
        );
        let mut c = Command::new(program);
        c.args(program_args).current_dir(source);
        c
    };
    let log_path = out_dir.join(super::stage_build::LOG_FILE);
    let log = std::fs::File::create(&log_path)
        .with_context(|| format!("creating {}", log_path.display()))?;
    command
        .env_clear()
        .envs(environment.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    eprintln!(
        "building in {} ({sandbox} sandbox): {}",
        source.display(),
        argv.join(" ")
    );
    let started = chrono::Utc::now();
    let status = command
        .status()
        .with_context(|| format!("running {program}"))?;
    let finished = chrono::Utc::now();
    let log_bytes = sealwright_repo::fsutil::read_capped(&log_path, MAX_LOG)
        .with_context(|| format!("reading {}", log_path.display()))?;
    if !status.success() {
        let text = String::from_utf8_lossy(&log_bytes);
        let tail: Vec<&str> = text.lines().rev().take(20).collect();
        anyhow::bail!(
            "the build failed ({status}); nothing was signed. Last lines of {}:\n{}",
            log_path.display(),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }

    // Products: each must exist; copied beside the evidence.
    let mut products = Vec::new();
    for output in outputs {
        let path = source.join(output);
        let name = output
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .with_context(|| format!("{} names no file", output.display()))?;
        // The copy is what is signed and shipped: it is hashed, not the build's file.
        let copy = out_dir.join(&name);
        sealwright_repo::fsutil::copy_atomic(&path, &copy).with_context(|| {
            format!(
                "the build succeeded but did not produce {}: nothing was signed",
                path.display()
            )
        })?;
        let digests = sealwright_crypto::digest::Hasher::sha256_only()
            .consume(std::fs::File::open(&copy)?)
            .with_context(|| format!("reading {}", copy.display()))?;
        products.push(Artifact {
            name,
            sha256: hex::encode(digests.sha256),
            length: digests.length,
        });
    }

    Ok(Built {
        products,
        environment,
        sandbox,
        started,
        finished,
        log_path,
        log_bytes,
    })
}
