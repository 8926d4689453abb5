//! `sealwright quickstart`: a narrated demo of the whole chain on this machine — keys, a
//! repository, a signer agent holding the online keys, an HTTPS server on 127.0.0.1 that
//! holds no key and takes releases through its publish API, a device that installs and
//! updates through the verifying client, and two attacks it refuses (a tampered artifact, a
//! rollback).

use std::path::PathBuf;

use anyhow::Context as _;
use chrono::Utc;

use sealwright_crypto::{Algorithm, Passphrase};
use sealwright_repo::keyring::FixedPassphrase;
use sealwright_repo::policy::Policy;
use sealwright_repo::staging::Release;
use sealwright_repo::{publish, Keyring};

use super::Context;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where to create the demo (default: a new directory under the system temp dir).
    dir: Option<PathBuf>,
    /// Keep the HTTPS server running after the demo (until Ctrl-C), to try the client,
    /// python-tuf or curl against it.
    #[arg(long)]
    keep_running: bool,
    /// Address the demo server listens on (loopback only by default; port 0 = any free).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: std::net::SocketAddr,
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
    let (pass, passphrase_file) = match ctx.passphrases()? {
        crate::passphrase::CliPassphrase::Fixed(p) => {
            println!("    using the passphrase from your environment");
            let file = std::env::var_os(crate::passphrase::PASSPHRASE_FILE_ENV)
                .map(PathBuf::from)
                .unwrap_or_else(|| dir.join("demo-passphrase.txt"));
            (p, std::path::absolute(file)?)
        }
        crate::passphrase::CliPassphrase::Prompt => {
            let mut raw = [0u8; 12];
            sealwright_crypto::random::fill(&mut raw)?;
            let p = hex::encode(raw);
            std::fs::create_dir_all(&dir)?;
            let file = std::path::absolute(dir.join("demo-passphrase.txt"))?;
            sealwright_repo::fsutil::write_atomic_private(&file, p.as_bytes())?;
            println!(
                "    generated a random one and saved it in {} (demo only!)",
                file.display()
            );
            println!(
                "    to use these keys later: export SEALWRIGHT_PASSPHRASE_FILE={}",
                file.display()
            );
            (Passphrase::new(p), file)
        }
    };
    let source = FixedPassphrase(pass);
    let keyring = Keyring::new(&repo, &source);

    step(2, "Creating a repository with one Ed25519 key per TUF role (root, targets, snapshot, timestamp)");
    let policy = sealwright_repo::init::create_repository(
        &repo,
        Policy::new_default(),
        Algorithm::Ed25519,
        &keyring,
        None,
    )?;
    for (name, key) in &policy.keys {
        println!(
            "    {name:<14} {}  encrypted in keys/{name}.pem (scrypt + AES-256, OpenSSL-readable)",
            key.keyid.get(..16).unwrap_or("")
        );
    }
    let plan = publish::plan(&repo, &policy, Utc::now())?;
    let first = publish::execute(&repo, &policy, &keyring, plan)?;
    println!(
        "    published root v{} and empty targets: {}",
        first.roles.get("root").copied().unwrap_or(0),
        repo.join("published").display()
    );

    step(3, "Setting up the server machine in one step (`sealwright server setup`): the online keys (timestamp, snapshot) move into a signer agent, a separate holder that signs only what its rules allow; the server's directory gets the published tree and no key at all");
    let listen = if args.listen.port() == 0 {
        let free = std::net::TcpListener::bind(args.listen)
            .with_context(|| format!("finding a free port on {}", args.listen))?;
        free.local_addr()?
    } else {
        args.listen
    };
    let made = sealwright_server::setup::setup(&sealwright_server::setup::SetupOptions {
        repo: repo.clone(),
        dir: dir.join("serving"),
        token_name: "quickstart".to_owned(),
        listen,
        hosts: Vec::new(),
        certificate: sealwright_server::setup::ServerCertificate::SelfSigned,
        exe: std::env::current_exe().context("finding the sealwright binary")?,
        passphrase_file,
    })?;
    let policy = Policy::load(&repo)?;
    for name in &made.moved_keys {
        println!(
            "    {name:<14} now only in {} (the repository names agent:{})",
            made.dir
                .join("agent/keys")
                .join(format!("{name}.pem"))
                .display(),
            made.socket.display()
        );
    }
    let token_file = dir.join("publisher.token");
    sealwright_repo::fsutil::write_atomic_private(&token_file, made.token.as_bytes())?;
    println!(
        "    push token for the publisher (role targets) in {}; the server keeps only its SHA-256",
        token_file.display()
    );
    let _agent = start_agent(&made.agent_config, &keyring)?;

    let pinned_root = dir.join("root.json");
    std::fs::copy(repo.join("published/metadata/1.root.json"), &pinned_root)
        .context("copying the first root")?;

    step(
        4,
        "Starting the HTTPS distribution server on the loopback interface, with its publish API; it holds no key at all",
    );
    let server_dir = made.server.dir.clone();
    let server = start_server(&made)?;
    let published = server_dir.join("published");
    println!("    serving {} at {}", published.display(), server.url);
    println!(
        "    certificate {} (SHA-256 {})",
        made.cert.display(),
        server.fingerprint
    );
    println!(
        "    transparency log {}/log/ (key {}; every push is logged there)",
        server.url, made.log_key
    );
    let tls = sealwright_client::tls::TlsOptions::default().with_ca_file(&made.cert)?;
    let http = sealwright_client::fetch::https_agent(
        &sealwright_client::fetch::HttpConfig {
            proxy_from_env: false,
            ..Default::default()
        },
        &tls,
    )?;
    let publisher = Publisher {
        dir: &dir,
        repo: &repo,
        policy: &policy,
        keyring: &keyring,
        http: &http,
        server: &server.url,
        token: &made.token,
    };

    step(
        5,
        "Publishing hello 1.0.0 on the stable channel through the publish API",
    );
    publisher.release("1.0.0")?;

    step(6, "A device pins the root and installs hello: root chain, timestamp, snapshot, targets, then the artifact's length and hashes, then an atomic switch");
    let device = dir.join("device");
    let ca_pem = std::fs::read(&made.cert).context("reading the server certificate")?;
    let root_bytes = std::fs::read(&pinned_root).context("reading the pinned root")?;
    sealwright_client::install::init_client(
        &device,
        &root_bytes,
        &server.url,
        Some(&ca_pem),
        &[],
        Some("hello"),
        Some("stable"),
    )
    .map_err(|e| anyhow::anyhow!(e.message))?;
    println!(
        "    device {} trusts only {} and the server's certificate",
        device.display(),
        pinned_root.display()
    );
    update_device(&device, Expect::Installed)?;

    step(7, "Publishing hello 1.1.0 and updating the device again");
    let after_first = std::fs::read(published.join("metadata/timestamp.json"))?;
    publisher.release("1.1.0")?;
    update_device(&device, Expect::Installed)?;

    step(
        8,
        "Attack 1: someone replaces the 1.2.0 artifact on the server after it was signed",
    );
    publisher.release("1.2.0")?;
    let victim = std::fs::read_dir(published.join("targets/hello/1.2.0"))?
        .filter_map(Result::ok)
        .find(|e| e.file_name().to_string_lossy().ends_with(".hello.sh"))
        .map(|e| e.path())
        .context("published hello.sh 1.2.0 not found")?;
    let genuine = std::fs::read(&victim)?;
    // Break the hard link to the server's stored blob before writing the fake.
    std::fs::remove_file(&victim)?;
    std::fs::write(
        &victim,
        b"#!/bin/sh\necho 'all your base are belong to us'\n",
    )?;
    update_device(&device, Expect::Refused)?;
    restore(&victim, &genuine)?;

    step(9, "Attack 2: a mirror replays the old repository (timestamp from release 1.0.0) to roll the device back");
    let timestamp = published.join("metadata/timestamp.json");
    let current_ts = std::fs::read(&timestamp)?;
    sealwright_repo::fsutil::write_atomic(&timestamp, &after_first)?;
    update_device(&device, Expect::Refused)?;
    sealwright_repo::fsutil::write_atomic(&timestamp, &current_ts)?;

    step(
        10,
        "The honest server again: the device installs 1.2.0 (the genuine bytes)",
    );
    update_device(&device, Expect::Installed)?;

    let failures = device.join(sealwright_client::install::FAILURE_LOG);
    println!("\nDone. What happened is on disk:");
    println!(
        "  repository:    {}  (the publisher's side: keys, staging)",
        repo.display()
    );
    println!(
        "  server:        {}  (published tree, audit log; no key)",
        server_dir.display()
    );
    println!(
        "  device:        {}  (current -> releases/hello-1.2.0)",
        device.display()
    );
    println!("  quarantine:    {}", device.join("quarantine").display());
    println!("  failure log:   {}", failures.display());
    println!("\nTry it yourself (cargo install --path crates/cli puts sealwright on PATH):");
    println!(
        "  sealwright --repo {} add hello.sh --name hello --version 1.3.0 --channel stable",
        repo.display()
    );
    println!(
        "  sealwright --repo {} push --server {} --token-file {} --ca {}",
        repo.display(),
        server.url,
        token_file.display(),
        made.cert.display()
    );
    println!("  sealwright update --dir {}", device.display());
    println!("  sealwright --repo {} verify", server_dir.display());
    println!("  sealwright --repo {} audit list", server_dir.display());
    println!("The agent and the server run again, with the same keys, certificate and port, with:");
    println!(
        "  {}={} {}",
        crate::passphrase::PASSPHRASE_FILE_ENV,
        made.passphrase_file.display(),
        made.agent_command.join(" ")
    );
    println!("  {}", made.server_command.join(" "));
    println!(
        "(or as services: the units in {})",
        made.dir.join("systemd").display()
    );
    if args.keep_running {
        println!("\nThe server keeps running at {} until Ctrl-C.", server.url);
        server.wait();
    } else {
        println!("\nThe server stopped with the demo; `sealwright quickstart --keep-running` keeps it up.");
    }
    Ok(())
}

