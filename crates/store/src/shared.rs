//! The shared store of server replicas (PRODUCT.md D6): PostgreSQL holds what replicas must
//! agree on, S3-compatible object storage holds bytes.
//!
//! Guarantees, each enforced in one named function:
//! - one publisher at a time across every replica: a session-level advisory lock on a
//!   connection of its own ([`Shared::lock_publish`]); a replica that dies loses its
//!   connection, and with it the lock, so a crash never wedges publishing;
//! - a publish becomes visible whole or not at all: its bytes are uploaded first, under
//!   content-addressed names, then one transaction maps every published path to them and
//!   advances the publish sequence ([`Shared::commit`]). A replica killed before that
//!   transaction leaves only unreferenced objects behind;
//! - nothing published is ever overwritten: only `timestamp.json` and `root.json` may name
//!   new bytes; any other path that is already published with other bytes fails the whole
//!   transaction ([`Shared::commit`]); objects are written with `If-None-Match`
//!   ([`Shared::put_object`]) and named by their SHA-256, so a second write is the same bytes;
//! - the versions sent to be signed only grow, across replicas ([`Shared::raise_floor`]).
//!
//! Not guaranteed: the object store is trusted like a local disk — a replica checks the
//! SHA-256 of what it downloads ([`Shared::object_to_file`], [`Shared::object`]), but clients
//! verify everything against signed metadata anyway. The database and bucket are shared
//! between replicas of one repository only.
//!
//! The async functions run on any Tokio runtime; the [`Catalog`] implementation blocks on the
//! runtime the store was opened on and must be called outside async code (the server calls
//! it from its blocking pool, as it does SQLite).

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::{SecondsFormat, Utc};
use futures_util::StreamExt as _;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt as _, PutMode, PutOptions, PutPayload};
use tokio::io::AsyncWriteExt as _;
use tokio_postgres::NoTls;

use crate::catalog::{Catalog, StoreError};
use crate::index::{Blob, Target, MAX_LISTING};

/// Paths whose bytes change from one publish to the next; every other path, once
/// published, names the same bytes forever.
pub const MUTABLE_PATHS: [&str; 3] = [
    "metadata/timestamp.json",
    "metadata/root.json",
    "log/checkpoint",
];

/// Key of the advisory lock held while publishing.
const PUBLISH_LOCK: i64 = 0x5ea1_0001;
/// Key of the advisory lock held while creating the schema (replicas may start at once).
const SCHEMA_LOCK: i64 = 0x5ea1_0002;
/// How long a publisher waits for another replica's publish to finish.
pub const LOCK_WAIT: Duration = Duration::from_secs(60);
/// Objects up to this size are uploaded in one conditional request; larger ones in parts.
const SINGLE_PUT: u64 = 16 * 1024 * 1024;

