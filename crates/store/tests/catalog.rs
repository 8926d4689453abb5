//! One suite, two stores: the embedded catalog (SQLite in a data directory) and the shared
//! one (PostgreSQL + S3, on the servers `scripts/services start` runs), then what only the
//! shared store does: the publish lock across replicas, whole-or-nothing commits that never
//! replace published bytes, the floor of signed versions, checked objects.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use sealwright_store::shared::testing;
use sealwright_store::{Catalog, Embedded, PublishedFile, Shared, StoreError};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn shared(rt: &tokio::runtime::Runtime) -> Shared {
    rt.block_on(async { Shared::open(&testing::fresh().await.unwrap()).await })
        .unwrap()
}

/// What every catalog must do.
fn suite(c: &dyn Catalog) {
    c.record_blob("aa", 3, "token:ci").unwrap();
    c.record_blob("aa", 3, "token:other").unwrap();
    assert_eq!(c.blob("aa").unwrap().unwrap().stored_by, "token:ci");
    assert_eq!(c.blob("aa").unwrap().unwrap().length, 3);
    assert_eq!(c.blob("bb").unwrap(), None);

    let t = |p: &str| (p.to_owned(), 1u64, "aa".to_owned());
    c.replace_role("targets", 2, &[t("app/1/a"), t("app/2/a"), t("apq/x")])
        .unwrap();
    c.replace_role("beta", 1, &[t("app/1/a")]).unwrap();
    let names = |rows: Vec<sealwright_store::index::Target>| -> Vec<String> {
        rows.iter()
            .map(|t| format!("{}@{}", t.path, t.role))
            .collect()
    };
    assert_eq!(
        names(c.targets("app/", None, 100).unwrap()),
        ["app/1/a@beta", "app/1/a@targets", "app/2/a@targets"]
    );
    assert_eq!(c.targets("app/", Some("app/1/a"), 100).unwrap().len(), 1);
    assert_eq!(c.targets("app/", None, 1).unwrap().len(), 1);
    // `%` and `_` are not wildcards; byte order, not a locale's.
    assert!(c.targets("app%", None, 100).unwrap().is_empty());
    assert!(c.targets("app_", None, 100).unwrap().is_empty());
    c.replace_role("upper", 1, &[t("Z"), t("a"), t("\u{E000}"), t("\u{D7FF}")])
        .unwrap();
    let order: Vec<String> = c
        .targets("", None, 100)
        .unwrap()
        .into_iter()
        .filter(|t| t.role == "upper")
        .map(|t| t.path)
        .collect();
    assert_eq!(order, ["Z", "a", "\u{D7FF}", "\u{E000}"]);
    // A new version replaces the whole listing.
    c.replace_role("targets", 3, &[t("apq/x")]).unwrap();
    let now = c.targets("ap", None, 100).unwrap();
    assert_eq!(names(now.clone()), ["app/1/a@beta", "apq/x@targets"]);
    assert_eq!(now[1].role_version, 3);
    c.replace_role("beta", 2, &[]).unwrap();
    assert_eq!(c.targets("app/", None, 100).unwrap().len(), 0);
}

#[test]
fn the_embedded_catalog_passes_the_suite() {
    let dir = tempfile::tempdir().unwrap();
    suite(&Embedded::new(dir.path()));
}

#[test]
fn the_shared_catalog_passes_the_suite() {
    let rt = runtime();
    let store = shared(&rt);
    suite(&store);
}

fn file(path: &str, bytes: &[u8]) -> PublishedFile {
    PublishedFile {
        path: path.into(),
        sha256: sealwright_crypto::digest::sha256_hex(bytes),
        length: bytes.len() as u64,
    }
}

