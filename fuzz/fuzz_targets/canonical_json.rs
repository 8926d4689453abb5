//! Canonical JSON of anything that parses as JSON: never a panic, and the same bytes
//! however the input was written (whitespace, escapes, key order). OLPC canonical JSON
//! writes control characters raw, so its output is not always JSON itself: the property
//! is checked through serde_json's own re-encoding instead. And `is_canonical` never claims
//! bytes that are not their own canonical encoding.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // What `is_canonical` accepts, the reader uses as the signed bytes without re-encoding:
    // it must parse, and encode back to exactly itself.
    let claimed = sealwright_crypto::canonical::is_canonical(data);
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        assert!(!claimed, "is_canonical accepted bytes that are not JSON");
        return;
    };
    let canonical = sealwright_crypto::canonical::to_canonical_json(&value);
    if claimed {
        assert_eq!(
            canonical.as_deref().ok(),
            Some(data),
            "is_canonical accepted a non-canonical text"
        );
    }
    let rewritten = serde_json::to_vec_pretty(&value).expect("re-encodes");
    let again: serde_json::Value = serde_json::from_slice(&rewritten).expect("parses");
    // (Refusals may word a float differently after a round trip; the bytes may not differ.)
    assert_eq!(
        canonical.ok(),
        sealwright_crypto::canonical::to_canonical_json(&again).ok()
    );
});