const SCHEMA: &str = r#"
CREATE TABLE IF NOT EXISTS sealwright_blobs (
    sha256      TEXT COLLATE "C" PRIMARY KEY,
    length      BIGINT NOT NULL,
    stored_at   TEXT NOT NULL,
    stored_by   TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sealwright_targets (
    path          TEXT COLLATE "C" NOT NULL,
    role          TEXT COLLATE "C" NOT NULL,
    role_version  BIGINT NOT NULL,
    length        BIGINT NOT NULL,
    sha256        TEXT NOT NULL,
    indexed_at    TEXT NOT NULL,
    PRIMARY KEY (path, role)
);
CREATE INDEX IF NOT EXISTS sealwright_targets_by_role ON sealwright_targets (role);
CREATE TABLE IF NOT EXISTS sealwright_published (
    path    TEXT COLLATE "C" PRIMARY KEY,
    sha256  TEXT NOT NULL,
    length  BIGINT NOT NULL,
    seq     BIGINT NOT NULL
);
CREATE INDEX IF NOT EXISTS sealwright_published_by_seq ON sealwright_published (seq);
CREATE TABLE IF NOT EXISTS sealwright_state (
    id               INTEGER PRIMARY KEY CHECK (id = 1),
    seq              BIGINT NOT NULL,
    floor_snapshot   BIGINT NOT NULL,
    floor_timestamp  BIGINT NOT NULL
);
INSERT INTO sealwright_state VALUES (1, 0, 0, 0) ON CONFLICT (id) DO NOTHING;
CREATE TABLE IF NOT EXISTS sealwright_audit (
    seq        BIGINT PRIMARY KEY,
    time       TEXT NOT NULL,
    actor      TEXT NOT NULL,
    action     TEXT NOT NULL,
    subject    TEXT NOT NULL,
    details    TEXT NOT NULL,
    prev_hash  TEXT NOT NULL,
    hash       TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS sealwright_audit_head (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    count  BIGINT NOT NULL,
    hash   TEXT NOT NULL
);
CREATE OR REPLACE FUNCTION sealwright_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS
    $f$ BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $f$;
CREATE OR REPLACE TRIGGER sealwright_audit_no_change BEFORE UPDATE OR DELETE ON sealwright_audit
    FOR EACH ROW EXECUTE FUNCTION sealwright_audit_append_only();
CREATE TABLE IF NOT EXISTS sealwright_log_index (
    leaf     BYTEA PRIMARY KEY,
    idx      BIGINT NOT NULL
);
CREATE TABLE IF NOT EXISTS sealwright_documents (
    name     TEXT PRIMARY KEY,
    content  BYTEA NOT NULL,
    version  BIGINT NOT NULL
);
"#;

/// Where a shared store lives.
#[derive(Clone, Debug)]
pub struct SharedConfig {
    /// `postgres://USER@HOST:PORT/DB` (a password is better given in `PGPASSWORD`).
    pub database: String,
    /// `s3://BUCKET[/PREFIX]`; endpoint, region and credentials come from the standard
    /// `AWS_*` environment variables (`AWS_ENDPOINT`, `AWS_ALLOW_HTTP`, ...).
    pub objects: String,
    /// Settings given here rather than in the environment, as `(AWS_NAME, value)`; they
    /// win over the environment's.
    pub object_options: Vec<(String, String)>,
}

/// One published path: the object holding its bytes and the publish that made it so.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublishedFile {
    /// Path in the published tree (`metadata/3.snapshot.json`, `targets/...`).
    pub path: String,
    /// SHA-256 of its bytes (hex): the object's name.
    pub sha256: String,
    /// Its length.
    pub length: u64,
}

/// The shared store: a database connection for queries and the object store.
pub struct Shared {
    database: tokio_postgres::Config,
    db: tokio::sync::Mutex<Option<Arc<tokio_postgres::Client>>>,
    objects: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
    runtime: tokio::runtime::Handle,
    idle: Idle,
    describe: String,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe)
    }
}

/// Idle connections kept for transactions and the publish lock.
const MAX_IDLE: usize = 8;

/// Connections with no transaction open and no lock held, for reuse.
type Idle = Arc<std::sync::Mutex<Vec<tokio_postgres::Client>>>;

/// Held while publishing. Dropping it releases the lock and returns the connection for reuse
/// (or closes it, which releases the lock too — as does the death of the process holding it).
#[derive(Debug)]
pub struct PublishLock {
    client: Option<tokio_postgres::Client>,
    idle: Idle,
    runtime: tokio::runtime::Handle,
}

impl PublishLock {
    fn client(&self) -> &tokio_postgres::Client {
        // Present until drop.
        self.client.as_ref().unwrap_or_else(|| unreachable!())
    }
}

impl Drop for PublishLock {
    fn drop(&mut self) {
        let Some(client) = self.client.take() else {
            return;
        };
        let idle = Arc::clone(&self.idle);
        // The connection goes back only once the unlock is confirmed; otherwise it is
        // dropped, and closing it releases the lock.
        self.runtime.spawn(async move {
            let unlocked = client
                .query_one("SELECT pg_advisory_unlock($1)", &[&PUBLISH_LOCK])
                .await
                .is_ok_and(|row| row.get::<_, bool>(0));
            if unlocked {
                give_back(&idle, client);
            }
        });
    }
}

/// Returns a connection to the idle pool (a closed one, or one over the limit, is dropped).
fn give_back(idle: &Idle, client: tokio_postgres::Client) {
    if client.is_closed() {
        return;
    }
    if let Ok(mut idle) = idle.lock() {
        if idle.len() < MAX_IDLE {
            idle.push(client);
        }
    }
}

pub(crate) fn db_err(what: &str) -> impl Fn(tokio_postgres::Error) -> StoreError + '_ {
    move |e| {
        // The server's message (a constraint, a lost connection) is in the source chain.
        let mut detail = e.to_string();
        if let Some(db) = e.as_db_error() {
            detail = format!("{detail}: {}", db.message());
        }
        StoreError::Database(format!("{what}: {detail}"))
    }
}

fn obj_err(what: &str) -> impl Fn(object_store::Error) -> StoreError + '_ {
    move |e| StoreError::Objects(format!("{what}: {e}"))
}

