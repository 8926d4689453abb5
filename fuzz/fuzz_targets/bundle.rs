//! Offline bundles: indexing arbitrary bytes as a bundle and reading entries from it.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sealwright_client::fetch::Fetcher;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("b.bundle");
    std::fs::write(&path, data).expect("write");
    if let Ok(bundle) = sealwright_client::bundle::BundleFetcher::open(&path) {
        for name in ["sealwright-bundle.json", "metadata/1.root.json", "metadata/timestamp.json"] {
            let mut sink = Vec::new();
            let _ = bundle.fetch_to(&format!("bundle:{name}"), 1 << 20, &mut sink);
        }
    }
});
