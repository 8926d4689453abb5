//! SoftHSM2 tokens for tests (Debian's `softhsm2`, installed by `scripts/test`): one fresh
//! token in a private directory, its PIN in a file.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;

/// Debian's SoftHSM2 module.
pub const SOFTHSM2_MODULE: &str = "/usr/lib/softhsm/libsofthsm2.so";

/// The PIN of test tokens.
pub const TEST_PIN: &str = "1234";

/// Makes a token labelled `label` in `dir` and points this process's `SOFTHSM2_CONF` at it
/// (children inherit it; call it once per test process). Returns the PIN file (mode 0600).
/// Without SoftHSM2 it says how to get it.
pub fn softhsm_token(dir: &Path, label: &str) -> Result<PathBuf, String> {
    if !Path::new(SOFTHSM2_MODULE).exists() {
        return Err(format!(
            "{SOFTHSM2_MODULE} is missing: run scripts/test (it installs softhsm2)"
        ));
    }
    let tokens = dir.join("tokens");
    std::fs::create_dir_all(&tokens).map_err(|e| e.to_string())?;
    let conf = dir.join("softhsm2.conf");
    std::fs::write(
        &conf,
        format!(
            "directories.tokendir = {}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n",
            tokens.display()
        ),
    )
    .map_err(|e| e.to_string())?;
    std::env::set_var("SOFTHSM2_CONF", &conf);
    let out = Command::new("softhsm2-util")
        .args(["--init-token", "--free", "--label", label])
        .args(["--so-pin", "5678", "--pin", TEST_PIN])
        .output()
        .map_err(|e| format!("softhsm2-util: {e} (run scripts/test, it installs softhsm2)"))?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let pin = dir.join("pin");
    std::fs::write(&pin, format!("{TEST_PIN}\n")).map_err(|e| e.to_string())?;
    std::fs::set_permissions(&pin, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| e.to_string())?;
    Ok(pin)
}
