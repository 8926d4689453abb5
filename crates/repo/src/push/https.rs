//! The publisher's half of the publish API over HTTPS (`sealwright push`): signs the staged
//! targets roles here, uploads only the artifacts the server does not hold yet (streamed),
//! sends the signed roles, checks the answer ([`super::push`]), and records the push — or
//! the refusal — in the repository's audit log.
//!
//! The caller builds the HTTPS agent (`sealwright_client::fetch::https_agent`: its CA,
//! SPKI pins, client certificate), so the TLS trust decisions live in one place.

use std::path::Path;

use chrono::Utc;

use super::{push, Accepted, Outgoing, Remote};
use crate::keyring::Keyring;
use crate::policy::Policy;
use crate::publish::{self, PublishError, PublishReport};
use crate::staging;

/// Largest answer read from the server.
const MAX_ANSWER: u64 = 16 * 1024 * 1024;

/// Where a push goes and how it authenticates.
#[derive(Debug)]
pub struct Server<'a> {
    /// The publish API's base URL (`https://HOST:PORT`, no trailing slash).
    pub url: &'a str,
    /// The HTTPS agent, with the TLS trust (and client certificate) already set.
    pub agent: &'a ureq::Agent,
    /// The bearer token; `None` when the agent's client certificate authenticates.
    pub token: Option<&'a str>,
}

/// Pushes what is staged in `repo_dir` to `server` and records it in the repository's audit
/// log (`push`, or `push-refused` with the reason). `progress` hears (uploaded, total)
/// artifacts.
pub fn push_over_https(
    repo_dir: &Path,
    policy: &Policy,
    keyring: &Keyring<'_>,
    server: &Server<'_>,
    progress: &dyn Fn(u64, u64),
) -> Result<(PublishReport, Accepted), PublishError> {
    let result = (|| {
        let plan = publish::plan(repo_dir, policy, Utc::now())?;
        let mut remote = Https {
            repo_dir,
            server,
            progress,
        };
        push(repo_dir, policy, keyring, plan, &mut remote)
    })();
    crate::publish::record_outcome(repo_dir, "push", server.url, result, |(report, _)| {
        Some(serde_json::json!({"roles": report.roles, "targets_added": report.targets_added}))
    })
}

/// A push server over HTTPS.
struct Https<'a> {
    repo_dir: &'a Path,
    server: &'a Server<'a>,
    progress: &'a dyn Fn(u64, u64),
}

impl Remote for Https<'_> {
    fn send(&mut self, out: &Outgoing) -> Result<Accepted, String> {
        send(self.repo_dir, self.server, out, self.progress)
    }

    fn metadata(&mut self, file: &str, max: u64) -> Result<Vec<u8>, String> {
        let url = format!("{}/metadata/{file}", self.server.url);
        let resp = self
            .server
            .agent
            .get(&url)
            .config()
            .http_status_as_error(false)
            .build()
            .call()
            .map_err(|e| format!("fetching {url}: {e}"))?;
        let status = resp.status().as_u16();
        if status != 200 {
            return Err(format!("fetching {url}: HTTP {status}"));
        }
        resp.into_body()
            .with_config()
            .limit(max)
            .read_to_vec()
            .map_err(|e| format!("fetching {url}: {e}"))
    }
}

/// Uploads the artifacts the server lacks, then sends the signed roles.
fn send(
    repo_dir: &Path,
    server: &Server<'_>,
    out: &Outgoing,
    progress: &dyn Fn(u64, u64),
) -> Result<Accepted, String> {
    let base = server.url;
    let total = out.blobs.len() as u64;
    for (done, (sha256, path)) in (1u64..).zip(&out.blobs) {
        let url = format!("{base}/api/v1/blobs/{sha256}");
        // Upload only what the server does not hold yet: a file unchanged between releases,
        // or a push retried after its uploads went through, costs nothing.
        let held = authorize(server.agent.get(&url), server.token)
            .config()
            .http_status_as_error(false)
            .build()
            .call()
            .map_err(|e| format!("asking {base} for {path}: {e}"))?;
        match held.status().as_u16() {
            200 => {}
            404 => {
                let blob = staging::blob_path(repo_dir, sha256);
                let mut file = std::fs::File::open(&blob)
                    .map_err(|e| format!("{path}: staged blob {}: {e}", blob.display()))?;
                let resp = authorize(server.agent.put(&url), server.token)
                    .send(ureq::SendBody::from_reader(&mut file))
                    .map_err(|e| format!("uploading {path} to {base}: {e}"))?;
                answer(resp, &format!("uploading {path}"))?;
            }
            _ => {
                answer(held, &format!("asking for {path}"))?;
            }
        }
        progress(done, total);
    }
    let body = serde_json::to_vec(&out.request).map_err(|e| e.to_string())?;
    let resp = authorize(
        server.agent.post(format!("{base}/api/v1/push")),
        server.token,
    )
    .header("Content-Type", "application/json")
    .send(&body[..])
    .map_err(|e| format!("pushing to {base}: {e}"))?;
    let text = answer(resp, "the push")?;
    serde_json::from_str(&text)
        .map_err(|e| format!("the server's answer is not a push result: {e}"))
}

/// Adds the bearer token, if there is one (without, the client certificate authenticates).
fn authorize<B>(req: ureq::RequestBuilder<B>, token: Option<&str>) -> ureq::RequestBuilder<B> {
    match token {
        Some(t) => req.header("Authorization", format!("Bearer {t}")),
        None => req,
    }
}

/// The body of a 2xx answer, or the server's reason for refusing.
fn answer(resp: ureq::http::Response<ureq::Body>, what: &str) -> Result<String, String> {
    let status = resp.status().as_u16();
    let text = resp
        .into_body()
        .with_config()
        .limit(MAX_ANSWER)
        .read_to_string()
        .map_err(|e| format!("{what}: reading the answer: {e}"))?;
    if (200..300).contains(&status) {
        return Ok(text);
    }
    let reason = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
        .unwrap_or_else(|| text.chars().take(300).collect());
    Err(format!(
        "the server refused {what} (HTTP {status}): {reason}"
    ))
}
