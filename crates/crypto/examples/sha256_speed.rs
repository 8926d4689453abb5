//! Single-core SHA-256 throughput, the ceiling for download + verify in `scripts/bench
//! client`: `sha256_speed FILE` streams a file through the same hasher the client uses (a
//! buffer at a time, as verification reads it); `sha256_speed MIB` hashes an in-memory buffer.
//! Prints `{"mb_per_s": ...}`, best of 3.
#![allow(clippy::unwrap_used, clippy::expect_used)]

fn main() {
    let arg = std::env::args()
        .nth(1)
        .expect("usage: sha256_speed FILE | sha256_speed MIB");
    let file = std::path::Path::new(&arg);
    let mut best = f64::MAX;
    let mut bytes = 0u64;
    if file.is_file() {
        for _ in 0..3 {
            let start = std::time::Instant::now();
            let digests = sealwright_crypto::digest::Hasher::sha256_only()
                .consume(std::fs::File::open(file).unwrap())
                .unwrap();
            best = best.min(start.elapsed().as_secs_f64());
            bytes = digests.length;
        }
    } else {
        let mib: usize = arg
            .parse()
            .expect("usage: sha256_speed FILE | sha256_speed MIB");
        let mut block = vec![0u8; 1 << 20];
        sealwright_crypto::random::fill(&mut block).unwrap();
        let buf: Vec<u8> = block.iter().copied().cycle().take(mib << 20).collect();
        for _ in 0..3 {
            let start = std::time::Instant::now();
            std::hint::black_box(sealwright_crypto::digest::sha256(&buf));
            best = best.min(start.elapsed().as_secs_f64());
        }
        bytes = buf.len() as u64;
    }
    println!("{{\"mb_per_s\": {:.1}}}", bytes as f64 / best / 1e6);
}
