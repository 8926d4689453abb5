//! `sealwright quickstart`: a narrated demo of the publishing workflow, start to finish.

use std::path::PathBuf;

use anyhow::Context as _;
use chrono::Utc;

use sealwright_crypto::{Algorithm, Passphrase};
use sealwright_repo::keystore::FixedPassphrase;
use sealwright_repo::policy::Policy;
use sealwright_repo::staging::Release;
use sealwright_repo::{publish, KeyStore};

use super::Context;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to create the demo (default: a new directory under the system temp dir).
    dir: Option<PathBuf>,
}

fn step(n: u32, text: &str) {
    println!("\n[{n}] {text}");
}

pub fn run(ctx: &Context, args: Args) -> anyhow::Result<()> {
    let dir = match args.dir {
        Some(d) => d,
        None => {
            let base = std::env::temp_dir();
            let mut n = 0u32;
            loop {
                let d = base.join(format!("sealwright-quickstart-{}-{n}", std::process::id()));
                if !d.exists() {
                    break d;
                }
                n += 1;
            }
        }
    };
    let repo = dir.join("repo");
    println!(
        "Sealwright quickstart: everything happens under {}",
        dir.display()
    );

    step(1, "Choosing a passphrase for the demo keys");
    let pass = match ctx.passphrases()? {
        crate::passphrase::CliPassphrase::Fixed(p) => {
            println!("    using the passphrase from your environment");
            p
        }
        crate::passphrase::CliPassphrase::Prompt => {
            let mut raw = [0u8; 12];
            sealwright_crypto::random::fill(&mut raw)?;
            let p = hex::encode(raw);
            std::fs::create_dir_all(&dir)?;
            let file = dir.join("demo-passphrase.txt");
            sealwright_repo::fsutil::write_atomic(&file, p.as_bytes())?;
            println!(
                "    generated a random one and saved it in {} (demo only!)",
                file.display()
            );
            println!(
                "    to use these keys later: export SEALWRIGHT_PASSPHRASE_FILE={}",
                file.display()
            );
            Passphrase::new(p)
        }
    };
    let source = FixedPassphrase(pass);
    let store = KeyStore::new(&repo, &source);

    step(2, "Creating a repository with one Ed25519 key per TUF role (root, targets, snapshot, timestamp)");
    let policy = sealwright_repo::init::create_repository(
        &repo,
        Policy::new_default(),
        Algorithm::Ed25519,
        &store,
        None,
    )?;
    for (name, key) in &policy.keys {
        println!(
            "    {name:<14} {}  encrypted in keys/{name}.pem (scrypt + AES-256, OpenSSL-readable)",
            key.keyid.get(..16).unwrap_or("")
        );
    }
    let plan = publish::plan(&repo, &policy, Utc::now())?;
    let first = publish::execute(&repo, &policy, &store, plan)?;
    println!(
        "    published root v{} and empty targets: {}",
        first.roles.get("root").copied().unwrap_or(0),
        repo.join("published").display()
    );

    step(
        3,
        "Adding a sample release: hello 1.0.0 on the stable channel (a file and a directory tree)",
    );
    let src = dir.join("hello-1.0.0");
    std::fs::create_dir_all(src.join("share"))?;
    std::fs::write(
        src.join("hello.sh"),
        "#!/bin/sh\necho 'hello from a verified update'\n",
    )?;
    std::fs::write(
        src.join("share/README.txt"),
        "Installed only because a threshold of keys signed it.\n",
    )?;
    let release = Release::new("hello", "1.0.0", Some("stable"))?;
    let added = publish::add_artifacts(&repo, &policy, "targets", &[src], &release, &|_| {})?;
    for (path, entry) in &added.targets {
        println!(
            "    {path:<32} {:>4} bytes  sha256 {}",
            entry.length,
            entry.sha256.get(..16).unwrap_or("")
        );
    }

    step(4, "Publishing: sign every changed role, check thresholds, write new files, switch timestamp.json atomically");
    let plan = publish::plan(&repo, &policy, Utc::now())?;
    let report = publish::execute(&repo, &policy, &store, plan)?;
    for (role, version) in &report.roles {
        println!(
            "    {role:<10} v{version:<3} expires {}",
            report.expires.get(role).map(String::as_str).unwrap_or("?")
        );
    }

    step(5, "Verifying offline, as a client would: root chain, timestamp, snapshot, targets, every file's hashes");
    let published = repo.join("published");
    let root =
        std::fs::read(published.join("metadata/1.root.json")).context("reading the first root")?;
    let verified = sealwright_repo::verify::verify_published(&published, &root, Utc::now())?;
    println!(
        "    OK: root v{}, {} roles, {} target file(s) match their signed length, SHA-256 and SHA-512",
        verified.root_version,
        verified.roles.len(),
        verified.targets_verified
    );

    step(6, "Showing that tampering is caught");
    let victim = std::fs::read_dir(published.join("targets/hello/1.0.0"))?
        .filter_map(Result::ok)
        .find(|e| e.file_name().to_string_lossy().ends_with(".hello.sh"))
        .map(|e| e.path())
        .context("published hello.sh not found")?;
    let original = std::fs::read(&victim)?;
    std::fs::remove_file(&victim)?; // break the hard link to the staged copy before editing
    std::fs::write(&victim, b"#!/bin/sh\necho 'malware'\n")?;
    match sealwright_repo::verify::verify_published(&published, &root, Utc::now()) {
        Err(e) => println!("    refused as expected: {e}"),
        Ok(_) => anyhow::bail!("tampered artifact was not detected"),
    }
    std::fs::remove_file(&victim)?;
    std::fs::write(&victim, original)?;

    println!("\nDone. Next steps (install the binary first: cargo install --path crates/cli):");
    println!(
        "  serve it:        python3 -m http.server -d {} 8080",
        published.display()
    );
    println!(
        "  inspect it:      sealwright --repo {} status",
        repo.display()
    );
    println!("  add a release:   sealwright --repo {} add FILES --name hello --version 1.1.0 && sealwright --repo {} publish", repo.display(), repo.display());
    println!(
        "  any TUF client (e.g. python-tuf's ngclient) can pin {}/metadata/1.root.json",
        published.display()
    );
    Ok(())
}