#[test]
fn one_replica_publishes_at_a_time_and_a_dead_one_releases_the_lock() {
    let rt = runtime();
    let config = rt.block_on(testing::fresh()).unwrap();
    let a = Arc::new(rt.block_on(Shared::open(&config)).unwrap());
    let b = Arc::new(rt.block_on(Shared::open(&config)).unwrap());
    rt.block_on(async {
        let held = a.lock_publish().await.unwrap();
        let waiter = {
            let b = Arc::clone(&b);
            tokio::spawn(async move {
                let started = Instant::now();
                let _lock = b.lock_publish().await.unwrap();
                started.elapsed()
            })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            !waiter.is_finished(),
            "a second replica got the lock while it was held"
        );
        // Released when dropped (its connection goes back to the pool, unlocked).
        drop(held);
        let waited = tokio::time::timeout(Duration::from_secs(10), waiter)
            .await
            .expect("the lock was not released")
            .unwrap();
        assert!(waited >= Duration::from_millis(300));

        // A replica that dies holding it: its connection ends, and the lock with it.
        let held = a.lock_publish().await.unwrap();
        let waiter = {
            let b = Arc::clone(&b);
            tokio::spawn(async move { b.lock_publish().await.map(|_| ()) })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!waiter.is_finished());
        let (admin, conn) = tokio_postgres::connect(&config.database, tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        admin
            .batch_execute(
                "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted",
            )
            .await
            .unwrap();
        tokio::time::timeout(Duration::from_secs(10), waiter)
            .await
            .expect("a dead holder's lock was not released")
            .unwrap()
            .unwrap();
        drop(held);
    });
}

#[test]
fn commits_are_whole_and_never_replace_published_bytes() {
    let rt = runtime();
    let store = shared(&rt);
    rt.block_on(async {
        let mut lock = store.lock_publish().await.unwrap();
        assert_eq!(store.sequence().await.unwrap(), 0);
        let role = b"{\"signed\":1}".as_slice();
        let ts1 = b"timestamp 1".as_slice();
        for bytes in [role, ts1] {
            store
                .put_object(Bytes::copy_from_slice(bytes))
                .await
                .unwrap();
        }
        let first = [
            file("metadata/1.bin.json", role),
            file("metadata/timestamp.json", ts1),
        ];
        assert_eq!(store.commit(&mut lock, &first).await.unwrap(), 1);
        assert_eq!(
            store.resolve("metadata/1.bin.json").await.unwrap(),
            Some(first[0].clone())
        );

        // The same bytes again are fine; a mutable path takes new bytes.
        let ts2 = b"timestamp 2".as_slice();
        let second = [
            file("metadata/1.bin.json", role),
            file("metadata/timestamp.json", ts2),
        ];
        assert_eq!(store.commit(&mut lock, &second).await.unwrap(), 2);
        assert_eq!(
            store.resolve("metadata/timestamp.json").await.unwrap(),
            Some(second[1].clone())
        );

        // Other bytes under a published versioned name: the whole commit is refused, the
        // timestamp beside it included, and the sequence does not move.
        let forged = [
            file("metadata/1.bin.json", b"other"),
            file("metadata/2.bin.json", b"new"),
            file("metadata/timestamp.json", b"timestamp 3"),
        ];
        match store.commit(&mut lock, &forged).await {
            Err(StoreError::Overwrite(path)) => assert_eq!(path, "metadata/1.bin.json"),
            other => panic!("expected a refusal, got {other:?}"),
        }
        assert_eq!(store.sequence().await.unwrap(), 2);
        assert_eq!(store.resolve("metadata/2.bin.json").await.unwrap(), None);
        assert_eq!(
            store.resolve("metadata/timestamp.json").await.unwrap(),
            Some(second[1].clone())
        );

        // What a replica that synced at publish 1 must fetch.
        let (since, seq) = store.published_since(&lock, 1).await.unwrap();
        assert_eq!(seq, 2);
        assert_eq!(since, vec![second[1].clone()]);
        let (all, _) = store.published_since(&lock, 0).await.unwrap();
        assert_eq!(all.len(), 2);
    });
}

#[test]
fn the_floor_of_signed_versions_only_rises() {
    let rt = runtime();
    let store = shared(&rt);
    rt.block_on(async {
        let lock = store.lock_publish().await.unwrap();
        assert_eq!(store.raise_floor(&lock, 5, 7).await.unwrap(), (5, 7));
        assert_eq!(store.raise_floor(&lock, 3, 9).await.unwrap(), (5, 9));
        assert_eq!(store.raise_floor(&lock, 0, 0).await.unwrap(), (5, 9));
    });
}

#[test]
fn objects_are_named_by_their_hash_and_checked_when_read() {
    let rt = runtime();
    let store = shared(&rt);
    let dir = tempfile::tempdir().unwrap();
    rt.block_on(async {
        let sha = store
            .put_object(Bytes::from_static(b"hello"))
            .await
            .unwrap();
        assert_eq!(sha, sealwright_crypto::digest::sha256_hex(b"hello"));
        // Written twice: the second is the same bytes, not an error.
        assert_eq!(
            store
                .put_object(Bytes::from_static(b"hello"))
                .await
                .unwrap(),
            sha
        );
        assert_eq!(&store.object(&sha, 100).await.unwrap()[..], b"hello");
        assert!(store.object(&sha, 2).await.is_err(), "size cap ignored");

        // A large file goes in parts and comes back whole.
        let big: Vec<u8> = (0..20 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
        let big_sha = sealwright_crypto::digest::sha256_hex(&big);
        let src = dir.path().join("big");
        std::fs::write(&src, &big).unwrap();
        store
            .put_file(&big_sha, &src, big.len() as u64)
            .await
            .unwrap();
        let dest = dir.path().join("copy/big");
        // Capped: one byte short of the object is refused, nothing left behind.
        let capped = dir.path().join("copy/capped");
        assert!(store
            .object_to_file(&big_sha, &capped, big.len() as u64 - 1)
            .await
            .is_err());
        assert!(!capped.exists());
        store
            .object_to_file(&big_sha, &dest, big.len() as u64)
            .await
            .unwrap();
        assert_eq!(std::fs::read(&dest).unwrap(), big);

        // An object that does not hash to its name is refused when read, never kept.
        let small = dir.path().join("small");
        std::fs::write(&small, b"not what the name says").unwrap();
        let wrong = sealwright_crypto::digest::sha256_hex(b"something else");
        store.put_file(&wrong, &small, 22).await.unwrap();
        assert!(store.object(&wrong, 100).await.is_err());
        let dest = dir.path().join("wrong");
        assert!(store.object_to_file(&wrong, &dest, 100).await.is_err());
        assert!(!dest.exists());
    });
}

#[test]
fn documents_change_only_from_the_version_the_writer_read() {
    let rt = runtime();
    let store = shared(&rt);
    assert_eq!(store.document("tokens").unwrap(), None);
    assert!(store.replace_document("tokens", b"one", None).unwrap());
    // A second "first" write loses: it did not see the first.
    assert!(!store.replace_document("tokens", b"other", None).unwrap());
    assert_eq!(
        store.document("tokens").unwrap(),
        Some((b"one".to_vec(), 1))
    );
    assert!(store.replace_document("tokens", b"two", Some(1)).unwrap());
    // A writer still holding version 1 does not overwrite version 2.
    assert!(!store.replace_document("tokens", b"stale", Some(1)).unwrap());
    assert_eq!(
        store.document("tokens").unwrap(),
        Some((b"two".to_vec(), 2))
    );
}

#[test]
fn replicas_append_to_one_audit_chain_and_tampering_is_found() {
    use sealwright_store::NewRecord;
    let rt = runtime();
    let config = rt.block_on(testing::fresh()).unwrap();
    let a = Arc::new(rt.block_on(Shared::open(&config)).unwrap());
    let b = Arc::new(rt.block_on(Shared::open(&config)).unwrap());
    // Two replicas appending at once: one chain, no record lost or doubled.
    std::thread::scope(|scope| {
        for (n, store) in [&a, &b].into_iter().enumerate() {
            scope.spawn(move || {
                for i in 0..20 {
                    store
                        .append_audit(&NewRecord {
                            actor: &format!("replica-{n}"),
                            action: "push",
                            subject: "push",
                            details: serde_json::json!({"i": i}),
                        })
                        .unwrap();
                }
            });
        }
    });
    let verified = a.verify_audit().unwrap().unwrap();
    assert_eq!(verified.records, 40);
    assert_eq!(b.audit_records(Some(5)).unwrap().len(), 5);
    assert_eq!(b.audit_records(Some(5)).unwrap()[4].seq, 40);
    assert!(a
        .append_audit(&NewRecord {
            actor: "x",
            action: "y",
            subject: "z",
            details: serde_json::json!("not an object"),
        })
        .is_err());

    // The table refuses edits; someone who turns that off is still caught by the chain.
    let sql = |statement: &str| {
        let db = config.database.clone();
        let statement = statement.to_owned();
        rt.block_on(async move {
            let (client, conn) = tokio_postgres::connect(&db, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(conn);
            client.batch_execute(&statement).await
        })
    };
    assert!(sql("UPDATE sealwright_audit SET actor = 'mallory' WHERE seq = 7").is_err());
    sql("ALTER TABLE sealwright_audit DISABLE TRIGGER sealwright_audit_no_change; UPDATE sealwright_audit SET actor = 'mallory' WHERE seq = 7")
        .unwrap();
    let broken = a.verify_audit().unwrap().unwrap_err();
    assert_eq!(broken.seq, 7, "{broken:?}");
    assert!(broken.reason.contains("edited"), "{broken:?}");

    // Removing the tail (and the edit) is caught by the head, and nothing is appended on it.
    sql("DELETE FROM sealwright_audit WHERE seq >= 7").unwrap();
    let broken = a.verify_audit().unwrap().unwrap_err();
    assert!(broken.reason.contains("removed"), "{broken:?}");
    assert!(a
        .append_audit(&NewRecord {
            actor: "replica-0",
            action: "push",
            subject: "push",
            details: serde_json::json!({}),
        })
        .is_err());
}
