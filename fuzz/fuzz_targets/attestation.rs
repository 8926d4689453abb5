//! DSSE envelopes, in-toto statements, provenance and reproduction payloads, the evidence
//! links of a signed entry, and lockfiles: untrusted bytes from a release's evidence, a
//! push or a contributor's change. Parsing and verifying never panic; what parses
//! re-encodes and parses to itself; any parsed lockfile makes an SBOM.
#![no_main]
use libfuzzer_sys::fuzz_target;

use sealwright_attest::dsse::Envelope;
use sealwright_attest::statement::Statement;

fuzz_target!(|data: &[u8]| {
    if let Ok(envelope) = Envelope::parse(data) {
        assert_eq!(Envelope::parse(&envelope.to_json()).as_ref(), Ok(&envelope));
        let key = sealwright_crypto::PublicKey::new(
            sealwright_crypto::Algorithm::Ed25519,
            "e3305033984909f867c0b0a1e19677ce994c559059b40316bf8d2a98afa9e360".into(),
        );
        let _ = envelope.verify(std::slice::from_ref(&key), 1);
        let _ = sealwright_attest::provenance::read_provenance(
            &envelope.payload_type,
            &envelope.payload,
        );
        let _ = sealwright_attest::evidence::read_reproduction(
            &envelope.payload_type,
            &envelope.payload,
            &"00".repeat(32),
        );
    }
    if let Ok(custom) = serde_json::from_slice::<serde_json::Value>(data) {
        if let Ok(links) = sealwright_attest::evidence::EvidenceLinks::from_custom(Some(&custom)) {
            let _ = links.provenance();
            let _ = links.reproductions().count();
        }
    }
    if let Ok(statement) = Statement::parse(data) {
        assert_eq!(Statement::parse(&statement.to_bytes()).as_ref(), Ok(&statement));
        let _ = statement.subjects_with_sha256(&"00".repeat(32));
    }
    for name in sealwright_attest::lockfile::LOCKFILE_NAMES {
        if let Ok(components) = sealwright_attest::lockfile::parse(name, data) {
            let release = sealwright_attest::sbom::Release {
                name: "app".into(),
                version: "1".into(),
                artifacts: vec![],
                components,
            };
            let cdx = sealwright_attest::sbom::cyclonedx(&release, "2026-01-01T00:00:00Z", "0");
            assert!(serde_json::from_slice::<serde_json::Value>(&cdx).is_ok());
            let _ = sealwright_attest::sbom::spdx(&release, "2026-01-01T00:00:00Z", "0");
        }
    }
});
