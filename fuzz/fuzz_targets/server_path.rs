//! Request paths the HTTPS server maps into its tree.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sealwright_server::path::{FileKind, TreePath};

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(p) = TreePath::from_request_path(raw) {
        let rel = p.relative();
        assert!(rel.is_relative());
        assert!(!rel.components().any(|c| matches!(c, std::path::Component::ParentDir)));
        let _ = FileKind::of(&p).cache_control();
        let _ = sealwright_server::path::content_hash(p.file_name());
    }
});
