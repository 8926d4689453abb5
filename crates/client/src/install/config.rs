//! `DIR/client.toml`: where the repository is, which product and channel to follow, and
//! whom to trust for TLS (`client init` writes it; every update reads it, checked again).

use std::fs;
use std::path::{Path, PathBuf};

use chrono::Utc;
use sealwright_tuf::TrustedMetadataSet;
use serde::{Deserialize, Serialize};

use super::{io_fail, InstallError};
use crate::tls::TlsOptions;
use sealwright_fs::{read_capped_if_exists, write_atomic};

/// The client configuration file in `DIR`.
pub const CONFIG_FILE: &str = "client.toml";
/// Channel used when none is configured.
pub const DEFAULT_CHANNEL: &str = "stable";
const MAX_CONFIG: u64 = 64 * 1024;

/// `DIR/client.toml`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientConfig {
    /// Base URL of the metadata (ends with `/`).
    pub metadata_url: String,
    /// Base URL of the artifacts (ends with `/`).
    pub targets_url: String,
    /// Product to install.
    pub name: Option<String>,
    /// Channel to follow.
    #[serde(default = "default_channel")]
    pub channel: String,
    /// PEM file of the CA certificates to trust instead of the Mozilla roots (relative
    /// paths are relative to `DIR`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// SPKI pins (`sha256/BASE64`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub spki_pins: Vec<String>,
    /// When set, a release installs only if the transparency log shows it (C6).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log: Option<super::LogPolicy>,
    /// When set, a release installs only with provenance from trusted builders (C7).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provenance: Option<super::ProvenancePolicy>,
}

fn default_channel() -> String {
    DEFAULT_CHANNEL.to_owned()
}

/// `client init`: validates `root` as a self-signed TUF root, writes `DIR/client.toml`
/// and pins `DIR/metadata/root.json`. `url` is the repository base (as served by
/// `sealwright serve`): metadata under `url/metadata/`, artifacts under `url/targets/`.
///
/// Plain `http://` is accepted only for the loopback interface (local tests and
/// development); anything else must be `https://`.
///
/// Without `name`, the repository is read once (over the verified TUF chain from `root`)
/// and its only product on the channel is recorded; when it has none or several, init is
/// refused and leaves nothing behind, so the mistake shows now rather than at the first
/// update.
pub fn init_client(
    dir: &Path,
    root: &[u8],
    url: &str,
    ca_pem: Option<&[u8]>,
    spki_pins: &[String],
    name: Option<&str>,
    channel: Option<&str>,
) -> Result<ClientConfig, InstallError> {
    check_url(url)?;
    for (what, v) in [("name", name), ("channel", channel)] {
        if let Some(v) = v {
            check_component(what, v)?;
        }
    }
    // A root that does not verify under its own keys is refused before anything is written.
    TrustedMetadataSet::new(root, Utc::now()).map_err(|e| {
        InstallError::new(
            "config",
            format!("the given root.json is not a valid self-signed TUF root ({e}): copy it again from the repository owner"),
        )
    })?;
    for pin in spki_pins {
        crate::tls::parse_pin(pin).map_err(|e| InstallError::new("config", e.to_string()))?;
    }
    let base = if url.ends_with('/') {
        url.to_owned()
    } else {
        format!("{url}/")
    };
    let existed = dir.exists();
    fs::create_dir_all(dir.join("metadata"))
        .map_err(io_fail("config", format!("creating {}", dir.display())))?;
    let made = write_client(dir, root, &base, ca_pem, spki_pins, name, channel);
    if made.is_err() {
        undo_init(dir, existed);
    }
    made
}

/// Removes what an init that failed wrote: the directory when it made it, else its files.
fn undo_init(dir: &Path, existed: bool) {
    if existed {
        let _ = fs::remove_file(dir.join(CONFIG_FILE));
        let _ = fs::remove_file(dir.join("ca.pem"));
        let _ = fs::remove_dir_all(dir.join("metadata"));
        let _ = fs::remove_dir_all(dir.join("tmp"));
    } else {
        let _ = fs::remove_dir_all(dir);
    }
}

