//! Helpers shared by the CLI's end-to-end tests: run the real binary, run python-tuf.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const PASSPHRASE: &str = "correct horse battery staple";

/// A scratch directory with a passphrase file.
pub struct Scratch {
    pub dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("passphrase"), PASSPHRASE).unwrap();
        Scratch { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn repo(&self) -> PathBuf {
        self.dir.path().join("repo")
    }

    /// Runs `sealwright ARGS` with the passphrase file configured.
    pub fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_sealwright"))
            .args(args)
            .env(
                "SEALWRIGHT_PASSPHRASE_FILE",
                self.dir.path().join("passphrase"),
            )
            .env_remove("SEALWRIGHT_REPO")
            .output()
            .unwrap()
    }

    /// Runs and asserts success, returning stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args);
        assert!(
            out.status.success(),
            "sealwright {args:?} failed:\nstdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs and asserts a clean failure: exit 1, one `error:` line on stderr naming `needle`.
    pub fn fails(&self, args: &[&str], needle: &str) -> String {
        let out = self.run(args);
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert_eq!(
            out.status.code(),
            Some(1),
            "sealwright {args:?} should fail with 1; stderr: {stderr}"
        );
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "expected one error line, got: {stderr}");
        assert!(lines[0].starts_with("error: "), "{stderr}");
        assert!(
            stderr.contains(needle),
            "error should mention {needle:?}: {stderr}"
        );
        stderr
    }

    /// Stages `content` as the single file `app.bin` of release NAME VERSION in `repo`.
    pub fn add_release(&self, repo: &str, content: &[u8], name: &str, version: &str) {
        let file = self.path().join("app.bin");
        std::fs::write(&file, content).unwrap();
        self.ok(&[
            "--repo",
            repo,
            "add",
            file.to_str().unwrap(),
            "--name",
            name,
            "--version",
            version,
        ]);
    }

    /// `push` of this scratch repository to the server at `url` with a token file, trusting
    /// the CA in `ca`; its output.
    pub fn push_to(&self, url: &str, token: &Path, ca: &Path) -> String {
        self.ok(&[
            "--repo",
            &self.repo_arg(),
            "push",
            "--server",
            url,
            "--token-file",
            token.to_str().unwrap(),
            "--ca",
            ca.to_str().unwrap(),
        ])
    }

    pub fn repo_arg(&self) -> String {
        self.repo().display().to_string()
    }

    /// `init` of the scratch repository with its root key kept offline, in
    /// `offline-root.pem` here (what `sign` is given); that key file.
    pub fn init_offline_root(&self) -> PathBuf {
        let root_key = self.path().join("offline-root.pem");
        self.ok(&[
            "init",
            &self.repo_arg(),
            "--offline-root-key",
            root_key.to_str().unwrap(),
        ]);
        root_key
    }

    /// `client init` of a device at `dir` (in this scratch directory) for product `name`,
    /// trusting `root`, with the policy options `extra` (`--builder-key …`); its directory.
    pub fn device(&self, dir: &str, root: &Path, name: &str, extra: &[&str]) -> PathBuf {
        let dir = self.path().join(dir);
        let mut args = vec![
            "client",
            "init",
            "--dir",
            dir.to_str().unwrap(),
            "--root",
            root.to_str().unwrap(),
            "--url",
            "https://updates.invalid/",
            "--name",
            name,
        ];
        args.extend_from_slice(extra);
        self.ok(&args);
        dir
    }

    /// An offline bundle of the newest release of `name` in this scratch repository, at
    /// `file`.
    pub fn bundle(&self, name: &str, file: &Path) -> PathBuf {
        self.ok(&[
            "--repo",
            &self.repo_arg(),
            "bundle",
            "create",
            "--name",
            name,
            "-o",
            file.to_str().unwrap(),
        ]);
        file.to_path_buf()
    }

    /// `update --json` of the device at `dir` from `bundle`; its output.
    pub fn update_from(&self, dir: &Path, bundle: &Path) -> Output {
        self.run(&[
            "update",
            "--dir",
            dir.to_str().unwrap(),
            "--bundle",
            bundle.to_str().unwrap(),
            "--json",
        ])
    }
}