pub(crate) fn to_db(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

pub(crate) fn from_db(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn now() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Connects without TLS: the database is reached on a private network or loopback (TLS to
/// PostgreSQL is future work, see docs/scale-out.md).
async fn connect(config: &tokio_postgres::Config) -> Result<tokio_postgres::Client, StoreError> {
    let (client, connection) = config
        .connect(NoTls)
        .await
        .map_err(db_err("connecting to the database"))?;
    tokio::spawn(async move {
        // Ends when the client is dropped or the server goes away; the next query reconnects.
        let _ = connection.await;
    });
    Ok(client)
}

/// The object store named by `s3://BUCKET[/PREFIX]`, configured from `AWS_*` variables.
fn open_objects(
    url: &str,
    options: &[(String, String)],
) -> Result<(Arc<dyn ObjectStore>, ObjectPath), StoreError> {
    let parsed =
        url::Url::parse(url).map_err(|e| StoreError::Config(format!("--objects {url}: {e}")))?;
    if parsed.scheme() != "s3" {
        return Err(StoreError::Config(format!(
            "--objects {url}: give s3://BUCKET (endpoint and credentials come from AWS_ENDPOINT, AWS_ACCESS_KEY_ID, ...)"
        )));
    }
    let bucket = parsed
        .host_str()
        .filter(|b| !b.is_empty())
        .ok_or_else(|| StoreError::Config(format!("--objects {url}: no bucket")))?;
    let mut builder = object_store::aws::AmazonS3Builder::from_env();
    for (name, value) in options {
        let key = name
            .to_ascii_lowercase()
            .parse()
            .map_err(|e| StoreError::Config(format!("{name}: {e}")))?;
        builder = builder.with_config(key, value);
    }
    let store = builder
        .with_bucket_name(bucket)
        .build()
        .map_err(obj_err("configuring the object store"))?;
    let prefix = ObjectPath::from(parsed.path().trim_matches('/'));
    Ok((Arc::new(store), prefix))
}

impl Shared {
    /// Connects to the database (creating the tables if needed) and the object store. Call
    /// inside the Tokio runtime the store will use.
    pub async fn open(config: &SharedConfig) -> Result<Shared, StoreError> {
        let database: tokio_postgres::Config = config
            .database
            .parse()
            .map_err(|e| StoreError::Config(format!("--store: {e}")))?;
        let (objects, prefix) = open_objects(&config.objects, &config.object_options)?;
        let mut client = connect(&database).await?;
        let tx = client
            .transaction()
            .await
            .map_err(db_err("creating the tables"))?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&SCHEMA_LOCK])
            .await
            .map_err(db_err("creating the tables"))?;
        tx.batch_execute(SCHEMA)
            .await
            .map_err(db_err("creating the tables"))?;
        tx.commit().await.map_err(db_err("creating the tables"))?;
        let describe = format!(
            "postgres {}:{:?}/{} + {}",
            database
                .get_hosts()
                .first()
                .map(|h| format!("{h:?}"))
                .unwrap_or_default(),
            database.get_ports().first(),
            database.get_dbname().unwrap_or(""),
            config.objects
        );
        Ok(Shared {
            database,
            db: tokio::sync::Mutex::new(Some(Arc::new(client))),
            objects,
            prefix,
            runtime: tokio::runtime::Handle::current(),
            idle: Idle::default(),
            describe,
        })
    }

    /// Runs `f` with the query connection, reconnecting first when it was lost.
    pub(crate) async fn client(&self) -> Result<Arc<tokio_postgres::Client>, StoreError> {
        let mut slot = self.db.lock().await;
        if let Some(c) = slot.as_ref().filter(|c| !c.is_closed()) {
            // Clients are cheap handles to one connection; queries from several tasks are
            // pipelined on it.
            return Ok(c.clone());
        }
        let c = Arc::new(connect(&self.database).await?);
        *slot = Some(Arc::clone(&c));
        Ok(c)
    }

    fn key(&self, sha256: &str) -> ObjectPath {
        self.prefix.clone().join("sha256").join(sha256)
    }

    /// A connection of its own, for a transaction or the lock (the shared one pipelines
    /// other tasks' queries): an idle one, or a new one. Hand it back with
    /// [`Shared::give_back`] once no transaction is open on it.
    pub(crate) async fn transaction_client(&self) -> Result<tokio_postgres::Client, StoreError> {
        let reused = self.idle.lock().ok().and_then(|mut idle| {
            while let Some(c) = idle.pop() {
                if !c.is_closed() {
                    return Some(c);
                }
            }
            None
        });
        match reused {
            Some(c) => Ok(c),
            None => connect(&self.database).await,
        }
    }

    /// Returns a connection taken with [`Shared::transaction_client`].
    pub(crate) fn give_back(&self, client: tokio_postgres::Client) {
        give_back(&self.idle, client);
    }

    /// Waits (at most [`LOCK_WAIT`]) until no other replica publishes, and holds that until
    /// the returned lock is dropped.
    pub async fn lock_publish(&self) -> Result<PublishLock, StoreError> {
        let client = self.transaction_client().await?;
        client
            .batch_execute(&format!("SET lock_timeout = '{}s'", LOCK_WAIT.as_secs()))
            .await
            .map_err(db_err("taking the publish lock"))?;
        client
            .execute("SELECT pg_advisory_lock($1)", &[&PUBLISH_LOCK])
            .await
            .map_err(|e| {
                StoreError::Busy(format!(
                    "another replica has been publishing for over {} s ({e}); try again",
                    LOCK_WAIT.as_secs()
                ))
            })?;
        Ok(PublishLock {
            client: Some(client),
            idle: Arc::clone(&self.idle),
            runtime: self.runtime.clone(),
        })
    }

    /// The last committed publish (0 before the first).
    pub async fn sequence(&self) -> Result<u64, StoreError> {
        let row = self
            .client()
            .await?
            .query_one("SELECT seq FROM sealwright_state WHERE id = 1", &[])
            .await
            .map_err(db_err("reading the publish sequence"))?;
        Ok(from_db(row.get(0)))
    }

    /// Every path whose bytes were published after publish `seq`, and the sequence now.
    pub async fn published_since(
        &self,
        lock: &PublishLock,
        seq: u64,
    ) -> Result<(Vec<PublishedFile>, u64), StoreError> {
        let err = db_err("reading what was published");
        let now = lock
            .client()
            .query_one("SELECT seq FROM sealwright_state WHERE id = 1", &[])
            .await
            .map_err(&err)?;
        let rows = lock
            .client()
            .query(
                "SELECT path, sha256, length FROM sealwright_published WHERE seq > $1 ORDER BY path",
                &[&to_db(seq)],
            )
            .await
            .map_err(&err)?;
        let files = rows
            .iter()
            .map(|r| PublishedFile {
                path: r.get(0),
                sha256: r.get(1),
                length: from_db(r.get(2)),
            })
            .collect();
        Ok((files, from_db(now.get(0))))
    }

    /// The floor of snapshot and timestamp versions ever sent to be signed, raised to at
    /// least the ones given, durably (committed before it returns).
    pub async fn raise_floor(
        &self,
        lock: &PublishLock,
        snapshot: u64,
        timestamp: u64,
    ) -> Result<(u64, u64), StoreError> {
        let row = lock
            .client()
            .query_one(
                "UPDATE sealwright_state SET floor_snapshot = GREATEST(floor_snapshot, $1),
                     floor_timestamp = GREATEST(floor_timestamp, $2)
                 WHERE id = 1 RETURNING floor_snapshot, floor_timestamp",
                &[&to_db(snapshot), &to_db(timestamp)],
            )
            .await
            .map_err(db_err("recording the versions to be signed"))?;
        Ok((from_db(row.get(0)), from_db(row.get(1))))
    }

    /// Makes `files` the published bytes of their paths, in one transaction that also
    /// advances the publish sequence; returns the new sequence. Every object must already be
    /// in the object store. Refused whole when a path other than [`MUTABLE_PATHS`] is
    /// already published with other bytes.
    pub async fn commit(
        &self,
        lock: &mut PublishLock,
        files: &[PublishedFile],
    ) -> Result<u64, StoreError> {
        self.commit_with_log(lock, files, &[]).await
    }

    /// [`Shared::commit`] of a transparency log's files, recording in the same transaction
    /// the index of each new entry by its leaf hash (for [`Shared::log_index_of`]); an entry
    /// logged twice keeps its first index.
    pub async fn commit_with_log(
        &self,
        lock: &mut PublishLock,
        files: &[PublishedFile],
        leaves: &[([u8; 32], u64)],
    ) -> Result<u64, StoreError> {
        let err = db_err("committing the publish");
        let client = lock
            .client
            .as_mut()
            .ok_or_else(|| StoreError::Database("the publish lock was released".into()))?;
        let tx = client.transaction().await.map_err(&err)?;
        let row = tx
            .query_one(
                "UPDATE sealwright_state SET seq = seq + 1 WHERE id = 1 RETURNING seq",
                &[],
            )
            .await
            .map_err(&err)?;
        let seq: i64 = row.get(0);
        let (mutable, fixed): (Vec<&PublishedFile>, Vec<&PublishedFile>) = files
            .iter()
            .partition(|f| MUTABLE_PATHS.contains(&f.path.as_str()));
        let columns = |set: &[&PublishedFile]| {
            (
                set.iter().map(|f| f.path.clone()).collect::<Vec<_>>(),
                set.iter().map(|f| f.sha256.clone()).collect::<Vec<_>>(),
                set.iter().map(|f| to_db(f.length)).collect::<Vec<_>>(),
            )
        };
        let (paths, shas, lengths) = columns(&fixed);
        let clash = tx
            .query(
                "SELECT p.path FROM sealwright_published p
                 JOIN UNNEST($1::text[], $2::text[]) AS n(path, sha256) ON p.path = n.path
                 WHERE p.sha256 <> n.sha256 LIMIT 1",
                &[&paths, &shas],
            )
            .await
            .map_err(&err)?;
        if let Some(row) = clash.first() {
            let path: String = row.get(0);
            return Err(StoreError::Overwrite(path));
        }
        tx.execute(
            "INSERT INTO sealwright_published (path, sha256, length, seq)
             SELECT path, sha256, length, $4 FROM UNNEST($1::text[], $2::text[], $3::bigint[]) AS n(path, sha256, length)
             ON CONFLICT (path) DO NOTHING",
            &[&paths, &shas, &lengths, &seq],
        )
        .await
        .map_err(&err)?;
        let (paths, shas, lengths) = columns(&mutable);
        tx.execute(
            "INSERT INTO sealwright_published (path, sha256, length, seq)
             SELECT path, sha256, length, $4 FROM UNNEST($1::text[], $2::text[], $3::bigint[]) AS n(path, sha256, length)
             ON CONFLICT (path) DO UPDATE SET sha256 = EXCLUDED.sha256, length = EXCLUDED.length, seq = EXCLUDED.seq",
            &[&paths, &shas, &lengths, &seq],
        )
        .await
        .map_err(&err)?;
        if !leaves.is_empty() {
            let hashes: Vec<&[u8]> = leaves.iter().map(|(l, _)| &l[..]).collect();
            let indices: Vec<i64> = leaves.iter().map(|(_, i)| to_db(*i)).collect();
            tx.execute(
                "INSERT INTO sealwright_log_index (leaf, idx)
                 SELECT leaf, idx FROM UNNEST($1::bytea[], $2::bigint[]) AS n(leaf, idx)
                 ON CONFLICT (leaf) DO NOTHING",
                &[&hashes, &indices],
            )
            .await
            .map_err(&err)?;
        }
        tx.commit().await.map_err(&err)?;
        Ok(from_db(seq))
    }

    /// The index of the logged entry whose leaf hash is `leaf` (its first, if logged twice).
    pub async fn log_index_of(&self, leaf: &[u8; 32]) -> Result<Option<u64>, StoreError> {
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT idx FROM sealwright_log_index WHERE leaf = $1",
                &[&&leaf[..]],
            )
            .await
            .map_err(db_err("looking up a log entry"))?;
        Ok(row.map(|r| from_db(r.get(0))))
    }

    /// What `path` names in the published tree now.
    pub async fn resolve(&self, path: &str) -> Result<Option<PublishedFile>, StoreError> {
        let row = self
            .client()
            .await?
            .query_opt(
                "SELECT sha256, length FROM sealwright_published WHERE path = $1",
                &[&path],
            )
            .await
            .map_err(db_err("looking up a published path"))?;
        Ok(row.map(|r| PublishedFile {
            path: path.to_owned(),
            sha256: r.get(0),
            length: from_db(r.get(1)),
        }))
    }

    /// Stores `bytes` under their SHA-256 (never replacing an object); returns it.
    pub async fn put_object(&self, bytes: Bytes) -> Result<String, StoreError> {
        let sha256 = sealwright_crypto::digest::sha256_hex(&bytes);
        self.put_named(&sha256, bytes).await?;
        Ok(sha256)
    }

    /// Stores several objects at once (a publish's metadata files: one round trip of
    /// latency, not one per file); their SHA-256s, in order.
    pub async fn put_objects(&self, objects: Vec<Bytes>) -> Result<Vec<String>, StoreError> {
        futures_util::future::try_join_all(objects.into_iter().map(|b| self.put_object(b))).await
    }

    /// Stores `bytes` as object `sha256` with `If-None-Match: *`: an object already there
    /// is kept (it holds these bytes, or a reader's hash check refuses it).
    async fn put_named(&self, sha256: &str, bytes: Bytes) -> Result<(), StoreError> {
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        match self
            .objects
            .put_opts(&self.key(sha256), PutPayload::from(bytes), opts)
            .await
        {
            Ok(_) | Err(object_store::Error::AlreadyExists { .. }) => Ok(()),
            Err(e) => Err(obj_err("storing an object")(e)),
        }
    }

    /// Stores the file at `file`, whose SHA-256 the caller has checked, under that name
    /// (nothing is sent when the object is already there). Large files go in parts, read
    /// from disk as they are sent.
    pub async fn put_file(&self, sha256: &str, file: &Path, length: u64) -> Result<(), StoreError> {
        let key = self.key(sha256);
        match self.objects.head(&key).await {
            Ok(meta) if meta.size == length => return Ok(()),
            Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(obj_err("checking for an object")(e)),
        }
        let read_err = |e: std::io::Error| StoreError::Objects(format!("{}: {e}", file.display()));
        if length <= SINGLE_PUT {
            let file = file.to_path_buf();
            let bytes =
                tokio::task::spawn_blocking(move || sealwright_fs::read_capped(&file, length))
                    .await
                    .map_err(|e| StoreError::Objects(e.to_string()))?
                    .map_err(read_err)?;
            return self.put_named(sha256, Bytes::from(bytes)).await;
        }
        // Content-addressed: a part upload replacing an object writes the same bytes.
        let upload = self
            .objects
            .put_multipart(&key)
            .await
            .map_err(obj_err("starting an upload"))?;
        let mut writer = object_store::WriteMultipart::new(upload);
        let mut f = tokio::fs::File::open(file).await.map_err(read_err)?;
        let mut buf = vec![0u8; 1024 * 1024];
        loop {
            use tokio::io::AsyncReadExt as _;
            let n = f.read(&mut buf).await.map_err(read_err)?;
            if n == 0 {
                break;
            }
            writer
                .wait_for_capacity(4)
                .await
                .map_err(obj_err("uploading"))?;
            writer.write(buf.get(..n).unwrap_or_default());
        }
        writer
            .finish()
            .await
            .map_err(obj_err("finishing an upload"))?;
        Ok(())
    }

    /// The object named `sha256`, read whole (for metadata and small files) and checked.
    pub async fn object(&self, sha256: &str, max: u64) -> Result<Bytes, StoreError> {
        let got = self
            .objects
            .get(&self.key(sha256))
            .await
            .map_err(obj_err("reading an object"))?;
        if got.meta.size > max {
            return Err(StoreError::Objects(format!(
                "object {sha256} is {} bytes, more than the {max} expected",
                got.meta.size
            )));
        }
        let bytes = got.bytes().await.map_err(obj_err("reading an object"))?;
        if sealwright_crypto::digest::sha256_hex(&bytes) != sha256 {
            return Err(StoreError::Objects(format!(
                "object {sha256} does not hash to its name"
            )));
        }
        Ok(bytes)
    }

    /// Downloads the object named `sha256`, of at most `max` bytes, into `dest` (atomically:
    /// a temporary file, checked against the name, fsynced, renamed).
    pub async fn object_to_file(
        &self,
        sha256: &str,
        dest: &Path,
        max: u64,
    ) -> Result<(), StoreError> {
        let io = |e: std::io::Error| StoreError::Objects(format!("{}: {e}", dest.display()));
        let parent = dest.parent().unwrap_or(Path::new("."));
        tokio::fs::create_dir_all(parent).await.map_err(io)?;
        let tmp = parent.join(format!(".download-{sha256}-{}", std::process::id()));
        let got = self
            .objects
            .get(&self.key(sha256))
            .await
            .map_err(obj_err("reading an object"))?;
        let mut out = tokio::fs::File::create(&tmp).await.map_err(io)?;
        let mut hasher = sealwright_crypto::digest::Hasher::sha256_only();
        let mut stream = got.into_stream();
        let result = async {
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(obj_err("reading an object"))?;
                hasher.update(&chunk);
                if hasher.length() > max {
                    return Err(StoreError::Objects(format!(
                        "object {sha256} is longer than the {max} bytes expected"
                    )));
                }
                out.write_all(&chunk).await.map_err(io)?;
            }
            if hex::encode(hasher.finish().sha256) != sha256 {
                return Err(StoreError::Objects(format!(
                    "object {sha256} does not hash to its name"
                )));
            }
            out.sync_all().await.map_err(io)?;
            tokio::fs::rename(&tmp, dest).await.map_err(io)
        }
        .await;
        if result.is_err() {
            let _ = tokio::fs::remove_file(&tmp).await;
        }
        result
    }

    /// Whether the database and the object store answer (for `/healthz`).
    pub async fn healthy(&self) -> bool {
        match self.client().await {
            Ok(c) => c.simple_query("SELECT 1").await.is_ok(),
            Err(_) => false,
        }
    }

    /// Every published path (for checks and tests). Blocking.
    pub fn published_files(&self) -> Result<Vec<PublishedFile>, StoreError> {
        self.block_on(async {
            let rows = self
                .client()
                .await?
                .query(
                    "SELECT path, sha256, length FROM sealwright_published ORDER BY path",
                    &[],
                )
                .await
                .map_err(db_err("listing published paths"))?;
            Ok(rows
                .iter()
                .map(|r| PublishedFile {
                    path: r.get(0),
                    sha256: r.get(1),
                    length: from_db(r.get(2)),
                })
                .collect())
        })
    }

    /// A small document every replica reads (the push tokens), with its version; none
    /// before the first [`Shared::replace_document`]. Blocking, like the [`Catalog`].
    pub fn document(&self, name: &str) -> Result<Option<(Vec<u8>, u64)>, StoreError> {
        self.block_on(async {
            let row = self
                .client()
                .await?
                .query_opt(
                    "SELECT content, version FROM sealwright_documents WHERE name = $1",
                    &[&name],
                )
                .await
                .map_err(db_err("reading a document"))?;
            Ok(row.map(|r| (r.get(0), from_db(r.get(1)))))
        })
    }

    /// Replaces document `name` if it is still at version `expected` (`None`: absent) —
    /// compare-and-swap, so two writers never lose each other's change; whether it was
    /// replaced. Blocking.
    pub fn replace_document(
        &self,
        name: &str,
        content: &[u8],
        expected: Option<u64>,
    ) -> Result<bool, StoreError> {
        self.block_on(async {
            let client = self.client().await?;
            let err = db_err("writing a document");
            let changed = match expected {
                None => client
                    .execute(
                        "INSERT INTO sealwright_documents (name, content, version) VALUES ($1, $2, 1)
                         ON CONFLICT (name) DO NOTHING",
                        &[&name, &content],
                    )
                    .await
                    .map_err(err)?,
                Some(v) => client
                    .execute(
                        "UPDATE sealwright_documents SET content = $2, version = version + 1
                         WHERE name = $1 AND version = $3",
                        &[&name, &content, &to_db(v)],
                    )
                    .await
                    .map_err(err)?,
            };
            Ok(changed == 1)
        })
    }

    pub(crate) fn block_on<T>(&self, f: impl std::future::Future<Output = T>) -> T {
        self.runtime.block_on(f)
    }
}