fn write_client(
    dir: &Path,
    root: &[u8],
    base: &str,
    ca_pem: Option<&[u8]>,
    spki_pins: &[String],
    name: Option<&str>,
    channel: Option<&str>,
) -> Result<ClientConfig, InstallError> {
    let ca_file = match ca_pem {
        Some(pem) => {
            let opts = TlsOptions {
                ca_pem: Some(pem.to_vec()),
                ca_source: Some("the CA file".into()),
                ..TlsOptions::default()
            };
            crate::tls::client_config(&opts)
                .map_err(|e| InstallError::new("config", e.to_string()))?;
            write_atomic(&dir.join("ca.pem"), pem).map_err(io_fail("config", "writing ca.pem"))?;
            Some(PathBuf::from("ca.pem"))
        }
        None => None,
    };
    let config = ClientConfig {
        metadata_url: format!("{base}metadata/"),
        targets_url: format!("{base}targets/"),
        name: name.map(str::to_owned),
        channel: channel.unwrap_or(DEFAULT_CHANNEL).to_owned(),
        ca_file,
        spki_pins: spki_pins.to_vec(),
        log: None,
        provenance: None,
    };
    let save = |config: &ClientConfig| {
        let text =
            toml::to_string(config).map_err(|e| InstallError::new("config", e.to_string()))?;
        write_atomic(&dir.join(CONFIG_FILE), text.as_bytes())
            .map_err(io_fail("config", "writing client.toml"))
    };
    save(&config)?;
    crate::updater::init(&dir.join("metadata"), root)
        .map_err(|e| InstallError::new("config", e.to_string()))?;
    if config.name.is_none() {
        let name = discover_product(dir, &config)?;
        let config = ClientConfig {
            name: Some(name),
            ..config
        };
        save(&config)?;
        return Ok(config);
    }
    Ok(config)
}

/// Most roles `client init` reads to find the product when `--name` is not given.
const MAX_ROLES_TO_DISCOVER: usize = 64;

/// The one product the repository publishes on `channel`, for `client init` without a
/// name: a product counts when its channel pointer and the artifact it names resolve through
/// the delegation search, as an update would resolve them. None or several: refused, with
/// the names to choose from.
fn discover_product(dir: &Path, config: &ClientConfig) -> Result<String, InstallError> {
    let mut updater =
        super::refresh_metadata(dir, config, https_fetcher(dir, config)?, Utc::now())?;
    let listed = updater
        .listed_target_paths(MAX_ROLES_TO_DISCOVER)
        .map_err(|e| {
            InstallError::new(
                "config",
                format!("reading the repository to find its products: {e}; pass --name NAME"),
            )
        })?;
    let suffix = format!("/channels/{}.json", config.channel);
    let mut products = std::collections::BTreeSet::new();
    for path in &listed {
        let Some(name) = path.strip_suffix(&suffix) else {
            continue;
        };
        if check_component("name", name).is_ok()
            && super::resolve_release(&mut updater, name, &config.channel).is_ok()
        {
            products.insert(name.to_owned());
        }
    }
    let mut products = products.into_iter();
    match (products.next(), products.next()) {
        (Some(only), None) => Ok(only),
        (None, _) => Err(InstallError::new(
            "config",
            format!(
                "the repository has no release on channel {} that this client could find: pass --name NAME (and --channel)",
                config.channel
            ),
        )),
        (Some(first), Some(second)) => {
            let names = [first, second].into_iter().chain(products).collect::<Vec<_>>();
            Err(InstallError::new(
                "config",
                format!(
                    "the repository has several products on channel {} ({}): choose one with --name",
                    config.channel,
                    names.join(", ")
                ),
            ))
        }
    }
}

