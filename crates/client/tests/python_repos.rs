//! The real `sealwright-tuf-client` binary against repositories written by python-tuf,
//! served over HTTP by a local server that records every request.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

mod common;

use std::path::PathBuf;

use common::{fails, make_python_repo, names, ok, Client, Server};

/// A python-tuf repository under a directory whose URL needs percent-encoding.
struct Fixture {
    _tmp: tempfile::TempDir,
    repo: PathBuf,
    manifest: serde_json::Value,
    server: Server,
    client: Client,
    prefix: String,
}

impl Fixture {
    fn new(args: &[&str]) -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let repo = tmp.path().join("srv/[py repo]");
        let manifest = make_python_repo(&repo, args);
        let server = Server::start(&tmp.path().join("srv"));
        let prefix = "/%5Bpy%20repo%5D/".to_owned();
        let client = Client::new(
            tmp.path(),
            server.url("%5Bpy%20repo%5D/metadata/"),
            server.url("%5Bpy%20repo%5D/targets/"),
        );
        Fixture {
            _tmp: tmp,
            repo,
            manifest,
            server,
            client,
            prefix,
        }
    }

    fn md(&self, name: &str) -> String {
        format!("{}metadata/{name}", self.prefix)
    }

    fn served(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.repo.join("metadata").join(name)).unwrap()
    }

    fn init(&self) {
        ok(&self.client.init(&self.repo.join("metadata/1.root.json")));
        assert!(self.server.take().is_empty(), "init makes no request");
    }

    /// The manifest entry for target `path`.
    fn target(&self, path: &str) -> &serde_json::Value {
        self.manifest["targets"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["path"] == path)
            .unwrap()
    }

    fn target_request(&self, path: &str) -> String {
        format!(
            "{}{}",
            self.prefix,
            self.target(path)["stored_as"].as_str().unwrap()
        )
    }

    /// Downloads `path` alone and asserts the metadata requests after the unchanged
    /// `2.root.json` + `timestamp.json`, then the artifact request, then the content.
    fn download_fetches(&self, path: &str, roles: &[&str]) {
        ok(&self.client.download(&[path]));
        let mut expected = vec![self.md("2.root.json"), self.md("timestamp.json")];
        expected.extend(roles.iter().map(|r| self.md(&format!("1.{r}.json"))));
        expected.push(self.target_request(path));
        assert_eq!(self.server.take(), expected, "requests for {path}");
        self.assert_stored(path);
    }

    fn assert_stored(&self, path: &str) {
        let stored = self.client.td.join(sealwright_client::quote(path));
        let expected = hex::decode(self.target(path)["hex"].as_str().unwrap()).unwrap();
        assert_eq!(std::fs::read(stored).unwrap(), expected, "{path}");
    }
}

#[test]
fn fresh_refresh_makes_exactly_the_expected_requests_and_stores_exact_bytes() {
    let f = Fixture::new(&["--key-type", "ecdsa"]);
    f.init();
    assert_eq!(
        std::fs::read(f.client.md.join("root.json")).unwrap(),
        f.served("1.root.json")
    );
    ok(&f.client.refresh());
    assert_eq!(
        f.server.take(),
        [
            f.md("2.root.json"),
            f.md("timestamp.json"),
            f.md("1.snapshot.json"),
            f.md("1.targets.json")
        ]
    );
    assert_eq!(
        names(&f.client.md),
        [
            "root.json",
            "snapshot.json",
            "targets.json",
            "timestamp.json"
        ]
    );
    for (stored, served) in [
        ("root.json", "1.root.json"),
        ("timestamp.json", "timestamp.json"),
        ("snapshot.json", "1.snapshot.json"),
        ("targets.json", "1.targets.json"),
    ] {
        assert_eq!(
            std::fs::read(f.client.md.join(stored)).unwrap(),
            f.served(served),
            "{stored}"
        );
    }
    // Unchanged repository: a second refresh reuses everything stored.
    ok(&f.client.refresh());
    assert_eq!(
        f.server.take(),
        [f.md("2.root.json"), f.md("timestamp.json")]
    );
}