/// The running demo agent (stopped when dropped).
struct DemoAgent {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Drop for DemoAgent {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Starts the signer agent that `server setup` configured, on a thread of this process,
/// opening its keys with the demo passphrase.
fn start_agent(config: &std::path::Path, keyring: &Keyring<'_>) -> anyhow::Result<DemoAgent> {
    use sealwright_repo::agent::{self, AgentConfig};
    let config = AgentConfig::load(config)?;
    let (agent, listener) = agent::start(&config, keyring)?;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    {
        let stop = stop.clone();
        let socket = config.socket.clone();
        std::thread::spawn(move || agent::serve(agent, listener, &socket, stop));
    }
    println!(
        "    agent listening on {}; every signature goes to its hash-chained audit log in {}",
        config.socket.display(),
        config.audit_dir().display()
    );
    Ok(DemoAgent { stop })
}

/// The demo server, running on its own thread until the process ends (or Ctrl-C).
struct DemoServer {
    url: String,
    fingerprint: String,
    thread: std::thread::JoinHandle<Result<(), sealwright_server::ServeError>>,
}

impl DemoServer {
    /// Blocks until the server stops (SIGINT/SIGTERM).
    fn wait(self) {
        match self.thread.join() {
            Ok(Ok(())) => println!("server stopped"),
            Ok(Err(e)) => eprintln!("error: the server failed: {e}"),
            Err(_) => eprintln!("error: the server thread crashed"),
        }
    }
}

/// Starts the server `server setup` configured, on a thread of this process.
fn start_server(made: &sealwright_server::setup::Setup) -> anyhow::Result<DemoServer> {
    let opts = sealwright_server::ServeOptions {
        published: made.server.dir.join("published"),
        listen: made.listen,
        tls: sealwright_server::TlsSource::Files {
            cert: made.cert.clone(),
            key: made.key.clone(),
        },
        push: Some(sealwright_server::push::PushOptions {
            repo_dir: made.server.dir.clone(),
            max_blob: sealwright_server::push::DEFAULT_MAX_BLOB,
            client_ca: None,
            shared: None,
        }),
    };
    let (tx, rx) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        sealwright_server::serve_blocking(opts, |ready| {
            let _ = tx.send(ready.clone());
        })
    });
    match rx.recv_timeout(std::time::Duration::from_secs(30)) {
        Ok(ready) => Ok(DemoServer {
            url: ready.url,
            fingerprint: ready.fingerprint,
            thread,
        }),
        Err(_) => match thread.join() {
            Ok(Err(e)) => Err(e).context("starting the demo server"),
            _ => anyhow::bail!("the demo server did not start within 30 s"),
        },
    }
}

