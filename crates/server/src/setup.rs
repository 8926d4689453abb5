//! `sealwright server setup`: from a publisher's repository to a key-less server in one step.
//!
//! It writes, under one new directory `DIR`:
//!
//! ```text
//! DIR/agent/agent.toml        the signer agent's configuration
//! DIR/agent/keys/NAME.pem     the online keys (timestamp, snapshot), moved out of the repository
//! DIR/agent/run/agent.sock    the agent's socket (made when it starts; its state and audit log)
//! DIR/server/                 the server's data directory: published tree, policy, no key,
//!                             the first push token's hash, an audit log
//! DIR/tls/cert.pem, key.pem   a self-signed certificate, unless --cert/--key were given
//! DIR/systemd/*.service       one unit for the agent, one for the server
//! ```
//!
//! and points the repository's online keys at the agent (`agent:DIR/agent/run/agent.sock`).
//!
//! Guaranteed: every check (the repository is published, its online keys are key files, `DIR`
//! is new, the socket path fits a Unix socket address, a given certificate and key load) runs
//! before anything is written;
//! everything under `DIR` is built in a hidden sibling and renamed into place, so an
//! interrupted setup leaves no half-made `DIR`; the repository changes last — its policy
//! is replaced atomically, then its copies of the online key files are removed.
//! Not guaranteed: a kill between the rename and the policy change leaves the keys in both
//! places (the repository still signs locally; remove `DIR` and run setup again).

use std::net::SocketAddr;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use sealwright_repo::agent::{AgentConfig, Caller, KeyConfig, MaxExpiry, LOG_ROLE, ONLINE_ROLES};
use sealwright_repo::fsutil;
use sealwright_repo::policy::Policy;
use sealwright_repo::push::PushError;
use sealwright_repo::server_dir::LOG_VKEY_FILE;
use sealwright_repo::server_dir::{self, ServerDir};
use serde::Serialize;
use zeroize::Zeroizing;

use crate::tls::Identity;

/// Longest path a Unix socket address holds (`sun_path` is 108 bytes with its NUL).
const MAX_SOCKET_PATH: usize = 107;