#[test]
fn downloads_follow_the_delegation_search_and_fetch_only_roles_on_the_path() {
    let f = Fixture::new(&["--key-type", "ecdsa"]);
    f.init();
    ok(&f.client.refresh());
    f.server.take();

    f.download_fetches("file1.txt", &[]);
    // Already in TD with the right hashes: not fetched again.
    ok(&f.client.download(&["file1.txt"]));
    assert_eq!(
        f.server.take(),
        [f.md("2.root.json"), f.md("timestamp.json")]
    );

    f.download_fetches("a/b/file.txt", &[]);
    f.download_fetches("paths-role/nested/deep.txt", &["paths-role", "nested-role"]);
    f.download_fetches("paths-role/hello.txt", &[]); // paths-role is stored now
    f.download_fetches("hashed/one.txt", &["hash-prefix-role"]);
    f.download_fetches("term/found.txt", &["terminating-role"]);
    let bin = f.target("bins/alpha.txt")["role"]
        .as_str()
        .unwrap()
        .to_owned();
    f.download_fetches("bins/alpha.txt", &["bins-parent", &bin]);
    f.download_fetches("paths-role/only-in-shadow.txt", &["priority-shadow"]);

    // Every target of the manifest in one run; the shadowed path gets the winner's bytes.
    let all: Vec<String> = f.manifest["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["path"].as_str().unwrap().to_owned())
        .collect();
    let refs: Vec<&str> = all.iter().map(String::as_str).collect();
    ok(&f.client.download(&refs));
    for p in &all {
        f.assert_stored(p);
    }
    // Stored delegated roles are the exact bytes served.
    for name in names(&f.client.md) {
        let served = match name.as_str() {
            "root.json" => "1.root.json".to_owned(),
            "timestamp.json" => "timestamp.json".to_owned(),
            other => format!("1.{other}"),
        };
        assert_eq!(
            std::fs::read(f.client.md.join(&name)).unwrap(),
            f.served(&served),
            "{name}"
        );
    }
    // Absent targets (outside patterns, hash prefixes, behind terminating, nowhere): exit 1.
    for a in f.manifest["absent"].as_array().unwrap() {
        let path = a["path"].as_str().unwrap();
        fails(&f.client.download(&[path]));
        assert!(
            !f.client.td.join(sealwright_client::quote(path)).exists(),
            "{path}"
        );
    }
}

#[test]
fn tampered_artifact_fails_and_leaves_nothing_in_the_target_dir() {
    let f = Fixture::new(&[]);
    f.init();
    let stored = f
        .repo
        .join(f.target("file1.txt")["stored_as"].as_str().unwrap());
    let mut bytes = std::fs::read(&stored).unwrap();
    bytes[0] ^= 1;
    std::fs::write(&stored, &bytes).unwrap();
    fails(&f.client.download(&["file1.txt"]));
    assert!(names(&f.client.td).is_empty(), "{:?}", names(&f.client.td));
    // Too long is refused as well (the signed length caps the download).
    bytes[0] ^= 1;
    bytes.extend_from_slice(b"more");
    std::fs::write(&stored, &bytes).unwrap();
    fails(&f.client.download(&["file1.txt"]));
    assert!(names(&f.client.td).is_empty());
    // A missing target stops the run at the first failure.
    fails(&f.client.download(&["nonexistent.txt", "a/b/file.txt"]));
    assert!(names(&f.client.td).is_empty());
}

#[test]
fn root_rotations_are_followed_and_stored() {
    let f = Fixture::new(&["--root-versions", "3"]);
    f.init();
    ok(&f.client.refresh());
    assert_eq!(
        f.server.take(),
        [
            f.md("2.root.json"),
            f.md("3.root.json"),
            f.md("4.root.json"),
            f.md("timestamp.json"),
            f.md("1.snapshot.json"),
            f.md("1.targets.json")
        ]
    );
    assert_eq!(
        std::fs::read(f.client.md.join("root.json")).unwrap(),
        f.served("3.root.json")
    );
}

#[test]
fn an_invalid_trusted_root_is_accepted_by_init_but_refresh_fails_without_a_request() {
    let f = Fixture::new(&[]);
    let bad = f.repo.join("bad-root.json");
    let mut root = f.served("1.root.json");
    let at = root.len() / 2;
    root[at] ^= 0x20;
    std::fs::write(&bad, &root).unwrap();
    ok(&f.client.init(&bad));
    fails(&f.client.refresh());
    assert!(f.server.take().is_empty());
}

#[test]
fn expired_metadata_under_faketime_fails_refresh() {
    let f = Fixture::new(&[]);
    f.init();
    let later = (chrono::Utc::now() + chrono::Duration::days(400))
        .format("%Y-%m-%d %H:%M:%S+00:00")
        .to_string();
    let md = f.client.md.to_str().unwrap();
    fails(&f.client.run_with(
        Some(&later),
        &[
            "--metadata-url",
            &f.client.murl,
            "--metadata-dir",
            md,
            "refresh",
        ],
    ));
    // Same client, real clock: fine.
    ok(&f.client.refresh());
}

#[test]
fn usage_errors_exit_1_and_global_options_go_anywhere() {
    let f = Fixture::new(&[]);
    let md = f.client.md.to_str().unwrap();
    fails(&f.client.run(&["bogus"]));
    fails(&f.client.run(&["--metadata-dir", md, "init"]));
    fails(&f.client.run(&["--no-such-flag", "refresh"]));
    let root = f.repo.join("metadata/1.root.json");
    ok(&f.client.run(&[
        "-v",
        "-v",
        "init",
        root.to_str().unwrap(),
        "--metadata-dir",
        md,
    ]));
    ok(&f.client.run(&[
        "refresh",
        "--verbose",
        "--metadata-dir",
        md,
        "--metadata-url",
        &f.client.murl,
    ]));
}