/// The publisher's side of the demo: its repository and keys, and the server it pushes to.
struct Publisher<'a> {
    dir: &'a std::path::Path,
    repo: &'a std::path::Path,
    policy: &'a Policy,
    keyring: &'a Keyring<'a>,
    http: &'a ureq::Agent,
    server: &'a str,
    token: &'a str,
}

impl Publisher<'_> {
    /// Adds `hello.sh` VERSION to the stable channel, signs targets here and pushes it; the
    /// server verifies it and has the agent sign snapshot and timestamp.
    fn release(&self, version: &str) -> anyhow::Result<()> {
        let src = self.dir.join(format!("hello-{version}"));
        std::fs::create_dir_all(&src)?;
        let file = src.join("hello.sh");
        std::fs::write(
            &file,
            format!("#!/bin/sh\necho 'hello {version}, installed only because a threshold of keys signed it'\n"),
        )?;
        let release = Release::new("hello", version, Some("stable"))?;
        let added = sealwright_repo::staging::add_artifacts(
            self.repo,
            self.policy,
            "targets",
            &[file],
            &release,
            &|_| {},
        )?;
        for (path, entry) in &added.targets {
            println!(
                "    staged {path:<34} {:>4} bytes  sha256 {}",
                entry.length,
                entry.sha256.get(..16).unwrap_or("")
            );
        }
        let (report, _) = sealwright_repo::push::https::push_over_https(
            self.repo,
            self.policy,
            self.keyring,
            &sealwright_repo::push::https::Server {
                url: self.server,
                agent: self.http,
                token: Some(self.token),
            },
            &|_, _| {},
        )?;
        let roles: Vec<String> = report
            .roles
            .iter()
            .map(|(role, version)| format!("{role} v{version}"))
            .collect();
        println!(
            "    targets signed here, pushed; the server checked it against root's keys and had the agent sign snapshot and timestamp: {}",
            roles.join(", ")
        );
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Installed,
    Refused,
}

