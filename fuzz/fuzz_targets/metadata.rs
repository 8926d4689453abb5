//! Metadata envelopes and every role type, then the trust engine's first step on the bytes.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sealwright_tuf::metadata::{Metadata, Root, Snapshot, Targets, Timestamp};

fuzz_target!(|data: &[u8]| {
    let cap = 1 << 20;
    let _ = sealwright_tuf::metadata::parse_envelope(data, cap);
    let _ = Metadata::<Root>::from_bytes(data, cap);
    let _ = Metadata::<Timestamp>::from_bytes(data, cap);
    let _ = Metadata::<Snapshot>::from_bytes(data, cap);
    if let Ok(t) = Metadata::<Targets>::from_bytes(data, cap) {
        // Delegation arithmetic on whatever parsed: bins computed, never listed.
        if let Some(d) = &t.signed.delegations {
            let _ = d.authority_for("bin-00");
            if let Some(s) = &d.succinct_roles {
                let name = s.role_for_target("app/1.0.0/app.bin");
                assert!(s.is_delegated_role(&name));
            }
        }
    }
    let _ = sealwright_tuf::TrustedMetadataSet::new(data, chrono::Utc::now());
});