impl Catalog for Shared {
    fn record_blob(&self, sha256: &str, length: u64, stored_by: &str) -> Result<(), StoreError> {
        self.block_on(async {
            self.client()
                .await?
                .execute(
                    "INSERT INTO sealwright_blobs (sha256, length, stored_at, stored_by) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (sha256) DO NOTHING",
                    &[&sha256, &to_db(length), &now(), &stored_by],
                )
                .await
                .map_err(db_err("recording a blob"))
                .map(|_| ())
        })
    }

    fn blob(&self, sha256: &str) -> Result<Option<Blob>, StoreError> {
        self.block_on(async {
            let row = self
                .client()
                .await?
                .query_opt(
                    "SELECT sha256, length, stored_at, stored_by FROM sealwright_blobs WHERE sha256 = $1",
                    &[&sha256],
                )
                .await
                .map_err(db_err("looking up a blob"))?;
            Ok(row.map(|r| Blob {
                sha256: r.get(0),
                length: from_db(r.get(1)),
                stored_at: r.get(2),
                stored_by: r.get(3),
            }))
        })
    }

    fn replace_role(
        &self,
        role: &str,
        role_version: u64,
        targets: &[(String, u64, String)],
    ) -> Result<(), StoreError> {
        self.block_on(async {
            let paths: Vec<&str> = targets.iter().map(|t| t.0.as_str()).collect();
            let lengths: Vec<i64> = targets.iter().map(|t| to_db(t.1)).collect();
            let shas: Vec<&str> = targets.iter().map(|t| t.2.as_str()).collect();
            // One statement, so one transaction, without holding the shared connection in
            // a transaction: rows the new version no longer lists go, the rest are upserted.
            self.client()
                .await?
                .execute(
                    "WITH gone AS (DELETE FROM sealwright_targets WHERE role = $4 AND NOT (path = ANY($1::text[])))
                     INSERT INTO sealwright_targets (path, role, role_version, length, sha256, indexed_at)
                     SELECT path, $4, $5, length, sha256, $6 FROM UNNEST($1::text[], $2::bigint[], $3::text[]) AS n(path, length, sha256)
                     ON CONFLICT (path, role) DO UPDATE SET role_version = EXCLUDED.role_version,
                         length = EXCLUDED.length, sha256 = EXCLUDED.sha256, indexed_at = EXCLUDED.indexed_at",
                    &[&paths, &lengths, &shas, &role, &to_db(role_version), &now()],
                )
                .await
                .map_err(db_err("indexing a role"))
                .map(|_| ())
        })
    }