/// Runs one update of the device and narrates it; fails the demo when the outcome is not
/// the expected one (a refusal that did not happen is a bug worth stopping for).
fn update_device(device: &std::path::Path, expect: Expect) -> anyhow::Result<()> {
    let opts = sealwright_client::install::InstallOptions {
        // The release must run before it counts as good.
        health_check: Some("sh \"$SEALWRIGHT_RELEASE_DIR/hello.sh\" >/dev/null".to_owned()),
        health_timeout: std::time::Duration::from_secs(30),
        self_replace: None,
        progress: None,
        now: Utc::now(),
    };
    match (sealwright_client::install::update(device, &opts), expect) {
        (Ok(report), Expect::Installed) => {
            println!(
                "    installed hello {} (health check passed) in {}",
                report.version,
                report.installed_at.display()
            );
            let script = device.join("current/hello.sh");
            let out = std::process::Command::new("sh").arg(&script).output()?;
            println!(
                "    $ sh {}\n    {}",
                script.display(),
                String::from_utf8_lossy(&out.stdout).trim()
            );
            Ok(())
        }
        (Err(e), Expect::Refused) => {
            println!("    REFUSED, as it should be: {}", e.message);
            let state = sealwright_client::install::load_state(device)
                .map_err(|e| anyhow::anyhow!(e.message))?;
            println!(
                "    the device still runs hello {}; the refusal is in failures.log",
                state.current_version.as_deref().unwrap_or("?")
            );
            Ok(())
        }
        (Ok(report), Expect::Refused) => anyhow::bail!(
            "the demo attack was NOT refused: hello {} was installed; please report this",
            report.version
        ),
        (Err(e), Expect::Installed) => {
            Err(anyhow::anyhow!(e.message)).context("updating the demo device")
        }
    }
}

fn restore(path: &std::path::Path, genuine: &[u8]) -> anyhow::Result<()> {
    std::fs::remove_file(path)?;
    sealwright_repo::fsutil::write_atomic(path, genuine)?;
    Ok(())
}
