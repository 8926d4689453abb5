//! The documentation runs as written (issue 10): every shell block of `README.md` and
//! `docs/*.md` either runs here, or is marked as not runnable with the reason.
//!
//! - A ```` ```console ```` block is run by [trycmd]: each `$ ` line is a command, the lines
//!   after it are its expected output (stdout and stderr; `...` elides lines, `[..]` part of
//!   a line). All such blocks of one file run in order, in one fresh directory, so a block
//!   may use what an earlier one made (a repository, a certificate, a token file).
//! - Any other shell block (```` ```sh ````) must have a line `<!-- not run: REASON -->`
//!   just before or just after it (a server that runs until stopped, the test command
//!   itself).
//!   A shell block with neither fails this test, as does a block without a language.
//!
//! The commands find `sealwright` (this build), `openssl`, `sh` and `mkdir`. Every block
//! reads key passphrases from `SEALWRIGHT_PASSPHRASE_FILE=passphrase`, the file the first
//! block of each document makes, as the documents say to export it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

/// Info strings of blocks that are not shell.
const NOT_SHELL: [&str; 5] = ["text", "toml", "json", "rust,ignore", "console"];
/// What a not-runnable shell block must be preceded by.
const NOT_RUN: &str = "<!-- not run: ";

fn documents() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut docs = vec![root.join("README.md")];
    let mut more: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    more.sort();
    docs.extend(more);
    docs
}

/// Every fenced block is a known non-shell kind, a `console` block (run), or a shell block
/// marked as not run with a reason.
fn unmarked_shell_blocks(doc: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(doc).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let is_marker = |l: Option<&&str>| {
        l.is_some_and(|l| l.starts_with(NOT_RUN) && l.trim_end().ends_with("-->"))
    };
    let mut problems = Vec::new();
    let mut open: Option<(usize, &str)> = None;
    for (n, line) in lines.iter().enumerate() {
        let Some(info) = line.trim_start().strip_prefix("```") else {
            continue;
        };
        match open.take() {
            None => open = Some((n, info.trim())),
            Some((start, info)) => {
                // The marker is the line just before the block or just after it.
                let marked = is_marker(start.checked_sub(1).and_then(|i| lines.get(i)))
                    || is_marker(lines.get(n + 1));
                let ok = NOT_SHELL.contains(&info) || (info == "sh" && marked);
                if !ok {
                    problems.push(format!(
                        "{}:{}: a ```{info} block: make it ```console (run by this test) or a ```sh block next to `{NOT_RUN}REASON -->`",
                        doc.display(),
                        start + 1
                    ));
                }
            }
        }
    }
    problems
}

#[test]
fn every_shell_block_is_run_or_marked_as_not_runnable() {
    let problems: Vec<String> = documents()
        .iter()
        .flat_map(|d| unmarked_shell_blocks(d))
        .collect();
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

fn which(tool: &str) -> PathBuf {
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join(tool))
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| panic!("{tool} is not on PATH (scripts/test installs it)"))
}

#[test]
fn documented_commands_run_as_written() {
    let work = tempfile::tempdir().unwrap();
    let cases = trycmd::TestCases::new();
    cases
        .register_bin(
            "sealwright",
            PathBuf::from(env!("CARGO_BIN_EXE_sealwright")),
        )
        .env("SEALWRIGHT_PASSPHRASE_FILE", "passphrase")
        .env("NO_COLOR", "1")
        .timeout(std::time::Duration::from_secs(300));
    for tool in ["openssl", "sh", "mkdir"] {
        cases.register_bin(tool, which(tool));
    }
    let mut copies = Vec::new();
    for doc in documents() {
        let text = std::fs::read_to_string(&doc).unwrap();
        if !text.contains("```console\n") {
            continue;
        }
        // A copy next to an empty NAME.in/: trycmd runs the file's blocks in that directory.
        let name = doc.file_name().unwrap();
        let copy = work.path().join(name);
        std::fs::copy(&doc, &copy).unwrap();
        std::fs::create_dir(copy.with_extension("in")).unwrap();
        cases.case(&copy);
        copies.push((copy, doc));
    }
    // `TRYCMD=overwrite` rewrites the expected outputs of the copies; carry them back
    // (then replace what varies from run to run — key ids, times, paths — with `[..]`).
    let overwrite = std::env::var_os("TRYCMD").is_some_and(|v| v == "overwrite");
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| cases.run()));
    if overwrite {
        for (copy, doc) in &copies {
            std::fs::copy(copy, doc).unwrap();
        }
    }
    if let Err(panic) = result {
        std::panic::resume_unwind(panic);
    }
}