    fn targets(
        &self,
        prefix: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<Target>, StoreError> {
        self.block_on(async {
            // Byte order (COLLATE "C"), as in SQLite: the paths starting with `prefix` are
            // those in [prefix, successor(prefix)).
            let upper = crate::index::prefix_successor(prefix);
            let rows = self
                .client()
                .await?
                .query(
                    "SELECT path, role, role_version, length, sha256 FROM sealwright_targets
                     WHERE path >= $1 AND ($2::text IS NULL OR path < $2) AND ($3::text IS NULL OR path > $3)
                     ORDER BY path, role LIMIT $4",
                    &[&prefix, &upper, &after, &i64::from(limit.min(MAX_LISTING))],
                )
                .await
                .map_err(db_err("listing targets"))?;
            Ok(rows
                .iter()
                .map(|r| Target {
                    path: r.get(0),
                    role: r.get(1),
                    role_version: from_db(r.get(2)),
                    length: from_db(r.get(3)),
                    sha256: r.get(4),
                })
                .collect())
        })
    }
}

/// Fresh, empty shared stores for tests, on the servers `scripts/services start` runs.
#[doc(hidden)]
pub mod testing {
    use super::*;

    /// Environment variable naming the test PostgreSQL server.
    pub const POSTGRES_ENV: &str = "SEALWRIGHT_TEST_POSTGRES";
    /// Environment variable naming the test S3 endpoint.
    pub const S3_ENV: &str = "SEALWRIGHT_TEST_S3";

