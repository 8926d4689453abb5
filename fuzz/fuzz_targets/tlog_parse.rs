//! Every transparency-log parser of bytes from elsewhere: signed notes (checkpoints from a
//! log or witness, cosignature responses), checkpoint texts, tile paths in requests, entry
//! bundles, witness requests, log entries. Whatever parses must print back to the same bytes (one spelling).
#![no_main]
use libfuzzer_sys::fuzz_target;
use sealwright_tlog::tile::{decode_bundle, encode_bundle, TilePath};
use sealwright_tlog::{Checkpoint, Note};

fuzz_target!(|data: &[u8]| {
    if let Ok(note) = Note::parse(data) {
        assert_eq!(note.to_bytes(), data);
        if let Ok(cp) = Checkpoint::parse(note.text()) {
            assert_eq!(cp.to_text(), note.text());
        }
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(cp) = Checkpoint::parse(text) {
            assert_eq!(cp.to_text(), text);
        }
        if let Some(path) = TilePath::parse(text) {
            assert_eq!(path.to_string(), text);
        }
    }
    if let Ok(request) = sealwright_tlog::witness::AddCheckpoint::parse(data) {
        assert_eq!(request.to_body(), data);
    }
    if let Ok(proof) = sealwright_tlog::proof::TlogProof::parse(data) {
        assert_eq!(proof.to_bytes(), data);
    }
    if let Ok(entry) = sealwright_tlog::entry::Entry::parse(data) {
        assert_eq!(entry.to_bytes().unwrap(), data);
    }
    if let Ok(entries) = decode_bundle(data) {
        assert_eq!(encode_bundle(entries).unwrap(), data);
    }
});
