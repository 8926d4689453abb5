//! Audit logs whose database or head anchor someone edited: opening, verifying and
//! appending refuse or report, never panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let dir = tempfile::tempdir().expect("tempdir");
    let (head, db) = data.split_at(data.len().min(data.first().copied().unwrap_or(0) as usize));
    std::fs::write(dir.path().join(sealwright_store::audit::HEAD_FILE), head).expect("write");
    if !db.is_empty() {
        std::fs::write(dir.path().join(sealwright_store::audit::DB_FILE), db).expect("write");
    }
    if let Ok(mut log) = sealwright_store::AuditLog::open(dir.path()) {
        let _ = log.verify();
        let _ = log.append(&sealwright_store::NewRecord {
            actor: "fuzz",
            action: "test",
            subject: "s",
            details: serde_json::json!({}),
        });
    }
});
