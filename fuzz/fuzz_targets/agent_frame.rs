//! Signer agent frames: length prefix and request JSON from any local caller.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut stream = std::io::Cursor::new(data);
    if let Ok(frame) = sealwright_repo::agent::read_frame(&mut stream) {
        assert!(frame.len() as u64 <= u64::from(sealwright_repo::agent::MAX_FRAME));
        let _ = sealwright_repo::agent::parse_request(&frame);
    }
    let _ = sealwright_repo::agent::parse_request(data);
});
