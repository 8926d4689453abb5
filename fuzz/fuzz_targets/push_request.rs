//! Bodies of `POST /api/v1/push`: the request and every role it carries.
#![no_main]
use libfuzzer_sys::fuzz_target;
use sealwright_repo::push::PushRequest;
use sealwright_tuf::metadata::{Metadata, Targets};

fuzz_target!(|data: &[u8]| {
    let Ok(request) = serde_json::from_slice::<PushRequest>(data) else {
        return;
    };
    for (name, text) in &request.roles {
        let _ = sealwright_repo::policy::check_name("role", name);
        if let Ok(md) = Metadata::<Targets>::from_bytes(text.as_bytes(), 1 << 20) {
            for path in md.signed.targets.keys() {
                let _ = sealwright_repo::staging::validate_target_path(path);
                let _ = sealwright_repo::staging::is_channel_pointer(path);
            }
        }
    }
});
