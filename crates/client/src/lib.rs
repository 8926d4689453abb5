//! Sealwright's TUF client: an HTTP [`Fetcher`](fetch::Fetcher), the local
//! [`MetadataDir`](metadata_dir::MetadataDir) and an [`Updater`](updater::Updater) that runs
//! the TUF §5 client workflow over the sans-IO trust engine of `sealwright-tuf`.
//!
//! ```no_run
//! use sealwright_client::{HttpFetcher, Updater, UpdaterConfig};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let url = "https://repo.example/metadata/";
//! let config = UpdaterConfig::new("/var/lib/app/tuf", url)
//!     .with_targets("/var/lib/app/downloads", "https://repo.example/targets/");
//! let mut updater = Updater::new(config, HttpFetcher::for_base_url(url), chrono::Utc::now())?;
//! updater.refresh()?;
//! if let Some(found) = updater.get_targetinfo("app/1.0/app.tar.gz")? {
//!     if updater.find_cached_target(&found.target, "app/1.0/app.tar.gz")?.is_none() {
//!         updater.download_target(&found.target, "app/1.0/app.tar.gz")?;
//!     }
//! }
//! # Ok(())
//! # }
//! ```
//!
//! An application that updates itself uses the [`install`] module: it finds the newest
//! release through the signed channel pointer, verifies it, installs it under
//! `DIR/releases/`, switches `DIR/current` atomically and rolls back when the health check
//! fails (see `docs/client.md`):
//!
//! ```no_run
//! use sealwright_client::install::{update, InstallOptions};
//! # fn main() -> Result<(), sealwright_client::install::InstallError> {
//! let report = update(
//!     std::path::Path::new("/var/lib/myapp"),
//!     &InstallOptions {
//!         health_check: Some("\"$SEALWRIGHT_RELEASE_DIR\"/myapp --selftest".into()),
//!         ..InstallOptions::default()
//!     },
//! )?;
//! println!("{}: {} {}", report.status, report.name, report.version);
//! # Ok(())
//! # }
//! ```

pub mod bundle;
pub mod fetch;
pub mod install;
pub mod log_reader;
pub mod metadata_dir;
#[cfg(feature = "monitor")]
pub mod monitor;
pub mod tls;
pub mod updater;

pub use fetch::{FetchError, Fetcher, HttpConfig, HttpFetcher};
pub use metadata_dir::{quote, MetadataDir};
pub use updater::{init, UpdateError, Updater, UpdaterConfig};