/// Why setup refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    /// Something to fix before setup can run; nothing was written.
    #[error("{0}")]
    NotReady(String),
    /// Writing failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// Making the server directory, the token or the certificate failed.
    #[error(transparent)]
    Push(#[from] PushError),
    /// The certificate.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    /// An audit record.
    #[error(transparent)]
    Audit(#[from] sealwright_store::AuditError),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> SetupError {
    let what = what.into();
    move |source| SetupError::Io { what, source }
}

/// The server's certificate.
#[derive(Debug, Clone)]
pub enum ServerCertificate {
    /// Existing PEM files (a certificate from your CA).
    Files {
        /// Certificate chain, leaf first.
        cert: PathBuf,
        /// Its private key.
        key: PathBuf,
    },
    /// Generate a self-signed one for the names clients use (and the loopback names).
    SelfSigned,
}

/// What to set up.
#[derive(Debug, Clone)]
pub struct SetupOptions {
    /// The publisher's repository (its online keys move to the agent).
    pub repo: PathBuf,
    /// The new directory for agent, server, certificate and units.
    pub dir: PathBuf,
    /// Name of the first push token (role `targets`).
    pub token_name: String,
    /// Address the server will listen on.
    pub listen: SocketAddr,
    /// The DNS names (or addresses) publishers and devices use to reach the server; the
    /// first is the URL's. None: the listen address, or this machine's name when it listens
    /// on every interface.
    pub hosts: Vec<String>,
    /// The server's certificate.
    pub certificate: ServerCertificate,
    /// The `sealwright` binary the units run.
    pub exe: PathBuf,
    /// The file holding the online keys' passphrase, handed to the agent's unit as a
    /// systemd credential.
    pub passphrase_file: PathBuf,
}

/// What setup made.
#[derive(Debug, Serialize)]
pub struct Setup {
    /// The new directory (absolute).
    pub dir: PathBuf,
    /// The agent's configuration file.
    pub agent_config: PathBuf,
    /// The agent's socket, as the repository and the server now name it.
    pub socket: PathBuf,
    /// The online keys moved out of the repository.
    pub moved_keys: Vec<String>,
    /// The server's data directory.
    pub server: ServerDir,
    /// The server's certificate (what clients pass as `--ca` when it is self-signed).
    pub cert: PathBuf,
    /// Its private key.
    pub key: PathBuf,
    /// Whether setup generated the certificate.
    pub self_signed: bool,
    /// The address the server listens on.
    pub listen: SocketAddr,
    /// The URL publishers and devices use.
    pub url: String,
    /// The systemd units written.
    pub units: Vec<PathBuf>,
    /// The command the agent's unit runs.
    pub agent_command: Vec<String>,
    /// The passphrase file the agent's unit hands it.
    pub passphrase_file: PathBuf,
    /// The command the server's unit runs.
    pub server_command: Vec<String>,
    /// The first push token's name.
    pub token_name: String,
    /// The first push token, shown once (the server keeps only its SHA-256).
    #[serde(skip)]
    pub token: Zeroizing<String>,
    /// The transparency log's verifier key (its name is the log's origin); the key itself
    /// is in the agent.
    pub log_key: String,
}

/// The unit files' names.
pub const AGENT_UNIT: &str = "sealwright-agent.service";
/// The server's unit.
pub const SERVER_UNIT: &str = "sealwright-server.service";

/// Sets up agent, server directory, first token, certificate and units (see the module
/// documentation for what is guaranteed).
pub fn setup(opts: &SetupOptions) -> Result<Setup, SetupError> {
    let dir = std::path::absolute(&opts.dir).map_err(io("resolving the directory"))?;
    check_new_directory(&dir)?;
    let policy = Policy::load(&opts.repo).map_err(|e| SetupError::NotReady(e.to_string()))?;
    let online = online_key_files(&opts.repo, &policy)?;
    let socket = dir.join("agent/run/agent.sock");
    check_socket_path(&socket)?;
    if let ServerCertificate::Files { cert, key } = &opts.certificate {
        Identity::from_pem_files(cert, key)?;
    }

    let partial = partial_sibling(&dir)?;
    if partial.exists() {
        std::fs::remove_dir_all(&partial).map_err(io(format!(
            "removing the remains of an interrupted setup, {}",
            partial.display()
        )))?;
    }
    let built = build(opts, &dir, &partial, &policy, &online, &socket);
    let built = match built {
        Ok(b) => b,
        Err(e) => {
            let _ = std::fs::remove_dir_all(&partial);
            return Err(e);
        }
    };
    fsutil::sync_filesystem(&partial).map_err(io("syncing the new directory"))?;
    std::fs::rename(&partial, &dir).map_err(io(format!("renaming into {}", dir.display())))?;
    if let Some(parent) = dir.parent() {
        fsutil::sync_dir(parent).map_err(io("syncing the parent directory"))?;
    }
    hand_keys_to_agent(&opts.repo, built.policy, &online, &dir)?;
    Ok(built.setup)
}

/// Where the agent's log key is written, under the setup directory.
const LOG_KEY_FILE: &str = "agent/keys/log.pem";

/// The name of the host clients reach the server by.
fn server_host(opts: &SetupOptions) -> String {
    opts.hosts.first().cloned().unwrap_or_else(|| {
        if opts.listen.ip().is_unspecified() {
            crate::host_name()
        } else {
            opts.listen.ip().to_string()
        }
    })
}

/// The server's URL.
fn server_url(opts: &SetupOptions) -> String {
    let host = server_host(opts);
    match host.parse::<std::net::Ipv6Addr>() {
        Ok(v6) => format!("https://[{v6}]:{}", opts.listen.port()),
        Err(_) => format!("https://{host}:{}", opts.listen.port()),
    }
}

/// A new Ed25519 key for the transparency log, encrypted like the other agent keys (with
/// the passphrase the agent is started with), named after the log's origin: the server's
/// URL without its scheme, then `/log` (c2sp.org/tlog-checkpoint).
fn new_log_key(
    opts: &SetupOptions,
    url: &str,
    partial: &Path,
) -> Result<sealwright_tlog::Verifier, SetupError> {
    let origin = format!("{}/log", url.trim_start_matches("https://"));
    // Read as the agent reads it (`SEALWRIGHT_PASSPHRASE_FILE`): capped, kept zeroized.
    let passphrase = fsutil::read_capped(&opts.passphrase_file, 64 * 1024)
        .map(Zeroizing::new)
        .map_err(|e| {
        SetupError::NotReady(format!(
            "reading the agent's passphrase file {} ({e}): setup encrypts the new transparency-log key with it, as the agent's other keys are; create it first (or pass --passphrase-file)",
            opts.passphrase_file.display()
        ))
    })?;
    let passphrase = sealwright_crypto::Passphrase::new(
        String::from_utf8(passphrase.to_vec())
            .map_err(|_| SetupError::NotReady("the passphrase file is not UTF-8".into()))?,
    );
    let key = sealwright_crypto::PrivateKey::generate(sealwright_crypto::Algorithm::Ed25519)
        .map_err(|e| SetupError::NotReady(format!("generating the log key: {e}")))?;
    let pem = sealwright_crypto::keyfile::encrypt_private_key(
        &key,
        &passphrase,
        sealwright_crypto::Kdf::Scrypt,
    )
    .map_err(|e| SetupError::NotReady(format!("encrypting the log key: {e}")))?;
    fsutil::write_atomic_private(&partial.join(LOG_KEY_FILE), pem.as_bytes())
        .map_err(io(format!("writing {LOG_KEY_FILE}")))?;
    let public = sealwright_crypto::Signer::public_key(&key)
        .ed25519_bytes()
        .ok_or_else(|| SetupError::NotReady("the log key is not Ed25519".into()))?;
    sealwright_tlog::Verifier::new(&origin, sealwright_tlog::note::KeyKind::Ed25519, public)
        .map_err(|e| SetupError::NotReady(format!("the log's origin {origin}: {e}")))
}

/// `dir` does not exist, or is an empty directory.
fn check_new_directory(dir: &Path) -> Result<(), SetupError> {
    let new = fsutil::is_absent_or_empty(dir)
        .map_err(|e| SetupError::NotReady(format!("{}: {e}", dir.display())))?;
    if !new {
        return Err(SetupError::NotReady(format!(
            "{} exists and is not empty; give a new directory",
            dir.display()
        )));
    }
    Ok(())
}

/// The repository's online keys as key files (name, role, path). Keys already in an agent
/// or offline cannot be moved.
fn online_key_files(
    repo: &Path,
    policy: &Policy,
) -> Result<Vec<(String, String, PathBuf)>, SetupError> {
    let mut found = Vec::new();
    for role in ONLINE_ROLES {
        let (keys, _, _) = policy
            .role(role)
            .ok_or_else(|| SetupError::NotReady(format!("the policy has no {role} role")))?;
        for name in keys {
            let location = policy.keys.get(name).and_then(|k| k.private.as_deref());
            let file = match location {
                Some(l) if l.starts_with("file:") => repo.join(&l["file:".len()..]),
                Some(l) if l.starts_with("agent:") => {
                    return Err(SetupError::NotReady(format!(
                        "the {role} key {name} is in a signer agent already ({l}); make the server directory with `sealwright server-init DIR`"
                    )))
                }
                _ => {
                    return Err(SetupError::NotReady(format!(
                        "the {role} key {name} has no key file in this repository; the agent must hold every online key"
                    )))
                }
            };
            if !file.is_file() {
                return Err(SetupError::NotReady(format!(
                    "the {role} key file {} is missing",
                    file.display()
                )));
            }
            found.push((name.clone(), role.to_owned(), file));
        }
    }
    Ok(found)
}

fn check_socket_path(socket: &Path) -> Result<(), SetupError> {
    let len = socket.as_os_str().len();
    if len > MAX_SOCKET_PATH {
        return Err(SetupError::NotReady(format!(
            "the agent's socket {} would be {len} bytes long, over the {MAX_SOCKET_PATH} a Unix socket address holds: choose a shorter directory",
            socket.display()
        )));
    }
    Ok(())
}

fn partial_sibling(dir: &Path) -> Result<PathBuf, SetupError> {
    let name = dir
        .file_name()
        .ok_or_else(|| SetupError::NotReady(format!("{} has no name", dir.display())))?;
    let parent = dir.parent().unwrap_or(Path::new("/"));
    Ok(parent.join(format!(
        ".{}.sealwright-setup-partial",
        name.to_string_lossy()
    )))
}

struct Built {
    setup: Setup,
    /// The repository's policy once its online keys are in the agent.
    policy: Policy,
}

/// Writes everything under `partial`, naming the final paths under `dir`.
fn build(
    opts: &SetupOptions,
    dir: &Path,
    partial: &Path,
    policy: &Policy,
    online: &[(String, String, PathBuf)],
    socket: &Path,
) -> Result<Built, SetupError> {
    std::fs::create_dir_all(partial.join("agent/keys"))
        .map_err(io("creating the agent's directory"))?;
    // The account running setup runs both services: the agent accepts its uid.
    let uid = std::fs::metadata(partial)
        .map_err(io("reading the new directory's owner"))?
        .uid();

    let mut agent_policy = policy.clone();
    let mut keys = Vec::new();
    for (name, role, file) in online {
        let bytes = fsutil::read_secret(file, 1024 * 1024)
            .map_err(io(format!("reading {}", file.display())))?;
        let relative = format!("agent/keys/{name}.pem");
        fsutil::write_atomic_private(&partial.join(&relative), &bytes)
            .map_err(io(format!("writing {relative}")))?;
        keys.push(KeyConfig {
            role: role.clone(),
            file: Some(dir.join(&relative)),
            pkcs11: None,
            origin: None,
        });
        if let Some(entry) = agent_policy.keys.get_mut(name) {
            entry.private = Some(format!("agent:{}", socket.display()));
        }
    }
    let url = server_url(opts);
    let log = new_log_key(opts, &url, partial)?;
    keys.push(KeyConfig {
        role: LOG_ROLE.to_owned(),
        file: Some(dir.join(LOG_KEY_FILE)),
        pkcs11: None,
        origin: Some(log.name().to_owned()),
    });
    let config = AgentConfig {
        socket: socket.to_owned(),
        keys,
        callers: vec![Caller {
            uid,
            roles: ONLINE_ROLES
                .iter()
                .chain(&[LOG_ROLE])
                .map(|r| (*r).to_owned())
                .collect(),
        }],
        max_expiry_days: MaxExpiry::default(),
        max_version_step: sealwright_repo::agent::DEFAULT_MAX_VERSION_STEP,
    };
    let agent_toml = toml::to_string_pretty(&config)
        .map_err(|e| SetupError::NotReady(format!("agent configuration: {e}")))?;
    fsutil::write_atomic(
        &partial.join("agent/agent.toml"),
        format!("# The signer agent (`sealwright signer serve --config`), written by `sealwright server setup`.\n\n{agent_toml}").as_bytes(),
    )
    .map_err(io("writing agent.toml"))?;

    let mut server = server_dir::create_server_dir_with(
        &opts.repo,
        agent_policy.clone(),
        &partial.join("server"),
    )?;
    server.dir = dir.join("server");
    let server_dir = partial.join("server");
    let token = crate::tokens::add_token(
        &server_dir,
        crate::tokens::TokenHome::Dir(&server_dir),
        &opts.token_name,
        &["targets".to_owned()],
        &[],
    )?;

    let host = server_host(opts);
    fsutil::write_atomic(
        &partial.join("server").join(LOG_VKEY_FILE),
        format!("{}\n", log.vkey()).as_bytes(),
    )
    .map_err(io(format!("writing server/{LOG_VKEY_FILE}")))?;
    let (cert, key, self_signed) = match &opts.certificate {
        ServerCertificate::Files { cert, key } => (
            std::path::absolute(cert).map_err(io("resolving --cert"))?,
            std::path::absolute(key).map_err(io("resolving --key"))?,
            false,
        ),
        ServerCertificate::SelfSigned => {
            let mut names = opts.hosts.clone();
            for name in [host.as_str(), "localhost", "127.0.0.1", "::1"] {
                if !names.iter().any(|n| n == name) {
                    names.push(name.to_owned());
                }
            }
            let (identity, key_pem) = Identity::self_signed(&names, "Sealwright server")?;
            std::fs::create_dir_all(partial.join("tls")).map_err(io("creating tls/"))?;
            fsutil::write_atomic(&partial.join("tls/cert.pem"), identity.leaf_pem.as_bytes())
                .map_err(io("writing tls/cert.pem"))?;
            fsutil::write_atomic_private(&partial.join("tls/key.pem"), key_pem.as_bytes())
                .map_err(io("writing tls/key.pem"))?;
            (dir.join("tls/cert.pem"), dir.join("tls/key.pem"), true)
        }
    };

    let agent_command = vec![
        opts.exe.display().to_string(),
        "signer".into(),
        "serve".into(),
        "--config".into(),
        dir.join("agent/agent.toml").display().to_string(),
    ];
    let server_command = vec![
        opts.exe.display().to_string(),
        "--repo".into(),
        server.dir.display().to_string(),
        "serve".into(),
        "--push".into(),
        "--listen".into(),
        opts.listen.to_string(),
        "--cert".into(),
        cert.display().to_string(),
        "--key".into(),
        key.display().to_string(),
    ];
    std::fs::create_dir_all(partial.join("systemd")).map_err(io("creating systemd/"))?;
    let units = [
        (
            AGENT_UNIT,
            agent_unit(
                &agent_command,
                uid,
                &opts.passphrase_file,
                &dir.join("agent"),
            ),
        ),
        (SERVER_UNIT, server_unit(&server_command, uid, &server.dir)),
    ];
    for (name, text) in &units {
        fsutil::write_atomic(&partial.join("systemd").join(name), text.as_bytes())
            .map_err(io(format!("writing systemd/{name}")))?;
    }

    let setup = Setup {
        dir: dir.to_owned(),
        agent_config: dir.join("agent/agent.toml"),
        socket: socket.to_owned(),
        moved_keys: online.iter().map(|(name, _, _)| name.clone()).collect(),
        server,
        cert,
        key,
        self_signed,
        listen: opts.listen,
        url,
        units: units
            .iter()
            .map(|(n, _)| dir.join("systemd").join(n))
            .collect(),
        agent_command,
        passphrase_file: opts.passphrase_file.clone(),
        server_command,
        token_name: opts.token_name.clone(),
        token,
        log_key: log.vkey(),
    };
    Ok(Built {
        setup,
        policy: agent_policy,
    })
}

/// The last step, once `dir` is in place: the repository's policy names the agent, then its
/// copies of the key files go (the agent's are the only ones left).
fn hand_keys_to_agent(
    repo: &Path,
    policy: Policy,
    online: &[(String, String, PathBuf)],
    dir: &Path,
) -> Result<(), SetupError> {
    policy
        .save(repo)
        .map_err(|e| SetupError::NotReady(format!("saving the repository's policy: {e}")))?;
    for (_, _, file) in online {
        std::fs::remove_file(file).map_err(io(format!("removing {}", file.display())))?;
        if let Some(parent) = file.parent() {
            fsutil::sync_dir(parent).map_err(io("syncing the key directory"))?;
        }
    }
    let actor = sealwright_store::audit::local_actor();
    sealwright_store::audit::record(
        repo,
        &sealwright_store::NewRecord {
            actor: &actor,
            action: "server-setup",
            subject: &dir.display().to_string(),
            details: serde_json::json!({
                "moved_keys": online.iter().map(|(n, _, _)| n).collect::<Vec<_>>(),
            }),
        },
    )?;
    Ok(())
}

/// One argument of an `ExecStart=` line: `%` doubled (systemd's specifier escape), quoted
/// when it holds whitespace, quotes or backslashes.
fn unit_arg(arg: &str) -> String {
    let escaped = arg.replace('%', "%%");
    if escaped
        .chars()
        .any(|c| c.is_whitespace() || c == '"' || c == '\'' || c == '\\')
    {
        format!("\"{}\"", escaped.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        escaped
    }
}

fn exec_start(command: &[String]) -> String {
    command
        .iter()
        .map(|a| unit_arg(a))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Directives both services share: an unprivileged, read-only view of the system with
/// writes only where the service keeps its state.
fn hardening(writable: &Path) -> String {
    format!(
        "UMask=0077\nNoNewPrivileges=yes\nProtectSystem=strict\nReadWritePaths={}\nRestart=on-failure\nRestartSec=2\n",
        unit_arg(&writable.display().to_string())
    )
}

fn agent_unit(command: &[String], uid: u32, passphrase_file: &Path, agent_dir: &Path) -> String {
    format!(
        "# Written by `sealwright server setup`. Install with:\n\
         #   cp {AGENT_UNIT} {SERVER_UNIT} /etc/systemd/system/ && systemctl daemon-reload\n\
         #   systemctl enable --now sealwright-agent sealwright-server\n\
         [Unit]\n\
         Description=Sealwright signer agent (holds the timestamp and snapshot keys)\n\
         After=local-fs.target\n\
         \n\
         [Service]\n\
         User={uid}\n\
         ExecStart={}\n\
         # The key files' passphrase, as a systemd credential: a file only this service reads.\n\
         LoadCredential=passphrase:{}\n\
         Environment=SEALWRIGHT_PASSPHRASE_FILE=%d/passphrase\n\
         {}\n\
         [Install]\n\
         WantedBy=multi-user.target\n",
        exec_start(command),
        unit_arg(&passphrase_file.display().to_string()),
        hardening(agent_dir),
    )
}

fn server_unit(command: &[String], uid: u32, server_dir: &Path) -> String {
    format!(
        "# Written by `sealwright server setup`; it signs through {AGENT_UNIT}.\n\
         [Unit]\n\
         Description=Sealwright distribution server and publish API (holds no key)\n\
         Requires={AGENT_UNIT}\n\
         After=network-online.target {AGENT_UNIT}\n\
         Wants=network-online.target\n\
         \n\
         [Service]\n\
         User={uid}\n\
         ExecStart={}\n\
         {}\n\
         [Install]\n\
         WantedBy=multi-user.target\n",
        exec_start(command),
        hardening(server_dir),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_arguments_escape_specifiers_and_quote_spaces() {
        assert_eq!(unit_arg("/srv/sealwright"), "/srv/sealwright");
        assert_eq!(unit_arg("/srv/100%"), "/srv/100%%");
        assert_eq!(unit_arg("/srv/my repo"), "\"/srv/my repo\"");
        assert_eq!(unit_arg("a\"b"), "\"a\\\"b\"");
    }

    #[test]
    fn a_socket_path_too_long_for_an_address_is_refused() {
        let long = PathBuf::from(format!("/{}/agent.sock", "d".repeat(100)));
        assert!(check_socket_path(&long).is_err());
        assert!(check_socket_path(Path::new("/srv/s/agent/run/agent.sock")).is_ok());
    }
}