/// The interop interpreter (python-tuf venv) and scripts directory.
pub fn python() -> (PathBuf, PathBuf) {
    let python = std::env::var_os("SEALWRIGHT_PYTHON")
        .expect("SEALWRIGHT_PYTHON is not set: run scripts/test (it creates .venv with the pinned python-tuf)");
    let dir = std::env::var_os("SEALWRIGHT_INTEROP_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/interop"));
    (PathBuf::from(python), dir)
}

/// Downloads `targets` from `published` with python-tuf's ngclient; returns its JSON report.
pub fn ngclient(
    published: &Path,
    root: &Path,
    targets: &[&str],
    absent: &[&str],
    out: &Path,
) -> (bool, serde_json::Value, String) {
    ngclient_device(published, root, None, targets, absent, out)
}

/// [`ngclient`] as a device: what it trusts is kept in `metadata_dir` between runs (the
/// root there, once there is one, instead of `root`).
pub fn ngclient_device(
    published: &Path,
    root: &Path,
    metadata_dir: Option<&Path>,
    targets: &[&str],
    absent: &[&str],
    out: &Path,
) -> (bool, serde_json::Value, String) {
    let (python, dir) = python();
    let mut cmd = Command::new(python);
    cmd.arg(dir.join("ngclient_download.py"))
        .arg("--repo-dir")
        .arg(published)
        .arg("--root")
        .arg(root)
        .arg("--out-dir")
        .arg(out);
    if let Some(kept) = metadata_dir {
        cmd.arg("--metadata-dir").arg(kept);
    }
    for t in targets {
        cmd.arg("--target").arg(t);
    }
    for a in absent {
        cmd.arg("--absent").arg(a);
    }
    let output = cmd.output().expect("run ngclient_download.py");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let json = serde_json::from_str(stdout.lines().last().unwrap_or("null"))
        .unwrap_or(serde_json::Value::Null);
    (
        output.status.success(),
        json,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A stable fingerprint of every file under `dir` (path, length, content hash).
pub fn tree_fingerprint(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    fn walk(root: &Path, d: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        let Ok(rd) = std::fs::read_dir(d) else { return };
        for e in rd {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                out.push((
                    p.strip_prefix(root).unwrap().display().to_string(),
                    std::fs::read(&p).unwrap(),
                ));
            }
        }
    }
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// The audit records of the data directory `dir` (a repository, a server's data directory, a
/// signer agent's socket directory), after `audit verify` confirmed its hash chain.
pub fn audit_records(dir: &Path) -> Vec<serde_json::Value> {
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_sealwright"))
            .args(args)
            .arg("--data")
            .arg(dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "sealwright {args:?} --data {}: {}",
            dir.display(),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    };
    run(&["audit", "verify"]);
    let list = run(&["--json", "audit", "list", "--limit", "100000"]);
    match serde_json::from_str(&list).unwrap() {
        serde_json::Value::Array(records) => records,
        other => panic!("audit list: {other}"),
    }
}

/// Waits until the Unix socket `socket` accepts connections (at most 30 s).
pub fn wait_for_socket(socket: &Path) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::os::unix::net::UnixStream::connect(socket).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "nothing listened on {} within 30 s",
            socket.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// A child process, killed when dropped — with its process group when it leads one (a
/// daemon started by [`sealwright`], so that `faketime`'s child dies with it).
pub struct Killed(pub std::process::Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .arg("-KILL")
            .arg("--")
            .arg(format!("-{}", self.0.id()))
            .stderr(std::process::Stdio::null())
            .status();
        let _ = self.0.kill();
        let _ = self.0.wait();
        // libfaketime's per-process semaphore and shared memory outlive a SIGKILL; a later
        // `faketime` wrapper given the same PID would fail on them ("sem_open: File exists").
        let pid = self.0.id();
        let _ = std::fs::remove_file(format!("/dev/shm/sem.faketime_sem_{pid}"));
        let _ = std::fs::remove_file(format!("/dev/shm/faketime_shm_{pid}"));
    }
}

/// Waits until something accepts TCP connections on 127.0.0.1:`port` (at most 30 s).
pub fn wait_for_port(port: u16) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            std::time::Instant::now() < deadline,
            "nothing listened on 127.0.0.1:{port} within 30 s"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// Every file under `dir`.
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// `sealwright` itself, or under `faketime -f OFFSET` (the clock moved for the process).
pub fn sealwright(faketime: Option<&str>) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_sealwright"));
    if let Some(offset) = faketime {
        // libfaketime preloaded directly, not through the `faketime` wrapper: these are
        // daemons, killed with SIGKILL, and the wrapper then leaves its /dev/shm semaphore
        // behind; a later wrapper whose PID matches one fails with "sem_open: File exists".
        command
            .env("LD_PRELOAD", libfaketime())
            .env("FAKETIME", offset);
    }
    std::os::unix::process::CommandExt::process_group(&mut command, 0);
    command
}

