//! Single-core SHA-256 throughput of an in-memory buffer (the ceiling for download + verify
//! in `scripts/bench client`): `sha256_speed MIB` prints `{"mb_per_s": ...}`, best of 3.
#![allow(clippy::unwrap_used, clippy::expect_used)]

fn main() {
    let mib: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .expect("usage: sha256_speed MIB");
    let mut block = vec![0u8; 1 << 20];
    sealwright_crypto::random::fill(&mut block).unwrap();
    let buf: Vec<u8> = block.iter().copied().cycle().take(mib << 20).collect();
    let mut best = f64::MAX;
    for _ in 0..3 {
        let start = std::time::Instant::now();
        let digest = sealwright_crypto::digest::sha256(&buf);
        let secs = start.elapsed().as_secs_f64();
        std::hint::black_box(digest);
        best = best.min(secs);
    }
    println!("{{\"mb_per_s\": {:.1}}}", buf.len() as f64 / best / 1e6);
}