    fn required(name: &str) -> String {
        std::env::var(name).unwrap_or_else(|_| {
            // Tests never skip: a missing server is a failure, with the way to fix it.
            #[allow(clippy::panic)]
            {
                panic!("{name} is not set: the shared-store tests need PostgreSQL and S3; run `eval \"$(scripts/services start)\"` first (scripts/test does)")
            }
        })
    }

    /// The `AWS_*` settings of the test S3 server (moto accepts any credentials).
    pub fn s3_env() -> Vec<(String, String)> {
        vec![
            ("AWS_ENDPOINT".into(), required(S3_ENV)),
            ("AWS_ALLOW_HTTP".into(), "true".into()),
            ("AWS_ACCESS_KEY_ID".into(), "test".into()),
            ("AWS_SECRET_ACCESS_KEY".into(), "test".into()),
            ("AWS_REGION".into(), "us-east-1".into()),
        ]
    }

    /// A new database and a new bucket, both named `sw_` and random hex.
    pub async fn fresh() -> Result<SharedConfig, StoreError> {
        let admin = required(POSTGRES_ENV);
        let mut random = [0u8; 8];
        aws_lc_rs::rand::fill(&mut random)
            .map_err(|_| StoreError::Config("no randomness".into()))?;
        let name = format!("sw_{}", hex::encode(random));
        let config: tokio_postgres::Config = admin
            .parse()
            .map_err(|e| StoreError::Config(format!("{POSTGRES_ENV}: {e}")))?;
        let client = connect(&config).await?;
        client
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .map_err(db_err("creating a test database"))?;
        let mut url = url::Url::parse(&admin)
            .map_err(|e| StoreError::Config(format!("{POSTGRES_ENV}: {e}")))?;
        url.set_path(&name);
        create_bucket(&required(S3_ENV), &name).await?;
        Ok(SharedConfig {
            database: url.to_string(),
            objects: format!("s3://{name}"),
            object_options: s3_env(),
        })
    }

