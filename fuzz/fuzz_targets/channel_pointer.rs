//! Channel pointers: the signed `custom` field of a targets entry.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(custom) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let mut entry = sealwright_tuf::TargetFile::new(1, Default::default());
    entry.custom = Some(std::sync::Arc::new(custom));
    if let Ok(p) = sealwright_client::install::parse_pointer(
        &entry,
        "app",
        "stable",
        "app/channels/stable.json",
    ) {
        assert_eq!(p.name, "app");
        assert!(p.target.starts_with(&format!("app/{}/", p.version)));
        assert!(!p.target.split('/').any(|c| c == ".." || c.is_empty()));
    }
});