/// A product or channel name becomes part of target paths and directory names: letters,
/// digits, `.`, `_`, `-`, not starting with a dot.
pub(super) fn check_component(what: &str, v: &str) -> Result<(), InstallError> {
    let ok = !v.is_empty()
        && v.len() <= 128
        && !v.starts_with('.')
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(InstallError::new(
            "config",
            format!("{what} {v:?} may only hold letters, digits, '.', '_' and '-' (and not start with '.')"),
        ))
    }
}

fn check_url(url: &str) -> Result<(), InstallError> {
    crate::fetch::check_transport(url)
        .map_err(|e| InstallError::new("config", format!("the repository URL {e}")))
}

/// The product this client installs; `client init` records it.
pub(super) fn product_name(config: &ClientConfig) -> Result<String, InstallError> {
    config.name.clone().ok_or_else(|| {
        InstallError::new(
            "config",
            "no product name configured: run `sealwright client init ... --name NAME`",
        )
    })
}

/// Reads `DIR/client.toml`.
/// Makes the client in `dir` require the transparency log (`client init --log-key`).
pub fn require_log(dir: &Path, policy: super::LogPolicy) -> Result<ClientConfig, InstallError> {
    let config = ClientConfig {
        log: Some(policy),
        ..load_config(dir)?
    };
    save_config(dir, config)
}

/// Makes the client in `dir` require provenance from trusted builders (C7).
pub fn require_provenance(
    dir: &Path,
    policy: super::ProvenancePolicy,
) -> Result<ClientConfig, InstallError> {
    let config = ClientConfig {
        provenance: Some(policy),
        ..load_config(dir)?
    };
    save_config(dir, config)
}

fn save_config(dir: &Path, config: ClientConfig) -> Result<ClientConfig, InstallError> {
    let text = toml::to_string(&config).map_err(|e| InstallError::new("config", e.to_string()))?;
    write_atomic(&dir.join(CONFIG_FILE), text.as_bytes())
        .map_err(io_fail("config", "writing client.toml"))?;
    Ok(config)
}

pub fn load_config(dir: &Path) -> Result<ClientConfig, InstallError> {
    let path = dir.join(CONFIG_FILE);
    let bytes = read_capped_if_exists(&path, MAX_CONFIG)
        .map_err(io_fail("config", format!("reading {}", path.display())))?
        .ok_or_else(|| {
            InstallError::new(
                "config",
                format!("{} is not a client directory (no client.toml): run `sealwright client init --dir {}` first", dir.display(), dir.display()),
            )
        })?;
    let text = String::from_utf8(bytes)
        .map_err(|_| InstallError::new("config", format!("{} is not UTF-8", path.display())))?;
    let config: ClientConfig = toml::from_str(&text)
        .map_err(|e| InstallError::new("config", format!("{}: {e}", path.display())))?;
    check_url(&config.metadata_url)?;
    check_url(&config.targets_url)?;
    if let Some(n) = &config.name {
        check_component("name", n)?;
    }
    check_component("channel", &config.channel)?;
    Ok(config)
}

/// The HTTPS transport `config` asks for (its CA and SPKI pins).
pub(super) fn https_fetcher(
    dir: &Path,
    config: &ClientConfig,
) -> Result<crate::fetch::HttpFetcher, InstallError> {
    let tls = tls_options(dir, config)?;
    crate::fetch::HttpFetcher::with_tls(&config.metadata_url, &tls)
        .map_err(|e| InstallError::new("config", e.to_string()))
}

/// The TLS options `config` asks for.
pub fn tls_options(dir: &Path, config: &ClientConfig) -> Result<TlsOptions, InstallError> {
    let mut opts = TlsOptions {
        spki_pins: config.spki_pins.clone(),
        ..TlsOptions::default()
    };
    if let Some(ca) = &config.ca_file {
        opts = opts
            .with_ca_file(&dir.join(ca))
            .map_err(|e| InstallError::new("config", e.to_string()))?;
    }
    Ok(opts)
}