    /// `PUT /BUCKET` on a plain-HTTP S3 endpoint (object_store does not create buckets).
    async fn create_bucket(endpoint: &str, bucket: &str) -> Result<(), StoreError> {
        use tokio::io::AsyncReadExt as _;
        let url =
            url::Url::parse(endpoint).map_err(|e| StoreError::Config(format!("{S3_ENV}: {e}")))?;
        let host = url.host_str().unwrap_or("127.0.0.1").to_owned();
        let port = url.port().unwrap_or(80);
        let io = |e: std::io::Error| StoreError::Objects(format!("creating bucket {bucket}: {e}"));
        let mut tcp = tokio::net::TcpStream::connect((host.as_str(), port))
            .await
            .map_err(io)?;
        let request = format!(
            "PUT /{bucket} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        tcp.write_all(request.as_bytes()).await.map_err(io)?;
        let mut answer = Vec::new();
        tcp.take(64 * 1024)
            .read_to_end(&mut answer)
            .await
            .map_err(io)?;
        let status = String::from_utf8_lossy(answer.get(..12).unwrap_or_default()).into_owned();
        if !status.contains(" 200") {
            return Err(StoreError::Objects(format!(
                "creating bucket {bucket}: {status}"
            )));
        }
        Ok(())
    }
}