pub fn start_agent(s: &Scratch, faketime: Option<&str>) -> (Killed, PathBuf) {
    let uid = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata(s.path()).unwrap());
    let agent_dir = s.path().join("agent");
    std::fs::create_dir_all(&agent_dir).unwrap();
    let socket = agent_dir.join("run/agent.sock");
    let mut keys = String::new();
    for (role, name) in [("timestamp", "timestamp-key"), ("snapshot", "snapshot-key")] {
        let moved = agent_dir.join(format!("{name}.pem"));
        std::fs::rename(s.repo().join(format!("keys/{name}.pem")), &moved).unwrap();
        keys.push_str(&format!("[[keys]]\nrole = \"{role}\"\nfile = {moved:?}\n"));
    }
    let config = agent_dir.join("agent.toml");
    std::fs::write(
        &config,
        format!(
            "socket = {socket:?}\n{keys}[[callers]]\nuid = {uid}\nroles = [\"timestamp\", \"snapshot\"]\n"
        ),
    )
    .unwrap();
    (serve_agent(s, &config, &socket, faketime), socket)
}

/// `sealwright signer serve --config CONFIG` (key passphrases from the scratch directory's
/// passphrase file), once its socket answers.
pub fn serve_agent(s: &Scratch, config: &Path, socket: &Path, faketime: Option<&str>) -> Killed {
    let child = sealwright(faketime)
        .args(["signer", "serve", "--config"])
        .arg(config)
        .env("SEALWRIGHT_PASSPHRASE_FILE", s.path().join("passphrase"))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .expect("run the agent (faketime installed? apt-get install faketime)");
    wait_for_socket(socket);
    Killed(child)
}

/// Points the repository's snapshot and timestamp keys at the agent on `socket` (the
/// publisher never uses them on push; `server-init` copies the policy to the server).
pub fn online_keys_in_agent(repo: &Path, socket: &Path) {
    let policy_path = repo.join("sealwright.toml");
    let mut text = std::fs::read_to_string(&policy_path).unwrap();
    for name in ["timestamp-key", "snapshot-key"] {
        text = text.replace(
            &format!("private = \"file:keys/{name}.pem\""),
            &format!("private = \"agent:{}\"", socket.display()),
        );
    }
    std::fs::write(&policy_path, &text).unwrap();
}

/// Debian's libfaketime (`apt-get install faketime`, which scripts/test does).
pub fn libfaketime() -> &'static str {
    const CANDIDATES: [&str; 2] = [
        "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
        "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
    ];
    CANDIDATES
        .into_iter()
        .find(|p| Path::new(p).is_file())
        .expect("libfaketime is missing: apt-get install faketime (scripts/test does)")
}

/// An HTTPS agent trusting exactly the CA (or self-signed certificate) in `ca`, no proxy.
pub fn https_agent(ca: &Path) -> ureq::Agent {
    let tls = sealwright_client::tls::TlsOptions::default()
        .with_ca_file(ca)
        .unwrap();
    let config = sealwright_client::fetch::HttpConfig {
        proxy_from_env: false,
        ..Default::default()
    };
    sealwright_client::fetch::https_agent(&config, &tls).unwrap()
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The value of `KEY=` in a unit file.
pub fn unit_value(unit: &Path, key: &str) -> String {
    let text = std::fs::read_to_string(unit).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("{} has no {key}=", unit.display()))
        .to_owned()
}

/// Starts the command of a unit's `ExecStart=` (paths here hold no space or `%`).
pub fn start_unit(unit: &Path, passphrase: Option<&Path>) -> Killed {
    let exec = unit_value(unit, "ExecStart");
    let words: Vec<&str> = exec.split(' ').collect();
    let mut cmd = std::process::Command::new(words[0]);
    cmd.args(&words[1..])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    if let Some(p) = passphrase {
        cmd.env("SEALWRIGHT_PASSPHRASE_FILE", p);
    }
    Killed(cmd.spawn().unwrap())
}

