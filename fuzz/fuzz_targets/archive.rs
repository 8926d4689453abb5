//! Release archives (.tar, .tar.gz): unpacking never writes outside its directory.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("tempdir");
    let dest = dir.path().join("release");
    std::fs::create_dir(&dest).expect("mkdir");
    let _ = sealwright_client::install::unpack(data, &dest);
    // Nothing but the release directory may exist next to it.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .expect("read_dir")
        .map(|e| e.expect("entry").file_name())
        .collect();
    assert_eq!(names, vec![std::ffi::OsString::from("release")]);
});
