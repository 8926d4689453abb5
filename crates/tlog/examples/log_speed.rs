//! `scripts/bench log`: the transparency log's write and proof speed on this machine.
//!
//! Appends ENTRIES typical target entries in batches of BATCH through the writer's core
//! (`writer::grow`), writing every bundle and tile durably (temp, fsync, rename, fsync dir)
//! under DIR, as the server does before a checkpoint (the checkpoint signature, one agent
//! round trip per batch, is not included). Then builds inclusion proofs from the tiles on
//! disk and verifies them. Prints one JSON object.
//!
//! Usage: log_speed DIR [ENTRIES] [BATCH]

use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

use sealwright_tlog::entry::Entry;
use sealwright_tlog::merkle::{inclusion_proof, leaf_hash, verify_inclusion};
use sealwright_tlog::tile::{decode_bundle, TileError, TileHashes, TileKind, TilePath, TILE_WIDTH};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let dir = Path::new(
        args.get(1)
            .ok_or("usage: log_speed DIR [ENTRIES] [BATCH]")?,
    )
    .to_owned();
    let total: u64 = args.get(2).map_or(Ok(100_000), |s| s.parse())?;
    let batch: u64 = args.get(3).map_or(Ok(1024), |s| s.parse())?;
    let read = |t: &TilePath| -> Result<Vec<u8>, TileError> {
        std::fs::read(dir.join(t.to_string())).map_err(|_| TileError::Missing(t.to_string()))
    };

    let mut size = 0u64;
    let mut tile_bytes = 0u64;
    let started = Instant::now();
    while size < total {
        let n = batch.min(total - size);
        let entries: Vec<Vec<u8>> = (size..size + n)
            .map(|i| {
                Entry::Target {
                    path: format!("app/1.0.{i}/app-{i}.tar.gz"),
                    length: 1_000_000 + i,
                    sha256: format!("{i:064x}"),
                    role: "targets".into(),
                }
                .to_bytes()
            })
            .collect::<Result<_, _>>()?;
        let refs: Vec<&[u8]> = entries.iter().map(Vec::as_slice).collect();
        let partial = match size % TILE_WIDTH {
            0 => Vec::new(),
            w => read(&TilePath {
                kind: TileKind::Entries,
                index: size / TILE_WIDTH,
                width: w as u16,
            })?,
        };
        let old_partial = decode_bundle(&partial)?;
        let mut old = TileHashes::new(size, read);
        let growth = sealwright_tlog::writer::grow(&mut old, size, &old_partial, &refs)?;
        for (path, bytes) in &growth.files {
            let file = dir.join(path.to_string());
            if let Some(parent) = file.parent() {
                std::fs::create_dir_all(parent)?;
            }
            sealwright_fs::write_atomic(&file, bytes)?;
            if path.is_full() && matches!(path.kind, TileKind::Hashes(_)) {
                tile_bytes += bytes.len() as u64;
            }
        }
        size = growth.size;
    }
    let append_secs = started.elapsed().as_secs_f64();

    let mut tiles = TileHashes::new(size, read);
    let root = sealwright_tlog::merkle::tree_root(&mut tiles, size)?;
    let proofs = 10_000u64.min(size);
    let mut leaves: HashMap<u64, [u8; 32]> = HashMap::new();
    for k in 0..proofs {
        let i = (k * 7919) % size;
        let bundle = read(&TilePath {
            kind: TileKind::Entries,
            index: i / TILE_WIDTH,
            width: if (i / TILE_WIDTH + 1) * TILE_WIDTH <= size {
                256
            } else {
                (size % TILE_WIDTH) as u16
            },
        })?;
        let entries = decode_bundle(&bundle)?;
        leaves.insert(
            i,
            leaf_hash(
                entries
                    .get((i % TILE_WIDTH) as usize)
                    .ok_or("short bundle")?,
            ),
        );
    }
    let started = Instant::now();
    for (&i, leaf) in &leaves {
        let proof = inclusion_proof(&mut tiles, i, size)?;
        verify_inclusion(i, size, leaf, &proof, &root)?;
    }
    let proof_secs = started.elapsed().as_secs_f64();
    println!(
        "{}",
        serde_json::json!({
            "entries": size,
            "batch": batch,
            "durable_appends_per_s": (size as f64 / append_secs).round(),
            "proofs_built_and_verified_per_s": (leaves.len() as f64 / proof_secs).round(),
            "hash_tile_bytes_per_million_entries": (tile_bytes as f64 * 1e6 / size as f64).round(),
        })
    );
    Ok(())
}
