//! Canonical JSON of anything that parses as JSON: never a panic, and the same bytes
//! however the input was written (whitespace, escapes, key order). OLPC canonical JSON
//! writes control characters raw, so its output is not always JSON itself: the property
//! is checked through serde_json's own re-encoding instead.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let canonical = sealwright_crypto::canonical::to_canonical_json(&value);
    let rewritten = serde_json::to_vec_pretty(&value).expect("re-encodes");
    let again: serde_json::Value = serde_json::from_slice(&rewritten).expect("parses");
    // (Refusals may word a float differently after a round trip; the bytes may not differ.)
    assert_eq!(
        canonical.ok(),
        sealwright_crypto::canonical::to_canonical_json(&again).ok()
    );
});
