//! Helpers for the client's end-to-end tests: a tiny static HTTP server that records the
//! requests, python-tuf repositories, repositories published by `sealwright-repo`, and
//! running the real `sealwright-tuf-client` binary.
#![allow(
    dead_code,
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

/// A static file server on 127.0.0.1 (HTTP/1.0 style: `Content-Length`, one request per
/// connection, 404 for anything missing). Request paths are percent-decoded to find the
/// file, like Python's `http.server`; the raw paths are recorded in order.
pub struct Server {
    pub port: u16,
    requests: Arc<Mutex<Vec<String>>>,
}

impl Server {
    pub fn start(root: &Path) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (root, log) = (root.to_path_buf(), requests.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                serve(&root, stream, &log);
            }
        });
        Server { port, requests }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }

    /// The raw request paths so far (then forgotten).
    pub fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.requests.lock().unwrap())
    }
}

fn serve(root: &Path, stream: TcpStream, log: &Mutex<Vec<String>>) {
    let mut reader = BufReader::new(&stream);
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    loop {
        let mut h = String::new();
        match reader.read_line(&mut h) {
            Ok(0) | Err(_) => break,
            Ok(_) if h.trim().is_empty() => break,
            Ok(_) => {}
        }
    }
    let raw = line.split_whitespace().nth(1).unwrap_or("").to_owned();
    log.lock().unwrap().push(raw.clone());
    let decoded = percent_decode(raw.split(['?', '#']).next().unwrap_or(""));
    let rel = decoded.trim_start_matches('/');
    let safe = !rel.split('/').any(|c| c == "..");
    let body = if safe {
        std::fs::read(root.join(rel)).ok()
    } else {
        None
    };
    let mut out = &stream;
    let _ = match body {
        Some(b) => out
            .write_all(format!("HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n", b.len()).as_bytes())
            .and_then(|()| out.write_all(&b)),
        None => out.write_all(b"HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n"),
    };
    let _ = out.flush();
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let Some(v) = std::str::from_utf8(&b[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(v);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The interop interpreter (python-tuf venv) and scripts directory: fail, never skip.
pub fn python() -> (PathBuf, PathBuf) {
    let python = std::env::var_os("SEALWRIGHT_PYTHON")
        .expect("SEALWRIGHT_PYTHON is not set: run scripts/test (it creates .venv with the pinned python-tuf)");
    let dir = std::env::var_os("SEALWRIGHT_INTEROP_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/interop"));
    (PathBuf::from(python), dir)
}

/// Writes a python-tuf repository into `out` (`metadata/`, `targets/`, `manifest.json`).
pub fn make_python_repo(out: &Path, args: &[&str]) -> serde_json::Value {
    let (python, dir) = python();
    let o = Command::new(python)
        .arg(dir.join("make_python_repo.py"))
        .arg(out)
        .args(args)
        .output()
        .expect("run make_python_repo.py");
    assert!(
        o.status.success(),
        "make_python_repo.py failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap()
}

/// A client working directory: `md/`, `td/`, and the URLs of a served repository.
pub struct Client {
    pub md: PathBuf,
    pub td: PathBuf,
    pub murl: String,
    pub turl: String,
}

impl Client {
    pub fn new(work: &Path, murl: String, turl: String) -> Self {
        let (md, td) = (work.join("md"), work.join("td"));
        std::fs::create_dir_all(&md).unwrap();
        std::fs::create_dir_all(&td).unwrap();
        Client { md, td, murl, turl }
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.run_with(None, args)
    }

    /// Runs the binary, under `faketime TIME` when given.
    pub fn run_with(&self, faketime: Option<&str>, args: &[&str]) -> Output {
        let bin = env!("CARGO_BIN_EXE_sealwright-tuf-client");
        let mut cmd = match faketime {
            Some(t) => {
                let mut c = Command::new("faketime");
                c.arg(t).arg(bin);
                c
            }
            None => Command::new(bin),
        };
        cmd.args(args).output().unwrap()
    }

    pub fn init(&self, root: &Path) -> Output {
        self.run(&[
            "--metadata-dir",
            self.md.to_str().unwrap(),
            "init",
            root.to_str().unwrap(),
        ])
    }

    pub fn refresh(&self) -> Output {
        self.run(&[
            "--metadata-url",
            &self.murl,
            "--metadata-dir",
            self.md.to_str().unwrap(),
            "refresh",
        ])
    }

    pub fn download(&self, targets: &[&str]) -> Output {
        let mut args = vec![
            "--metadata-url",
            &self.murl,
            "--metadata-dir",
            self.md.to_str().unwrap(),
        ];
        for t in targets {
            args.push("--target-name");
            args.push(t);
        }
        args.extend([
            "--target-dir",
            self.td.to_str().unwrap(),
            "--target-base-url",
            &self.turl,
            "download",
        ]);
        self.run(&args)
    }
}

/// Asserts exit 0 (or prints the output).
pub fn ok(out: &Output) {
    assert_eq!(
        out.status.code(),
        Some(0),
        "expected success:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Asserts exit exactly 1.
pub fn fails(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(
        out.status.code(),
        Some(1),
        "expected exit 1:\nstderr: {stderr}"
    );
    stderr
}

/// Names of the files in `dir`, sorted.
pub fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}
