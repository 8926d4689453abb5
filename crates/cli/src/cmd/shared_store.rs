//! `--store` and `--objects`: the shared store of server replicas (docs/scale-out.md) — the
//! same two options, with the same environment variables, for `serve`, `token` and `audit`.

use sealwright_server::storage::SharedHandle;
use sealwright_store::SharedConfig;

#[derive(Debug, Clone, clap::Args)]
pub struct StoreArgs {
    /// The replicas' shared database, `postgres://USER@HOST:PORT/DB` (a password goes in
    /// PGPASSWORD, never here: arguments are visible to every user of the machine). Every
    /// replica of one repository, and every command changing its tokens or reading its audit
    /// log, gets the same --store and --objects (docs/scale-out.md).
    #[arg(
        long,
        global = true,
        value_name = "URL",
        requires = "objects",
        env = "SEALWRIGHT_STORE"
    )]
    pub store: Option<String>,
    /// With --store: the replicas' bucket, `s3://BUCKET[/PREFIX]`. Endpoint, region and
    /// credentials come from AWS_ENDPOINT, AWS_REGION, AWS_ACCESS_KEY_ID and
    /// AWS_SECRET_ACCESS_KEY.
    #[arg(
        long,
        global = true,
        value_name = "URL",
        requires = "store",
        env = "SEALWRIGHT_OBJECTS"
    )]
    pub objects: Option<String>,
}

impl StoreArgs {
    /// The shared store named, if one is.
    pub fn config(&self) -> Option<SharedConfig> {
        match (&self.store, &self.objects) {
            (Some(database), Some(objects)) => Some(SharedConfig {
                database: database.clone(),
                objects: objects.clone(),
                object_options: Vec::new(),
            }),
            _ => None,
        }
    }

    /// Connects to the shared store named, if one is (for commands outside `serve`).
    pub fn open(&self) -> anyhow::Result<Option<SharedHandle>> {
        Ok(match self.config() {
            Some(config) => Some(SharedHandle::open(&config)?),
            None => None,
        })
    }
}