/// The services of a `server setup` directory, killed on drop.
pub struct Services {
    _agent: Killed,
    _server: Killed,
}

/// Starts agent and server as their units would, the agent reading the passphrase the
/// unit hands it as a credential.
pub fn start_services(dir: &Path, port: u16) -> Services {
    let agent = start_setup_agent(dir);
    let server = start_unit(&dir.join("systemd/sealwright-server.service"), None);
    wait_for_port(port);
    Services {
        _agent: agent,
        _server: server,
    }
}

/// Starts only the agent of a `server setup` directory, as its unit would.
pub fn start_setup_agent(dir: &Path) -> Killed {
    let unit = dir.join("systemd/sealwright-agent.service");
    let credential = unit_value(&unit, "LoadCredential");
    let passphrase = std::path::PathBuf::from(credential.strip_prefix("passphrase:").unwrap());
    let agent = start_unit(&unit, Some(&passphrase));
    wait_for_socket(&dir.join("agent/run/agent.sock"));
    agent
}

/// `init` a repository in the scratch directory and `server setup` it into `srv/` on a free
/// port; returns the setup directory, the port and the push token file.
pub fn init_and_set_up_server(s: &Scratch) -> (PathBuf, u16, PathBuf) {
    let repo = s.repo_arg();
    s.ok(&["init", &repo]);
    let dir = s.path().join("srv");
    let port = free_port();
    let token = s.path().join("ci.token");
    s.ok(&[
        "--repo",
        &repo,
        "server",
        "setup",
        dir.to_str().unwrap(),
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--token-out",
        token.to_str().unwrap(),
    ]);
    (dir, port, token)
}

/// A third-party transparency-log tool (`aics-tlog`, `aics-witness`) that scripts/test
/// installs next to SEALWRIGHT_PYTHON. Missing, it fails the test.
pub fn aics(tool: &str) -> PathBuf {
    let python = std::env::var("SEALWRIGHT_PYTHON").expect(
        "SEALWRIGHT_PYTHON is not set: run scripts/test (it installs aics-tlog and aics-witness)",
    );
    let bin = Path::new(&python).parent().unwrap().join(tool);
    assert!(
        bin.is_file(),
        "{} is missing: run scripts/test",
        bin.display()
    );
    bin
}

/// Builds `tests/interop/go-tlog` — a verifier written against Go's own
/// `golang.org/x/mod/sumdb/{note,tlog}` (Debian golang-go and golang-golang-x-mod-dev, which
/// scripts/test installs) — and returns the binary. Missing Go fails the test.
pub fn go_tlog_verifier(scratch: &Path) -> PathBuf {
    let (_, interop) = python();
    let out = scratch.join("go-tlog-verify");
    let built = std::process::Command::new("go")
        .args(["build", "-o", out.to_str().unwrap(), "main.go"])
        .current_dir(interop.join("go-tlog"))
        .env("GOPATH", "/usr/share/gocode")
        .env("GO111MODULE", "off")
        .env("GOFLAGS", "")
        .env("GOCACHE", scratch.join("go-cache"))
        .output()
        .unwrap_or_else(|e| panic!("go: {e} (scripts/test installs golang-go)"));
    assert!(
        built.status.success(),
        "building the Go verifier failed (scripts/test installs golang-golang-x-mod-dev):\n{}",
        String::from_utf8_lossy(&built.stderr)
    );
    out
}

/// Copies the directory `from` to `to` (which must not exist), as `cp -a` does.
pub fn copy_tree(from: &Path, to: &Path) {
    let status = Command::new("cp")
        .arg("-a")
        .arg(from)
        .arg(to)
        .status()
        .unwrap();
    assert!(
        status.success(),
        "cp -a {} {}",
        from.display(),
        to.display()
    );
}

/// The other side's verdict on an SBOM: cyclonedx-python-lib's strict validator (`kind`
/// `cyclonedx`) or spdx-tools (`spdx`), through tests/interop/sbom_validate.py; it must
/// accept `file`. Its JSON report.
pub fn sbom_validate(kind: &str, file: &Path) -> serde_json::Value {
    let (python, interop) = python();
    let out = Command::new(python)
        .arg(interop.join("sbom_validate.py"))
        .arg(kind)
        .arg(file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{kind} validator refused {}:\n{}{}",
        file.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}
