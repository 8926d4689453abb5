//! DSSE envelopes and in-toto statements: untrusted bytes from a release's evidence or a
//! push. Parsing and verifying never panic; what parses re-encodes and parses to itself.
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
    }
    if let Ok(statement) = Statement::parse(data) {
        assert_eq!(Statement::parse(&statement.to_bytes()).as_ref(), Ok(&statement));
        let _ = statement.subjects_with_sha256(&"00".repeat(32));
    }
});
